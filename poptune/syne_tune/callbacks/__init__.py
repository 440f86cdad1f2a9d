"""Syne Tune's ``syne_tune.callbacks``: :class:`TensorboardCallback`.

Example:
    >>> from poptune.syne_tune.callbacks import TensorboardCallback
    >>> TensorboardCallback(target_metric="loss", mode="min").metric_sign
    1
"""

from __future__ import annotations

from poptune.syne_tune.callbacks.tensorboard_callback import TensorboardCallback

__all__ = ["TensorboardCallback"]
