"""``ray.air.integrations.wandb``: :mod:`poptune.integration.wandb`'s ``WandbLoggerCallback``
and ``setup_wandb``.

Example:
    >>> from poptune.air.integrations.wandb import WandbLoggerCallback
    >>> from poptune.integration import wandb
    >>> WandbLoggerCallback is wandb.WandbLoggerCallback
    True
"""

from __future__ import annotations

from poptune.integration.wandb import WandbLoggerCallback, setup_wandb

__all__ = ["WandbLoggerCallback", "setup_wandb"]
