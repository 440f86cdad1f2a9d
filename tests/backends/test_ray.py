"""The Ray backend against an address where no cluster listens.

``ray.init(address=...)`` on a silent address retries for many minutes (Ray 2.x: 20 attempts of
about 40 s each), so the backend checks first that something accepts connections there.
"""

from __future__ import annotations

import socket

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
