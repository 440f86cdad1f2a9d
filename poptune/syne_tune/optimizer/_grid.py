"""Syne Tune's grid search (``GridSearcher``, syne_tune 0.13
``optimizer/schedulers/searchers/random_grid_searcher.py``) as a poptune :class:`Searcher`.

The grid: every value of each categorical / ordinal / finite-range hyperparameter and each
constant, and ``num_samples[name]`` points per float (default 5) or integer (default
``min(5, number of integers)``) hyperparameter, at the centres of ``num_samples`` equal cells
of its (log-scaled, for log domains) range. The configurations are the Cartesian product;
``shuffle_config`` (default True) shuffles them with the seed. ``points_to_evaluate`` go first
(missing values filled by Syne Tune's midpoint heuristic; None means one midpoint
configuration, ``[]`` none) and are not suggested again from the grid. Once the grid is
exhausted the searcher is FINISHED (tuning ends when the running trials end), unless
``allow_duplicates``, which goes round the grid again.

Example:
    >>> from poptune.syne_tune.config_space import choice, uniform
    >>> configs, _ = grid_configs({"x": uniform(0, 1), "act": choice(["a", "b"])},
    ...                          {"x": 2}, shuffle=False, seed=0)
    >>> configs
    [{'act': 'a', 'x': 0.25}, {'act': 'a', 'x': 0.75}, {'act': 'b', 'x': 0.25}, {'act': 'b', 'x': 0.75}]
"""

from __future__ import annotations

import logging
import math
import os
from collections import OrderedDict
from itertools import product
from typing import Any

import numpy as np

from poptune._validation import bad_type, bad_value
from poptune.search._base import Searcher
from poptune.search import sample as _s

logger = logging.getLogger("poptune.syne_tune")

#: Syne Tune's ``DEFAULT_NSAMPLE``
DEFAULT_NSAMPLE = 5
#: Syne Tune's ``EPS`` of ``hp_ranges_impl``: an integer's range is ``[lower - 0.5 + EPS,
#: upper + 0.5 - EPS]`` before rounding
EPS = 1e-8

__all__ = ["DEFAULT_NSAMPLE", "GridSearcher", "describe", "grid_configs", "midpoint_config",
           "syne_cast"]


def describe(name: str, domain: _s.Domain) -> dict[str, Any]:
    """What Syne Tune's grid needs of a domain: ``{"kind": "float" | "int", "lower", "upper"
    (inclusive), "log"}``, ``{"kind": "cat", "values", "ordinal": None | "equal" | "nn" |
    "nn-log"}`` or ``{"kind": "finite", "values", "lower", "upper", "log"}``."""
    from poptune.syne_tune.config_space import _SYNE_ATTR

    tag = getattr(domain, _SYNE_ATTR, None)
    if tag is not None:
        cls, kw = tag["domain_cls"], tag["domain_kwargs"]
        log = tag.get("sampler_cls") == "LogUniform" or bool(kw.get("log_scale"))
        if cls in ("Float", "Integer"):
            return {"kind": "float" if cls == "Float" else "int", "lower": kw["lower"],
                    "upper": kw["upper"], "log": log}
        if cls == "FiniteRange":
            return {"kind": "finite", "values": list(getattr(domain, "values")),
                    "lower": kw["lower"], "upper": kw["upper"], "log": log}
        ordinal = {"Ordinal": "equal", "OrdinalNearestNeighbor": "nn-log" if log else "nn"}
        return {"kind": "cat", "values": list(kw["categories"]), "ordinal": ordinal.get(cls)}
    sampler = domain.get_sampler()
    if isinstance(domain, _s.Categorical) and type(sampler) is _s.Uniform:
        return {"kind": "cat", "values": list(domain.categories), "ordinal": None}
    if isinstance(domain, (_s.Float, _s.Integer)) and type(sampler) in (_s.Uniform,
                                                                        _s.LogUniform):
        if math.isinf(domain.lower) or math.isinf(domain.upper):
            raise bad_value(f"config_space[{name!r}]", domain, "a bounded range for GridSearch")
        integer = isinstance(domain, _s.Integer)
        return {"kind": "int" if integer else "float", "lower": domain.lower,
                # poptune's integer upper bound is exclusive, Syne Tune's inclusive
                "upper": domain.upper - 1 if integer else domain.upper,
                "log": isinstance(sampler, _s.LogUniform)}
    raise bad_value(f"config_space[{name!r}]", domain,
                    "a float, integer, categorical, ordinal or finite-range domain, or a "
                    "constant, for GridSearch (as Syne Tune's GridSearcher)")


