"""``ray.tune.schedulers.trial_scheduler``: the scheduler base classes, at Ray's module path for
scripts that import from it.

Example:
    >>> from poptune.schedulers.trial_scheduler import FIFOScheduler
    >>> from poptune.schedulers import FIFOScheduler as same
    >>> FIFOScheduler is same
    True
"""

from __future__ import annotations

from poptune.schedulers import FIFOScheduler, TrialScheduler

__all__ = ["FIFOScheduler", "TrialScheduler"]
