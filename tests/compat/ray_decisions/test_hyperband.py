"""HyperBandScheduler: Ray 2.60's and poptune's decisions in the same K-slot simulation.

Same decisions whenever the brackets run in the same order. Documented differences, asserted
below: the bracket order (README row "`HyperBandScheduler` bracket order"; hyperband.py
docstring, "the total work differs"), a ``max_t`` that
is not a power of ``eta`` (same row; hyperband.py docstring "the last round's milestone is
``max_t`` itself") and the stop at the last milestone (hyperband.py docstring "a trial
reaching it is stopped at once rather than paused until its bracket completes").
"""

from __future__ import annotations

import math
from typing import Any

import pytest

pytest.importorskip("ray")

from ray.tune.schedulers import HyperBandScheduler as RayHyperBand  # noqa: E402
from ray.tune.schedulers.hyperband import _Bracket as RayBracket  # noqa: E402

from poptune.schedulers import HyperBandScheduler  # noqa: E402
from poptune.schedulers.hyperband import _Bracket  # noqa: E402
from tests.compat.ray_decisions._ray import (  # noqa: E402
    LossFn,
    Run,
    loss_cross,
    loss_distinct,
    simulate_poptune,
    simulate_ray,
)


def loss_tie(i: int, k: int) -> float:
    return float(i % 3)


LOSSES = (loss_distinct, loss_tie, loss_cross)
#: (max_t, eta, stop_last_trials) where both schedulers place the same milestones
SAME_MILESTONES = [(9, 3, True), (9, 3, False), (27, 3, True), (27, 3, False),
                   (16, 2, True), (16, 2, False), (8, 2, True), (8, 2, False),
                   (10, 3, False), (20, 4, False)]


def run_both(max_t: int, eta: int, n: int, slots: int, loss: LossFn, mode: str,
             stop_last_trials: bool) -> tuple[Run, Run]:
    """Ray's and poptune's run with the same arguments; trials return at ``max_t + 3``."""
    kw: dict[str, Any] = dict(metric="loss", mode=mode, max_t=max_t, reduction_factor=eta,
                              stop_last_trials=stop_last_trials)
    return (simulate_ray(RayHyperBand(**kw), n, loss, slots, max_iter=max_t + 3),
            simulate_poptune(HyperBandScheduler(**kw), n, loss, slots, max_iter=max_t + 3))


def last_milestone_as_stop(run: Run, max_t: int) -> Run:
    """Ray's run with its PAUSE of a trial at ``max_t`` (kept until its bracket completes,
    then stopped) read as poptune's immediate STOP (hyperband.py docstring)."""
    last = {tid: k for tid, k, _ in run.trace}

    def stops_there(tid: str, k: int, d: Any) -> bool:
        return (d == "PAUSE" and k == last[tid] and k >= max_t
                and run.final[tid][0] == "TERMINATED")

    return Run([(tid, k, "STOP" if stops_there(tid, k, d) else d) for tid, k, d in run.trace],
               run.final)


def variants() -> list[tuple[LossFn, str]]:
    return [(loss, mode) for loss in LOSSES for mode in ("min", "max")]


@pytest.mark.parametrize("slots", [1, 3])
@pytest.mark.parametrize("n", [5, 9])
@pytest.mark.parametrize("max_t,eta,stop_last", SAME_MILESTONES + [(20, 4, True)])
def test_same_decisions_when_the_brackets_run_in_the_same_order(max_t, eta, stop_last, n,
                                                                 slots):
    # with 5 or 9 trials and these slots, the brackets' order does not come into play; with
    # max_t=20, eta=4 they fill only the brackets whose milestones (5, 20) both place alike
    for loss, mode in variants():
        ray_run, pop_run = run_both(max_t, eta, n, slots, loss, mode, stop_last)
        if stop_last:
            ray_run = last_milestone_as_stop(ray_run, max_t)
        assert ray_run == pop_run, (f"{loss.__name__} {mode}: "
                                    f"{ray_run.describe_difference(pop_run)}")


