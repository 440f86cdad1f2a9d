"""Ax adapter (``ray.tune.search.ax.AxSearch``): Bayesian optimisation with Ax and BoTorch.

The space is a list of Ax parameter dicts (``{"name": "x", "type": "range", "bounds": [0, 1]}``,
``"choice"`` with ``"values"``, ``"fixed"`` with ``"value"``), a (nested) dict of poptune
domains, or the Tuner's ``param_space``. Domains are converted as in Ray: ``uniform`` and
``loguniform`` become float ranges (``log_scale`` for the latter), ``randint`` and
``lograndint`` int ranges with the exclusive upper bound made inclusive (``upper - 1``),
``choice`` a choice parameter, constants fixed parameters. Quantized domains are searched on
their range without the step (Ax has no quantization; a warning names the parameter), and
``randn`` and grids are refused. Nested dicts become ``"a/b"`` parameter names and
suggestions are nested again. ``sample_from`` entries of ``param_space`` are drawn by the
Tuner after the suggestion, and its constants reach the trainable unchanged.

Ax 1.3 deprecates ``AxClient`` (Ray's client) and removes it in 1.4, so the experiment is run
by Ax's ``ax.api.Client``. ``ax_client`` may be an ``ax.api.Client`` or, while Ax still ships
it, an ``AxClient``, with or without an experiment; ``**ax_kwargs`` configure the client
AxSearch creates: ``random_seed``, ``storage_config``, ``generation_strategy``, the options
of ``Client.configure_generation_strategy`` (``method``, ``initialization_budget``, ...),
``torch_device`` and ``verbose_logging`` (Ax's INFO messages; off by default, so the progress
table stays readable); ``enforce_sequential_optimization`` is accepted and has no effect.

Differences from Ray: metric and mode given only to ``TuneConfig`` reach a searcher with its
own ``space``; a quantized integer keeps its reachable upper bound (Ray cuts it to
``upper - 1``); a choice whose categories are not all plain values of one type (``None``,
lists, mixed types) is searched by index and the trial gets the category itself; fixed
parameters are added to the suggestion instead of being sent to Ax; a failed trial, or one
without a finite objective or outcome-constraint metric, is abandoned (Ray completes a failed
trial that reported, and raises on a missing metric); when Ax waits for data but none of its
trials is running, the search ends instead of waiting forever; the experiment is saved as
Ax's JSON snapshot, so ``Tuner.restore`` continues it. With its own client AxSearch follows
``ax.api.Client``'s default generation strategy (the centre of the space first, then Sobol,
then BoTorch after 5 trials; Ray's ``AxClient`` runs ``max(5, 2 x parameters)`` Sobol trials),
so a ``random_seed`` gives other suggestions than Ray's; pass an ``AxClient`` as ``ax_client``
for Ray's. Ray 2.60's own adapter fails on Ax 1.x while setting up its experiment
(``AttributeError: 'Objective' object has no attribute 'metric'``).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from poptune._validation import bad_type, bad_value, check_mode
from poptune.exceptions import TuneConfigError
from poptune.search._ax_client import (
    _ApiClient,
    _ax,
    _exceptions,
    _gs_options,
    _LegacyClient,
    _objective,
    _one_thread,
    _plain_type,
    _set_ax_log_level,
    _wrap,
)
from poptune.search._adapter import SearcherAdapter, check_seed, copy_points, numeric_range
from poptune.search._base import Searcher, finite_metric
from poptune.search.sample import Categorical, Domain, Function, Quantized, Uniform
from poptune.search.variant_generator import _join, _parse, flatten_dict, unflatten_dict

__all__ = ["AxSearch"]

logger = logging.getLogger(__name__)

_PARAM_KEYS = {
    "range": {"name", "type", "bounds", "value_type", "log_scale"},
    "choice": {"name", "type", "values", "value_type", "is_ordered"},
    "fixed": {"name", "type", "value", "value_type"},
}
_CLIENT_KWARGS = ("random_seed", "storage_config", "generation_strategy", "torch_device",
                  "verbose_logging", "enforce_sequential_optimization")


# ------------------------------------------------------------------------ space conversion
def _domain_param(name: str, domain: Domain) -> dict[str, Any]:
    """The Ax parameter dict (Ray's format) for one poptune domain."""
    r = numeric_range(domain)
    if r is not None:
        if r.q is not None:
            logger.warning("AxSearch: `%s` is quantized (q=%s), which Ax does not support; it "
                           "is searched on its range without the step", name, r.q)
        if not r.integer:
            return {"name": name, "type": "range", "bounds": [float(r.low), float(r.high)],
                    "value_type": "float", "log_scale": r.log}
        if r.low == r.high:
            return {"name": name, "type": "fixed", "value": int(r.low)}
        return {"name": name, "type": "range", "bounds": [int(r.low), int(r.high)],
                "value_type": "int", "log_scale": r.log}
    if isinstance(domain, Categorical) and isinstance(domain.get_sampler(), Uniform):
        categories = list(domain.categories)
        if len(categories) == 1:
            return {"name": name, "type": "fixed", "value": categories[0]}
        return {"name": name, "type": "choice", "values": categories}
    raise TuneConfigError(
        f"`{name}` has domain {domain!r}, which AxSearch cannot search; it takes uniform and "
        "loguniform floats and integers (quantized ones lose their step), choice and "
        "constants")


def _convert(spec: dict[str, Any], where: str, constants: bool) -> list[dict[str, Any]]:
    """Ax parameter dicts (Ray's format) for the domains of ``spec`` and, with ``constants``,
    fixed parameters for its other values."""
    domains, grids = _parse(spec)
    if grids:
        raise TuneConfigError(
            f"`{where}` entries {[_join(p) for p, _ in grids]} are grid_search, which AxSearch "
            "cannot search; use tune.choice, or the default search for grids")
    params: list[dict[str, Any]] = []
    for path, domain in domains:
        if not all(isinstance(k, str) and "/" not in k for k in path):
            raise TuneConfigError(
                f"`{where}` entry {_join(path)!r} must sit in nested dicts with string keys "
                f"free of '/' for AxSearch, got {domain!r} there")
        if isinstance(domain, Function):
            if where == "param_space":
                continue  # the Tuner draws sample_from entries after the suggestion
            raise TuneConfigError(
                f"`{where}` entry {_join(path)!r} is sample_from, which AxSearch cannot "
                "search; put it in the Tuner's `param_space`")
        params.append(_domain_param(_join(path), domain))
    if constants:
        fixed = []
        for name, value in flatten_dict(spec).items():
            if isinstance(value, Domain) or _parse(value)[0]:
                continue
            fixed.append({"name": name, "type": "fixed", "value": value})
        params = fixed + params
    return params


def _check_param(index: int, param: Any) -> dict[str, Any]:
    """One Ax parameter dict of a user ``space`` list, checked."""
    where = f"space[{index}]"
    kind = param.get("type") if isinstance(param, dict) else None
    if kind not in _PARAM_KEYS or not isinstance(param.get("name"), str) or not param["name"]:
        raise bad_value(where, param, "an Ax parameter dict with a \"name\" and a \"type\" of "
                        "\"range\", \"choice\" or \"fixed\"")
    unknown = sorted(set(param) - _PARAM_KEYS[kind])
    if unknown:
        raise bad_value(where, param, f"a {kind} parameter with keys among "
                        f"{sorted(_PARAM_KEYS[kind])}; unknown: {unknown}")
    if kind == "range":
        bounds = param.get("bounds")
        if not (isinstance(bounds, (list, tuple)) and len(bounds) == 2 and all(
            isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds
        ) and bounds[0] < bounds[1]):
            raise bad_value(f"{where}['bounds']", bounds, "[lower, upper] with lower < upper")
    elif kind == "choice":
        values = param.get("values")
        if not isinstance(values, (list, tuple)) or len(values) < 1:
            raise bad_value(f"{where}['values']", values, "a non-empty list")
    elif "value" not in param:
        raise bad_value(where, param, "a fixed parameter with a \"value\"")
    return dict(param)


def _prepare(
    params: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, list[Any]]]:
    """Split Ray-format parameters into what Ax searches, fixed values (added to every
    suggestion) and the categories of choices Ax searches by index."""
    searched: list[dict[str, Any]] = []
    fixed: dict[str, Any] = {}
    categories: dict[str, list[Any]] = {}
    for param in params:
        name = param["name"]
        if param["type"] == "fixed":
            fixed[name] = param["value"]
            continue
        param = dict(param)
        if param["type"] == "choice":
            values = list(param["values"])
            if len(values) == 1:
                fixed[name] = values[0]
                continue
            if "value_type" not in param and _plain_type(values) is None:
                categories[name] = values
                param.update(values=list(range(len(values))), value_type="int",
                              is_ordered=False)
        searched.append(param)
    return searched, fixed, categories


