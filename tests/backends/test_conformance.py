"""Every backend passes the same suite: local, a real two-node Ray cluster on loopback, a
real Dask scheduler with two separate worker processes on loopback, and the simulated backend
(in the driver process: every check but the one that kills a worker process)."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from poptune.backends.testing import CHECKS, check_killed_worker_resumes_from_checkpoint
from tests._net import free_port as _free_port
from tests.backends._dask import DaskCluster
from tests.backends._ray import ray_cluster as start_ray_cluster


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A head and a worker node of 1 CPU each on loopback (tests/backends/_ray.py); the
    worker node offers a custom resource too."""
    ray = pytest.importorskip("ray", reason="the Ray backend needs `pip install 'poptune[ray]'`")
    with start_ray_cluster(ray, tmp_path_factory.mktemp("ray"), 1,
                           ('--resources={"accel": 2}',)) as address:
        yield address


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    pytest.importorskip("distributed", reason="the Dask backend needs `pip install 'poptune[dask]'`")
    with DaskCluster(tmp_path_factory.mktemp("dask")) as cluster:
        for _ in range(2):
            cluster.add_worker()
        cluster.wait_for_workers(2)
        yield cluster.address


@pytest.fixture(params=["local", "ray", "dask", "simulated"])
def backend_env(request, monkeypatch):
    name = request.param
    monkeypatch.setenv("POPTUNE_BACKEND", name)
    if name == "ray":
        monkeypatch.setenv("POPTUNE_ADDRESS", request.getfixturevalue("ray_cluster"))
        monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
        monkeypatch.setenv("POPTUNE_KEEP_RAY", "1")  # reuse one connection across checks
    elif name == "dask":
        monkeypatch.setenv("POPTUNE_ADDRESS", request.getfixturevalue("dask_cluster"))
    else:
        monkeypatch.delenv("POPTUNE_ADDRESS", raising=False)
    return name


@pytest.mark.slow
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__[len("check_"):])
def test_backend_conformance(check, backend_env, tmp_path):
    if backend_env == "simulated" and check is check_killed_worker_resumes_from_checkpoint:
        pytest.skip("simulated trials run in the driver process: killing theirs kills the driver")
    check(str(tmp_path))


