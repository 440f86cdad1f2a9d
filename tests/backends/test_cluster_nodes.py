"""A cluster's nodes, not only its total: a trial runs only where one node has all it asks for.

Ray places a trial's actor on one node; Dask gives its task one worker (its GPUs per worker,
its CPUs per machine). Two nodes of 3 CPUs hold two trials of 2 CPUs, not the three their
total holds: the third agent stayed pending and the run failed after ``START_TIMEOUT_S``
(120 s). Now the pool plans per node; an agent a cluster still does not start in time is
warned about and waited for (on this machine it is still an error); a request no node holds
waits with Ray's autoscaler warning, which names the largest node.

Real clusters on loopback (a Ray head and worker node; a Dask scheduler with workers on
127.0.0.1 and 127.0.0.2, two machines to Dask), all stopped at the end.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from multiprocessing.connection import Client, Listener
from typing import Any

import pytest

from poptune.backends import _conn
from poptune.backends._base import LaunchSpec
from poptune.backends._conn import Agent, ConnectionBackend
from poptune.callbacks import Callback
from poptune.stopper import NoopStopper
from poptune.engine.resources import cluster_offer
from poptune.exceptions import TuneError
from tests.backends._dask import DaskCluster
from tests.backends._ray import ray_cluster


# --- the backend's side: an agent the cluster has not started yet --------------------------
class _Pending(Agent):
    """An agent its cluster has not started (None), or one that ended (``status``)."""

    def __init__(self, status: str | None = None) -> None:
        self.status = status
        self.killed = False

    def exit_status(self) -> str | None:
        return self.status

    def kill(self) -> None:
        self.killed = True


class _Cluster(ConnectionBackend):
    """A backend whose agents start only when the test connects them (a cluster that has no
    node free for them yet): ``placed_by_cluster`` as Ray and Dask say, or False as this
    machine's backend."""

    def __init__(self, placed_by_cluster: bool, status: str | None = None) -> None:
        super().__init__()
        self.placed_by_cluster = placed_by_cluster
        self.status = status
        self.agents: dict[str, _Pending] = {}

    def _listen(self) -> Listener:
        return Listener(("127.0.0.1", 0), family="AF_INET", authkey=self._authkey)

    def _start_agent(self, agent_id: str, resources: dict[str, float]) -> Agent:
        self.agents[agent_id] = _Pending(self.status)
        return self.agents[agent_id]

    def total_resources(self) -> dict[str, Any]:
        return cluster_offer([{"name": "10.0.0.5", "cpu": 3, "gpu": 0},
                              {"name": "10.0.0.6", "cpu": 3, "gpu": 0}], "the Ray cluster")

    def connect(self, agent_id: str) -> list[Any]:
        """The agent starts at last: it connects (from a thread: the driver's accept, in
        :meth:`poll`, takes part in the handshake), says it is ready and reads two
        messages; return them. It ends (closing its connection) at :meth:`shutdown`."""
        assert self._listener is not None
        got: list[Any] = []

        def agent() -> None:
            with Client(self._listener.address, family="AF_INET",
                        authkey=self._authkey) as conn:
                conn.send(("ready", agent_id))
                got.extend(conn.recv() for _ in range(2) if conn.poll(5))
                self._done.wait(10)

        self._done = threading.Event()
        self._thread = threading.Thread(target=agent, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while len(got) < 2 and time.monotonic() < deadline:
            self.poll(0.05)
        return got

    def shutdown(self) -> None:
        for agent in self.agents.values():
            agent.status = agent.status or "finished"  # no wait for it to exit
        super().shutdown()
        if hasattr(self, "_done"):
            self._done.set()
            self._thread.join(timeout=10)


def _spec(trial_id: str = "t1") -> LaunchSpec:
    return LaunchSpec(trial_id=trial_id, trial_name=trial_id, trial_dir="/nowhere",
                      experiment_name="e", experiment_dir="/nowhere", config_blob=b"",
                      resources={"cpu": 2.0, "gpu": 0.0})


def _poll_for(backend: ConnectionBackend, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        backend.poll(0.05)


def test_an_agent_a_cluster_has_not_started_in_time_is_warned_about_and_waited_for(
        monkeypatch, caplog):
    """Ray's placement can differ from the pool's plan (mixed shapes, idle actors of other
    trials, another program's tasks): the trial waits for its actor as on Ray Tune, with one
    warning naming what it asks and the nodes, and starts when the agent does."""
    monkeypatch.setattr(_conn, "START_TIMEOUT_S", 0.2)
    backend = _Cluster(placed_by_cluster=True)
    try:
        with caplog.at_level(logging.WARNING, logger="poptune"):
            backend.launch(_spec())
            _poll_for(backend, 0.8)  # four times the timeout: warned once, no error
        warned = [r.getMessage() for r in caplog.records if "has not started" in r.getMessage()]
        assert warned == [
            "poptune: a worker for trials asking for {'cpu': 2.0} has not started within 0.2 s: "
            "the Ray cluster starts it when one node has that much free, which another "
            "program's tasks, idle workers of other trials or its own placement may delay (its "
            "nodes: 10.0.0.5: 3 CPUs, 0 GPUs; 10.0.0.6: 3 CPUs, 0 GPUs). poptune waits for it, "
            "as Ray Tune waits for a trial's actor; the trial starts then."]
        (agent_id,) = backend.agents
        messages = backend.connect(agent_id)
        assert [m[0] for m in messages] == ["init", "start"]
        assert messages[1][1].trial_id == "t1"  # the trial went to the agent that started
    finally:
        backend.shutdown()


def test_an_agent_that_failed_to_start_still_ends_the_run_on_a_cluster(monkeypatch):
    monkeypatch.setattr(_conn, "START_TIMEOUT_S", 0.2)
    backend = _Cluster(placed_by_cluster=True, status="Ray actor died: ImportError: no x")
    try:
        backend.launch(_spec())
        with pytest.raises(TuneError, match=r"a poptune worker failed to start \(Ray actor "
                                            r"died: ImportError: no x\)"):
            _poll_for(backend, 0.5)
    finally:
        backend.shutdown()


def test_an_agent_this_machine_does_not_start_in_time_still_ends_the_run(monkeypatch):
    """A local worker process that never connects is broken, not waiting for a node."""
    monkeypatch.setattr(_conn, "START_TIMEOUT_S", 0.2)
    backend = _Cluster(placed_by_cluster=False)
    try:
        backend.launch(_spec())
        with pytest.raises(TuneError, match=r"asking for \{'cpu': 2.0\} did not start within "
                                            r"0.2 s"):
            _poll_for(backend, 0.8)
        assert all(a.killed for a in backend.agents.values())
    finally:
        backend.shutdown()


def test_cluster_backends_wait_for_their_agents_and_report_their_nodes():
    pytest.importorskip("ray")
    pytest.importorskip("distributed")
    from poptune.backends.dask import DaskBackend, dask_nodes
    from poptune.backends.local import LocalBackend
    from poptune.backends.ray import RayBackend

    assert RayBackend.placed_by_cluster and DaskBackend.placed_by_cluster
    assert not LocalBackend.placed_by_cluster
    # Dask: one node per machine, its workers' threads and GPUs added up
    assert dask_nodes([{"host": "10.0.0.5", "nthreads": 1}] * 4) == [
        {"name": "10.0.0.5", "cpu": 4.0, "gpu": 0.0}]


# --- real clusters on loopback ----------------------------------------------------------------
class _MostRunning(Callback):
    """The most trials the driver had running at once."""

    def __init__(self) -> None:
        self.most = 0

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self.most = max(self.most, sum(t.status == "RUNNING" for t in trials))


def _timed(config: dict[str, Any]) -> None:
    import poptune as tune

    start = time.time()
    time.sleep(config["sleep"])
    with open(os.path.join(config["marks"], f"{config['i']}.json"), "w") as f:
        json.dump([start, time.time()], f)
    tune.report(score=config["i"])


def _most_at_once(marks: Any) -> int:
    """The most trials that ran at the same time, from their ``[start, end]`` marks."""
    spans = [json.loads(p.read_text()) for p in marks.iterdir()]
    return max(sum(s[0] <= t < s[1] for s in spans) for t, _ in spans)


def _run(tmp_path: Any, backend: str, resources: Any, n: int, sleep: float,
         stop: Any = None, **tune_config: Any) -> tuple[Any, _MostRunning, Any]:
    """Trials ``i`` = 0 to ``n - 1`` asking for ``resources`` (or a function of the config
    that says), each sleeping ``sleep`` s."""
    import poptune as tune

    marks = tmp_path / "marks"
    marks.mkdir()
    most = _MostRunning()
    grid = tune.Tuner(
        tune.with_resources(_timed, resources),
        param_space={"i": tune.grid_search(list(range(n))), "sleep": sleep,
                     "marks": str(marks)},
        tune_config=tune.TuneConfig(backend=backend, **tune_config),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "exp"), verbose=0,
                                  callbacks=[most], stop=stop)).fit()
    return grid, most, marks


