"""Plateau stoppers (their decisions on synthetic results, and one end-to-end run each) and the
TimeoutStopper on a moved or simulated clock."""

from __future__ import annotations

import datetime
import pickle
import time

import pytest

import poptune as tune
from poptune.clock import SimulatedClock
from poptune.clock import use as use_clock
from poptune.exceptions import TuneConfigError, TuneError
from poptune.stopper import ExperimentPlateauStopper, TimeoutStopper, TrialPlateauStopper


def feed(stopper, values, trial_id="t", metric="loss"):
    return [stopper(trial_id, {metric: v}) for v in values]


# -- TrialPlateauStopper --------------------------------------------------------------------
def test_trial_plateau_stops_when_the_window_is_flat():
    s = TrialPlateauStopper("loss", std=0.01, num_results=3, grace_period=3)
    assert feed(s, [5.0, 1.0, 1.0, 1.0]) == [False, False, False, True]


def test_trial_plateau_std_threshold_is_strict():
    s = TrialPlateauStopper("loss", std=0.5, num_results=2, grace_period=0)
    assert feed(s, [0.0, 1.0]) == [False, False]  # population std 0.5 is not < 0.5
    assert feed(s, [0.9]) == [True]  # window [1.0, 0.9]: std 0.05


def test_trial_plateau_grace_period_counts_results():
    s = TrialPlateauStopper("loss", std=0.01, num_results=2, grace_period=5)
    assert feed(s, [1.0] * 6) == [False, False, False, False, True, True]


def test_trial_plateau_window_needs_num_results():
    s = TrialPlateauStopper("loss", std=0.01, num_results=4, grace_period=1)
    assert feed(s, [1.0] * 4) == [False, False, False, True]


def test_trial_plateau_trials_are_independent():
    s = TrialPlateauStopper("loss", num_results=2, grace_period=2)
    assert s("a", {"loss": 1.0}) is False
    assert s("b", {"loss": 1.0}) is False
    assert s("b", {"loss": 3.0}) is False
    assert s("a", {"loss": 1.0}) is True


@pytest.mark.parametrize("mode, values, expected", [
    ("min", [2.0, 2.0, 2.0], [False, False, False]),  # flat, but not below the threshold
    ("min", [0.5, 0.5, 0.5], [False, False, True]),
    ("max", [0.5, 0.5, 0.5], [False, False, False]),  # flat, but not above the threshold
    ("max", [2.0, 2.0, 2.0], [False, False, True]),
])
def test_trial_plateau_metric_threshold(mode, values, expected):
    s = TrialPlateauStopper("loss", num_results=3, grace_period=3, metric_threshold=1.0,
                            mode=mode)
    assert feed(s, values) == expected


def test_trial_plateau_threshold_zero_is_a_threshold():
    s = TrialPlateauStopper("loss", num_results=2, grace_period=2, metric_threshold=0.0,
                            mode="min")
    assert feed(s, [0.1, 0.1, -0.1, -0.1]) == [False, False, False, True]


def test_trial_plateau_missing_or_non_numeric_values_never_plateau():
    s = TrialPlateauStopper("loss", num_results=2, grace_period=2)
    assert [s("t", r) for r in ({"other": 1}, {"other": 1})] == [False, False]
    assert feed(s, ["x", 1.0, float("nan"), 1.0, 1.0]) == [False, False, False, False, True]


def test_trial_plateau_reads_nested_metrics():
    s = TrialPlateauStopper("eval/loss", num_results=2, grace_period=2)
    assert [s("t", {"eval": {"loss": 1.0}}) for _ in range(2)] == [False, True]


@pytest.mark.parametrize("kwargs, message", [
    ({"metric_threshold": 0.5}, "`mode` must be 'min' or 'max' when `metric_threshold` is set"),
    ({"std": -1}, "`std` must be >= 0, got -1"),
    ({"num_results": 0}, "`num_results` must be an int >= 1, got 0"),
    ({"grace_period": 1.5}, "`grace_period` must be an int >= 0, got 1.5"),
    ({"mode": "best"}, "`mode` must be one of 'min', 'max', got 'best'"),
])
def test_trial_plateau_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrialPlateauStopper("loss", **kwargs)


def test_trial_plateau_never_stops_the_experiment():
    s = TrialPlateauStopper("loss", num_results=1, grace_period=1)
    assert feed(s, [1.0]) == [True] and s.stop_all() is False


# -- ExperimentPlateauStopper ---------------------------------------------------------------
def test_experiment_plateau_min_keeps_the_smallest_values():
    s = ExperimentPlateauStopper("loss", std=0.001, top=3, mode="min")
    assert feed(s, [5.0, 1.0, 1.0]) == [False, False, False]  # top 3: 1, 1, 5
    assert s.stop_all() is False
    assert feed(s, [1.0]) == [True]  # top 3: 1, 1, 1
    assert s.stop_all() is True