class AxSearch(SearcherAdapter):
    """Bayesian optimisation with `Ax <https://ax.dev>`_: quasi-random (Sobol) trials first,
    then a BoTorch Gaussian-process model proposes each trial.

    Args:
        space: a list of Ax parameter dicts, or a (nested) dict of poptune domains; None:
            the Tuner's ``param_space`` is converted.
        metric: the result key to optimize.
        mode: ``"min"`` or ``"max"``.
        points_to_evaluate: configs to run first (nested dicts are fine; keys outside the
            space are passed to the trial as they are).
        parameter_constraints: linear constraints on range parameters, e.g.
            ``["x1 + x2 <= 2.0"]``; every suggestion satisfies them.
        outcome_constraints: constraints on other reported metrics, e.g.
            ``["l2norm <= 1.25"]``; the trainable must report those metrics too.
        ax_client: an ``ax.api.Client`` (or ``AxClient``) to use. If it already has an
            experiment, pass none of ``space``, ``metric``, ``mode``,
            ``parameter_constraints`` and ``outcome_constraints``: they come from it.
        **ax_kwargs: options of the client AxSearch creates (see the module docstring);
            ignored, with a warning, when ``ax_client`` is given.

    Example:
        >>> import poptune as tune
        >>> searcher = AxSearch(metric="loss", mode="min", random_seed=0)
        >>> searcher.set_search_properties(None, None, {"x": tune.uniform(-1, 1)})
        True
        >>> -1 <= searcher.suggest("t0")["x"] <= 1
        True
        >>> searcher.on_trial_complete("t0", {"loss": 0.3})
    """

    def __init__(
        self,
        space: dict[str, Any] | list[dict[str, Any]] | None = None,
        metric: str | None = None,
        mode: str | None = None,
        points_to_evaluate: list[dict[str, Any]] | None = None,
        parameter_constraints: list[str] | None = None,
        outcome_constraints: list[str] | None = None,
        ax_client: Any = None,
        **ax_kwargs: Any,
    ) -> None:
        _ax()
        check_mode(mode)
        if metric is not None and (not isinstance(metric, str) or not metric):
            raise bad_type("metric", metric, "a non-empty str or None")
        super().__init__(metric=metric, mode=mode)
        points = copy_points(points_to_evaluate)
        for name, value in (("parameter_constraints", parameter_constraints),
                            ("outcome_constraints", outcome_constraints)):
            if value is not None and not (
                isinstance(value, (list, tuple)) and all(isinstance(c, str) for c in value)
            ):
                raise bad_type(name, value, 'a list of str such as "x1 + x2 <= 2.0", or None')
        accepted = set(_CLIENT_KWARGS) | _gs_options()
        unknown = sorted(set(ax_kwargs) - accepted)
        if unknown:
            raise bad_value("ax_kwargs", {k: ax_kwargs[k] for k in unknown},
                            f"keywords among {sorted(accepted)}")
        check_seed("random_seed", ax_kwargs.get("random_seed"))
        if ax_kwargs.get("enforce_sequential_optimization") is not None:
            logger.info("AxSearch: `enforce_sequential_optimization` has no counterpart in "
                        "Ax's Client API and is ignored; limit parallelism with "
                        "ConcurrencyLimiter")
        self._points = points
        self._parameter_constraints = list(parameter_constraints or [])
        self._outcome_constraints = list(outcome_constraints or [])
        self._ax_kwargs = dict(ax_kwargs)
        self._params: list[dict[str, Any]] = []  # Ray's format, as converted or given
        self._client: _ApiClient | None = None
        self._own_experiment = False  # ax_client came with its experiment
        self._fixed: dict[str, Any] = {}
        self._categories: dict[str, list[Any]] = {}
        self._names: list[str] = []  # the parameters Ax searches
        self._required: list[str] = []  # metrics every completed trial must report
        self._live: dict[str, int] = {}  # trial id -> Ax trial index
        self._warned_missing = False
        if ax_client is not None:
            self._client = _wrap(ax_client)
            if ax_kwargs:
                logger.warning("AxSearch: `ax_kwargs` %s are ignored because `ax_client` is "
                               "given; configure that client instead", sorted(ax_kwargs))
            if self._client.experiment() is not None:
                given = [name for name, value in (
                    ("space", space), ("metric", metric), ("mode", mode),
                    ("parameter_constraints", parameter_constraints),
                    ("outcome_constraints", outcome_constraints)) if value]
                if given:
                    raise TuneConfigError(
                        f"AxSearch got {', '.join(f'`{g}`' for g in given)} and an `ax_client` "
                        "that has its experiment; the experiment defines the space, metric, "
                        "mode and constraints, so pass either the arguments or a client "
                        "without an experiment")
                self._own_experiment = True
                self._adopt_experiment()
        if space is not None and not isinstance(space, (dict, list, tuple)):
            raise bad_type("space", space, "a list of Ax parameter dicts, a dict of domains, "
                           "or None")
        if isinstance(space, dict) and space:
            self._params = _convert(space, "space", constants=True)
        elif isinstance(space, (list, tuple)) and space:
            self._params = [_check_param(i, p) for i, p in enumerate(space)]
            names = [p["name"] for p in self._params]
            if len(set(names)) != len(names):
                raise bad_value("space", space, "parameters with distinct names")

    # ------------------------------------------------------------------- space and client
    @staticmethod
    def convert_search_space(spec: dict[str, Any]) -> list[dict[str, Any]]:
        """Ax parameter dicts (Ray's format) for ``spec``: its domains, and its constants as
        fixed parameters, named by ``"a/b"`` path.

        >>> import poptune as tune
        >>> AxSearch.convert_search_space({"lr": tune.loguniform(1e-4, 1e-1), "n": 3})
        ... # doctest: +NORMALIZE_WHITESPACE
        [{'name': 'n', 'type': 'fixed', 'value': 3},
         {'name': 'lr', 'type': 'range', 'bounds': [0.0001, 0.1], 'value_type': 'float',
          'log_scale': True}]
        """
        return _convert(spec, "param_space", constants=True)

    @property
    def ax_client(self) -> Any:
        """The Ax client (``ax.api.Client``, or the ``AxClient`` passed in); None until the
        first suggestion creates it."""
        return None if self._client is None else self._client.client

    def _adopt_experiment(self) -> None:
        """Read metric, mode, parameters and constraint metrics off the client's experiment."""
        assert self._client is not None
        experiment = self._client.experiment()
        self._metric, self._mode = _objective(experiment)
        self._names = list(experiment.search_space.parameters)
        config = experiment.optimization_config
        names = getattr(config, "metric_names", None) or set(config.metrics)
        self._required = [self._metric] + sorted(set(names) - {self._metric})

    # the Tuner's param_space, taken once (SearcherAdapter.set_search_properties)
    def _has_own_space(self) -> bool:
        return self._own_experiment or bool(self._params)

    def _parse_space(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        return _convert(config, "param_space", constants=False)

    def _same_space(self, parsed: list[dict[str, Any]]) -> bool:
        return {p["name"] for p in parsed} == {p["name"] for p in self._params}

    def _install_space(self, parsed: list[dict[str, Any]]) -> None:
        self._params = parsed

    def _objective_fixed(self) -> bool:
        return bool(self._names)  # the experiment exists: its objective is fixed

    def _ensure_client(self) -> _ApiClient:
        """The client with its experiment, created on first use."""
        if self._names:
            assert self._client is not None
            return self._client
        searched, fixed, categories = _prepare(self._params)
        if not searched:
            raise TuneConfigError(
                "AxSearch has no search space: pass `space`, or domains in the Tuner's "
                "`param_space` (constants and sample_from entries are not searched)")
        self._require_metric_mode()
        if self._client is None:
            self._client = _ApiClient.new(self._ax_kwargs)
            if self._ax_kwargs.get("verbose_logging"):
                _set_ax_log_level(logging.INFO)
        try:
            self._client.create(searched, self._parameter_constraints, self._metric,
                                self._mode, self._outcome_constraints, self._ax_kwargs)
        except Exception as exc:
            raise TuneConfigError(
                f"Ax refused the experiment (`space` {searched}, `parameter_constraints` "
                f"{self._parameter_constraints}, `metric` {self._metric!r}, "
                f"`outcome_constraints` {self._outcome_constraints}): "
                f"{type(exc).__name__}: {exc}") from exc
        objective = self._client.experiment().optimization_config.objective
        if list(objective.metric_names) != [self._metric]:
            raise bad_value("metric", self._metric,
                            "a name Ax can use in an objective expression (no spaces or "
                            "operators such as '-' or '+')")
        self._fixed, self._categories = fixed, categories
        self._adopt_experiment()
        self._ax_kwargs.pop("generation_strategy", None)  # now part of the client's state
        return self._client

    # ----------------------------------------------------------------- searcher hooks
    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        client = self._ensure_client()
        extra: dict[str, Any] = {}
        if self._points:
            point = flatten_dict(self._points[0])
            missing = sorted(set(self._names) - set(point))
            if missing:
                raise bad_value("points_to_evaluate", self._points[0],
                                f"configs giving every searched parameter; missing {missing}")
            parameters = {k: self._encode(k, point[k]) for k in self._names}
            try:
                index = client.attach(parameters)
            except Exception as exc:
                raise bad_value("points_to_evaluate", self._points[0],
                                f"a point of the search space ({type(exc).__name__}: "
                                f"{exc})") from exc
            self._points.pop(0)
            extra = {k: v for k, v in point.items() if k not in self._names}
        else:
            wait, done = _exceptions()
            try:
                with _one_thread():
                    got = client.next()
            except done as exc:
                logger.info("AxSearch: Ax ended the optimization (%s)", exc)
                return Searcher.FINISHED
            except wait as exc:
                if self._live:
                    return None  # Ax waits for the results of running trials
                logger.warning("AxSearch: Ax waits for data (%s), but none of its trials is "
                               "running; the search is finished", exc)
                return Searcher.FINISHED
            if got is None:
                return None
            index, parameters = got
        self._live[trial_id] = int(index)
        values = {k: self._decode(k, v) for k, v in parameters.items()}
        return unflatten_dict({**self._fixed, **extra, **values})

    def _encode(self, name: str, value: Any) -> Any:
        categories = self._categories.get(name)
        if categories is None:
            return value
        for i, category in enumerate(categories):
            if category is value or category == value:
                return i
        raise bad_value(f"points_to_evaluate[{name!r}]", value, f"one of {categories}")

    def _decode(self, name: str, value: Any) -> Any:
        categories = self._categories.get(name)
        return value if categories is None else copy.deepcopy(categories[int(value)])

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        index = self._live.pop(trial_id, None)
        if index is None:
            return
        assert self._client is not None
        values: dict[str, float] = {}
        reason = None
        if error:
            reason = f"trial {trial_id} failed"
        else:
            for name in self._required:
                value = finite_metric((result or {}).get(name))
                if value is None:
                    reason = (f"trial {trial_id} ended without a finite `{name}` (got "
                              f"{(result or {}).get(name)!r})")
                    if not self._warned_missing:
                        self._warned_missing = True
                        logger.warning("AxSearch: %s; its Ax trial is abandoned (keys: %s)",
                                       reason, sorted(result or {}))
                    break
                values[name] = value
        try:
            if reason is None:
                self._client.complete(index, values)
            else:
                self._client.abandon(index, reason)
        except Exception as exc:  # noqa: BLE001 - Ax refusing one trial must not stop the run
            logger.warning("AxSearch: could not tell Ax the end of trial %s: %s", trial_id, exc)

    # ------------------------------------------------------------------------ state
    def get_state(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        client = state.pop("_client")
        if client is None or client.experiment() is None:
            state["_client"] = ("object", client)  # no experiment yet: nothing of Ax's to save
        else:
            state["_client"] = ("json", client.dump())
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        state = dict(state)
        how, client = state.pop("_client")
        if how == "json":
            client = (_LegacyClient if client["kind"] == "legacy" else _ApiClient).load(client)
        self.__dict__.update(state)
        self._client = client

    def __getstate__(self) -> dict[str, Any]:
        return self.get_state()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.set_state(state)
