"""Pause-and-promote asynchronous successive halving (Syne Tune's ``type="promotion"`` ASHA).

Rungs sit at ``grace_period * reduction_factor**k`` units of ``time_attr``, for every ``k``
with a level below ``max_t``. A trial reaching a rung records its score there and is
PAUSED (its checkpoint is where it will go on from). When a slot frees,
:meth:`~PromotionASHAScheduler.choose_trial_to_run` looks at the rungs top first for a
paused trial not promoted yet whose score is in the top ``r_k / r_(k+1)`` of every score
recorded at its rung (``1 / reduction_factor``; for the top rung ``r_k / max_t``), the best
one first, and resumes it from its checkpoint up to the next rung; only if none qualifies
does a new trial start. A rung needs two scores before it promotes anything. A trial
reaching ``max_t`` is stopped (STOP). No trial is ever stopped below ``max_t`` while the
experiment can still run it: a paused trial waits for the rung to fill up.

The end: when no trial runs and none is pending (the searcher is exhausted, ``num_samples``
are all created) and no paused trial qualifies for a promotion, the paused trials can never
be promoted again and are ended (:class:`~poptune.schedulers.StopTrial` actions, as
HyperBand ends its last waiting trials); while some trial runs they wait, since its scores
may still promote them.

Where poptune differs from Syne Tune:

* one bracket only (``brackets=1``, Syne Tune's default);
* a trial whose ``time_attr`` jumps over a rung is judged (and paused) at the highest rung
  it reached; Syne Tune stops with an assertion error (``resource > milestone``);
* a function trainable that has not reported a checkpoint cannot pause (the runner keeps it
  running rather than restart it from scratch): it leaves its rung as if promoted, and pauses
  again at the next one; Syne Tune restarts it from scratch when it is promoted;
* a trial the experiment was running when it was interrupted (a restore) or that is retried
  after an error resumes before any promotion, so a restored run continues as the
  interrupted one would have;
* a ``None`` metric is skipped (warned once); a NaN score is recorded and never promoted.

Example:
    >>> from poptune.experiment.trial import Trial, TrialStatus
    >>> sched = PromotionASHAScheduler(metric="loss", mode="min", max_t=9, grace_period=1,
    ...                                reduction_factor=3)
    >>> sched.rung_levels
    [1, 3]
    >>> trials = [Trial(f"t{i}", "f", {}) for i in range(4)]
    >>> for t in trials:
    ...     sched.on_trial_add(t)
    >>> [sched.on_trial_result(t, {"training_iteration": 1, "loss": loss}).value
    ...  for t, loss in zip(trials[:3], [0.3, 0.1, 0.2])]
    ['PAUSE', 'PAUSE', 'PAUSE']
    >>> for t in trials[:3]:
    ...     t.status = TrialStatus.PAUSED
    >>> sched.choose_trial_to_run(trials).trial_id  # the best of rung 1 goes on to rung 3
    't1'
"""

from __future__ import annotations

import logging
import math
from typing import Any, Union

import numpy as np

from poptune._validation import bad_value, check_mode, no_metric_mode
from poptune.exceptions import TuneConfigError
from poptune.experiment.trial import Trial, TrialStatus
from poptune.schedulers._base import (
    Decision,
    FIFOScheduler,
    Outcome,
    SchedulerDecision,
    StopTrial,
)
from poptune.schedulers.async_hyperband import check_rung_args

__all__ = ["PromotionASHAScheduler"]

logger = logging.getLogger(__name__)

CONTINUE, PAUSE, STOP = SchedulerDecision.CONTINUE, SchedulerDecision.PAUSE, SchedulerDecision.STOP
_PENDING, _PAUSED, _RUNNING = TrialStatus.PENDING, TrialStatus.PAUSED, TrialStatus.RUNNING

#: a rung level as given (an int stays an int: ``1, 3, 9``)
Level = Union[int, float]


def rung_levels(grace_period: Level, reduction_factor: Level, max_t: Level) -> list[Level]:
    """The rung levels below ``max_t``: ``grace_period * reduction_factor**k``.

    >>> rung_levels(1, 3, 27), rung_levels(1, 3, 10), rung_levels(2, 2.5, 20)
    ([1, 3, 9], [1, 3, 9], [2.0, 5.0, 12.5])
    >>> rung_levels(5, 3, 5)  # no rung: every trial trains to max_t
    []
    """
    levels: list[Level] = []
    k = 0
    while True:
        level = grace_period * reduction_factor**k
        if level >= max_t:
            return levels
        levels.append(level)
        k += 1


