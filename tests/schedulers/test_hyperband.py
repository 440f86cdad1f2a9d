"""HyperBandScheduler driven by hand-made trials and a simulated runner (no processes)."""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from poptune.engine.trial import Trial, TrialStatus
from poptune.exceptions import TuneConfigError
from poptune.engine.trial_view import TrialView
from poptune.schedulers import HyperBandScheduler, Outcome, SchedulerDecision, StopTrial
from tests.schedulers.outcomes import add, split, stops, value

TI = "training_iteration"
CONTINUE, PAUSE, STOP = SchedulerDecision.CONTINUE, SchedulerDecision.PAUSE, SchedulerDecision.STOP
RUNNING, PAUSED, PENDING = TrialStatus.RUNNING, TrialStatus.PAUSED, TrialStatus.PENDING
TERMINATED, ERROR = TrialStatus.TERMINATED, TrialStatus.ERROR


def make_trials(sched: Any, n: int, start: int = 0) -> list[Trial]:
    trials = [Trial(f"abc_{i:05d}", "train", {"x": i}, status=PENDING)
              for i in range(start, start + n)]
    for t in trials:
        assert add(sched, t) == ()
    return trials


def hb(**kw: Any) -> HyperBandScheduler:
    args: dict[str, Any] = dict(metric="score", mode="max", max_t=9, reduction_factor=3)
    args.update(kw)
    return HyperBandScheduler(**args)


def report(sched: Any, trial: Trial, t: float, score: float,
           stopped: list[str] | None = None) -> Any:
    """What the runner does with a decision for the reporting trial; returns the decision
    and adds the ids of the other trials the hooks stopped to ``stopped``."""
    result = {TI: t, "score": score}
    decision, acts = split(sched.on_trial_result(trial, result))
    trial.last_result = result
    if stopped is not None:
        stopped.extend(a.trial_id for a in acts if isinstance(a, StopTrial))
    if decision == PAUSE:
        trial.status = PAUSED
    elif decision == STOP:
        trial.status = TERMINATED
        more = stops(sched.on_trial_complete(trial, result))
        if stopped is not None:
            stopped.extend(more)
    return decision


def brackets(sched: Any) -> list[Any]:
    return [b for band in sched._bands for b in band if b is not None]


@dataclass
class Sim:
    """A tiny runner: trials train in lockstep on ``slots`` workers, checkpoint every
    iteration, and honour decisions, the StopTrial actions of every hook (at once, in order,
    as the controller does) and ``choose_trial_to_run``."""

    scheduler: Any
    trials: list[Trial]
    slots: int
    curve: Callable[[Trial, int], float] = lambda t, it: float(t.config["x"] * it)
    max_iter: int = 100  # the trainable's own end
    fail_at: dict[str, int] = field(default_factory=dict)
    iters: dict[str, int] = field(default_factory=dict)
    ckpt: dict[str, int] = field(default_factory=dict)
    reported: dict[str, list[int]] = field(default_factory=dict)
    pauses: dict[str, int] = field(default_factory=dict)
    stop_next: set[str] = field(default_factory=set)
    stopped: list[str] = field(default_factory=list)  # every StopTrial, in order
    ticks: int = 0

    def __post_init__(self) -> None:
        for t in self.trials:
            self.iters.setdefault(t.trial_id, 0)
            self.reported.setdefault(t.trial_id, [])

    def by_id(self, trial_id: str) -> Trial:
        return next(t for t in self.trials if t.trial_id == trial_id)

    def live(self) -> list[Trial]:
        return [t for t in self.trials if not t.status.is_finished()]

    def finish(self, trial: Trial) -> None:
        trial.status = TERMINATED
        self.apply(self.scheduler.on_trial_complete(trial, trial.last_result))

    def apply(self, out: Any) -> None:
        """Carry out the actions of a hook's return value."""
        for trial_id in stops(out):
            self.stopped.append(trial_id)
            trial = self.by_id(trial_id)
            if trial.status == RUNNING:
                self.stop_next.add(trial_id)
            elif not trial.is_finished():
                self.finish(trial)

    def launch(self) -> None:
        while sum(t.status == RUNNING for t in self.trials) < self.slots:
            waiting = [t for t in self.trials if t.status in (PENDING, PAUSED)]
            if not waiting:
                return
            out = self.scheduler.choose_trial_to_run(waiting)
            trial = value(out)
            self.apply(out)
            if trial is None or trial.is_finished():
                return
            assert trial in waiting
            self.iters[trial.trial_id] = self.ckpt.get(trial.trial_id, 0)  # resume
            trial.status = RUNNING

    def step(self) -> None:
        for t in [t for t in self.trials if t.status == RUNNING]:
            tid = t.trial_id
            self.iters[tid] += 1
            it = self.iters[tid]
            if self.fail_at.get(tid) == it:
                t.status = ERROR
                self.apply(self.scheduler.on_trial_error(t))
                continue
            self.ckpt[tid] = it
            t.checkpoint_path = f"/exp/{tid}/checkpoint_{it:06d}"
            result = {TI: it, "score": self.curve(t, it)}
            self.reported[tid].append(it)
            t.last_result = result
            if tid in self.stop_next:
                self.finish(t)
                continue
            out = self.scheduler.on_trial_result(t, result)
            decision = value(out)
            self.apply(out)
            if decision == STOP:
                self.finish(t)
            elif decision == PAUSE:
                t.status = PAUSED
                self.pauses[tid] = self.pauses.get(tid, 0) + 1
            elif it >= self.max_iter:
                self.finish(t)

    def run(self, max_ticks: int = 1000) -> Sim:
        while self.live():
            self.launch()
            assert any(t.status == RUNNING for t in self.trials), (
                f"hang: live trials {[(t.trial_id, t.status.value) for t in self.live()]} "
                "but nothing runs")
            self.step()
            self.ticks += 1
            assert self.ticks < max_ticks
        return self

    def final(self) -> dict[int, int]:
        """x -> last training iteration."""
        return {t.config["x"]: self.iters[t.trial_id] for t in self.trials}


