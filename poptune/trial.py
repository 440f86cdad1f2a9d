"""``ray.tune.trial``: Ray 1.x's path of :class:`~poptune.experiment.Trial` (``from
ray.tune.trial import Trial`` in callbacks and reporters of that time).

Example:
    >>> from poptune.trial import Trial
    >>> from poptune.experiment import Trial as same
    >>> Trial is same
    True
"""

from __future__ import annotations

from poptune.experiment.trial import Trial

__all__ = ["Trial"]
