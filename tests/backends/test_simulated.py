"""The simulated backend: trials in the driver process, on simulated time.

Driven directly (launch / poll / reply / kill, as the runner does) and through
``Tuner.fit`` with ``backend="simulated"``. No test reads the wall clock.
"""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
import re
import tempfile
import threading
from typing import Any, Callable

import cloudpickle
import pytest

import poptune as tune
from poptune import simulation
from poptune.backends import get_backend
from poptune.backends._base import (
    DoneEvent,
    ErrorEvent,
    Event,
    LaunchSpec,
    ResultEvent,
    SavedEvent,
    StoppedEvent,
)
from poptune.backends.simulated import SimulatedBackend
from poptune.clock import SimulatedClock
from poptune.exceptions import TuneConfigError, TuneError
from poptune.schedulers import ASHAScheduler, PopulationBasedTraining

# -- trainables ---------------------------------------------------------------------------------


def stepper(config: dict[str, Any]) -> None:
    """``steps`` steps of ``s`` simulated seconds each; reports its step and trial id."""
    for step in range(1, config.get("steps", 3) + 1):
        simulation.advance(config["s"])
        tune.report({"step": step, "trial": tune.get_context().get_trial_id()})


def undeclared(config: dict[str, Any]) -> None:
    for step in range(1, 4):
        tune.report({"step": step})


def raiser(config: dict[str, Any]) -> None:
    simulation.advance(2.0)
    tune.report({"step": 1})
    raise ValueError("boom at step 2")


def checkpointing(config: dict[str, Any]) -> None:
    """Counts from its checkpoint (if any) to ``steps``, checkpointing every step."""
    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            with open(os.path.join(d, "step")) as f:
                start = int(f.read())
    for step in range(start + 1, config.get("steps", 5) + 1):
        simulation.advance(config.get("step_s", 1.0))
        d = tempfile.mkdtemp()
        with open(os.path.join(d, "step"), "w") as f:
            f.write(str(step))
        extra = {"timestamp": config["stamp"]} if "stamp" in config else {}
        tune.report({"step": step, "restored": ckpt is not None, **extra},
                    checkpoint=tune.Checkpoint.from_directory(d))


class Counter(tune.Trainable):
    def setup(self, config: dict[str, Any]) -> None:
        self.x = 0

    def step(self) -> dict[str, Any]:
        simulation.advance(2.0)
        self.x += 1
        return {"x": self.x}

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:
        return {"x": self.x}

    def load_checkpoint(self, checkpoint: Any) -> None:
        self.x = checkpoint["x"]


# -- driving the backend by hand ------------------------------------------------------------------


def backend_for(trainable: Any, **kw: Any) -> SimulatedBackend:
    backend = SimulatedBackend(**kw)
    backend.setup({"trainable": cloudpickle.dumps(trainable),
                   "constants": cloudpickle.dumps([])}, 2)
    return backend


def spec(tmp_path: Any, trial_id: str, config: dict[str, Any], **kw: Any) -> LaunchSpec:
    return LaunchSpec(trial_id=trial_id, trial_name=trial_id,
                      trial_dir=str(tmp_path / trial_id), experiment_name="exp",
                      experiment_dir=str(tmp_path), config_blob=cloudpickle.dumps(config),
                      resources={"cpu": 1.0}, **kw)


def drive(backend: SimulatedBackend,
          answer: Callable[[ResultEvent], str] = lambda e: "continue",
          ) -> list[tuple[float, Event]]:
    """Poll until nothing runs; answer each result (and a requested save with continue)."""
    seen: list[tuple[float, Event]] = []
    saving: set[str] = set()
    for _ in range(10_000):
        events = backend.poll(math.inf)
        if not events:
            return seen
        for event in events:
            seen.append((backend.clock.monotonic(), event))
            if isinstance(event, ResultEvent):
                decision = answer(event)
                if decision == "save":
                    saving.add(event.trial_id)
                backend.reply(event.trial_id, decision)
            elif isinstance(event, SavedEvent) and event.trial_id in saving:
                saving.discard(event.trial_id)
                backend.reply(event.trial_id, "continue")
    raise AssertionError("the backend never went quiet")


def sim_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("poptune-sim-")]


def results(seen: list[tuple[float, Event]]) -> list[tuple[float, str, int]]:
    return [(t, e.trial_id, e.result["training_iteration"]) for t, e in seen
            if isinstance(e, ResultEvent)]


