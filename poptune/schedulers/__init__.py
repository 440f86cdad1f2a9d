"""Trial schedulers (``ray.tune.schedulers`` → ``poptune.schedulers``)."""

from poptune.schedulers._base import (
    Decision,
    Exploit,
    FIFOScheduler,
    SchedulerDecision,
    TrialScheduler,
)
from poptune.schedulers.pbt import PopulationBasedTraining, PopulationBasedTrainingReplay

__all__ = [
    "Decision",
    "Exploit",
    "FIFOScheduler",
    "SchedulerDecision",
    "TrialScheduler",
    "PopulationBasedTraining",
    "PopulationBasedTrainingReplay",
    "PB2",
]


def __getattr__(name: str) -> object:
    # PB2 needs scikit-learn: import it only when asked for.
    if name == "PB2":
        from poptune.schedulers.pb2 import PB2

        return PB2
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
