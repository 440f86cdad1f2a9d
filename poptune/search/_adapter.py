"""What the library adapters (Optuna, HyperOpt, BayesOpt, Nevergrad, Ax, BOHB) share.

:class:`SearcherAdapter` checks ``points_to_evaluate`` and seeds, fills in metric and mode,
raises the one "no valid metric or mode" error, and takes the Tuner's ``param_space`` once:
an adapter with a space of its own keeps it (and only borrows a missing metric or mode);
otherwise the first call converts the ``param_space`` and a later call (a restored
experiment) keeps the searcher's state if the space has the same parameters. Each adapter
implements only the library-specific part: :meth:`~SearcherAdapter._has_own_space`,
:meth:`~SearcherAdapter._parse_space`, :meth:`~SearcherAdapter._same_space` and
:meth:`~SearcherAdapter._install_space`.

Example:
    >>> class Toy(SearcherAdapter):
    ...     def __init__(self):
    ...         super().__init__(metric="loss", mode="min")
    ...         self.space = None
    ...     def _has_own_space(self): return False
    ...     def _parse_space(self, config): return sorted(config)
    ...     def _same_space(self, parsed): return parsed == self.space
    ...     def _install_space(self, parsed): self.space = parsed
    >>> toy = Toy()
    >>> toy.set_search_properties(None, None, {"x": 1}), toy.space
    (True, ['x'])
    >>> toy.set_search_properties(None, None, {"y": 1}), toy.space  # restored, other space
    (False, ['x'])
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

from poptune._validation import bad_type, bad_value, check_mode, no_metric_mode
from poptune.search._base import Searcher
from poptune.exceptions import TuneConfigError
from poptune.search.sample import (
    Domain, Float, Function, Integer, LogUniform, Quantized, Uniform, _quantized_bounds,
)  # fmt: skip
from poptune.search.variant_generator import _join, _parse

__all__ = ["NumericRange", "SearcherAdapter", "ValueMap", "check_seed", "copy_points",
           "numeric_range", "space_domains"]


def space_domains(spec: Any, who: str, where: str = "param_space") -> dict[str, Domain]:
    """The domains of a space that ``who`` must search, by ``"a/b"`` name: ``grid_search``
    is refused, ``sample_from`` left to the Tuner, nested keys must be strings free of ``/``.

    >>> from poptune.search.sample import uniform, sample_from
    >>> list(space_domains({"a": {"b": uniform(0, 1)}, "c": 3,
    ...                     "d": sample_from(lambda s: 1)}, "X"))
    ['a/b']
    """
    domains, grids = _parse(spec)
    if grids:
        raise TuneConfigError(
            f"`{where}` entries {[_join(p) for p, _ in grids]} are grid_search, which "
            f"{who} cannot search; use tune.choice, or the default search for grids")
    out: dict[str, Domain] = {}
    for path, domain in domains:
        if isinstance(domain, Function):
            continue  # sample_from: the Tuner draws it once the suggestion is in
        if not all(isinstance(k, str) and "/" not in k for k in path):
            raise TuneConfigError(
                f"`{where}` entry {_join(path)!r} must sit in nested dicts with string "
                f"keys free of '/' for {who}, got {domain!r} there")
        out["/".join(path)] = domain
    return out


@dataclass(frozen=True)
class NumericRange:
    """A uniform or log-uniform float or integer domain, quantized or not, as a library
    adapter converts it: inclusive bounds (``randint``'s exclusive upper bound already
    lowered; a quantized domain's bounds snapped to multiples of ``q``)."""

    low: Any
    high: Any
    log: bool = False
    q: Any = None  # the step of a quantized domain (an int for integers); None otherwise
    integer: bool = False


@dataclass(frozen=True)
class ValueMap:
    """How a value a library suggests becomes the config value, and back (for points): a
    category by its index, a multiple of ``step`` by its integer, a log-scale draw rounded to
    ``q`` within ``[low, high]``, an integer cast.

    >>> ValueMap(step=0.25).decode(3), ValueMap(step=0.25).encode(0.75)
    (0.75, 3)
    >>> ValueMap(categories=("a", 3)).decode(1), ValueMap(categories=("a", 3)).encode("a")
    (3, 0)
    >>> ValueMap(q=5, low=5, high=100, integer=True).decode(98.2)
    100
    >>> ValueMap(q=1, low=1, high=100).decode(41.7), ValueMap(step=1).decode(3)
    (42.0, 3.0)
    """

    categories: tuple[Any, ...] | None = None  # the library's category i is categories[i]
    step: float | None = None  # value = the library's integer * step
    q: float | None = None  # rounded to q after a log-scale draw
    low: float = -math.inf
    high: float = math.inf
    integer: bool = False

    def decode(self, value: Any) -> Any:
        if self.categories is not None:
            return self.categories[int(value)]
        if self.step is not None:
            value = int(value) * self.step
        elif self.q is not None:
            value = min(max(round(value / self.q) * self.q, self.low), self.high)
        else:
            return int(value) if self.integer else value
        # a float domain's multiple stays a float, whatever the step (``q=1`` included)
        return int(value) if self.integer else float(value)

    def encode(self, value: Any, where: str = "points_to_evaluate") -> Any:
        """The library's value for a config value (a category's index, a multiple's
        integer); ``where`` names the input in the error for a value that is no category."""
        if self.categories is not None:
            for i, category in enumerate(self.categories):
                if category is value or category == value:
                    return i
            raise bad_value(where, value, f"one of {list(self.categories)}")
        return round(value / self.step) if self.step is not None else value


def numeric_range(domain: Domain) -> NumericRange | None:
    """The :class:`NumericRange` of ``domain``, or None if it is not such a domain (a
    choice, ``randn``, ``sample_from``). ``qrandint(a, b, 1)`` is ``randint(a, b + 1)``, as in
    Ray.

    >>> from poptune.search.sample import randint, qloguniform, choice
    >>> numeric_range(randint(0, 10))
    NumericRange(low=0, high=9, log=False, q=None, integer=True)
    >>> numeric_range(qloguniform(1e-3, 1, 1e-3)).log, numeric_range(choice([1, 2]))
    (True, None)
    """
    sampler = domain.get_sampler()
    q = None
    if isinstance(sampler, Quantized):
        q, sampler = sampler.q, sampler.get_sampler()
        if isinstance(domain, Integer):
            q = None if q == 1 else int(q)
    if not (isinstance(domain, (Float, Integer)) and isinstance(sampler, (Uniform, LogUniform))):
        return None
    integer = isinstance(domain, Integer)
    if q is not None:
        low, high = _quantized_bounds(domain, q)
    elif integer:
        low, high = domain.lower, domain.upper - 1
    else:
        low, high = domain.lower, domain.upper
    return NumericRange(low, high, isinstance(sampler, LogUniform), q, integer)


def check_seed(name: str, seed: Any) -> None:
    """A seed argument must be an int or None (a bool is refused).

    >>> check_seed("seed", 3); check_seed("seed", None)
    >>> check_seed("seed", 1.5)
    Traceback (most recent call last):
    ...
    TypeError: `seed` must be an int or None, got 1.5 of type float
    """
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise bad_type(name, seed, "an int or None")


def copy_points(points_to_evaluate: Any) -> list[dict[str, Any]]:
    """``points_to_evaluate`` checked (a list of dicts or None) and deep-copied.

    >>> copy_points(None), copy_points([{"x": 1}])
    ([], [{'x': 1}])
    """
    if points_to_evaluate is not None and not (
        isinstance(points_to_evaluate, (list, tuple))
        and all(isinstance(p, dict) for p in points_to_evaluate)
    ):
        raise bad_type("points_to_evaluate", points_to_evaluate, "a list of dicts or None")
    return copy.deepcopy(list(points_to_evaluate or []))


class SearcherAdapter(Searcher):
    """Base of the searchers that wrap an optimisation library (see the module docstring)."""

    _space_from_tuner: bool = False

    # -- what an adapter implements -----------------------------------------------------
    def _has_own_space(self) -> bool:
        """True if the searcher was given a space of its own (the Tuner's is then refused)."""
        raise NotImplementedError

    def _parse_space(self, config: dict[str, Any]) -> Any:
        """The Tuner's ``param_space`` in the adapter's form (raising on what it cannot
        search)."""
        raise NotImplementedError

    def _same_space(self, parsed: Any) -> bool:
        """Whether ``parsed`` has the parameters of the space taken before."""
        raise NotImplementedError

    def _install_space(self, parsed: Any) -> None:
        """Make ``parsed`` the space to search."""
        raise NotImplementedError

    def _objective_fixed(self) -> bool:
        """True once metric and mode can no longer change (e.g. the study exists)."""
        return False

    def _check_mode(self, mode: Any) -> None:
        check_mode(mode)

    # -- shared -------------------------------------------------------------------------
    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        """Take the Tuner's metric, mode and ``param_space`` (once); False if the searcher
        keeps a space of its own or, restored, got a space with other parameters."""
        self._check_mode(mode)
        if self._has_own_space() and not self._space_from_tuner:
            self._fill_metric_mode(metric, mode, override=False)
            return False
        parsed = self._parse_space(config)
        if self._space_from_tuner:  # called again (a restored experiment): keep the state
            if not self._same_space(parsed):
                return False
        else:
            self._install_space(parsed)
            self._space_from_tuner = True
        self._fill_metric_mode(metric, mode, override=True)
        return True

    def _fill_metric_mode(self, metric: Any, mode: Any, override: bool) -> None:
        """Set the metric and mode given (``override=False``: only those still missing)."""
        if self._objective_fixed():
            return
        if metric and (override or self._metric is None):
            self._metric = list(metric) if isinstance(metric, (list, tuple)) else metric
        if mode and (override or self._mode is None):
            self._mode = list(mode) if isinstance(mode, (list, tuple)) else mode

    def _require_metric_mode(self) -> None:
        """Raise the standard error unless metric and mode are known (a mode alone means
        Ray's anonymous metric ``_metric``)."""
        if self._metric is None and isinstance(self._mode, str) and self._mode:
            self._metric = "_metric"
        if not self._metric or not self._mode:
            raise no_metric_mode(self, self._metric, self._mode, "searcher")