# -- order and time -------------------------------------------------------------------------------


def test_results_arrive_in_simulated_time_order_across_two_slots(tmp_path):
    backend = backend_for(stepper)
    backend.launch(spec(tmp_path, "slow", {"s": 3.0}))
    backend.launch(spec(tmp_path, "fast", {"s": 1.0}))
    seen = drive(backend)
    assert results(seen) == [
        (1.0, "fast", 1), (2.0, "fast", 2),
        (3.0, "slow", 1), (3.0, "fast", 3),  # a tie goes to the wake-up made first
        (6.0, "slow", 2), (9.0, "slow", 3),
    ]
    assert [(t, e.trial_id) for t, e in seen if isinstance(e, DoneEvent)] == [
        (3.0, "fast"), (9.0, "slow")]
    assert not sim_threads()


def test_automatic_time_keys_are_simulated_seconds(tmp_path):
    backend = backend_for(stepper, start=1000.0)
    backend.launch(spec(tmp_path, "t", {"s": 2.5}))
    rows = [e.result for _, e in drive(backend) if isinstance(e, ResultEvent)]
    assert [r["time_this_iter_s"] for r in rows] == [2.5, 2.5, 2.5]
    assert [r["time_total_s"] for r in rows] == [2.5, 5.0, 7.5]
    assert [r["time_since_restore"] for r in rows] == [2.5, 5.0, 7.5]
    assert [r["timestamp"] for r in rows] == [1002, 1005, 1007]
    assert rows[0]["trial"] == "t" and rows[0]["pid"] == os.getpid()


def test_a_step_that_declares_no_duration_takes_step_time(tmp_path):
    backend = backend_for(undeclared, step_time=0.5)
    backend.launch(spec(tmp_path, "t", {}))
    assert [t for t, _, _ in results(drive(backend))] == [0.5, 1.0, 1.5]


def test_poll_moves_the_clock_by_at_most_timeout(tmp_path):
    backend = backend_for(stepper)
    backend.launch(spec(tmp_path, "t", {"s": 10.0, "steps": 1}))
    assert backend.poll(4.0) == [] and backend.clock.monotonic() == 4.0
    assert backend.poll(4.0) == [] and backend.clock.monotonic() == 8.0
    events = backend.poll(4.0)
    assert [type(e) for e in events] == [ResultEvent]
    assert backend.clock.monotonic() == 10.0
    backend.shutdown()


def test_poll_returns_at_once_when_nothing_can_run(tmp_path):
    backend = backend_for(stepper)
    assert backend.poll(100.0) == [] and backend.clock.monotonic() == 0.0
    backend.launch(spec(tmp_path, "t", {"s": 1.0}))
    assert len(backend.poll(math.inf)) == 1  # the first result, waiting for a reply
    assert backend.poll(100.0) == []  # nothing runs until the runner answers
    assert backend.clock.monotonic() == 1.0
    backend.shutdown()
    assert not sim_threads()


# -- replies, errors, kills -----------------------------------------------------------------------


def test_a_trial_that_raises_gives_an_error_event_with_its_traceback(tmp_path):
    backend = backend_for(raiser)
    backend.launch(spec(tmp_path, "t", {}))
    seen = drive(backend)
    assert [type(e) for _, e in seen] == [ResultEvent, ErrorEvent]
    t, error = seen[-1]
    assert t == 2.0
    assert isinstance(error, ErrorEvent)
    assert "ValueError: boom at step 2" in error.traceback
    assert "in raiser" in error.traceback
    assert error.exception is not None
    exc = pickle.loads(error.exception)
    assert isinstance(exc, ValueError) and str(exc) == "boom at step 2"


def test_stop_reply_ends_the_trial_with_a_stopped_event(tmp_path):
    backend = backend_for(stepper)
    backend.launch(spec(tmp_path, "t", {"s": 1.0, "steps": 10}))
    seen = drive(backend, lambda e: "stop" if e.result["step"] == 2 else "continue")
    assert [type(e) for _, e in seen] == [ResultEvent, ResultEvent, StoppedEvent]
    assert not sim_threads()


