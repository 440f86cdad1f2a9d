"""Launch ahead with real worker processes: a worker gets its next trial while it runs one
and starts it when that one returns. Every trial runs once, failures and stops included.

The driver runs in this process, so the controller's hand-overs are counted by wrapping
``Controller._hand_over``; each trial appends a line to a side file when it starts (one file
per trial: appends from two processes never mix).
"""

from __future__ import annotations

import os
import pickle
import re
import time

import cloudpickle
import pytest

import poptune as tune
from poptune.backends._base import DoneEvent, LaunchSpec, ResultEvent
from poptune.backends.local import LocalBackend
from poptune.engine.controller import Controller


def _trial(config):
    import os
    import time

    import poptune as tune

    with open(os.path.join(config["log"], tune.get_context().get_trial_id()), "a") as f:
        f.write(f"{os.getpid()}\n")
    if config["sleep"]:
        time.sleep(config["sleep"])
    if config["x"] in config["fail"]:
        raise ValueError(f"trial {config['x']} fails")
    tune.report({"score": config["x"]})


@pytest.fixture
def hand_overs(monkeypatch):
    counts = {"started": 0, "not started": 0}
    real = Controller._hand_over

    def counting(self, trial, started, out):
        counts["started" if started else "not started"] += 1
        return real(self, trial, started, out)

    monkeypatch.setattr(Controller, "_hand_over", counting)
    return counts


def _tid(result):
    """The trial id in a result's directory name (an errored trial has no metrics)."""
    return re.search(r"_([0-9a-f]+_\d{5})_", os.path.basename(result.path)).group(1)


def _fit(tmp_path, n, *, fail=(), sleep=0.0, max_failures=0, **tune_config):
    log = tmp_path / "starts"
    log.mkdir()
    tuner = tune.Tuner(
        _trial,
        param_space={"x": tune.grid_search(list(range(n))), "log": str(log),
                     "fail": list(fail), "sleep": sleep},
        tune_config=tune.TuneConfig(max_concurrent_trials=2, **tune_config),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "results"), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=max_failures)),
    )
    grid = tuner.fit()
    starts = {name: (log / name).read_text().split() for name in os.listdir(log)}
    return grid, starts


def test_every_trial_runs_once_and_most_start_without_waiting_for_the_driver(
        tmp_path, hand_overs):
    grid, starts = _fit(tmp_path, 60)
    assert len(grid) == 60 and not grid.errors
    assert sorted(r.metrics["score"] for r in grid) == list(range(60))
    assert all(len(pids) == 1 for pids in starts.values()) and len(starts) == 60
    assert all(len(r.metrics_dataframe) == 1 for r in grid)
    # the two workers ran everything, and trials were handed over on them
    assert len({pid for pids in starts.values() for pid in pids}) == 2
    assert hand_overs["started"] > 0


def test_a_failing_trial_drops_the_one_sent_after_it_which_still_runs_once(
        tmp_path, hand_overs):
    grid, starts = _fit(tmp_path, 30, fail={3, 4, 11, 20}, sleep=0.01)
    by_x = {r.config["x"]: r for r in grid}
    assert len(by_x) == 30
    assert {x for x, r in by_x.items() if r.error is not None} == {3, 4, 11, 20}
    assert all(len(by_x[x].metrics_dataframe) == 1 for x in by_x if x not in {3, 4, 11, 20})
    assert all(len(pids) == 1 for pids in starts.values()) and len(starts) == 30
    # (which trial was sent ahead after a failing one depends on timing: the decisions are
    # checked one by one in tests/engine/test_launch_ahead.py)
    assert hand_overs["started"] > 0


def test_a_retried_trial_runs_again_and_every_other_once(tmp_path, hand_overs):
    grid, starts = _fit(tmp_path, 8, fail={0}, max_failures=1, sleep=0.01)
    runs = {r.config["x"]: len(starts[_tid(r)]) for r in grid}
    assert runs == {0: 2, **{x: 1 for x in range(1, 8)}}
    assert [r.config["x"] for r in grid if r.error is not None] == [0]


