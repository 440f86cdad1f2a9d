"""Trial schedulers (``ray.tune.schedulers`` → ``poptune.schedulers``)."""

from poptune.schedulers._base import (
    Decision,
    Action,
    Exploit,
    Outcome,
    ResizeTrial,
    StopTrial,
    FIFOScheduler,
    SchedulerDecision,
    TrialScheduler,
)
from poptune.schedulers.async_hyperband import ASHAScheduler, AsyncHyperBandScheduler
from poptune.schedulers.hb_bohb import HyperBandForBOHB
from poptune.schedulers.hyperband import HyperBandScheduler
from poptune.schedulers.median_stopping_rule import MedianStoppingRule
from poptune.schedulers.pbt import PopulationBasedTraining, PopulationBasedTrainingReplay
from poptune.schedulers.resource_changing_scheduler import (
    DistributeResources,
    DistributeResourcesToTopJob,
    ResourceChangingScheduler,
)

__all__ = [
    "Decision",
    "Action",
    "Exploit",
    "Outcome",
    "ResizeTrial",
    "StopTrial",
    "FIFOScheduler",
    "SchedulerDecision",
    "TrialScheduler",
    "AsyncHyperBandScheduler",
    "ASHAScheduler",
    "HyperBandScheduler",
    "HyperBandForBOHB",
    "MedianStoppingRule",
    "PopulationBasedTraining",
    "PopulationBasedTrainingReplay",
    "ResourceChangingScheduler",
    "DistributeResources",
    "DistributeResourcesToTopJob",
    "PB2",
]


def __getattr__(name: str) -> object:
    # PB2 needs scikit-learn: import it only when asked for.
    if name == "PB2":
        from poptune.schedulers.pb2 import PB2

        return PB2
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