def test_pause_then_resume_restores_the_checkpoint(tmp_path):
    backend = backend_for(checkpointing)
    backend.launch(spec(tmp_path, "t", {"steps": 5}))
    seen = drive(backend, lambda e: "pause" if e.result["step"] == 2 else "continue")
    assert [type(e) for _, e in seen] == [ResultEvent, ResultEvent, StoppedEvent]
    last = [e for _, e in seen if isinstance(e, ResultEvent)][-1].result
    assert last["checkpoint_dir_name"] == "checkpoint_000001"
    ckpt = tmp_path / "t" / "checkpoint_000001"
    assert (ckpt / "step").read_text() == "2"
    backend.launch(spec(tmp_path, "t", {"steps": 5}, restore_path=str(ckpt),
                        start_iteration=2, time_total_offset=last["time_total_s"],
                        next_checkpoint_index=2))
    rows = [e.result for _, e in drive(backend) if isinstance(e, ResultEvent)]
    assert [r["step"] for r in rows] == [3, 4, 5]
    assert all(r["restored"] for r in rows)
    assert [r["training_iteration"] for r in rows] == [3, 4, 5]
    assert [r["iterations_since_restore"] for r in rows] == [1, 2, 3]
    assert [r["checkpoint_dir_name"] for r in rows] == [
        "checkpoint_000002", "checkpoint_000003", "checkpoint_000004"]
    assert [r["time_total_s"] for r in rows] == [3.0, 4.0, 5.0]


def test_class_trainable_saves_on_request_and_on_pause_and_restores(tmp_path):
    backend = backend_for(Counter)
    backend.launch(spec(tmp_path, "t", {}))
    seen = drive(backend, lambda e: {1: "save", 2: "pause"}.get(e.result["x"], "continue"))
    assert [(type(e).__name__, getattr(e, "checkpoint_dir_name", None)) for _, e in seen] == [
        ("ResultEvent", None), ("SavedEvent", "checkpoint_000000"),
        ("ResultEvent", None), ("SavedEvent", "checkpoint_000001"), ("StoppedEvent", None)]
    assert [t for t, _ in seen] == [2.0, 2.0, 4.0, 4.0, 4.0]
    ckpt = tmp_path / "t" / "checkpoint_000001"
    assert ckpt.is_dir()
    # the counters come with the launch (the engine's: its checkpoint's result), as in Ray
    backend.launch(spec(tmp_path, "t", {}, restore_path=str(ckpt), start_iteration=2,
                        next_checkpoint_index=2))
    seen = drive(backend, lambda e: "stop" if e.result["x"] == 4 else "continue")
    rows = [e.result for _, e in seen if isinstance(e, ResultEvent)]
    assert [(r["x"], r["training_iteration"]) for r in rows] == [(3, 3), (4, 4)]


def test_kill_ends_a_trial_at_once_without_events(tmp_path):
    backend = backend_for(stepper)
    backend.launch(spec(tmp_path, "sleeper", {"s": 100.0}))
    backend.launch(spec(tmp_path, "waiter", {"s": 1.0}))
    first = backend.poll(math.inf)
    assert [e.trial_id for e in first] == ["waiter"]
    backend.kill("waiter")  # blocked waiting for a reply
    backend.kill("sleeper")  # blocked in advance(100)
    backend.reply("waiter", "continue")  # a late reply to a killed trial is ignored
    assert backend.poll(math.inf) == []
    assert not sim_threads()


def test_shutdown_ends_every_trial(tmp_path):
    backend = backend_for(stepper)
    for i in range(3):
        backend.launch(spec(tmp_path, f"t{i}", {"s": 1.0 + i, "steps": 100}))
    backend.poll(math.inf)
    backend.shutdown()
    assert not sim_threads()
    assert backend.poll(math.inf) == []


def test_each_trial_has_its_own_session_and_the_driver_none(tmp_path):
    backend = backend_for(stepper)
    backend.launch(spec(tmp_path, "a", {"s": 1.0}))
    backend.launch(spec(tmp_path, "b", {"s": 1.0}))
    rows = [e.result for _, e in drive(backend) if isinstance(e, ResultEvent)]
    assert {(r["trial_id"], r["trial"]) for r in rows} == {("a", "a"), ("b", "b")}
    assert tune.get_context().get_trial_id() is None  # the driver has no trial (a warning)


def test_simulation_helpers_outside_a_trial():
    simulation.advance(3.0)  # a no-op: the same trainable runs on real workers
    assert not simulation.is_simulated()
    with pytest.raises(TuneConfigError, match="`seconds`"):
        simulation.advance(-1.0)
    with pytest.raises(TuneConfigError, match="`seconds`"):
        simulation.advance(math.nan)