def test_experiment_plateau_max_keeps_the_largest_values():
    s = ExperimentPlateauStopper("acc", std=0.01, top=2, mode="max")
    assert feed(s, [0.9, 0.1, 0.5], metric="acc") == [False, False, False]
    assert feed(s, [0.905], metric="acc") == [True]  # top 2: 0.9, 0.905


def test_experiment_plateau_std_is_inclusive():
    s = ExperimentPlateauStopper("loss", std=0.5, top=2, mode="min")
    assert feed(s, [0.0, 1.0]) == [False, True]  # std exactly 0.5


def test_experiment_plateau_patience_counts_consecutive_plateaus():
    s = ExperimentPlateauStopper("loss", std=0.001, top=2, mode="min", patience=3)
    assert feed(s, [1.0, 1.0, 1.0]) == [False, False, False]  # plateaued twice so far
    assert feed(s, [1.0]) == [True]
    s = ExperimentPlateauStopper("loss", std=0.001, top=2, mode="min", patience=2)
    # a new best breaks the plateau and resets the count
    assert feed(s, [1.0, 1.0, 0.5, 0.5, 0.5]) == [False, False, False, False, True]


def test_experiment_plateau_patience_zero_and_one_act_at_once():
    for patience in (0, 1):
        s = ExperimentPlateauStopper("loss", top=2, patience=patience)
        assert feed(s, [1.0, 1.0]) == [False, True]


def test_experiment_plateau_needs_the_metric_in_every_result():
    s = ExperimentPlateauStopper("loss")
    with pytest.raises(TuneError, match="watches 'loss', but trial t reported no such metric"):
        s("t", {"acc": 1.0})
    with pytest.raises(TuneError, match="reported 'high'"):
        s("t", {"loss": "high"})


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "best"}, "`mode` must be one of 'min', 'max', got 'best'"),
    ({"top": 1}, "`top` must be an int > 1, got 1"),
    ({"top": 2.5}, "`top` must be an int > 1, got 2.5"),
    ({"patience": -1}, "`patience` must be an int >= 0, got -1"),
    ({"std": 0.0}, "`std` must be > 0, got 0.0"),
])
def test_experiment_plateau_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ExperimentPlateauStopper("loss", **kwargs)


def test_stoppers_are_exported_like_rays():
    for name in ("TrialPlateauStopper", "ExperimentPlateauStopper", "MaximumIterationStopper",
                 "TimeoutStopper", "CombinedStopper", "FunctionStopper"):
        assert getattr(tune, name) is getattr(tune.stopper, name)
        assert name in tune.stopper.__all__


# -- end to end -----------------------------------------------------------------------------
def converges(config):
    for step in range(100):
        tune.report(loss=max(1.0, 10.0 - step))  # flat at 1.0 from step 9 on


def flat(config):
    for _ in range(100):
        tune.report(loss=config["level"])


def test_trial_plateau_stopper_end_to_end(tmp_path):
    analysis = tune.run(converges, stop=TrialPlateauStopper("loss", num_results=4, grace_period=4),
                        verbose=0, storage_path=str(tmp_path))
    # losses 10, 9, ..., 1 (step 9), then 1, 1, 1: the window [1, 1, 1, 1] ends at step 12
    assert analysis.trials[0].last_result["training_iteration"] == 13
    assert analysis.trials[0].status == "TERMINATED"


def test_experiment_plateau_stopper_end_to_end(tmp_path):
    stopper = ExperimentPlateauStopper("loss", std=0.001, top=4, mode="min", patience=2)
    analysis = tune.run(flat, config={"level": tune.grid_search([1.0, 1.0, 1.0])},
                        stop=stopper, verbose=0, storage_path=str(tmp_path))
    assert all(t.status == "TERMINATED" for t in analysis.trials)
    total = sum(t.last_result["training_iteration"] for t in analysis.trials)
    assert total < 30  # far fewer than the 300 results the trials would report


# -- TimeoutStopper (Ray's tests move the clock with freezegun: time.time and time.monotonic) --
class FrozenTime:
    """Patches ``time.time``/``time.monotonic`` as freezegun does; ``tick`` moves both."""

    def __init__(self, monkeypatch) -> None:
        self.now = 1_700_000_000.0
        monkeypatch.setattr(time, "time", lambda: self.now)
        monkeypatch.setattr(time, "monotonic", lambda: self.now)

    def tick(self, seconds: float) -> None:
        self.now += seconds


def test_timeout_stopper_sees_a_patched_clock(monkeypatch):
    frozen = FrozenTime(monkeypatch)
    stopper = TimeoutStopper(timeout=60)
    assert not stopper.stop_all()
    frozen.tick(40)
    assert not stopper.stop_all()
    frozen.tick(22)
    assert stopper.stop_all()


def test_timeout_stopper_restored_before_timeout_keeps_its_budget(monkeypatch):
    frozen = FrozenTime(monkeypatch)
    stopper = TimeoutStopper(timeout=60)
    assert not stopper.stop_all()
    frozen.tick(40)
    assert not stopper.stop_all()
    saved = pickle.dumps(stopper)
    frozen.tick(200)  # the time spent on disk is not charged
    stopper = pickle.loads(saved)
    assert not stopper.stop_all()
    frozen.tick(10)
    assert not stopper.stop_all()
    frozen.tick(12)
    assert stopper.stop_all()