def test_a_time_budget_stops_or_drops_the_trials_sent_ahead(tmp_path, hand_overs):
    grid, starts = _fit(tmp_path, 400, sleep=0.02, time_budget_s=1.0)
    assert 0 < len(grid) < 400 and not grid.errors
    # every trial that started is in the experiment, once; one that never started is not
    assert set(starts) == {_tid(r) for r in grid}
    assert all(len(pids) == 1 for pids in starts.values())


def test_off_with_the_environment_variable(tmp_path, hand_overs, monkeypatch):
    monkeypatch.setenv("POPTUNE_LAUNCH_AHEAD", "0")
    grid, starts = _fit(tmp_path, 20)
    assert len(grid) == 20 and not grid.errors
    assert hand_overs == {"started": 0, "not started": 0}


# -- the backend's protocol, driven directly ----------------------------------------------

def _sleep_then_report(config):
    import time

    import poptune as tune

    if config.get("started"):
        open(config["started"], "w").close()
    if config.get("wait_for"):  # hold until the test says go (a file appears)
        deadline = time.monotonic() + 30
        while not os.path.exists(config["wait_for"]) and time.monotonic() < deadline:
            time.sleep(0.005)
    tune.report({"x": config["x"]})


def _spec(tmp_path, i, **config):
    return LaunchSpec(trial_id=f"t{i}", trial_name=f"t{i}", trial_dir=str(tmp_path / f"t{i}"),
                      experiment_name="e", experiment_dir=str(tmp_path),
                      config_blob=pickle.dumps({"x": i, **config}), resources={"cpu": 1.0},
                      chdir=False, answered=False)


def _events_until(backend, done_ids, timeout=30.0):
    events, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        events += backend.poll(0.2)
        if done_ids <= {e.trial_id for e in events if isinstance(e, DoneEvent)}:
            return events
    raise AssertionError(f"no end of {done_ids}: {events}")


def _start_held(backend, tmp_path):
    """Launch t0, which runs until the file ``go`` appears; return once it runs."""
    go, started = tmp_path / "go", tmp_path / "t0-started"
    backend.launch(_spec(tmp_path, 0, wait_for=str(go), started=str(started)))
    deadline = time.monotonic() + 30
    while not started.exists():
        assert time.monotonic() < deadline, "t0 never started"
        assert backend.poll(0.02) == []
    return go


@pytest.fixture
def backend():
    b = LocalBackend(num_cpus=1)
    b.setup({"trainable": cloudpickle.dumps(_sleep_then_report),
             "constants": cloudpickle.dumps([])}, 1)
    yield b
    b.shutdown()


def test_a_trial_taken_back_from_a_busy_worker_never_runs_there(tmp_path, backend):
    go = _start_held(backend, tmp_path)
    backend.launch_after(_spec(tmp_path, 1), "t0")
    assert backend.take_back("t1") is True  # t0 still runs: the slot still held t1
    go.write_text("")
    events = _events_until(backend, {"t0"})
    done = [e for e in events if isinstance(e, DoneEvent)]
    assert done == [DoneEvent("t0")]  # continued with none
    assert not [e for e in events + backend.poll(0.3) if isinstance(e, ResultEvent)
                and e.trial_id == "t1"]
    assert not (tmp_path / "t1").exists()  # its worker never touched it


def test_a_trial_claimed_by_its_worker_cannot_be_taken_back_and_runs(tmp_path, backend):
    go = _start_held(backend, tmp_path)
    go1 = tmp_path / "go1"  # t1 holds too: it still runs when it is asked back
    backend.launch_after(_spec(tmp_path, 1, wait_for=str(go1)), "t0")
    go.write_text("")
    events = _events_until(backend, {"t0"})
    assert DoneEvent("t0", continued="t1") in events  # the worker claimed it at t0's end
    assert backend.take_back("t1") is False
    go1.write_text("")
    events += _events_until(backend, {"t1"})
    assert [e.result["x"] for e in events if isinstance(e, ResultEvent)] == [0, 1]