def test_launch_before_setup_and_bad_settings_are_clear_errors(tmp_path):
    with pytest.raises(TuneError, match="setup"):
        SimulatedBackend().launch(spec(tmp_path, "t", {}))
    with pytest.raises(TuneConfigError, match="`num_cpus`"):
        SimulatedBackend(num_cpus=0)
    with pytest.raises(TuneConfigError, match="`step_time`"):
        SimulatedBackend(step_time=-1)


def test_backend_by_name_by_env_and_as_an_instance(monkeypatch):
    assert isinstance(get_backend("simulated"), SimulatedBackend)
    monkeypatch.setenv("POPTUNE_BACKEND", "simulated")
    assert isinstance(get_backend(None), SimulatedBackend)
    mine = SimulatedBackend(num_cpus=8)
    assert get_backend(mine) is mine
    assert tune.TuneConfig(backend=mine).backend is mine
    with pytest.raises(TuneConfigError, match="'simulated'"):
        tune.TuneConfig(backend="simulate")
    copy = pickle.loads(pickle.dumps(mine))  # tuner.pkl keeps the TuneConfig
    assert copy.total_resources() == {"cpu": 8.0, "gpu": 0.0}
    assert isinstance(copy.clock, SimulatedClock)


def test_the_machine_size_comes_from_the_same_variables_as_the_local_backend(monkeypatch, tmp_path):
    monkeypatch.setenv("POPTUNE_NUM_CPUS", "4")
    monkeypatch.setenv("POPTUNE_NUM_GPUS", "1")
    assert SimulatedBackend().total_resources() == {"cpu": 4.0, "gpu": 1.0}
    assert SimulatedBackend(num_gpus=2).total_resources()["gpu"] == 2.0  # an argument wins

    def trainable(config):
        tune.report({"ran": 1})

    # the advice in the "no GPU here" error (set POPTUNE_NUM_GPUS) works on this backend too
    grid = fit(tune.with_resources(trainable, {"cpu": 1, "gpu": 1}), tmp_path, {"x": 1})
    assert grid[0].metrics["ran"] == 1 and grid.num_errors == 0
    monkeypatch.setenv("POPTUNE_NUM_GPUS", "many")
    with pytest.raises(TuneConfigError, match="`POPTUNE_NUM_GPUS`.*'many'"):
        SimulatedBackend()


# -- through Tuner.fit ----------------------------------------------------------------------------


class Recorder(tune.Callback):
    """What the runner saw, in order: (config value, iteration, simulated time, metric)."""

    def __init__(self, key: str, metric: str) -> None:
        self.key, self.metric, self.rows = key, metric, []

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.rows.append((trial.config[self.key], result["training_iteration"],
                          result["time_total_s"], result[self.metric]))


def fit(trainable: Any, tmp_path: Any, param_space: dict[str, Any], name: str = "exp",
        callbacks: list[Any] | None = None, stop: Any = None, **tune_kw: Any) -> Any:
    tune_kw.setdefault("backend", "simulated")
    return tune.Tuner(
        trainable, param_space=param_space, tune_config=tune.TuneConfig(**tune_kw),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0,
                                  callbacks=callbacks, stop=stop),
    ).fit()


def test_fit_delivers_results_in_simulated_time_order(tmp_path):
    rec = Recorder("s", "step")
    grid = fit(stepper, tmp_path, {"s": tune.grid_search([3.0, 1.0])}, callbacks=[rec])
    assert grid.num_errors == 0
    assert [(s, i) for s, i, _, _ in rec.rows] == [
        (1.0, 1), (1.0, 2), (3.0, 1), (1.0, 3), (3.0, 2), (3.0, 3)]
    assert sorted(r.metrics["time_total_s"] for r in grid) == [3.0, 9.0]


def converge(config: dict[str, Any]) -> None:
    """An analytic toy: ``score`` climbs towards 1 at rate ``lr``; a step costs ``cost``
    simulated seconds; checkpoints carry the score (for PBT)."""
    score, step = 0.0, 0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            with open(os.path.join(d, "state.json")) as f:
                score, step = json.load(f)
    while True:
        step += 1
        score += config["lr"] * (1.0 - score)
        simulation.advance(config.get("cost", 1.0))
        d = tempfile.mkdtemp()
        with open(os.path.join(d, "state.json"), "w") as f:
            json.dump([score, step], f)
        tune.report({"score": score}, checkpoint=tune.Checkpoint.from_directory(d))


