"""HyperBandForBOHB: Ray 2.60's and poptune's decisions in the same K-slot simulation (the
scheduler only: Ray's TuneBOHB needs hpbandster and ConfigSpace, which are not installed
here; poptune's TuneBOHB needs neither and is not compared).

The same: the brackets (largest first, same sizes and milestones), every decision of every
run whose milestones both place alike, including several brackets and bands (BOHB takes
brackets in band order, so HyperBand's bracket-order difference does not arise). Ray's
PAUSE of a trial at ``max_t`` is read as poptune's STOP (test_hyperband.py).

Differences, asserted below: a ``max_t`` that is not a power of ``eta`` (README row
"`HyperBandScheduler` bracket order"; hyperband.py docstring, "the last round's milestone is
``max_t`` itself"); Ray calls the searcher's ``on_pause``/``on_unpause`` and writes
``result["hyperband_info"]`` where poptune's scheduler leaves both alone (hb_bohb.py
docstring, "How results reach the searcher"); when nothing runs, poptune halves every
waiting bracket at once, Ray only the first one (in band order) that frees a trial, so the
trials can run in another order (named by no README row or docstring; each trial ends the
same). Trials ending early and NaN metrics: test_hyperband_edges.py.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

pytest.importorskip("ray")

from ray.tune.schedulers import HyperBandForBOHB as RayBOHB  # noqa: E402

from poptune.schedulers import HyperBandForBOHB  # noqa: E402
from tests.compat.ray_decisions._ray import (  # noqa: E402
    _RaySide,
    decision,
    loss_distinct,
    ptrial,
    rtrial,
)
from tests.compat.ray_decisions.test_hyperband import LOSSES  # noqa: E402
from tests.compat.ray_decisions.test_hyperband_edges import (  # noqa: E402
    BOHB,
    SearcherController,
    run_both,
    simulate_edges,
)

#: (max_t, eta) where both place the same milestones (powers of eta)
POWERS = [(9, 3), (27, 3), (16, 2), (8, 2)]


def bands(scheduler: Any) -> list[list[tuple[int, int, float]]]:
    """Each band's brackets as (s, size, milestone); Ray's or poptune's."""
    if hasattr(scheduler, "_hyperbands"):
        return [[(b._halves, b._n, b._r) for b in band if b is not None]
                for band in scheduler._hyperbands]
    return [[(b.s, b.n, b.r) for b in band if b is not None] for band in scheduler._bands]


@pytest.mark.parametrize("max_t,eta", POWERS + [(10, 3), (20, 4), (81, 3)])
def test_same_brackets_largest_first(max_t, eta):
    kw: dict[str, Any] = dict(metric="loss", mode="min", max_t=max_t, reduction_factor=eta)
    ray, pop = RayBOHB(**kw), HyperBandForBOHB(**kw)
    for i in range(60):
        ray.on_trial_add(None, rtrial(f"t{i}"))
        pop.on_trial_add(ptrial(f"t{i}"))
    assert bands(ray) == bands(pop)
    first = bands(pop)[0]
    assert [s for s, _, _ in first] == sorted((s for s, _, _ in first), reverse=True)


@pytest.mark.parametrize("stop_last", [True, False])
@pytest.mark.parametrize("max_t,eta", POWERS)
def test_same_decisions(max_t, eta, stop_last):
    # 5 to 20 trials (several brackets, a second band for 20 with max_t=8 or 9), 1 or 3
    # slots, distinct, tied and crossing losses, min and max
    for n, slots, loss, mode in itertools.product([5, 9, 14, 20], [1, 3], LOSSES,
                                                  ["min", "max"]):
        ray_run, pop_run, _ = run_both(BOHB, n, loss, slots, max_t, eta, mode, {}, stop_last)
        assert ray_run == pop_run, (f"n={n} slots={slots} {loss.__name__} {mode}: "
                                    f"{ray_run.describe_difference(pop_run)}")


