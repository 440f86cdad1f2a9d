"""Syne Tune's baseline schedulers, carried out by poptune's searchers and schedulers.

=========================  ==================================================================
Syne Tune                  poptune
=========================  ==================================================================
``RandomSearch``           ``BasicVariantGenerator`` (random, endless) + FIFO
``GridSearch``             Syne Tune's grid (:mod:`._grid`) as a poptune ``Searcher`` + FIFO
``BayesianOptimization``   ``OptunaSearch`` with Optuna's ``GPSampler`` (Gaussian process)
``BOTorch``                the same (Optuna's GP sampler is BoTorch-style GP-EI on torch)
``TPE``                    ``OptunaSearch`` with Optuna's ``TPESampler``
``ASHA``                   ``ASHAScheduler`` (stopping variant) + random search;
                           ``type="promotion"``: ``PromotionASHAScheduler``
``PopulationBasedTraining`` ``PopulationBasedTraining`` over the config space's domains
=========================  ==================================================================

Both argument forms are accepted: the d2l-era ``metric="loss", mode="min"`` and the latest
release's ``metric(s)=..., do_minimize=True``, positionally too (a bool where ``mode`` stands
is ``do_minimize``, followed by ``random_seed`` and ``points_to_evaluate``). d2l-era
``search_options`` and ``max_resource_attr`` are accepted with a warning saying they are
ignored.

Example:
    >>> from poptune.syne_tune.config_space import loguniform
    >>> s = RandomSearch({"lr": loguniform(1e-3, 1)}, metric="loss", mode="min")
    >>> s.metric_names(), s.metric_mode()
    (['loss'], 'min')
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any

from poptune._validation import bad_type, bad_value, check_one_of
from poptune.search.sample import Domain

__all__ = ["ASHA", "BOTorch", "BayesianOptimization", "GridSearch", "PopulationBasedTraining",
           "RandomSearch", "SyneScheduler", "TPE"]


def _metric_mode(metric: Any, metrics: Any, mode: Any, do_minimize: Any) -> tuple[str, str]:
    if metric is not None and metrics is not None:
        raise bad_value("metrics", metrics, "None when `metric` is given (pass one of them)")
    name = metric if metric is not None else metrics
    if isinstance(name, (list, tuple)):
        if len(name) != 1:
            raise bad_value("metrics", name, "exactly one metric name (single objective)")
        name = name[0]
    if not isinstance(name, str) or not name:
        raise bad_type("metric", name, "a metric name (str)")
    if isinstance(mode, bool):  # the latest release's positional ``do_minimize``
        if do_minimize is not None and do_minimize != mode:
            raise bad_value("do_minimize", do_minimize,
                            f"consistent with the positional do_minimize={mode!r}")
        mode, do_minimize = None, mode
    if mode is not None:
        check_one_of("mode", mode, ("min", "max"))
    if do_minimize is not None and not isinstance(do_minimize, bool):
        raise bad_type("do_minimize", do_minimize, "True, False or None")
    if mode is not None and do_minimize is not None and (mode == "min") != do_minimize:
        raise bad_value("do_minimize", do_minimize, f"consistent with mode={mode!r}")
    if mode is None:
        mode = "max" if do_minimize is False else "min"
    return name, mode


def _ignored(owner: str, **given: Any) -> None:
    """Warn that the d2l-era / Syne Tune arguments in ``given`` (those not None) are
    accepted and ignored."""
    names = [f"{k}={v!r}" for k, v in given.items() if v is not None]
    if names:
        warnings.warn(f"{owner}: {', '.join(names)} accepted for Syne Tune compatibility and "
                      "ignored (poptune has no equivalent)", stacklevel=4)


def _cast_point(point: Any, config_space: dict[str, Any]) -> Any:
    """A ``points_to_evaluate`` entry with each value cast to its domain as Syne Tune casts
    it (``randint`` 3.7 -> 4, a finite range's nearest value, ...)."""
    if not isinstance(point, dict):
        return point  # refused later, naming it
    from poptune.syne_tune.optimizer._grid import syne_cast

    return {k: syne_cast(config_space[k], v) if isinstance(config_space.get(k), Domain) else v
            for k, v in point.items()}


class SyneScheduler:
    """What every baseline holds: the config space, the metric and its mode, a seed and
    the configurations to try first. :meth:`poptune_parts` says how poptune runs it."""

    def __init__(self, config_space: dict[str, Any], metric: str | None = None,
                 mode: str | bool | None = None, random_seed: int | None = None,
                 points_to_evaluate: list[dict[str, Any]] | None = None, *,
                 metrics: list[str] | None = None, do_minimize: bool | None = None,
                 search_options: dict[str, Any] | None = None,
                 max_resource_attr: str | None = None) -> None:
        if not isinstance(config_space, dict):
            raise bad_type("config_space", config_space, "a dict of domains and constants")
        if random_seed is not None and (isinstance(random_seed, bool)
                                        or not isinstance(random_seed, int)):
            raise bad_type("random_seed", random_seed, "an int or None")
        if points_to_evaluate is not None and not isinstance(points_to_evaluate, list):
            raise bad_type("points_to_evaluate", points_to_evaluate, "a list of dicts")
        _ignored(type(self).__name__, search_options=search_options,
                 max_resource_attr=max_resource_attr)
        self.config_space = config_space
        self.metric, self.mode = _metric_mode(metric, metrics, mode, do_minimize)
        self.random_seed = random_seed
        self.points_to_evaluate = [_cast_point(p, config_space)
                                   for p in points_to_evaluate or []]

    def metric_names(self) -> list[str]:
        return [self.metric]

    def metric_mode(self) -> str:
        return self.mode

    def metadata(self) -> dict[str, Any]:
        """What Syne Tune writes into ``metadata.json`` for a scheduler (``config_space``
        as the JSON text of Syne Tune's domain descriptions)."""
        from poptune.syne_tune.config_space import config_space_to_json_dict
        from poptune.syne_tune.tuner import json_default

        return {"metric_names": self.metric_names(), "metric_mode": self.metric_mode(),
                "scheduler_name": type(self).__name__,
                "config_space": json.dumps(config_space_to_json_dict(self.config_space),
                                           default=json_default)}

    def _searcher(self) -> Any:
        from poptune.search.basic_variant import BasicVariantGenerator

        return BasicVariantGenerator(points_to_evaluate=self.points_to_evaluate,
                                     random_state=self.random_seed)

    def poptune_parts(self) -> dict[str, Any]:
        """``TuneConfig`` keywords (search_alg, scheduler, num_samples; the metric and mode
        go to ``TuneConfig``), an optional per-trial ``stop`` rule and the ``resource``
        ``(time_attr, max_t)`` of a stopping scheduler, that run this scheduler on poptune."""
        return {"search_alg": self._searcher(), "scheduler": None, "num_samples": -1}


class RandomSearch(SyneScheduler):
    """Configurations drawn independently at random, evaluated as workers free up
    (asynchronous random search); ``points_to_evaluate`` go first.

    Example:
        >>> RandomSearch({"x": 1.0}, metrics=["y"], do_minimize=False).metric_mode()
        'max'
        >>> RandomSearch({"x": 1.0}, ["y"], False, 3).random_seed  # positional, latest release
        3
    """


#: ``search_options`` keys of Syne Tune's ``GridSearcher``
_GRID_OPTIONS = ("num_samples", "shuffle_config", "allow_duplicates")


class GridSearch(SyneScheduler):
    """Grid search, as Syne Tune's ``GridSearch`` (``searcher="grid"``; syne_tune <= 0.14,
    ``legacy_baselines`` in 0.14; 0.15 dropped it).

    Every value of each categorical, ordinal and finite-range hyperparameter, and
    ``num_samples[name]`` evenly spaced points per float (default 5, with a warning) or integer
    (default ``min(5, its number of values)``) one: the centres of equal cells of the range,
    in log space for log domains. The configurations are the Cartesian product, shuffled with
    ``random_seed`` unless ``shuffle_config=False`` (then the last hyperparameter varies
    fastest). ``points_to_evaluate`` go first, their missing values filled by Syne Tune's
    midpoint heuristic; when it is None the first trial is the midpoint configuration (as
    Syne Tune; pass ``[]`` for none), and configurations already tried are skipped in the
    grid. When the grid is exhausted no new trial starts and tuning ends once the running
    trials end (Syne Tune prints "Tuning is finishing as the whole configuration space got
    exhausted."), unless ``allow_duplicates=True``, which goes round the grid again.

    ``num_samples``, ``shuffle_config`` and ``allow_duplicates`` are Syne Tune's
    ``search_options`` keys; they are also accepted as keyword arguments.

    Example:
        >>> from poptune.syne_tune.config_space import choice, uniform
        >>> g = GridSearch({"x": uniform(0, 1), "act": choice(["relu", "tanh"])}, "loss",
        ...                search_options={"num_samples": {"x": 3}, "shuffle_config": False},
        ...                points_to_evaluate=[])
        >>> g.grid_size, g.configs()[:2]
        (6, [{'act': 'relu', 'x': 0.16666666666666666}, {'act': 'relu', 'x': 0.5}])
    """

    def __init__(self, config_space: dict[str, Any], metric: str | None = None,
                 mode: str | bool | None = None, random_seed: int | None = None,
                 points_to_evaluate: list[dict[str, Any]] | None = None, *,
                 num_samples: dict[str, int] | None = None,
                 shuffle_config: bool | None = None, allow_duplicates: bool | None = None,
                 search_options: dict[str, Any] | None = None, max_t: int | None = None,
                 **kwargs: Any) -> None:
        if search_options is not None and not isinstance(search_options, dict):
            raise bad_type("search_options", search_options, "a dict or None")
        options = dict(search_options or {})
        given: dict[str, Any] = {"num_samples": num_samples, "shuffle_config": shuffle_config,
                 "allow_duplicates": allow_duplicates}
        for key in _GRID_OPTIONS:
            if key in options and given[key] is not None:
                raise bad_value(key, given[key],
                                f"None when search_options[{key!r}] is given (pass one)")
            if given[key] is None:
                given[key] = options.pop(key, None)
        super().__init__(config_space, metric, mode, random_seed, points_to_evaluate,
                         search_options=options or None, **kwargs)
        self._initial_points = points_to_evaluate
        for key in ("shuffle_config", "allow_duplicates"):
            if given[key] is not None and not isinstance(given[key], bool):
                raise bad_type(key, given[key], "True, False or None")
        self.shuffle_config = given["shuffle_config"] is not False
        self.allow_duplicates = bool(given["allow_duplicates"])
        from poptune.syne_tune.optimizer._grid import grid_configs

        self._configs, self.num_samples = grid_configs(
            config_space, given["num_samples"], self.shuffle_config, random_seed)

    @property
    def grid_size(self) -> int:
        """The number of configurations on the grid."""
        return len(self._configs)

    def configs(self) -> list[dict[str, Any]]:
        """The grid's configurations in the order they are tried (after
        ``points_to_evaluate``)."""
        return [dict(c) for c in self._configs]

    def initial_configs(self) -> list[dict[str, Any]]:
        """``points_to_evaluate`` completed by the midpoint heuristic, duplicates dropped
        (None: the midpoint configuration)."""
        from poptune.syne_tune.optimizer._grid import match_key, midpoint_config

        points = [{}] if self._initial_points is None else list(self._initial_points)
        out, seen = [], set()
        for point in points:
            if not isinstance(point, dict):
                raise bad_type("points_to_evaluate", point, "a list of dicts")
            config = midpoint_config(self.config_space, point)
            key = match_key(self.config_space, config)
            if key not in seen:
                seen.add(key)
                out.append(config)
        return out

    def _searcher(self) -> Any:
        from poptune.syne_tune.optimizer._grid import GridSearcher

        return GridSearcher(self.config_space, self.configs(), self.initial_configs(),
                            self.allow_duplicates)


class _Optuna(SyneScheduler):
    _sampler = "GPSampler"

    def _sampler_kwargs(self) -> dict[str, Any]:
        return {}

    def _searcher(self) -> Any:
        from poptune._imports import require

        optuna = require("optuna", f"poptune.syne_tune {type(self).__name__}")
        make, kwargs = getattr(optuna.samplers, self._sampler), self._sampler_kwargs()
        with warnings.catch_warnings():  # Optuna >= 4.9 deprecates `gamma` (still honoured)
            warnings.simplefilter("ignore", FutureWarning)
            try:
                sampler = make(seed=self.random_seed, **kwargs)
            except TypeError:  # an Optuna without `gamma`
                kwargs.pop("gamma", None)
                _ignored(type(self).__name__, top_n_percent=getattr(self, "top_n_percent", None))
                sampler = make(seed=self.random_seed, **kwargs)
        from poptune.search.optuna import OptunaSearch

        return OptunaSearch(sampler=sampler,
                            points_to_evaluate=self.points_to_evaluate or None)


class BayesianOptimization(_Optuna):
    """Gaussian-process Bayesian optimisation (Optuna's ``GPSampler``; needs optuna, torch,
    scipy)."""


class BOTorch(_Optuna):
    """Syne Tune's BoTorch baseline, served by Optuna's GP sampler (GP + expected
    improvement on torch); ``searcher_kwargs`` is accepted and ignored."""

    def __init__(self, config_space: dict[str, Any], metric: str | None = None,
                 mode: str | bool | None = None, random_seed: int | None = None,
                 points_to_evaluate: list[dict[str, Any]] | None = None,
                 searcher_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(config_space, metric, mode, random_seed, points_to_evaluate, **kwargs)
        if searcher_kwargs:
            _ignored("BOTorch", searcher_kwargs=searcher_kwargs)


class _GoodCount:
    """Optuna's ``gamma``: how many of ``n`` observations form the "good" density, as Syne
    Tune's KDE: ``max(num_min_data_points, top_n_percent * n // 100)``."""

    def __init__(self, num_min: int, top_n_percent: float) -> None:
        self.num_min, self.top_n_percent = num_min, top_n_percent

    def __call__(self, n: int) -> int:
        return min(n, max(self.num_min, int(self.top_n_percent * n // 100)))


class TPE(_Optuna):
    """Tree-structured Parzen estimator (Optuna's ``TPESampler``) with Syne Tune's KDE
    arguments mapped to Optuna: ``top_n_percent`` and ``num_min_data_points`` set the size
    of the "good" set (``gamma``), random configurations are drawn until Syne Tune's KDE
    could be fit (``n_startup_trials``), ``num_candidates`` is ``n_ei_candidates``.
    ``min_bandwidth``, ``bandwidth_factor`` and ``random_fraction`` have no Optuna
    equivalent: other values than Syne Tune's defaults warn and are ignored.

    Example:
        >>> TPE({"x": 1.0}, "y", num_candidates=32)._sampler_kwargs()["n_ei_candidates"]
        32
    """

    _sampler = "TPESampler"

    def __init__(self, config_space: dict[str, Any], metric: str | None = None,
                 mode: str | bool | None = None, random_seed: int | None = None,
                 points_to_evaluate: list[dict[str, Any]] | None = None,
                 num_min_data_points: int | None = None, top_n_percent: int = 15,
                 min_bandwidth: float = 1e-3, num_candidates: int = 64,
                 bandwidth_factor: int = 3, random_fraction: float = 0.33,
                 **kwargs: Any) -> None:
        super().__init__(config_space, metric, mode, random_seed, points_to_evaluate, **kwargs)
        num_hps = sum(isinstance(v, Domain) for v in config_space.values())
        for name, value, low in (("num_min_data_points", num_min_data_points, num_hps),
                                 ("top_n_percent", top_n_percent, 1),
                                 ("num_candidates", num_candidates, 1)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < low):
                raise bad_value(name, value, f"an integer >= {low}")
        self.num_min = num_hps if num_min_data_points is None else num_min_data_points
        self.top_n_percent, self.num_candidates = top_n_percent, num_candidates
        self.num_hps = num_hps
        _ignored("TPE", **{k: v for k, v, default in (
            ("min_bandwidth", min_bandwidth, 1e-3), ("bandwidth_factor", bandwidth_factor, 3),
            ("random_fraction", random_fraction, 0.33)) if v != default})

    def _startup(self) -> int:
        """The first number of observations at which Syne Tune's KDE is fit: both the good
        and the bad set hold more points than there are hyperparameters."""
        good = _GoodCount(self.num_min, self.top_n_percent)
        return next((n for n in range(1, 100_000)
                     if min(good(n), n - good(n)) > self.num_hps), 100_000)

    def _sampler_kwargs(self) -> dict[str, Any]:
        return {"n_startup_trials": self._startup(), "n_ei_candidates": self.num_candidates,
                "gamma": _GoodCount(self.num_min, self.top_n_percent)}


def _resource(config_space: dict[str, Any], time_attr: str | None, resource_attr: str | None,
              max_t: Any, max_resource_attr: str | None) -> tuple[str, float]:
    attr = time_attr or resource_attr or "training_iteration"
    if max_t is None and max_resource_attr is not None:
        max_t = config_space.get(max_resource_attr)
        if isinstance(max_t, Domain) or max_t is None:
            raise bad_value("max_resource_attr", max_resource_attr,
                            "the name of a constant in `config_space`")
    if max_t is None:
        max_t = 100
    return attr, max_t


#: the d2l era's ``HyperbandScheduler(type=...)``: poptune runs "stopping" and "promotion";
#: the others warn and run the stopping variant
_HYPERBAND_TYPES = ("stopping", "promotion", "cost_promotion", "pasha", "rush_stopping",
                    "rush_promotion", "dyhpo")


class ASHA(SyneScheduler):
    """Asynchronous successive halving with random search.

    ``time_attr`` (latest) or ``resource_attr`` (d2l era) names the reported resource, e.g.
    ``"epoch"``; ``max_t`` or ``max_resource_attr`` (a constant of the config space) its
    largest value. A trial reaching ``max_t`` ends with a STOP decision, as in Syne Tune.

    ``type="stopping"`` (the default) stops a trial below its rung's cut
    (:class:`~poptune.schedulers.ASHAScheduler`); ``type="promotion"`` pauses every trial at
    each rung and, when a worker frees, resumes the best paused trial in the top
    ``1/reduction_factor`` of its rung from its checkpoint before starting a new one
    (:class:`~poptune.schedulers.PromotionASHAScheduler`; ``brackets=1`` only): the tuned
    function should checkpoint (``st_checkpoint_dir``) so a promoted trial goes on where it
    paused. Rows at which a trial paused have ``st_decision`` ``"PAUSE"``. The other types
    warn and run the stopping variant.

    Example:
        >>> from poptune.syne_tune.config_space import loguniform
        >>> asha = ASHA({"lr": loguniform(1e-3, 1), "epochs": 27}, metric="loss",
        ...             resource_attr="epoch", max_resource_attr="epochs", type="promotion")
        >>> sched = asha.poptune_parts()["scheduler"]
        >>> type(sched).__name__, sched.rung_levels
        ('PromotionASHAScheduler', [1, 3, 9])
    """

    def __init__(self, config_space: dict[str, Any], metric: str | None = None,
                 time_attr: str | None = None, max_t: float | None = None,
                 mode: str | bool | None = None, random_seed: int | None = None,
                 points_to_evaluate: list[dict[str, Any]] | None = None, *,
                 resource_attr: str | None = None, max_resource_attr: str | None = None,
                 grace_period: float = 1, reduction_factor: float = 3, brackets: int = 1,
                 type: str = "stopping", **kwargs: Any) -> None:
        super().__init__(config_space, metric, mode, random_seed, points_to_evaluate, **kwargs)
        check_one_of("type", type, _HYPERBAND_TYPES)
        if type == "promotion" and brackets != 1:
            raise bad_value("brackets", brackets, "1 with type='promotion' (poptune's "
                            "promotion variant runs one bracket)")
        if type not in ("stopping", "promotion"):
            _ignored("ASHA", type=type)
        self.time_attr, self.max_t = _resource(config_space, time_attr, resource_attr, max_t,
                                               max_resource_attr)
        self.grace_period, self.reduction_factor = grace_period, reduction_factor
        self.brackets = brackets
        self.type = type

    def metadata(self) -> dict[str, Any]:
        return {**super().metadata(), "metric": self.metric}

    def poptune_parts(self) -> dict[str, Any]:
        from poptune.schedulers import ASHAScheduler, PromotionASHAScheduler

        if getattr(self, "type", "stopping") == "promotion":  # tuners pickled before: stopping
            promotion = PromotionASHAScheduler(
                time_attr=self.time_attr, max_t=self.max_t, grace_period=self.grace_period,
                reduction_factor=self.reduction_factor)
            return {**super().poptune_parts(), "scheduler": promotion,
                    "resource": (self.time_attr, self.max_t),
                    "scheduler_pauses": promotion.is_waiting}
        sched = ASHAScheduler(time_attr=self.time_attr, max_t=self.max_t,
                              grace_period=self.grace_period,
                              reduction_factor=self.reduction_factor, brackets=self.brackets,
                              seed=self.random_seed)
        return {**super().poptune_parts(), "scheduler": sched,
                "resource": (self.time_attr, self.max_t)}


class PopulationBasedTraining(SyneScheduler):
    """Population Based Training (poptune's own PBT) over the config space's domains.

    As in Syne Tune, new random configurations (``searcher_kwargs["points_to_evaluate"]``
    first) keep starting, ``n_workers`` at a time, until the stopping criterion holds: a
    trial reaching ``max_t`` stops (with a STOP decision) and a new one takes its place;
    ``population_size`` limits nothing. A trial is exploited in place: it restarts from its
    donor's checkpoint with a mutated config (Syne Tune starts a new trial id instead).
    """

    def __init__(self, config_space: dict[str, Any], metric: str | None = None,
                 time_attr: str | None = None, max_t: float | None = 100,
                 custom_explore_fn: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 mode: str | bool | None = None, random_seed: int | None = None,
                 population_size: int = 4, perturbation_interval: float = 60,
                 quantile_fraction: float = 0.25, resample_probability: float = 0.25,
                 searcher_kwargs: dict[str, Any] | None = None, *,
                 resource_attr: str | None = None, max_resource_attr: str | None = None,
                 **kwargs: Any) -> None:
        if searcher_kwargs is not None and not isinstance(searcher_kwargs, dict):
            raise bad_type("searcher_kwargs", searcher_kwargs, "a dict or None")
        points = (searcher_kwargs or {}).get("points_to_evaluate")
        if points is not None and kwargs.get("points_to_evaluate") is not None:
            raise bad_value("points_to_evaluate", kwargs["points_to_evaluate"],
                            "None when searcher_kwargs['points_to_evaluate'] is given")
        kwargs.setdefault("points_to_evaluate", points)
        super().__init__(config_space, metric, mode, random_seed, **kwargs)
        if max_resource_attr is not None:
            max_t = None
        self.time_attr, self.max_t = _resource(config_space, time_attr, resource_attr, max_t,
                                               max_resource_attr)
        if isinstance(population_size, bool) or not isinstance(population_size, int) or (
                population_size < 1):
            raise bad_value("population_size", population_size, "an integer >= 1")
        self.population_size = population_size
        self.custom_explore_fn = custom_explore_fn
        self.perturbation_interval = perturbation_interval
        self.quantile_fraction = quantile_fraction
        self.resample_probability = resample_probability

    def poptune_parts(self) -> dict[str, Any]:
        from poptune.syne_tune.optimizer._pbt import SynePBT as PBT

        mutations = {k: v for k, v in self.config_space.items() if isinstance(v, Domain)}
        sched = PBT(time_attr=self.time_attr, perturbation_interval=self.perturbation_interval,
                    hyperparam_mutations=mutations, quantile_fraction=self.quantile_fraction,
                    resample_probability=self.resample_probability,
                    custom_explore_fn=self.custom_explore_fn, seed=self.random_seed)
        return {"search_alg": self._searcher(), "scheduler": sched, "num_samples": -1,
                "stop": {self.time_attr: self.max_t}}