def test_timeout_stopper_restored_after_timeout_still_stops(monkeypatch):
    frozen = FrozenTime(monkeypatch)
    stopper = TimeoutStopper(timeout=datetime.timedelta(seconds=60))
    assert not stopper.stop_all()
    frozen.tick(62)
    assert stopper.stop_all()
    saved = pickle.dumps(stopper)
    frozen.tick(200)
    stopper = pickle.loads(saved)
    assert stopper.stop_all()


def test_timeout_stopper_reads_the_experiment_clock_at_call_time():
    stopper = TimeoutStopper(timeout=3600)  # made before the clock is installed
    clock = SimulatedClock()
    with use_clock(clock):
        assert not stopper.stop_all()
        clock.advance(3599)
        assert not stopper.stop_all()
        clock.advance(1)
        assert stopper.stop_all()


def test_timeout_stopper_with_its_own_clock_and_bad_arguments():
    clock = SimulatedClock()
    stopper = TimeoutStopper(10, clock=clock)
    assert not stopper.stop_all()
    clock.advance(10)
    assert stopper.stop_all()
    with pytest.raises(TuneConfigError, match="`timeout`"):
        TimeoutStopper(0)
    with pytest.raises(TypeError, match="`clock`"):
        TimeoutStopper(10, clock=time.monotonic)


# -- which stoppers read results (the engine skips answering results for the others) --------
def test_only_stoppers_that_read_results_say_so():
    from poptune.stopper import (
        CombinedStopper,
        FunctionStopper,
        MaximumIterationStopper,
        NoopStopper,
        as_stopper,
    )

    class Subclassed(NoopStopper):  # a user's stopper built on a no-op base
        def __call__(self, trial_id, result):
            return result["training_iteration"] > 3

    class OnlyStopsAll(NoopStopper):
        def stop_all(self):
            return False

    reads = [MaximumIterationStopper(2), FunctionStopper(lambda t, r: False), Subclassed(),
             as_stopper({"training_iteration": 3}), TrialPlateauStopper("loss"),
             ExperimentPlateauStopper("loss"), CombinedStopper(TimeoutStopper(5), Subclassed())]
    ignores = [NoopStopper(), TimeoutStopper(5), OnlyStopsAll(),
               CombinedStopper(NoopStopper(), TimeoutStopper(5))]
    assert [s.stops_on_results for s in reads] == [True] * len(reads)
    assert [s.stops_on_results for s in ignores] == [False] * len(ignores)


@pytest.mark.parametrize("stop", [object(), "score", 5, [tune.stopper.MaximumIterationStopper(2), "x"]])
def test_a_stop_of_no_accepted_kind_is_a_type_error_and_rays_value_error(stop):
    from poptune.exceptions import TuneConfigTypeError
    from poptune.stopper import as_stopper

    with pytest.raises(TuneConfigTypeError, match="`stop` must be") as info:
        as_stopper(stop)
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


def test_timeout_stopper_is_spent_when_the_clock_reads_its_deadline():
    """The budget is a deadline, not a sum of the intervals between checks (whose rounding
    left 2.2e-16 s of a 2 s budget at 2.0 s)."""
    clock = SimulatedClock()
    stopper = TimeoutStopper(2.0, clock=clock)
    assert not stopper.stop_all()
    for t in [0.2, 0.3, 0.5, 0.7, 0.75, 1.0, 1.05, 1.2, 1.5, 1.7, 1.8]:
        clock.advance_to(t)
        assert not stopper.stop_all()
    clock.advance_to(2.0)
    assert stopper.stop_all()


def test_timeout_stopper_time_left_and_pickled_after_a_clock_set_back(monkeypatch):
    from poptune.stopper import CombinedStopper, MaximumIterationStopper

    clock = SimulatedClock(start=100.0)
    stopper = TimeoutStopper(60, clock=clock)
    assert stopper._time_left() == 60.0  # the budget counts from the first check
    stopper.stop_all()
    clock.advance(45)
    assert stopper._time_left() == 15.0
    combined = CombinedStopper(MaximumIterationStopper(3), stopper, TimeoutStopper(10))
    assert combined._time_left() == 10.0  # the other's budget has not started yet
    assert CombinedStopper(MaximumIterationStopper(3))._time_left() is None
    stopper.stop_all()
    restored = pickle.loads(pickle.dumps(stopper))
    assert restored._time_left() == 15.0
    frozen = FrozenTime(monkeypatch)  # a real clock set back is not a refund
    real = TimeoutStopper(60)
    assert not real.stop_all()
    frozen.tick(40)
    assert not real.stop_all()
    frozen.tick(-100)
    assert not real.stop_all()
    frozen.tick(19)
    assert not real.stop_all()
    frozen.tick(1)
    assert real.stop_all()
