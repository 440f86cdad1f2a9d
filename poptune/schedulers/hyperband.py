"""Synchronous HyperBand (``ray.tune.schedulers.HyperBandScheduler``).

Trials fill *brackets*; ``s_max + 1 = round(log(max_t) / log(eta)) + 1`` brackets make a
*band*, filled in the order ``s = 0, 1, ...`` (new bands follow). Bracket ``s`` holds
``n0 = ceil((s_max + 1) / (s + 1) * eta**s)`` trials and its first milestone is
``r0 = int(max_t * eta**-s)`` units of ``time_attr``. A trial reaching the milestone is
PAUSED until every live trial of its bracket got there; then successive halving keeps the
best ``ceil(n / eta)`` (``n`` is the bracket's nominal size, as in Ray), stops the others
(:class:`~poptune.schedulers.StopTrial` actions of the :class:`~poptune.schedulers.Outcome`
the halving hook returns), multiplies the milestone by ``eta`` and resumes the survivors from
their checkpoints (:meth:`~HyperBandScheduler.choose_trial_to_run` prefers them). After ``s``
halvings the survivors train to ``max_t`` and stop (``stop_last_trials``).

Pausing needs checkpoints: function trainables should report one at least at every
milestone (the runner keeps a trial without a checkpoint running rather than restart it
from scratch, so it is not paused for its bracket's halving, but it still stops at
``max_t``); class trainables are asked to save at each milestone
(:meth:`~HyperBandScheduler.should_checkpoint`).

Where poptune differs from Ray Tune:

* a trial that finishes, errors or is removed always leaves its bracket and the bracket is
  re-examined, so the remaining paused trials never hang (Ray skips this once a bracket has
  been halved, or when the trial leaving was the last one short of the milestone: its
  paused trials then never run again; Ray's HyperBandForBOHB halves such a bracket later,
  when nothing runs);
* trials already past the next milestone when a bracket is halved do not wait for a
  halving that never comes: the bracket is halved again (or its finished trials stopped);
* the last round's milestone is ``max_t`` itself (Ray truncates, e.g. 9 instead of 10 for
  ``max_t=10, eta=3``), and a trial reaching it is stopped at once rather than paused until
  its bracket completes (same outcome, no idle slot);
* a result without ``time_attr`` is ignored, and a missing or NaN metric ranks last (Ray
  sorts NaN among the scores, so a halving may keep a NaN trial or stop the best one);
* brackets are taken in order of completion (progress / total work), as in Ray, but the
  total work differs: poptune's is the units a full bracket trains, ``n_i * (r_i - r_(i-1))``
  summed over its rounds (21 for ``max_t=9, eta=3, s=2``), while Ray's
  ``_calculate_total_work`` sums ``n_i * r_i`` and never advances its ``cumulative_r`` (26).
  With several brackets and fewer slots than trials, trials may therefore run in another
  order than in Ray; each trial's final iteration and status are the same (504 runs side
  by side with Ray 2.60: 120 ran in another order, none ended otherwise).
"""

from __future__ import annotations

import collections
import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import numpy as np

from poptune._validation import bad_type, check_in_range, check_mode, no_metric_mode
from poptune.experiment.trial import Trial, TrialStatus
from poptune.schedulers._base import (
    Decision,
    FIFOScheduler,
    Outcome,
    SchedulerDecision,
    StopTrial,
)

T = TypeVar("T")

__all__ = ["HyperBandScheduler"]

logger = logging.getLogger(__name__)

CONTINUE, PAUSE, STOP = SchedulerDecision.CONTINUE, SchedulerDecision.PAUSE, SchedulerDecision.STOP


