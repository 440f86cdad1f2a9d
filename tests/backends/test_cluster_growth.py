"""A cluster that grows while the experiment runs: a Dask scheduler whose workers join after
``fit()`` started (the documented ``dask scheduler & srun dask worker & python script.py``
flow, or an autoscaler). As on Ray Tune, trials wait for resources instead of failing, and
the experiment uses each node as it joins."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from tests.backends._dask import DaskCluster


def _timed(config):
    import poptune as tune

    start = time.time()
    time.sleep(config["sleep"])
    with open(os.path.join(config["marks"], f"{config['i']}.json"), "w") as f:
        json.dump([start, time.time()], f)
    tune.report(score=config["i"])


@pytest.fixture
def empty_dask_scheduler(tmp_path):
    """A Dask scheduler on loopback with no worker yet, and a function that starts one
    (``dask worker``, one thread); everything is stopped at the end."""
    pytest.importorskip("distributed", reason="the Dask backend needs `pip install 'poptune[dask]'`")
    logs = tmp_path / "logs"
    logs.mkdir()
    with DaskCluster(logs) as cluster:
        yield cluster.address, cluster.add_worker


@pytest.mark.slow
def test_trials_wait_for_dask_workers_that_join_later_and_use_each_one(
        empty_dask_scheduler, tmp_path, monkeypatch):
    """No worker when ``fit()`` starts (it used to fail at once with "the Dask cluster offers
    0 CPUs"); one joins, then a second: every trial runs, and two at once after the second
    joined (the pool grew with the cluster)."""
    import poptune as tune

    address, add_worker = empty_dask_scheduler
    monkeypatch.setenv("POPTUNE_ADDRESS", address)
    marks = tmp_path / "marks"
    marks.mkdir()
    joined: list[float] = []

    def grow() -> None:
        time.sleep(1.0)  # fit() is waiting by now
        add_worker()
        while not any(marks.iterdir()):  # the first trial ran on the first worker
            time.sleep(0.1)
        joined.append(time.time())
        add_worker()

    grower = threading.Thread(target=grow, daemon=True)
    grower.start()
    n = 12
    grid = tune.Tuner(
        _timed, param_space={"i": tune.grid_search(list(range(n))), "sleep": 1.0,
                             "marks": str(marks)},
        tune_config=tune.TuneConfig(backend="dask"),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "exp"), verbose=0)).fit()
    grower.join(timeout=5)
    assert sorted(r.metrics["score"] for r in grid) == list(range(n)) and not grid.errors
    spans = [json.loads(p.read_text()) for p in marks.iterdir()]
    # after the second worker joined, two trials ran at the same time
    late = sorted(s for s in spans if s[0] > joined[0])
    assert any(b[0] < a[1] for a, b in zip(late, late[1:])), spans
