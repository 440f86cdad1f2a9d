"""The Ray backend against an address where no cluster listens.

``ray.init(address=...)`` on a silent address retries for many minutes (Ray 2.x: 20 attempts of
about 40 s each), so the backend checks first that something accepts connections there.
"""

from __future__ import annotations

import os
import socket

import pytest

from tests._net import free_port as _free_port


@pytest.mark.timeout(60)  # Ray's own retries would take over ten minutes: this is the regression
@pytest.mark.parametrize("scheme", ["", "ray://"], ids=["gcs", "ray-client"])
def test_unreachable_ray_address_is_a_clear_error(scheme, monkeypatch, tmp_path):
    ray = pytest.importorskip("ray", reason="the Ray backend needs `pip install 'poptune[ray]'`")
    if ray.is_initialized():  # the backend would reuse that connection and never dial
        pytest.skip("this process is already connected to a Ray cluster")
    import poptune as tune
    from poptune.exceptions import TuneError

    address = f"{scheme}127.0.0.1:{_free_port()}"
    monkeypatch.setenv("POPTUNE_ADDRESS", address)
    with pytest.raises(TuneError) as info:
        tune.Tuner(lambda c: None, tune_config=tune.TuneConfig(backend="ray"),
                   run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    message = str(info.value)
    assert message.startswith(f"could not connect to the Ray cluster at {address}: "
                              "nothing accepts connections there")
    assert "Connection refused" in message
    assert "ray start --head" in message and "POPTUNE_ADDRESS" in message  # what to check
    assert not ray.is_initialized()  # no local Ray instance started in its place


@pytest.mark.timeout(60)
def test_ray_init_with_an_address_selects_the_ray_backend(monkeypatch, tmp_path):
    """``import poptune as ray; ray.init(address="host:6379")`` then ``tune.run``: the trials
    go to that cluster, so a dead address is the Ray backend's clear error, not a silent
    local run."""
    ray = pytest.importorskip("ray", reason="the Ray backend needs `pip install 'poptune[ray]'`")
    if ray.is_initialized():
        pytest.skip("this process is already connected to a Ray cluster")
    import poptune as tune
    from poptune.exceptions import TuneError

    monkeypatch.delenv("POPTUNE_BACKEND", raising=False)
    monkeypatch.delenv("POPTUNE_ADDRESS", raising=False)
    address = f"127.0.0.1:{_free_port()}"
    tune.init(address=address)
    try:
        with pytest.raises(TuneError) as info:
            tune.run(lambda c: None, verbose=0, storage_path=str(tmp_path))
    finally:
        tune.shutdown()
    assert str(info.value).startswith(f"could not connect to the Ray cluster at {address}: ")
    assert "ray.init(address=...)" in str(info.value)
    assert "POPTUNE_ADDRESS" not in os.environ  # shutdown took back what init set
    assert not ray.is_initialized()


@pytest.mark.parametrize("address", [None, "local"])
def test_ray_init_without_a_cluster_keeps_the_local_engine(address, monkeypatch):
    from poptune import _compat
    from poptune.backends import get_backend
    from poptune.backends.local import LocalBackend

    monkeypatch.delenv("POPTUNE_BACKEND", raising=False)
    monkeypatch.delenv("POPTUNE_ADDRESS", raising=False)
    _compat.init(address=address)
    try:
        assert _compat.requested_backend() is None
        backend = get_backend(None)
        assert isinstance(backend, LocalBackend)
        backend.shutdown()
    finally:
        _compat.shutdown()
    assert "POPTUNE_ADDRESS" not in os.environ


def test_ray_init_address_leaves_an_explicit_choice_alone(monkeypatch):
    """``POPTUNE_BACKEND`` (and ``TuneConfig(backend=...)``) win over ``ray.init(address=...)``;
    a ``POPTUNE_ADDRESS`` the user set is not touched by ``init`` or ``shutdown``."""
    from poptune import _compat
    from poptune.backends import get_backend
    from poptune.backends.simulated import SimulatedBackend

    monkeypatch.setenv("POPTUNE_BACKEND", "simulated")
    monkeypatch.setenv("POPTUNE_ADDRESS", "tcp://elsewhere:8786")
    _compat.init(address="10.0.0.7:6379")
    try:
        assert _compat.requested_backend() == "ray"
        assert isinstance(get_backend(None), SimulatedBackend)
        assert isinstance(get_backend("simulated"), SimulatedBackend)
        assert os.environ["POPTUNE_ADDRESS"] == "tcp://elsewhere:8786"
    finally:
        _compat.shutdown()
    assert os.environ["POPTUNE_ADDRESS"] == "tcp://elsewhere:8786"
    assert _compat.requested_backend() is None
    with pytest.raises(TypeError, match="`address` must be a Ray cluster address"):
        _compat.init(address=6379)


class _ConnectedRay:
    """What ``_warn_if_other_cluster`` reads from a Ray already connected to ``gcs``."""

    def __init__(self, gcs):
        self.gcs = gcs

    def get_runtime_context(self):
        return type("Ctx", (), {"gcs_address": self.gcs})()


@pytest.mark.parametrize("connected, address, warns", [
    ("10.0.0.7:6379", "127.0.0.1:7000", True),   # another port
    ("10.0.0.7:6379", "10.0.0.9:6379", True),    # another host
    ("10.0.0.7:6379", "10.0.0.7:6379", False),
    ("192.0.2.2:6379", "127.0.0.1:6379", False),  # Ray names loopback by the node's IP
])
def test_an_address_ignored_because_ray_is_already_connected_is_warned(
        connected, address, warns, caplog, monkeypatch):
    pytest.importorskip("ray")
    from poptune.backends import ray as ray_backend

    monkeypatch.setattr(ray_backend, "driver_ip", lambda: "192.0.2.2")
    with caplog.at_level("WARNING", logger="poptune"):
        ray_backend._warn_if_other_cluster(_ConnectedRay(connected), address)
    assert ("is ignored" in caplog.text) == warns


# --- no address given: never the dead cluster a stale address names (issue 12) ------------
class _FakeRay:
    """Records what ``RayBackend`` hands ``ray.init`` (no Ray process is started)."""

    def __init__(self):
        self.init_address = "<not called>"

    def is_initialized(self):
        return False

    def init(self, address=None, **kwargs):
        self.init_address = address
        raise _Stop


class _Stop(Exception):
    pass


@pytest.fixture
def private_ray_tmp(monkeypatch, tmp_path):
    """A private RAY_TMPDIR holding a ``ray_current_cluster`` file; no RAY_ADDRESS."""
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("POPTUNE_ADDRESS", raising=False)
    (tmp_path / "ray").mkdir()
    return tmp_path / "ray" / "ray_current_cluster"


def _backend_init_address(monkeypatch):
    from poptune.backends import ray as ray_backend

    fake = _FakeRay()
    monkeypatch.setattr(ray_backend, "require", lambda *a, **k: fake)
    with pytest.raises(Exception):  # the fake stops the backend right after ray.init
        ray_backend.RayBackend()
    return fake.init_address


def test_a_stale_ray_current_cluster_is_ignored_and_a_local_instance_started(
        private_ray_tmp, monkeypatch, caplog):
    dead = f"127.0.0.1:{_free_port()}"
    private_ray_tmp.write_text(dead)
    with caplog.at_level("WARNING", logger="poptune"):
        address = _backend_init_address(monkeypatch)
    assert address == "local"  # ray.init(address=None) would have dialled the dead cluster
    assert f"ignoring the stale Ray address {dead} in {private_ray_tmp}" in caplog.text
    assert "Connection refused" in caplog.text


def test_a_live_cluster_named_by_the_file_is_named_but_local_ray_is_started(
        private_ray_tmp, monkeypatch, caplog):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        live = f"127.0.0.1:{server.getsockname()[1]}"
        private_ray_tmp.write_text(live)
        with caplog.at_level("WARNING", logger="poptune"):
            address = _backend_init_address(monkeypatch)
    assert address == "local"
    assert f"answers at {live}" in caplog.text and f"POPTUNE_ADDRESS={live}" in caplog.text


def test_ray_address_is_used_when_a_cluster_answers_and_ignored_when_dead(
        private_ray_tmp, monkeypatch, caplog):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        live = f"127.0.0.1:{server.getsockname()[1]}"
        monkeypatch.setenv("RAY_ADDRESS", live)
        assert _backend_init_address(monkeypatch) == live  # e.g. a Ray job's driver
    dead = f"127.0.0.1:{_free_port()}"
    monkeypatch.setenv("RAY_ADDRESS", dead)
    with caplog.at_level("WARNING", logger="poptune"):
        assert _backend_init_address(monkeypatch) == "local"
    assert f"RAY_ADDRESS={dead} is ignored: nothing accepts connections there" in caplog.text


@pytest.mark.timeout(60)
def test_auto_with_a_stale_address_file_fails_at_once(private_ray_tmp, monkeypatch):
    from poptune.backends import ray as ray_backend
    from poptune.exceptions import TuneError

    dead = f"127.0.0.1:{_free_port()}"
    private_ray_tmp.write_text(dead)
    fake = _FakeRay()
    monkeypatch.setattr(ray_backend, "require", lambda *a, **k: fake)
    with pytest.raises(TuneError) as info:
        ray_backend.RayBackend(address="auto")
    assert str(info.value).startswith(
        f"could not connect to the Ray cluster at {dead} (address auto: the last cluster "
        f"`ray start` started, named in {private_ray_tmp}): nothing accepts connections there")
    assert fake.init_address == "<not called>"


class _InitRecorder:
    """Records ``ray.init``'s arguments; enough of Ray for the backend's constructor."""

    def __init__(self):
        self.init_kwargs = None

    def is_initialized(self):
        return False

    def init(self, **kwargs):
        self.init_kwargs = kwargs

    def remote(self, **_):
        return lambda cls: cls

    def nodes(self):
        return [{"Alive": True, "NodeManagerAddress": "127.0.0.1"}]


@pytest.mark.parametrize("given, env, expected", [
    ({}, None, True),                          # Ray's default
    ({}, "0", False),                          # RAY_LOG_TO_DRIVER=0
    ({"log_to_driver": False}, None, False),   # passed to the backend (was a TypeError)
])
def test_the_ray_backend_passes_log_to_driver_to_ray_init(given, env, expected, monkeypatch):
    import poptune.backends.ray as ray_backend

    fake = _InitRecorder()
    monkeypatch.setattr(ray_backend, "require", lambda *a, **k: fake)
    monkeypatch.setattr(ray_backend, "choose_address", lambda *a, **k: "local")
    if env is None:
        monkeypatch.delenv("RAY_LOG_TO_DRIVER", raising=False)
    else:
        monkeypatch.setenv("RAY_LOG_TO_DRIVER", env)
    monkeypatch.delenv("POPTUNE_ADDRESS", raising=False)
    ray_backend.RayBackend(**given)
    assert fake.init_kwargs["log_to_driver"] is expected


def test_a_dead_actors_status_names_its_cause_without_colour_codes():
    """A probe's trial on a node with a read-only staging path failed with only Ray's
    colour-coded task header (``ray::RayAgent.serve()``) as the cause."""
    from poptune.backends.ray import _ray_error_text

    class RayTaskError(Exception):  # as Ray's: the header first, the cause attached
        def __init__(self, cause):
            super().__init__("\x1b[36mray::RayAgent.serve()\x1b[39m (pid=1, ip=10.0.0.2)\n...")
            self.cause = cause

    err = RayTaskError(OSError(30, "Read-only file system"))
    assert _ray_error_text(err) == "OSError: [Errno 30] Read-only file system"
