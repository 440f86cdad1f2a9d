"""Syne Tune's search-space functions, returning poptune domains.

Syne Tune's integer bounds are inclusive (``randint(1, 3)`` draws 1, 2 or 3), Ray Tune's
(and so poptune's) upper bound is exclusive: these functions translate, and the domain's
``lower``/``upper`` stay poptune's (``randint(1, 3).upper == 4``: the engine reads them).
Each domain remembers what Syne Tune would have built (:func:`syne_dict`, written to
``metadata.json``). Constants in a ``config_space`` stay constants and reach the trial as
they are.

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
from typing import Any, TypeVar, cast

import numpy as np

from poptune._validation import bad_type, bad_value, check_one_of
from poptune.search import sample as _s

__all__ = ["choice", "config_space_to_json_dict", "finrange", "lograndint", "logfinrange",
           "logordinal", "loguniform", "ordinal", "randint", "syne_dict", "uniform"]

#: the attribute holding Syne Tune's description of a domain made here
_SYNE_ATTR = "_syne_tune"

_D = TypeVar("_D", bound=_s.Domain)


def _tag(domain: _D, cls: str, sampler: str | None, **kwargs: Any) -> _D:
    described: dict[str, Any] = {"domain_cls": cls, "domain_kwargs": kwargs}
    if sampler is not None:
        described.update(sampler_cls=sampler,
                         sampler_kwargs={"base": math.e} if sampler == "LogUniform" else {})
    setattr(domain, _SYNE_ATTR, described)
    domain.many_as_list = True  # Syne Tune's sample(size > 1) returns a list
    return domain


def _float(lower: float, upper: float, log: bool) -> Any:
    for name, value in (("lower", lower), ("upper", upper)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
                value):
            raise bad_type(name, value, "a finite number")
    if lower > upper:
        raise bad_value("lower", lower, f"<= `upper`={upper} (as Syne Tune)")
    if log and lower <= 0:
        raise bad_value("lower", lower, "> 0 for a log-uniform float")
    # Syne Tune's Float allows lower == upper: every draw is that value
    domain: Any = (_s.choice([float(lower)]) if lower == upper
                   else _s.loguniform(lower, upper) if log else _s.uniform(lower, upper))
    return _tag(domain, "Float", "LogUniform" if log else "Uniform", lower=lower, upper=upper)


def uniform(lower: float, upper: float) -> _s.Float:
    """A float drawn uniformly from ``[lower, upper]`` (``lower == upper`` is that value)."""
    return cast(_s.Float, _float(lower, upper, log=False))


def loguniform(lower: float, upper: float) -> _s.Float:
    """A float whose logarithm is uniform between ``log(lower)`` and ``log(upper)``."""
    return cast(_s.Float, _float(lower, upper, log=True))


def randint(lower: int, upper: int) -> _s.Integer:
    """An integer drawn uniformly from ``lower`` to ``upper``, both included (Syne Tune)."""
    return _tag(_s.randint(lower, int(upper) + 1), "Integer", "Uniform", lower=lower,
                upper=upper)


class _RoundedLogUniform(_s.LogUniform):
    """Syne Tune's log-uniform integers: ``round(exp(U(log lower, log upper)))`` with
    ``upper`` included (Ray's rule, which poptune's own ``lograndint`` follows, floors
    ``exp(U(log lower, log(upper + 1)))``: the smallest value comes more often)."""

    def _draw(self, domain: _s.Domain, config: Any, size: int, random_state: Any) -> Any:
        assert isinstance(domain, _s.Integer)
        rng = _s.as_generator(random_state)
        low, high = math.log(domain.lower), math.log(domain.upper - 1)  # inclusive upper
        return np.rint(np.exp(rng.uniform(low, high, size=size))).astype(int)

    def __repr__(self) -> str:
        return "LogUniform()"


def lograndint(lower: int, upper: int) -> _s.Integer:
    """An integer drawn log-uniformly from ``lower`` to ``upper``, both included, as Syne
    Tune draws it (rounded).

    Example:
        >>> sorted(set(lograndint(1, 3).sample(size=200, random_state=0)))
        [1, 2, 3]
    """
    domain = _s.lograndint(lower, int(upper) + 1)  # checks the bounds
    domain.set_sampler(_RoundedLogUniform(), allow_override=True)
    return _tag(domain, "Integer", "LogUniform", lower=lower, upper=upper)


def choice(categories: Sequence[Any]) -> _s.Categorical:
    """One of ``categories`` with equal probability."""
    return _tag(_s.choice(categories), "Categorical", "Uniform", categories=list(categories))


class _NearestNeighbour(_s.Sampler):
    """Draw a number uniformly (or log-uniformly) over the categories' range widened by half
    their mean spacing at each end, and return the category nearest to it (Syne Tune's
    ``ordinal(kind="nn" | "nn-log")``: evenly spaced values are equally likely)."""

    def __init__(self, log: bool) -> None:
        self.log = log

    def _draw(self, domain: _s.Domain, config: Any, size: int, random_state: Any) -> Any:
        assert isinstance(domain, _s.Categorical)
        rng = _s.as_generator(random_state)
        values = np.array([float(c) for c in domain.categories])
        if self.log:
            values = np.log(values)
        half = 0.5 * float(np.mean(np.diff(values))) if len(values) > 1 else 0.0
        draws = rng.uniform(values[0] - half, values[-1] + half, size=size)
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
        return _tag(_s.choice(cats), "Ordinal", "Uniform", categories=cats)
    if not increasing:
        raise bad_value("categories", categories,
                        f"strictly increasing numbers for kind={kind!r}")
    if kind == "nn-log" and cats[0] <= 0:
        raise bad_value("categories", categories, "positive numbers for kind='nn-log'")
    domain = _s.Categorical(cats)
    domain.set_sampler(_NearestNeighbour(log=kind == "nn-log"))
    return _tag(domain, "OrdinalNearestNeighbor", None, categories=cats,
                log_scale=kind == "nn-log")


def logordinal(categories: Sequence[Any]) -> _s.Categorical:
    """``ordinal(categories, kind="nn-log")``."""
    return ordinal(categories, kind="nn-log")


def _grid(lower: float, upper: float, size: int, cast_int: bool, log: bool) -> list[Any]:
    """Syne Tune's ``FiniteRange`` values: ``lower + i * step`` (in log space for ``log``),
    clipped to ``[lower, upper]``, rounded for ``cast_int``."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise bad_value("size", size, "an integer >= 1")
    if lower > upper:
        raise bad_value("lower", lower, f"<= `upper`={upper} (as Syne Tune)")
    if log and lower <= 0:
        raise bad_value("lower", lower, "> 0 for a log range")
    low, high = (math.log(lower), math.log(upper)) if log else (lower, upper)
    step = (high - low) / (size - 1) if size > 1 else 0.0
    values = [float(np.clip(math.exp(i * step + low) if log else i * step + low, lower, upper))
              for i in range(size)]
    return [int(np.rint(v)) for v in values] if cast_int else values


