"""poptune's PBT with Syne Tune's scheduling. Syne Tune's PBT only stops a trial at
``max_t`` or exploits it, and starts an exploited trial (from its donor's checkpoint) before
any new random configuration. poptune's PBT pauses a trial to let one that trained less
catch up, and new trials have trained least: with endless new trials (``num_samples=-1``)
they would always go first and no trial would finish."""

from __future__ import annotations

from typing import Any

from poptune.experiment.trial import Trial
from poptune.schedulers import PopulationBasedTraining
from poptune.schedulers._base import SchedulerDecision


class SynePBT(PopulationBasedTraining):
    """:class:`~poptune.schedulers.PopulationBasedTraining` whose catch-up PAUSE is a
    CONTINUE, and which restarts exploited trials before it starts new ones."""

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> Any:
        decision = super().on_trial_result(trial, result)
        return SchedulerDecision.CONTINUE if decision is SchedulerDecision.PAUSE else decision

    def choose_trial_to_run(self, candidates: list[Trial]) -> Any:
        restarts = [t for t in candidates if getattr(t, "restore_path", None) is not None]
        return super().choose_trial_to_run(restarts or candidates)
