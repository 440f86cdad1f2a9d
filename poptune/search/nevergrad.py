"""Nevergrad adapter (``ray.tune.search.nevergrad.NevergradSearch``).

``optimizer`` is a nevergrad optimizer class (``ng.optimizers.CMA``), a configured one
(``ng.optimizers.OnePlusOne``), its registry name (``"NGOpt"``), or an optimizer instance
built on its own parametrization. The space is an ``ng.p`` parametrization (or a dict of
them), a dict of poptune domains, or the Tuner's ``param_space``. Conversion keeps exact value
sets: integers and quantized values are searched as integer-cast scalars (``k * q``), log
domains with ``ng.p.Log`` (quantized ones rounded to their step), ``choice`` as
``ng.p.Choice``. ``sample_from`` entries are drawn by the Tuner after the suggestion.

Differences from Ray: ``optimizer`` defaults to ``OnePlusOne`` (Ray requires it); a ``seed``
keyword makes runs reproducible (without it the seed is one draw of numpy's global generator,
so Ray's ``np.random.seed`` recipe repeats a run too);
the state is saved as the optimizer's history, which is replayed on restore, so
optimizers that run in a thread (``NGOpt`` may pick one) can be saved too and such a thread
no longer keeps the process alive at exit; a trial that failed or ended without a finite
metric is not told to nevergrad (Ray tells a NaN, which nevergrad clips, and a failed trial's
result, and raises ``KeyError`` without the metric); points may be nested.

nevergrad 1.0 pins ``bayesian-optimization==1.4`` (which ``BayesOptSearch`` supports, so
with it nothing depends on import order). Installed with ``--no-deps`` next to the 3.x
release, nevergrad itself fails to import: its ``from bayes_opt import UtilityFunction``
(removed in 2.0) raises ``ImportError``, and it catches only ``ModuleNotFoundError``.
poptune then imports it with ``bayes_opt`` hidden, so only nevergrad's own ``BO`` optimizers
are unavailable, and a plain ``import nevergrad`` works after this module was imported.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import inspect
import logging
import math
import sys
import threading
import weakref
from typing import Any

import numpy as np

from poptune._imports import MissingDependencyError, require
from poptune._validation import bad_type, bad_value, check_mode
from poptune.exceptions import TuneConfigError
from poptune.search._adapter import (
    SearcherAdapter, ValueMap, check_seed, copy_points, numeric_range,
)  # fmt: skip
from poptune.search.sample import Categorical, Domain, Function, Uniform, global_seed
from poptune.search.variant_generator import _join, _parse, flatten_dict, unflatten_dict

__all__ = ["NevergradSearch"]

logger = logging.getLogger(__name__)
_THREADED: weakref.WeakSet[Any] = weakref.WeakSet()
_HOOKED = False


def _nevergrad() -> Any:
    try:
        return require("nevergrad", "NevergradSearch")
    except MissingDependencyError as exc:
        cause = exc.__cause__
        if not (isinstance(cause, ImportError) and getattr(cause, "name", None) == "bayes_opt"):
            raise
    missing = object()
    saved = sys.modules.get("bayes_opt", missing)
    sys.modules["bayes_opt"] = None  # type: ignore[assignment]
    try:
        return importlib.import_module("nevergrad")
    finally:
        if saved is missing:
            sys.modules.pop("bayes_opt", None)
        else:
            sys.modules["bayes_opt"] = saved  # type: ignore[assignment]


def _stop_threads() -> None:
    for optimizer in list(_THREADED):
        thread = getattr(optimizer, "_messaging_thread", None)
        if thread is not None:
            thread.stop()


def _watch(optimizer: Any) -> None:
    """Stop a recast optimizer's worker thread before the interpreter waits for it."""
    global _HOOKED
    if getattr(optimizer, "_messaging_thread", None) is None:
        return
    _THREADED.add(optimizer)
    register = getattr(threading, "_register_atexit", None)
    if not _HOOKED and register is not None:
        register(_stop_threads)
        _HOOKED = True


#: maps a nevergrad value to the config value (``k * step``, rounding) and back
_Param = ValueMap


def _ray_order(flat: dict[str, Any]) -> dict[str, Any]:
    """``flat`` (a flattened space) in the order Ray's ``flatten_dict`` gives: the top-level
    entries first, then the nested ones, one level after another. Optimizers that sample
    parameter by parameter (PSO, DE) then suggest what Ray's suggest for the same seed.

    Example:
        >>> list(_ray_order({"x": 1, "n/a/b": 2, "n/z": 3, "k": 4}))
        ['x', 'k', 'n/z', 'n/a/b']
    """
    return dict(sorted(flat.items(), key=lambda kv: kv[0].count("/")))


