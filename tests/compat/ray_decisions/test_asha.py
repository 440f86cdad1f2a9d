"""AsyncHyperBandScheduler (ASHA): Ray 2.60's and poptune's decisions on the same results.

Same decisions for grace_period, reduction factors 2/2.5/3/4, min and max, max_t,
stop_last_trials True/False, ties, NaN and a custom ``time_attr``; with brackets > 1, the same
once both put each trial in the same bracket. Documented differences, asserted below
(async_hyperband.py docstring, "Where poptune differs from Ray Tune"): a ``None`` score, a
``time_attr`` that jumps over a rung, and the bracket draw's generator.
"""

from __future__ import annotations

import random
from typing import Any, Callable

import pytest

pytest.importorskip("ray")

from ray.tune.schedulers import AsyncHyperBandScheduler as RayASHA  # noqa: E402

from poptune.schedulers import AsyncHyperBandScheduler  # noqa: E402
from tests.compat.ray_decisions._ray import (  # noqa: E402
    FakeController,
    Row,
    assert_same,
    decision,
    global_random_state,
    outcome,
    ptrial,
    rtrial,
)

Draw = Callable[[random.Random], float]

#: scheduler arguments of the unit-step runs
UNIT_STEP_ARGS = [
    dict(metric="loss", mode="min", max_t=100, grace_period=1, reduction_factor=4),
    dict(metric="loss", mode="max", max_t=16, grace_period=1, reduction_factor=2),
    dict(metric="loss", mode="min", max_t=27, grace_period=3, reduction_factor=3),
    dict(metric="loss", mode="max", max_t=20, grace_period=2, reduction_factor=2.5),
    dict(metric="loss", mode="min", max_t=16, grace_period=1, reduction_factor=2,
         stop_last_trials=False),
    dict(metric="loss", mode="min", max_t=10, grace_period=1, reduction_factor=3,
         stop_last_trials=False),
]
BASE = dict(metric="loss", mode="min", max_t=16, grace_period=1, reduction_factor=2)
TIME_TOTAL = dict(time_attr="time_total_s", metric="loss", mode="min", max_t=100,
                  grace_period=1, reduction_factor=3)


def unit_step(rng: random.Random) -> float:
    return 1


def time_jump(rng: random.Random) -> float:
    return rng.uniform(0.5, 7)


def uniform_loss(rng: random.Random) -> float:
    return rng.random()


class Both:
    """Ray's and poptune's ASHA with the same arguments and the same trials t0, t1, ...

    Ray draws each trial's bracket from ``np.random`` when it is added (poptune seeds its
    generator from it when made): numpy's global state is seeded with ``draw_seed`` for
    that, and restored.
    """

    def __init__(self, n: int, draw_seed: int = 0, **kw: Any) -> None:
        self.ctl = FakeController()
        self.ray_trials = {f"t{i}": rtrial(f"t{i}") for i in range(n)}
        self.pop_trials = {f"t{i}": ptrial(f"t{i}") for i in range(n)}
        with global_random_state(draw_seed):
            self.ray, self.pop = RayASHA(**kw), AsyncHyperBandScheduler(**kw)
            for tid in self.ray_trials:
                self.ray.on_trial_add(self.ctl, self.ray_trials[tid])
                self.pop.on_trial_add(self.pop_trials[tid])

    def result(self, tid: str, result: dict[str, Any]) -> tuple[Any, Any]:
        return (outcome(lambda: self.ray.on_trial_result(self.ctl, self.ray_trials[tid],
                                                         dict(result))),
                decision(self.pop.on_trial_result(self.pop_trials[tid], dict(result))))

    def complete(self, tid: str, result: dict[str, Any]) -> None:
        self.ray.on_trial_complete(self.ctl, self.ray_trials[tid], dict(result))
        self.pop.on_trial_complete(self.pop_trials[tid], dict(result))


