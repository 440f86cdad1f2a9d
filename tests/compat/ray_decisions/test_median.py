"""MedianStoppingRule: Ray 2.60's and poptune's decisions in the same K-slot simulation.

Same decisions in every run without NaN. Documented differences, asserted below (README row
"`MedianStoppingRule` with a NaN result, or after a trial completes"; median_stopping_rule.py
docstring): Ray lets a NaN result turn a trial's best or running mean into NaN, and counts a
completed trial's last result twice; poptune ignores NaN results and counts each result once.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("ray")

from ray.tune.schedulers import MedianStoppingRule as RayMedian  # noqa: E402

from poptune.schedulers import MedianStoppingRule  # noqa: E402
from tests.compat.ray_decisions._ray import (  # noqa: E402
    FakeController,
    LossFn,
    Run,
    decision,
    loss_cross,
    loss_distinct,
    ptrial,
    rtrial,
    simulate_poptune,
    simulate_ray,
)


def loss_tie(i: int, k: int) -> float:
    return float(i % 2)


def loss_nan(i: int, k: int) -> float:
    """:func:`loss_cross` with a NaN every fifth iteration of each trial."""
    return float("nan") if (i + k) % 5 == 0 else loss_cross(i, k)


#: (grace_period, min_samples_required, min_time_slice, hard_stop)
RULES = [(1, 3, 0, True), (3, 2, 0, True), (2, 3, 0, False), (1, 1, 2, True),
         (5, 3, 3, False), (0, 3, 0, True)]
#: (trials, slots, iterations per trial)
POOLS = [(6, 2, 12), (8, 3, 10), (5, 5, 8)]


def run_both(loss: LossFn, mode: str, rule: tuple[Any, ...],
             pool: tuple[int, int, int]) -> tuple[Run, Run]:
    grace, min_samples, min_slice, hard_stop = rule
    kw: dict[str, Any] = dict(time_attr="training_iteration", metric="loss", mode=mode,
                              grace_period=grace, min_samples_required=min_samples,
                              min_time_slice=min_slice, hard_stop=hard_stop)
    n, slots, iterations = pool
    return (simulate_ray(RayMedian(**kw), n, loss, slots, iterations),
            simulate_poptune(MedianStoppingRule(**kw), n, loss, slots, iterations))


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("rule", RULES)
def test_same_decisions_without_nan(rule, pool):
    for loss in (loss_distinct, loss_cross, loss_tie):
        for mode in ("min", "max"):
            ray_run, pop_run = run_both(loss, mode, rule, pool)
            assert ray_run == pop_run, (f"{loss.__name__} {mode}: "
                                        f"{ray_run.describe_difference(pop_run)}")


#: the runs with NaN results that differ: (mode, rule, trials, slots) -> (Ray's first
#: differing decision, poptune's decision there, whether every trial still ends the same).
#: Ray's running mean is NaN when its window holds a NaN, so that trial drops out of the
#: median and others PAUSE for want of samples (or are judged on fewer trials); a NaN best
#: makes Ray STOP. The other 13 runs of the grid decide the same.
NAN_DIFFERENCES = {
    ("min", (1, 3, 0, True), 8, 3): (("t2", 3, "PAUSE"), "CONTINUE", True),
    ("min", (3, 2, 0, True), 6, 2): (("t0", 4, "PAUSE"), "CONTINUE", True),
    ("min", (3, 2, 0, True), 8, 3): (("t5", 4, "PAUSE"), "CONTINUE", True),
    ("min", (2, 3, 0, False), 8, 3): (("t2", 4, "PAUSE"), "CONTINUE", True),
    ("min", (5, 3, 3, False), 6, 2): (("t4", 5, "PAUSE"), "CONTINUE", True),
    ("min", (5, 3, 3, False), 8, 3): (("t4", 5, "PAUSE"), "CONTINUE", True),
    ("min", (5, 3, 3, False), 5, 5): (("t4", 5, "PAUSE"), "CONTINUE", True),
    ("min", (0, 3, 0, True), 8, 3): (("t2", 3, "PAUSE"), "CONTINUE", True),
    ("max", (1, 3, 0, True), 6, 2): (("t2", 2, "PAUSE"), "STOP", False),
    ("max", (1, 3, 0, True), 8, 3): (("t6", 2, "PAUSE"), "CONTINUE", True),
    ("max", (3, 2, 0, True), 6, 2): (("t4", 3, "STOP"), "CONTINUE", False),
    ("max", (3, 2, 0, True), 8, 3): (("t4", 3, "STOP"), "CONTINUE", False),
    ("max", (3, 2, 0, True), 5, 5): (("t4", 3, "STOP"), "CONTINUE", False),
    ("max", (2, 3, 0, False), 6, 2): (("t4", 2, "PAUSE"), "CONTINUE", True),
    ("max", (2, 3, 0, False), 8, 3): (("t4", 2, "PAUSE"), "CONTINUE", True),
    ("max", (2, 3, 0, False), 5, 5): (("t4", 2, "PAUSE"), "CONTINUE", True),
    ("max", (1, 1, 2, True), 6, 2): (("t3", 5, "PAUSE"), "CONTINUE", True),
    ("max", (1, 1, 2, True), 8, 3): (("t3", 5, "PAUSE"), "CONTINUE", True),
    ("max", (5, 3, 3, False), 6, 2): (("t4", 5, "PAUSE"), "CONTINUE", True),
    ("max", (5, 3, 3, False), 8, 3): (("t4", 5, "PAUSE"), "CONTINUE", True),
    ("max", (5, 3, 3, False), 5, 5): (("t4", 5, "PAUSE"), "CONTINUE", True),
    ("max", (0, 3, 0, True), 6, 2): (("t2", 2, "PAUSE"), "STOP", False),
    ("max", (0, 3, 0, True), 8, 3): (("t6", 2, "PAUSE"), "CONTINUE", True),
}


@pytest.mark.parametrize("mode", ["min", "max"])
@pytest.mark.parametrize("rule", RULES)
def test_nan_results_differ_only_where_documented(mode, rule):
    # README row "`MedianStoppingRule` with a NaN result": Ray's NaN best or running mean vs
    # poptune ignoring NaN results
    for pool in POOLS:
        ray_run, pop_run = run_both(loss_nan, mode, rule, pool)
        label = f"{mode} rule={rule} trials/slots={pool[:2]}"
        expected = NAN_DIFFERENCES.get((mode, rule) + pool[:2])
        if expected is None:
            assert ray_run == pop_run, f"{label}: {ray_run.describe_difference(pop_run)}"
            continue
        i = ray_run.first_difference(pop_run)
        assert i is not None, f"{label}: now the same decisions as Ray (expected {expected})"
        ray_step, pop_step = ray_run.trace[i], pop_run.trace[i]
        got = (ray_step, pop_step[2], ray_run.final == pop_run.final)
        assert got == expected and pop_step[:2] == ray_step[:2], (
            f"{label}: {ray_run.describe_difference(pop_run)}")


def report(ray_sched: Any, pop_sched: Any, ray_trial: Any, pop_trial: Any, ctl: Any,
           k: int, loss: float) -> tuple[Any, Any]:
    """Both schedulers' decision on the same result."""
    result = {"training_iteration": k, "loss": loss}
    return (ray_sched.on_trial_result(ctl, ray_trial, dict(result)),
            decision(pop_sched.on_trial_result(pop_trial, dict(result))))