@dataclass
class _Bracket:
    """One bracket's bookkeeping (plain data, saved with the experiment).

    ``live`` maps each live trial to ``(time, score)`` of its latest result (``None`` before
    any); scores are signed so that higher is better.
    """

    s: int
    n: int
    r: float
    max_t: float
    eta: float
    stop_last_trials: bool
    halves: int = 0
    live: dict[str, Any] = field(default_factory=dict)
    all_ids: list[str] = field(default_factory=list)
    progress: float = 0.0
    total_work: float = 1.0

    def __post_init__(self) -> None:
        self.halves = self.s
        if self.s == 0:
            self.r = self.max_t
        n, r, prev, work = self.n, self.r, 0.0, 0.0
        for i in range(self.s + 1):  # the work of a full bracket: n_i * (r_i - r_(i-1))
            work += n * max(r - prev, 0)
            prev, n = r, math.ceil(n / self.eta)
            r = self.max_t if i + 1 == self.s else min(r * self.eta, self.max_t)
        self.total_work = max(work, 1e-12)

    def time(self, trial_id: str) -> float:
        last = self.live[trial_id]
        return 0.0 if last is None else last[0]

    def filled(self) -> bool:
        return len(self.live) >= self.n

    def cur_iter_done(self) -> bool:
        return all(self.time(t) >= self.r for t in self.live)

    def finished(self) -> bool:
        return self.stop_last_trials and self.halves == 0 and self.cur_iter_done()

    def continue_trial(self, trial_id: str) -> bool:
        if not self.stop_last_trials and self.halves == 0:
            return True
        return self.time(trial_id) < self.r

    def update(self, trial_id: str, t: float, score: float) -> None:
        delta = t - self.time(trial_id)
        if delta <= 0:
            logger.info("Restoring from a previous point in time. Previous=%s; Now=%s",
                        self.time(trial_id), t)
        self.progress += delta
        self.live[trial_id] = (t, score)

    def successive_halving(self) -> tuple[list[str], list[str]]:
        """Advance one round: (good, bad) trial ids, best kept in bracket order on ties."""
        self.halves -= 1
        self.n = math.ceil(self.n / self.eta)
        self.r = self.max_t if self.halves == 0 else int(min(self.r * self.eta, self.max_t))
        ranked = sorted(self.live, key=lambda t: -math.inf if self.live[t] is None
                        else self.live[t][1])
        return ranked[-self.n:], ranked[:-self.n]

    def completion_percentage(self) -> float:
        if self.finished():
            return 1.0
        return min(self.progress / self.total_work, 1.0)


