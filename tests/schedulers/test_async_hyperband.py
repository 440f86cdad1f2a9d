"""AsyncHyperBandScheduler (ASHA) driven by hand-made trials and results (no processes)."""

from __future__ import annotations

import math
import pickle
from typing import Any

import numpy as np
import pytest

from poptune.engine.trial import Trial, TrialStatus
from poptune.engine.trial_view import TrialView
from poptune.exceptions import TuneConfigError
from poptune.schedulers import ASHAScheduler, AsyncHyperBandScheduler, SchedulerDecision

TI = "training_iteration"
CONTINUE, STOP = SchedulerDecision.CONTINUE, SchedulerDecision.STOP


def make_trials(sched: AsyncHyperBandScheduler, n: int) -> list[Trial]:
    trials = [Trial(f"abc_{i:05d}", "train", {}, status=TrialStatus.RUNNING) for i in range(n)]
    for t in trials:  # read-only views, as the controller passes them
        assert sched.on_trial_add(TrialView(t)) is None
    return trials


def asha(**kw: Any) -> AsyncHyperBandScheduler:
    args: dict[str, Any] = dict(metric="acc", mode="max", max_t=16, grace_period=1,
                                reduction_factor=2)
    args.update(kw)
    return AsyncHyperBandScheduler(**args)


def report(sched: Any, trial: Trial, t: float, value: Any, metric: str = "acc") -> Any:
    return sched.on_trial_result(trial, {TI: t, metric: value})


def milestones(sched: AsyncHyperBandScheduler) -> list[list[float]]:
    return [[m for m, _ in b.rungs] for b in sched._brackets]


# --------------------------------------------------------------------------- parameters
def test_defaults_and_alias_match_ray():
    sched = ASHAScheduler()
    assert sched is not None and ASHAScheduler is AsyncHyperBandScheduler
    assert (sched._time_attr, sched._max_t, sched._grace_period, sched._reduction_factor,
            len(sched._brackets), sched._stop_last_trials) == (TI, 100, 1, 4, 1, True)
    assert milestones(sched) == [[64, 16, 4, 1]]


def test_brackets_have_rungs_at_grace_times_rf_powers_shifted_by_s():
    sched = asha(max_t=100, grace_period=1, reduction_factor=4, brackets=3)
    assert milestones(sched) == [[64, 16, 4, 1], [64, 16, 4], [64, 16]]
    assert milestones(asha(max_t=10, grace_period=2, reduction_factor=3)) == [[6, 2]]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_t": 0}, "`max_t` must be > 0, got 0"),
        ({"grace_period": 0}, "`grace_period` must be > 0, got 0"),
        ({"grace_period": 20, "max_t": 10}, "`grace_period` must be <= `max_t`=10, got 20"),
        ({"reduction_factor": 1}, "`reduction_factor` must be > 1, got 1"),
        ({"brackets": 0}, "`brackets` must be an integer >= 1, got 0"),
        ({"mode": "maximize"}, "`mode` must be one of 'min', 'max', got 'maximize'"),
    ],
)
def test_invalid_parameters_are_rejected_with_the_standard_message(kwargs, message):
    with pytest.raises(TuneConfigError) as info:
        asha(**kwargs)
    assert message in str(info.value)


def test_a_fractional_reduction_factor_is_accepted_as_in_ray():
    assert milestones(asha(max_t=4, grace_period=1, reduction_factor=1.5))[0][-1] == 1


def test_metric_and_mode_may_come_from_tune_config_but_not_from_both_places():
    sched = AsyncHyperBandScheduler()
    with pytest.raises(TuneConfigError, match="no valid `metric`"):
        sched.on_trial_add(Trial("t0", "f", {}))
    sched.set_search_properties("loss", "min")
    assert (sched.metric, sched.mode) == ("loss", "min")
    with pytest.raises(TuneConfigError, match="both to AsyncHyperBandScheduler"):
        asha().set_search_properties("acc", "max")
    only_mode = AsyncHyperBandScheduler(mode="max")
    only_mode.set_search_properties(None, None)
    assert only_mode.metric == "_metric"


