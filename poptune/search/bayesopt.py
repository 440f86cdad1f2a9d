"""Bayesian optimisation with a Gaussian process (``ray.tune.search.bayesopt.BayesOptSearch``),
on ``bayesian-optimization`` 1.x (the API Ray 2.60 uses, pinned by nevergrad 1.0) or 2.x/3.x:
the installed version is detected when the optimizer is built. With 1.x, the same seed and the
same results give the configs Ray's ``BayesOptSearch`` suggests.

Only continuous float parameters are searched: ``tune.uniform`` and ``tune.quniform``
linearly, ``tune.loguniform`` and ``tune.qloguniform`` on the log scale (Ray drops the log
scale), quantized ones rounded to their step before the trial sees them. A user ``space``
is a (nested) dict of ``(lower, upper)`` bounds or float domains. ``sample_from`` entries are
drawn by the Tuner after the suggestion; any other domain is refused, naming the parameter.

Semantics kept from Ray: the first ``random_search_steps`` trials are random and their
results are registered together once all of them ended (later suggestions wait for that);
a config suggested again is skipped (``skip_duplicate``) and after more than ``patience``
repeats the search ends. Non-finite results are not registered, nor is a result without
the metric (Ray raises ``KeyError``); points may be nested and hold keys outside the space
(the searched values are registered; Ray's bayes_opt refuses them), and with
``skip_duplicate=False`` a config run twice is registered twice (Ray's bayes_opt 1.x raises
``NotUniqueError``). Differences: a random-phase
trial that fails no longer blocks the search forever, and a repeat of a config that is still
running waits for its result instead of counting towards ``patience``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from dataclasses import dataclass
from typing import Any

from poptune._imports import require
from poptune._validation import bad_type, bad_value, check_mode, check_one_of
from poptune.exceptions import TuneConfigError
from poptune.search._adapter import SearcherAdapter, copy_points, numeric_range
from poptune.search._base import Searcher
from poptune.search.sample import Domain, Float, Function
from poptune.search.variant_generator import _join, _parse, flatten_dict, unflatten_dict

__all__ = ["BayesOptSearch"]

logger = logging.getLogger(__name__)

_UTILITY_KEYS = ("kind", "kappa", "xi", "kappa_decay", "kappa_decay_delay")
_ACCEPTED = ("tune.uniform, tune.loguniform, tune.quniform, tune.qloguniform or "
             "(lower, upper) bounds")


def _bayes_opt() -> Any:
    return require("bayes_opt", "BayesOptSearch")


@dataclass(frozen=True)
class _Bound:
    """A parameter in ``[lower, upper]``; the optimizer works in ``[low, high]``, the same
    bounds or their logarithms (``log``)."""

    lower: float
    upper: float
    log: bool = False
    q: float | None = None

    @property
    def low(self) -> float:
        return math.log(self.lower) if self.log else self.lower

    @property
    def high(self) -> float:
        return math.log(self.upper) if self.log else self.upper

    def to_user(self, x: float) -> float:
        value = math.exp(x) if self.log else float(x)
        if self.q is not None:
            value = round(value / self.q) * self.q
        return float(min(max(value, self.lower), self.upper))

    def to_internal(self, value: float) -> float:
        value = min(max(float(value), self.lower), self.upper)
        return math.log(value) if self.log else value


def _bound(name: str, value: Any) -> _Bound:
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        if not value[0] < value[1]:
            raise bad_value(f"space[{name!r}]", value, "(lower, upper) with lower < upper")
        return _Bound(float(value[0]), float(value[1]))
    r = numeric_range(value) if isinstance(value, Float) else None
    if r is not None:
        return _Bound(r.low, r.high, log=r.log, q=r.q)
    raise TuneConfigError(
        f"`{name}` has domain {value!r}, but BayesOptSearch searches only continuous float "
        f"parameters ({_ACCEPTED}); use OptunaSearch or HyperOptSearch for integers, "
        "choices and unbounded floats")


def _bounds(spec: dict[str, Any], where: str) -> dict[str, _Bound]:
    domains, grids = _parse(spec)
    if grids:
        raise TuneConfigError(
            f"`{where}` entries {[_join(p) for p, _ in grids]} are grid_search, which "
            "BayesOptSearch cannot search")
    for path, domain in domains:
        if not all(isinstance(k, str) and "/" not in k for k in path):
            raise TuneConfigError(
                f"`{where}` entry {_join(path)!r} must sit in nested dicts with string keys "
                f"free of '/' for BayesOptSearch, got {domain!r} there")
    out: dict[str, _Bound] = {}
    for name, value in flatten_dict(spec).items():
        if isinstance(value, Function):
            continue  # the Tuner draws sample_from entries
        if where == "param_space" and not isinstance(value, Domain):
            continue  # constants reach the trainable through the Tuner
        out[name] = _bound(name, value)
    return out


def _new_optimizer(byo: Any, pbounds: dict[str, tuple[float, float]],
                   utility_kwargs: dict[str, Any], random_state: int,
                   verbose: int) -> tuple[Any, Any]:
    """bayes_opt's optimizer and the utility its 1.x ``suggest(utility)`` takes (None for
    2.x/3.x, where the acquisition function is part of the optimizer)."""
    common = {"f": None, "pbounds": pbounds, "random_state": random_state, "verbose": verbose,
              "allow_duplicate_points": True}
    if hasattr(byo, "acquisition"):  # 2.x and 3.x
        return (byo.BayesianOptimization(
            acquisition_function=_acquisition(byo, utility_kwargs), **common), None)
    utility = byo.UtilityFunction(**{"kind": "ucb", "kappa": 2.576, "xi": 0.0,
                                     **utility_kwargs})
    return byo.BayesianOptimization(**common), utility


def _acquisition(byo: Any, utility_kwargs: dict[str, Any]) -> Any:
    """The bayes_opt 2.x/3.x acquisition function for Ray's (1.x) ``utility_kwargs``."""
    acq = byo.acquisition
    kind = utility_kwargs.get("kind", "ucb")
    decay = utility_kwargs.get("kappa_decay", 1)
    delay = utility_kwargs.get("kappa_decay_delay", 0)
    decay_kwargs = {} if decay == 1 else {"exploration_decay": decay,
                                          "exploration_decay_delay": delay}
    if kind == "ucb":
        return acq.UpperConfidenceBound(kappa=utility_kwargs.get("kappa", 2.576), **decay_kwargs)
    if kind == "ei":
        return acq.ExpectedImprovement(xi=utility_kwargs.get("xi", 0.0), **decay_kwargs)
    return acq.ProbabilityOfImprovement(xi=utility_kwargs.get("xi", 0.0), **decay_kwargs)