def syne_cast(domain: _s.Domain, value: Any) -> Any:
    """``value`` cast to ``domain`` as Syne Tune's ``Domain.cast`` does: a float for a float
    domain, ``int(round(value))`` for an integer one, the nearest value (in log space for a
    log domain) of a finite range or a nearest-neighbour ordinal, and a categorical value of
    its categories' type (a float not among them: the nearest one within 1%, as Syne Tune).
    A value that cannot be cast is returned as it is.

    Example:
        >>> from poptune.syne_tune.config_space import finrange, ordinal, randint
        >>> syne_cast(randint(1, 4), 3.7), syne_cast(finrange(0.0, 1.0, 5), 0.3)
        (4, 0.25)
        >>> syne_cast(ordinal([1, 2, 4, 8]), 3)
        2
    """
    try:
        d = describe("value", domain)
    except ValueError:
        return value
    kind = d["kind"]
    if isinstance(value, bool) or (kind != "cat" and not isinstance(value, (int, float))):
        return value
    if kind == "float":
        return float(value)
    if kind == "int":
        return int(round(value))
    if kind == "finite":
        return _nearest_in_range(d, float(value))
    values = d["values"]
    if d["ordinal"] in ("nn", "nn-log") and isinstance(value, (int, float)):
        log = d["ordinal"] == "nn-log"
        if log and value <= 0:
            return values[0]
        return _nearest(values, _to_internal(float(value), log), log)
    try:
        cast = type(values[0])(value)
    except (TypeError, ValueError):
        return value
    if cast in values or not isinstance(cast, float):
        return cast if cast in values else value
    floats = [v for v in values if isinstance(v, (int, float))]
    nearest = min(floats, key=lambda v: abs(v - cast))
    return nearest if abs(nearest - cast) < 0.01 * abs(nearest) else value


def _nearest_in_range(d: dict[str, Any], value: float) -> Any:
    """The finite range's value nearest to ``value`` (clipped into the range first)."""
    values, low, high, log = d["values"], d["lower"], d["upper"], d["log"]
    if len(values) == 1:
        return values[0]
    lo, hi = _to_internal(low, log), _to_internal(high, log)
    step = (hi - lo) / (len(values) - 1)
    if step == 0:
        return values[0]
    x = _to_internal(min(max(value, low), high), log)
    return values[int(min(max(round((x - lo) / step), 0), len(values) - 1))]


def _nearest(values: list[Any], internal: float, log: bool) -> Any:
    """The one of the numbers ``values`` nearest to ``internal`` (a value as
    :func:`_to_internal` gives it: in log space for ``log``; the first of two as near)."""
    points = np.array([_to_internal(float(v), log) for v in values])
    return values[int(np.argmin(np.abs(points - internal)))]


def _to_internal(value: float, log: bool) -> float:
    return float(np.log(value)) if log else float(value)


def _from_internal(value: float, log: bool) -> float:
    return float(np.exp(value)) if log else float(value)


def _scale_from_zero_one(value: float, lower: float, upper: float, log: bool) -> float:
    """Syne Tune's ``scale_from_zero_one`` (``hp_ranges_impl``)."""
    low, high = _to_internal(lower, log), _to_internal(upper, log)
    if high - low > 0:
        return float(np.clip(_from_internal(value * (high - low) + low, log), lower, upper))
    return lower


def _numeric_points(desc: dict[str, Any], n: int) -> list[Any]:
    """The ``n`` cell centres of a float / integer range (deduplicated as Syne Tune's
    ``list(set(...))``)."""
    points: list[Any] = []
    for idx in range(n):
        x = (idx + 0.5) / n
        if desc["kind"] == "float":
            points.append(_scale_from_zero_one(x, float(desc["lower"]), float(desc["upper"]),
                                               desc["log"]))
        else:
            low, high = int(desc["lower"]), int(desc["upper"])
            value = _scale_from_zero_one(x, low - 0.5 + EPS, high + 0.5 - EPS, desc["log"])
            points.append(int(np.clip(round(value), low, high)))
    return list(set(points))


def _sample_counts(config_space: dict[str, Any], descs: dict[str, dict[str, Any]],
                   num_samples: dict[str, int] | None) -> dict[str, int]:
    """Syne Tune's ``_validate_config_space``: the number of grid points per float / integer
    hyperparameter."""
    if num_samples is not None and not isinstance(num_samples, dict):
        raise bad_type("num_samples", num_samples, "a dict {hyperparameter: number of points}")
    counts = dict(num_samples or {})
    for name, n in counts.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise bad_value(f"num_samples[{name!r}]", n, "an integer >= 1")
    for name, desc in descs.items():
        if desc["kind"] == "float" and name not in counts:
            counts[name] = DEFAULT_NSAMPLE
            logger.warning("Number of samples is required for '%s'. By default, %d is set as "
                           "number of samples", name, DEFAULT_NSAMPLE)
        elif desc["kind"] == "int":
            size = int(desc["upper"]) - int(desc["lower"]) + 1
            if name not in counts or counts[name] > size:
                counts[name] = min(size, DEFAULT_NSAMPLE)
        elif name in counts:
            logger.info('number of samples for categorical variable "%s" is ignored.', name)
    return counts


