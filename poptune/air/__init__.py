"""``ray.air``'s names as Ray Tune scripts of Ray 2.0–2.6 use them (Ray 2.60 still has them).

``from ray.air import session`` then ``session.report(metrics)``, and
``from ray.air import RunConfig`` / ``from ray.air.config import CheckpointConfig``, run after
the import swap (``from poptune.air import session``). :mod:`poptune.air.session` warns where
Ray 2.60 warns (``report`` and ``get_checkpoint``: use the ``tune`` names).
``ray.air.integrations.mlflow``, ``.wandb``, ``.comet`` and ``.keras`` are
:mod:`poptune.air.integrations.mlflow`, ``.wandb``, ``.comet`` and ``.keras``.

AIR's names for Ray Train and Ray Data (``ScalingConfig``, ``DataBatchType``,
``ResourceRequest``, ``AcquiredResources``) can be imported; using one raises a
:class:`~poptune.TuneError` saying that poptune has no Ray Train.

Example:
    >>> from poptune.air import session, RunConfig
    >>> import poptune as tune
    >>> RunConfig is tune.RunConfig
    True
    >>> def trainable(config):
    ...     session.report({"loss": config["lr"]})  # as tune.report
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from poptune.train import stand_ins

if TYPE_CHECKING:  # pragma: no cover - imported on first use (workers import this module)
    from poptune.config import CheckpointConfig, FailureConfig, RunConfig
    from poptune.results import Result

__all__ = ["CheckpointConfig", "FailureConfig", "Result", "RunConfig"]

globals().update(stand_ins("air", ["ScalingConfig", "DataBatchType", "AcquiredResources",
                                   "ResourceRequest"]))

_SUBMODULES = {"session", "config", "result", "integrations"}
_LAZY = {"CheckpointConfig": "poptune.config", "FailureConfig": "poptune.config",
         "RunConfig": "poptune.config", "Result": "poptune.results"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"poptune.air.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'poptune.air' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)
