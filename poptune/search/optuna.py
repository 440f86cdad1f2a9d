"""Optuna adapter (``ray.tune.search.optuna.OptunaSearch``).

The space is the Tuner's ``param_space``, a dict of Optuna distributions (or poptune
domains), or a define-by-run function ``space(trial)`` calling ``trial.suggest_*``; a list
of metrics and modes makes a multi-objective study. Converted domains keep their exact value
sets (``randint``'s upper bound exclusive, quantized bounds inclusive, as in Ray); a
``choice`` whose categories are not plain ``None``/bool/int/float/str is searched by index;
quantized log domains, which Optuna cannot express, are drawn on the log scale and rounded
to their step (Ray drops the step). ``sample_from`` entries are drawn by the Tuner after the
suggestion; ``randn`` and grids are refused.

Differences from Ray: metric and mode given only to ``TuneConfig`` reach a searcher with its
own ``space`` (Ray's study silently maximised); an errored trial is always FAIL.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from typing import Any

from poptune._imports import require
from poptune._validation import bad_type, bad_value, check_mode
from poptune.exceptions import TuneConfigError
from poptune.search._adapter import (
    SearcherAdapter, ValueMap, check_seed, copy_points, numeric_range, space_domains,
)  # fmt: skip
from poptune.search._base import finite_metric
from poptune.search.sample import Categorical, Domain, Function, Uniform
from poptune.search.variant_generator import flatten_dict, unflatten_dict

__all__ = ["OptunaSearch"]

logger = logging.getLogger(__name__)

_PLAIN = (type(None), bool, int, float, str)
DEFINE_BY_RUN_WARN_THRESHOLD_S = 1.0  # a slower define-by-run function is warned about


def _optuna() -> Any:
    return require("optuna", "OptunaSearch")


#: how a value Optuna suggests becomes the config value (and back, for points)
_Post = ValueMap


def _convert_domain(ot: Any, name: str, domain: Domain) -> tuple[Any, _Post | None]:
    dist = ot.distributions
    r = numeric_range(domain)
    if r is not None and not r.integer:
        if r.q is not None and not r.log:
            return dist.FloatDistribution(r.low, r.high, step=r.q), None
        post = None if r.q is None else _Post(q=r.q, low=r.low, high=r.high)
        return dist.FloatDistribution(r.low, r.high, log=r.log), post
    if r is not None:
        if r.q is None:
            return dist.IntDistribution(r.low, r.high, log=r.log), None
        if r.log:
            post = _Post(q=r.q, low=r.low, high=r.high, integer=True)
            return dist.IntDistribution(r.low, r.high, log=True), post
        return dist.IntDistribution(r.low, r.high, step=r.q), None
    if isinstance(domain, Categorical) and isinstance(domain.get_sampler(), Uniform):
        cats = domain.categories
        if all(type(c) in _PLAIN for c in cats):
            return dist.CategoricalDistribution(cats), None
        return dist.CategoricalDistribution(list(range(len(cats)))), _Post(categories=tuple(cats))
    raise TuneConfigError(
        f"`{name}` has domain {domain!r}, which OptunaSearch cannot search; it takes "
        "uniform, loguniform and quantized floats and integers, and choice")


class _Recorder:
    """Wraps an ``optuna.Trial`` for a define-by-run function, recording ``suggest_*``."""

    def __init__(self, trial: Any) -> None:
        self._trial = trial
        self.values: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._trial, name)
        if not (name.startswith("suggest_") and callable(attr)):
            return attr

        def record(*args: Any, **kwargs: Any) -> Any:
            if name in ("suggest_int", "suggest_float") and len(args) > 3:
                # Optuna < 4 took ``suggest_int(name, low, high, step, log)`` positionally;
                # newer Optuna takes step/log by keyword only: accept both spellings
                for key, value in zip(("step", "log"), args[3:]):
                    kwargs.setdefault(key, value)
                args = args[:3]
            value = attr(*args, **kwargs)
            self.values[kwargs["name"] if "name" in kwargs else args[0]] = value
            return value

        return record


class OptunaSearch(SearcherAdapter):
    """Suggest configs with an Optuna study (TPE by default).

    Args:
        space: a dict of ``optuna.distributions`` (or poptune domains) by name, or a
            define-by-run function ``space(trial)`` that calls ``trial.suggest_*`` and
            returns None or a dict of extra constant values. None: the Tuner's
            ``param_space`` is converted.
        metric: the result key to optimize, or a list of keys (multi-objective).
        mode: ``"min"``/``"max"``, or a list of them as long as ``metric``.
        points_to_evaluate: configs to run first (nested dicts are fine).
        sampler: an ``optuna.samplers.BaseSampler``; default ``TPESampler(seed=seed)``.
        study_name: the study's name (default ``"optuna"``).
        storage: an Optuna storage (or its URL); default in-memory.
        seed: seeds the default sampler (ignored, with a warning, if ``sampler`` is given).
        evaluated_rewards: results of ``points_to_evaluate``, which then are told to the
            study instead of being run (needs a dict ``space``).

    Example:
        >>> import poptune as tune
        >>> searcher = OptunaSearch(metric="loss", mode="min", seed=0)
        >>> searcher.set_search_properties(None, None, {"lr": tune.loguniform(1e-4, 1e-1)})
        True
        >>> config = searcher.suggest("t0")
        >>> 1e-4 <= config["lr"] <= 1e-1
        True
        >>> searcher.on_trial_complete("t0", {"loss": 0.5})
    """

    def __init__(
        self,
        space: dict[str, Any] | Callable[[Any], dict[str, Any] | None] | None = None,
        metric: str | list[str] | None = None,
        mode: str | list[str] | None = None,
        points_to_evaluate: list[dict[str, Any]] | None = None,
        sampler: Any = None,
        study_name: str | None = None,
        storage: Any = None,
        seed: int | None = None,
        evaluated_rewards: list[Any] | None = None,
    ) -> None:
        ot = _optuna()
        for m in mode if isinstance(mode, (list, tuple)) else [mode]:
            check_mode(m)
        if isinstance(mode, (list, tuple)):
            if metric is None:
                raise bad_value("metric", metric, f"a list as long as `mode`={list(mode)!r}")
            metric, mode = list(metric), list(mode)  # type: ignore[arg-type]
        super().__init__(metric=metric, mode=mode)  # type: ignore[arg-type]
        if sampler is not None and not isinstance(sampler, ot.samplers.BaseSampler):
            raise bad_type("sampler", sampler, "an optuna.samplers.BaseSampler instance")
        check_seed("seed", seed)
        if sampler is not None and seed is not None:
            logger.warning("OptunaSearch: `seed` is ignored because a `sampler` was given; "
                           "seed the sampler instead")
        if storage is not None and not isinstance(storage, (str, ot.storages.BaseStorage)):
            raise bad_type("storage", storage, "an optuna storage, its URL, or None")
        points = copy_points(points_to_evaluate)
        if evaluated_rewards is not None and len(evaluated_rewards) != len(points):
            raise bad_value("evaluated_rewards", evaluated_rewards,
                            f"a list as long as `points_to_evaluate` ({len(points)} points)")
        if evaluated_rewards is not None and callable(space) and not isinstance(space, dict):
            raise TypeError("`evaluated_rewards` needs `space` as a dict of distributions; a "
                            "define-by-run function cannot replay known results")
        self._space: dict[str, Any] | Callable[..., Any] | None = None
        self._post: dict[str, _Post] = {}
        if isinstance(space, dict):
            if space:
                self._space, self._post = self._convert(space, "space")
        elif callable(space):
            self._space = space
        elif space is not None:
            raise bad_type("space", space, "a dict, a define-by-run function or None")
        self._points = points
        self._evaluated_rewards = list(evaluated_rewards) if evaluated_rewards else None
        self._sampler = sampler
        self._seed = seed
        self._study_name = study_name or "optuna"
        self._storage = storage
        self._study: Any = None
        self._ot_trials: dict[str, Any] = {}
        self._steps: dict[str, int] = {}
        self._completed: set[str] = set()
        self._warned_missing = False  # a trial ended without the metric: said once

    # ----------------------------------------------------------------- space and study
    @staticmethod
    def _convert(spec: dict[str, Any], where: str) -> tuple[dict[str, Any], dict[str, _Post]]:
        ot = _optuna()
        out: dict[str, Any] = {}
        post: dict[str, _Post] = {}
        for name, value in flatten_dict(spec).items():
            if isinstance(value, ot.distributions.BaseDistribution):
                out[name] = value
            elif isinstance(value, Domain) and not isinstance(value, Function):
                out[name], p = _convert_domain(ot, name, value)
                if p is not None:
                    post[name] = p
            else:
                raise bad_type(f"{where}[{name!r}]", value,
                               "an optuna distribution or a poptune domain")
        return out, post

    @staticmethod
    def convert_search_space(spec: dict[str, Any]) -> dict[str, Any]:
        """The Optuna distributions, by ``"a/b"`` name, for the domains of ``spec``."""
        ot = _optuna()
        return {n: _convert_domain(ot, n, d)[0]
                for n, d in space_domains(spec, "OptunaSearch").items()}

    # the Tuner's param_space, taken once (SearcherAdapter.set_search_properties)
    def _has_own_space(self) -> bool:
        return self._space is not None

    def _parse_space(self, config: dict[str, Any]) -> dict[str, Domain]:
        return space_domains(config, "OptunaSearch")

    def _same_space(self, parsed: dict[str, Domain]) -> bool:
        return set(parsed) == set(self._space)  # type: ignore[arg-type]

    def _install_space(self, parsed: dict[str, Domain]) -> None:
        self._space, self._post = self._convert(parsed, "param_space")

    def _objective_fixed(self) -> bool:
        return self._study is not None  # the study's directions are fixed

    def _check_mode(self, mode: Any) -> None:
        for m in mode if isinstance(mode, (list, tuple)) else [mode]:
            check_mode(m)

    def _ensure_study(self) -> Any:
        if not self._space:
            raise TuneConfigError(
                "OptunaSearch has no search space: pass `space`, or domains in the Tuner's "
                "`param_space`")
        self._require_metric_mode()
        if self._study is not None:
            return self._study
        ot = _optuna()
        multi = isinstance(self._mode, list)
        if multi and (not isinstance(self._metric, list) or len(self._metric) != len(self._mode)):
            raise bad_value("metric", self._metric, f"a list as long as `mode`={self._mode!r}")
        if self._sampler is None:
            self._sampler = ot.samplers.TPESampler(seed=self._seed)
        direction = {"min": "minimize", "max": "maximize"}
        kwargs: dict[str, Any] = (
            {"directions": [direction[m] for m in self._mode]} if multi
            else {"direction": direction[self._mode]})
        self._study = ot.create_study(
            storage=self._storage or ot.storages.InMemoryStorage(), sampler=self._sampler,
            pruner=ot.pruners.NopPruner(), study_name=self._study_name, load_if_exists=True,
            **kwargs)
        if self._evaluated_rewards is not None:
            points, rewards = self._points, self._evaluated_rewards
            self._points, self._evaluated_rewards = [], None
            for point, reward in zip(points, rewards):
                self.add_evaluated_point(point, reward)
        return self._study

    # ----------------------------------------------------------------- searcher hooks
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        study = self._ensure_study()
        extra: dict[str, Any] = {}
        if trial_id in self._ot_trials:
            trial = self._ot_trials[trial_id]
        else:
            if self._points:
                point = flatten_dict(self._points.pop(0))
                if callable(self._space):
                    study.enqueue_trial(point)
                else:
                    post = self._post
                    fixed = {k: (post[k].encode(v) if k in post and post[k].categories else v)
                             for k, v in point.items() if k in self._space}  # type: ignore[operator]
                    study.enqueue_trial(fixed)
                extra = point
            trial = self._ot_trials[trial_id] = (
                study.ask() if callable(self._space)
                else study.ask(fixed_distributions=self._space))
        if callable(self._space):
            values = self._define_by_run(trial)
        else:
            values = {k: (self._post[k].decode(v) if k in self._post else v)
                      for k, v in trial.params.items()}
        return unflatten_dict({**extra, **values})

    def _define_by_run(self, trial: Any) -> dict[str, Any]:
        recorder = _Recorder(trial)
        start = time.monotonic()
        ret = self._space(recorder)  # type: ignore[misc, operator]
        took = time.monotonic() - start
        if took > DEFINE_BY_RUN_WARN_THRESHOLD_S:
            warnings.warn(f"the define-by-run `space` function took {took:.1f} s; it should "
                          "only suggest values, and training belong in the trainable",
                          stacklevel=3)
        if ret is None:
            return recorder.values
        if not isinstance(ret, dict) or not all(isinstance(k, str) for k in ret):
            raise bad_type("space(trial)", ret, "None or a dict with str keys")
        return {**recorder.values, **ret}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        trial = self._ot_trials.get(trial_id)
        if trial is None or isinstance(self._metric, list):
            return  # Optuna has no intermediate values for several objectives
        value = finite_metric(result.get(self._metric))
        if value is None:
            return
        step = result.get("training_iteration")
        last = self._steps.get(trial_id, -1)
        if not isinstance(step, int) or isinstance(step, bool):
            step = last + 1
        if step <= last:
            return  # already reported (a restored trial reports its results again)
        trial.report(value, step)
        self._steps[trial_id] = step

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        trial = self._ot_trials.pop(trial_id, None)
        self._steps.pop(trial_id, None)
        if trial is None:
            if trial_id in self._completed:
                logger.warning("OptunaSearch: trial %s completed twice; ignored", trial_id)
            return
        self._completed.add(trial_id)
        ot = _optuna()
        state, values = ot.trial.TrialState.COMPLETE, None
        metrics = self._metric if isinstance(self._metric, list) else [self._metric]
        found = [finite_metric((result or {}).get(m)) for m in metrics]
        if error:
            state = ot.trial.TrialState.FAIL
        elif any(v is None for v in found):
            missing = not result or any(m not in result for m in metrics)
            if missing and len(metrics) == 1:
                state = ot.trial.TrialState.PRUNED  # stopped before reporting the metric
            else:
                state = ot.trial.TrialState.FAIL
            if not self._warned_missing:  # e.g. only `mode` set: the metric is "_metric"
                self._warned_missing = True
                logger.warning(
                    "OptunaSearch: trial %s ended without a finite %s (keys: %s); Optuna "
                    "learns nothing from it (told as %s). Further trials like it are not "
                    "reported", trial_id, ", ".join(f"`{m}`" for m in metrics),
                    sorted(result or {}), state.name.lower())
        else:
            values = found if len(found) > 1 else found[0]
        try:
            self._study.tell(trial, values, state=state, skip_if_finished=True)
        except Exception as exc:  # noqa: BLE001 - a bad value must not stop the experiment
            logger.warning("OptunaSearch: could not tell trial %s: %s", trial_id, exc)

    def add_evaluated_point(
        self,
        parameters: dict[str, Any],
        value: float | list[float],
        error: bool = False,
        pruned: bool = False,
        intermediate_values: list[float] | None = None,
    ) -> None:
        """Add a trial evaluated elsewhere to the study (needs a dict space)."""
        if callable(self._space):
            raise TypeError("`add_evaluated_point` needs `space` as a dict of distributions "
                            "or domains; a define-by-run function cannot replay results")
        study = self._ensure_study()
        ot = _optuna()
        space: dict[str, Any] = self._space  # type: ignore[assignment]
        params = flatten_dict(parameters)
        unknown = sorted(set(params) - set(space))
        if unknown:
            raise bad_value("parameters", parameters, f"keys among {sorted(space)}; "
                            f"unknown: {unknown}")
        post = self._post
        params = {k: (post[k].encode(v) if k in post and post[k].categories else v)
                  for k, v in params.items()}
        state = (ot.trial.TrialState.FAIL if error else
                 ot.trial.TrialState.PRUNED if pruned else ot.trial.TrialState.COMPLETE)
        multi = isinstance(value, (list, tuple))
        study.add_trial(ot.trial.create_trial(
            state=state,
            value=None if multi or error else value,
            values=list(value) if multi and not error else None,  # type: ignore[arg-type]
            params=params, distributions={k: space[k] for k in params},
            intermediate_values=dict(enumerate(intermediate_values or [])) or None,
        ))