def grid_configs(config_space: dict[str, Any], num_samples: dict[str, int] | None,
                 shuffle: bool, seed: int | None) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """All grid configurations in Syne Tune's order (categorical values and constants in
    reverse config-space order, then float / integer hyperparameters by sorted name; the last
    varies fastest), shuffled with ``seed`` if ``shuffle``; and the points per numeric
    hyperparameter."""
    descs = {k: describe(k, v) for k, v in config_space.items() if isinstance(v, _s.Domain)}
    counts = _sample_counts(config_space, descs, num_samples)
    keys: list[str] = []
    values: list[list[Any]] = []
    for name, domain in reversed(list(config_space.items())):
        if not isinstance(domain, _s.Domain):
            keys.append(name)
            values.append([domain])
            continue
        desc = descs[name]
        if desc["kind"] == "cat":
            keys.append(name)
            values.append(list(OrderedDict.fromkeys(desc["values"])))
        elif desc["kind"] == "finite":
            keys.append(name)
            values.append(list(desc["values"]))
    for name in sorted(descs):
        if name not in keys:
            keys.append(name)
            values.append(_numeric_points(descs[name], counts[name]))
    combos = list(product(*values))
    if shuffle:
        np.random.RandomState(seed).shuffle(combos)  # type: ignore[arg-type]
    return [dict(zip(keys, combo)) for combo in combos], counts


def _midpoint(desc: dict[str, Any]) -> Any:
    """Syne Tune's ``_non_default_config``: the first category, the middle ordinal, else the
    (geometric, for log domains) middle of the range cast to the domain."""
    if desc["kind"] == "cat":
        cats, ordinal = desc["values"], desc["ordinal"]
        if ordinal is None:
            return cats[0]
        if ordinal == "equal":
            return cats[len(cats) // 2]
        log = ordinal == "nn-log"
        ends = [_to_internal(float(cats[0]), log), _to_internal(float(cats[-1]), log)]
        return _nearest(cats, 0.5 * (ends[0] + ends[1]), log)
    lower, upper, log = float(desc["lower"]), float(desc["upper"]), desc["log"]
    middle = float(np.exp(0.5 * (np.log(upper) + np.log(lower)))) if log else 0.5 * (
        upper + lower)
    if desc["kind"] == "finite":
        return _nearest(desc["values"], _to_internal(middle, log), log)
    if desc["kind"] == "int":
        return int(np.clip(int(round(middle)), int(lower), int(upper)))
    return float(np.clip(middle, lower, upper))


def midpoint_config(config_space: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
    """``point`` with its missing hyperparameters filled by Syne Tune's midpoint heuristic.

    Example:
        >>> from poptune.syne_tune.config_space import loguniform, randint
        >>> c = midpoint_config({"lr": loguniform(1e-4, 1e-2), "n": randint(1, 5)}, {})
        >>> round(c["lr"], 12), c["n"]
        (0.001, 3)
    """
    out = {}
    for name, domain in config_space.items():
        if not isinstance(domain, _s.Domain):
            continue
        out[name] = point[name] if name in point else _midpoint(describe(name, domain))
    return out


def match_key(config_space: dict[str, Any], config: dict[str, Any]) -> tuple[str, ...]:
    """Syne Tune's ``config_to_match_string``: floats compared to 7 significant digits,
    everything else exactly (over the domains, by sorted name)."""
    parts = []
    for name in sorted(k for k, v in config_space.items() if isinstance(v, _s.Domain)):
        value = config.get(name)
        parts.append(f"{value:.6e}" if isinstance(value, float) else repr(value))
    return tuple(parts)


class GridSearcher(Searcher):
    """Suggest ``initial`` configurations, then the grid's (skipping those already
    suggested); FINISHED at the end of the grid, or round again if ``allow_duplicates``."""

    def __init__(self, config_space: dict[str, Any], configs: list[dict[str, Any]],
                 initial: list[dict[str, Any]], allow_duplicates: bool = False) -> None:
        super().__init__()
        self.config_space = config_space
        self.configs = configs
        self.initial = list(initial)
        self.allow_duplicates = allow_duplicates
        self.next_index = 0
        self.excluded: set[tuple[str, ...]] = set()
        self.exhausted = False

    def set_search_properties(self, metric: str | None, mode: str | None,
                              config: dict[str, Any], **spec: Any) -> bool:
        """The grid covers the Tuner's ``param_space`` (the Syne Tune config space)."""
        self._metric = self._metric or metric
        self._mode = self._mode or mode
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.initial:
            config = self.initial.pop(0)
            self.excluded.add(match_key(self.config_space, config))
            return dict(config)
        candidate = None
        while candidate is None and self.next_index < len(self.configs):
            candidate = self.configs[self.next_index]
            self.next_index += 1
            if match_key(self.config_space, candidate) in self.excluded:
                candidate = None
            if self.allow_duplicates and self.next_index == len(self.configs):
                self.next_index = 0
                self.excluded = set()
        if candidate is not None:
            return dict(candidate)
        if not self.exhausted:
            self.exhausted = True
            logger.warning("All the configurations have already been evaluated. "
                           "Configuration space has size %d", len(self.configs))
            if os.environ.get("POPTUNE_SYNE_VERBOSE", "1") != "0":
                print("Tuning is finishing as the whole configuration space got exhausted.")
        return Searcher.FINISHED
