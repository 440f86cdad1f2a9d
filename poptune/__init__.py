"""poptune: Population Based Training first hyperparameter tuning, with Ray Tune's API.

Swap the import and keep the script::

    import poptune as tune                                   # was: from ray import tune
    from poptune.schedulers import PopulationBasedTraining   # was: ray.tune.schedulers
"""

from __future__ import annotations

from poptune.callbacks import Callback
from poptune.checkpoint import Checkpoint
from poptune.config import CheckpointConfig, FailureConfig, RunConfig, TuneConfig
from poptune.exceptions import TuneError
from poptune.results import Result, ResultGrid
from poptune.search.sample import (
    choice,
    grid_search,
    lograndint,
    loguniform,
    qlograndint,
    qloguniform,
    qrandint,
    qrandn,
    quniform,
    randint,
    randn,
    sample_from,
    uniform,
)
from poptune.session import TuneContext, get_checkpoint, get_context, report
from poptune.stopper import Stopper
from poptune.trainable import Trainable, with_parameters, with_resources
from poptune.tuner import Tuner

__version__ = "0.1.0"

__all__ = [
    "Callback",
    "Checkpoint",
    "CheckpointConfig",
    "FailureConfig",
    "Result",
    "ResultGrid",
    "RunConfig",
    "Stopper",
    "Trainable",
    "TuneConfig",
    "TuneContext",
    "TuneError",
    "Tuner",
    "choice",
    "get_checkpoint",
    "get_context",
    "grid_search",
    "lograndint",
    "loguniform",
    "qlograndint",
    "qloguniform",
    "qrandint",
    "qrandn",
    "quniform",
    "randint",
    "randn",
    "report",
    "sample_from",
    "uniform",
    "with_parameters",
    "with_resources",
]