def _run_asha(tmp_path: Any, name: str) -> tuple[list[Any], list[Any]]:
    rec = Recorder("lr", "score")
    grid = fit(converge, tmp_path / name, {"lr": tune.loguniform(1e-3, 0.5),
                                           "cost": tune.choice([1.0, 2.0, 5.0])},
               callbacks=[rec], metric="score", mode="max", num_samples=8, seed=7,
               scheduler=ASHAScheduler(max_t=27, grace_period=3, reduction_factor=3),
               stop={"training_iteration": 27})
    final = sorted((r.config["lr"], r.metrics["training_iteration"]) for r in grid)
    return rec.rows, final


def test_seeded_asha_runs_are_identical(tmp_path):
    rows1, final1 = _run_asha(tmp_path, "a")
    rows2, final2 = _run_asha(tmp_path, "b")
    assert rows1 == rows2 and final1 == final2
    assert any(it < 27 for _, it in final1), "ASHA stopped no trial early"


def _policy_text(exp_dir: str) -> dict[str, str]:
    """The PBT logs, with trial ids made independent of the run's random prefix."""
    out = {}
    for name in sorted(os.listdir(exp_dir)):
        if name.startswith("pbt_"):
            with open(os.path.join(exp_dir, name)) as f:
                text = f.read()
            key = re.sub(r"[0-9a-f]{5}_(\d{5})", r"X_\1", name)
            out[key] = re.sub(r"[0-9a-f]{5}_(\d{5})", r"X_\1", text)
    return out


def _run_pbt(tmp_path: Any, name: str) -> tuple[list[Any], dict[str, str]]:
    rec = Recorder("lr", "score")
    pbt = PopulationBasedTraining(
        perturbation_interval=4, seed=3,
        hyperparam_mutations={"lr": tune.uniform(0.001, 0.3)})
    grid = fit(converge, tmp_path / name, {"lr": tune.uniform(0.001, 0.3)}, callbacks=[rec],
               metric="score", mode="max", num_samples=6, seed=11, scheduler=pbt,
               stop={"training_iteration": 24})
    assert grid.num_errors == 0
    return rec.rows, _policy_text(grid.experiment_path)


def test_seeded_pbt_runs_are_identical_with_their_policy_logs(tmp_path):
    rows1, logs1 = _run_pbt(tmp_path, "a")
    rows2, logs2 = _run_pbt(tmp_path, "b")
    assert rows1 == rows2
    assert logs1 == logs2
    assert logs1.get("pbt_global.txt"), "no exploit happened"


def forever(config: dict[str, Any]) -> None:
    while True:
        simulation.advance(config["cost"])
        tune.report({"t": simulation.now()})


def test_time_budget_ends_by_simulated_time(tmp_path):
    backend = SimulatedBackend(num_cpus=2)
    grid = fit(forever, tmp_path, {"cost": tune.grid_search([10.0, 7.0])}, backend=backend,
               time_budget_s=3600)
    now = backend.clock.monotonic()
    assert 3600.0 <= now <= 3600.0 + 10.0
    assert all(r.error is None for r in grid)
    assert max(r.metrics["time_total_s"] for r in grid) <= 3610.0
    assert min(r.metrics["time_total_s"] for r in grid) >= 3590.0


def test_trials_still_mid_step_when_the_budget_ends_are_killed_after_the_grace(tmp_path):
    """As on real workers: at the end of ``time_budget_s`` the runner tells running trials to
    stop and kills those that have not stopped 10 (simulated) seconds later, so steps of
    70 s and 55 s that would end at 3640 s and 3630 s never report."""
    backend = SimulatedBackend(num_cpus=2)
    grid = fit(forever, tmp_path, {"cost": tune.grid_search([70.0, 55.0])}, backend=backend,
               time_budget_s=3600)
    assert backend.clock.monotonic() < 3620.0
    assert sorted(r.metrics["time_total_s"] for r in grid) == [3570.0, 3575.0]


def test_fit_restores_the_real_clock_afterwards(tmp_path):
    from poptune.clock import RealClock, current

    fit(stepper, tmp_path, {"s": 1.0})
    assert isinstance(current(), RealClock)


