"""MedianStoppingRule driven by hand-made trials and a simulated clock (``time_total_s``)."""

from __future__ import annotations

import math
import pickle
from typing import Any

import pytest

from poptune.engine.trial import Trial, TrialStatus
from poptune.engine.trial_view import TrialView
from poptune.exceptions import TuneConfigError
from poptune.schedulers import MedianStoppingRule, SchedulerDecision

CONTINUE, PAUSE, STOP = SchedulerDecision.CONTINUE, SchedulerDecision.PAUSE, SchedulerDecision.STOP


class FakeClock:
    """Simulated wall clock: each trial's ``time_total_s`` advances only when told to."""

    def __init__(self) -> None:
        self.elapsed: dict[str, float] = {}

    def tick(self, trial: Trial, seconds: float) -> float:
        self.elapsed[trial.trial_id] = self.elapsed.get(trial.trial_id, 0.0) + seconds
        return self.elapsed[trial.trial_id]


def rule(**kw: Any) -> MedianStoppingRule:
    args: dict[str, Any] = dict(metric="acc", mode="max", grace_period=10.0,
                                min_samples_required=2)
    args.update(kw)
    return MedianStoppingRule(**args)


def make_trials(sched: MedianStoppingRule, n: int, status=TrialStatus.RUNNING) -> list[Trial]:
    trials = [Trial(f"abc_{i:05d}", "train", {}, status=status) for i in range(n)]
    for t in trials:  # read-only views, as the controller passes them
        assert sched.on_trial_add(TrialView(t)) is None
    return trials


def report(sched: Any, clock: FakeClock, trial: Trial, seconds: float, value: Any,
           metric: str = "acc") -> Any:
    return sched.on_trial_result(
        trial, {"time_total_s": clock.tick(trial, seconds), metric: value})


def run_curve(sched: Any, clock: FakeClock, trial: Trial, values: list[float],
              every: float = 5.0) -> list[Any]:
    return [report(sched, clock, trial, every, v) for v in values]


# --------------------------------------------------------------------------- parameters
def test_defaults_match_ray():
    sched = MedianStoppingRule()
    assert (sched._time_attr, sched._grace_period, sched._min_samples_required,
            sched._min_time_slice, sched._hard_stop) == ("time_total_s", 60.0, 3, 0, True)
    assert not sched.needs_checkpoints and MedianStoppingRule(hard_stop=False).needs_checkpoints


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"grace_period": -1}, "`grace_period` must be >= 0, got -1"),
        ({"min_samples_required": 0}, "`min_samples_required` must be an integer >= 1, got 0"),
        ({"min_time_slice": -2}, "`min_time_slice` must be >= 0, got -2"),
        ({"mode": "best"}, "`mode` must be one of 'min', 'max', got 'best'"),
    ],
)
def test_invalid_parameters_are_rejected_with_the_standard_message(kwargs, message):
    with pytest.raises(TuneConfigError) as info:
        rule(**kwargs)
    assert message in str(info.value)


def test_metric_and_mode_may_come_from_tune_config_but_not_from_both_places():
    sched = MedianStoppingRule()
    with pytest.raises(TuneConfigError, match="no valid `metric`"):
        sched.on_trial_add(Trial("t0", "f", {}))
    sched.set_search_properties("acc", "max")
    make_trials(sched, 1)
    with pytest.raises(TuneConfigError, match="both to MedianStoppingRule"):
        rule().set_search_properties("acc", None)


# --------------------------------------------------------------------------- decisions
def test_no_decision_before_the_grace_period():
    sched, clock = rule(), FakeClock()
    good1, good2, bad = make_trials(sched, 3)
    run_curve(sched, clock, good1, [10, 10, 10, 10])
    run_curve(sched, clock, good2, [10, 10, 10, 10])
    assert report(sched, clock, bad, 5, 0) == CONTINUE  # t = 5
    assert report(sched, clock, bad, 4.9, 0) == CONTINUE  # t = 9.9
    assert report(sched, clock, bad, 0.1, 0) == STOP  # t = 10: judged from the grace period on


def test_stops_when_the_best_result_is_worse_than_the_median_of_running_means():
    sched, clock = rule(), FakeClock()
    a, b, c, d = make_trials(sched, 4)
    run_curve(sched, clock, a, [0, 8, 8, 8])  # running mean over [10, t]: 8
    run_curve(sched, clock, b, [0, 6, 6, 6])  # 6
    # c's best (6.9) is below median(8, 6) = 7: stopped at its first judged result
    assert run_curve(sched, clock, c, [6.9, 0.0]) == [CONTINUE, STOP]
    # d's best (7.0) equals the median: strictly worse is required
    assert run_curve(sched, clock, d, [7.0, 0.0, 0.0]) == [CONTINUE, CONTINUE, CONTINUE]


def test_min_mode_uses_the_lowest_loss_as_the_best():
    sched, clock = rule(metric="loss", mode="min"), FakeClock()
    a, b, c = make_trials(sched, 3)
    for t, v in ((a, 1.0), (b, 2.0)):
        for _ in range(3):
            report(sched, clock, t, 5, v, "loss")
    assert report(sched, clock, c, 10, 1.4, "loss") == CONTINUE  # median 1.5
    assert report(sched, clock, c, 1, 1.6, "loss") == CONTINUE  # best so far is still 1.4
    sched2, clock2 = rule(metric="loss", mode="min"), FakeClock()
    a, b, c = make_trials(sched2, 3)
    for t, v in ((a, 1.0), (b, 2.0)):
        for _ in range(3):
            report(sched2, clock2, t, 5, v, "loss")
    assert report(sched2, clock2, c, 10, 1.6, "loss") == STOP


