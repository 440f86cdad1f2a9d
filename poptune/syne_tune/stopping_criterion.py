"""``StoppingCriterion`` and the ``TuningStatus`` it reads, with Syne Tune's semantics.

Every bound means "stop once the count is *more than* this" (as Syne Tune); several bounds
stop when any of them holds. When the criterion holds, running trials are stopped.

Example:
    >>> status = TuningStatus(["loss"])
    >>> status.on_result(0, {"loss": 0.3})
    >>> StoppingCriterion(max_num_evaluations=1)(status), StoppingCriterion(
    ...     min_metric_value={"loss": 0.5})(status)
    (False, True)
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

from poptune._validation import bad_type, bad_value

__all__ = ["MetricsStatistics", "PlateauStopper", "StoppingCriterion", "TuningStatus"]


@dataclass
class MetricsStatistics:
    """Count of reported results and the smallest / largest value seen per metric."""

    count: int = 0
    min_metrics: dict[str, float] = field(default_factory=dict)
    max_metrics: dict[str, float] = field(default_factory=dict)
    last_metrics: dict[str, float] = field(default_factory=dict)

    def add(self, result: dict[str, Any]) -> None:
        self.count += 1
        for key, value in result.items():
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                continue
            value = float(value)
            if math.isnan(value):
                continue
            self.min_metrics[key] = min(self.min_metrics.get(key, value), value)
            self.max_metrics[key] = max(self.max_metrics.get(key, value), value)
            self.last_metrics[key] = value


@dataclass
class TuningStatus:
    """What the tuner knows so far (Syne Tune's ``TuningStatus``): the counts criteria use,
    the statistics over all results and per trial, each trial's last status and a row per
    trial (``trial_id``, ``status``, ``iter``, its config, its last metrics,
    ``worker-time``), which ``str()`` prints as Syne Tune's status table."""

    metric_names: list[str]
    wallclock_time: float = 0.0
    num_trials_started: int = 0
    num_trials_completed: int = 0
    num_trials_failed: int = 0
    num_trials_stopped: int = 0
    overall_metric_statistics: MetricsStatistics = field(default_factory=MetricsStatistics)
    trial_metric_statistics: dict[int, MetricsStatistics] = field(default_factory=dict)
    #: each trial's status: ``InProgress``, ``Completed``, ``Stopped`` or ``Failed``
    last_trial_status_seen: dict[int, str] = field(default_factory=dict)
    #: a row per trial, by trial id
    trial_rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    _cost: dict[int, float] = field(default_factory=dict)

    @property
    def num_trials_finished(self) -> int:
        """Completed, stopped or failed trials."""
        return self.num_trials_completed + self.num_trials_failed + self.num_trials_stopped

    @property
    def num_trials_running(self) -> int:
        return self.num_trials_started - self.num_trials_finished

    @property
    def cost(self) -> float:
        """The sum over trials of their last reported ``st_worker_cost``."""
        return float(sum(self._cost.values()))

    @property
    def user_time(self) -> float:
        """The sum over trials of their largest ``st_worker_time``."""
        return float(sum(s.max_metrics.get("st_worker_time", 0.0)
                         for s in self.trial_metric_statistics.values()))

    def on_result(self, trial_id: int, result: dict[str, Any],
                  config: dict[str, Any] | None = None, status: str = "InProgress") -> None:
        self.overall_metric_statistics.add(result)
        stats = self.trial_metric_statistics.setdefault(trial_id, MetricsStatistics())
        stats.add(result)
        cost = result.get("st_worker_cost")
        if isinstance(cost, numbers.Real) and not isinstance(cost, bool):
            self._cost[trial_id] = float(cost)
        row: dict[str, Any] = {"trial_id": trial_id, "status": status, "iter": stats.count,
                               **(config or {}), **stats.last_metrics}
        if "st_worker_time" in stats.max_metrics:
            row["worker-time"] = stats.max_metrics["st_worker_time"]
        self.last_trial_status_seen[trial_id] = status
        self.trial_rows[trial_id] = row

    def set_status(self, trial_id: int, status: str) -> None:
        """Record a trial's new status (its row, if any, too)."""
        self.last_trial_status_seen[trial_id] = status
        if trial_id in self.trial_rows:
            self.trial_rows[trial_id]["status"] = status

    def get_dataframe(self) -> Any:
        """The trial rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(list(self.trial_rows.values()))

    def __str__(self) -> str:
        text = ""
        if self.trial_rows:
            df = self.get_dataframe()
            cols = [c for c in df.columns if not str(c).startswith("st_")]
            text = df.loc[:, cols].to_string(index=False, na_rep="-") + "\n"
        return (text + f"{self.num_trials_running} trials running, "
                f"{self.num_trials_finished} finished ({self.num_trials_completed} until the "
                f"end), {self.wallclock_time:.2f}s wallclock-time\n")


def _check_bound(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value < 0:
        raise bad_value(name, value, "a number >= 0 or None")


@dataclass
class StoppingCriterion:
    """Stop tuning when any given bound is exceeded.

    Args:
        max_wallclock_time: seconds since the tuner started.
        max_num_evaluations: reported results (over all trials).
        max_num_trials_started: trials started.
        max_num_trials_completed: trials that ran to their end (not stopped, not failed).
        max_cost: the sum of the trials' last ``st_worker_cost``.
        max_num_trials_finished: trials completed, stopped or failed.
        min_metric_value: ``{metric: threshold}``: stop once a result is below it.
        max_metric_value: ``{metric: threshold}``: stop once a result is above it.

    Example:
        >>> crit = StoppingCriterion(max_wallclock_time=60, max_num_trials_completed=10)
        >>> crit(TuningStatus(["loss"], wallclock_time=61.0))
        True
    """

    max_wallclock_time: float | None = None
    max_num_evaluations: int | None = None
    max_num_trials_started: int | None = None
    max_num_trials_completed: int | None = None
    max_cost: float | None = None
    max_num_trials_finished: int | None = None
    min_metric_value: dict[str, float] | None = None
    max_metric_value: dict[str, float] | None = None

    def __post_init__(self) -> None:
        for name in ("max_wallclock_time", "max_num_evaluations", "max_num_trials_started",
                     "max_num_trials_completed", "max_cost", "max_num_trials_finished"):
            _check_bound(name, getattr(self, name))
        for name in ("min_metric_value", "max_metric_value"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                raise bad_type(name, value, "a dict {metric: threshold} or None")

    def __call__(self, status: TuningStatus) -> bool:
        def over(bound: float | None, value: float) -> bool:
            return bound is not None and value > bound

        stats = status.overall_metric_statistics
        if (over(self.max_wallclock_time, status.wallclock_time)
                or over(self.max_num_trials_started, status.num_trials_started)
                or over(self.max_num_trials_completed, status.num_trials_completed)
                or over(self.max_num_trials_finished, status.num_trials_finished)
                or over(self.max_cost, status.cost)
                or over(self.max_num_evaluations, stats.count)):
            return True
        for metric, bound in (self.max_metric_value or {}).items():
            if metric in stats.max_metrics and stats.max_metrics[metric] > bound:
                return True
        for metric, bound in (self.min_metric_value or {}).items():
            if metric in stats.min_metrics and stats.min_metrics[metric] < bound:
                return True
        return False


class PlateauStopper:
    """Stop tuning once the best value of ``metric`` so far has plateaued (Syne Tune's
    ``stopping_criterion.PlateauStopper``, inspired by Ray Tune's): over the trials' rows in
    ``TuningStatus.trial_rows`` (each trial's last value, in the order trials first
    reported), the running best of the last ``num_trials`` trials has a standard deviation
    ``<= std``, on more than ``patience`` consecutive evaluations of the criterion (poptune
    evaluates it on each engine tick; Syne Tune on each loop of its tuner). Nothing stops
    before a trial has finished.

    Example:
        >>> status = TuningStatus(["loss"])
        >>> for trial_id, loss in enumerate([0.5, 0.2, 0.3, 0.4]):
        ...     status.on_result(trial_id, {"loss": loss})
        >>> status.num_trials_completed = 1
        >>> stop = PlateauStopper("loss", num_trials=3)
        >>> stop(status)  # the best so far: 0.5, 0.2, 0.2, 0.2
        True
    """

    def __init__(self, metric: str, std: float = 0.001, num_trials: int = 10,
                 mode: str = "min", patience: int = 0) -> None:
        if mode not in ("min", "max"):
            raise ValueError("The mode parameter can only be either min or max.")
        if not isinstance(num_trials, int) or num_trials <= 1:
            raise ValueError("Top results to consider must be a positive integer greater "
                             "than one.")
        if not isinstance(patience, int) or patience < 0:
            raise ValueError("Patience must be a strictly positive integer.")
        if not isinstance(std, float) or std <= 0:
            raise ValueError("The standard deviation must be a strictly positive float "
                             "number.")
        self._mode = mode
        self._metric = metric
        self._patience = patience
        self._iterations = 0
        self._std = std
        self._num_trials = num_trials
        self.multiplier = 1 if mode == "min" else -1

    def __call__(self, status: TuningStatus) -> bool:
        """True if tuning has to stop."""
        import numpy as np

        if status.num_trials_finished == 0:
            return False
        trajectory: list[float] = []
        best: float | None = None
        for row in status.trial_rows.values():
            if self._metric in row:
                y = self.multiplier * row[self._metric]
                if best is None or y < best:
                    best = y
                trajectory.append(best)
        top = trajectory[-self._num_trials:]
        plateaued = len(top) == self._num_trials and float(np.std(top)) <= self._std
        self._iterations = self._iterations + 1 if plateaued else 0
        return plateaued and self._iterations >= self._patience
