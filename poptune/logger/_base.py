"""``LoggerCallback`` (Ray's per-trial logging interface) and the CSV / JSON result loggers.

A :class:`LoggerCallback` turns the runner's :class:`~poptune.callbacks.Callback` hooks into
five per-trial calls:

=====================  ===========================================
Callback hook          LoggerCallback method
=====================  ===========================================
``on_trial_start``     ``log_trial_start(trial)``
``on_trial_restore``   ``log_trial_restore(trial)``
``on_trial_save``      ``log_trial_save(trial)``
``on_trial_result``    ``log_trial_result(iteration, trial, result)``
``on_trial_complete``  ``log_trial_end(trial, failed=False)``
``on_trial_error``     ``log_trial_end(trial, failed=True)``
=====================  ===========================================

``on_trial_start`` fires at every launch (also after a pause, a PBT exploit or a retry); a
failed trial about to be retried gets ``on_trial_recover``, which, as in Ray, has no
``LoggerCallback`` method: its files stay open for the retry. An implementation opens
what it needs lazily and releases it in ``log_trial_end`` so that a 50,000-trial run holds
files only for the trials that are running.

Example:
    >>> class PrintLogger(LoggerCallback):
    ...     def log_trial_result(self, iteration, trial, result):
    ...         print(trial, result["training_iteration"])
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from poptune.callbacks._base import Callback
from poptune.storage.trial_logs import TrialLogWriter

if TYPE_CHECKING:
    from poptune.experiment.trial import Trial

__all__ = ["LoggerCallback", "CSVLoggerCallback", "JsonLoggerCallback"]


class LoggerCallback(Callback):
    """Base class for experiment-level loggers (``RunConfig(callbacks=[...])``).

    Override any of the ``log_*`` methods; each does nothing by default. Close files and
    writers in :meth:`log_trial_end`.
    """

    def log_trial_start(self, trial: Trial) -> None:
        """A trial was launched (first start, resume after a pause or an exploit, retry)."""

    def log_trial_restore(self, trial: Trial) -> None:
        """A trial was launched from a checkpoint (after ``log_trial_start``)."""

    def log_trial_save(self, trial: Trial) -> None:
        """A trial's checkpoint was persisted (``trial.checkpoint_path``)."""

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        """A trial reported ``result`` (with ``config`` and the auto-filled keys).

        Args:
            iteration: the runner loop's pass count when the result arrived.
            trial: the reporting trial.
            result: the result dict, as written to ``result.json``.
        """

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        """A trial finished (``failed=False``) or errored (``failed=True``)."""

    # Callback hooks -> log_* -------------------------------------------------------------
    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self.log_trial_start(trial)

    def on_trial_restore(self, iteration: int, trials: list[Trial], trial: Trial,
                         **info: Any) -> None:
        self.log_trial_restore(trial)

    def on_trial_save(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self.log_trial_save(trial)

    def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial,
                        result: dict[str, Any], **info: Any) -> None:
        self.log_trial_result(iteration, trial, result)

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial,
                          **info: Any) -> None:
        self.log_trial_end(trial, failed=False)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self.log_trial_end(trial, failed=True)


class _TrialFileLogger(LoggerCallback):
    """Shared body of the CSV and JSON loggers: one :class:`TrialLogWriter` per open trial."""

    #: the engine's own writer for this file is switched off when this callback is given
    _poptune_sink = ""
    #: it writes files of its own and reads none: the runner need not wait for the trial
    #: files before its ``on_trial_complete``
    _reads_no_files = True

    def __init__(self) -> None:
        self._writers: dict[str, TrialLogWriter] = {}

    def _open(self, trial: Trial) -> TrialLogWriter:
        os.makedirs(trial.local_path, exist_ok=True)
        writer = TrialLogWriter(trial.local_path, write_json=self._poptune_sink == "json",
                                write_csv=self._poptune_sink == "csv")
        self._writers[trial.trial_id] = writer
        return writer

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        writer = self._writers.get(trial.trial_id) or self._open(trial)
        writer.write(result)
        # flushed at once, as Ray does: a retry's rollback may truncate the file right after
        writer.flush()

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        writer = self._writers.pop(trial.trial_id, None)
        if writer is not None:
            writer.close()

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    @property
    def open_files(self) -> int:
        """How many trials currently hold an open file (bounded by the running trials)."""
        return len(self._writers)


class CSVLoggerCallback(_TrialFileLogger):
    """Write ``progress.csv`` in each trial directory, in the engine's format.

    Nested results are flattened (``{"a": {"b": 1}}`` → column ``a/b``), ``config`` is left
    out, and the columns are those of the first row (Ray's behaviour). Passing this callback
    replaces the engine's own ``progress.csv`` writer.

    Example::

        tune.RunConfig(callbacks=[CSVLoggerCallback()])
    """

    _poptune_sink = "csv"


class JsonLoggerCallback(_TrialFileLogger):
    """Append each result as one JSON line to ``result.json`` in the trial directory, in the
    engine's format (``config`` included). ``params.json`` is written by the engine.
    Passing this callback replaces the engine's own ``result.json`` writer.

    Example::

        tune.RunConfig(callbacks=[JsonLoggerCallback()])
    """

    _poptune_sink = "json"