def test_only_trials_that_reached_t_count_and_only_their_results_up_to_t():
    sched, clock = rule(min_samples_required=1), FakeClock()
    short, long_, probe = make_trials(sched, 3)
    run_curve(sched, clock, short, [0, 100])  # reached t = 10 only
    run_curve(sched, clock, long_, [0, 1, 1, 1, 50])  # mean over [10, 15] = 1
    assert report(sched, clock, probe, 5, 0) == CONTINUE
    # at t = 15 only `long_` counts, with its mean over [10, 15] (1, not 17.7 with the 50):
    # counting `short` (100) or later results would stop the probe
    assert report(sched, clock, probe, 10, 2) == CONTINUE


def test_trials_with_no_result_inside_the_window_are_not_samples():
    sched, clock = rule(min_samples_required=1), FakeClock()
    jumpy, probe = make_trials(sched, 2)
    report(sched, clock, jumpy, 5, 100)
    report(sched, clock, jumpy, 95, 100)  # from t = 5 straight to t = 100
    jumpy.status = TrialStatus.TERMINATED
    # at t = 12, `jumpy` reached t but has no result in [10, 12]: no sample, no NaN stop
    assert report(sched, clock, probe, 12, 0) == CONTINUE


def test_insufficient_samples_pause_only_if_others_wait_and_the_slice_elapsed():
    sched, clock = rule(min_samples_required=3, min_time_slice=10), FakeClock()
    a, b = make_trials(sched, 2)
    assert run_curve(sched, clock, a, [1, 1, 1]) == [CONTINUE] * 3  # nobody waits
    b.status = TrialStatus.PENDING
    assert report(sched, clock, a, 5, 1) == PAUSE  # t = 20: yields its slot
    a.status = TrialStatus.RUNNING
    assert report(sched, clock, a, 5, 1) == CONTINUE  # only 5 since the last pause
    assert report(sched, clock, a, 6, 1) == PAUSE  # 11 > min_time_slice


def test_hard_stop_false_pauses_bad_trials_once_then_lets_them_run():
    sched, clock = rule(hard_stop=False), FakeClock()
    a, b, c = make_trials(sched, 3)
    run_curve(sched, clock, a, [9, 9, 9])
    run_curve(sched, clock, b, [9, 9, 9])
    assert run_curve(sched, clock, c, [1, 1]) == [CONTINUE, PAUSE]
    assert run_curve(sched, clock, c, [0, 0, 0]) == [CONTINUE] * 3  # never judged again
    assert sched.debug_string() == "Using MedianStoppingRule: num_stopped=1."


def test_missing_and_nan_metrics():
    sched, clock = rule(min_samples_required=1), FakeClock()
    a, b, c = make_trials(sched, 3)
    assert sched.on_trial_result(a, {"time_total_s": 50.0}) == CONTINUE
    run_curve(sched, clock, a, [5, math.nan, 5])
    assert report(sched, clock, b, 15, 5.0) == CONTINUE  # the NaN is left out of a's mean
    # t = 10: a's window holds only a NaN and b has no result there: too few samples
    assert run_curve(sched, clock, c, [math.nan, math.nan, math.nan]) == [
        CONTINUE, CONTINUE, STOP]
    assert c.trial_id in sched._stopped_trials  # a NaN-only trial counts as the worst


def test_completed_trials_keep_counting():
    sched, clock = rule(min_samples_required=1), FakeClock()
    done, probe = make_trials(sched, 2)
    run_curve(sched, clock, done, [5, 5])
    sched.on_trial_complete(done, {"time_total_s": 30.0, "acc": 5})
    assert report(sched, clock, probe, 25, 1) == STOP  # done's mean over [10, 25] is 5


def test_save_and_load_state_round_trip():
    sched, clock = rule(), FakeClock()
    a, b, c = make_trials(sched, 3)
    run_curve(sched, clock, a, [8, 8, 8])
    run_curve(sched, clock, b, [6, 6, 6])
    state = pickle.loads(pickle.dumps(sched.save_state()))
    fresh = rule()
    fresh.load_state(state)
    for t in (a, b, c):
        assert fresh.on_trial_add(TrialView(t)) is None
    clock2 = FakeClock()
    clock2.elapsed = dict(clock.elapsed)
    assert run_curve(fresh, clock2, c, [6.9, 6.9]) == run_curve(sched, clock, c, [6.9, 6.9])
    assert fresh.save_state() == sched.save_state()


def test_an_infinite_running_mean_is_left_out_of_the_median_as_in_ray():
    """A diverged trial (loss inf) would raise the median and keep worse trials running."""
    sched = rule(metric="loss", mode="min", grace_period=1.0, min_samples_required=2,
                 time_attr="training_iteration")
    diverged, one, three, late = make_trials(sched, 4)
    for trial, loss in ((diverged, math.inf), (one, 1.0), (three, 3.0)):
        sched.on_trial_result(trial, {"training_iteration": 1, "loss": loss})
    # the median of the finite means [1, 3] is 2: 2.5 is worse (counting inf, it would be 3)
    assert sched.on_trial_result(late, {"training_iteration": 1, "loss": 2.5}) == STOP
