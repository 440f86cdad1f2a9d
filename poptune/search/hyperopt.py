"""HyperOpt adapter (``ray.tune.search.hyperopt.HyperOptSearch``): TPE over hyperopt spaces.

The space is a dict of hyperopt expressions (``hp.uniform("x", 0, 1)``, nested dicts and
``hp.choice`` of sub-spaces included) or the Tuner's ``param_space`` of poptune domains,
converted with the same value sets as the other searchers: ``randint``'s upper bound is
exclusive, quantized bounds inclusive, ``randn`` is ``hp.normal``, and ``choice`` is
``hp.choice`` whose categories may themselves hold domains (nested, conditional spaces).
Labels are the ``"a/b"`` paths of the domains; ``sample_from`` entries are drawn by the
Tuner after the suggestion. Constants stay out of the hyperopt space and reach the
trainable unchanged.

Differences from Ray: the whole searcher state (including which ``points_to_evaluate`` were
already run and which trials are live) is saved, so a restored search does not re-suggest
its initial points; a final result without the metric marks the trial failed (with a
warning) instead of stopping the experiment.
"""

from __future__ import annotations

import logging
import math
from functools import partial
from typing import Any

import numpy as np

from poptune._imports import require
from poptune._validation import bad_type, bad_value, check_in_range, check_mode
from poptune.exceptions import TuneConfigError
from poptune.search._adapter import SearcherAdapter, check_seed, copy_points, numeric_range
from poptune.search.sample import Categorical, Domain, Float, Function, Normal, Quantized, Uniform
from poptune.search.variant_generator import _join, _parse, flatten_dict, unflatten_dict

__all__ = ["HyperOptSearch"]

logger = logging.getLogger(__name__)


def _hyperopt() -> Any:
    logging.getLogger("hyperopt").setLevel(logging.WARNING)
    return require("hyperopt", "HyperOptSearch")


def _identity(config: Any) -> Any:
    return config


def _label(path: tuple[Any, ...]) -> str:
    return "/".join(str(k) for k in path)


def _expr(hpo: Any, path: tuple[Any, ...], domain: Domain) -> Any:
    """The hyperopt expression for one poptune domain."""
    hp, as_int, label = hpo.hp, hpo.pyll.scope.int, _label(path)
    sampler = domain.get_sampler()
    r = numeric_range(domain)
    if r is not None and r.integer:
        step = r.q or 1
        if r.log:
            return as_int(hp.qloguniform(label, math.log(r.low), math.log(r.high), step))
        return as_int(hp.quniform(label, r.low, r.high, step))
    if r is not None:
        lo, hi, q = r.low, r.high, r.q
        if r.log:
            lo, hi = math.log(lo), math.log(hi)
            return hp.loguniform(label, lo, hi) if q is None else hp.qloguniform(label, lo, hi, q)
        return hp.uniform(label, lo, hi) if q is None else hp.quniform(label, lo, hi, q)
    q = None
    if isinstance(sampler, Quantized):
        q, sampler = sampler.q, sampler.get_sampler()
    if isinstance(domain, Float) and isinstance(sampler, Normal):
        return (hp.normal(label, sampler.mean, sampler.sd) if q is None
                else hp.qnormal(label, sampler.mean, sampler.sd, q))
    if isinstance(domain, Categorical) and isinstance(sampler, Uniform):
        return hp.choice(label, [_category(hpo, path + (i,), c)
                                 for i, c in enumerate(domain.categories)])
    raise TuneConfigError(
        f"`{label}` has domain {domain!r}, which HyperOptSearch cannot search; it takes "
        "uniform, loguniform, quantized and normal floats, integers, and choice")


