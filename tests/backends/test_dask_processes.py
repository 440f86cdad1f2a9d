"""On Dask each trial slot's agent is a child process of its Dask task
(``_agent.serve_in_child``): a trial the driver kills really ends, and its Dask thread serves
the next trial. (When agents ran in the Dask worker's threads, a trial stuck in user code kept
its thread for ever: on a one-thread worker nothing else could run.)"""

from __future__ import annotations

import contextlib
import os
import time

import pytest

from tests.backends._dask import DaskCluster


@pytest.fixture(scope="module")
def one_thread_dask(tmp_path_factory):
    pytest.importorskip("distributed", reason="the Dask backend needs `pip install 'poptune[dask]'`")
    with DaskCluster(tmp_path_factory.mktemp("dask_procs")) as cluster:
        cluster.add_worker(nthreads=1)
        cluster.wait_for_workers(1)
        yield cluster.address


def _stuck_or_quick(config):
    import poptune as tune

    with open(os.path.join(config["pids"], str(config["i"])), "w") as f:
        f.write(str(os.getpid()))
    if config["i"] == 0:
        time.sleep(3600)  # stuck in user code, never reports
    tune.report(score=config["i"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie not reaped yet is gone too
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_killed_trial_ends_and_its_dask_thread_runs_the_next_one(one_thread_dask, tmp_path,
                                                                    monkeypatch):
    import poptune as tune

    monkeypatch.setenv("POPTUNE_ADDRESS", one_thread_dask)
    pids = tmp_path / "pids"
    pids.mkdir()
    grid = tune.Tuner(
        _stuck_or_quick, param_space={"i": tune.grid_search([0, 1]), "pids": str(pids)},
        tune_config=tune.TuneConfig(backend="dask"),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "exp"), verbose=0,
                                  failure_config=tune.FailureConfig(silence_timeout_s=3))).fit()
    by_i = {r.config["i"]: r for r in grid}
    assert by_i[0].error is not None and "silence_timeout_s" in str(by_i[0].error)
    assert by_i[1].error is None and by_i[1].metrics["score"] == 1
    stuck = int((pids / "0").read_text())
    deadline = time.monotonic() + 30
    while _alive(stuck) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(stuck)  # the stuck trial's process ended
    assert stuck != os.getpid() and stuck != int((pids / "1").read_text())


def _pid(config):
    import poptune as tune

    tune.report(pid=os.getpid())


@pytest.mark.slow
def test_the_in_process_cluster_runs_agents_in_child_processes_and_leaves_no_scratch_space(
        tmp_path, monkeypatch):
    """With no scheduler address poptune starts an in-process ``LocalCluster``: its agents are
    child processes too, and its workers' scratch space (Dask's ``dask-scratch-space`` in the
    temporary directory, left behind before) is removed at the end."""
    pytest.importorskip("distributed", reason="the Dask backend needs `pip install 'poptune[dask]'`")
    import tempfile

    import poptune as tune

    monkeypatch.delenv("POPTUNE_ADDRESS", raising=False)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    grid = tune.Tuner(_pid, param_space={"i": tune.grid_search([0, 1])},
                      tune_config=tune.TuneConfig(backend="dask"),
                      run_config=tune.RunConfig(storage_path=str(tmp_path / "exp"),
                                                verbose=0)).fit()
    assert len(grid) == 2 and not grid.errors
    assert os.getpid() not in {r.metrics["pid"] for r in grid}
    assert list(scratch.iterdir()) == []


def test_the_in_process_cluster_has_no_dashboard_and_no_warning_about_port_8787(monkeypatch):
    """poptune never uses the Dask dashboard: the in-process cluster starts without one, so a
    port 8787 taken by something else (another Dask cluster, a notebook's) is not a warning
    ("Port 8787 is already in use ... Hosting the HTTP server on port N instead"), as it
    was. The scheduler's HTTP server, which distributed always starts (health, metrics),
    listens on a free loopback port and serves no dashboard page."""
    pytest.importorskip("distributed", reason="the Dask backend needs `pip install 'poptune[dask]'`")
    import socket
    import urllib.error
    import urllib.request
    import warnings

    from poptune.backends.dask import DaskBackend

    monkeypatch.delenv("POPTUNE_ADDRESS", raising=False)
    with socket.socket() as holder:
        with contextlib.suppress(OSError):  # if it is taken already, so much the better
            holder.bind(("", 8787))
            holder.listen()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            backend = DaskBackend()
    try:
        assert [str(w.message) for w in caught if "8787" in str(w.message)] == []
        http = backend._cluster.scheduler.http_server
        assert (http.address, http.port != 8787) == ("127.0.0.1", True)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with pytest.raises(urllib.error.HTTPError) as not_there:
            opener.open(f"http://127.0.0.1:{http.port}/status", timeout=30)
        assert not_there.value.code == 404  # no dashboard (nor a "bokeh is missing" page)
        with opener.open(f"http://127.0.0.1:{http.port}/health", timeout=30) as health:
            assert health.read() == b"ok"  # the server itself answers: the 404 means it
    finally:
        backend.shutdown()


def test_an_agent_that_cannot_reach_the_driver_says_so_to_its_task():
    """The child agent's failure to connect comes back as the task's result (the driver
    shows it as the agent's end), not as a bare exit code."""
    from poptune.backends._agent import serve_in_child
    from tests._net import free_port

    port = free_port()  # nothing listens there
    assert serve_in_child(("127.0.0.1", port), "00" * 16, "a1") == (
        f"could not reach the driver at 127.0.0.1:{port}")
