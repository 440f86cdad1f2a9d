"""poptune: Population Based Training first hyperparameter tuning, with Ray Tune's API.

Swap the import and keep the script::

    import poptune as tune                                   # was: from ray import tune
    from poptune.schedulers import PopulationBasedTraining   # was: ray.tune.schedulers

Public names are imported on first use, so ``import poptune`` (done by every worker
process) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Callback": "poptune.callbacks",
    "Checkpoint": "poptune.checkpoint",
    "PlacementGroupFactory": "poptune.execution.placement_groups",
    "CheckpointConfig": "poptune.config",
    "FailureConfig": "poptune.config",
    "RunConfig": "poptune.config",
    "TuneConfig": "poptune.config",
    "TuneError": "poptune.exceptions",
    "Result": "poptune.results",
    "ResultGrid": "poptune.results",
    "Stopper": "poptune.stopper",
    "CombinedStopper": "poptune.stopper",
    "ExperimentPlateauStopper": "poptune.stopper",
    "FunctionStopper": "poptune.stopper",
    "MaximumIterationStopper": "poptune.stopper",
    "TimeoutStopper": "poptune.stopper",
    "TrialPlateauStopper": "poptune.stopper",
    "run": "poptune.legacy",
    "ExperimentAnalysis": "poptune.analysis",
    "checkpoint_dir": "poptune.session",
    "Trainable": "poptune.trainable",
    "with_parameters": "poptune.trainable",
    "with_resources": "poptune.trainable",
    "Tuner": "poptune.tuner",
    "TuneContext": "poptune.session",
    "get_checkpoint": "poptune.session",
    "get_context": "poptune.session",
    "report": "poptune.session",
    "choice": "poptune.search.sample",
    "grid_search": "poptune.search.sample",
    "lograndint": "poptune.search.sample",
    "loguniform": "poptune.search.sample",
    "qlograndint": "poptune.search.sample",
    "qloguniform": "poptune.search.sample",
    "qrandint": "poptune.search.sample",
    "qrandn": "poptune.search.sample",
    "quniform": "poptune.search.sample",
    "randint": "poptune.search.sample",
    "randn": "poptune.search.sample",
    "sample_from": "poptune.search.sample",
    "uniform": "poptune.search.sample",
    "init": "poptune._compat",
    "shutdown": "poptune._compat",
    "is_initialized": "poptune._compat",
    "put": "poptune._compat",
    "get": "poptune._compat",
    "get_gpu_ids": "poptune._compat",
    "script": "poptune.script_trial",
    "script_report": "poptune.script_reporter",
    "CLIReporter": "poptune.callbacks.progress",
    "JupyterNotebookReporter": "poptune.callbacks.progress",
    "ProgressReporter": "poptune.callbacks.progress",
    "Experiment": "poptune.experiment",
    "run_experiments": "poptune.legacy",
    "register_trainable": "poptune.registry",
    "register_env": "poptune.registry",
    "create_scheduler": "poptune.schedulers",
    "create_searcher": "poptune.search",
    "ResumeConfig": "poptune.config",
    "SyncConfig": "poptune.config",
}

__all__ = sorted(_EXPORTS)

# submodules reachable as attributes, like ``ray.tune.schedulers``
_SUBMODULES = {"schedulers", "search", "stopper", "callbacks", "results", "examples", "utils",
               "execution",
               "result", "analysis", "legacy", "lineage",
               "integration", "logger", "plot", "trainable", "backends", "exceptions",
               "registry", "callback", "experiment", "track", "train", "air", "suggest"}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    if name == "tune":  # `import poptune as ray` keeps `ray.tune.X` working
        import sys

        return sys.modules[__name__]
    if name in _SUBMODULES:
        return importlib.import_module(f"poptune.{name}")
    raise AttributeError(f"module 'poptune' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | _SUBMODULES)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from poptune.analysis import ExperimentAnalysis
    from poptune.callbacks import Callback
    from poptune.checkpoint import Checkpoint
    from poptune.config import CheckpointConfig, FailureConfig, RunConfig, TuneConfig
    from poptune.exceptions import TuneError
    from poptune.execution.placement_groups import PlacementGroupFactory
    from poptune.legacy import run
    from poptune.results import Result, ResultGrid
    from poptune.search.sample import (
        choice, grid_search, lograndint, loguniform, qlograndint, qloguniform, qrandint, qrandn,
        quniform, randint, randn, sample_from, uniform,
    )
    from poptune.session import TuneContext, checkpoint_dir, get_checkpoint, get_context, report
    from poptune.stopper import (
        CombinedStopper, ExperimentPlateauStopper, FunctionStopper, MaximumIterationStopper,
        Stopper, TimeoutStopper, TrialPlateauStopper,
    )
    from poptune.trainable import Trainable, with_parameters, with_resources
    from poptune.tuner import Tuner
    from poptune.script_trial import script
    from poptune.script_reporter import script_report
    from poptune.callbacks.progress import CLIReporter, JupyterNotebookReporter, ProgressReporter
    from poptune.config import ResumeConfig, SyncConfig
    from poptune.experiment import Experiment
    from poptune.legacy import run_experiments
    from poptune.registry import register_env, register_trainable
    from poptune.schedulers import create_scheduler
    from poptune.search import create_searcher
