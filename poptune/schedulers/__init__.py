"""Trial schedulers (``ray.tune.schedulers`` → ``poptune.schedulers``).

Example:
    >>> create_scheduler("asha", metric="loss", mode="min", max_t=10).__class__.__name__
    'AsyncHyperBandScheduler'
"""

from __future__ import annotations

from typing import Any

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
from poptune.schedulers.promotion_asha import PromotionASHAScheduler
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
    "PromotionASHAScheduler",
    "HyperBandScheduler",
    "HyperBandForBOHB",
    "MedianStoppingRule",
    "PopulationBasedTraining",
    "PopulationBasedTrainingReplay",
    "ResourceChangingScheduler",
    "DistributeResources",
    "DistributeResourcesToTopJob",
    "PB2",
    "SCHEDULER_IMPORT",
    "create_scheduler",
]

#: ``create_scheduler`` names (Ray's, plus ``"asha"`` and ``"asha_promotion"``) -> class name
#: in this package
SCHEDULER_IMPORT: dict[str, str] = {
    "fifo": "FIFOScheduler",
    "async_hyperband": "AsyncHyperBandScheduler",
    "asynchyperband": "AsyncHyperBandScheduler",
    "asha": "ASHAScheduler",
    "asha_promotion": "PromotionASHAScheduler",
    "median_stopping_rule": "MedianStoppingRule",
    "medianstopping": "MedianStoppingRule",
    "hyperband": "HyperBandScheduler",
    "hb_bohb": "HyperBandForBOHB",
    "pbt": "PopulationBasedTraining",
    "pbt_replay": "PopulationBasedTrainingReplay",
    "pb2": "PB2",
    "resource_changing": "ResourceChangingScheduler",
}


def create_scheduler(scheduler: str, **kwargs: Any) -> TrialScheduler:
    """A scheduler by name, as Ray Tune's ``tune.create_scheduler``.

    ``kwargs`` are passed to the class's constructor, keeping only the ones it accepts (as
    Ray does, so one set of keywords can be tried with several schedulers).

    Args:
        scheduler: one of the keys of :data:`SCHEDULER_IMPORT` (case-insensitive):
            ``"fifo"``, ``"async_hyperband"``/``"asha"``, ``"asha_promotion"``,
            ``"median_stopping_rule"``, ``"hyperband"``, ``"hb_bohb"``, ``"pbt"``,
            ``"pbt_replay"``, ``"pb2"``, ``"resource_changing"``.

    Raises:
        TuneConfigError (a ``ValueError``): an unknown name.
    """
    from poptune.registry import construct_accepting

    name = scheduler.lower() if isinstance(scheduler, str) else scheduler
    if name not in SCHEDULER_IMPORT:
        from poptune._validation import bad_value

        raise bad_value("scheduler", scheduler,
                        "one of " + ", ".join(repr(k) for k in SCHEDULER_IMPORT))
    cls = globals().get(SCHEDULER_IMPORT[name]) or __getattr__(SCHEDULER_IMPORT[name])
    return construct_accepting(cls, kwargs)  # type: ignore[no-any-return]


def __getattr__(name: str) -> object:
    # PB2 needs scikit-learn: import it only when asked for.
    if name == "PB2":
        from poptune.schedulers.pb2 import PB2

        return PB2
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
