"""The scheduler's state is consistent with the journal at every commit (issue 10 item 2).

Runs on the simulated backend (no processes). After every loop pass (``on_step_end`` comes
after the pass's commit) the committed journal is replayed into a fresh scheduler and its
state compared with the live one: a ``kill -9`` at any point restores the scheduler as it
was at the last acknowledged result.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import cloudpickle
import poptune as tune
from poptune import simulation
from poptune.callbacks import Callback
from poptune.engine import scheduler_journal
from poptune.engine.experiment import replay_journal
from poptune.engine.scheduler_journal import SchedulerJournal
from poptune.schedulers import ASHAScheduler, PopulationBasedTraining
from poptune.storage.journal import Journal
from poptune.storage.records import SchedulerDelta, SchedulerState
from poptune.storage.replay import ExperimentState, JournalReader


def trainable(config: dict[str, Any]) -> None:
    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            start = int(open(os.path.join(d, "step")).read())
    for step in range(start + 1, 13):
        simulation.advance(1.0 + config["x"])
        cp = None
        if step % 3 == 0:
            d = os.path.join(tune.get_context().get_trial_dir(), f"cp{step}")
            os.makedirs(d, exist_ok=True)
            open(os.path.join(d, "step"), "w").write(str(step))
            cp = tune.Checkpoint.from_directory(d)
        tune.report({"score": step * config["x"], "step": step}, checkpoint=cp)


def replayed(path: str, make: Callable[[], Any]) -> Any:
    """A fresh scheduler with the committed journal's state (and deltas) applied."""
    hist = replay_journal(os.path.join(path, "journal.jsonl"))
    fresh = make()
    assert hist.scheduler_state is not None
    fresh.load_state(cloudpickle.loads(hist.scheduler_state))
    for delta in hist.scheduler_deltas:
        fresh.apply_state_delta(delta)
    return fresh


