"""Syne Tune's ``MedianStoppingRule`` (``syne_tune.optimizer.schedulers``; 0.14 named it
``LegacyMedianStoppingRule``) on poptune's :class:`~poptune.schedulers.MedianStoppingRule`.

``MedianStoppingRule(scheduler, resource_attr, running_average=True, metric=None,
grace_time=1, grace_population=5, rank_cutoff=0.5)`` wraps a scheduler that proposes the
configurations (``RandomSearch``, ``GridSearch``, ``BayesianOptimization``, ``BOTorch``,
``TPE`` or ``FIFOScheduler``) and stops trials with Syne Tune's rule, which is not Ray's:

* each result of ``metric`` at resource level ``t = result[resource_attr]`` (the trial's
  running average so far, with ``running_average``) is ranked among all the results seen at
  that same level, itself included; its normalized rank is the number of better ones
  divided by their count;
* the trial is stopped when the rank exceeds ``rank_cutoff``, unless ``t < grace_time`` or
  fewer than ``grace_population`` results (this one included) were seen at ``t``;
* a NaN result ranks last (so does a running average a NaN entered), as in Syne Tune.

poptune's own ``MedianStoppingRule`` (Ray's) compares a trial's *best* result with the
median of the *other* trials' running means and may pause trials for lack of samples; this
one never pauses. The machinery (metric and mode, journaled state for ``Tuner.restore``) is
poptune's.

0.15's ``time_attr`` is accepted for ``resource_attr``, and ``do_minimize`` sets the mode
the rule ranks by (default: the wrapped scheduler's mode, as up to 0.14; 0.15 defaults to
minimizing whatever the wrapped scheduler does). Wrapping a scheduler that stops or pauses
trials itself (``ASHA``, ``HyperbandScheduler``, ``PopulationBasedTraining``, another
``MedianStoppingRule``) is refused: poptune runs one scheduler per experiment.

Example:
    >>> from poptune.syne_tune.config_space import uniform
    >>> from poptune.syne_tune.optimizer.baselines import RandomSearch
    >>> space = {"x": uniform(0, 1), "epochs": 10}
    >>> rule = MedianStoppingRule(RandomSearch(space, metric="loss"), resource_attr="epoch",
    ...                           grace_population=2)
    >>> rule.metric_names(), rule.metric_mode(), rule.grace_time, rule.rank_cutoff
    (['loss'], 'min', 1, 0.5)
"""

from __future__ import annotations

import bisect
import logging
import math
import numbers
from typing import Any

from poptune._validation import bad_type, bad_value
from poptune.experiment.trial import Trial
from poptune.schedulers import MedianStoppingRule as PoptuneMedianStoppingRule
from poptune.schedulers._base import Decision, SchedulerDecision
from poptune.syne_tune.optimizer import baselines as _b

__all__ = ["MedianStoppingRule", "SyneMedianRule"]

logger = logging.getLogger("poptune.syne_tune")