def _category(hpo: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A ``choice`` category: domains inside it become labelled sub-expressions."""
    if isinstance(value, Domain) and not isinstance(value, Function):
        return _expr(hpo, path, value)
    if isinstance(value, dict) and _parse(value)[0]:
        return {k: _category(hpo, path + (k,), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and _parse(value)[0]:
        return [_category(hpo, path + (i,), v) for i, v in enumerate(value)]
    if path and not isinstance(value, dict) and not _is_hyperopt(value):
        return hpo.pyll.Literal(value)  # as is (pyll would turn a list into a tuple)
    return value


def _convert(hpo: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """The hyperopt space for the domains of ``spec`` (nested like ``spec``)."""
    domains, grids = _parse(spec)
    if grids:
        raise TuneConfigError(
            f"`param_space` entries {[_join(p) for p, _ in grids]} are grid_search, which "
            "HyperOptSearch cannot search; use tune.choice, or the default search for grids")
    space: dict[str, Any] = {}
    for path, domain in domains:
        if isinstance(domain, Function):
            continue
        if not all(isinstance(k, str) for k in path):
            raise TuneConfigError(
                f"`param_space` entry {_join(path)!r} must sit in nested dicts with string "
                f"keys for HyperOptSearch, got {domain!r} there")
        node = space
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = _expr(hpo, path, domain)
    return space


def _is_hyperopt(value: Any) -> bool:
    return type(value).__name__ == "Apply" and type(value).__module__.startswith("hyperopt")


class HyperOptSearch(SearcherAdapter):
    """Tree-structured Parzen Estimator search with hyperopt.

    Args:
        space: a (nested) dict of hyperopt expressions, or of poptune domains; None: the
            Tuner's ``param_space`` is converted.
        metric: the result key to optimize.
        mode: ``"min"`` or ``"max"``.
        points_to_evaluate: configs to run first (choice values given as values).
        n_initial_points: random suggestions before TPE takes over (``n_startup_jobs``).
        random_state_seed: seed of the searcher's generator, for reproducible suggestions.
        gamma: the TPE quantile that separates good from bad points.

    Example:
        >>> import poptune as tune
        >>> searcher = HyperOptSearch(metric="loss", mode="min", random_state_seed=0)
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
        n_initial_points: int = 20,
        random_state_seed: int | None = None,
        gamma: float = 0.25,
    ) -> None:
        hpo = _hyperopt()
        check_mode(mode)
        super().__init__(metric=metric, mode=mode)
        if n_initial_points is not None and (
            isinstance(n_initial_points, bool) or not isinstance(n_initial_points, int)
            or n_initial_points < 0
        ):
            raise bad_value("n_initial_points", n_initial_points, "an integer >= 0 or None")
        if gamma is not None:
            check_in_range("gamma", gamma, 0, 1, low_open=True, high_open=True)
        check_seed("random_state_seed", random_state_seed)
        points = copy_points(points_to_evaluate)
        kwargs: dict[str, Any] = {}
        if n_initial_points is not None:
            kwargs["n_startup_jobs"] = n_initial_points
        if gamma is not None:
            kwargs["gamma"] = gamma
        self._algo = partial(hpo.tpe.suggest, **kwargs)
        #: each suggestion's hyperopt seed, drawn as Ray draws it (``RandomState.randint``):
        #: the same ``random_state_seed`` gives Ray's suggestions
        self._rstate = np.random.RandomState(random_state_seed)
        self._points = points
        self._space: dict[str, Any] | None = None
        self._domain: Any = None
        self._trials: Any = None
        self._live: dict[str, int] = {}  # trial id -> hyperopt tid
        self._warned_missing = False
        if space is not None and not isinstance(space, dict):
            raise bad_type("space", space, "a dict of hyperopt expressions or domains, or None")
        if space:
            self._setup(self._as_space(hpo, space))

    @staticmethod
    def _as_space(hpo: Any, space: dict[str, Any]) -> dict[str, Any]:
        """Convert poptune domains in ``space``; hyperopt expressions and constants stay."""
        grids = _parse(space)[1]
        if grids:
            raise TuneConfigError(
                f"`space` entries {[_join(p) for p, _ in grids]} are grid_search, which "
                "HyperOptSearch cannot search; use hp.choice or tune.choice")
        return _category(hpo, (), space)  # type: ignore[no-any-return]

    @staticmethod
    def convert_search_space(spec: dict[str, Any]) -> dict[str, Any]:
        """The hyperopt space for the domains of ``spec``."""
        return _convert(_hyperopt(), spec)

    def _setup(self, space: dict[str, Any]) -> None:
        hpo = _hyperopt()
        if not space:
            raise TuneConfigError("HyperOptSearch has no search space: `param_space` holds "
                                  "no domain it can search (constants are not searched)")
        self._space = space
        self._domain = hpo.Domain(_identity, space)
        self._trials = hpo.Trials()
        # hyperopt cannot complete a partial point (it fails deep inside with "switch argument
        # was GarbageCollected"): check every point against the space as soon as both exist
        for i, point in enumerate(self._points):
            self._check_point(point, f"points_to_evaluate[{i}]")

    def _check_point(self, point: dict[str, Any], where: str) -> None:
        """Raise unless ``point`` gives every parameter the space searches unconditionally
        (the parameters inside a ``choice`` sub-space are only searched when it is drawn)."""
        params = _params(self._space or {})
        missing = [(path, node) for path, node, _ in params if not _lookup(point, path)[0]]
        if not missing:
            return
        needs = "; ".join(f"`{_label(path)}`: {_describe(node)}" for path, node in missing)
        raise TuneConfigError(
            f"`{where}` must give a value for every parameter HyperOptSearch searches "
            f"({sorted(_label(path) for path, _, _ in params)}), got {point!r}, which "
            f"misses {needs}. HyperOptSearch cannot complete a partial point: add the "
            "missing keys to it")

    # the Tuner's param_space, taken once (SearcherAdapter.set_search_properties)
    def _has_own_space(self) -> bool:
        return self._space is not None

    def _parse_space(self, config: dict[str, Any]) -> dict[str, Any]:
        return _convert(_hyperopt(), config)

    def _same_space(self, parsed: dict[str, Any]) -> bool:
        return set(flatten_dict(parsed)) == set(flatten_dict(self._space or {}))

    def _install_space(self, parsed: dict[str, Any]) -> None:
        self._setup(parsed)

    def _check_ready(self) -> None:
        if self._domain is None:
            raise TuneConfigError("HyperOptSearch has no search space: pass `space`, or "
                                  "domains in the Tuner's `param_space`")
        self._require_metric_mode()

    # ----------------------------------------------------------------- searcher hooks
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        self._check_ready()
        hpo = _hyperopt()
        trials = self._trials
        extra: dict[str, Any] = {}
        if self._points:
            point = self._points.pop(0)
            vals, extra = self._point_vals(point)
            from hyperopt.fmin import generate_trial

            tid = trials.new_trial_ids(1)[0]
            trials.insert_trial_docs([generate_trial(tid, vals)])
        else:
            new_ids = trials.new_trial_ids(1)
            trials.refresh()
            rstate = getattr(self, "_rstate", None)
            if rstate is not None:
                seed = int(rstate.randint(2**31 - 1))
            else:  # a searcher saved by an earlier poptune: its own generator goes on
                seed = int(self.__dict__["_rng"].integers(2**31 - 1))
            docs = self._algo(new_ids, self._domain, trials, seed)
            trials.insert_trial_docs(docs)
            tid = docs[0]["tid"]
        trials.refresh()
        doc = self._doc(tid)
        self._live[trial_id] = tid
        spec = hpo.base.spec_from_misc(doc["misc"])
        ctrl = hpo.base.Ctrl(trials, current_trial=doc)
        memo = self._domain.memo_from_config(spec)
        hpo.utils.use_obj_for_literal_in_memo(self._domain.expr, ctrl, hpo.base.Ctrl, memo)
        config = hpo.pyll.rec_eval(self._domain.expr, memo=memo)
        if extra:
            config = unflatten_dict({**extra, **flatten_dict(config)})
        return config

    def _point_vals(self, point: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Hyperopt's label values for a point (choices as indices), and the other keys
        (flattened)."""
        self._check_point(point, "points_to_evaluate")
        vals: dict[str, Any] = {}
        params = _params(self._space or {})
        for path, node, label in params:
            value = _lookup(point, path)[1]
            if node.name == "switch":
                options = _options(node)
                matches = [i for i, o in enumerate(options)
                           if o is not _SUBSPACE and (o is value or o == value)]
                if not matches:
                    raise bad_value(f"points_to_evaluate[{_label(path)!r}]", value,
                                    _describe(node))
                value = matches[0]
            vals[label] = value
        covered = {path for path, _, _ in params}
        extra = flatten_dict(_without(point, covered, ()))
        return vals, extra

    def _doc(self, tid: int) -> dict[str, Any]:
        for doc in reversed(self._trials._dynamic_trials):
            if doc["tid"] == tid:
                return doc  # type: ignore[no-any-return]
        raise KeyError(tid)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        tid = self._live.pop(trial_id, None)
        if tid is None:
            return
        hpo = _hyperopt()
        doc = self._doc(tid)
        doc["refresh_time"] = hpo.utils.coarse_utcnow()
        value = None if error or not result else result.get(self._metric)
        finite = (isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
                  and math.isfinite(value))
        if finite:
            assert value is not None  # finite implies a number
            doc["state"] = hpo.base.JOB_STATE_DONE
            sign = -1.0 if self._mode == "max" else 1.0
            doc["result"] = {"loss": sign * float(value), "status": hpo.STATUS_OK}
        else:
            if not error and not self._warned_missing:
                self._warned_missing = True
                logger.warning(
                    "HyperOptSearch: trial %s ended without a finite `%s` (got %r; keys: %s); "
                    "it counts as failed", trial_id, self._metric, value, sorted(result or {}))
            doc["state"] = hpo.base.JOB_STATE_ERROR
            doc["result"] = {"status": hpo.STATUS_FAIL}
        self._trials.refresh()


_SUBSPACE = object()  # a choice option holding parameters: a point cannot name it


def _params(space: dict[str, Any]) -> list[tuple[tuple[Any, ...], Any, str]]:
    """``(path, expression, label)`` of every hyperopt expression in the (nested) dicts of
    ``space``; constants and expressions without a parameter are left out."""
    out: list[tuple[tuple[Any, ...], Any, str]] = []

    def walk(node: dict[str, Any], prefix: tuple[Any, ...]) -> None:
        for key, value in node.items():
            path = prefix + (key,)
            if isinstance(value, dict):
                walk(value, path)
            elif _is_hyperopt(value):
                label = _label_of(value)
                if label is not None:
                    out.append((path, value, label))

    walk(space, ())
    return out


def _lookup(point: Any, path: tuple[Any, ...]) -> tuple[bool, Any]:
    """``(True, point[path[0]][path[1]]...)``, or ``(False, None)`` if a key is missing."""
    for key in path:
        if not isinstance(point, dict) or key not in point:
            return False, None
        point = point[key]
    return True, point


def _without(point: dict[str, Any], paths: set[tuple[Any, ...]], prefix: tuple[Any, ...]
             ) -> dict[str, Any]:
    """``point`` without the entries at ``paths``."""
    out: dict[str, Any] = {}
    for key, value in point.items():
        path = prefix + (key,)
        if path in paths:
            continue
        if isinstance(value, dict) and any(p[:len(path)] == path for p in paths):
            value = _without(value, paths, path)
        out[key] = value
    return out


def _options(switch: Any) -> list[Any]:
    """The values a ``choice`` (a hyperopt ``switch``) picks from, in order;
    :data:`_SUBSPACE` for an option that holds parameters of its own."""
    hpo = _hyperopt()
    options: list[Any] = []
    for arg in switch.pos_args[1:]:
        if arg.name == "literal":
            options.append(arg.obj)
        elif _label_of(arg) is None:
            options.append(hpo.pyll.rec_eval(arg))  # e.g. a dict of constants
        else:
            options.append(_SUBSPACE)
    return options


def _describe(node: Any) -> str:
    """What a point may give for a hyperopt expression."""
    if node.name == "switch":
        options = [o for o in _options(node) if o is not _SUBSPACE]
        subspaces = len(node.pos_args) - 1 - len(options)
        more = f" ({subspaces} option(s) holding parameters cannot be given)" if subspaces else ""
        return f"one of {options}{more}"
    stack = [node]
    while stack:
        current = stack.pop()
        if getattr(current, "name", None) == "hyperopt_param":
            return f"a number (hyperopt `{current.pos_args[1].name}` parameter)"
        stack.extend(getattr(current, "pos_args", []))
    return "a value"


def _label_of(node: Any) -> str | None:
    """The label of the first ``hyperopt_param`` in a hyperopt expression, None if none."""
    stack = [node]
    while stack:
        current = stack.pop()
        if getattr(current, "name", None) == "hyperopt_param":
            return str(current.pos_args[0].obj)
        stack.extend(reversed(list(getattr(current, "pos_args", []))))
        stack.extend(reversed([v for _, v in getattr(current, "named_args", [])]))
    return None