class PromotionASHAScheduler(FIFOScheduler):
    """ASHA that pauses trials at rungs and promotes the best paused ones (Syne Tune's
    ``HyperbandScheduler(type="promotion")``); see the module docstring for the rule.

    A sibling of :class:`~poptune.schedulers.ASHAScheduler` (the stopping variant) with the
    same parameters and defaults, except that there is no ``stop_last_trials`` (a trial
    reaching ``max_t`` always stops). Trials must report checkpoints
    (``tune.report(..., checkpoint=...)``) at least at every rung level, so a promoted trial
    goes on where it paused; class trainables are asked to save at each rung
    (:meth:`should_checkpoint`).

    Args:
        time_attr: monotonically increasing result attribute measuring progress.
        metric: the objective; may instead come from ``TuneConfig``. With only ``mode``
            given, the metric is ``"_metric"``.
        mode: ``"min"`` or ``"max"``; may instead come from ``TuneConfig``.
        max_t: trials are stopped once ``time_attr`` reaches this.
        grace_period: the first rung level.
        reduction_factor: rung spacing (> 1); the top ``1/reduction_factor`` of a rung is
            promoted (of the top rung: the top ``r_top / max_t``).
        brackets: only 1 (Syne Tune's default).

    Example:
        >>> import poptune as tune
        >>> sched = PromotionASHAScheduler(max_t=27, grace_period=1, reduction_factor=3)
        >>> sched.rung_levels
        [1, 3, 9]
        >>> cfg = tune.TuneConfig(metric="loss", mode="min", scheduler=sched, num_samples=20)
    """

    needs_checkpoints = True

    def __init__(
        self,
        time_attr: str = "training_iteration",
        metric: str | None = None,
        mode: str | None = None,
        max_t: float = 100,
        grace_period: float = 1,
        reduction_factor: float = 4,
        brackets: int = 1,
    ) -> None:
        check_rung_args(time_attr, max_t, grace_period, reduction_factor)
        if isinstance(brackets, bool) or not isinstance(brackets, int) or brackets != 1:
            raise bad_value("brackets", brackets, "1 (the promotion variant of ASHA runs one "
                            "bracket; ASHAScheduler, the stopping variant, runs several)")
        check_mode(mode)
        self._metric = metric
        self._mode = mode
        self._time_attr = time_attr
        self._max_t = max_t
        self._grace_period = grace_period
        self._reduction_factor = reduction_factor
        self._levels = rung_levels(grace_period, reduction_factor, max_t)
        nexts = [*self._levels[1:], max_t]
        #: the fraction of rung k promoted: r_k / r_(k+1) (Syne Tune's promotion quantile)
        self._quantiles = [level / nxt for level, nxt in zip(self._levels, nexts)]
        #: per rung, bottom first: trial id -> signed score (higher is better)
        self._rungs: list[dict[str, float]] = [{} for _ in self._levels]
        #: trials paused at a rung and not promoted yet: trial id -> rung index
        self._waiting: dict[str, int] = {}
        self._num_paused = 0
        self._num_promoted = 0
        self._num_stopped = 0
        self._warned_none = False
        self._log: list[tuple[Any, ...]] = []  # changes since the last state_delta()
        self._sent: tuple[int, int, int, bool] = (0, 0, 0, False)
        self._cutoffs: dict[int, float | None] = {}  # cached per rung (cleared on a record)
        #: the live trials' read-only views (their statuses), not part of the saved state
        self._views: dict[str, Trial] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_views"], state["_cutoffs"] = {}, {}  # the live trials are not pickled with it
        return state

    @property
    def _metric_op(self) -> float | None:
        return {"max": 1.0, "min": -1.0}.get(self._mode or "")

    @property
    def rung_levels(self) -> list[Level]:
        """The rung levels, lowest first (``max_t`` is not one: a trial there stops)."""
        return list(self._levels)

    # ----------------------------------------------------------------- hooks
    def on_trial_add(self, trial: Trial) -> None:
        """Remember the trial (its status tells, at the end, whether anything still runs)."""
        if not self._metric or self._metric_op is None:
            raise no_metric_mode(self, self._metric, self._mode, "scheduler")
        if not trial.is_finished():
            self._views[trial.trial_id] = trial

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> Decision:
        """STOP at ``max_t``; PAUSE at the first result at or past a rung the trial has no
        score at yet (recording it there); CONTINUE otherwise."""
        tid = trial.trial_id
        self._views.setdefault(tid, trial)
        if self._time_attr not in result:
            return CONTINUE
        if tid in self._waiting:  # it runs again: promoted (or it could not pause)
            self._unwait(tid)
            self._num_promoted += 1
        t = result[self._time_attr]
        if t >= self._max_t:
            self._num_stopped += 1
            return STOP
        k = self._rung_at(t)
        if k is None or tid in self._rungs[k]:
            return CONTINUE
        score = self._score(result)
        if score is None:
            return CONTINUE
        self._rungs[k][tid] = score
        self._cutoffs.pop(k, None)
        self._log.append(("r", k, tid, score))
        self._waiting[tid] = k
        self._log.append(("w", tid, k))
        self._num_paused += 1
        return PAUSE

    def on_trial_complete(self, trial: Trial, result: dict[str, Any]) -> None:
        """Forget the trial; its scores stay in the rungs (they rank the others)."""
        self._forget(trial.trial_id)

    def on_trial_error(self, trial: Trial) -> None:
        self._forget(trial.trial_id)

    def on_trial_remove(self, trial: Trial) -> None:
        self._forget(trial.trial_id)

    def should_checkpoint(self, trial: Trial, result: dict[str, Any]) -> bool:
        """Class trainables save where they will pause: at a rung they have no score at."""
        t = result.get(self._time_attr)
        if not isinstance(t, (int, float)) or t >= self._max_t:
            return False
        k = self._rung_at(t)
        return k is not None and trial.trial_id not in self._rungs[k]

    def choose_trial_to_run(self, candidates: list[Trial]) -> Trial | None | Outcome[None]:
        """The next trial to run, in this order: a PENDING trial that ran before (interrupted
        by a restore, or retried after an error); the promotion (:meth:`promotable`); a new
        PENDING trial, in creation order. With none of these and no trial running, the
        PAUSED trials are ended (the returned :class:`Outcome`'s ``StopTrial`` actions)."""
        pending = [t for t in candidates if t.status == _PENDING]
        for trial in pending:
            if trial.last_result:
                return trial
        chosen = self.promotable(candidates)
        if chosen is not None:
            return chosen
        if pending:
            return pending[0]
        paused = [t.trial_id for t in candidates if t.status == _PAUSED]
        if paused and not any(v.status == _RUNNING for v in self._views.values()):
            return Outcome(None, tuple(StopTrial(tid) for tid in paused))
        return None

    def promotable(self, candidates: list[Trial]) -> Trial | None:
        """The PAUSED candidate to promote now, or None: rungs top first, the best trial
        waiting at the rung whose score is at least the rung's cutoff (:meth:`cutoff`).

        >>> from poptune.experiment.trial import Trial, TrialStatus
        >>> s = PromotionASHAScheduler(metric="acc", mode="max", max_t=4, grace_period=1,
        ...                            reduction_factor=2)
        >>> a, b = Trial("a", "f", {}), Trial("b", "f", {})
        >>> _ = [s.on_trial_result(t, {"training_iteration": 1, "acc": acc})
        ...      for t, acc in ((a, 0.9), (b, 0.5))]
        >>> a.status = b.status = TrialStatus.PAUSED
        >>> s.cutoff(0), s.promotable([a, b]).trial_id
        (0.7, 'a')
        >>> a.status = TrialStatus.RUNNING  # promoted: b (below the cutoff) waits
        >>> s.promotable([b]) is None
        True
        """
        paused = {t.trial_id: t for t in candidates if t.status == _PAUSED}
        if not paused:
            return None
        best: dict[int, tuple[float, str]] = {}  # rung -> its best waiting candidate
        for tid, k in self._waiting.items():  # in the order they paused: ties, the earlier
            if tid in paused:
                score = self._rungs[k][tid]
                if k not in best or score > best[k][0]:
                    best[k] = (score, tid)
        for k in sorted(best, reverse=True):
            cutoff = self.cutoff(k)
            if cutoff is not None and best[k][0] >= cutoff:  # NaN never qualifies
                return paused[best[k][1]]
        return None

    def is_waiting(self, trial_id: str) -> bool:
        """Whether ``trial_id`` is paused at a rung, not promoted yet (its last result was
        answered with PAUSE)."""
        return trial_id in self._waiting

    def cutoff(self, k: int) -> float | None:
        """The signed score (higher is better) a trial needs at rung ``k`` (0: the lowest)
        to be promoted: the ``1 - r_k / r_(k+1)`` quantile of the rung's scores (linear
        interpolation, NaN left out); None while it holds fewer than two."""
        if k not in self._cutoffs:
            scores = [s for s in self._rungs[k].values() if not math.isnan(s)]
            self._cutoffs[k] = None if len(scores) < 2 else float(
                np.percentile(scores, (1 - self._quantiles[k]) * 100))
        return self._cutoffs[k]

    def debug_string(self) -> str:
        out = (f"Using PromotionASHA: num_paused={self._num_paused} "
               f"num_promoted={self._num_promoted} num_stopped={self._num_stopped}")
        rungs = " | ".join(
            f"Iter {level}: {len(self._rungs[k])} recorded, "
            f"{sum(1 for w in self._waiting.values() if w == k)} waiting"
            for k, level in reversed(list(enumerate(self._levels))))
        return out + ("\nRungs: " + rungs if rungs else "")

    # ----------------------------------------------------------------- state
    def save_state(self) -> dict[str, Any]:
        return {
            "levels": list(self._levels),
            "rungs": [dict(r) for r in self._rungs],
            "waiting": dict(self._waiting),
            "counts": (self._num_paused, self._num_promoted, self._num_stopped),
            "warned_none": self._warned_none,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`save_state`; the constructor arguments must give the same rungs."""
        if list(state["levels"]) != self._levels:
            raise bad_value("grace_period/reduction_factor/max_t", self._levels,
                            f"the saved rung levels {state['levels']}")
        self._rungs = [dict(r) for r in state["rungs"]]
        self._waiting = dict(state["waiting"])
        self._num_paused, self._num_promoted, self._num_stopped = state["counts"]
        self._warned_none = state["warned_none"]
        self._cutoffs.clear()

    # the rungs grow with every trial: the engine journals what changed at each commit
    incremental_state = True

    def state_delta(self) -> dict[str, Any] | None:
        """The rung records and waiting changes since the last call (None: nothing).

        >>> from poptune.experiment.trial import Trial
        >>> s = PromotionASHAScheduler(metric="loss", mode="min", max_t=4, grace_period=1)
        >>> _ = s.on_trial_result(Trial("t0", "f", {}), {"training_iteration": 1, "loss": 1.0})
        >>> s.state_delta()["ops"]
        [('r', 0, 't0', -1.0), ('w', 't0', 0)]
        >>> s.state_delta() is None
        True
        """
        sent = (self._num_paused, self._num_promoted, self._num_stopped, self._warned_none)
        if not self._log and sent == self._sent:
            return None
        delta = {"ops": list(self._log), "counts": sent[:3], "warned_none": sent[3]}
        self._log.clear()
        self._sent = sent
        return delta

    def apply_state_delta(self, delta: dict[str, Any]) -> None:
        for op in delta["ops"]:
            if op[0] == "r":
                _, k, tid, score = op
                self._rungs[k][tid] = score
                self._cutoffs.pop(k, None)
            elif op[0] == "w":
                self._waiting[op[1]] = op[2]
            else:
                self._waiting.pop(op[1], None)
        self._num_paused, self._num_promoted, self._num_stopped = delta["counts"]
        self._warned_none = delta["warned_none"]

    # ----------------------------------------------------------------- internals
    def _rung_at(self, t: float) -> int | None:
        """The index of the highest rung at or below ``t`` (None: below the first)."""
        for k in reversed(range(len(self._levels))):
            if t >= self._levels[k]:
                return k
        return None

    def _unwait(self, trial_id: str) -> None:
        if self._waiting.pop(trial_id, None) is not None:
            self._log.append(("u", trial_id))

    def _forget(self, trial_id: str) -> None:
        self._views.pop(trial_id, None)
        self._unwait(trial_id)

    def _score(self, result: dict[str, Any]) -> float | None:
        assert self._metric is not None  # checked when the experiment starts
        value = result.get(self._metric)
        if value is None:
            if not self._warned_none:
                self._warned_none = True
                logger.warning(
                    "%s: the metric %r is missing or None in a result; such results are "
                    "ignored. Consider reporting a different field.", type(self).__name__,
                    self._metric)
            return None
        try:
            return float(value) * (self._metric_op or 1.0)
        except (TypeError, ValueError):
            raise TuneConfigError(
                f"`{self._metric}` must be a number in every result, got {value!r}"
            ) from None
