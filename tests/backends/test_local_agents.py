"""The local backend's agents: one that dies while idle is replaced without charging a trial;
trials whose results go unanswered see a stop sent unasked at their next result."""

from __future__ import annotations

import os
import pickle
import signal
import time

import cloudpickle
import pytest

from poptune.backends._base import (
    DoneEvent,
    ErrorEvent,
    LaunchSpec,
    ResultEvent,
    StoppedEvent,
    WorkerLostEvent,
)
from poptune.backends.local import LocalBackend


def _report_once(config):
    import poptune as tune

    tune.report({"x": config["x"]})


def _report_until_stopped(config):
    import os
    import time

    import poptune as tune

    for i in range(config["n"]):
        tune.report({"i": i})
        if config.get("mark"):  # report() has returned: a stop sent now is seen at the next one
            with open(config["mark"] + ".tmp", "w") as f:
                f.write(str(i))
            os.replace(config["mark"] + ".tmp", config["mark"])
        time.sleep(config["sleep"])


def _spec(tmp_path, i: int, answered: bool = True, **config) -> LaunchSpec:
    return LaunchSpec(trial_id=f"t{i}", trial_name=f"t{i}", trial_dir=str(tmp_path / f"t{i}"),
                      experiment_name="e", experiment_dir=str(tmp_path),
                      config_blob=pickle.dumps({"x": i, **config}), resources={"cpu": 1.0},
                      chdir=False, answered=answered)


def _wait_for_mark(mark, i: int) -> None:
    """Wait until the trial's ``report()`` of iteration ``i`` has returned."""
    deadline = time.monotonic() + 30
    while not (mark.exists() and int(mark.read_text()) >= i):
        assert time.monotonic() < deadline, f"report() of iteration {i} never returned"
        time.sleep(0.002)


def _until_end(backend: LocalBackend, on_result=lambda ev: None) -> list:
    events: list = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for ev in backend.poll(0.5):
            events.append(ev)
            if isinstance(ev, ResultEvent):
                on_result(ev)
            if isinstance(ev, (DoneEvent, StoppedEvent, WorkerLostEvent, ErrorEvent)):
                return events
    raise AssertionError(f"no trial ended: {events}")


def _run(backend: LocalBackend, spec: LaunchSpec) -> list:
    backend.launch(spec)
    return _until_end(backend, lambda ev: backend.reply(ev.trial_id, "continue"))


def test_an_agent_killed_while_idle_is_replaced_and_no_trial_is_charged(tmp_path):
    backend = LocalBackend(num_cpus=1)
    try:
        backend.setup({"trainable": cloudpickle.dumps(_report_once),
                       "constants": cloudpickle.dumps([])}, 1)
        assert isinstance(_run(backend, _spec(tmp_path, 0))[-1], DoneEvent)
        (worker,) = backend._workers
        pid = worker.agent.proc.pid  # type: ignore[attr-defined]
        os.kill(pid, signal.SIGKILL)
        worker.agent.proc.wait(timeout=10)  # type: ignore[attr-defined]
        # just idle: its life is not checked before the launch; the send finds it dead
        events = _run(backend, _spec(tmp_path, 1))
        assert isinstance(events[-1], DoneEvent), events
        assert not any(isinstance(e, WorkerLostEvent) for e in events)
        assert backend._workers[0].agent.proc.pid != pid  # type: ignore[attr-defined]
    finally:
        backend.shutdown()


