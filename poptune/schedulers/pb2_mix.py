"""PB2's search space: continuous, integer and categorical hyperparameters (PB2-Mix).

:class:`~poptune.schedulers.pb2.PB2` reads ``hyperparam_bounds`` into one :class:`Param` per
(possibly nested) key. Continuous and integer parameters live in *GP coordinates* (the value,
or its log for a log domain) and are chosen by the time-varying GP; categorical ones are
chosen first, by an exponential-weights bandit over the categories (:func:`choose_category`),
in the spirit of PB2-Mix (Parker-Holder et al., "Tuning Mixed Input Hyperparameters on the Fly
for Efficient Population Based AutoRL", NeurIPS 2021); the GP then sees the categories as
one-hot columns (an exponentiated Hamming kernel) and picks the continuous values for the
chosen categories.

What ``hyperparam_bounds`` accepts per key:

* ``[low, high]`` (two numbers): continuous, as in Ray's PB2 (an int in the config stays an
  int, truncated);
* ``tune.uniform``/``quniform``/``loguniform``/``qloguniform``: continuous in its bounds
  (log domains are modelled in log space, quantized ones rounded to ``q``);
* ``tune.randint``/``qrandint``/``lograndint``/``qlograndint``: integers, modelled as
  continuous and rounded (upper bound exclusive, as when sampling);
* ``tune.choice([...])``: categorical, any values.

Example:
    >>> import poptune as tune
    >>> params = parse_bounds({"lr": tune.loguniform(1e-4, 1e-1), "opt": tune.choice(["a", "b"])})
    >>> [(p.name, p.kind) for p in params]
    [('lr', 'float'), ('opt', 'categorical')]
    >>> params[1].to_gp("b"), params[1].from_gp(0.0, "b")
    (1.0, 'a')
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from poptune._validation import bad_value
from poptune.schedulers._pbt_explore import _domain_bounds, _isinstance, _sample_domain

__all__ = ["Param", "parse_bounds", "choose_category"]

Key = tuple  # path of a (possibly nested) hyperparameter, e.g. ("optim", "lr")

ACCEPTED = (
    "a [low, high] list or tuple of two numbers, or a bounded search-space domain: "
    "tune.uniform/quniform/loguniform/qloguniform (continuous), "
    "tune.randint/qrandint/lograndint/qlograndint (integer) or tune.choice([...]) (categorical)"
)


@dataclass(frozen=True)
class Param:
    """One PB2 hyperparameter: its kind (``"bounds"``, ``"float"``, ``"int"`` or
    ``"categorical"``) and its range in GP coordinates (``low``/``high``, log if ``log``)."""

    key: Key
    kind: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    q: float | None = None
    categories: tuple = ()
    domain: Any = field(default=None, compare=False, repr=False)

    @property
    def name(self) -> str:
        return "/".join(map(str, self.key))

    @property
    def is_categorical(self) -> bool:
        return self.kind == "categorical"

    def sample(self, rng: random.Random) -> Any:
        """A value for a config that lacks this parameter (Ray's uniform draw for bounds)."""
        if self.kind == "bounds":
            return self.low + (self.high - self.low) * rng.random()
        return _sample_domain(self.domain, rng)

    def to_gp(self, value: Any) -> float:
        """The GP coordinate of ``value`` (a category's index; -1 for an unknown category)."""
        if self.is_categorical:
            for i, category in enumerate(self.categories):
                if category is value or category == value:
                    return float(i)
            return -1.0
        if self.log:
            return math.log(max(float(value), 1e-300))
        return float(value)

    def from_gp(self, x: float, old: Any) -> Any:
        """The config value at GP coordinate ``x`` (``old``: the donor's value)."""
        if self.is_categorical:
            return self.categories[int(x)]
        if self.kind == "bounds":  # Ray's PB2: an int stays an int (truncated)
            return int(x) if isinstance(old, int) and not isinstance(old, bool) else float(x)
        value = math.exp(x) if self.log else float(x)
        lower, upper = _domain_bounds(self.domain) or (value, value)
        if self.q is not None:
            value = round(value / self.q) * self.q
            lower = math.ceil(lower / self.q - 1e-9) * self.q
            upper = math.floor(upper / self.q + 1e-9) * self.q
        if self.kind == "int":
            value, lower, upper = round(value), math.ceil(lower), math.floor(upper)
        value = min(max(value, lower), upper)
        return int(value) if self.kind == "int" else float(value)


def _quantum(domain: Any) -> float | None:
    sampler: Any = getattr(domain, "sampler", None)
    if _isinstance(sampler, "Quantized") and sampler.q != 1:
        return float(sampler.q)
    return None


def _is_log(domain: Any) -> bool:
    sampler: Any = getattr(domain, "sampler", None)
    if _isinstance(sampler, "Quantized"):
        sampler = sampler.sampler
    return _isinstance(sampler, "LogUniform")


def _param(key: Key, value: Any) -> Param:
    name = f"hyperparam_bounds[{'/'.join(map(str, key))!r}]"
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
        ):
            raise bad_value(name, value, ACCEPTED + " (for a list of categories use tune.choice)")
        if value[0] > value[1]:
            raise bad_value(name, value, "[low, high] with low <= high")
        return Param(key, "bounds", float(value[0]), float(value[1]))
    if _isinstance(value, "Categorical"):
        if _isinstance(getattr(value, "sampler", None), "Grid"):
            raise bad_value(name, value, ACCEPTED + " (tune.grid_search is not supported)")
        return Param(key, "categorical", 0.0, float(len(value.categories) - 1),
                     categories=tuple(value.categories), domain=value)
    if _isinstance(value, "Float") or _isinstance(value, "Integer"):
        bounds = _domain_bounds(value)
        sampler: Any = getattr(value, "sampler", None)
        unbounded = bounds is None or any(math.isinf(b) for b in bounds)
        if unbounded or _isinstance(sampler, "Normal") or (
            _isinstance(sampler, "Quantized") and _isinstance(sampler.sampler, "Normal")
        ):
            raise bad_value(name, value, ACCEPTED + " (tune.randn/qrandn are unbounded)")
        assert bounds is not None
        log = _is_log(value)
        low, high = (math.log(bounds[0]), math.log(bounds[1])) if log else bounds
        kind = "int" if _isinstance(value, "Integer") else "float"
        return Param(key, kind, float(low), float(high), log=log, q=_quantum(value),
                     domain=value)
    extra = " (tune.sample_from is not supported)" if _isinstance(value, "Function") else ""
    raise bad_value(name, value, ACCEPTED + extra)