@pytest.fixture(scope="module")
def ray_two_nodes(tmp_path_factory):
    """A Ray head and a worker node of 3 CPUs each on loopback (tests/backends/_ray.py), and
    this process connected."""
    ray = pytest.importorskip("ray", reason="the Ray backend needs `pip install 'poptune[ray]'`")
    if ray.is_initialized():
        pytest.skip("this process is already connected to a Ray cluster")
    with ray_cluster(ray, tmp_path_factory.mktemp("ray"), 3) as address:
        yield address


@pytest.fixture
def on_ray(ray_two_nodes, monkeypatch):
    monkeypatch.setenv("POPTUNE_ADDRESS", ray_two_nodes)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("POPTUNE_KEEP_RAY", "1")  # one connection for the module's tests
    return ray_two_nodes


@pytest.mark.slow
def test_ray_trials_of_two_cpus_on_two_nodes_of_three_run_two_at_once_and_all_complete(
        on_ray, tmp_path, monkeypatch):
    """The case that failed: the pool let three run on the 6 CPUs, the third actor stayed
    pending and ``START_TIMEOUT_S`` ended the experiment. Trials outlive that timeout."""
    monkeypatch.setattr(_conn, "START_TIMEOUT_S", 2.0)
    grid, most, marks = _run(tmp_path, "ray", {"cpu": 2}, n=4, sleep=2.5)
    assert not grid.errors and sorted(r.metrics["score"] for r in grid) == [0, 1, 2, 3]
    assert most.most == 2  # never three "running", one of them waiting for a node
    assert _most_at_once(marks) == 2  # both nodes used


