"""``ray.tune.logger.mlflow``: :class:`~poptune.integration.mlflow.MLflowLoggerCallback`, at Ray's module path
(its package is imported when the callback is set up, not here)."""

from __future__ import annotations

from poptune.integration.mlflow import MLflowLoggerCallback

__all__ = ["MLflowLoggerCallback"]