def _flatten(bounds: Mapping[str, Any], prefix: Key = ()) -> dict[Key, Any]:
    out: dict[Key, Any] = {}
    for name, value in bounds.items():
        if isinstance(value, Mapping) and set(value) != {"grid_search"}:
            out.update(_flatten(value, prefix + (name,)))
        else:
            out[prefix + (name,)] = value
    return out


def parse_bounds(bounds: Mapping[str, Any] | None) -> list[Param]:
    """One :class:`Param` per leaf of ``bounds`` (nested dicts allowed), in order.

    Raises ``TuneConfigError`` naming the parameter, the value and what is accepted.
    """
    if not bounds or not isinstance(bounds, Mapping):
        raise bad_value("hyperparam_bounds", bounds, "a non-empty dict of [low, high] "
                        "or search-space domains")
    params = []
    for key, value in _flatten(bounds).items():
        if isinstance(value, Mapping):  # {"grid_search": [...]}
            name = f"hyperparam_bounds[{'/'.join(map(str, key))!r}]"
            raise bad_value(name, value, ACCEPTED + " (tune.grid_search is not supported)")
        params.append(_param(key, value))
    return params


# --------------------------------------------------------------------------- the bandit
def category_probabilities(
    samples: list[tuple[float, int, float]],
    n_categories: int,
    now: float,
    interval: float,
    picked: list[int],
    discount: float = 0.9,
) -> list[float]:
    """Time-varying exponential weights over ``n_categories`` arms.

    ``samples``: ``(time, category index, reward change)``. The changes are scaled to [0, 1];
    each arm's gain is its discounted mean (``discount`` per ``interval`` of age, one prior
    pseudo-observation of 0.5) times the discounted number of rounds, and the probability is
    EXP3's: ``(1 - gamma) * softmax(eta * gain) + gamma / K``, with ``gamma`` from the number
    of rounds and ``eta = gamma * batch / K`` (``batch``: samples per round). Arms already
    ``picked`` this round weigh ``1 / (1 + picks)`` as much, so one round spreads its picks.
    """
    k = n_categories
    if k == 1:
        return [1.0]
    usable = [s for s in samples if 0 <= s[1] < k]
    if not usable:
        return [1.0 / k] * k
    gains = [s[2] for s in usable]
    lo, hi = min(gains), max(gains)
    span = hi - lo
    interval = interval if interval > 0 else 1.0
    total = [0.5] * k
    weight = [1.0] * k
    for time, arm, gain in usable:
        w = discount ** (max(0.0, now - time) / interval)
        total[arm] += w * ((gain - lo) / span if span > 0 else 0.5)
        weight[arm] += w
    times = sorted({s[0] for s in usable})
    rounds = sum(discount ** (max(0.0, now - t) / interval) for t in times)
    batch = len(usable) / len(times)
    gamma = min(1.0, math.sqrt(k * math.log(k) / ((math.e - 1) * max(rounds, 1.0))))
    eta = gamma * batch / k
    scores = [eta * rounds * total[a] / weight[a] for a in range(k)]
    top = max(scores)
    expw = [math.exp(s - top) / (1 + picked.count(a)) for a, s in enumerate(scores)]
    norm = sum(expw)
    return [(1 - gamma) * e / norm + gamma / k for e in expw]


def choose_category(probabilities: list[float], gen: Any) -> int:
    """Draw an arm from ``probabilities`` with the numpy generator ``gen``."""
    u = float(gen.uniform(0.0, 1.0))
    acc = 0.0
    for i, p in enumerate(probabilities):
        acc += p
        if u < acc:
            return i
    return len(probabilities) - 1