def _convert_domain(ng: Any, name: str, domain: Domain) -> tuple[Any, _Param | None]:
    r = numeric_range(domain)
    if r is not None:
        if r.log:
            # Ray's exponent (nevergrad would pick one from the bounds: other steps)
            param = ng.p.Log(lower=r.low, upper=r.high, exponent=math.e)
            if r.integer and r.q is None:
                return param.set_integer_casting(), _Param(integer=True)
            return param, (None if r.q is None
                           else _Param(q=r.q, low=r.low, high=r.high, integer=r.integer))
        if r.q is None:
            param = ng.p.Scalar(lower=r.low, upper=r.high)
            return ((param.set_integer_casting(), _Param(integer=True)) if r.integer
                    else (param, None))
        steps = ng.p.Scalar(lower=round(r.low / r.q), upper=round(r.high / r.q))
        return steps.set_integer_casting(), _Param(step=r.q, integer=r.integer)
    if isinstance(domain, Categorical) and isinstance(domain.get_sampler(), Uniform):
        return ng.p.Choice(list(domain.categories)), None
    raise TuneConfigError(
        f"`{name}` has domain {domain!r}, which NevergradSearch cannot search; it takes "
        "uniform, loguniform and quantized floats and integers, and choice")


class NevergradSearch(SearcherAdapter):
    """Derivative-free optimisation with nevergrad.

    Args:
        optimizer: an optimizer class, a configured optimizer, a registry name, or an
            optimizer instance; default ``ng.optimizers.OnePlusOne``.
        optimizer_kwargs: keyword arguments for building the optimizer (e.g. ``budget``).
        space: an ``ng.p`` parametrization, a dict of ``ng.p`` parameters or poptune
            domains; with an optimizer instance, None or the list of its parameter names.
        metric: the result key to optimize.
        mode: ``"min"`` or ``"max"``.
        points_to_evaluate: configs to run first.
        seed: seeds the parametrization's generator (poptune extension).

    Example:
        >>> import poptune as tune
        >>> searcher = NevergradSearch(metric="loss", mode="min", seed=0)
        >>> searcher.set_search_properties(None, None, {"x": tune.uniform(-1, 1)})
        True
        >>> -1 <= searcher.suggest("t0")["x"] <= 1
        True
        >>> searcher.on_trial_complete("t0", {"loss": 0.3})
    """

    def __init__(
        self,
        optimizer: Any = None,
        optimizer_kwargs: dict[str, Any] | None = None,
        space: Any = None,
        metric: str | None = None,
        mode: str | None = None,
        points_to_evaluate: list[dict[str, Any]] | None = None,
        *,
        seed: int | None = None,
    ) -> None:
        ng = _nevergrad()
        from nevergrad.optimization.base import ConfiguredOptimizer, Optimizer

        check_mode(mode)
        super().__init__(metric=metric, mode=mode)
        check_seed("seed", seed)
        points = copy_points(points_to_evaluate)
        if optimizer is None:
            optimizer = ng.optimizers.OnePlusOne
        if isinstance(optimizer, str):
            if optimizer not in ng.optimizers.registry:
                raise bad_value("optimizer", optimizer, "a name in ng.optimizers.registry")
            optimizer = ng.optimizers.registry[optimizer]
        self._kwargs = dict(optimizer_kwargs or {})
        # unseeded: one draw of numpy's global generator (Ray's `np.random.seed` recipe)
        seed = global_seed() if seed is None else seed
        self._seed = int(np.random.SeedSequence(seed).generate_state(1)[0])
        self._factory: Any = None
        self._template: Any = None  # an optimizer instance, unused, to replay from
        self._names: list[str] | None = None
        self._space: Any = None
        self._post: dict[str, _Param] = {}
        if isinstance(optimizer, Optimizer):
            if space is not None and not isinstance(space, list):
                raise bad_type("space", space, "None or a list of parameter names when "
                               "`optimizer` is an optimizer instance")
            if self._kwargs:
                raise bad_value("optimizer_kwargs", optimizer_kwargs, "empty when `optimizer` "
                                "is an instance; pass its class or a configured optimizer")
            if optimizer.parametrization._random_state is None:
                optimizer.parametrization.random_state = np.random.RandomState(self._seed)
            self._names = space
            self._template = copy.deepcopy(optimizer)
            self._space = optimizer.parametrization
        elif (inspect.isclass(optimizer) and issubclass(optimizer, Optimizer)) or isinstance(
            optimizer, ConfiguredOptimizer
        ):
            self._factory = optimizer
            if isinstance(space, dict) and space:
                self._space, self._post = self._convert(space, "space")
            elif isinstance(space, ng.p.Parameter):
                self._space = space
            elif space is not None and space != {}:
                raise bad_type("space", space, "an ng.p parametrization, a dict or None")
        else:
            raise bad_type("optimizer", optimizer, "a nevergrad optimizer class, configured "
                           "optimizer, registry name or instance")
        self._points = points
        self._log: list[tuple[Any, ...]] = []  # the optimizer's history, for replay
        self._opt: Any = optimizer if self._template is not None else None
        self._cands: dict[str, Any] = {}

    @staticmethod
    def _convert(spec: dict[str, Any], where: str) -> tuple[Any, dict[str, _Param]]:
        ng = _nevergrad()
        grids = _parse(spec)[1]
        if grids:
            raise TuneConfigError(
                f"`{where}` entries {[_join(p) for p, _ in grids]} are grid_search, which "
                "NevergradSearch cannot search")
        params: dict[str, Any] = {}
        post: dict[str, _Param] = {}
        for path, domain in _parse(spec)[0]:
            if not all(isinstance(k, str) and "/" not in k for k in path):
                raise TuneConfigError(
                    f"`{where}` entry {_join(path)!r} must sit in nested dicts with string "
                    f"keys free of '/' for NevergradSearch, got {domain!r} there")
        for name, value in _ray_order(flatten_dict(spec)).items():
            if isinstance(value, ng.p.Parameter):
                params[name] = value
            elif isinstance(value, Domain) and not isinstance(value, Function):
                params[name], p = _convert_domain(ng, name, value)
                if p is not None:
                    post[name] = p
            elif where == "space":
                raise bad_type(f"space[{name!r}]", value, "an ng.p parameter or a domain")
            # else: constants and sample_from entries of a param_space are the Tuner's
        return ng.p.Dict(**params), post

    @staticmethod
    def convert_search_space(spec: dict[str, Any]) -> Any:
        """The ``ng.p.Dict`` parametrization for the domains of ``spec``."""
        return NevergradSearch._convert(spec, "param_space")[0]

    # the Tuner's param_space, taken once (SearcherAdapter.set_search_properties)
    def _has_own_space(self) -> bool:
        return self._space is not None

    def _parse_space(self, config: dict[str, Any]) -> tuple[Any, dict[str, _Param]]:
        return self._convert(config, "param_space")

    def _same_space(self, parsed: tuple[Any, dict[str, _Param]]) -> bool:
        return set(parsed[0].value) == set(self._space.value)

    def _install_space(self, parsed: tuple[Any, dict[str, _Param]]) -> None:
        self._space, self._post = parsed

    def _new_optimizer(self) -> Any:
        if self._template is not None:
            return copy.deepcopy(self._template)
        space = copy.deepcopy(self._space)
        space.random_state = np.random.RandomState(self._seed)
        return self._factory(space, **self._kwargs)

    def _ensure(self) -> Any:
        if self._space is None or (self._space_from_tuner and not self._space.value):
            raise TuneConfigError("NevergradSearch has no search space: pass `space`, or "
                                  "domains in the Tuner's `param_space`")
        self._require_metric_mode()
        if self._opt is None:
            self._opt = self._new_optimizer()
        return self._opt

    # ----------------------------------------------------------------- searcher hooks
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        opt = self._ensure()
        point: dict[str, Any] = {}
        if self._points:
            point = flatten_dict(self._points.pop(0))
            value = self._encode(point)
            self._log.append(("point", value))
            opt.suggest(value)
        self._log.append(("ask", trial_id))
        self._cands[trial_id] = candidate = opt.ask()
        _watch(opt)
        # a point runs exactly as given (nevergrad's transforms may blur it in the last digit)
        return unflatten_dict({**self._decode(candidate), **point})

    def _encode(self, point: dict[str, Any]) -> Any:
        if self._names is not None:
            return np.array([point[name] for name in self._names], dtype=float)
        return {k: (self._post[k].encode(v) if k in self._post else v)
                for k, v in point.items() if k in self._space.value}

    def _decode(self, candidate: Any) -> dict[str, Any]:
        if candidate.kwargs:
            return dict(candidate.kwargs)
        if self._names is not None:
            return dict(zip(self._names, (float(v) for v in candidate.args[0])))
        value = candidate.value
        if not isinstance(value, dict):
            raise bad_type("the parametrization's value", value, "a dict (use ng.p.Dict or "
                           "ng.p.Instrumentation with keyword arguments)")
        return {k: (self._post[k].decode(v) if k in self._post else v) for k, v in value.items()}

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        candidate = self._cands.pop(trial_id, None)
        if candidate is None:
            return
        value = None if error or not result else result.get(self._metric)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            float(value)
        ):
            self._log.append(("drop", trial_id))  # failed or no finite metric: not told
            return
        loss = float(value) * (-1.0 if self._mode == "max" else 1.0)
        self._opt.tell(candidate, loss)
        self._log.append(("tell", trial_id, loss))

    # ----------------------------------------------------------------- state
    def get_state(self) -> dict[str, Any]:
        """Everything but the live optimizer, which :meth:`set_state` rebuilds by replay."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_opt", "_cands")}

    def set_state(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._opt, self._cands = None, {}
        if not self._log:
            return
        opt = self._opt = self._new_optimizer()
        for event in self._log:
            if event[0] == "point":
                opt.suggest(event[1])
            elif event[0] == "ask":
                self._cands[event[1]] = opt.ask()
            elif event[0] == "tell":
                opt.tell(self._cands.pop(event[1]), event[2])
            else:
                self._cands.pop(event[1], None)
        _watch(opt)


if importlib.util.find_spec("nevergrad") is not None:  # pragma: no branch
    # Import nevergrad now (working around its bayes_opt clash) so that a script's own
    # `import nevergrad` after `from poptune.search.nevergrad import ...` works too.
    try:
        _nevergrad()
    except Exception:  # noqa: BLE001 - NevergradSearch() will report it with the install hint
        pass