@pytest.mark.slow
def test_a_ray_request_no_node_holds_waits_with_the_warning_naming_the_largest_node(
        on_ray, tmp_path, monkeypatch, caplog):
    """4 CPUs: the cluster's 6 hold it, no node of 3 does. It waits (a node may join), with
    Ray's autoscaler warning; the time budget ends the run."""
    monkeypatch.setenv("TUNE_WARN_INSUFFICENT_RESOURCE_THRESHOLD_S_AUTOSCALER", "1")
    monkeypatch.setattr(_conn, "START_TIMEOUT_S", 1.0)
    with caplog.at_level(logging.WARNING, logger="poptune"):
        grid, _, _ = _run(tmp_path, "ray", {"cpu": 4}, n=1, sleep=0.0, time_budget_s=3)
    assert len(grid) == 0  # it never started: the time budget ended the wait
    warned = [r.getMessage() for r in caplog.records if "autoscaling" in r.getMessage()]
    assert warned and "wait for resources no single node of the Ray cluster offers. You " \
        "asked for {'cpu': 4.0} per trial, but the Ray cluster only has 6 CPUs and 0 GPUs " \
        "on 2 node(s), the largest (" in warned[0], warned
    assert ": 3 CPUs, 0 GPUs, " in warned[0]  # then its memory
    assert not [r for r in caplog.records if "has not started" in r.getMessage()]


