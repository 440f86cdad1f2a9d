"""Exceptions raised by poptune.

Hierarchy::

    TuneError                     root of everything poptune raises on purpose
    ├── TuneConfigError           bad user input (also a ValueError)
    ├── ResourceError             a trial asks for resources no worker can ever offer
    ├── TrialError                a trial failed; ``__cause__`` carries the trial's error
    │   └── WorkerLostError       the process running a trial died (e.g. SIGKILL)
    ├── ScriptError               a script trial (``poptune.script``) crashed, printed a bad
    │                             metric line or reported nothing
    ├── StorageError              the experiment directory cannot be read or written
    ├── MetricTypeError           a metric to rank trials by was reported, but not as a number
    │                             (also a TypeError and, as Ray's "No best trial found", a
    │                             RuntimeError)
    ├── ExperimentLockedError     another live driver runs the experiment (or took it over)
    └── RestoreError              an experiment directory cannot be restored

Control flow inside a trial process (not errors):

    TrialStopped                  raised by ``tune.report`` when the driver stops the trial
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "TuneError",
    "TuneConfigError",
    "TuneConfigTypeError",
    "ResourceError",
    "TrialError",
    "WorkerLostError",
    "StorageError",
    "ExperimentLockedError",
    "RestoreError",
    "TrialStopped",
    "ScriptError",
    "MetricTypeError",
]


class TuneError(Exception):
    """Root of every error poptune raises on purpose."""


class TuneConfigError(TuneError, ValueError):
    """A parameter has a value poptune cannot accept."""


class TuneConfigTypeError(TuneConfigError, TypeError):
    """A parameter has a type poptune cannot accept: a ``TypeError`` that is also the
    ``ValueError`` Ray raises for it (e.g. a ``stop`` that is neither a dict, a callable nor a
    Stopper)."""


class ResourceError(TuneError, ValueError):
    """A trial requests resources that no worker can ever provide."""


class TrialError(TuneError):
    """A trial raised an exception or its process died."""


class WorkerLostError(TrialError):
    """The worker process running a trial exited unexpectedly."""


class ScriptError(TuneError):
    """A script trial's command failed: nonzero exit, a bad metric line, or no metric at all."""


class StorageError(TuneError, OSError):
    """The experiment storage cannot be read or written."""


class MetricTypeError(TuneError, TypeError, RuntimeError):
    """``get_best_result`` was asked to rank by a metric reported as a non-number.

    Ray Tune raises ``RuntimeError("No best trial found ...")`` there; this names the value,
    and code catching either ``RuntimeError`` or ``TypeError`` catches it.
    """


class ExperimentLockedError(TuneError):
    """Another driver holds the experiment (``path``); ``holder`` names it when known."""

    def __init__(self, message: str, *, path: str | None = None, holder: Any = None) -> None:
        super().__init__(message)
        self.path = path
        #: a :class:`poptune.storage.lock.Holder` (host, pid, since, version) or None
        self.holder = holder


class RestoreError(TuneError):
    """An experiment cannot be restored from the given path."""


class TrialStopped(BaseException):
    """Raised inside a trial by ``tune.report`` when the driver stops or pauses it.

    It derives from ``BaseException`` so that a user's ``except Exception`` does not swallow it.
    """
