"""HyperBandScheduler and HyperBandForBOHB at their edges: Ray 2.60's and poptune's decisions
when trials end early (an error, or the function returning before its milestone) and when
the metric is NaN or missing, in the K-slot simulation of ``_ray.py``.

The same decisions, step by step, whenever Ray re-examines the bracket a trial leaves. Ray
does not when the bracket has been halved already or the leaving trial was the last one
short of the milestone (``on_trial_remove``: "not bracket.finished() and not
bracket.is_being_processed"); poptune always does (hyperband.py docstring, first point:
"the remaining paused trials never hang"). Then Ray's HyperBand leaves the bracket's
paused trials PAUSED for good (waiting at ``max_t``, where poptune has stopped them, or at
a milestone between, where poptune halves the bracket); Ray's HyperBandForBOHB halves the
bracket later, when nothing runs, so only the order can differ.

NaN: poptune ranks a NaN score last (hyperband.py docstring, "a missing or NaN metric ranks
last"); Ray sorts the scores with NaN among them, which leaves the order of the others
arbitrary too: a halving can keep the NaN trial or stop the best one. Asserted as the same
decisions whenever no NaN score is ranked at a halving, and on two small examples. A result
without the metric or without ``time_attr``: Ray raises ``KeyError``, poptune ranks the
trial last / ignores the result (same docstring point).
"""

from __future__ import annotations

import math
import random
from typing import Any, Callable

import pytest

pytest.importorskip("ray")

from ray.tune.schedulers import HyperBandForBOHB as RayBOHB  # noqa: E402
from ray.tune.schedulers import HyperBandScheduler as RayHyperBand  # noqa: E402

from poptune.experiment.trial import TrialStatus  # noqa: E402
from poptune.schedulers import HyperBandForBOHB, HyperBandScheduler  # noqa: E402
from tests.compat.ray_decisions._ray import (  # noqa: E402
    LossFn,
    Run,
    _PoptuneSide,
    _RaySide,
    _SimController,
    decision,
    loss_cross,
    loss_distinct,
    ptrial,
    rtrial,
)
from tests.compat.ray_decisions.test_hyperband import last_milestone_as_stop  # noqa: E402

#: (Ray's class, poptune's class)
HB = (RayHyperBand, HyperBandScheduler)
BOHB = (RayBOHB, HyperBandForBOHB)
#: trial index -> (iteration, "error" | "done"): the trial raises instead of reporting that
#: iteration, or its function returns after reporting it
Ends = dict[int, tuple[int, str]]


class _Searcher:
    """The two calls Ray's HyperBandForBOHB makes on the searcher (recorded)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def on_pause(self, trial_id: str) -> None:
        self.calls.append(("on_pause", trial_id))

    def on_unpause(self, trial_id: str) -> None:
        self.calls.append(("on_unpause", trial_id))


class _SearchAlg:
    def __init__(self) -> None:
        self.searcher = _Searcher()


class SearcherController(_SimController):
    """The simulator's controller with a search algorithm, as Ray's HyperBandForBOHB needs."""

    def __init__(self, scheduler: Any, trials: list[Any]) -> None:
        super().__init__(scheduler, trials)
        self.alg = _SearchAlg()

    @property
    def search_alg(self) -> _SearchAlg:  # type: ignore[override]
        return self.alg


class RayWatch:
    """What Ray's scheduler did at the edges: whether its ``on_trial_remove`` skipped the
    bracket of a trial that ended early while others were still in it, and whether a
    halving ranked a NaN score."""

    def __init__(self, scheduler: Any) -> None:
        self.ending: str | None = None  # the trial ending early right now
        self.skipped_bracket = False
        self.nan_at_halving = False
        remove, create = scheduler.on_trial_remove, scheduler._create_bracket

        def on_trial_remove(controller: Any, trial: Any) -> None:
            bracket, _ = scheduler._trial_info[trial]
            others = [t for t in bracket._live_trials if t is not trial]
            if self.ending == trial.trial_id and others:
                result = bracket._live_trials.pop(trial, None)
                self.skipped_bracket |= bracket.finished() or bracket.is_being_processed
                bracket._live_trials[trial] = result
            remove(controller, trial)

        def create_bracket(s: int) -> Any:
            bracket = create(s)
            halve = bracket.successive_halving

            def successive_halving(metric: str, metric_op: float) -> Any:
                results = bracket._live_trials.values()
                self.nan_at_halving |= any(r is not None and _is_nan(r.get(metric))
                                           for r in results)
                return halve(metric, metric_op)

            bracket.successive_halving = successive_halving
            return bracket

        scheduler.on_trial_remove = on_trial_remove
        scheduler._create_bracket = create_bracket


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _ray_error(side: _RaySide, trial: Any) -> None:
    """Ray's controller: the scheduler hook, then the ERROR status."""
    side.scheduler.on_trial_error(side.ctl, trial)
    trial.status = "ERROR"