@pytest.mark.slow
def test_a_ray_actor_held_back_by_another_program_is_waited_for(on_ray, tmp_path,
                                                                monkeypatch, caplog):
    """Another program holds one node's 3 CPUs: the pool (which sees only poptune's trials)
    starts two agents, Ray places one. The other is warned about once and waited for; the
    trials run one after the other on the agent that started (the first to start may be
    warned about too, on a slow machine: the test does not count the warnings)."""
    import ray

    @ray.remote(num_cpus=3)
    class Hog:
        def ready(self) -> bool:
            return True

    hog = Hog.remote()
    ray.get(hog.ready.remote(), timeout=60)
    monkeypatch.setattr(_conn, "START_TIMEOUT_S", 1.5)
    try:
        with caplog.at_level(logging.WARNING, logger="poptune"):
            grid, _, marks = _run(tmp_path, "ray", {"cpu": 2}, n=3, sleep=1.5)
    finally:
        ray.kill(hog)
    assert not grid.errors and sorted(r.metrics["score"] for r in grid) == [0, 1, 2]
    assert _most_at_once(marks) == 1
    warned = [r.getMessage() for r in caplog.records if "has not started" in r.getMessage()]
    assert warned and all(w.startswith(
        "poptune: a worker for trials asking for {'cpu': 2.0} has not started within 1.5 s: "
        "the Ray cluster starts it when one node has that much free") for w in warned), warned


class _TwoMachines(DaskCluster):
    """A Dask scheduler with workers on two loopback addresses: two machines to Dask."""

    def add_worker_on(self, host: str, nthreads: int, gpus: int = 0) -> None:
        extra = ["--resources", f"GPU={gpus}"] if gpus else []
        self._start(["worker", self.address, "--host", host, "--nthreads", str(nthreads),
                     "--nworkers", "1", *extra], f"worker-{host}.log")


@pytest.fixture(scope="module")
def dask_two_machines(tmp_path_factory):
    pytest.importorskip("distributed",
                        reason="the Dask backend needs `pip install 'poptune[dask]'`")
    with _TwoMachines(tmp_path_factory.mktemp("dask")) as cluster:
        for host in ("127.0.0.1", "127.0.0.2"):
            cluster.add_worker_on(host, nthreads=3, gpus=1)
        cluster.wait_for_workers(2)
        yield cluster.address


@pytest.mark.slow
def test_dask_trials_of_two_cpus_on_two_machines_of_three_threads_run_two_at_once(
        dask_two_machines, tmp_path, monkeypatch):
    """The pool counts a Dask machine's threads as its CPUs: two trials of 2 CPUs at once
    (three would put 4 CPUs of work on one machine of 3)."""
    monkeypatch.setenv("POPTUNE_ADDRESS", dask_two_machines)
    grid, most, _ = _run(tmp_path, "dask", {"cpu": 2}, n=4, sleep=1.0)
    assert not grid.errors and sorted(r.metrics["score"] for r in grid) == [0, 1, 2, 3]
    assert most.most == 2


