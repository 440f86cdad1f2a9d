"""Each StoppingCriterion field stops once its count is *more than* the bound (Syne Tune)."""

from __future__ import annotations

import pytest

from poptune.syne_tune import StoppingCriterion, TuningStatus


def status(**counts) -> TuningStatus:
    s = TuningStatus(["loss"])
    for key, value in counts.items():
        setattr(s, key, value)
    return s


@pytest.mark.parametrize("field, attr, bound", [
    ("max_wallclock_time", "wallclock_time", 10.0),
    ("max_num_trials_started", "num_trials_started", 3),
    ("max_num_trials_completed", "num_trials_completed", 3),
])
def test_counter_fields_stop_strictly_above_the_bound(field, attr, bound):
    crit = StoppingCriterion(**{field: bound})
    assert not crit(status(**{attr: bound}))
    assert crit(status(**{attr: bound + 1}))


def test_finished_counts_completed_stopped_and_failed():
    crit = StoppingCriterion(max_num_trials_finished=2)
    assert not crit(status(num_trials_completed=1, num_trials_stopped=1))
    assert crit(status(num_trials_completed=1, num_trials_stopped=1, num_trials_failed=1))
    # completed alone does not count stopped or failed trials
    assert not StoppingCriterion(max_num_trials_completed=1)(
        status(num_trials_completed=1, num_trials_stopped=5, num_trials_failed=5))


def test_evaluations_count_every_result():
    s = status()
    crit = StoppingCriterion(max_num_evaluations=2)
    for i in range(2):
        s.on_result(i, {"loss": 1.0})
    assert not crit(s)
    s.on_result(0, {"loss": 1.0})
    assert crit(s)


def test_cost_sums_the_last_cost_of_each_trial():
    s = status()
    crit = StoppingCriterion(max_cost=2.5)
    s.on_result(0, {"st_worker_cost": 1.0})
    s.on_result(0, {"st_worker_cost": 1.5})  # replaces trial 0's cost
    s.on_result(1, {"st_worker_cost": 1.0})
    assert s.cost == 2.5 and not crit(s)
    s.on_result(1, {"st_worker_cost": 1.1})
    assert crit(s)


def test_metric_thresholds():
    s = status()
    s.on_result(0, {"loss": 0.5, "acc": 0.7})
    assert not StoppingCriterion(min_metric_value={"loss": 0.5})(s)
    assert StoppingCriterion(min_metric_value={"loss": 0.6})(s)
    assert not StoppingCriterion(max_metric_value={"acc": 0.7})(s)
    assert StoppingCriterion(max_metric_value={"acc": 0.6})(s)
    assert not StoppingCriterion(max_metric_value={"other": 0.0})(s)


def test_no_field_never_stops_and_bad_bounds_are_named():
    assert not StoppingCriterion()(status(num_trials_started=10**6))
    with pytest.raises(ValueError, match="`max_num_evaluations`"):
        StoppingCriterion(max_num_evaluations=-1)
    with pytest.raises(TypeError, match="`min_metric_value`"):
        StoppingCriterion(min_metric_value=0.5)  # type: ignore[arg-type]