def sim(n: int = 8, slots: int = 2, **kw: Any) -> Sim:
    sched_kw = {k: kw.pop(k) for k in list(kw) if k in ("mode", "max_t", "reduction_factor",
                                                          "stop_last_trials", "metric")}
    sched = kw.pop("scheduler", None) or hb(**sched_kw)
    trials = make_trials(sched, n)
    return Sim(sched, trials, slots, **kw)


# --------------------------------------------------------------------------- sizing
def test_default_band_has_rays_bracket_sizes_and_milestones():
    sched = HyperBandScheduler(metric="score", mode="max")
    assert (sched._time_attr, sched._max_t_attr, sched._eta) == (TI, 81, 3)
    make_trials(sched, 5 + 8 + 15 + 34 + 81)
    band = sched._bands[0]
    assert [(b.s, b.n, b.r, len(b.live)) for b in band] == [
        (0, 5, 81, 5), (1, 8, 27, 8), (2, 15, 9, 15), (3, 34, 3, 34), (4, 81, 1, 81)]
    make_trials(sched, 1, start=1000)  # the next trial opens a new band with s = 0
    assert len(sched._bands) == 2 and sched._bands[1][0].s == 0


def test_brackets_too_small_for_max_t_are_skipped():
    sched = hb(max_t=2, reduction_factor=3)  # s_max + 1 = 2; r0(1) = int(2/3) = 0
    make_trials(sched, 3)
    assert [None if b is None else b.s for band in sched._bands for b in band] == [0, None, 0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_t": 0}, "`max_t` must be > 0, got 0"),
        ({"reduction_factor": 1}, "`reduction_factor` must be > 1, got 1"),
        ({"mode": "up"}, "`mode` must be one of 'min', 'max', got 'up'"),
    ],
)
def test_invalid_parameters_are_rejected_with_the_standard_message(kwargs, message):
    with pytest.raises(TuneConfigError) as info:
        hb(**kwargs)
    assert message in str(info.value)


def test_metric_and_mode_may_come_from_tune_config_but_not_from_both_places():
    sched = HyperBandScheduler()
    with pytest.raises(TuneConfigError, match="no valid `metric`"):
        sched.on_trial_add(Trial("t0", "f", {}))
    sched.set_search_properties("score", "max")
    make_trials(sched, 1)
    with pytest.raises(TuneConfigError, match="both to HyperBandScheduler"):
        hb().set_search_properties(None, "min")