def test_an_unanswered_trial_runs_on_and_stops_at_its_next_result_when_told(tmp_path):
    backend = LocalBackend(num_cpus=1)
    try:
        backend.setup({"trainable": cloudpickle.dumps(_report_until_stopped),
                       "constants": cloudpickle.dumps([])}, 1)
        # nobody answers: all five results arrive and the trial ends
        backend.launch(_spec(tmp_path, 0, answered=False, n=5, sleep=0.0))
        events = _until_end(backend)
        assert [e.result["i"] for e in events if isinstance(e, ResultEvent)] == [0, 1, 2, 3, 4]
        assert isinstance(events[-1], DoneEvent)
        # a stop sent unasked (after the third result) is seen at the next result
        # (sent once the third report() has returned, so it cannot be seen at the third)
        mark1 = tmp_path / "t1.reported"
        backend.launch(_spec(tmp_path, 1, answered=False, n=1000, sleep=0.01, mark=str(mark1)))
        seen: list[int] = []

        def stop_after_three(ev):
            seen.append(ev.result["i"])
            if len(seen) == 3:
                _wait_for_mark(mark1, 2)
                backend.reply(ev.trial_id, "stop")

        events = _until_end(backend, stop_after_three)
        assert isinstance(events[-1], StoppedEvent), events[-3:]
        assert seen == list(range(len(seen))) and 4 <= len(seen) < 1000
        # a stop that arrives after the trial returned is not taken by the next trial; it
        # is sent once the trial's one report() has returned (its mark file), so it cannot
        # be seen at that result
        mark = tmp_path / "t2.reported"

        def stop_once_reported(ev):
            _wait_for_mark(mark, 0)
            backend.reply(ev.trial_id, "stop")

        backend.launch(_spec(tmp_path, 2, answered=False, n=1, sleep=0.5, mark=str(mark)))
        events = _until_end(backend, stop_once_reported)
        assert isinstance(events[-1], DoneEvent)  # it reported once and returned
        backend.launch(_spec(tmp_path, 3, answered=False, n=3, sleep=0.0))
        events = _until_end(backend)
        assert [e.result["i"] for e in events if isinstance(e, ResultEvent)] == [0, 1, 2]
        assert isinstance(events[-1], DoneEvent)
        assert len(backend._workers) == 1  # one worker served them all
    finally:
        backend.shutdown()


def test_a_buffered_connection_tells_whether_a_message_waits():
    from multiprocessing import Pipe

    from poptune.backends._conn import BufferedConnection

    a, b = Pipe()
    reader = BufferedConnection(a)
    try:
        assert not reader.poll()
        b.send("stop")
        b.send(("start", 1))
        assert reader.poll() and reader.recv() == "stop"
        assert reader.poll()  # the second message is buffered already: no system call needed
        assert reader.recv() == ("start", 1) and not reader.poll(0.01)
        b.close()
        assert reader.poll()  # a closed connection is readable: recv() then raises EOFError
    finally:
        reader.close()


@pytest.mark.parametrize("size", [0, 1, 16384, 16385, 3 * 65536])
def test_a_buffered_connection_sends_in_multiprocessings_framing(size):
    """What its one-write send puts on the wire is what ``multiprocessing`` reads, for messages
    around the size where the body goes in a write of its own; a message bigger than the
    socket buffer arrives whole too (read while it is written)."""
    import threading
    from multiprocessing import Pipe

    from poptune.backends._conn import BufferedConnection

    a, b = Pipe()
    writer = BufferedConnection(a)
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.extend(b.recv_bytes() for _ in range(2)))
    reader.start()
    try:
        writer.send_bytes(payload)
        writer.send({"after": size})
        reader.join(timeout=30)
        assert got[0] == payload
        assert pickle.loads(got[1]) == {"after": size}
    finally:
        writer.close()
        b.close()
    with pytest.raises(OSError, match="closed"):  # never written to a reused descriptor
        writer.send_bytes(b"late")


def test_a_worker_whose_driver_goes_away_mid_trial_exits_quietly(tmp_path, capsys):
    """The driver's end of the connection closes (Ctrl-C, a killed driver) while a trial
    waits for the answer to its result: the worker exits with code 0 and prints no traceback
    (the trial's failure cannot be reported to anyone)."""
    backend = LocalBackend(num_cpus=1)
    try:
        backend.setup({"trainable": cloudpickle.dumps(_report_until_stopped),
                       "constants": cloudpickle.dumps([])}, 1)
        backend.launch(_spec(tmp_path, 0, n=1000, sleep=0.0))
        deadline = time.monotonic() + 60
        while not any(isinstance(e, ResultEvent) for e in backend.poll(0.5)):
            assert time.monotonic() < deadline, "no result"
        (worker,) = backend._workers
        proc = worker.agent.proc  # type: ignore[attr-defined]
        worker.conn.close()  # unanswered: the trial waits, then finds the driver gone
        assert proc.wait(timeout=30) == 0
    finally:
        backend.shutdown()  # the relay writes what the worker printed before returning
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out


