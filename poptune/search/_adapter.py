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
from dataclasses import dataclass
from typing import Any

from poptune._validation import bad_type, check_mode, no_metric_mode
from poptune.search._base import Searcher
from poptune.search.sample import (
    Domain, Float, Integer, LogUniform, Quantized, Uniform, _quantized_bounds,
)  # fmt: skip

__all__ = ["NumericRange", "SearcherAdapter", "check_seed", "copy_points", "numeric_range"]


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