# --------------------------------------------------------------------------- decisions
def test_cutoff_is_the_1_minus_1_over_rf_quantile_of_recorded_scores():
    sched = asha(reduction_factor=4, max_t=64)
    trials = make_trials(sched, 6)
    for t, v in zip(trials[:5], [1.0, 2.0, 3.0, 4.0, 5.0]):
        report(sched, t, 1, v)
    bracket = sched._brackets[0]
    expected = np.percentile([1, 2, 3, 4, 5], 75)
    assert bracket.cutoff(dict(bracket.rungs)[1]) == pytest.approx(expected)
    assert report(sched, trials[5], 1, 3.9) == STOP  # cutoff 4.0
    sched2 = asha(reduction_factor=4, max_t=64)
    trials2 = make_trials(sched2, 6)
    for t, v in zip(trials2[:5], [1.0, 2.0, 3.0, 4.0, 5.0]):
        report(sched2, t, 1, v)
    assert report(sched2, trials2[5], 1, 4.0) == CONTINUE  # not strictly below


def test_each_first_report_at_a_rung_is_judged_then_recorded_max_mode():
    sched = asha(reduction_factor=2)  # rungs 16, 8, 4, 2, 1; cutoff = median of recorded
    a, b, c, d = make_trials(sched, 4)
    assert [report(sched, t, 1, v) for t, v in zip((a, b, c, d), (10, 4, 8, 7.5))] == [
        CONTINUE, STOP, CONTINUE, STOP]  # cutoffs: none, 10, median(10, 4)=7, 8
    rung1 = dict(sched._brackets[0].rungs)[1]
    assert rung1 == {a.trial_id: 10.0, b.trial_id: 4.0, c.trial_id: 8.0, d.trial_id: 7.5}


def test_min_mode_stops_the_highest_losses():
    sched = asha(metric="loss", mode="min", reduction_factor=2)
    a, b, c = make_trials(sched, 3)
    assert report(sched, a, 1, 0.5, "loss") == CONTINUE
    assert report(sched, b, 1, 0.9, "loss") == STOP
    assert report(sched, c, 1, 0.1, "loss") == CONTINUE


def test_a_trial_is_judged_once_per_rung_and_again_at_the_next_rung():
    sched = asha(reduction_factor=2)
    a, b = make_trials(sched, 2)
    assert report(sched, a, 1, 10) == CONTINUE
    assert report(sched, b, 1, 10) == CONTINUE
    assert report(sched, b, 1.5, 0) == CONTINUE  # between rungs: no decision
    assert report(sched, a, 2, 10) == CONTINUE
    assert report(sched, b, 2, 1) == STOP  # rung 2, cutoff 10


def test_nothing_is_stopped_before_the_grace_period():
    sched = asha(grace_period=4, max_t=16, reduction_factor=2)  # rungs 16, 8, 4
    trials = make_trials(sched, 3)
    report(sched, trials[0], 4, 100)
    assert [report(sched, t, it, -1) for t in trials[1:] for it in (1, 2, 3)] == [CONTINUE] * 6
    assert report(sched, trials[1], 4, -1) == STOP


def test_trials_stop_at_max_t_unless_stop_last_trials_is_false():
    sched = asha(max_t=4, reduction_factor=2)
    (a,) = make_trials(sched, 1)
    assert [report(sched, a, it, 1.0) for it in (1, 2, 3, 4)] == [CONTINUE] * 3 + [STOP]
    keep = asha(max_t=4, reduction_factor=2, stop_last_trials=False)
    b, c = make_trials(keep, 2)
    assert [report(keep, b, it, 10.0) for it in (1, 2, 3, 4, 5, 6)] == [CONTINUE] * 6
    # past max_t a trial is judged at the top rung once, never again
    assert report(keep, c, 4, 1.0) == STOP
    assert report(keep, c, 5, 1.0) == CONTINUE