@pytest.mark.parametrize("max_t,eta,ray_last", [(10, 3, 9), (20, 4, 16)])
def test_survivors_run_to_max_t_not_to_the_last_power_of_eta(max_t, eta, ray_last):
    # README row "`HyperBandScheduler` bracket order": "a max_t that is not a power of eta
    # stops survivors at the last power"; poptune runs them to max_t. Every other trial
    # ends the same
    for n, slots, loss, mode in itertools.product([5, 9, 14], [1, 3], LOSSES,
                                                  ["min", "max"]):
        ray_run, pop_run, _ = run_both(BOHB, n, loss, slots, max_t, eta, mode, {})
        label = f"n={n} slots={slots} {loss.__name__} {mode}"
        differ = [tid for tid in ray_run.final if ray_run.final[tid] != pop_run.final[tid]]
        assert differ, f"{label}: Ray ran the survivors to max_t={max_t}"
        for tid in differ:
            ends = (ray_run.final[tid], pop_run.final[tid])
            assert ends == (("TERMINATED", ray_last), ("TERMINATED", max_t)), (
                f"{label}, {tid}: Ray ended {ends[0]}, poptune {ends[1]}")


def test_ray_tells_the_searcher_poptune_leaves_it_to_the_runner():
    # hb_bohb.py docstring, "How results reach the searcher": Ray calls on_pause for every
    # PAUSE it decides and on_unpause for every trial a halving frees, through the
    # controller; poptune's hooks get no controller (its runner hands each result to the
    # searcher), and decide the same (test_same_decisions)
    ray_side = _RaySide(RayBOHB(metric="loss", mode="min", max_t=9, reduction_factor=3), 14)
    ray_side.ctl = SearcherController(ray_side.scheduler, ray_side.trials)
    ray_run = simulate_edges(ray_side, lambda side, trial: None, loss_distinct, 3, 12, {})
    calls = ray_side.ctl.alg.searcher.calls
    pauses = [tid for tid, _, d in ray_run.trace if d == "PAUSE"]
    assert [tid for what, tid in calls if what == "on_pause"] == pauses
    unpaused = [tid for what, tid in calls if what == "on_unpause"]
    assert unpaused and set(unpaused) <= set(pauses)


def test_ray_writes_hyperband_info_into_the_result_poptune_does_not():
    # hb_bohb.py docstring: Ray writes result["hyperband_info"]["budget"] (the milestone,
    # here 1) into the result of a trial reaching its milestone; poptune never changes a
    # result (the same PAUSE)
    ray = RayBOHB(metric="loss", mode="min", max_t=9, reduction_factor=3)
    pop = HyperBandForBOHB(metric="loss", mode="min", max_t=9, reduction_factor=3)
    ray_trial, pop_trial = rtrial("t0"), ptrial("t0")
    ctl = SearcherController(ray, [ray_trial])
    ray.on_trial_add(ctl, ray_trial)
    pop.on_trial_add(pop_trial)
    ray_result = {"training_iteration": 1, "loss": 0.5}
    pop_result = dict(ray_result)
    assert ray.on_trial_result(ctl, ray_trial, ray_result) == "PAUSE"
    assert decision(pop.on_trial_result(pop_trial, pop_result)) == "PAUSE"
    assert ray_result["hyperband_info"] == {"budget": 1}
    assert pop_result == {"training_iteration": 1, "loss": 0.5}


def test_poptune_halves_every_waiting_bracket_at_once():
    # max_t=4, eta=2, 5 trials, 1 slot, min: brackets s=2 (t0-t3, milestone 1) and s=1 (t4,
    # milestone 2). t0 returns after 1 and t1 after 2, so neither bracket is full when its
    # trials wait. When nothing runs, Ray halves s=2 and runs its survivor t1 at once;
    # poptune halves s=2 and s=1 together. After t1 returns and t2 waits at 2, Ray halves
    # s=2 again and runs t2, poptune runs t4 (freed earlier) first. Each trial ends the same
    ends = {0: (1, "done"), 1: (2, "done")}
    ray_run, pop_run, _ = run_both(BOHB, 5, loss_distinct, 1, 4, 2, "min", ends)
    first = ray_run.first_difference(pop_run)
    assert first == 8, ray_run.describe_difference(pop_run)
    assert ray_run.trace[first:] == [("t2", 3, "CONTINUE"), ("t2", 4, "STOP"),
                                     ("t4", 3, "CONTINUE"), ("t4", 4, "STOP")]
    assert pop_run.trace[first:] == [("t4", 3, "CONTINUE"), ("t4", 4, "STOP"),
                                     ("t2", 3, "CONTINUE"), ("t2", 4, "STOP")]
    assert ray_run.final == pop_run.final
