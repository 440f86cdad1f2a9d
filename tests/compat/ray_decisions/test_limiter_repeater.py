"""ConcurrencyLimiter (batch False/True) and Repeater: Ray 2.60's and poptune's answers to the
same suggest / on_trial_complete calls, and what each passes to the searcher it wraps.

The same everywhere, also for a trial id suggested twice while live: Ray's ``assert`` raises
``AssertionError``, poptune a ``DuplicateTrialIdError``, which is an ``AssertionError`` too
(and a ``TuneConfigError`` naming the parameter and the id).
"""

from __future__ import annotations

import math
import random
from typing import Any, Callable

import pytest

pytest.importorskip("ray")

from ray.tune.search import ConcurrencyLimiter as RayLimiter  # noqa: E402
from ray.tune.search import Repeater as RayRepeater  # noqa: E402
from ray.tune.search import Searcher as RaySearcher  # noqa: E402

from poptune.exceptions import TuneConfigError  # noqa: E402
from poptune.search import ConcurrencyLimiter, Repeater, Searcher  # noqa: E402
from tests.compat.ray_decisions._ray import Row, assert_same, outcome  # noqa: E402

#: one call: ("s", trial_id) to suggest, ("c", trial_id, loss or None, error) to complete
Op = tuple[Any, ...]


def counting(base: type) -> type:
    """A searcher (on Ray's or poptune's base) suggesting {"i": 1}, {"i": 2}, ... and
    recording every completion it is given."""

    class Counting(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__(metric="loss", mode="min")
            self.n = 0
            self.seen: list[tuple[str, Any, bool]] = []

        def suggest(self, trial_id: str) -> dict[str, int]:
            self.n += 1
            return {"i": self.n}

        def on_trial_complete(self, trial_id: str, result: dict | None = None,
                              error: bool = False) -> None:
            loss = None if result is None else result.get("loss")
            if isinstance(loss, float) and math.isnan(loss):
                loss = "nan"  # NaN != NaN: compared as a string
            self.seen.append((trial_id, loss, error))

    return Counting


RayCounting, Counting = counting(RaySearcher), counting(Searcher)


def call(searcher: Any, op: Op) -> Any:
    if op[0] == "s":
        return outcome(lambda: searcher.suggest(op[1]))
    _, trial_id, loss, error = op
    result = None if loss is None else {"loss": loss}
    return outcome(lambda: searcher.on_trial_complete(trial_id, result, error=error))


def drive(ray_searcher: Any, searcher: Any, ops: list[Op]) -> list[Row]:
    return [(str(op), call(ray_searcher, op), call(searcher, op)) for op in ops]


def random_ops(seed: int, n: int, loss: Callable[[random.Random], Any], complete_share: float,
               error_share: float) -> list[Op]:
    """Suggestions of new ids and completions of suggested ones (also of ids that got
    None), at random."""
    rng, ops, live, k = random.Random(seed), [], [], 0
    for _ in range(n):
        if live and rng.random() < complete_share:
            trial_id = live.pop(rng.randrange(len(live)))
            ops.append(("c", trial_id, loss(rng), rng.random() < error_share))
        else:
            ops.append(("s", f"t{k}"))
            live.append(f"t{k}")
            k += 1
    return ops


@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("max_concurrent", [1, 2, 3])
def test_limiter_same_answers_and_completions(max_concurrent, batch):
    for seed in range(8):
        ops = random_ops(seed, 40, lambda g: g.choice([None, g.random(), g.random()]), 0.45,
                         0.15)
        ray_inner, inner = RayCounting(), Counting()
        rows = drive(RayLimiter(ray_inner, max_concurrent=max_concurrent, batch=batch),
                     ConcurrencyLimiter(inner, max_concurrent=max_concurrent, batch=batch),
                     ops)
        rows.append(("the wrapped searcher saw", ray_inner.seen, inner.seen))
        assert_same(rows, f"seed {seed}")


def run(searcher: Any, op: Op) -> tuple[Any, Exception | None]:
    """``op`` on ``searcher``: (what it returns, None) or (None, what it raises)."""
    try:
        if op[0] == "s":
            return searcher.suggest(op[1]), None
        _, trial_id, loss, error = op
        result = None if loss is None else {"loss": loss}
        return searcher.on_trial_complete(trial_id, result, error=error), None
    except Exception as exc:  # noqa: BLE001 - compared with Ray's
        return None, exc


@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("max_concurrent", [1, 2])
def test_limiter_an_id_suggested_twice_while_live(max_concurrent, batch):
    """Where Ray's ``assert`` raises ``AssertionError``, poptune raises one too (also a
    ``TuneConfigError`` naming the parameter and the id), and neither limiter changes: the
    other calls get the same answers. A completion of an id that is not live (never
    suggested, or refused) is ignored by both; an id is free again once it has completed
    (in a batch: once the batch has)."""
    ops = [("s", "a"), ("s", "a"), ("s", "b"), ("c", "b", 1.0, False),
           ("c", "zz", 3.0, False), ("s", "b"), ("s", "c"), ("c", "a", 2.0, False),
           ("s", "a"), ("c", "b", 1.0, False), ("c", "c", 1.0, False), ("s", "a"), ("s", "c"),
           ("s", "c")]
    ray_inner, inner = RayCounting(), Counting()
    ray, ours = (RayLimiter(ray_inner, max_concurrent, batch=batch),
                 ConcurrencyLimiter(inner, max_concurrent, batch=batch))
    rows: list[Row] = []
    duplicates = 0
    for op in ops:
        (ray_value, ray_error), (value, error) = run(ray, op), run(ours, op)
        if ray_error is None:
            rows.append((str(op), ray_value, value if error is None else repr(error)))
            continue
        duplicates += 1
        assert type(ray_error) is AssertionError, op
        assert isinstance(error, AssertionError) and isinstance(error, TuneConfigError), op
        assert str(error) == f"`trial_id` must be unique (it is already live), got {op[1]!r}"
    rows.append(("the wrapped searcher saw", ray_inner.seen, inner.seen))
    rows.append(("live trials", sorted(ray.live_trials), sorted(ours.live_trials)))
    assert_same(rows, "the other calls")
    assert duplicates >= 2  # the case the test is about does occur


@pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning")  # Ray's nanmean
@pytest.mark.parametrize("set_index", [True, False])
@pytest.mark.parametrize("repeat", [1, 2, 3])
def test_repeater_same_suggestions_and_means(repeat, set_index):
    for seed in range(6):
        ops = random_ops(seed, 30, lambda g: g.choice([None, float("nan"), 1.0, 2.0, 4.0]),
                         0.5, 0.1)
        ray_inner, inner = RayCounting(), Counting()
        rows = drive(RayRepeater(ray_inner, repeat=repeat, set_index=set_index),
                     Repeater(inner, repeat=repeat, set_index=set_index), ops)
        rows.append(("the wrapped searcher saw", ray_inner.seen, inner.seen))
        assert_same(rows, f"seed {seed}")
