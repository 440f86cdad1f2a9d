"""Per-trial loggers with Ray Tune's names (``ray.tune.logger`` → ``poptune.logger``).

- :class:`LoggerCallback`: the base class; override ``log_trial_start``,
  ``log_trial_restore``, ``log_trial_save``, ``log_trial_result`` and ``log_trial_end``.
- :class:`CSVLoggerCallback` / :class:`JsonLoggerCallback`: ``progress.csv`` /
  ``result.json`` in each trial directory. The engine writes both by default
  (``RunConfig(log_sinks=...)`` switches them); passing one of these callbacks replaces the
  engine's writer for that file.
- :func:`pretty_print`: a result dict as YAML text, as Ray prints it.
- :class:`TBXLoggerCallback`: TensorBoard event files with scalars and hyperparameters
  (needs ``pip install 'poptune[tensorboard]'``; imported on first use).
- In their own modules, as in Ray: :mod:`poptune.logger.aim` (``AimLoggerCallback``) and
  :mod:`poptune.logger.comet` (``CometLoggerCallback``).

Example::

    from poptune.logger import TBXLoggerCallback
    tune.Tuner(train, run_config=tune.RunConfig(callbacks=[TBXLoggerCallback()])).fit()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from poptune.logger._base import CSVLoggerCallback, JsonLoggerCallback, LoggerCallback
from poptune.logger._pretty import pretty_print

if TYPE_CHECKING:
    from poptune.logger.tensorboardx import TBXLoggerCallback

__all__ = ["LoggerCallback", "CSVLoggerCallback", "JsonLoggerCallback", "TBXLoggerCallback",
           "pretty_print"]


def __getattr__(name: str) -> Any:
    if name == "TBXLoggerCallback":
        return importlib.import_module("poptune.logger.tensorboardx").TBXLoggerCallback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