class SyneMedianRule(PoptuneMedianStoppingRule):
    """poptune's median stopping scheduler deciding by Syne Tune's rank rule (see the
    module docstring); :meth:`was_stopped` tells which trials it stopped.

    Example:
        >>> rule = SyneMedianRule("epoch", "loss", "min", grace_time=1, grace_population=2,
        ...                       rank_cutoff=0.5, running_average=False)
        >>> trials = [Trial(f"t{i}", "f", {}) for i in range(3)]
        >>> [rule.on_trial_result(t, {"epoch": 1, "loss": v}).value
        ...  for t, v in zip(trials, [0.5, 0.3, 0.9])]  # 0.9: rank 2/3 > 0.5
        ['CONTINUE', 'CONTINUE', 'STOP']
        >>> rule.was_stopped("t2"), rule.was_stopped("t0")
        (True, False)
    """

    def __init__(self, time_attr: str, metric: str | None, mode: str | None, *,
                 grace_time: float | None, grace_population: int | None, rank_cutoff: float,
                 running_average: bool) -> None:
        super().__init__(time_attr=time_attr, metric=metric, mode=mode,
                         grace_period=grace_time or 0,
                         min_samples_required=grace_population or 1, hard_stop=True)
        self.grace_time = grace_time
        self.grace_population = grace_population
        self.rank_cutoff = rank_cutoff
        self.running_average = running_average
        #: the results (minimized: a ``"max"`` metric negated) seen at each resource level,
        #: sorted
        self.sorted_results: dict[float, list[float]] = {}
        #: each trial's results so far (for its running average)
        self.trial_results: dict[str, list[float]] = {}
        self.stopped_ids: set[str] = set()

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        """``TuneConfig``'s metric and mode fill in what the rule was not given (the rule
        may rank by another metric or mode than the searcher's, as in Syne Tune)."""
        if self._metric is None and metric is not None:
            self._metric = metric
        if self._mode is None and mode is not None:
            self._mode = mode
        return True

    def was_stopped(self, trial_id: str) -> bool:
        """Whether this rule stopped trial ``trial_id``."""
        return trial_id in self.stopped_ids

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> Decision:
        value: Any = result.get(self._metric or "")
        level: Any = result.get(self._time_attr)
        if not _number(level) or not (_number(value) or _nan(value)):
            return SchedulerDecision.CONTINUE
        new = float(value) * (-1.0 if self._mode == "max" else 1.0)
        if self.running_average:
            history = self.trial_results.setdefault(trial.trial_id, [])
            history.append(new)
            new = sum(history) / len(history)
        if math.isnan(new):  # ranked last, as Syne Tune's sorted numpy array ranks NaN
            new = math.inf
        seen = self.sorted_results.setdefault(float(level), [])
        index = bisect.bisect_left(seen, new)
        seen.insert(index, new)
        rank = index / len(seen)
        grace = (self.grace_population is not None and len(seen) < self.grace_population) or (
            self.grace_time is not None and level < self.grace_time)
        if grace or rank <= self.rank_cutoff:
            return SchedulerDecision.CONTINUE
        logger.info("MedianStoppingRule: trial %s at %s=%s ranks %d%%, not in the top %d%%: "
                    "stopping it", trial.trial_id, self._time_attr, level, int(rank * 100),
                    int(self.rank_cutoff * 100))
        self.stopped_ids.add(trial.trial_id)
        return SchedulerDecision.STOP

    def on_trial_complete(self, trial: Trial, result: dict[str, Any]) -> None:
        """Syne Tune's rule records results only as they are reported."""
        return None

    def debug_string(self) -> str:
        return f"Using Syne Tune's MedianStoppingRule: num_stopped={len(self.stopped_ids)}."

    def save_state(self) -> dict[str, Any]:
        return {"sorted_results": {k: list(v) for k, v in self.sorted_results.items()},
                "trial_results": {k: list(v) for k, v in self.trial_results.items()},
                "stopped_ids": sorted(self.stopped_ids)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.sorted_results = {k: list(v) for k, v in state["sorted_results"].items()}
        self.trial_results = {k: list(v) for k, v in state["trial_results"].items()}
        self.stopped_ids.clear()  # the same set: the tuner's results table asks it
        self.stopped_ids.update(state["stopped_ids"])


def _nan(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isnan(
        float(value))


def _number(value: Any) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and not math.isnan(float(value)))


#: the wrapped schedulers whose only job is proposing configurations
_SEARCHING = ("RandomSearch", "GridSearch", "BayesianOptimization", "BOTorch", "TPE",
              "FIFOScheduler")


class MedianStoppingRule(_b.SyneScheduler):
    """Syne Tune's median stopping rule over ``scheduler``'s configurations (see the module
    docstring).

    Args:
        scheduler: proposes the configurations: one of ``RandomSearch``, ``GridSearch``,
            ``BayesianOptimization``, ``BOTorch``, ``TPE``, ``FIFOScheduler``.
        resource_attr: the reported resource, e.g. ``"epoch"`` (0.15: ``time_attr``).
        running_average: rank each trial's running average instead of its raw result.
        metric: the metric ranked (default: the scheduler's).
        grace_time: no trial is stopped at a resource level below this (None: no grace).
        grace_population: no trial is stopped at a level with fewer results than this
            (None: no grace).
        rank_cutoff: stop a trial whose normalized rank exceeds this (0.5: the median).
        random_seed: accepted (0.15); the rule draws nothing at random.
        do_minimize: the mode the rule ranks by (default: the scheduler's mode).
    """

    def __init__(self, scheduler: _b.SyneScheduler, resource_attr: str | None = None,
                 running_average: bool = True, metric: str | None = None,
                 grace_time: float | None = 1, grace_population: int | None = 5,
                 rank_cutoff: float = 0.5, random_seed: int | None = None,
                 do_minimize: bool | None = None, *, time_attr: str | None = None) -> None:
        if not isinstance(scheduler, _b.SyneScheduler):
            raise bad_type("scheduler", scheduler, "a scheduler from "
                           "poptune.syne_tune.optimizer.baselines: " + ", ".join(_SEARCHING))
        parts = scheduler.poptune_parts()
        if parts.get("scheduler") is not None or "stop" in parts or isinstance(
                scheduler, MedianStoppingRule):
            raise bad_value("scheduler", type(scheduler).__name__,
                            "a scheduler that only proposes configurations, one of "
                            f"{', '.join(_SEARCHING)} (poptune runs one scheduler per "
                            "experiment: it cannot stack the median rule on one that stops "
                            "or pauses trials itself)")
        if resource_attr is not None and time_attr is not None and resource_attr != time_attr:
            raise bad_value("time_attr", time_attr,
                            f"None or {resource_attr!r} when resource_attr={resource_attr!r} "
                            "is given (0.15 renamed resource_attr to time_attr: pass one)")
        attr = resource_attr if resource_attr is not None else time_attr
        if not isinstance(attr, str) or not attr:
            raise bad_type("resource_attr", attr, "a result key (str), e.g. 'epoch'")
        if not isinstance(running_average, bool):
            raise bad_type("running_average", running_average, "True or False")
        if grace_time is not None and (not _number(grace_time) or grace_time < 0):
            raise bad_value("grace_time", grace_time, "a number >= 0 or None")
        if grace_population is not None and (
                isinstance(grace_population, bool) or not isinstance(grace_population, int)
                or grace_population < 1):
            raise bad_value("grace_population", grace_population, "an integer >= 1 or None")
        if not _number(rank_cutoff) or not 0 <= rank_cutoff <= 1:
            raise bad_value("rank_cutoff", rank_cutoff, "a number in [0, 1]")
        if do_minimize is not None and not isinstance(do_minimize, bool):
            raise bad_type("do_minimize", do_minimize, "True, False or None")
        if metric is not None and (not isinstance(metric, str) or not metric):
            raise bad_type("metric", metric, "a metric name (str) or None")
        super().__init__(scheduler.config_space, scheduler.metric, scheduler.mode,
                         scheduler.random_seed, scheduler.points_to_evaluate)
        self.scheduler = scheduler
        self.resource_attr = self.time_attr = attr
        self.running_average = running_average
        self.rule_metric = metric if metric is not None else scheduler.metric
        self.rule_mode = scheduler.mode if do_minimize is None else (
            "min" if do_minimize else "max")
        self.grace_time = grace_time
        self.grace_population = grace_population
        self.rank_cutoff = rank_cutoff

    def metadata(self) -> dict[str, Any]:
        return {**self.scheduler.metadata(), "scheduler_name": "MedianStoppingRule",
                "wrapped_scheduler": type(self.scheduler).__name__}

    def _searcher(self) -> Any:
        return self.scheduler._searcher()

    def poptune_parts(self) -> dict[str, Any]:
        rule = SyneMedianRule(self.time_attr, self.rule_metric, self.rule_mode,
                              grace_time=self.grace_time,
                              grace_population=self.grace_population,
                              rank_cutoff=self.rank_cutoff,
                              running_average=self.running_average)
        return {**self.scheduler.poptune_parts(), "scheduler": rule,
                "scheduler_stops": rule.was_stopped}