def pair(mode: str, grace_period: int) -> tuple[Any, Any, FakeController, dict, dict]:
    """Ray's and poptune's rule with trials a and b added."""
    kw: dict[str, Any] = dict(metric="loss", mode=mode, grace_period=grace_period,
                              min_samples_required=1, time_attr="training_iteration")
    ray_sched, pop_sched, ctl = RayMedian(**kw), MedianStoppingRule(**kw), FakeController()
    ray_trials = {tid: rtrial(tid) for tid in "ab"}
    pop_trials = {tid: ptrial(tid) for tid in "ab"}
    for tid in "ab":
        ray_sched.on_trial_add(ctl, ray_trials[tid])
        pop_sched.on_trial_add(pop_trials[tid])
    return ray_sched, pop_sched, ctl, ray_trials, pop_trials


def test_ray_counts_a_completed_trials_last_result_twice():
    # median_stopping_rule.py docstring: "a trial's final result is not counted twice (Ray
    # records it again at completion)". a: 1.0, 3.0, completes with 3.0; b's best 2.2 is
    # below Ray's mean of a, (1 + 3 + 3) / 3 = 2.33, and above poptune's, 2.0
    ray_sched, pop_sched, ctl, ray_trials, pop_trials = pair("max", 1)
    for k, loss in ((1, 1.0), (2, 3.0)):
        report(ray_sched, pop_sched, ray_trials["a"], pop_trials["a"], ctl, k, loss)
    last = {"training_iteration": 2, "loss": 3.0}
    ray_sched.on_trial_complete(ctl, ray_trials["a"], dict(last))
    pop_sched.on_trial_complete(pop_trials["a"], dict(last))
    first = report(ray_sched, pop_sched, ray_trials["b"], pop_trials["b"], ctl, 1, 1.5)
    assert first == ("CONTINUE", "CONTINUE")
    second = report(ray_sched, pop_sched, ray_trials["b"], pop_trials["b"], ctl, 2, 2.2)
    assert second == ("STOP", "CONTINUE"), f"b at 2 (loss 2.2): (Ray, poptune) = {second}"


@pytest.mark.parametrize("mode,good", [("max", 5.0), ("min", -5.0)])
def test_ray_stops_a_trial_whose_first_result_is_nan(mode, good):
    # README row "`MedianStoppingRule` with a NaN result": "a NaN first result makes the
    # trial's best NaN, which stops it at its first judged result however good its later
    # ones". a reports 0.0 three times; b NaN, then a result far better than a's
    ray_sched, pop_sched, ctl, ray_trials, pop_trials = pair(mode, 2)
    for k in (1, 2, 3):
        report(ray_sched, pop_sched, ray_trials["a"], pop_trials["a"], ctl, k, 0.0)
    first = report(ray_sched, pop_sched, ray_trials["b"], pop_trials["b"], ctl, 1,
                   float("nan"))
    assert first == ("CONTINUE", "CONTINUE"), f"b at 1 (NaN, before the grace period): {first}"
    second = report(ray_sched, pop_sched, ray_trials["b"], pop_trials["b"], ctl, 2, good)
    assert second == ("STOP", "CONTINUE"), f"b at 2 (loss {good}): (Ray, poptune) = {second}"
