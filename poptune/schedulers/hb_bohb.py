"""HyperBand for BOHB (``ray.tune.schedulers.HyperBandForBOHB``).

The HyperBand variant BOHB runs with (use it with :class:`~poptune.search.bohb.TuneBOHB`):

1. a band's brackets are opened largest first (``s = s_max, s_max - 1, ..., 0``), so the
   searcher sees many cheap evaluations before it spends large budgets;
2. a trial reaching its bracket's milestone is PAUSED even while the bracket is still
   filling, so its slot goes to a new trial suggested by a model that has seen the results
   so far. The bracket is halved once it is full and all its trials reached the milestone,
   or when nothing else can run (no pending trial, nothing running): then an incomplete
   bracket is halved with the trials it has. Every waiting bracket is halved at once (Ray
   halves them in band order and stops at the first that frees a trial), so trials may run
   in another order than in Ray; each ends the same.

How results reach the searcher: poptune's runner hands each result to the searcher as it
arrives, and :class:`~poptune.search.bohb.TuneBOHB` files every result under its budget
(``training_iteration`` by default), which includes each milestone. Ray instead writes
``result["hyperband_info"]["budget"]`` into the result and calls ``searcher.on_pause`` /
``on_unpause`` through the runner; poptune's schedulers never touch the runner or mutate
results (a result is being written to disk by another thread at that moment). TuneBOHB
still honours ``hyperband_info`` when a result carries it.

Everything else (bracket sizes, milestones, the halving, stopping at ``max_t``, never
hanging when a trial errors) is :class:`~poptune.schedulers.hyperband.HyperBandScheduler`'s.
"""

from __future__ import annotations

from poptune.experiment.trial import Trial, TrialStatus
from poptune.schedulers._base import SchedulerDecision
from poptune.schedulers.hyperband import HyperBandScheduler, _Bracket

__all__ = ["HyperBandForBOHB"]


class HyperBandForBOHB(HyperBandScheduler):
    """HyperBand for BOHB: largest bracket first, and trials pause while brackets fill.

    Takes :class:`~poptune.schedulers.HyperBandScheduler`'s arguments (``time_attr``,
    ``metric``, ``mode``, ``max_t=81``, ``reduction_factor=3``, ``stop_last_trials=True``).

    Example:
        >>> from poptune.experiment.trial import Trial
        >>> hb = HyperBandForBOHB(metric="loss", mode="min", max_t=9, reduction_factor=3)
        >>> first = Trial("t0", "f", {})
        >>> hb.on_trial_add(first)  # joins bracket s = s_max = 2: 9 trials, milestone 1
        >>> hb.on_trial_result(first, {"training_iteration": 1, "loss": 0.5}).value
        'PAUSE'
    """

    def _next_s(self, band_len: int) -> int:
        return self._s_max_1 - band_len - 1

    def _at_milestone(self, bracket: _Bracket, trial_id: str) -> SchedulerDecision:
        if not bracket.filled() or not bracket.cur_iter_done():
            return SchedulerDecision.PAUSE  # let the searcher fill the bracket meanwhile
        return self._process(bracket, trial_id)

    def _ordered(self, band: list[_Bracket | None]) -> list[_Bracket]:
        return [b for b in band if b is not None]  # bracket order, not completion order

    def _choose(self, candidates: list[Trial]) -> Trial | None:
        """A PENDING trial or a freed PAUSED one; when there is none and no trial of this
        scheduler runs, halve the brackets whose trials all wait (even if not full): their
        stops come back as :class:`~poptune.schedulers.StopTrial` actions of
        :meth:`choose_trial_to_run`'s :class:`~poptune.schedulers.Outcome`."""
        by_id = {t.trial_id: t for t in candidates}
        trial = self._pick(by_id)
        if trial is not None:
            return trial
        running = any(
            self._trials[tid].status == TrialStatus.RUNNING
            for tid in self._where if tid in self._trials
        )
        if running:
            return None
        for band in self._bands:
            for bracket in band:
                if bracket is not None and bracket.live:
                    self._process(bracket, None)
        return self._pick(by_id)