def fuzz(seed: int, n: int, kw: dict[str, Any], step: Draw = unit_step,
         loss: Draw = uniform_loss,
         note: Callable[[Both, str, float], str] | None = None) -> list[Row]:
    """Random trials report one result at a time (``step`` more ``time_attr``, ``loss``); a
    trial ends when either scheduler stops it, or past ``max_t``, as in a real run.
    ``note(both, trial_id, time)``, called before each result, is added to its label."""
    rng = random.Random(seed)
    both = Both(n, **kw)
    time_attr = kw.get("time_attr", "training_iteration")
    times: dict[str, float] = dict.fromkeys(both.ray_trials, 0)
    alive, rows = set(times), []
    while alive:
        tid = rng.choice(sorted(alive))
        times[tid] += step(rng)
        result = {time_attr: times[tid], "loss": loss(rng)}
        label = f"{tid} {result}" + (note(both, tid, times[tid]) if note else "")
        ray_d, pop_d = both.result(tid, result)
        rows.append((label, ray_d, pop_d))
        if "STOP" in (ray_d, pop_d) or times[tid] >= kw.get("max_t", 100) + 5:
            alive.discard(tid)
            both.complete(tid, result)
    return rows


@pytest.mark.parametrize("kw", UNIT_STEP_ARGS, ids=lambda kw: str(sorted(kw.items())))
def test_same_decisions_unit_steps(kw):
    for seed in range(5):
        assert_same(fuzz(seed, 12, kw), f"seed {seed}")


def test_same_decisions_with_ties():
    assert_same(fuzz(1, 10, BASE, loss=lambda g: g.choice([0.5, 1.0])), "ties")


@pytest.mark.filterwarnings("ignore:All-NaN slice:RuntimeWarning")  # Ray's nanpercentile
@pytest.mark.parametrize("mode,seed,nan_share", [("min", 2, 0.3), ("max", 3, 0.5)])
def test_same_decisions_with_nan_scores(mode, seed, nan_share):
    def loss(g: random.Random) -> float:
        return float("nan") if g.random() < nan_share else g.random()

    assert_same(fuzz(seed, 10, dict(BASE, mode=mode), loss=loss), f"NaN scores, {mode}")


@pytest.mark.parametrize("seed", range(3))
def test_same_decisions_time_jumps_without_stop_last_trials(seed):
    kw = dict(TIME_TOTAL, stop_last_trials=False)
    assert_same(fuzz(seed, 10, kw, step=time_jump), f"time_total_s jumps, seed {seed}")


def test_same_decisions_custom_time_attr():
    kw = dict(TIME_TOTAL, time_attr="epochs", max_t=50)
    assert_same(fuzz(7, 10, kw), "time_attr=epochs")


@pytest.mark.parametrize("results", [
    [{"training_iteration": 1}, {"loss": 1.0}],  # the metric missing, then time_attr
    [{"training_iteration": 16, "loss": 1.0}, {"training_iteration": 17, "loss": 1.0}],
], ids=["missing keys", "max_t reached"])
@pytest.mark.parametrize("stop_last_trials", [True, False])
def test_same_decisions_on_single_results(results, stop_last_trials):
    both = Both(1, **dict(BASE, stop_last_trials=stop_last_trials))
    assert_same([(str(r), *both.result("t0", r)) for r in results], "single results")


@pytest.mark.parametrize("earlier", [[1.0], []], ids=["rung holds a score", "empty rung"])
def test_a_none_score_raises_in_ray_and_continues_in_poptune(earlier):
    # async_hyperband.py docstring: "a None or NaN score never stops a trial (Ray raises
    # TypeError on None)"
    both = Both(2, **BASE)
    for loss in earlier:
        assert both.result("t1", {"training_iteration": 1, "loss": loss}) == ("CONTINUE",) * 2
    got = both.result("t0", {"training_iteration": 1, "loss": None})
    assert got == ("raise TypeError", "CONTINUE"), f"t0 with loss None: (Ray, poptune) = {got}"
    got = both.result("t0", {"training_iteration": 2, "loss": 5.0})
    assert got[0] == got[1], f"t0 at 2 after a None: Ray {got[0]}, poptune {got[1]}"


SKIPPED_RUNG = " (Ray: judged at a skipped rung)"
REJUDGED_SCORES = " (Ray: the rung holds scores of trials judged there after a skip)"


def ray_rung(both: Both, tid: str, time: float) -> tuple[int, float, dict[str, float]]:
    """(index, milestone, recorded scores) of the rung Ray judges ``tid`` at, at ``time``
    (its rungs are highest first: the first one reached and not yet recorded at)."""
    rungs = both.ray._trial_info[tid]._rungs
    for i, (milestone, recorded) in enumerate(rungs):
        if time >= milestone and tid not in recorded:
            return i, milestone, recorded
    return -1, 0.0, {}