def _poptune_error(side: _PoptuneSide, trial: Any) -> None:
    """poptune's controller: the ERROR status, then the scheduler hook (its actions)."""
    trial.status = TrialStatus.ERROR
    side._act(side.scheduler.on_trial_error(trial))


def simulate_edges(side: Any, error: Callable[[Any, Any], None], loss: LossFn, slots: int,
                   max_iter: int, ends: Ends, watch: RayWatch | None = None) -> Run:
    """``_ray._simulate`` with trials ending early (``ends``); an error is the decision
    ``"ERROR"`` at the iteration the trial failed to report."""
    trials = side.trials
    iterations = {t.trial_id: 0 for t in trials}
    trace: list[tuple[str, int, Any]] = []
    side.start()
    for _ in range(5000):
        while sum(side.status(t) == "RUNNING" for t in trials) < slots and side.launch():
            pass
        running = [t for t in trials if side.status(t) == "RUNNING"]
        if not running:
            break
        trial = min(running, key=lambda t: (iterations[t.trial_id], trials.index(t)))
        i, k = trials.index(trial), iterations[trial.trial_id] + 1
        end = ends.get(i)
        early = end is not None and end[0] == k and (end[1] == "error" or k < max_iter)
        if watch is not None:
            watch.ending = trial.trial_id if early else None
        if end == (k, "error"):
            error(side, trial)
            trace.append((trial.trial_id, k, "ERROR"))
            continue
        iterations[trial.trial_id] = k
        result = {"training_iteration": k, "loss": loss(i, k), "done": False}
        last = k >= max_iter or end == (k, "done")
        trace.append((trial.trial_id, k, side.result(trial, result, last)))
    return Run(trace, {t.trial_id: (side.status(t), iterations[t.trial_id]) for t in trials})


def run_both(classes: tuple[type, type], n: int, loss: LossFn, slots: int, max_t: int,
             eta: int, mode: str, ends: Ends, stop_last_trials: bool = True
             ) -> tuple[Run, Run, RayWatch]:
    """Ray's run (its pause at ``max_t`` read as poptune's stop, test_hyperband.py),
    poptune's run and what Ray did at the edges; trials return at ``max_t + 3``."""
    kw: dict[str, Any] = dict(metric="loss", mode=mode, max_t=max_t, reduction_factor=eta,
                              stop_last_trials=stop_last_trials)
    ray_side = _RaySide(classes[0](**kw), n)
    ray_side.ctl = SearcherController(ray_side.scheduler, ray_side.trials)
    watch = RayWatch(ray_side.scheduler)
    ray_run = simulate_edges(ray_side, _ray_error, loss, slots, max_t + 3, ends, watch)
    pop_run = simulate_edges(_PoptuneSide(classes[1](**kw), n), _poptune_error, loss, slots,
                             max_t + 3, ends)
    if stop_last_trials:
        ray_run = last_milestone_as_stop(ray_run, max_t)
    return ray_run, pop_run, watch


