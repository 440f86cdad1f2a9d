"""HyperBandForBOHB driven by hand-made trials and the simulated runner of test_hyperband."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from poptune.engine.trial import Trial, TrialStatus
from poptune.exceptions import TuneConfigError
from poptune.schedulers import HyperBandForBOHB, HyperBandScheduler, Outcome, StopTrial
from tests.schedulers.outcomes import add, stops, value
from tests.schedulers.test_hyperband import (
    CONTINUE, PAUSE, PAUSED, PENDING, RUNNING, STOP, TI, Sim, make_trials, report,
)  # fmt: skip


def bohb(**kw: Any) -> HyperBandForBOHB:
    args: dict[str, Any] = dict(metric="score", mode="max", max_t=9, reduction_factor=3)
    args.update(kw)
    return HyperBandForBOHB(**args)


def sim(n: int = 8, slots: int = 2, **kw: Any) -> Sim:
    sched_kw = {k: kw.pop(k) for k in list(kw) if k in ("mode", "max_t", "stop_last_trials")}
    sched = bohb(**sched_kw)
    return Sim(sched, make_trials(sched, n), slots, **kw)


def test_is_a_hyperband_scheduler_with_its_arguments():
    sched = HyperBandForBOHB(metric="score", mode="max")
    assert isinstance(sched, HyperBandScheduler)
    assert (sched._max_t_attr, sched._eta, sched._stop_last_trials) == (81, 3, True)
    with pytest.raises(TuneConfigError, match="`reduction_factor` must be > 1"):
        bohb(reduction_factor=0.5)
    with pytest.raises(TuneConfigError, match="both to HyperBandForBOHB"):
        bohb().set_search_properties("score", None)


def test_brackets_are_opened_largest_first():
    sched = bohb()
    make_trials(sched, 9 + 5 + 3 + 1)
    assert [(b.s, b.n, b.r, len(b.live)) for b in sched._bands[0]] == [
        (2, 9, 1, 9), (1, 5, 3, 5), (0, 3, 9, 3)]
    assert [(b.s, len(b.live)) for b in sched._bands[1]] == [(2, 1)]


def test_trials_pause_at_the_milestone_while_the_bracket_is_not_full():
    sched = bohb()
    trials = make_trials(sched, 4)  # bracket s=2 wants 9
    stopped: list[str] = []
    for t in trials:
        t.status = RUNNING
        assert report(sched, t, 1, t.config["x"], stopped) == PAUSE
    assert stopped == []  # every live trial is at the milestone, but not full


def test_a_full_bracket_is_halved_when_its_last_trial_arrives():
    sched = bohb()
    trials = make_trials(sched, 9)
    for t in trials:
        t.status = RUNNING
    outs = []
    for t in trials:
        outs.append(sched.on_trial_result(t, {TI: 1, "score": t.config["x"]}))
        t.status = PAUSED
    assert outs[:8] == [PAUSE] * 8
    # the last arrival halves the bracket: it goes on at once (the best), with the stops
    assert outs[8] == Outcome(CONTINUE, tuple(StopTrial(t.trial_id) for t in trials[:6]))
    trials[8].status = RUNNING
    assert sched.choose_trial_to_run(trials[6:8]) is trials[6]


def test_choose_prefers_pending_trials_and_halves_only_when_nothing_runs():
    sched = bohb()
    trials = make_trials(sched, 5)
    for t in trials[:4]:
        t.status = RUNNING
        report(sched, t, 1, t.config["x"])
    trials[4].status = RUNNING
    assert sched.choose_trial_to_run(trials[:4]) is None  # trial 4 still runs
    trials[4].status = PENDING
    assert sched.choose_trial_to_run(trials) is trials[4]  # a pending trial first
    trials[4].status = TrialStatus.TERMINATED
    out = sched.on_trial_complete(trials[4], {TI: 0})  # the removal itself halves it (as Ray)
    # nothing runs and nothing is pending: the bracket (4 of 9) keeps ceil(9/3) = 3
    assert out == Outcome(None, (StopTrial(trials[0].trial_id),))
    trials[0].status = TrialStatus.TERMINATED
    assert sched.on_trial_complete(trials[0], trials[0].last_result) is None
    assert sched.choose_trial_to_run(trials[1:4]) is trials[1]


def test_forced_halving_of_an_incomplete_bracket_when_the_runner_asks():
    sched = bohb()
    trials = make_trials(sched, 4)
    for t in trials:
        t.status = RUNNING
        report(sched, t, 1, t.config["x"])
    assert all(t.status == PAUSED for t in trials)
    out = sched.choose_trial_to_run(trials)
    assert stops(out) == [trials[0].trial_id]
    assert value(out) is trials[1]


def test_simulated_run_with_an_incomplete_bracket_halves_it_and_finishes():
    s = sim().run()  # 8 trials in bracket s=2 (n=9): keep 3 at 1, then 1 at 3
    assert s.final() == {0: 1, 1: 1, 2: 1, 3: 1, 4: 1, 5: 3, 6: 3, 7: 9}
    assert s.reported["abc_00007"] == list(range(1, 10))  # resumed from checkpoints


@pytest.mark.parametrize("fail", [{"abc_00006": 2}, {"abc_00007": 3}, {"abc_00003": 1}])
def test_no_hang_when_a_trial_errors(fail):
    s = sim(fail_at=fail).run()
    assert sum(t.status == TrialStatus.ERROR for t in s.trials) == 1
    assert max(s.iters.values()) == 9


def test_min_mode_and_stop_last_trials_false():
    s = sim(mode="min", stop_last_trials=False, max_iter=11).run()
    assert s.final()[0] == 11 and s.final()[7] == 1


def test_save_and_load_state_mid_run_continues_identically():
    reference = sim(n=20, slots=3).run()
    part = sim(n=20, slots=3)
    for _ in range(5):
        part.launch()
        part.step()
    state = pickle.loads(pickle.dumps(part.scheduler.save_state()))
    fresh = bohb()
    fresh.load_state(state)
    for t in part.trials:
        part.apply(Outcome(None, add(fresh, t)))
    part.scheduler = fresh
    part.run()
    assert part.iters == reference.iters
    assert isinstance(fresh.on_trial_result(Trial("new", "f", {}), {TI: 1, "score": 0}),
                      type(STOP))