def _one_blas_thread() -> Any:
    """Single-threaded BLAS for the tiny Gaussian-process algebra: several times faster than
    the default thread pool, which mostly contends for the cores."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn (a bayes_opt dependency) brings it
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


class BayesOptSearch(SearcherAdapter):
    """Gaussian-process Bayesian optimisation over continuous parameters.

    Args:
        space: a (nested) dict of ``(lower, upper)`` bounds or float domains; None: the
            Tuner's ``param_space`` is converted.
        metric: the result key to optimize.
        mode: ``"min"`` or ``"max"``.
        points_to_evaluate: configs to run first.
        utility_kwargs: the acquisition function, as in Ray: ``kind`` (``"ucb"``, ``"ei"``
            or ``"poi"``), ``kappa`` (2.576), ``xi`` (0.0), ``kappa_decay``,
            ``kappa_decay_delay``.
        random_state: seed of the optimizer (42: reproducible by default, as in Ray).
        random_search_steps: random trials before the Gaussian process is used.
        verbose: bayes_opt's verbosity.
        patience: end the search once a config was suggested more than this many times.
        skip_duplicate: skip a config suggested before (returning None).
        analysis: an earlier experiment (:class:`~poptune.ExperimentAnalysis` or anything
            with Ray's ``dataframe(metric, mode)`` and ``get_all_configs()``) whose results
            the Gaussian process learns first (:meth:`register_analysis`).
        repeat_float_precision: decimals kept when floats are compared to find a config
            suggested before (5, as Ray).

    Example:
        >>> import poptune as tune
        >>> searcher = BayesOptSearch(metric="loss", mode="min", random_search_steps=2)
        >>> searcher.set_search_properties(None, None, {"x": tune.uniform(-1, 1)})
        True
        >>> -1 <= searcher.suggest("t0")["x"] <= 1
        True
        >>> searcher.on_trial_complete("t0", {"loss": 0.3})
    """

    def __init__(
        self,
        space: dict[str, Any] | None = None,
        metric: str | None = None,
        mode: str | None = None,
        points_to_evaluate: list[dict[str, Any]] | None = None,
        utility_kwargs: dict[str, Any] | None = None,
        random_state: int = 42,
        random_search_steps: int = 10,
        verbose: int = 0,
        patience: int = 5,
        skip_duplicate: bool = True,
        analysis: Any = None,
        repeat_float_precision: int = 5,
    ) -> None:
        _bayes_opt()
        check_mode(mode)
        super().__init__(metric=metric, mode=mode)
        for name, value, low in (("patience", patience, 1),
                                 ("random_search_steps", random_search_steps, 0),
                                 ("repeat_float_precision", repeat_float_precision, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise bad_value(name, value, f"an integer >= {low}")
        utility_kwargs = dict(utility_kwargs or {})
        for key in utility_kwargs:
            check_one_of("utility_kwargs key", key, _UTILITY_KEYS)
        check_one_of("utility_kwargs['kind']", utility_kwargs.get("kind", "ucb"),
                     ("ucb", "ei", "poi"))
        points = copy_points(points_to_evaluate)
        self._utility_kwargs = utility_kwargs
        self._random_state = random_state
        self._random_search_steps = random_search_steps
        self._verbose = verbose
        self._patience = patience
        self._skip_duplicate = bool(skip_duplicate)
        self._precision = repeat_float_precision
        self._analysis = analysis  # learnt when the optimizer is made
        self._points = points
        self._bounds: dict[str, _Bound] = {}
        self.optimizer: Any = None
        self._utility: Any = None  # bayes_opt 1.x: the UtilityFunction given to suggest()
        self._live: dict[str, tuple[dict[str, float], str]] = {}  # id -> (params, hash)
        self._buffer: list[tuple[dict[str, float], float]] = []
        self._random_started = 0
        self._random_live: set[str] = set()
        self._flushed = random_search_steps == 0
        self._config_counter: dict[str, int] = {}
        self._blocked: tuple[int, str] | None = None  # (observations, running config key)
        if space is not None and not isinstance(space, dict):
            raise bad_type("space", space, "a dict of (lower, upper) bounds or domains, or None")
        if space:
            self._bounds = _bounds(space, "space")

    @staticmethod
    def convert_search_space(spec: dict[str, Any]) -> dict[str, tuple[float, float]]:
        """The optimizer's bounds by ``"a/b"`` name (log-scale parameters in log units)."""
        return {k: (b.low, b.high) for k, b in _bounds(spec, "param_space").items()}

    # the Tuner's param_space, taken once (SearcherAdapter.set_search_properties)
    def _has_own_space(self) -> bool:
        return bool(self._bounds)

    def _parse_space(self, config: dict[str, Any]) -> dict[str, _Bound]:
        return _bounds(config, "param_space")

    def _same_space(self, parsed: dict[str, _Bound]) -> bool:
        return set(parsed) == set(self._bounds)

    def _install_space(self, parsed: dict[str, _Bound]) -> None:
        self._bounds = parsed

    def _ensure_optimizer(self) -> Any:
        if not self._bounds:
            raise TuneConfigError("BayesOptSearch has no search space: pass `space`, or float "
                                  "domains in the Tuner's `param_space`")
        self._require_metric_mode()
        if self.optimizer is None:
            self.optimizer, self._utility = _new_optimizer(
                _bayes_opt(), {k: (b.low, b.high) for k, b in self._bounds.items()},
                self._utility_kwargs, self._random_state, self._verbose)
            if self._analysis is not None:
                analysis, self._analysis = self._analysis, None
                self.register_analysis(analysis)
        return self.optimizer

    def register_analysis(self, analysis: Any) -> None:
        """Teach the Gaussian process an earlier experiment's results, as Ray does: each row
        of ``analysis.dataframe(metric, mode)`` with the config of the same position in
        ``analysis.get_all_configs()`` (a row without a finite metric is skipped)."""
        self._ensure_optimizer()
        frame = analysis.dataframe(metric=self._metric, mode=self._mode)
        for (_, row), config in zip(frame.iterrows(), analysis.get_all_configs().values()):
            value = row.get(self._metric)
            flat = flatten_dict(config)
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not math.isfinite(float(value))
                    or any(k not in flat for k in self._bounds)):
                continue
            target = float(value) * (1.0 if self._mode == "max" else -1.0)
            self._register({k: b.to_internal(flat[k]) for k, b in self._bounds.items()},
                           target)

    # ----------------------------------------------------------------- searcher hooks
    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        optimizer = self._ensure_optimizer()
        in_random_phase = not self._flushed
        if in_random_phase and self._random_started >= self._random_search_steps:
            return None  # wait until the random trials have all ended
        extra: dict[str, Any] = {}
        if self._points:
            point = flatten_dict(self._points[0])
            missing = sorted(set(self._bounds) - set(point))
            if missing:
                raise bad_value("points_to_evaluate", self._points[0],
                                f"configs giving every searched parameter; missing {missing}")
            values = {k: point[k] for k in self._bounds}  # run exactly as given
            extra = {k: v for k, v in point.items() if k not in self._bounds}
        else:
            blocked = self._blocked
            if blocked and blocked[0] == len(optimizer.space) and self._is_live(blocked[1]):
                return None  # nothing learnt since: the model would suggest the same again
            with _one_blas_thread():
                raw = (optimizer.suggest() if self._utility is None
                       else optimizer.suggest(self._utility))
            values = {k: b.to_user(float(raw[k])) for k, b in self._bounds.items()}
        precision = self._precision
        key = json.dumps({k: f"{v:.{precision}f}" for k, v in values.items()}, sort_keys=True)
        if self._is_live(key):
            self._blocked = (len(optimizer.space), key)
            return None  # the same config is still running: wait for its result
        self._blocked = None
        if self._points:
            self._points.pop(0)
        seen = key in self._config_counter
        self._config_counter[key] = self._config_counter.get(key, 0) + 1
        if self._config_counter[key] > self._patience:
            logger.info("BayesOptSearch: a config was suggested more than %d times; the "
                        "search is finished", self._patience)
            return Searcher.FINISHED
        if seen and self._skip_duplicate:
            logger.info("BayesOptSearch: skipping duplicated config %s", values)
            return None
        if in_random_phase:
            self._random_started += 1
            self._random_live.add(trial_id)
        # the optimizer learns from the values the trial actually ran (quantized ones rounded)
        self._live[trial_id] = ({k: b.to_internal(values[k]) for k, b in self._bounds.items()},
                                key)
        return unflatten_dict({**extra, **values})

    def _is_live(self, key: str) -> bool:
        return any(h == key for _, h in self._live.values())

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        entry = self._live.pop(trial_id, None)
        self._random_live.discard(trial_id)
        if entry is None:
            return
        value = None if error or not result else result.get(self._metric)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            float(value)
        ):
            value = None  # failed, or no finite metric: nothing to learn
        target = None if value is None else float(value) * (1.0 if self._mode == "max" else -1.0)
        if self._flushed:
            if target is not None:
                self._register(entry[0], target)
            return
        if target is not None:
            self._buffer.append((entry[0], target))
        if self._random_started >= self._random_search_steps and not self._random_live:
            self._flushed = True
            for params, buffered in self._buffer:
                self._register(params, buffered)
            self._buffer = []

    def _register(self, params: dict[str, float], target: float) -> None:
        self._ensure_optimizer().register(params=params, target=target)
