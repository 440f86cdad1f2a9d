"""``ray.air.config``: the run's configuration classes, poptune's own (see :mod:`poptune.air`).

Example:
    >>> from poptune.air.config import RunConfig
    >>> import poptune as tune
    >>> RunConfig is tune.RunConfig
    True
"""

from __future__ import annotations

from poptune.config import CheckpointConfig, FailureConfig, RunConfig
from poptune.train import stand_ins

__all__ = ["CheckpointConfig", "FailureConfig", "RunConfig"]

globals().update(stand_ins("air.config", ["ScalingConfig"]))