class CheckEveryCommit(Callback):
    """After each loop pass: the journal committed so far, folded into a fresh scheduler,
    equals the live scheduler (read incrementally, as the dashboard does)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make
        self.live: Any = None
        self.path = ""
        self.checked = 0
        self.reader: JournalReader | None = None
        self.state = ExperimentState()

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        journal = os.path.join(self.path, "journal.jsonl")
        if not os.path.exists(journal):
            return
        self.reader = self.reader or JournalReader(journal)
        groups, restarted = self.reader.read()
        assert not restarted
        for group in groups:
            for rec in group:
                self.state.apply(rec)
        if self.state.scheduler_state is None:
            return
        fresh = self.make()
        fresh.load_state(cloudpickle.loads(self.state.scheduler_state.blob(self.path)))
        for delta in self.state.scheduler_deltas:
            fresh.apply_state_delta(delta.value())
        assert fresh.save_state() == self.live.save_state()
        self.checked += 1


def run(make: Callable[[], Any], tmp_path: Any, num_samples: int,
        check: CheckEveryCommit) -> tune.ResultGrid:
    sched = make()
    check.live = sched
    check.path = str(tmp_path / "exp")
    tuner = tune.Tuner(
        trainable,
        param_space={"x": tune.uniform(0.1, 1.0)},
        tune_config=tune.TuneConfig(metric="score", mode="max", num_samples=num_samples,
                                    scheduler=sched, backend="simulated",
                                    max_concurrent_trials=3, seed=7),
        run_config=tune.RunConfig(name="exp", storage_path=str(tmp_path), callbacks=[check],
                                  verbose=0),
    )
    return tuner.fit()


def records(path: str, kind: type) -> int:
    from poptune.storage.replay import read_groups

    return sum(isinstance(r, kind) for g in read_groups(os.path.join(path, "journal.jsonl")) for r in g)


def test_asha_state_is_journaled_as_deltas_consistent_at_every_commit(tmp_path: Any) -> None:
    def make() -> ASHAScheduler:
        return ASHAScheduler(max_t=12, grace_period=1, reduction_factor=2, brackets=2, seed=3)

    check = CheckEveryCommit(make)
    grid = run(make, tmp_path, 30, check)
    assert not grid.errors
    assert check.checked > 30  # compared after (nearly) every loop pass
    path = str(tmp_path / "exp")
    deltas, wholes = records(path, SchedulerDelta), records(path, SchedulerState)
    assert deltas > 10 * wholes  # the growing rungs are not rewritten at every commit


def test_pbt_state_is_consistent_at_every_commit(tmp_path: Any) -> None:
    def make() -> PopulationBasedTraining:
        return PopulationBasedTraining(perturbation_interval=3, seed=5,
                                       hyperparam_mutations={"x": tune.uniform(0.1, 1.0)})

    check = CheckEveryCommit(make)
    grid = run(make, tmp_path, 6, check)
    assert not grid.errors
    assert check.checked > 10
    assert records(str(tmp_path / "exp"), SchedulerDelta) == 0  # small: journaled whole


def test_restore_after_a_kill_applies_the_deltas(tmp_path: Any, monkeypatch: Any) -> None:
    """A driver killed mid-run (no final whole state): restore replays state + deltas."""

    def make() -> ASHAScheduler:
        return ASHAScheduler(max_t=12, grace_period=1, reduction_factor=2, seed=3)

    class Kill(Callback):
        """Interrupts the first run only (callbacks come back with a restore, as in Ray)."""

        def __init__(self) -> None:
            self.n = 0
            self.at_kill: Any = None
            self.marker = tmp_path / "killed"

        def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
            self.n += 1
            if self.n == 40 and not self.marker.exists():
                self.marker.touch()
                self.at_kill = live.save_state()
                raise KeyboardInterrupt  # the journal holds what the last commit did

    monkeypatch.setattr(SchedulerJournal, "final", lambda self: None)  # as after kill -9
    live = make()
    kill = Kill()
    tuner = tune.Tuner(
        trainable, param_space={"x": tune.uniform(0.1, 1.0)},
        tune_config=tune.TuneConfig(metric="score", mode="max", num_samples=12, scheduler=live,
                                    backend="simulated", max_concurrent_trials=3, seed=7),
        run_config=tune.RunConfig(name="exp", storage_path=str(tmp_path), callbacks=[kill],
                                  verbose=0))
    tuner.fit()  # interrupted: poptune, like Ray, returns what it has
    assert kill.at_kill is not None
    path = str(tmp_path / "exp")
    assert records(path, SchedulerDelta) > 0
    assert replayed(path, make).save_state() == kill.at_kill

    monkeypatch.undo()
    restored = tune.Tuner.restore(path, trainable, resume_unfinished=True,
                                  param_space={"x": tune.uniform(0.1, 1.0)})
    sched = restored.tune_config.scheduler  # unpickled from the experiment
    applied: list[Any] = []
    original = sched.apply_state_delta
    sched.apply_state_delta = lambda d: (applied.append(d), original(d))[1]
    seen: list[Any] = []
    original_load = sched.load_state
    sched.load_state = lambda s: (original_load(s), seen.append(sched.save_state()))[0]
    grid = restored.fit()
    assert applied  # the deltas committed after the last whole state were applied
    assert not grid.errors and len(grid) == 12


class BigState:
    """A scheduler-like object whose state is big and has no deltas."""

    incremental_state = False

    def __init__(self) -> None:
        self.n = 0

    def save_state(self) -> dict[str, Any]:
        return {"n": self.n, "pad": b"x" * (scheduler_journal.SMALL_STATE + 1)}


def test_a_big_state_without_deltas_is_rate_limited(tmp_path: Any, monkeypatch: Any) -> None:
    now = [100.0]
    monkeypatch.setattr(scheduler_journal.time, "monotonic", lambda: now[0])
    sched = BigState()
    sj = SchedulerJournal(sched, Journal(str(tmp_path / "journal.jsonl")), str(tmp_path))
    assert sj.before_commit(handled=True, course_changed=False) == "state"  # the first
    sched.n += 1
    assert sj.before_commit(handled=True, course_changed=True) is None  # within 0.2 s
    now[0] += 0.3
    assert sj.before_commit(handled=False, course_changed=False) == "state"  # due since
    sched.n += 1
    now[0] += 0.5
    assert sj.before_commit(handled=True, course_changed=False) is None  # bookkeeping: 1 s
    now[0] += 0.6
    assert sj.before_commit(handled=False, course_changed=False) == "state"


def test_a_small_state_is_appended_only_when_it_changed(tmp_path: Any) -> None:
    class Small:
        incremental_state = False
        n = 0

        def save_state(self) -> dict[str, Any]:
            return {"n": self.n}

    sched = Small()
    sj = SchedulerJournal(sched, Journal(str(tmp_path / "journal.jsonl")), str(tmp_path))
    assert sj.before_commit(handled=True, course_changed=False) == "state"
    assert sj.before_commit(handled=True, course_changed=False) is None
    sched.n = 1
    assert sj.before_commit(handled=True, course_changed=False) == "state"
    assert sj.before_commit(handled=False, course_changed=False) is None  # nothing happened