@pytest.mark.slow
def test_the_documented_comparison_prints_what_the_docs_say(tmp_path, monkeypatch, capsys):
    doc = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs",
                            "simulation.md")).read()
    code = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    printed = re.search(r"```text\n(.*?)```", doc, re.S).group(1)
    monkeypatch.setenv("POPTUNE_STORAGE_PATH", str(tmp_path))
    exec(compile(code, "docs/simulation.md", "exec"), {"__name__": "__doc__"})
    assert capsys.readouterr().out == printed


def test_a_restored_simulated_experiment_continues_its_clock(tmp_path):
    """Restore picks up the simulated clock where the journal left it: no result of the
    resumed run is stamped earlier than those before the interruption."""
    from poptune.callbacks import Callback

    class Interrupt(Callback):
        def __init__(self) -> None:
            self.results = 0

        def on_trial_result(self, iteration: int, trials: Any, trial: Any, result: dict,
                            **info: Any) -> None:
            self.results += 1
            if self.results == 9:
                raise KeyboardInterrupt

    space = {"steps": 8, "k": tune.grid_search([1, 2])}
    tuner = tune.Tuner(checkpointing, param_space=space,
                       tune_config=tune.TuneConfig(backend="simulated", max_concurrent_trials=2),
                       run_config=tune.RunConfig(name="exp", storage_path=str(tmp_path),
                                                 verbose=0, callbacks=[Interrupt()]))
    tuner.fit()  # interrupted: poptune, like Ray, returns what it has
    path = str(tmp_path / "exp")
    grid = tune.Tuner.restore(path, checkpointing, resume_unfinished=True).fit()
    assert not grid.errors
    for res in grid:
        rows = res.metrics_dataframe
        resumed = rows[rows["restored"]]
        assert len(resumed) > 0 and len(rows) == 8  # picked up from a checkpoint
        first_resumed = resumed.index[0]
        assert rows["timestamp"][first_resumed] > rows["timestamp"][first_resumed - 1]
        assert list(rows["timestamp"]) == sorted(rows["timestamp"])


# -- loop passes follow events and deadlines, not simulated seconds ------------------------------
class PassCounter(tune.Callback):
    """Counts the runner's loop passes."""

    def __init__(self) -> None:
        self.passes = 0

    def on_step_begin(self, iteration: int, trials: Any, **info: Any) -> None:
        self.passes += 1


def one_step(config: dict[str, Any]) -> None:
    simulation.advance(config["d"])
    tune.report({"x": 1})


def test_loop_passes_do_not_grow_with_the_simulated_step_length(tmp_path):
    """A runner on simulated time polls until the controller's next deadline: a step of
    10,000 simulated seconds took 20,002 loop passes when each poll moved the clock by at
    most 0.5 s."""
    passes = {}
    for d in (10.0, 10_000.0):
        counter = PassCounter()
        backend = SimulatedBackend()
        fit(one_step, tmp_path / str(d), {"d": d}, callbacks=[counter], backend=backend)
        assert backend.clock.monotonic() == d
        passes[d] = counter.passes
    # the long step adds the silence checks at 60 s and 300 s (and the warning just after)
    assert passes[10_000.0] <= passes[10.0] + 4 <= 10


def _run_scaled_asha(tmp_path: Any, name: str, scale: float) -> tuple[list[Any], list[Any], int]:
    rec, counter = Recorder("lr", "score"), PassCounter()
    grid = fit(converge, tmp_path / name, {"lr": tune.loguniform(1e-3, 0.5),
                                           "cost": tune.choice([scale, 2 * scale, 5 * scale])},
               callbacks=[rec, counter], metric="score", mode="max", num_samples=8, seed=7,
               scheduler=ASHAScheduler(max_t=27, grace_period=3, reduction_factor=3),
               stop={"training_iteration": 27})
    rows = [(lr, it, tt / scale, score) for lr, it, tt, score in rec.rows]
    final = sorted((r.config["lr"], r.metrics["training_iteration"]) for r in grid)
    return rows, final, counter.passes


def test_hour_long_steps_make_the_same_decisions_in_about_as_many_loop_passes(tmp_path, caplog):
    rows1, final1, passes1 = _run_scaled_asha(tmp_path, "seconds", 1.0)
    rows2, final2, passes2 = _run_scaled_asha(tmp_path, "hours", 720.0)  # 12 min to 1 h
    assert rows1 == rows2 and final1 == final2
    assert any(it < 27 for _, it in final1), "ASHA stopped no trial early"
    assert passes2 <= 2 * passes1, (passes1, passes2)


