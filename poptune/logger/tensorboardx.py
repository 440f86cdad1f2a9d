"""``TBXLoggerCallback``: TensorBoard event files in each trial directory, via tensorboardX.

For every result, each numeric value (nested dicts flattened to ``a/b``) becomes a scalar
tagged ``ray/tune/<name>`` (Ray's tags, so existing TensorBoard layouts keep working) at step
``timesteps_total`` when the result has it, else ``training_iteration``. Non-empty lists and
arrays become histograms (3-d/4-d arrays images). When the trial ends, its sampled values
(``trial.evaluated_params``, as in Ray; values other than str/bool/int/float stringified) and
its last scalars are written as a TensorBoard HParams session (none when nothing was
sampled), and the writer is closed.

Ray Tune adds this logger to every run; poptune adds it when asked: in ``callbacks``, or for
an unchanged script with the environment variable ``POPTUNE_TENSORBOARD=1``.

Example::

    from poptune.logger import TBXLoggerCallback
    tune.Tuner(train, run_config=tune.RunConfig(callbacks=[TBXLoggerCallback()])).fit()
    # tensorboard --logdir ~/poptune_results
"""

from __future__ import annotations

import functools
import glob
import logging
import math
import numbers
import os
import time
from typing import TYPE_CHECKING, Any

from poptune._imports import require
from poptune.logger._base import LoggerCallback
from poptune.storage.trial_logs import flatten

if TYPE_CHECKING:
    from poptune.experiment.trial import Trial

__all__ = ["TBXLoggerCallback"]

logger = logging.getLogger(__name__)

#: result keys not worth a TensorBoard chart (Ray leaves out the same ones)
SKIPPED_KEYS = frozenset({"config", "pid", "timestamp", "time_total_s", "training_iteration"})
TAG_PREFIX = "ray/tune/"
_MAX_HPARAM_STR = 250


def _scalar(value: Any) -> float | int | None:
    """A finite-or-infinite real number (bool, int, float, numpy scalar), or None."""
    if isinstance(value, (bool, int, float, numbers.Real)):
        v = value
    else:
        item = getattr(value, "item", None)
        shape = getattr(value, "shape", None)
        if not callable(item) or shape not in ((), None):
            return None
        try:
            v = item()
        except (TypeError, ValueError):
            return None
        if not isinstance(v, (bool, int, float)):
            return None
    if isinstance(v, float) and math.isnan(v):
        return None
    return v  # type: ignore[return-value]


def _hparam(value: Any) -> str | bool | int | float:
    if isinstance(value, (str, bool, int, float)):
        return value
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        try:
            v = item()
            if isinstance(v, (bool, int, float)):
                return v
        except (TypeError, ValueError):
            pass
    text = getattr(value, "__name__", None) if callable(value) else None
    text = text or str(value)
    return text if len(text) <= _MAX_HPARAM_STR else text[:_MAX_HPARAM_STR - 3] + "..."


@functools.lru_cache(maxsize=1)
def _tensorflow_bins() -> list[float]:
    """TensorFlow's default histogram buckets (what ``SummaryWriter.add_histogram`` uses
    for ``bins="tensorflow"``): edges growing by 10% from 1e-12 to 1e20, mirrored below 0."""
    edges, v = [], 1e-12
    while v < 1e20:
        edges.append(v)
        v *= 1.1
    return [-e for e in reversed(edges)] + [0.0] + edges


