"""Lazy imports of optional dependencies with the exact install command on failure."""

from __future__ import annotations

import importlib
import os
import sys
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


#: comet_ml's switch for its import-time patching of ML frameworks
COMET_AUTO_LOGGING_OFF = "COMET_DISABLE_AUTO_LOGGING"


def require(module: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise an error giving the pip command that installs it.

    A first import runs with ``COMET_DISABLE_AUTO_LOGGING=1`` unless comet_ml is already
    imported or the variable is set: comet_ml, imported on its own or by another library
    (tensorboardX imports it when installed), would otherwise patch every ML framework the
    driver imports later (an MLflow run in the driver then also became an offline Comet
    experiment in the working directory). The variable is unset again after the import.

    >>> require("json").__name__
    'json'
    """
    loaded = sys.modules.get(module)
    if loaded is not None:
        return loaded
    quiet = "comet_ml" not in sys.modules and COMET_AUTO_LOGGING_OFF not in os.environ
    if quiet:
        os.environ[COMET_AUTO_LOGGING_OFF] = "1"
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = EXTRAS.get(module.split(".")[0])
        hint = f"pip install 'poptune[{extra}]'" if extra else f"pip install {module}"
        what = f" for {purpose}" if purpose else ""
        raise MissingDependencyError(
            f"`{module}` is required{what} but is not installed; run: {hint}"
        ) from exc
    finally:
        if quiet:
            os.environ.pop(COMET_AUTO_LOGGING_OFF, None)