def test_a_time_budget_ends_at_its_deadline_between_long_steps(tmp_path):
    """No result comes between 0 and 5,000 s: the budget still ends at 3,600 s exactly, and
    the trials still mid-step are killed once their 10 s of grace are over."""
    from poptune.engine.controller import STOP_GRACE_S

    backend, counter = SimulatedBackend(num_cpus=2), PassCounter()
    grid = fit(forever, tmp_path, {"cost": tune.grid_search([5000.0, 4000.0])},
               backend=backend, time_budget_s=3600, callbacks=[counter])
    assert 3600.0 + STOP_GRACE_S < backend.clock.monotonic() < 3600.0 + STOP_GRACE_S + 1e-9
    assert not any("training_iteration" in r.metrics for r in grid)  # no step ended
    assert counter.passes < 15


def test_a_time_budget_is_spent_at_a_result_on_its_deadline(tmp_path):
    """Steps of 0.5 s and 0.15 s: the 0.5 s trial's 4th result comes at 2.0 s, when a 2 s
    budget is spent, and its answer stops it (the budget, once a sum of the intervals
    between checks, had a few 1e-16 s left there and let it run a step more). The 0.15 s
    trial, mid-step, records the step it ends within its grace."""
    grid = fit(forever, tmp_path, {"cost": tune.grid_search([0.5, 0.15])}, time_budget_s=2.0)
    ends = [(r.metrics["training_iteration"], r.metrics["time_total_s"]) for r in grid]
    assert ends[0] == (4, 2.0)
    assert ends[1][0] == 14 and ends[1][1] == pytest.approx(2.1)


def test_the_silence_warning_says_the_seconds_are_simulated(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="poptune"):
        fit(one_step, tmp_path, {"d": 1000.0})
    warnings = [r.getMessage() for r in caplog.records if "has sent nothing" in r.getMessage()]
    assert len(warnings) == 1
    assert "5m00s of simulated time" in warnings[0] and "may hang" not in warnings[0]


def test_a_silence_timeout_counts_simulated_seconds_and_says_so(tmp_path):
    grid = tune.Tuner(
        one_step, param_space={"d": 3600.0}, tune_config=tune.TuneConfig(backend="simulated"),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                  failure_config=tune.FailureConfig(silence_timeout_s=1800)),
    ).fit()
    assert "sent nothing for 1800.0 simulated seconds" in str(grid[0].error)


def test_a_restored_clock_goes_on_from_the_exact_time_not_a_timestamp(tmp_path):
    """Interrupted at 1.35 s, the restored run ends when an uninterrupted one does (the
    clock went on from int(1.35) = 1 s, or from a timestamp the trainable reported)."""
    from poptune.callbacks import Callback

    class Interrupt(Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            if result["training_iteration"] == 3:
                raise KeyboardInterrupt

    config = {"stamp": 10**6, "steps": 10, "step_s": 0.45}  # a timestamp of its own
    whole = SimulatedBackend()
    fit(checkpointing, tmp_path / "whole", config, backend=whole)
    tune.Tuner(checkpointing, param_space=config,
               tune_config=tune.TuneConfig(backend=SimulatedBackend()),
               run_config=tune.RunConfig(name="cut", storage_path=str(tmp_path), verbose=0,
                                         callbacks=[Interrupt()])).fit()
    restored = tune.Tuner.restore(str(tmp_path / "cut"), checkpointing)
    grid = restored.fit()
    assert grid[0].metrics["step"] == 10
    assert restored.tune_config.backend.clock.monotonic() == whole.clock.monotonic()


def uneven(config: dict[str, Any]) -> None:
    for seconds in config["steps"]:
        simulation.advance(seconds)
        tune.report({"s": seconds})


def test_time_this_iter_s_is_exactly_what_each_step_declared(tmp_path):
    grid = fit(uneven, tmp_path, {"steps": [0.7, 0.2, 0.1]})
    rows = grid[0].metrics_dataframe
    # the differences of the clock's readings were 0.19999999999999996, 0.09999999999999998
    assert list(rows["time_this_iter_s"]) == [0.7, 0.2, 0.1]
    assert list(rows["time_total_s"]) == [0.7, 0.7 + 0.2, 0.7 + 0.2 + 0.1]
