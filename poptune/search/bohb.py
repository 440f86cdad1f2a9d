"""BOHB's model-based searcher (``ray.tune.search.bohb.TuneBOHB``), in numpy only.

BOHB's model (Falkner et al., 2018; HpBandSter's ``BOHB`` config generator), implemented
natively over poptune search spaces, without ConfigSpace or hpbandster:

* each hyperparameter maps to ``[0, 1]``: floats linearly or in log space (normal ones by
  their CDF), integers and quantized values with half a step of margin, choices to indices;
* results are filed per *budget*; on the largest budget with enough observations, the best
  ``top_n_percent`` make a "good" and the rest a "bad" multivariate KDE (Gaussian kernels
  for numbers, Aitchison-Aitken for choices, normal-reference bandwidths);
* a suggestion is a draw from the space with probability ``random_fraction`` (and while
  there is no model), else the best of ``num_samples`` candidates drawn around good points
  (bandwidths times ``bandwidth_factor``) by the ratio ``bad(x) / good(x)``.

A result carrying Ray's ``hyperband_info["budget"]`` is filed under that budget, any other
under its ``training_iteration`` (``budget_attr``), which covers every milestone of
:class:`~poptune.schedulers.HyperBandForBOHB`; a budget reported again (after a restore)
replaces the trial's earlier observation. Unlike HpBandSter, the Aitchison-Aitken kernel
counts all choices (statsmodels counts those seen, which fails when a KDE lacks one), a
missing value is imputed in any dimension (HpBandSter skips the first), and all randomness
comes from the searcher's own generator (``seed``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from poptune._validation import bad_type, bad_value, check_in_range, check_mode
from poptune.exceptions import TuneConfigError
from poptune.search._adapter import SearcherAdapter, check_seed, copy_points, numeric_range
from poptune.search.sample import Categorical, Domain, Float, Integer, Normal, Quantized, Uniform
from poptune.search.variant_generator import _assign, _copy_structure, _get, _parse, flatten_dict

__all__ = ["TuneBOHB"]

logger = logging.getLogger(__name__)

_DEFAULTS = {"min_points_in_model": None, "top_n_percent": 15, "num_samples": 64,
             "random_fraction": 1 / 3, "bandwidth_factor": 3, "min_bandwidth": 1e-3}


@dataclass
class _Param:
    """One hyperparameter and its map to the unit interval."""

    name: str
    path: tuple[Any, ...]
    domain: Domain
    choices: list[Any] | None = None  # a categorical's categories
    low: float = 0.0  # the unit interval's ends in value (or log-value) space
    high: float = 1.0
    log: bool = False
    step: float | None = None  # rounding quantum (1 for integers)
    vmin: float = -math.inf  # inclusive bounds of returned values
    vmax: float = math.inf
    normal: tuple[float, float] | None = None
    is_int: bool = False

    def to_unit(self, value: Any) -> float:
        """The unit-interval coordinate of ``value`` (NaN if it is not in the domain)."""
        if self.choices is not None:
            for i, category in enumerate(self.choices):
                try:
                    if category == value:
                        return float(i)
                except Exception:  # noqa: BLE001 - uncomparable values never match
                    continue
            return math.nan
        try:
            x = float(value)
        except (TypeError, ValueError):
            return math.nan
        if self.normal is not None:
            return min(max(NormalDist(*self.normal).cdf(x), 0.0), 1.0)
        if self.log:
            x = math.log(x) if x > 0 else math.nan
        return min(max((x - self.low) / (self.high - self.low), 0.0), 1.0)

    def from_unit(self, u: float) -> Any:
        if self.choices is not None:
            return self.choices[int(min(max(round(u), 0), len(self.choices) - 1))]
        if self.normal is not None:
            x = NormalDist(*self.normal).inv_cdf(min(max(u, 1e-12), 1 - 1e-12))
        else:
            x = self.low + u * (self.high - self.low)
            x = math.exp(x) if self.log else x
        if self.step is not None:
            x = round(x / self.step) * self.step
        x = min(max(x, self.vmin), self.vmax)
        return int(round(x)) if self.is_int else float(x)


def _make_param(path: tuple[Any, ...], domain: Domain) -> _Param:
    name = "/".join(str(p) for p in path)
    sampler = domain.get_sampler()
    p = _Param(name=name, path=path, domain=domain)
    if isinstance(domain, Categorical) and isinstance(sampler, Uniform):
        p.choices = list(domain.categories)
        return p
    if isinstance(domain, Float) and isinstance(sampler, Quantized):
        p.step, sampler = sampler.q, sampler.get_sampler()
    if isinstance(domain, Float) and isinstance(sampler, Normal):
        p.normal = (sampler.mean, sampler.sd)
        return p
    r = numeric_range(domain)
    if r is not None:
        p.log, p.is_int = r.log, r.integer
        if r.q is not None:  # inclusive multiples of q
            p.vmin, p.vmax, p.step = r.low, r.high, r.q
        elif p.is_int:  # randint's upper bound, lowered: inclusive
            p.vmin, p.vmax, p.step = r.low, r.high, 1
        else:  # uniform floats never reach `upper`
            p.vmin, p.vmax, p.step = r.low, math.nextafter(r.high, -math.inf), None
        half = (p.step or 0) / 2 if p.is_int else 0.0
        low, high = p.vmin - half, (p.vmax if p.step or p.is_int else r.high) + half
        p.low, p.high = (math.log(low), math.log(high)) if p.log else (low, high)
        return p
    raise TuneConfigError(
        f"TuneBOHB does not support parameters of type `{type(domain).__name__}` with "
        f"samplers of type `{type(sampler).__name__}` (at `{name}`)"
    )


def _convert(spec: Any) -> list[_Param]:
    """Hyperparameters of a poptune space (dict) or of a ConfigSpace-like object."""
    if isinstance(spec, dict):
        domains, grids = _parse(spec)
        if grids:
            raise TuneConfigError(
                "Grid search parameters cannot be automatically converted to a TuneBOHB "
                f"search space (found at {['/'.join(map(str, p)) for p, _ in grids]})"
            )
        return [_make_param(path, domain) for path, domain in domains]
    getter = getattr(spec, "get_hyperparameters", None)
    hps = list(getter()) if callable(getter) else list(getattr(spec, "values", lambda: [])())
    if not hps:
        raise bad_type("space", spec, "a dict search space or a ConfigSpace space")
    return [_make_param((hp.name,), _from_configspace(hp)) for hp in hps]


def _from_configspace(hp: Any) -> Domain:
    """A poptune domain for a ConfigSpace hyperparameter (duck-typed; no import needed)."""
    if hasattr(hp, "choices"):
        return Categorical(list(hp.choices)).uniform()
    if hasattr(hp, "mu") and hasattr(hp, "sigma"):
        return Float(None, None).normal(hp.mu, hp.sigma)
    is_int = "Integer" in type(hp).__name__
    dom: Any = Integer(hp.lower, hp.upper + 1) if is_int else Float(hp.lower, hp.upper)
    dom = dom.loguniform() if getattr(hp, "log", False) else dom.uniform()
    q = getattr(hp, "q", None)
    return dom.quantized(q) if q else dom


def _check_bohb_config(bohb_config: dict[str, Any] | None) -> dict[str, Any]:
    config = dict(_DEFAULTS)
    for key, value in (bohb_config or {}).items():
        if key not in _DEFAULTS:
            raise bad_value("bohb_config", bohb_config,
                            f"a dict with keys among {sorted(_DEFAULTS)}")
        config[key] = value
    check_in_range("top_n_percent", config["top_n_percent"], 0, 100, low_open=True, high_open=True)
    check_in_range("random_fraction", config["random_fraction"], 0, 1)
    check_in_range("bandwidth_factor", config["bandwidth_factor"], 0, low_open=True)
    check_in_range("min_bandwidth", config["min_bandwidth"], 0, low_open=True)
    for key in ("num_samples", "min_points_in_model"):
        value = config[key]
        if (value is not None or key == "num_samples") and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise bad_value(key, value, "an integer >= 1")
    return config


class _KDE:
    """Product-kernel density over unit-interval data (Gaussian / Aitchison-Aitken)."""

    def __init__(self, data: np.ndarray, vartypes: np.ndarray, min_bandwidth: float) -> None:
        n, d = data.shape
        self.data, self.vartypes = data, vartypes
        self.bw = np.clip(1.06 * data.std(axis=0) * n ** (-1.0 / (4 + d)), min_bandwidth, None)

    def pdf(self, x: np.ndarray) -> np.ndarray:
        """Density at each row of ``x`` (shape ``(m, d)``)."""
        k = np.ones((x.shape[0], self.data.shape[0]))
        for j, c in enumerate(self.vartypes):
            diff = x[:, j, None] - self.data[None, :, j]
            bw = self.bw[j]
            if c == 0:
                k *= np.exp(-0.5 * (diff / bw) ** 2) / (math.sqrt(2 * math.pi) * bw)
            elif c > 1:
                lam = min(bw, (c - 1) / c)
                k *= np.where(np.abs(diff) < 0.5, 1 - lam, lam / (c - 1))
        return k.mean(axis=1)


class TuneBOHB(SearcherAdapter):
    """BOHB's searcher: per-budget good/bad KDEs proposing new configs (TPE-style).

    Use it with :class:`~poptune.schedulers.HyperBandForBOHB`.

    Args:
        space: a poptune search space (dict with domains) or a ConfigSpace-like space; by
            default the Tuner's ``param_space`` is used.
        bohb_config: model settings: ``min_points_in_model`` (None: dimensions + 1),
            ``top_n_percent`` (15), ``num_samples`` (64), ``random_fraction`` (1/3),
            ``bandwidth_factor`` (3), ``min_bandwidth`` (1e-3).
        metric: the objective; may instead come from ``TuneConfig``.
        mode: ``"min"`` or ``"max"``; may instead come from ``TuneConfig``.
        points_to_evaluate: configs to run first (nested or ``"a/b"``-flattened dicts).
        seed: seed of the searcher's own generator.
        max_concurrent: most trials suggested and not completed at once (<= 0: no limit).
        budget_attr: result key giving the budget when a result has no ``hyperband_info``
            (poptune extra).

    Example:
        >>> import poptune as tune
        >>> bohb = TuneBOHB({"x": tune.uniform(-5, 5), "act": tune.choice(["relu", "tanh"])},
        ...                 metric="loss", mode="min", seed=0)
        >>> for i in range(12):
        ...     config = bohb.suggest(f"t{i}")
        ...     bohb.on_trial_result(f"t{i}", {"training_iteration": 1,
        ...                                    "loss": (config["x"] - 1) ** 2})
        ...     bohb.on_trial_complete(f"t{i}")
        >>> sorted(bohb.suggest("t12"))
        ['act', 'x']
    """

    def __init__(
        self,
        space: Any = None,
        bohb_config: dict[str, Any] | None = None,
        metric: str | None = None,
        mode: str | None = None,
        points_to_evaluate: list[dict[str, Any]] | None = None,
        seed: int | None = None,
        max_concurrent: int = 0,
        *,
        budget_attr: str = "training_iteration",
    ) -> None:
        check_mode(mode)
        check_seed("seed", seed)
        if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int):
            raise bad_type("max_concurrent", max_concurrent, "an int")
        points = copy_points(points_to_evaluate)
        config = _check_bohb_config(bohb_config)
        super().__init__(metric=metric, mode=mode)
        self._bohb_config = config
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self._max_concurrent = max_concurrent
        self._points_to_evaluate = points
        self._budget_attr = budget_attr
        self._space: Any = None
        self._params: list[_Param] | None = None
        self._vectors: dict[str, np.ndarray] = {}
        self.running: set[str] = set()
        self.paused: set[str] = set()
        self._obs: dict[float, dict[str, tuple[np.ndarray, float]]] = {}
        self._models: dict[float, tuple[_KDE, _KDE]] = {}
        if space:
            self._setup(space)

    # ----------------------------------------------------------------- setup
    def _setup(self, space: Any) -> None:
        self._space = space
        self._params = _convert(space)
        d = len(self._params)
        mpm = self._bohb_config["min_points_in_model"]
        if mpm is None or mpm < d + 1:
            if mpm is not None:
                logger.warning("TuneBOHB: invalid min_points_in_model=%s; using %d", mpm, d + 1)
            mpm = d + 1
        self._min_points = mpm
        self._vartypes = np.array([len(p.choices or ()) for p in self._params], dtype=int)
        if self._metric is None and self._mode:
            self._metric = "_metric"

    @staticmethod
    def convert_search_space(spec: dict[str, Any]) -> dict[str, Domain]:
        """The hyperparameters TuneBOHB would search in ``spec``, by ``"a/b"`` name."""
        return {p.name: p.domain for p in _convert(spec)}

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        if self._space:
            return False
        if metric:
            self._metric = metric
        if mode:
            check_mode(mode)
            self._mode = mode
        self._setup(config)
        return True

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        self._max_concurrent = max_concurrent
        return True

    # ----------------------------------------------------------------- searcher hooks
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self._params is None:
            raise TuneConfigError(
                "TuneBOHB has no search space: pass `space` or a Tuner `param_space`")
        self._require_metric_mode()
        if 0 < self._max_concurrent <= len(self.running):
            return None
        if self._points_to_evaluate:
            point = flatten_dict(self._points_to_evaluate.pop(0))
            vector = np.array([p.to_unit(point.get(p.name, math.nan)) for p in self._params])
            values = {p.name: point[p.name] for p in self._params if p.name in point}
            extra = {k: v for k, v in point.items() if k not in values}
        else:
            values = {p.name: p.from_unit(u) for p, u in zip(self._params, self._get_config())}
            vector = np.array([p.to_unit(values[p.name]) for p in self._params])
            extra = {}
        self._vectors[trial_id] = vector
        self.running.add(trial_id)
        return self._nest(values, extra)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id not in self.paused:
            self.running.add(trial_id)
        vector = self._vectors.get(trial_id)
        if vector is None or self._metric not in result:
            return
        info = result.get("hyperband_info")  # nested, or flattened as the runner passes it
        budget = (info.get("budget") if isinstance(info, dict)
                  else result.get("hyperband_info/budget", result.get(self._budget_attr)))
        if budget is None:
            return
        try:
            loss = float(result[self._metric]) * (1.0 if self._mode == "min" else -1.0)
        except (TypeError, ValueError):
            loss = math.inf
        self._new_result(trial_id, vector, float(budget), loss if np.isfinite(loss) else math.inf)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        self._vectors.pop(trial_id, None)
        self.paused.discard(trial_id)
        self.running.discard(trial_id)

    def on_pause(self, trial_id: str) -> None:
        """Ray's hook: a paused trial no longer counts against ``max_concurrent``."""
        self.paused.add(trial_id)
        self.running.discard(trial_id)

    def on_unpause(self, trial_id: str) -> None:
        self.paused.discard(trial_id)
        self.running.add(trial_id)

    # ----------------------------------------------------------------- the model
    def _new_result(self, key: str, vector: np.ndarray, budget: float, loss: float) -> None:
        """File an observation and refit that budget's KDEs (HpBandSter's rules)."""
        if self._models and max(self._models) > budget:
            return  # a larger budget already has a model
        observations = self._obs.setdefault(budget, {})
        observations[key] = (vector, loss)
        n = len(observations)
        if n < self._min_points:
            return
        data = np.array([v for v, _ in observations.values()])
        losses = np.array([loss for _, loss in observations.values()])
        top = self._bohb_config["top_n_percent"]
        n_good = max(self._min_points, int(top * n) // 100)
        n_bad = max(self._min_points, int((100 - top) * n) // 100)
        order = np.argsort(losses, kind="stable")
        good = self._impute(data[order[:n_good]])
        bad = self._impute(data[order[n_good:n_good + n_bad]])
        d = data.shape[1]
        if good.shape[0] <= d or bad.shape[0] <= d:
            return
        min_bw = self._bohb_config["min_bandwidth"]
        self._models[budget] = (_KDE(good, self._vartypes, min_bw),
                                _KDE(bad, self._vartypes, min_bw))
        for smaller in [b for b in self._obs if b < budget]:  # never used again: keep the
            self._obs.pop(smaller)  # saved state small
            self._models.pop(smaller, None)

    def _impute(self, array: np.ndarray) -> np.ndarray:
        """Fill missing coordinates from a random row that has them (else at random)."""
        out = array.copy()
        for i in range(out.shape[0]):
            missing = np.flatnonzero(np.isnan(out[i]))
            while missing.size:
                j = missing[0]
                donors = np.flatnonzero(np.isfinite(array[:, j]))
                if donors.size:
                    row = array[self._rng.choice(donors)]
                    out[i, missing] = row[missing]
                else:
                    c = self._vartypes[j]
                    out[i, j] = self._rng.integers(c) if c else self._rng.random()
                missing = np.flatnonzero(np.isnan(out[i]))
        return out

    def _get_config(self) -> np.ndarray:
        """A unit vector: a prior draw, or the best of ``num_samples`` model candidates."""
        assert self._params is not None
        cfg = self._bohb_config
        if not self._models or self._rng.random() < cfg["random_fraction"]:
            values = [p.domain.sample(random_state=self._rng) for p in self._params]
            return np.array([p.to_unit(v) for p, v in zip(self._params, values)])
        good, bad = self._models[max(self._models)]
        m = cfg["num_samples"]
        centers = good.data[self._rng.integers(0, good.data.shape[0], size=m)]
        candidates = np.empty_like(centers)
        for j, c in enumerate(self._vartypes):
            bw = max(good.bw[j], cfg["min_bandwidth"])
            if c == 0:
                candidates[:, j] = self._truncnorm(centers[:, j], bw * cfg["bandwidth_factor"])
            else:
                keep = self._rng.random(m) < 1 - bw
                candidates[:, j] = np.where(keep, np.floor(centers[:, j]),
                                            self._rng.integers(0, c, size=m))
        ratio = np.maximum(bad.pdf(candidates), 1e-32) / np.maximum(good.pdf(candidates), 1e-32)
        return candidates[int(np.argmin(ratio))]

    def _truncnorm(self, loc: np.ndarray, scale: float) -> np.ndarray:
        """Normal draws around ``loc`` truncated to ``[0, 1]`` (by rejection)."""
        out = self._rng.normal(loc, scale)
        for _ in range(100):
            bad = (out < 0) | (out > 1)
            if not bad.any():
                break
            out[bad] = self._rng.normal(loc[bad], scale)
        return np.clip(out, 0.0, 1.0)

    def _nest(self, values: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
        """The suggestion as a nested config (a domain inside a list yields the whole list)."""
        assert self._params is not None
        out: dict[str, Any] = {}
        lists: dict[tuple[Any, ...], Any] = {}
        nested_space = isinstance(self._space, dict)
        for p in self._params:
            if p.name not in values:
                continue
            path = p.path if nested_space else tuple(p.name.split("/"))
            cut = next((i for i, k in enumerate(path) if isinstance(k, int)), None)
            if cut is None:
                _set(out, path, values[p.name])
                continue
            key = path[:cut]  # the list holding the domain
            if key not in lists:
                lists[key] = _copy_structure(_get(self._space, key))
            lists[key] = _assign(lists[key], path[cut:], values[p.name])
            _set(out, key, lists[key])
        for name, value in extra.items():
            _set(out, tuple(name.split("/")), value)
        return out


def _set(node: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