class _EventFile:
    """One trial's event file, written synchronously on the caller's thread.

    tensorboardX's ``SummaryWriter`` starts a thread and a queue for every writer, about 3 ms
    per trial; this writes the same records (one event per result, holding its scalars) in
    about 0.15 ms.
    """

    def __init__(self, logdir: str, suffix: str) -> None:
        require("tensorboardX", "TBXLoggerCallback")  # first: it may import comet_ml
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event

        self._event = Event
        self._writer = EventsWriter(os.path.join(logdir, "events"), suffix)

    def add(self, summary: Any, step: int | None = None) -> None:
        event = self._event(wall_time=time.time(), summary=summary)
        if step is not None:
            event.step = int(step)
        self._writer.write_event(event)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class TBXLoggerCallback(LoggerCallback):
    """Write TensorBoard event files (``events.out.tfevents.*``) into each trial directory.

    One event file per running trial, flushed once per runner pass and closed when the trial
    ends (or the experiment does), so memory and open files stay bounded by the number of
    trials alive at once.

    Args:
        flush_secs: accepted for compatibility (files are flushed once per runner pass).

    Example::

        tune.RunConfig(callbacks=[TBXLoggerCallback()])
    """

    #: it writes its event files and reads no trial file (see the runner's drain)
    _reads_no_files = True

    def __init__(self, flush_secs: int = 30) -> None:
        self._summary = require("tensorboardX", "TBXLoggerCallback").summary
        self._writers: dict[str, _EventFile] = {}
        self._last: dict[str, dict[str, Any]] = {}
        self._dirty: set[str] = set()

    def _open(self, trial: Trial) -> _EventFile:
        # a relaunched trial (retry, resume) gets its own file: tensorboardX names files by
        # the second, so a second writer within that second would overwrite the first one
        os.makedirs(trial.local_path, exist_ok=True)  # may race the engine's I/O thread
        suffix = ""
        if glob.glob(os.path.join(glob.escape(trial.local_path), "events.out.tfevents.*")):
            suffix = f".{time.time_ns()}"
        writer = self._writers[trial.trial_id] = _EventFile(trial.local_path, suffix)
        self._last.setdefault(trial.trial_id, {})
        return writer

    def log_trial_start(self, trial: Trial) -> None:
        if trial.trial_id not in self._writers:
            self._open(trial)

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        writer = self._writers.get(trial.trial_id) or self._open(trial)
        step = result.get("timesteps_total") or result.get("training_iteration") or 0
        flat = flatten({k: v for k, v in result.items() if k not in SKIPPED_KEYS})
        scalars: dict[str, Any] = {}
        values = []
        for name, value in flat.items():
            tag = TAG_PREFIX + name
            v = _scalar(value)
            if v is not None:
                scalars[tag] = v
                values.extend(self._summary.scalar(tag, float(v)).value)
            elif (isinstance(value, (list, tuple)) and value) or getattr(value, "size", 0) > 0:
                self._add_array(writer, tag, value, step)
        if values:
            from tensorboardX.proto.summary_pb2 import Summary

            writer.add(Summary(value=values), step)
        self._last[trial.trial_id] = scalars
        self._dirty.add(trial.trial_id)

    def _add_array(self, writer: _EventFile, tag: str, value: Any, step: int) -> None:
        import numpy as np

        try:
            arr = np.asarray(value)
            if arr.ndim in (3, 4):
                writer.add(self._summary.image(
                    tag, arr, dataformats="CHW" if arr.ndim == 3 else "NCHW"), step)
            elif arr.dtype.kind in "biuf":
                writer.add(self._summary.histogram(tag, arr, _tensorflow_bins()), step)
        except (ValueError, TypeError, AssertionError) as exc:
            logger.debug("TBXLoggerCallback skipped %s: %s", tag, exc)

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        writer = self._writers.pop(trial.trial_id, None)
        self._dirty.discard(trial.trial_id)
        last = self._last.pop(trial.trial_id, None)
        if writer is None:
            return
        try:
            # hyperparameters once, when the trial is done (not before a retry)
            if trial.evaluated_params and last and trial.status.is_finished():
                self._write_hparams(writer, trial, last)
        finally:
            writer.close()

    def _write_hparams(self, writer: _EventFile, trial: Trial,
                       metrics: dict[str, Any]) -> None:
        from tensorboardX.summary import hparams

        # the sampled values, as Ray (a PBT exploit updates them), not the whole config
        params = {k: _hparam(v) for k, v in flatten(dict(trial.evaluated_params)).items()
                  if v is not None}
        try:
            for summary in hparams(hparam_dict=params, metric_dict=metrics):
                writer.add(summary)
        except Exception:  # noqa: BLE001 - a logger must never fail the experiment
            logger.exception("TBXLoggerCallback could not write hyperparameters of %s", trial)

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        for trial_id in self._dirty:
            writer = self._writers.get(trial_id)
            if writer is not None:
                writer.flush()
        self._dirty.clear()

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        self._last.clear()
        self._dirty.clear()
