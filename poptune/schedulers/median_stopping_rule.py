"""The median stopping rule (``ray.tune.schedulers.MedianStoppingRule``, Google Vizier).

At a result at time ``t >= grace_period``, a trial is stopped (or paused, with
``hard_stop=False``) when its best metric so far is strictly worse than the median, over the
*other* trials that have reached ``t``, of their running means (their results with
``grace_period <= t' <= t``). With fewer than ``min_samples_required`` such trials the trial
yields its slot (PAUSE) if other trials wait to run and it ran ``min_time_slice`` since it
last yielded; otherwise it continues. A trial stopped with ``hard_stop=False`` is resumed
later, when nothing else waits, and is never judged again.

Where poptune differs from Ray Tune: a trial with no (non-NaN) result inside
``[grace_period, t]`` (it reports rarely) is left out of the median instead of turning it
into NaN, which in Ray stops the trial being judged; a trial's final result is not counted
twice (Ray records it again at completion); only ``(time, metric)`` pairs are kept.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from poptune._validation import bad_type, bad_value, check_in_range, check_mode, no_metric_mode
from poptune.experiment.trial import Trial, TrialStatus
from poptune.schedulers._base import Decision, FIFOScheduler, SchedulerDecision

__all__ = ["MedianStoppingRule"]

logger = logging.getLogger(__name__)

_WAITING = (TrialStatus.PENDING, TrialStatus.PAUSED)


class MedianStoppingRule(FIFOScheduler):
    """Stop trials whose best result is worse than the median of the others' running means.

    Args:
        time_attr: monotonically increasing result attribute measuring progress.
        metric: the objective; may instead come from ``TuneConfig``.
        mode: ``"min"`` or ``"max"``; may instead come from ``TuneConfig``.
        grace_period: no trial is judged before this much ``time_attr``; running means
            start here.
        min_samples_required: how many other trials must have reached ``t`` to judge.
        min_time_slice: a trial yields its slot (for lack of samples) at most once per this
            much ``time_attr``.
        hard_stop: stop bad trials; if False, pause them (they resume when nothing else
            waits and are not judged again).

    Example:
        >>> from poptune.experiment.trial import Trial
        >>> rule = MedianStoppingRule(time_attr="training_iteration", metric="acc",
        ...                           mode="max", grace_period=1, min_samples_required=2)
        >>> trials = [Trial(f"t{i}", "f", {}) for i in range(3)]
        >>> for trial, acc in zip(trials, [0.9, 0.8, 0.1]):
        ...     rule.on_trial_add(trial)
        ...     decision = rule.on_trial_result(trial, {"training_iteration": 1, "acc": acc})
        >>> decision.value  # 0.1 < median(0.9, 0.8)
        'STOP'
    """

    def __init__(
        self,
        time_attr: str = "time_total_s",
        metric: str | None = None,
        mode: str | None = None,
        grace_period: float = 60.0,
        min_samples_required: int = 3,
        min_time_slice: float = 0,
        hard_stop: bool = True,
    ) -> None:
        if not isinstance(time_attr, str):
            raise bad_type("time_attr", time_attr, "a str")
        check_in_range("grace_period", grace_period, 0)
        if (isinstance(min_samples_required, bool) or not isinstance(min_samples_required, int)
                or min_samples_required < 1):
            raise bad_value("min_samples_required", min_samples_required, "an integer >= 1")
        check_in_range("min_time_slice", min_time_slice, 0)
        check_mode(mode)
        self._metric = metric
        self._mode = mode
        self._time_attr = time_attr
        self._grace_period = grace_period
        self._min_samples_required = min_samples_required
        self._min_time_slice = min_time_slice
        self._hard_stop = bool(hard_stop)
        self.needs_checkpoints = not self._hard_stop
        self._trials: dict[str, Trial] = {}
        self._results: dict[str, list[tuple[float, float]]] = {}  # id -> [(time, metric)]
        self._stopped_trials: set[str] = set()
        self._last_pause: dict[str, float] = {}

    @property
    def _compare_op(self) -> Any:
        return max if self._mode == "max" else min

    # ----------------------------------------------------------------- hooks
    def on_trial_add(self, trial: Trial) -> None:
        if not self._metric or self._mode not in ("min", "max"):
            raise no_metric_mode(self, self._metric, self._mode, "scheduler")
        self._trials[trial.trial_id] = trial

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> Decision:
        """Stop (or pause) ``trial`` if its best result is worse than the median."""
        if self._time_attr not in result or self._metric not in result:
            return SchedulerDecision.CONTINUE
        tid = trial.trial_id
        self._trials.setdefault(tid, trial)
        if tid in self._stopped_trials:
            return SchedulerDecision.CONTINUE  # paused once (hard_stop=False): FIFO from now
        t = result[self._time_attr]
        self._record(tid, result)
        if t < self._grace_period:
            return SchedulerDecision.CONTINUE
        # as Ray: a running mean that is infinite (a diverged trial) does not count either
        means = [m for m in (self._running_mean(other, t) for other in self._beyond(t, tid))
                 if m is not None and math.isfinite(m)]
        if len(means) < self._min_samples_required:
            action = self._on_insufficient_samples(trial, t)
            logger.debug("MedianStoppingRule: insufficient samples=%d to evaluate trial %s at "
                         "t=%s. %s", len(means), tid, t,
                         "Yielding time to other trials." if action == SchedulerDecision.PAUSE
                         else "Continuing anyways.")  # fmt: skip
            return action
        median = float(np.median(means))
        best = self._best_result(tid)
        logger.debug("Trial %s best res=%s vs median res=%s at t=%s", tid, best, median, t)
        if self._compare_op(median, best) != best:
            logger.debug("MedianStoppingRule: early stopping %s", tid)
            self._stopped_trials.add(tid)
            return SchedulerDecision.STOP if self._hard_stop else SchedulerDecision.PAUSE
        return SchedulerDecision.CONTINUE

    def on_trial_complete(self, trial: Trial, result: dict[str, Any]) -> None:
        """A finished trial keeps counting in the medians with its final result."""
        if self._time_attr in result and self._metric in result:
            self._record(trial.trial_id, result)

    def debug_string(self) -> str:
        return f"Using MedianStoppingRule: num_stopped={len(self._stopped_trials)}."

    def save_state(self) -> dict[str, Any]:
        return {
            "results": {tid: list(r) for tid, r in self._results.items()},
            "stopped": sorted(self._stopped_trials),
            "last_pause": dict(self._last_pause),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self._results = {tid: [tuple(x) for x in r] for tid, r in state["results"].items()}
        self._stopped_trials = set(state["stopped"])
        self._last_pause = dict(state["last_pause"])

    # ----------------------------------------------------------------- internals
    def _record(self, trial_id: str, result: dict[str, Any]) -> None:
        assert self._metric is not None  # checked when the experiment starts
        value = result[self._metric]
        try:
            metric = float(value)
        except (TypeError, ValueError):
            metric = math.nan
        entry = (result[self._time_attr], metric)
        history = self._results.setdefault(trial_id, [])
        if not history or history[-1] != entry:  # the final result is reported twice
            history.append(entry)

    def _beyond(self, t: float, exclude: str) -> list[str]:
        """Other trials whose latest result is at time ``t`` or later."""
        return [tid for tid, r in self._results.items() if tid != exclude and r[-1][0] >= t]

    def _running_mean(self, trial_id: str, t: float) -> float | None:
        scoped = [m for time, m in self._results[trial_id]
                  if self._grace_period <= time <= t and not math.isnan(m)]
        return float(np.mean(scoped)) if scoped else None

    def _best_result(self, trial_id: str) -> float:
        values = [m for _, m in self._results[trial_id] if not math.isnan(m)]
        if not values:  # nothing comparable: the worst possible (Ray: NaN, which stops too)
            return -math.inf if self._mode == "max" else math.inf
        return self._compare_op(values)

    def _on_insufficient_samples(self, trial: Trial, t: float) -> SchedulerDecision:
        """Yield the slot if others wait and the trial ran ``min_time_slice`` since last time."""
        tid = trial.trial_id
        pause = t - self._last_pause.get(tid, -math.inf) > self._min_time_slice and any(
            other.status in _WAITING for oid, other in self._trials.items() if oid != tid
        )
        if pause:
            self._last_pause[tid] = t
            return SchedulerDecision.PAUSE
        return SchedulerDecision.CONTINUE