def test_a_skipped_rung_is_never_judged_afterwards():
    sched = asha(reduction_factor=2, max_t=16)  # rungs 16, 8, 4, 2, 1
    a, b = make_trials(sched, 2)
    report(sched, a, 1, 10)
    assert report(sched, b, 5, 10) == CONTINUE  # judged at rung 4 (empty)
    assert report(sched, b, 6, 0) == CONTINUE  # not sent back to the skipped rungs 1, 2


def test_missing_none_and_nan_metrics_never_stop_a_trial(caplog):
    sched = asha(reduction_factor=2)
    a, b, c = make_trials(sched, 3)
    report(sched, a, 1, 10)
    assert sched.on_trial_result(b, {TI: 1}) == CONTINUE
    assert sched.on_trial_result(b, {"acc": 0}) == CONTINUE
    assert report(sched, b, 1, None) == CONTINUE
    assert "None" in caplog.text
    assert report(sched, c, 1, math.nan) == CONTINUE
    assert report(sched, b, 1, 1) == STOP  # the NaN is ignored by the cutoff


def test_all_nan_rung_has_no_cutoff():
    sched = asha(reduction_factor=2)
    a, b = make_trials(sched, 2)
    report(sched, a, 1, math.nan)
    assert report(sched, b, 1, -1e9) == CONTINUE


def test_on_trial_complete_records_the_final_result_and_forgets_the_trial():
    sched = asha(reduction_factor=2)
    a, b = make_trials(sched, 2)
    sched.on_trial_complete(a, {TI: 2, "acc": 5.0})
    assert dict(sched._brackets[0].rungs)[2] == {a.trial_id: 5.0}
    assert a.trial_id not in sched._trial_info
    assert report(sched, b, 2, 4.0) == STOP
    sched.on_trial_error(b)
    sched.on_trial_remove(b)  # idempotent
    assert sched._trial_info == {}


# --------------------------------------------------------------------------- brackets
def test_bracket_choice_is_a_seeded_softmax_over_rung_counts():
    sched = asha(max_t=16, reduction_factor=2, brackets=2, seed=3)  # 5 and 4 rungs
    make_trials(sched, 4000)
    share = sum(i == 0 for i in sched._trial_info.values()) / 4000
    assert share == pytest.approx(1 / (1 + math.e ** -1), abs=0.03)
    again = asha(max_t=16, reduction_factor=2, brackets=2, seed=3)
    make_trials(again, 4000)
    assert again._trial_info == sched._trial_info


def test_brackets_judge_trials_independently():
    sched = asha(max_t=16, reduction_factor=2, brackets=2, seed=0)
    trials = make_trials(sched, 40)
    in0 = [t for t in trials if sched._trial_info[t.trial_id] == 0]
    in1 = [t for t in trials if sched._trial_info[t.trial_id] == 1]
    report(sched, in0[0], 2, 100)
    assert report(sched, in1[0], 2, 1) == CONTINUE  # bracket 1's rung 2 is empty
    assert report(sched, in0[1], 2, 1) == STOP


# --------------------------------------------------------------------------- state
def test_save_and_load_state_round_trip_continues_identically():
    def drive(sched: AsyncHyperBandScheduler, trials: list[Trial], steps: range) -> list[Any]:
        out = []
        for it in steps:
            for i, t in enumerate(trials):
                out.append(report(sched, t, it, float((i * 7919) % 13) + it))
        return out

    base = asha(max_t=16, reduction_factor=2, brackets=2, seed=1)
    trials = make_trials(base, 12)
    first = drive(base, trials, range(1, 5))
    state = pickle.loads(pickle.dumps(base.save_state()))
    rest = drive(base, trials, range(5, 9))

    restored = asha(max_t=16, reduction_factor=2, brackets=2, seed=99)
    restored.load_state(state)
    for t in trials:  # the runner re-adds every trial after a restore
        assert restored.on_trial_add(TrialView(t)) is None
    assert drive(restored, trials, range(5, 9)) == rest
    assert STOP in first
    assert restored.debug_string() == base.debug_string()
    assert base.debug_string().startswith("Using AsyncHyperBand: num_stopped=")
