"""Syne Tune's baseline schedulers, carried out by poptune's searchers and schedulers.

=========================  ==================================================================
Syne Tune                  poptune
=========================  ==================================================================
``RandomSearch``           ``BasicVariantGenerator`` (random, endless) + FIFO
``BayesianOptimization``   ``OptunaSearch`` with Optuna's ``GPSampler`` (Gaussian process)
``BOTorch``                the same (Optuna's GP sampler is BoTorch-style GP-EI on torch)
``TPE``                    ``OptunaSearch`` with Optuna's ``TPESampler``
``ASHA``                   ``ASHAScheduler`` (stopping variant) + random search
``PopulationBasedTraining`` ``PopulationBasedTraining`` over the config space's domains
=========================  ==================================================================

Both keyword forms are accepted: the d2l-era ``metric="loss", mode="min"`` and Syne Tune
0.16's ``metric(s)=..., do_minimize=True``.

Example:
    >>> from poptune.syne_tune.config_space import loguniform
    >>> s = RandomSearch({"lr": loguniform(1e-3, 1)}, metric="loss", mode="min")
    >>> s.metric_names(), s.metric_mode()
    (['loss'], 'min')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from poptune._validation import bad_type, bad_value, check_one_of
from poptune.search.sample import Domain

__all__ = ["ASHA", "BOTorch", "BayesianOptimization", "PopulationBasedTraining",
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
    if mode is not None:
        check_one_of("mode", mode, ("min", "max"))
    if do_minimize is not None and not isinstance(do_minimize, bool):
        raise bad_type("do_minimize", do_minimize, "True, False or None")
    if mode is not None and do_minimize is not None and (mode == "min") != do_minimize:
        raise bad_value("do_minimize", do_minimize, f"consistent with mode={mode!r}")
    if mode is None:
        mode = "max" if do_minimize is False else "min"
    return name, mode


class SyneScheduler:
    """What every baseline holds: the config space, the metric and its mode, a seed and
    the configurations to try first. :meth:`poptune_parts` says how poptune runs it."""

    def __init__(self, config_space: dict[str, Any], metric: str | None = None,
                 mode: str | None = None, *, metrics: list[str] | None = None,
                 do_minimize: bool | None = None, random_seed: int | None = None,
                 points_to_evaluate: list[dict[str, Any]] | None = None) -> None:
        if not isinstance(config_space, dict):
            raise bad_type("config_space", config_space, "a dict of domains and constants")
        if random_seed is not None and (isinstance(random_seed, bool)
                                        or not isinstance(random_seed, int)):
            raise bad_type("random_seed", random_seed, "an int or None")
        if points_to_evaluate is not None and not isinstance(points_to_evaluate, list):
            raise bad_type("points_to_evaluate", points_to_evaluate, "a list of dicts")
        self.config_space = config_space
        self.metric, self.mode = _metric_mode(metric, metrics, mode, do_minimize)
        self.random_seed = random_seed
        self.points_to_evaluate = list(points_to_evaluate or [])

    def metric_names(self) -> list[str]:
        return [self.metric]

    def metric_mode(self) -> str:
        return self.mode

    def metadata(self) -> dict[str, Any]:
        """What Syne Tune writes into ``metadata.json`` for a scheduler."""
        return {"metric_names": self.metric_names(), "metric_mode": self.metric_mode(),
                "scheduler_name": type(self).__name__}

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
    """


class _Optuna(SyneScheduler):
    _sampler = "GPSampler"

    def _searcher(self) -> Any:
        from poptune._imports import require

        optuna = require("optuna", f"poptune.syne_tune {type(self).__name__}")
        sampler = getattr(optuna.samplers, self._sampler)(seed=self.random_seed)
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
                 mode: str | None = None, *, searcher_kwargs: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(config_space, metric, mode, **kwargs)


class TPE(_Optuna):
    """Tree-structured Parzen estimator (Optuna's ``TPESampler``)."""

    _sampler = "TPESampler"


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


class ASHA(SyneScheduler):
    """Asynchronous successive halving (stopping variant) with random search.

    ``time_attr`` (0.16) or ``resource_attr`` (d2l era) names the reported resource, e.g.
    ``"epoch"``; ``max_t`` or ``max_resource_attr`` (a constant of the config space) its
    largest value.
    """

    def __init__(self, config_space: dict[str, Any], metric: str | None = None,
                 time_attr: str | None = None, max_t: float | None = None,
                 mode: str | None = None, *, resource_attr: str | None = None,
                 max_resource_attr: str | None = None, grace_period: float = 1,
                 reduction_factor: float = 3, brackets: int = 1, **kwargs: Any) -> None:
        super().__init__(config_space, metric, mode, **kwargs)
        self.time_attr, self.max_t = _resource(config_space, time_attr, resource_attr, max_t,
                                               max_resource_attr)
        self.grace_period, self.reduction_factor = grace_period, reduction_factor
        self.brackets = brackets

    def poptune_parts(self) -> dict[str, Any]:
        from poptune.schedulers import ASHAScheduler

        sched = ASHAScheduler(time_attr=self.time_attr, max_t=self.max_t, grace_period=self.grace_period,
                              reduction_factor=self.reduction_factor, brackets=self.brackets,
                              seed=self.random_seed)
        return {**super().poptune_parts(), "scheduler": sched,
                "resource": (self.time_attr, self.max_t)}


class PopulationBasedTraining(SyneScheduler):
    """Population Based Training (poptune's own PBT) over the config space's domains.

    A trial is exploited in place: it restarts from its donor's checkpoint with a mutated
    config (Syne Tune starts a new trial id instead). A trial reaching ``max_t`` stops. The
    population (``population_size`` trials) runs until the stopping criterion ends it.
    """

    def __init__(self, config_space: dict[str, Any], metric: str | None = None,
                 time_attr: str | None = None, max_t: float | None = 100,
                 custom_explore_fn: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 mode: str | None = None, *, resource_attr: str | None = None,
                 max_resource_attr: str | None = None, population_size: int = 4,
                 perturbation_interval: float = 60, quantile_fraction: float = 0.25,
                 resample_probability: float = 0.25, searcher_kwargs: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(config_space, metric, mode, **kwargs)
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
        from poptune.schedulers import PopulationBasedTraining as PBT

        mutations = {k: v for k, v in self.config_space.items() if isinstance(v, Domain)}
        sched = PBT(time_attr=self.time_attr, perturbation_interval=self.perturbation_interval,
                    hyperparam_mutations=mutations, quantile_fraction=self.quantile_fraction,
                    resample_probability=self.resample_probability,
                    custom_explore_fn=self.custom_explore_fn, seed=self.random_seed)
        return {"search_alg": self._searcher(), "scheduler": sched,
                "num_samples": self.population_size, "stop": {self.time_attr: self.max_t}}
