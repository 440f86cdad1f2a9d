"""``ray.tune.logger.wandb``: :class:`~poptune.integration.wandb.WandbLoggerCallback`, at Ray's module path
(its package is imported when the callback is set up, not here)."""

from __future__ import annotations

from poptune.integration.wandb import WandbLoggerCallback

__all__ = ["WandbLoggerCallback"]
