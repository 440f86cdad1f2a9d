"""Syne Tune's search-space functions, returning poptune domains.

Syne Tune's integer bounds are inclusive (``randint(1, 3)`` draws 1, 2 or 3), Ray Tune's
(and so poptune's) upper bound is exclusive: these functions translate. Constants in a
``config_space`` stay constants and reach the trial as they are.

Example:
    >>> from poptune.syne_tune.config_space import randint, loguniform
    >>> sorted(set(randint(1, 3).sample(size=200, random_state=0)))
    [1, 2, 3]
    >>> 1e-3 <= loguniform(1e-3, 1.0).sample(random_state=0) < 1.0
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from poptune._validation import bad_value, check_one_of
from poptune.search import sample as _s

__all__ = ["choice", "finrange", "lograndint", "logfinrange", "logordinal", "loguniform",
           "ordinal", "randint", "uniform"]


def uniform(lower: float, upper: float) -> _s.Float:
    """A float drawn uniformly from ``[lower, upper]``."""
    return _s.uniform(lower, upper)


def loguniform(lower: float, upper: float) -> _s.Float:
    """A float whose logarithm is uniform between ``log(lower)`` and ``log(upper)``."""
    return _s.loguniform(lower, upper)


def randint(lower: int, upper: int) -> _s.Integer:
    """An integer drawn uniformly from ``lower`` to ``upper``, both included (Syne Tune)."""
    return _s.randint(lower, int(upper) + 1)


def lograndint(lower: int, upper: int) -> _s.Integer:
    """An integer drawn log-uniformly from ``lower`` to ``upper``, both included."""
    return _s.lograndint(lower, int(upper) + 1)


def choice(categories: Sequence[Any]) -> _s.Categorical:
    """One of ``categories`` with equal probability."""
    return _s.choice(categories)


class _NearestNeighbour(_s.Sampler):
    """Draw a number uniformly (or log-uniformly) over ``[min, max]`` of the categories and
    return the category nearest to it (Syne Tune's ``ordinal(kind="nn" | "nn-log")``)."""

    def __init__(self, log: bool) -> None:
        self.log = log

    def _draw(self, domain: _s.Domain, config: Any, size: int, random_state: Any) -> Any:
        assert isinstance(domain, _s.Categorical)
        rng = _s.as_generator(random_state)
        values = np.array([float(c) for c in domain.categories])
        if self.log:
            values = np.log(values)
        draws = rng.uniform(values[0], values[-1], size=size)
        return [domain.categories[int(np.abs(values - d).argmin())] for d in draws]

    def __repr__(self) -> str:
        return f"_NearestNeighbour(log={self.log})"


def ordinal(categories: Sequence[Any], kind: str | None = None) -> _s.Categorical:
    """An ordered list of values.

    ``kind="equal"`` draws like :func:`choice`; ``"nn"`` draws a number uniformly between
    the smallest and the largest value and returns the nearest value (``"nn-log"``: in log
    space). The default is ``"nn"`` for increasing numbers, else ``"equal"`` (as Syne Tune).

    Example:
        >>> ordinal([1, 2, 4, 8], kind="nn-log").sample(random_state=1) in (1, 2, 4, 8)
        True
    """
    cats = list(categories)
    numeric = len(cats) > 1 and all(
        isinstance(c, (int, float)) and not isinstance(c, bool) for c in cats)
    increasing = numeric and all(a < b for a, b in zip(cats, cats[1:]))
    if kind is None:
        kind = "nn" if increasing else "equal"
    check_one_of("kind", kind, ("equal", "nn", "nn-log"))
    if kind == "equal":
        return _s.choice(cats)
    if not increasing:
        raise bad_value("categories", categories,
                        f"strictly increasing numbers for kind={kind!r}")
    if kind == "nn-log" and cats[0] <= 0:
        raise bad_value("categories", categories, "positive numbers for kind='nn-log'")
    domain = _s.Categorical(cats)
    domain.set_sampler(_NearestNeighbour(log=kind == "nn-log"))
    return domain


def logordinal(categories: Sequence[Any]) -> _s.Categorical:
    """``ordinal(categories, kind="nn-log")``."""
    return ordinal(categories, kind="nn-log")


def _grid(lower: float, upper: float, size: int, cast_int: bool, log: bool) -> list[Any]:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise bad_value("size", size, "an integer >= 1")
    if log and lower <= 0:
        raise bad_value("lower", lower, "> 0 for a log range")
    if size == 1:
        values = [float(lower)]
    elif log:
        values = [math.exp(v) for v in np.linspace(math.log(lower), math.log(upper), size)]
    else:
        values = [float(v) for v in np.linspace(lower, upper, size)]
    return [int(round(v)) for v in values] if cast_int else values


def finrange(lower: float, upper: float, size: int, cast_int: bool = False) -> _s.Categorical:
    """``size`` evenly spaced values from ``lower`` to ``upper`` (both included), drawn with
    equal probability."""
    return _s.choice(_grid(lower, upper, size, cast_int, log=False))


def logfinrange(lower: float, upper: float, size: int, cast_int: bool = False
                ) -> _s.Categorical:
    """``size`` values evenly spaced in log space from ``lower`` to ``upper``."""
    return _s.choice(_grid(lower, upper, size, cast_int, log=True))