# --------------------------------------------------------------------------- halving
def test_trials_pause_at_the_milestone_until_the_bracket_completes_then_halving():
    sched = hb()  # bracket s=0: 3 trials to 9; bracket s=1: 5 trials, milestone 3
    trials = make_trials(sched, 8)
    b1 = trials[3:]
    for t in b1:
        t.status = RUNNING
    stopped: list[str] = []
    for t, score in zip(b1[:4], (1, 5, 2, 4)):
        assert report(sched, t, 1, 0, stopped) == CONTINUE
        assert report(sched, t, 3, score, stopped) == PAUSE
        assert stopped == []
    assert sched.choose_trial_to_run(b1[:4]) is None  # all wait for the last one
    # the last trial completes the bracket: keep ceil(5/3) = 2, stop 3
    assert report(sched, b1[4], 3, 3, stopped) == STOP  # ranks 3rd of 5
    assert sorted(stopped) == sorted([b1[0].trial_id, b1[2].trial_id])
    for t in (b1[0], b1[2]):
        t.status = TERMINATED
        assert sched.on_trial_complete(t, t.last_result) is None  # each stop handed out once
    # survivors resume first: choose_trial_to_run prefers them over nothing else
    assert sched.choose_trial_to_run([b1[1], b1[3]]) in (b1[1], b1[3])
    assert sched._where[b1[1].trial_id].r == 9 and sched._where[b1[1].trial_id].n == 2


def test_the_reporter_that_completes_the_bracket_continues_if_it_is_good():
    sched = hb()
    b1 = make_trials(sched, 8)[3:]
    for t in b1:
        t.status = RUNNING
    for t in b1[:4]:
        report(sched, t, 3, 1)
    out = sched.on_trial_result(b1[4], {TI: 3, "score": 10})
    assert value(out) == CONTINUE
    # ties (1, 1, 1, 1) rank in bracket order: the last of them survives with the reporter
    assert stops(out) == [t.trial_id for t in b1[:3]]


@pytest.mark.parametrize("mode", ["min", "max"])
def test_halving_keeps_the_best_for_min_and_max(mode):
    s = sim(mode=mode, curve=lambda t, it: float(t.config["x"])).run()
    final = s.final()  # bracket s=1 holds x = 3..7; keep 2 of 5
    kept = {3, 4} if mode == "min" else {6, 7}
    assert {x for x in range(3, 8) if final[x] == 9} == kept
    assert {x for x in range(3, 8) if final[x] == 3} == set(range(3, 8)) - kept
    assert all(final[x] == 9 for x in range(3))  # bracket s=0 trains straight to max_t


def test_survivors_resume_from_their_checkpoints_and_stop_at_max_t():
    s = sim(slots=2).run()
    for t in s.trials[3:]:
        reported = s.reported[t.trial_id]
        assert reported == list(range(1, len(reported) + 1)) and reported[-1] in (3, 9)
    paused = [t for t in s.trials if s.pauses.get(t.trial_id)]
    assert paused and all(s.iters[t.trial_id] in (3, 9) for t in paused)
    assert sum(s.iters[t.trial_id] == 9 for t in s.trials[3:]) == 2


def test_last_round_milestone_is_max_t_even_when_not_a_power_of_eta():
    s = sim(n=17, max_t=10, slots=4).run()  # brackets s=0 (3), s=1 (5, r=3), s=2 (9, r=1)
    assert max(s.iters.values()) == 10
    assert sorted(s.iters.values()).count(10) == 3 + 2 + 1


def test_stop_last_trials_false_lets_survivors_train_on():
    s = sim(stop_last_trials=False, max_iter=12).run()
    final = s.final()
    assert [final[x] for x in range(8)] == [12, 12, 12, 3, 3, 3, 12, 12]


def test_no_hang_when_a_bracket_member_errors_before_the_milestone():
    s = sim(fail_at={"abc_00005": 2}).run()
    final = s.final()  # 4 live trials at the milestone: keep ceil(5/3) = 2 of them
    assert s.trials[5].status == ERROR
    assert [final[x] for x in (3, 4, 6, 7)] == [3, 3, 9, 9]


