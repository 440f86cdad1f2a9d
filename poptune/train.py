"""``ray.train``'s names as Ray Tune scripts of Ray 2.7–2.40 use them.

Those scripts start with ``from ray import train, tune``, report from the trainable with
``train.report(...)``, resume with ``train.get_checkpoint()`` and configure the run with
``train.RunConfig``/``train.CheckpointConfig``/``train.Checkpoint``. After the import swap
(``from poptune import train, tune``) they run unchanged:

- ``report``, ``get_checkpoint`` and ``get_context`` are :func:`poptune.report`,
  :func:`poptune.get_checkpoint` and :func:`poptune.get_context`, with the warning Ray gave
  inside a trial before it made this an error (a ``FutureWarning``: use the ``tune`` names).
  Ray 2.60 raises ``DeprecationWarning`` there instead, failing the trial; poptune keeps both
  spellings.
- ``RunConfig``, ``CheckpointConfig``, ``FailureConfig``, ``SyncConfig``, ``Checkpoint`` and
  ``Result`` are poptune's own classes; ``TrainContext`` is :class:`poptune.TuneContext`.

Ray Train's own names (``ScalingConfig``, ``get_dataset_shard``, ...) can be imported, so a
script that imports them but tunes a plain trainable runs; using one raises a
:class:`~poptune.TuneError` saying that poptune has no Ray Train. Its errors
(``TrainingFailedError``, ...) are exception classes that nothing raises, so ``except``
clauses naming them stay valid.

Example:
    >>> from poptune import train, tune
    >>> def trainable(config):
    ...     for step in range(3):
    ...         train.report({"loss": config["lr"] / (step + 1)})  # as tune.report
    >>> train.RunConfig is tune.RunConfig
    True
    >>> train.ScalingConfig(num_workers=2)
    Traceback (most recent call last):
    ...
    poptune.exceptions.TuneError: `train.ScalingConfig` is Ray Train's (distributed trainers and their data), which poptune does not have; a Tune trainable needs none of it. A trial's resources: `tune.with_resources(trainable, {"cpu": 2, "gpu": 1})`
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any, NoReturn

from poptune import session
from poptune.checkpoint import Checkpoint
from poptune.exceptions import TuneError
from poptune.session import TuneContext as TrainContext

if TYPE_CHECKING:  # pragma: no cover - imported on first use (workers import this module)
    from poptune.config import CheckpointConfig, FailureConfig, RunConfig, SyncConfig
    from poptune.results import Result

__all__ = ["Checkpoint", "CheckpointConfig", "FailureConfig", "Result", "RunConfig",
           "SyncConfig", "TrainContext", "get_checkpoint", "get_context", "report"]


class RayTrainOnly:
    """A stand-in for one of Ray Train's names (``ScalingConfig``, ``get_dataset_shard``,
    ...): it can be imported, and calling it raises :class:`~poptune.TuneError` saying why
    there is none.

    Example:
        >>> get_dataset_shard = RayTrainOnly("session.get_dataset_shard")
        >>> get_dataset_shard("train")
        Traceback (most recent call last):
        ...
        poptune.exceptions.TuneError: `session.get_dataset_shard` is Ray Train's (distributed trainers and their data), which poptune does not have; a Tune trainable needs none of it
    """

    def __init__(self, name: str, hint: str = "") -> None:
        self.name, self.hint = name, hint

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TuneError(f"`{self.name}` is Ray Train's (distributed trainers and their data), "
                        "which poptune does not have; a Tune trainable needs none of it"
                        + (f". {self.hint}" if self.hint else ""))

    def __repr__(self) -> str:
        return f"<{self.name}: Ray Train's, not in poptune>"


#: what a Tune script that reaches for ``ScalingConfig`` wants instead
RESOURCES_HINT = 'A trial\'s resources: `tune.with_resources(trainable, {"cpu": 2, "gpu": 1})`'


def stand_ins(prefix: str, names: list[str]) -> dict[str, RayTrainOnly]:
    """A :class:`RayTrainOnly` for each of ``names``, named ``<prefix>.<name>``."""
    return {name: RayTrainOnly(f"{prefix}.{name}",
                               RESOURCES_HINT if name == "ScalingConfig" else "")
            for name in names}


#: Ray 2.60's ``ray.train`` names that belong to Ray Train alone (its trainers, data
#: sharding, worker groups)
globals().update(stand_ins("train", [
    "BackendConfig", "CheckpointConsistencyMode", "CheckpointUploadMode", "DataConfig",
    "LoggingConfig", "MLflowLoggerCallback", "PreemptionInfo", "ReportedCheckpoint",
    "ReportedCheckpointStatus", "ScalingConfig", "TRAIN_DATASET_KEY", "UserCallback",
    "ValidationConfig", "ValidationFn", "ValidationTaskConfig", "get_all_reported_checkpoints",
    "get_dataset_shard", "get_preemption_info"]))


class TrainingFailedError(TuneError):
    """Ray Train's error for a failed ``Trainer.fit()``; poptune never raises it (there is no
    Ray Train), but ``except train.TrainingFailedError:`` stays valid."""


#: Ray Train V2's errors, for ``except`` clauses likewise (never raised)
ControllerError = NCCLHangError = PreemptionError = WorkerGroupError = TrainingFailedError


def use_tune_instead(call: str, name: str, ray_260: str) -> None:
    """Inside a trial, warn that ``call`` (e.g. ``train.report``) is ``tune.<name>``'s old
    spelling; ``ray_260`` says what Ray 2.60 does there. Python shows the warning once per
    calling line."""
    if session.current_session() is not None:
        warnings.warn(f"`{call}` should be switched to `tune.{name}` when running in a "
                      f"function passed to Tune ({ray_260})", FutureWarning, stacklevel=3)


def _use_tune_instead(name: str) -> None:
    use_tune_instead(f"train.{name}", name, f"Ray 2.60 raises here; poptune runs `tune.{name}`")


def report(metrics: dict[str, Any] | None = None, *, checkpoint: Checkpoint | None = None,
           checkpoint_dir_name: str | None = None) -> None:
    """:func:`poptune.report` (warns inside a trial: use ``tune.report``).
    ``checkpoint_dir_name`` is Ray Train V2's and ignored, as Ray's Tune ignores it: the
    checkpoint is named ``checkpoint_NNNNNN``."""
    _use_tune_instead("report")
    session.report(metrics, checkpoint=checkpoint)


def get_checkpoint() -> Checkpoint | None:
    """:func:`poptune.get_checkpoint` (warns inside a trial: use ``tune.get_checkpoint``)."""
    _use_tune_instead("get_checkpoint")
    return session.get_checkpoint()


def get_context() -> TrainContext:
    """:func:`poptune.get_context` (warns inside a trial: use ``tune.get_context``)."""
    _use_tune_instead("get_context")
    return session.get_context()


#: names imported on first use: a worker that unpickles a trainable referring to this module
#: does not import the results and configuration modules
_LAZY = {"CheckpointConfig": "poptune.config", "FailureConfig": "poptune.config",
         "RunConfig": "poptune.config", "SyncConfig": "poptune.config",
         "Result": "poptune.results"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'poptune.train' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