@pytest.mark.slow
def test_a_dask_request_for_more_gpus_than_any_machine_has_waits_with_the_warning(
        dask_two_machines, tmp_path, monkeypatch, caplog):
    """2 GPUs on two machines of one: the Dask task would never start (it failed the run
    after ``START_TIMEOUT_S``); it waits with the warning, and the time budget ends it."""
    monkeypatch.setenv("POPTUNE_ADDRESS", dask_two_machines)
    monkeypatch.setenv("TUNE_WARN_INSUFFICENT_RESOURCE_THRESHOLD_S_AUTOSCALER", "1")
    monkeypatch.setattr(_conn, "START_TIMEOUT_S", 1.0)
    with caplog.at_level(logging.WARNING, logger="poptune"):
        grid, _, _ = _run(tmp_path, "dask", {"cpu": 1, "gpu": 2}, n=1, sleep=0.0,
                          time_budget_s=3)
    assert len(grid) == 0
    warned = [r.getMessage() for r in caplog.records if "autoscaling" in r.getMessage()]
    assert warned and "no single node of the Dask cluster offers. You asked for {'cpu': 1.0, " \
        "'gpu': 2.0} per trial, but the Dask cluster only has 6 CPUs and 2 GPUs on 2 " \
        "node(s), the largest (127.0.0." in warned[0], warned
    assert ": 3 CPUs, 1 GPUs)" in warned[0]


@pytest.fixture(scope="module")
def dask_two_gpu_workers(tmp_path_factory):
    """One machine to Dask: two worker processes of one thread and ``GPU=1`` each on
    127.0.0.1 (``dask worker --nworkers 2 --resources GPU=1``)."""
    pytest.importorskip("distributed",
                        reason="the Dask backend needs `pip install 'poptune[dask]'`")
    with DaskCluster(tmp_path_factory.mktemp("dask_gpu")) as cluster:
        cluster._start(["worker", cluster.address, "--host", "127.0.0.1", "--nthreads", "1",
                        "--nworkers", "2", "--resources", "GPU=1"], "workers.log")
        cluster.wait_for_workers(2)
        yield cluster.address


class _StopWhenWarned(NoopStopper):
    """Ends the run once the controller warned that trials wait for resources (among
    ``records``, pytest's captured log records)."""

    def __init__(self, records: list[logging.LogRecord]) -> None:
        self.records = records

    def stop_all(self) -> bool:
        return any("autoscaling" in r.getMessage() for r in self.records)


@pytest.mark.slow
def test_a_dask_trial_asking_for_more_gpus_than_one_worker_has_waits_while_others_run(
        dask_two_gpu_workers, tmp_path, monkeypatch, caplog):
    """A machine with two Dask workers of one GPU: 2 GPUs in all, but a Dask task runs on
    one worker, so a task asking for 2 never starts. It used to: the pool counted the
    machine's 2 GPUs, started the trial first and held both, its task never ran and the
    1-GPU trials waited behind it for ever. Now it waits unstarted, with the warning
    naming the largest worker, while trials of 1 GPU run two at a time. No GPU is used:
    ``GPU`` is only a label Dask counts (poptune leaves ``CUDA_VISIBLE_DEVICES`` as the Dask
    worker has it). The stopper ends the run once warned (the time budget only guards a
    regression from hanging)."""
    monkeypatch.setenv("POPTUNE_ADDRESS", dask_two_gpu_workers)
    monkeypatch.setenv("TUNE_WARN_INSUFFICENT_RESOURCE_THRESHOLD_S_AUTOSCALER", "1")
    with caplog.at_level(logging.WARNING, logger="poptune"):
        grid, most, marks = _run(
            tmp_path, "dask", lambda config: {"cpu": 1, "gpu": 2 if config["i"] == 0 else 1},
            n=5, sleep=1.5, stop=_StopWhenWarned(caplog.records), time_budget_s=90)
    assert not grid.errors and sorted(r.config["i"] for r in grid) == [1, 2, 3, 4]
    assert most.most == 2 and _most_at_once(marks) == 2
    warned = [r.getMessage() for r in caplog.records if "autoscaling" in r.getMessage()]
    assert warned and "1 trial(s) wait for resources no single node of the Dask cluster " \
        "offers. You asked for {'cpu': 1.0, 'gpu': 2.0} per trial, but the Dask cluster only " \
        "has 2 CPUs and 2 GPUs on 1 node(s), the largest (127.0.0.1: 2 CPUs, 2 GPUs, but a " \
        "Dask task runs on one worker and its largest has 1 GPUs)." in warned[0], warned
