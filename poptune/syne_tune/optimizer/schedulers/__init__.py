"""Syne Tune's ``syne_tune.optimizer.schedulers`` (the d2l era to 0.13; 0.14 named them
``LegacyFIFOScheduler`` / ``LegacyHyperbandScheduler``, 0.15 dropped them):
``FIFOScheduler`` and ``HyperbandScheduler`` with a searcher by name, on poptune's searchers
and ASHA, and ``MedianStoppingRule`` (all releases; 0.14: ``LegacyMedianStoppingRule``)
around a searching scheduler. See :mod:`.fifo`, :mod:`.hyperband` and
:mod:`.median_stopping_rule`.

Example:
    >>> from poptune.syne_tune.config_space import uniform
    >>> s = HyperbandScheduler({"x": uniform(0, 1), "epochs": 9}, metric="loss", mode="min",
    ...                        resource_attr="epoch", type="stopping")
    >>> s.time_attr, s.max_t, s.grace_period, s.reduction_factor
    ('epoch', 9, 1, 3)
"""

from __future__ import annotations

from poptune.syne_tune.optimizer.baselines import PopulationBasedTraining
from poptune.syne_tune.optimizer.schedulers.fifo import FIFOScheduler
from poptune.syne_tune.optimizer.schedulers.hyperband import HyperbandScheduler
from poptune.syne_tune.optimizer.schedulers.median_stopping_rule import MedianStoppingRule

#: syne_tune 0.14's names
LegacyFIFOScheduler = FIFOScheduler
LegacyHyperbandScheduler = HyperbandScheduler
LegacyMedianStoppingRule = MedianStoppingRule

__all__ = ["FIFOScheduler", "HyperbandScheduler", "LegacyFIFOScheduler",
           "LegacyHyperbandScheduler", "LegacyMedianStoppingRule", "MedianStoppingRule",
           "PopulationBasedTraining"]