def skipped_rung(both: Both, tid: str, time: float) -> str:
    """Why Ray's judgement of ``tid`` at ``time`` may differ from poptune's because of a
    jump over a rung: :data:`SKIPPED_RUNG` (Ray judges it below a rung it is recorded at),
    :data:`REJUDGED_SCORES` (Ray's rung holds scores poptune's does not), else ``""``."""
    i, milestone, recorded = ray_rung(both, tid, time)
    if i < 0:
        return ""
    if any(tid in higher for _, higher in both.ray._trial_info[tid]._rungs[:i]):
        return SKIPPED_RUNG
    pop_bracket = both.pop._brackets[both.pop._trial_info[tid]]
    pop_recorded = next((rec for m, rec in pop_bracket.rungs if m == milestone), {})
    return REJUDGED_SCORES if set(recorded) - set(pop_recorded) else ""


@pytest.mark.parametrize("seed", range(3))
def test_ray_judges_again_at_a_skipped_rung_poptune_does_not(seed):
    # async_hyperband.py docstring: "When time_attr jumps over a rung, Ray with
    # stop_last_trials=True judges the trial again at the skipped, lower rung on its next
    # result; poptune never goes back down". Ray also records that score at the lower rung,
    # so other trials judged there later face another cutoff.
    rows = fuzz(seed, 10, TIME_TOTAL, step=time_jump, note=skipped_rung)
    differing = [(label, r, p) for label, r, p in rows if r != p]
    assert differing, f"seed {seed}: Ray no longer judges a trial at a skipped rung"
    for label, ray_d, pop_d in differing:
        why = label.endswith(SKIPPED_RUNG) or label.endswith(REJUDGED_SCORES)
        assert (ray_d, pop_d) == ("STOP", "CONTINUE") and why, (
            f"{label}: Ray {ray_d}, poptune {pop_d}")


BRACKETS = dict(metric="loss", mode="min", max_t=81, grace_period=1, reduction_factor=3,
                brackets=3)


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_the_bracket_draw_uses_another_generator_over_the_same_rungs(seed):
    # async_hyperband.py docstring: "the bracket draw uses the scheduler's own generator
    # (seed)"; Ray draws from np.random, so the same seed puts trials in other brackets
    ray_draws, pop_draws = [], []
    with global_random_state(seed):
        ray, pop = RayASHA(**BRACKETS), AsyncHyperBandScheduler(**BRACKETS, seed=seed)
        for i in range(20):
            ray_trial, pop_trial = rtrial(f"t{i}"), ptrial(f"t{i}")
            ray.on_trial_add(FakeController(), ray_trial)
            pop.on_trial_add(pop_trial)
            ray_draws.append(ray._brackets.index(ray._trial_info[ray_trial.trial_id]))
            pop_draws.append(pop._trial_info[pop_trial.trial_id])
    assert ray_draws != pop_draws, f"seed {seed}: poptune now draws Ray's brackets {ray_draws}"
    ray_rungs = [[m for m, _ in b._rungs] for b in ray._brackets]
    pop_rungs = [[m for m, _ in b.rungs] for b in pop._brackets]
    assert ray_rungs == pop_rungs == [[81, 27, 9, 3, 1], [81, 27, 9, 3], [81, 27, 9]]


def test_same_decisions_with_brackets_given_the_same_draw():
    both = Both(15, draw_seed=3, **BRACKETS)
    for tid in both.ray_trials:  # poptune's trials join the brackets Ray drew for them
        both.pop._trial_info[tid] = both.ray._brackets.index(both.ray._trial_info[tid])
    rng = random.Random(5)
    times = dict.fromkeys(both.ray_trials, 0)
    alive, rows = set(times), []
    while alive:
        tid = rng.choice(sorted(alive))
        times[tid] += 1
        result = {"training_iteration": times[tid], "loss": rng.random()}
        ray_d, pop_d = both.result(tid, result)
        rows.append((f"{tid} {result}", ray_d, pop_d))
        if "STOP" in (ray_d, pop_d):
            alive.discard(tid)
    assert_same(rows, "brackets=3, the same assignment")
