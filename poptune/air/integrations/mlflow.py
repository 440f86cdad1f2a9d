"""``ray.air.integrations.mlflow``: :mod:`poptune.integration.mlflow`'s
``MLflowLoggerCallback`` and ``setup_mlflow``.

Example:
    >>> from poptune.air.integrations.mlflow import MLflowLoggerCallback
    >>> from poptune.integration import mlflow
    >>> MLflowLoggerCallback is mlflow.MLflowLoggerCallback
    True
"""

from __future__ import annotations

from poptune.integration.mlflow import MLflowLoggerCallback, setup_mlflow

__all__ = ["MLflowLoggerCallback", "setup_mlflow"]