def _finite_range(lower: float, upper: float, size: int, cast_int: bool,
                  log: bool) -> _s.Categorical:
    values = _grid(lower, upper, size, cast_int, log)
    domain = _tag(_s.choice(values), "FiniteRange", None, lower=lower, upper=upper, size=size,
                  log_scale=log, cast_int=cast_int)
    domain.values = values  # type: ignore[attr-defined]  # Syne Tune's FiniteRange.values
    return domain


def finrange(lower: float, upper: float, size: int, cast_int: bool = False) -> _s.Categorical:
    """``size`` evenly spaced values from ``lower`` to ``upper`` (both included), drawn with
    equal probability; ``.values`` lists them (as Syne Tune).

    Example:
        >>> finrange(0.0, 1.0, 3).values
        [0.0, 0.5, 1.0]
    """
    return _finite_range(lower, upper, size, cast_int, log=False)


def logfinrange(lower: float, upper: float, size: int, cast_int: bool = False
                ) -> _s.Categorical:
    """``size`` values evenly spaced in log space from ``lower`` to ``upper``.

    Example:
        >>> logfinrange(1, 100, 3).values
        [1.0, 10.000000000000002, 100.0]
    """
    return _finite_range(lower, upper, size, cast_int, log=True)


def syne_dict(domain: _s.Domain) -> dict[str, Any]:
    """Syne Tune's ``to_dict`` of a domain: ``domain_cls``, ``domain_kwargs`` and the
    sampler; a poptune domain not made here is described by its own class and bounds."""
    tagged = getattr(domain, _SYNE_ATTR, None)
    if tagged is not None:
        return dict(tagged)
    if isinstance(domain, _s.Categorical):
        kwargs: dict[str, Any] = {"categories": list(domain.categories)}
    else:
        kwargs = {k: getattr(domain, k) for k in ("lower", "upper") if hasattr(domain, k)}
    return {"domain_cls": type(domain).__name__, "domain_kwargs": kwargs,
            "sampler_cls": type(domain.get_sampler()).__name__, "sampler_kwargs": {}}


def config_space_to_json_dict(config_space: dict[str, Any]) -> dict[str, Any]:
    """The config space as Syne Tune writes it into ``metadata.json``: each domain as
    :func:`syne_dict`, constants as they are.

    Example:
        >>> config_space_to_json_dict({"x": uniform(0, 1), "epochs": 3})["x"]["domain_cls"]
        'Float'
    """
    return {k: syne_dict(v) if isinstance(v, _s.Domain) else v
            for k, v in config_space.items()}