def test_no_hang_when_the_last_survivor_errors_after_the_first_halving():
    # Ray stops re-examining a bracket once it has been halved: here it would hang.
    sched = hb()
    b2 = make_trials(sched, 17)[8:]  # bracket s=2: 9 trials, milestone 1
    for t in b2:
        t.status = RUNNING
    stopped: list[str] = []
    for t in b2:
        report(sched, t, 1, t.config["x"], stopped)
    assert len(stopped) == 6
    a, b, c = b2[6:]  # x = 14, 15, 16 survive; milestone 3 now
    assert report(sched, a, 3, 14) == PAUSE
    assert report(sched, b, 3, 15) == PAUSE
    c.status = ERROR
    out = sched.on_trial_error(c)  # the last one they wait for dies: the bracket is halved
    assert out == Outcome(None, (StopTrial(a.trial_id),))
    assert sched.choose_trial_to_run([a, b]) is b  # resumes towards max_t


def test_simulated_run_with_an_error_in_a_later_round_finishes():
    s = sim(n=17, slots=3, fail_at={"abc_00016": 3}).run()
    assert s.trials[16].status == ERROR
    assert sum(v == 9 for v in s.iters.values()) == 3 + 2 + 1


def test_a_trial_finishing_early_leaves_its_bracket():
    s = sim(max_iter=2).run()  # every trainable returns at iteration 2
    assert all(v == 2 for v in s.iters.values())


def test_finished_and_unknown_trials_are_handled():
    sched = hb()
    (t,) = make_trials(sched, 1)
    t.status = RUNNING
    sched.on_trial_error(t)
    sched.on_trial_remove(t)  # idempotent
    stranger = Trial("zzz", "train", {"x": 0}, status=RUNNING)
    assert sched.on_trial_result(stranger, {TI: 1, "score": 0}) == CONTINUE  # added lazily
    assert sched.on_trial_result(stranger, {"score": 0}) == CONTINUE  # no time_attr
    assert sched.choose_trial_to_run([]) is None


def test_missing_or_nan_metrics_rank_last():
    sched = hb()
    b1 = make_trials(sched, 8)[3:]
    for t in b1:
        t.status = RUNNING
    stopped: list[str] = []
    report(sched, b1[0], 3, math.nan, stopped)
    assert sched.on_trial_result(b1[1], {TI: 3}) == PAUSE
    b1[1].status = PAUSED
    for t in b1[2:4]:
        report(sched, t, 3, 0.0, stopped)
    report(sched, b1[4], 3, -1.0, stopped)
    assert {b1[0].trial_id, b1[1].trial_id} <= set(stopped)


def test_class_trainables_are_asked_to_save_at_milestones_they_pause_at():
    sched = hb()
    trials = make_trials(sched, 8)
    assert not sched.should_checkpoint(trials[0], {TI: 9, "score": 0})  # s=0: never pauses
    assert not sched.should_checkpoint(trials[3], {TI: 2, "score": 0})
    assert sched.should_checkpoint(trials[3], {TI: 3, "score": 0})


def test_restored_finished_trial_leaves_its_bracket():
    sched = hb()
    trials = make_trials(sched, 8)
    state = pickle.loads(pickle.dumps(sched.save_state()))
    fresh = hb()
    fresh.load_state(state)
    trials[4].status = TERMINATED  # finished after the scheduler state was saved
    for t in trials:
        assert add(fresh, t) == ()
    assert trials[4].trial_id not in fresh._where
    assert len(fresh._bands[0][1].live) == 4


def test_restore_repeats_stops_not_carried_out_and_readmits_resumed_errored_trials():
    sched = hb()
    trials = make_trials(sched, 8)
    for t in trials:
        t.status = RUNNING
    stopped: list[str] = []  # handed to the runner, which crashed before acting on them
    for t in trials[3:]:
        report(sched, t, 3, t.config["x"], stopped)
    assert sorted(stopped) == [t.trial_id for t in trials[3:6]]
    trials[0].status = ERROR
    sched.on_trial_error(trials[0])
    state = pickle.loads(pickle.dumps(sched.save_state()))
    fresh = hb()
    fresh.load_state(state)
    for t in trials[3:6]:
        t.status = PAUSED  # the journal never saw the stops
    trials[0].status = PENDING  # Tuner.restore(resume_errored=True) runs it again
    again = [a.trial_id for t in trials for a in add(fresh, t)]
    assert sorted(again) == sorted(stopped)
    assert all(isinstance(a, StopTrial) for a in add(fresh, trials[3]))
    assert trials[0].trial_id in fresh._where  # back in a bracket, as a new trial
    assert fresh.on_trial_result(trials[0], {TI: 1, "score": 0}) == CONTINUE
    assert fresh.on_trial_result(trials[3], {TI: 4, "score": 0}) == STOP