class HyperBandScheduler(FIFOScheduler):
    """Synchronous HyperBand with Ray Tune's parameters, defaults and bracket sizing.

    Args:
        time_attr: monotonically increasing result attribute measuring progress.
        metric: the objective; may instead come from ``TuneConfig``.
        mode: ``"min"`` or ``"max"``; may instead come from ``TuneConfig``.
        max_t: the most ``time_attr`` a trial trains for.
        reduction_factor: ``eta``: each halving keeps ``1/eta`` of a bracket (> 1).
        stop_last_trials: stop the last survivors at ``max_t``; if False they run on.

    Example:
        >>> from poptune.experiment.trial import Trial
        >>> hb = HyperBandScheduler(metric="acc", mode="max", max_t=9, reduction_factor=3)
        >>> trials = [Trial(f"t{i}", "f", {}) for i in range(8)]
        >>> for t in trials:
        ...     hb.on_trial_add(t)
        >>> hb.state()  # brackets s=0 (3 trials to max_t) and s=1 (5 trials, milestone 3)
        {'num_brackets': 2, 'num_stopped': 0}
        >>> hb.on_trial_result(trials[3], {"training_iteration": 3, "acc": 0.5}).value
        'PAUSE'
    """

    needs_checkpoints = True
    _supports_buffered_results = False

    def __init__(
        self,
        time_attr: str = "training_iteration",
        metric: str | None = None,
        mode: str | None = None,
        max_t: float = 81,
        reduction_factor: float = 3,
        stop_last_trials: bool = True,
    ) -> None:
        if not isinstance(time_attr, str):
            raise bad_type("time_attr", time_attr, "a str")
        check_in_range("max_t", max_t, 0, low_open=True)
        check_in_range("reduction_factor", reduction_factor, 1, low_open=True)
        check_mode(mode)
        self._metric = metric
        self._mode = mode
        self._time_attr = time_attr
        self._max_t_attr = max_t
        self._eta = reduction_factor
        self._stop_last_trials = bool(stop_last_trials)
        self._s_max_1 = max(1, int(np.round(np.log(max_t) / np.log(reduction_factor))) + 1)
        self._bands: list[list[_Bracket | None]] = [[]]
        self._cur: _Bracket | None = None
        self._where: dict[str, _Bracket] = {}  # live trial id -> its bracket
        self._trials: dict[str, Trial] = {}
        self._halved_out: set[str] = set()  # stopped by this scheduler (may still report)
        self._gone: set[str] = set()  # left their bracket (finished, errored, stopped)
        #: trials this hook call stopped (besides its own trial): handed out by _outcome
        self._stops: list[str] = []
        self._num_stopped = 0

    @property
    def _metric_op(self) -> float | None:
        return {"max": 1.0, "min": -1.0}.get(self._mode or "")

    def _get_n0(self, s: int) -> int:
        return int(np.ceil(self._s_max_1 / (s + 1) * self._eta**s))

    def _get_r0(self, s: int) -> float:
        return self._max_t_attr if s == 0 else int(self._max_t_attr * self._eta ** (-s))

    def _next_s(self, band_len: int) -> int:
        """The ``s`` of the next bracket of a band holding ``band_len`` brackets."""
        return band_len

    # ----------------------------------------------------------------- hooks
    def on_trial_add(self, trial: Trial) -> Outcome[None] | None:
        """Put ``trial`` in the current bracket, opening a new bracket (or band) when full.

        A restored trial that a halving stopped before the stop was carried out comes back
        with its :class:`StopTrial`; a restored finished one leaves its bracket, which may
        stop others."""
        self._stops = []
        self._add(trial)
        return self._outcome(None)

    def _outcome(self, value: T) -> T | Outcome[T]:
        """``value``, with the stops this hook call decided as its actions."""
        stops, self._stops = self._stops, []
        if not stops:
            return value
        return Outcome(value, tuple(StopTrial(tid) for tid in stops))

    def _add(self, trial: Trial) -> None:
        if not self._metric or self._metric_op is None:
            raise no_metric_mode(self, self._metric, self._mode, "scheduler")
        tid = trial.trial_id
        self._trials[tid] = trial
        if trial.is_finished():  # restored: a finished trial leaves its bracket
            if tid in self._where:
                self._leave(tid)
            return
        if tid in self._halved_out:  # restored before its stop was carried out: stop it
            if tid not in self._stops:
                self._stops.append(tid)
            return
        if tid in self._where:
            return
        self._gone.discard(tid)  # new, or an errored trial resumed after a restore
        if self._cur is None or self._cur.filled():
            while True:
                band = self._bands[-1]
                if len(band) >= self._s_max_1:
                    band = []
                    self._bands.append(band)
                s = self._next_s(len(band))
                if self._get_r0(s) == 0:
                    band.append(None)  # bracket too small for max_t: skip it (as Ray does)
                    continue
                self._cur = _Bracket(s=s, n=self._get_n0(s), r=self._get_r0(s),
                                     max_t=self._max_t_attr, eta=self._eta,
                                     stop_last_trials=self._stop_last_trials)
                band.append(self._cur)
                break
        self._cur.live[tid] = None
        self._cur.all_ids.append(tid)
        self._where[tid] = self._cur

    def on_trial_result(
        self, trial: Trial, result: dict[str, Any]
    ) -> Decision | Outcome[Decision]:
        self._stops = []
        return self._outcome(self._on_result(trial, result))

    def _on_result(self, trial: Trial, result: dict[str, Any]) -> SchedulerDecision:
        tid = trial.trial_id
        if tid in self._halved_out or tid in self._gone:
            return STOP
        if tid not in self._where:
            self._add(trial)
        if self._time_attr not in result or tid not in self._where:
            return CONTINUE
        bracket = self._where[tid]
        t = result[self._time_attr]
        bracket.update(tid, t, self._score(result))
        # trained to max_t: done. Also a trial the runner kept running because it could not
        # be paused (no checkpoint) while its bracket waited: none trains past max_t, as in
        # Ray (where it would restart from scratch)
        if bracket.stop_last_trials and t >= (bracket.r if bracket.halves == 0
                                              else self._max_t_attr):
            self._stop(bracket, tid, tid)
            self._process(bracket, None)
            return STOP
        if bracket.continue_trial(tid):
            return CONTINUE
        return self._at_milestone(bracket, tid)

    def _at_milestone(self, bracket: _Bracket, trial_id: str) -> SchedulerDecision:
        """``trial_id`` reached its bracket's milestone: pause it, or halve the bracket."""
        return self._process(bracket, trial_id)

    def on_trial_complete(self, trial: Trial, result: dict[str, Any]) -> Outcome[None] | None:
        self._stops = []
        self._leave(trial.trial_id)
        return self._outcome(None)

    def on_trial_error(self, trial: Trial) -> Outcome[None] | None:
        self._stops = []
        self._leave(trial.trial_id)
        return self._outcome(None)

    def on_trial_remove(self, trial: Trial) -> Outcome[None] | None:
        self._stops = []
        self._leave(trial.trial_id)
        return self._outcome(None)

    def should_checkpoint(self, trial: Trial, result: dict[str, Any]) -> bool:
        """Class trainables save when they reach a milestone at which they will pause."""
        bracket = self._where.get(trial.trial_id)
        if bracket is None or self._time_attr not in result or bracket.halves == 0:
            return False
        return result[self._time_attr] >= bracket.r

    def choose_trial_to_run(
        self, candidates: list[Trial]
    ) -> Trial | None | Outcome[Trial | None]:
        """A PENDING trial, or a PAUSED one free to go on (a survivor of a halving), taking
        brackets in order of completion within the oldest band first, as Ray does (the
        completion is computed with another total work than Ray's, so the order can differ
        from Ray's; see the module docstring).

        When none is free, brackets whose trials all wait are halved here (never hang): the
        choice then comes with the halving's :class:`StopTrial` actions."""
        self._stops = []
        return self._outcome(self._choose(candidates))

    def _choose(self, candidates: list[Trial]) -> Trial | None:
        by_id = {t.trial_id: t for t in candidates}
        trial = self._pick(by_id)
        if trial is None:  # never hang: halve any bracket whose trials all wait
            for band in self._bands:
                for bracket in band:
                    if bracket is not None and bracket.live and bracket.cur_iter_done():
                        self._process(bracket, None)
            trial = self._pick(by_id)
        return trial

    def debug_string(self) -> str:
        total = sum(len(band) for band in self._bands)
        out = f"Using HyperBand: num_stopped={self._num_stopped} total_brackets={total}"
        for i, band in enumerate(self._bands):
            out += f"\nRound #{i}:"
            for b in band:
                if b is None:
                    continue
                counts = collections.Counter(
                    str(self._trials[t].status) for t in b.all_ids if t in self._trials)
                statuses = ", ".join(sorted(f"{k}: {v}" for k, v in counts.items()))
                out += (f"\n  Bracket(Max Size (n)={b.n}, Milestone (r)={b.r}, "
                        f"completed={b.completion_percentage():.1%}): {{{statuses}}} ")
        return out

    def state(self) -> dict[str, int]:
        return {"num_brackets": sum(len(band) for band in self._bands),
                "num_stopped": self._num_stopped}

    def save_state(self) -> dict[str, Any]:
        index = {id(b): (i, j) for i, band in enumerate(self._bands)
                 for j, b in enumerate(band) if b is not None}
        return {
            "bands": [[None if b is None else asdict(b) for b in band] for band in self._bands],
            "cur": None if self._cur is None else index[id(self._cur)],
            "where": {tid: index[id(b)] for tid, b in self._where.items()},
            "halved_out": sorted(self._halved_out),
            "gone": sorted(self._gone),
            "num_stopped": self._num_stopped,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`save_state` (call before the trials are re-added)."""
        self._bands = [[None if b is None else _restore_bracket(b) for b in band]
                       for band in state["bands"]]
        cur = state["cur"]
        self._cur = None if cur is None else self._bands[cur[0]][cur[1]]
        self._where = {tid: self._bands[i][j] for tid, (i, j) in state["where"].items()}
        self._halved_out = set(state["halved_out"])
        self._gone = set(state["gone"])
        # states saved before stops were returned by the hooks may hold a "stops" list: those
        # trials are in `halved_out`, so on_trial_add stops them again when they are re-added
        self._stops = []
        self._num_stopped = state["num_stopped"]

    # ----------------------------------------------------------------- internals
    def _score(self, result: dict[str, Any]) -> float:
        value = result.get(self._metric or "")
        try:
            score = float(value) * (self._metric_op or 1.0)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return -math.inf
        return -math.inf if math.isnan(score) else score

    def _ordered(self, band: list[_Bracket | None]) -> list[_Bracket]:
        brackets = [b for b in band if b is not None]
        return sorted(brackets, key=lambda b: b.completion_percentage())

    def _pick(self, by_id: dict[str, Trial]) -> Trial | None:
        for band in self._bands:
            for bracket in self._ordered(band):
                for tid in bracket.live:
                    trial = by_id.get(tid)
                    if trial is None:
                        continue
                    if trial.status == TrialStatus.PENDING or (
                        trial.status == TrialStatus.PAUSED and bracket.continue_trial(tid)
                    ):
                        return trial
        for tid, trial in by_id.items():  # unknown to every bracket (should not happen)
            if tid not in self._where and tid not in self._halved_out and (
                trial.status == TrialStatus.PENDING
            ):
                return trial
        return None

    def _stop(self, bracket: _Bracket, trial_id: str, reporter: str | None) -> bool:
        """Stop ``trial_id`` for good; True if it is the reporter (its decision is STOP)."""
        self._where.pop(trial_id, None)
        bracket.live.pop(trial_id, None)
        self._halved_out.add(trial_id)
        self._gone.add(trial_id)
        if trial_id == reporter:
            return True
        self._stops.append(trial_id)
        return False

    def _leave(self, trial_id: str) -> None:
        """``trial_id`` left the experiment: drop it and re-examine its bracket."""
        bracket = self._where.pop(trial_id, None)
        if bracket is None:
            return
        self._gone.add(trial_id)
        bracket.live.pop(trial_id, None)
        self._process(bracket, None)

    def _process(self, bracket: _Bracket, reporter: str | None) -> SchedulerDecision:
        """Halve ``bracket`` while all its live trials wait at the milestone.

        Returns the decision for ``reporter`` (PAUSE while the bracket is incomplete).
        Other trials are stopped (collected for the hook's :class:`Outcome`) or freed to
        resume.
        """
        action = PAUSE
        while bracket.live and bracket.cur_iter_done():
            if bracket.finished():
                for tid in list(bracket.live):
                    action = STOP if self._stop(bracket, tid, reporter) else action
                return action
            if bracket.halves == 0:  # stop_last_trials=False: everyone trains on
                return CONTINUE
            good, bad = bracket.successive_halving()
            self._num_stopped += len(bad)
            for tid in bad:
                action = STOP if self._stop(bracket, tid, reporter) else action
            for tid in good:  # already past max_t (time_attr jumped): done
                if not bracket.continue_trial(tid) and bracket.halves == 0 and (
                        bracket.stop_last_trials):
                    action = STOP if self._stop(bracket, tid, reporter) else action
            if reporter in bracket.live and bracket.continue_trial(reporter):
                action = CONTINUE
        return action


def _restore_bracket(data: dict[str, Any]) -> _Bracket:
    data = dict(data)
    halves = data.pop("halves")
    bracket = _Bracket(**data)
    bracket.halves = halves
    return bracket