class _FirstAgentKilled(LocalBackend):
    """Its first worker is killed (SIGKILL) before it can connect, as an OOM kill would."""

    killed = 0

    def _start_agent(self, agent_id, resources):
        agent = super()._start_agent(agent_id, resources)
        if not self.killed:
            self.killed += 1
            agent.proc.kill()  # type: ignore[attr-defined]
            agent.proc.wait(timeout=10)  # type: ignore[attr-defined]
        return agent


def test_a_worker_killed_while_it_starts_is_replaced_and_the_trial_runs(tmp_path, caplog):
    backend = _FirstAgentKilled(num_cpus=1)
    try:
        backend.setup({"trainable": cloudpickle.dumps(_report_once),
                       "constants": cloudpickle.dumps([])}, 1)
        events = _run(backend, _spec(tmp_path, 0))
        assert isinstance(events[-1], DoneEvent), events
        assert backend.killed == 1
        assert "killed while it started" in caplog.text
    finally:
        backend.shutdown()


class _CannotStart(LocalBackend):
    """Every worker fails on its own (exit code 1), as with an import error."""

    def _start_agent(self, agent_id, resources):
        import subprocess
        import sys

        from poptune.backends.local import _ProcessAgent

        return _ProcessAgent(subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"]))


def test_a_worker_that_fails_to_start_on_its_own_ends_the_run(tmp_path):
    from poptune.exceptions import TuneError

    _launch_until_raises(_CannotStart(num_cpus=1), tmp_path, TuneError,
                         "failed to start .*exited with code 1")


def _launch_until_raises(backend, tmp_path, error, match):
    """Launch a trial and poll until the backend raises ``error`` matching ``match``."""
    try:
        backend.setup({"trainable": cloudpickle.dumps(_report_once),
                       "constants": cloudpickle.dumps([])}, 1)
        backend.launch(_spec(tmp_path, 0))
        with pytest.raises(error, match=match):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                backend.poll(0.2)
    finally:
        backend.shutdown()


class _NeverStarts(LocalBackend):
    """A worker process that never connects to the driver (a start that hangs)."""

    def _start_agent(self, agent_id, resources):
        import subprocess
        import sys

        from poptune.backends.local import _ProcessAgent

        return _ProcessAgent(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))


def test_a_worker_that_never_starts_names_the_resources_it_waited_for(tmp_path, monkeypatch):
    """A local worker that never connects ends the run after ``START_TIMEOUT_S``, naming what
    its trials asked for (a probe's run ended with "failed to start (timed out)", naming no
    cause). A cluster's agent is waited for instead: tests/backends/test_cluster_nodes.py."""
    from poptune.backends import _conn
    from poptune.exceptions import TuneError

    monkeypatch.setattr(_conn, "START_TIMEOUT_S", 0.5)
    _launch_until_raises(_NeverStarts(num_cpus=2), tmp_path, TuneError,
                         r"asking for \{'cpu': 1.0\} did not start within 0.5 s: its process "
                         r"did not connect to the driver")


def test_a_trial_whose_setup_fails_errors_with_its_traceback_and_the_worker_serves_on(tmp_path):
    """A probe: a trial directory a node could not make (a read-only path) lost the worker
    (``WorkerLostError``, the cause cut off on Ray). Setting a trial up is now part of the
    trial: its error names the cause, and the same worker runs the next trial."""
    blocker = tmp_path / "a_file"
    blocker.write_text("")  # a trial directory under a file cannot be made
    backend = LocalBackend(num_cpus=1)
    try:
        backend.setup({"trainable": cloudpickle.dumps(_report_once),
                       "constants": cloudpickle.dumps([])}, 1)
        bad = LaunchSpec(trial_id="bad", trial_name="bad", trial_dir=str(blocker / "t"),
                         experiment_name="e", experiment_dir=str(tmp_path),
                         config_blob=pickle.dumps({"x": 0}), resources={"cpu": 1.0},
                         chdir=False)
        events = _run(backend, bad)
        assert isinstance(events[-1], ErrorEvent), events
        assert "NotADirectoryError" in events[-1].traceback, events[-1].traceback
        (worker,) = backend._workers
        pid = worker.agent.proc.pid  # type: ignore[attr-defined]
        assert isinstance(_run(backend, _spec(tmp_path, 1))[-1], DoneEvent)
        assert [w.agent.proc.pid for w in backend._workers] == [pid]  # type: ignore[attr-defined]
    finally:
        backend.shutdown()
