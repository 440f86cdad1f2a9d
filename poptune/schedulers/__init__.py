"""Trial schedulers (``ray.tune.schedulers`` → ``poptune.schedulers``)."""

from poptune.schedulers._base import (
    Decision,
    Exploit,
    FIFOScheduler,
    SchedulerDecision,
    TrialScheduler,
)

__all__ = ["Decision", "Exploit", "FIFOScheduler", "SchedulerDecision", "TrialScheduler"]