def test_unreachable_cluster_is_a_clear_error(monkeypatch, tmp_path):
    pytest.importorskip("distributed")
    import poptune as tune
    from poptune.exceptions import TuneError

    monkeypatch.setenv("POPTUNE_ADDRESS", f"tcp://127.0.0.1:{_free_port()}")
    with pytest.raises(TuneError, match="could not connect to the Dask scheduler") as raised:
        tune.Tuner(lambda c: None, tune_config=tune.TuneConfig(backend="dask"),
                   run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    # found by a probe (refused at once), not after the Dask client's 20 s timeout
    assert "nothing accepts connections there" in str(raised.value)
    assert "Connection refused" in str(raised.value)


@pytest.mark.slow
def test_ray_init_with_the_clusters_address_runs_trials_there(ray_cluster, monkeypatch, tmp_path):
    """A Ray script's ``ray.init(address=...)`` (``import poptune as ray``) puts its trials on
    that cluster: the Ray backend, with no ``POPTUNE_BACKEND``/``TuneConfig(backend=...)``."""
    import poptune as tune

    monkeypatch.delenv("POPTUNE_BACKEND", raising=False)
    monkeypatch.delenv("POPTUNE_ADDRESS", raising=False)
    monkeypatch.setenv("POPTUNE_KEEP_RAY", "1")  # the module's connection stays for others

    def where(config):
        import ray

        tune.report(on_ray=ray.is_initialized())

    tune.init(address=ray_cluster)
    try:
        analysis = tune.run(where, num_samples=2, verbose=0, storage_path=str(tmp_path))
    finally:
        tune.shutdown()
    assert [t.last_result["on_ray"] for t in analysis.trials] == [True, True]
    assert "POPTUNE_ADDRESS" not in os.environ  # ray.shutdown() took back what init set



def _where(config):
    import ray

    import poptune as tune

    tune.report(score=1, node=ray.get_runtime_context().get_node_id())


@pytest.mark.slow
def test_trials_asking_for_a_custom_resource_run_where_the_ray_cluster_offers_it(
        ray_cluster, monkeypatch, tmp_path, caplog):
    """``ray start --resources='{"accel": 2}'`` on one node: trials asking for ``accel``
    run there, as in Ray Tune (a probe found them refused, naming the local backend). A trial
    asking for more than the cluster offers waits, as on Ray Tune (the cluster may be
    autoscaling), with Ray's warning after ``TUNE_WARN_INSUFFICENT_RESOURCE_THRESHOLD_S_
    AUTOSCALER`` seconds."""
    import logging

    import ray

    import poptune as tune

    monkeypatch.setenv("POPTUNE_ADDRESS", ray_cluster)
    monkeypatch.setenv("POPTUNE_KEEP_RAY", "1")
    accel_node = next(n["NodeID"] for n in ray.nodes() if n["Alive"]
                      and n["Resources"].get("accel"))
    grid = tune.Tuner(tune.with_resources(_where, {"cpu": 0.5, "accel": 1}),
                      param_space={"i": tune.grid_search([1, 2, 3])},
                      tune_config=tune.TuneConfig(backend="ray"),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    assert grid.num_errors == 0 and {r.metrics["node"] for r in grid} == {accel_node}
    monkeypatch.setenv("TUNE_WARN_INSUFFICENT_RESOURCE_THRESHOLD_S_AUTOSCALER", "1")
    with caplog.at_level(logging.WARNING, logger="poptune"):
        grid = tune.Tuner(tune.with_resources(_where, {"cpu": 0.5, "accel": 3}),
                          tune_config=tune.TuneConfig(backend="ray", time_budget_s=4),
                          run_config=tune.RunConfig(storage_path=str(tmp_path),
                                                    verbose=0)).fit()
    assert len(grid) == 0  # it never started: the time budget ended the wait
    assert any("You asked for {'cpu': 0.5, 'accel': 3.0} per trial, but the Ray cluster only "
               "has" in r.getMessage() and "and {'accel': 2.0}" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]


def _printing_trainable(config):
    import poptune as tune

    # words, not numbers: Ray folds lines that differ only in numbers ("[repeated 2x ...]")
    print(f"hello from trial {config['name']}", flush=True)
    tune.report(score=len(config["name"]))


@pytest.mark.slow
def test_what_a_trial_prints_on_ray_is_prefixed_with_its_trainable(ray_cluster, monkeypatch,
                                                                     tmp_path, capfd):
    """Ray's log monitor names a trial's lines after the trainable, as Ray Tune's actors are
    named (``(_printing_trainable pid=N)``), not after poptune's actor class (``RayAgent``)."""
    import poptune as tune

    monkeypatch.setenv("POPTUNE_ADDRESS", ray_cluster)
    monkeypatch.setenv("POPTUNE_KEEP_RAY", "1")
    tune.Tuner(_printing_trainable, param_space={"name": tune.grid_search(["alpha", "beta"])},
               tune_config=tune.TuneConfig(backend="ray"),
               run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    out = ""
    deadline = time.time() + 30  # Ray's log monitor polls the workers' log files
    # wait for both trials' words: each line may come twice (both nodes' log monitors read the
    # session's one log dir), so two lines can be one trial's
    while time.time() < deadline and not all(f"from trial {n}" in out for n in ("alpha", "beta")):
        out += capfd.readouterr().out
        time.sleep(0.2)
    lines = {ln for ln in out.splitlines() if "hello from trial" in ln}
    assert len(lines) == 2, out
    assert all("(_printing_trainable pid=" in ln and "RayAgent" not in ln for ln in lines), lines


# -- with_parameters copies and reuse_actors, on every backend (the same worker code) ----------
def _reused_trainable():
    import poptune as tune

    class Reused(tune.Trainable):
        def setup(self, config):
            self.resets, self.setups = 0, getattr(self, "setups", 0) + 1

        def step(self):
            return {"resets": self.resets, "setups": self.setups, "me": id(self),
                    "pid": os.getpid(), "done": True}

        def reset_config(self, new_config):
            self.resets += 1
            return True

    return Reused


@pytest.mark.slow
def test_with_parameters_copies_and_reuse_actors_on_every_backend(backend_env, tmp_path):
    import numpy as np

    import poptune as tune
    from tests.trainable.test_with_parameters import mutating

    data = {"lst": [], "arr": np.zeros(3)}
    grid = tune.Tuner(tune.with_parameters(mutating, data=data),
                      param_space={"i": tune.grid_search([1, 2, 3, 4])},
                      tune_config=tune.TuneConfig(max_concurrent_trials=1),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    assert [r.metrics["before"] for r in grid] == [[0, 0.0]] * 4
    assert [r.metrics["error"] for r in grid] == ["output array is read-only"] * 4

    grid = tune.Tuner(_reused_trainable(), param_space={"i": tune.grid_search([1, 2, 3, 4])},
                      tune_config=tune.TuneConfig(max_concurrent_trials=1, reuse_actors=True),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    rows = [r.metrics for r in sorted(grid, key=lambda r: r.config["i"])]
    assert all(r.error is None for r in grid)
    by_instance: dict[tuple[int, int], list[int]] = {}
    for m in rows:  # the trials run one at a time, in order: each instance counts its resets
        assert m["setups"] == 1
        by_instance.setdefault((m["pid"], m["me"]), []).append(m["resets"])
    assert all(resets == list(range(len(resets))) for resets in by_instance.values())
    assert len(by_instance) < len(rows)  # fewer instances than trials: some were reused


_ = shutil