def test_save_and_load_state_mid_run_continues_identically():
    reference = sim(n=17, slots=3).run()
    part = sim(n=17, slots=3)
    for _ in range(6):
        part.launch()
        part.step()
    state = pickle.loads(pickle.dumps(part.scheduler.save_state()))
    fresh = hb()
    fresh.load_state(state)
    for t in part.trials:
        part.apply(Outcome(None, add(fresh, t)))
    part.scheduler = fresh
    part.run()
    assert part.iters == reference.iters
    assert "num_stopped=" in fresh.debug_string() and "Bracket(Max Size" in fresh.debug_string()
    assert fresh.state()["num_stopped"] == reference.scheduler.state()["num_stopped"]


def test_a_halving_returns_its_stops_from_the_hook_that_halved():
    sched = hb()
    b1 = make_trials(sched, 8)[3:]  # bracket s=1: 5 trials, milestone 3
    for t in b1:
        t.status = RUNNING
    outs = []
    for t, score in zip(b1, (1, 5, 2, 4, 3)):
        outs.append(sched.on_trial_result(t, {TI: 3, "score": score}))
        t.status = PAUSED
    assert outs[:4] == [PAUSE] * 4  # plain decisions: nothing decided about others yet
    last = outs[4]
    assert isinstance(last, Outcome) and last.value == STOP  # the reporter ranks 3rd of 5
    assert last.actions == (StopTrial(b1[0].trial_id), StopTrial(b1[2].trial_id))


def test_choose_trial_to_run_that_halves_returns_the_choice_with_the_stops():
    sched = hb()
    b1 = make_trials(sched, 8)[3:]
    for t in b1[:4]:
        t.status = RUNNING
        assert report(sched, t, 3, t.config["x"]) == PAUSE
    # a state where the 5th member is gone but nothing re-examined the bracket (as after a
    # restore): all its live trials wait at the milestone; choose_trial_to_run halves it
    del sched._where[b1[4].trial_id]
    brackets(sched)[1].live.pop(b1[4].trial_id)
    out = sched.choose_trial_to_run(b1[:4])
    assert isinstance(out, Outcome) and out.value in (b1[2], b1[3])
    assert sorted(stops(out)) == sorted(t.trial_id for t in b1[:2])


def test_on_trial_add_leaves_the_trial_alone():
    sched = hb()
    trial = Trial("abc_00000", "train", {"x": 0}, status=PENDING)
    assert sched.on_trial_add(TrialView(trial)) is None  # a view: any write would raise
    assert trial.config == {"x": 0}


def test_load_state_accepts_a_state_saved_with_a_stops_list():
    sched = hb()
    make_trials(sched, 8)
    state = sched.save_state()
    assert "stops" not in state
    fresh = hb()
    fresh.load_state({**state, "stops": []})  # what the old code saved
    assert fresh.save_state() == state


def test_a_trial_kept_running_for_want_of_a_checkpoint_stops_at_max_t(tmp_path):
    """The runner keeps a trial that cannot be paused (no checkpoint) running while its
    bracket waits; it must still not train past ``max_t`` (Ray restarts it from scratch,
    and no trial goes past max_t there either)."""
    import poptune as tune

    def wavy(config):  # reports no checkpoint
        for it in range(1, 31):
            tune.report({"score": ((config["x"] * 7 + it * 3) % 11) + it * 0.1})

    grid = tune.Tuner(
        tune.with_resources(wavy, {"cpu": 2}),  # one trial at a time
        param_space={"x": tune.grid_search(list(range(1, 7)))},
        tune_config=tune.TuneConfig(scheduler=HyperBandScheduler(max_t=4, reduction_factor=2),
                                    metric="score", mode="max", backend="simulated"),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    assert grid.num_errors == 0
    assert max(r.metrics["training_iteration"] for r in grid) == 4