def random_ends(rng: random.Random, n: int, max_t: int, kind: str) -> Ends:
    """Up to half the trials end early, at random iterations (``kind``: error, done, mixed)."""
    chosen = rng.sample(range(n), rng.randint(1, max(1, n // 2)))
    return {i: (rng.randint(1, max_t), rng.choice(["error", "done"]) if kind == "mixed"
                else kind) for i in chosen}


#: (max_t, eta) placing the same milestones in both (test_hyperband.py)
POWERS = [(9, 3), (27, 3), (16, 2), (8, 2)]


def sweep(classes: tuple[type, type], kind: str, cases: int, seed: int) -> list[tuple]:
    """``cases`` random runs (n 5 or 9, 1 or 3 slots: the brackets' order does not come into
    play, test_hyperband.py) with trials ending early: (label, Ray's run, poptune's run,
    Ray's watch)."""
    rng, runs = random.Random(seed), []
    for _ in range(cases):
        max_t, eta = rng.choice(POWERS)
        n, slots, mode = rng.choice([5, 9]), rng.choice([1, 3]), rng.choice(["min", "max"])
        loss = rng.choice([loss_distinct, loss_cross])
        ends = random_ends(rng, n, max_t, kind)
        label = f"max_t={max_t} eta={eta} n={n} slots={slots} {mode} {loss.__name__} {ends}"
        runs.append((label, *run_both(classes, n, loss, slots, max_t, eta, mode, ends)))
    return runs


# --- trials ending early -------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["error", "done", "mixed"])
def test_hyperband_same_decisions_unless_ray_skips_the_bracket(kind):
    runs = sweep(HB, kind, cases=60, seed=1)
    skipped = 0
    for label, ray_run, pop_run, watch in runs:
        if not watch.skipped_bracket:
            assert ray_run == pop_run, f"{label}: {ray_run.describe_difference(pop_run)}"
            continue
        skipped += 1
        # hyperband.py docstring, first point: Ray's paused trials stay PAUSED; poptune
        # halves the bracket (a survivor may train on) and every trial ends
        for tid, (status, k) in ray_run.final.items():
            pop_status, pop_k = pop_run.final[tid]
            assert (status, k) == (pop_status, pop_k) or (
                status == "PAUSED" and pop_status == "TERMINATED" and pop_k >= k), (
                f"{label}, {tid}: Ray {status} at {k}, poptune {pop_status} at {pop_k}")
        assert "PAUSED" not in {s for s, _ in pop_run.final.values()}, label
    assert skipped >= 5, f"only {skipped} of {len(runs)} runs left a bracket Ray skipped"


@pytest.mark.parametrize("kind", ["error", "done", "mixed"])
def test_hyperband_for_bohb_every_trial_ends_the_same(kind):
    # Ray's HyperBandForBOHB halves a bracket it skipped once nothing runs (its
    # choose_trial_to_run), so every trial ends as in poptune; the order can differ (that,
    # and poptune halving every waiting bracket at once: test_hyperband_bohb.py)
    runs = sweep(BOHB, kind, cases=60, seed=2)
    for label, ray_run, pop_run, _ in runs:
        assert ray_run.final == pop_run.final, f"{label}: {ray_run.describe_difference(pop_run)}"
    same = sum(ray_run == pop_run for _, ray_run, pop_run, _ in runs)
    skipped = sum(watch.skipped_bracket for *_, watch in runs)
    assert same >= len(runs) * 3 // 4, f"only {same} of {len(runs)} runs in the same order"
    assert skipped >= 5, f"only {skipped} of {len(runs)} runs left a bracket Ray skipped"


def test_hyperband_error_after_a_halving_leaves_ray_trials_paused():
    # max_t=16, eta=2, 5 trials, 1 slot: t1-t3 reach 16 and wait for the bracket; t0 and t4
    # error at 5 after its halving. Ray's on_trial_remove skips the halved bracket: t1-t3
    # stay PAUSED for good; poptune stops them at 16
    ends = {0: (5, "error"), 4: (5, "error")}
    ray_run, pop_run, watch = run_both(HB, 5, loss_cross, 1, 16, 2, "min", ends)
    assert watch.skipped_bracket
    first = ray_run.first_difference(pop_run)
    assert (ray_run.trace[first], pop_run.trace[first]) == (("t1", 16, "PAUSE"),
                                                            ("t1", 16, "STOP"))
    assert ray_run.final == {"t0": ("ERROR", 4), "t1": ("PAUSED", 16), "t2": ("PAUSED", 16),
                             "t3": ("PAUSED", 16), "t4": ("ERROR", 4)}
    assert pop_run.final == {**ray_run.final, "t1": ("TERMINATED", 16),
                             "t2": ("TERMINATED", 16), "t3": ("TERMINATED", 16)}


def test_hyperband_error_between_milestones_leaves_ray_trials_paused():
    # max_t=9, eta=3, 17 trials (brackets s=0: t0-t2, s=1: t3-t7, s=2: t8-t16, milestones
    # 1, 3, 9), 1 slot: s=2's first halving keeps t8, t13, t14; t8 and t13 wait at 3, t14
    # errors at 2. Ray leaves t8 and t13 PAUSED at 3 for good; poptune halves the bracket:
    # t13 trains to 9, t8 stops. Every other trial ends the same
    ray_run, pop_run, watch = run_both(HB, 17, loss_distinct, 1, 9, 3, "min",
                                       {14: (2, "error")})
    assert watch.skipped_bracket
    differ = {tid: (ray_run.final[tid], pop_run.final[tid]) for tid in ray_run.final
              if ray_run.final[tid] != pop_run.final[tid]}
    assert differ == {"t8": (("PAUSED", 3), ("TERMINATED", 3)),
                      "t13": (("PAUSED", 3), ("TERMINATED", 9))}


def test_hyperband_last_trial_short_of_max_t_erroring_leaves_ray_trials_paused():
    # max_t=8, eta=2, 5 trials, 1 slot: bracket s=0 (t0-t3) trains to 8 with no halving;
    # t0-t2 wait at 8, t3 errors at 6. The bracket is then finished, so Ray's
    # on_trial_remove skips it (never halved, yet skipped: "not bracket.finished()"):
    # t0-t2 stay PAUSED; poptune stops them at 8
    ray_run, pop_run, watch = run_both(HB, 5, loss_distinct, 1, 8, 2, "min",
                                       {3: (6, "error")})
    assert watch.skipped_bracket
    assert [tid for tid, (status, _) in ray_run.final.items() if status == "PAUSED"] == [
        "t0", "t1", "t2"]
    assert pop_run.final == {**ray_run.final, "t0": ("TERMINATED", 8),
                             "t1": ("TERMINATED", 8), "t2": ("TERMINATED", 8)}


# --- NaN and missing values ----------------------------------------------------------------

def loss_nan(i: int, k: int) -> float:
    """NaN at some (trial, iteration) pairs."""
    return float("nan") if (i * 5 + k) % 17 == 0 else loss_distinct(i, k)


def loss_nan_late(i: int, k: int) -> float:
    """NaN from iteration 3 on for t1, t5, t9, ..."""
    return float("nan") if i % 4 == 1 and k >= 3 else loss_cross(i, k)


def loss_nan_trials(i: int, k: int) -> float:
    """Always NaN for t1, t4, t7, ..."""
    return float("nan") if i % 3 == 1 else loss_distinct(i, k)


@pytest.mark.parametrize("classes", [HB, BOHB], ids=["HyperBand", "HyperBandForBOHB"])
def test_same_decisions_unless_a_nan_score_is_ranked(classes):
    rng, compared, differ = random.Random(3), 0, 0
    for _ in range(60):
        max_t, eta = rng.choice(POWERS)
        n, slots, mode = rng.choice([5, 9]), rng.choice([1, 3]), rng.choice(["min", "max"])
        loss = rng.choice([loss_nan, loss_nan_late, loss_nan_trials])
        ray_run, pop_run, watch = run_both(classes, n, loss, slots, max_t, eta, mode, {})
        label = f"max_t={max_t} eta={eta} n={n} slots={slots} {mode} {loss.__name__}"
        if not watch.nan_at_halving:
            compared += 1
            assert ray_run == pop_run, f"{label}: {ray_run.describe_difference(pop_run)}"
        differ += ray_run.final != pop_run.final
    assert compared >= 10, f"only {compared} runs without a NaN at a halving"
    assert differ >= 10, f"only {differ} runs ended otherwise: is NaN ranked alike now?"


def halving_of_four(losses: list[float]) -> tuple[Run, Run]:
    """HyperBandForBOHB, max_t=4, eta=2, mode min, 1 slot: its first bracket (s=2) holds 4
    trials, reporting ``losses`` at iteration 1 (then 0.5), and keeps 2 at its halving."""
    ray_run, pop_run, _ = run_both(BOHB, 4, lambda i, k: losses[i] if k == 1 else 0.5, 1,
                                   4, 2, "min", {})
    return ray_run, pop_run


def survivors(run: Run) -> set[str]:
    """The trials that trained past iteration 1: the first halving's survivors."""
    return {tid for tid, (_, k) in run.final.items() if k > 1}


def test_ray_halving_with_a_nan_stops_the_best_trial():
    # HyperBandForBOHB, losses 0.1 (best), NaN, 0.3, 0.2: Ray sorts the scores
    # [-0.1, nan, -0.3, -0.2] and keeps the last two (t2, t3), stopping the best trial t0;
    # poptune ranks NaN last and keeps t0 and t3
    ray_run, pop_run = halving_of_four([0.1, float("nan"), 0.3, 0.2])
    assert (survivors(ray_run), survivors(pop_run)) == ({"t2", "t3"}, {"t0", "t3"})


def test_ray_halving_keeps_a_nan_trial_reported_last():
    # HyperBandForBOHB, losses 0.1, 0.2, 0.3, NaN: Ray's sort of [-0.1, -0.2, -0.3, nan]
    # leaves the NaN of t3 at the top, so t3 survives with t0 and the second best, t1, is
    # stopped; poptune keeps the two best, t0 and t1
    ray_run, pop_run = halving_of_four([0.1, 0.2, 0.3, float("nan")])
    assert (survivors(ray_run), survivors(pop_run)) == ({"t0", "t3"}, {"t0", "t1"})


@pytest.mark.parametrize("classes,members,milestone", [
    pytest.param(HB, range(3, 8), 3, id="HyperBand: bracket s=1, t3-t7, milestone 3"),
    pytest.param(BOHB, range(9), 1, id="HyperBandForBOHB: bracket s=2, t0-t8, milestone 1"),
])
def test_result_without_the_metric_or_time_attr(classes, members, milestone):
    # hyperband.py docstring: "a result without time_attr is ignored, and a missing or NaN
    # metric ranks last"; Ray reads both with result[...] (KeyError)
    kw: dict[str, Any] = dict(metric="loss", mode="min", max_t=9, reduction_factor=3)
    ray, pop = classes[0](**kw), classes[1](**kw)
    ray_trials = [rtrial(f"t{i}") for i in range(9)]
    pop_trials = [ptrial(f"t{i}") for i in range(9)]
    ctl = SearcherController(ray, ray_trials)
    for ray_trial, pop_trial in zip(ray_trials, pop_trials):
        ray.on_trial_add(ctl, ray_trial)
        pop.on_trial_add(pop_trial)
    first = members[0]
    with pytest.raises(KeyError):
        ray.on_trial_result(ctl, ray_trials[first], {"loss": 0.5})
    assert decision(pop.on_trial_result(pop_trials[first], {"loss": 0.5})) == "CONTINUE"
    # the bracket's other trials wait at the milestone; the last one reports no loss, and
    # the halving ranks it
    *others, last = members
    for i in others:
        result = {"training_iteration": milestone, "loss": 0.1 * i}
        assert ray.on_trial_result(ctl, ray_trials[i], dict(result)) == "PAUSE"
        ray_trials[i].status = "PAUSED"
        assert decision(pop.on_trial_result(pop_trials[i], dict(result))) == "PAUSE"
        pop_trials[i].status = TrialStatus.PAUSED
    no_loss = {"training_iteration": milestone}
    with pytest.raises(KeyError):
        ray.on_trial_result(ctl, ray_trials[last], dict(no_loss))
    assert plain_value(pop.on_trial_result(pop_trials[last], dict(no_loss))) == "STOP"


def plain_value(out: Any) -> Any:
    """A hook's decision without the actions of its Outcome."""
    value = decision(out)
    return value[0] if isinstance(value, tuple) else value
