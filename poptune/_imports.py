"""Lazy imports of optional dependencies with the exact install command on failure."""

from __future__ import annotations

import importlib
from types import ModuleType

from poptune.exceptions import TuneError

#: module name -> the extra that provides it
EXTRAS = {
    "torch": "torch",
    "sklearn": "pb2",
    "matplotlib": "plot",
    "ray": "ray",
    "dask": "dask",
    "distributed": "dask",
    "optuna": "optuna",
    "hyperopt": "hyperopt",
    "bayes_opt": "bayesopt",
    "nevergrad": "nevergrad",
    "ax": "ax",
    "tensorboardX": "tensorboard",
    "mlflow": "mlflow",
    "wandb": "wandb",
    "comet_ml": "comet",
    "aim": "aim",
    "zoopt": "zoopt",
    "starlette": "dashboard",
    "uvicorn": "dashboard",
    "keras": "keras",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "lightning": "lightning",
    "pytorch_lightning": "lightning",
    "s3fs": "s3",
    "gcsfs": "gcs",
}


class MissingDependencyError(TuneError, ImportError):
    """An optional dependency is needed but not installed."""


def require(module: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise an error giving the pip command that installs it.

    >>> require("json").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = EXTRAS.get(module.split(".")[0])
        hint = f"pip install 'poptune[{extra}]'" if extra else f"pip install {module}"
        what = f" for {purpose}" if purpose else ""
        raise MissingDependencyError(
            f"`{module}` is required{what} but is not installed; run: {hint}"
        ) from exc