def test_ray_pauses_a_trial_at_max_t_where_poptune_stops_it():
    # hyperband.py docstring: "a trial reaching it is stopped at once rather than paused
    # until its bracket completes (same outcome, no idle slot)"
    ray_run, pop_run = run_both(9, 3, 5, 1, loss_distinct, "min", True)
    diffs = [(r, p) for r, p in zip(ray_run.trace, pop_run.trace) if r != p]
    assert diffs, "Ray no longer pauses a trial that reaches max_t: update the docstring"
    for (rid, rk, rd), (pid, pk, pd) in diffs:
        assert (rid, rk, rd, pk, pd) == (pid, 9, "PAUSE", 9, "STOP"), (
            f"{rid} at {rk}: Ray {rd}, poptune {pid} at {pk}: {pd}")
    assert ray_run.final == pop_run.final


@pytest.mark.parametrize("slots", [1, 3])
@pytest.mark.parametrize("max_t,eta,stop_last", SAME_MILESTONES)
def test_bracket_order_differs_but_every_trial_ends_the_same(max_t, eta, stop_last, slots):
    # README row "`HyperBandScheduler` bracket order" (and hyperband.py docstring): Ray's
    # total work overcounts, so with 14 trials (several brackets) the trials run in another
    # order; each ends the same
    for loss, mode in variants():
        ray_run, pop_run = run_both(max_t, eta, 14, slots, loss, mode, stop_last)
        if stop_last:
            ray_run = last_milestone_as_stop(ray_run, max_t)
        label = f"{loss.__name__} {mode}"
        assert ray_run.final == pop_run.final, f"{label}: {ray_run.describe_difference(pop_run)}"
        assert ray_run.trace != pop_run.trace, (
            f"{label}: the same order as Ray now; update the README row")


@pytest.mark.parametrize("max_t,eta,s,ray_work,poptune_work", [
    (9, 3, 1, 27, 27), (9, 3, 2, 26, 21), (81, 3, 2, 414, 333), (81, 3, 4, 404, 297),
    (16, 2, 3, 92, 58)])
def test_total_work_of_a_bracket(max_t, eta, s, ray_work, poptune_work):
    # README row "`HyperBandScheduler` bracket order": "26 for max_t=9, eta=3, s=2, poptune 21"
    s_max = round(math.log(max_t) / math.log(eta))
    n0 = math.ceil((s_max + 1) / (s + 1) * eta**s)
    r0 = int(max_t * eta**-s)
    ray_bracket = RayBracket("training_iteration", n0, r0, max_t, eta, s)
    bracket = _Bracket(s=s, n=n0, r=r0, max_t=max_t, eta=eta, stop_last_trials=True)
    assert (ray_bracket._total_work, bracket.total_work) == (ray_work, poptune_work)


@pytest.mark.parametrize("max_t,eta,ray_last,n", [
    (10, 3, 9, 5), (10, 3, 9, 9), (10, 3, 9, 14), (20, 4, 16, 14)])
def test_survivors_run_to_max_t_not_to_the_last_power_of_eta(max_t, eta, ray_last, n):
    # README row "`HyperBandScheduler` bracket order": "a max_t that is not a power of eta
    # stops survivors at the last power (16 for max_t=20, eta=4)"; poptune runs them to max_t
    # (max_t=20, eta=4 needs 14 trials to fill the bracket with milestones 1, 4, 16/20)
    for slots in (1, 3):
        for loss, mode in variants():
            ray_run, pop_run = run_both(max_t, eta, n, slots, loss, mode, True)
            label = f"{loss.__name__} {mode} slots={slots}"
            survivors = [tid for tid, end in ray_run.final.items() if end != pop_run.final[tid]]
            assert survivors, f"{label}: Ray ran the survivors to max_t={max_t}"
            for tid in survivors:
                ends = (ray_run.final[tid], pop_run.final[tid])
                assert ends == (("TERMINATED", ray_last), ("TERMINATED", max_t)), (
                    f"{label}, {tid}: Ray ended {ends[0]}, poptune {ends[1]}")
