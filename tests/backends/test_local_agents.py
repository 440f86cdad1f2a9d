"""The local backend's agents: one that dies while idle is replaced without charging a trial."""

from __future__ import annotations

import os
import pickle
import signal
import time

import cloudpickle

from poptune.backends._base import DoneEvent, LaunchSpec, WorkerLostEvent
from poptune.backends.local import LocalBackend


def _report_once(config):
    import poptune as tune

    tune.report({"x": config["x"]})


def _spec(tmp_path, i: int) -> LaunchSpec:
    return LaunchSpec(trial_id=f"t{i}", trial_name=f"t{i}", trial_dir=str(tmp_path / f"t{i}"),
                      experiment_name="e", experiment_dir=str(tmp_path),
                      config_blob=pickle.dumps({"x": i}), resources={"cpu": 1.0}, chdir=False)


def _run(backend: LocalBackend, spec: LaunchSpec) -> list:
    backend.launch(spec)
    events: list = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for ev in backend.poll(0.5):
            events.append(ev)
            if type(ev).__name__ == "ResultEvent":
                backend.reply(ev.trial_id, "continue")
            if isinstance(ev, (DoneEvent, WorkerLostEvent)):
                return events
    raise AssertionError(f"trial {spec.trial_id} did not end: {events}")


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
