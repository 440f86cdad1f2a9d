"""The in-trial API: ``report``, ``get_checkpoint``, ``get_context``.

These functions work inside a trial (a function or class trainable running in a worker). The
worker installs a :class:`_Session`; outside a trial they raise a clear error.

Example (inside a trainable)::

    def train(config):
        for step in range(10):
            tune.report({"loss": 1.0 / (step + 1)})
"""

from __future__ import annotations

import datetime
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from poptune._validation import bad_type
from poptune.checkpoint import Checkpoint
from poptune.exceptions import TuneError

_session: "_Session | None" = None


def checkpoint_dir_name(index: int) -> str:
    """Ray's checkpoint directory name: ``checkpoint_000007``."""
    return f"checkpoint_{index:06d}"


@dataclass
class TuneContext:
    """Facts about the running trial (``tune.get_context()``)."""

    trial_id: str
    trial_name: str
    trial_dir: str
    experiment_name: str
    experiment_dir: str
    trial_resources: dict[str, float] = field(default_factory=dict)
    world_rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    def get_trial_id(self) -> str:
        return self.trial_id

    def get_trial_name(self) -> str:
        return self.trial_name

    def get_trial_dir(self) -> str:
        return self.trial_dir

    def get_experiment_name(self) -> str:
        return self.experiment_name

    def get_trial_resources(self) -> dict[str, float]:
        return dict(self.trial_resources)

    def get_world_rank(self) -> int:
        return self.world_rank

    def get_local_rank(self) -> int:
        return self.local_rank

    def get_world_size(self) -> int:
        return self.world_size

    def get_storage(self) -> str:
        return self.experiment_dir


class _Session:
    """Per-trial state inside a worker. ``channel(result, checkpoint_name)`` hands a result to
    the driver and returns only when the trial may continue (or raises ``TrialStopped``)."""

    def __init__(
        self,
        context: TuneContext,
        channel: Callable[[dict[str, Any]], None],
        restore_checkpoint: str | None,
        start_iteration: int = 0,
        time_total_offset: float = 0.0,
        next_checkpoint_index: int = 0,
    ) -> None:
        self.context = context
        self.channel = channel
        self.restore_checkpoint = Checkpoint(restore_checkpoint) if restore_checkpoint else None
        self.iteration = start_iteration
        self.iterations_since_restore = 0
        self.time_total_offset = time_total_offset
        self.next_checkpoint_index = next_checkpoint_index
        self.start = time.time()
        self.last = self.start
        self.hostname = _hostname()
        self.pid = os.getpid()

    def persist_checkpoint(self, checkpoint: Checkpoint) -> str:
        """Move (same filesystem) or copy the checkpoint into the trial dir; return its name."""
        if not isinstance(checkpoint, Checkpoint):
            raise bad_type("checkpoint", checkpoint, "a poptune.Checkpoint (Checkpoint.from_directory(path))")
        name = checkpoint_dir_name(self.next_checkpoint_index)
        self.next_checkpoint_index += 1
        target = os.path.join(self.context.trial_dir, name)
        if os.path.exists(target):  # a stale dir from a run that crashed before recording it
            shutil.rmtree(target)
        src = checkpoint.path
        if not checkpoint._local:
            checkpoint.to_directory(target)
            return name
        if not os.path.isdir(src):
            raise TuneError(f"checkpoint directory {src!r} passed to report() does not exist")
        trial_dir = os.path.realpath(self.context.trial_dir)
        if os.path.realpath(src).startswith(trial_dir + os.sep) or _is_checkpoint_dir(src):
            shutil.copytree(src, target)  # a checkpoint we manage (e.g. the restored one)
            return name
        try:
            os.rename(src, target)
        except OSError:
            shutil.copytree(src, target)
        return name

    def report(self, metrics: dict[str, Any], checkpoint: Checkpoint | None = None) -> None:
        if not isinstance(metrics, dict):
            raise bad_type("metrics", metrics, "a dict of metric name to value")
        ckpt_name = self.persist_checkpoint(checkpoint) if checkpoint is not None else None
        now = time.time()
        self.iteration += 1
        self.iterations_since_restore += 1
        result = dict(metrics)
        result.update(
            training_iteration=self.iteration,
            time_this_iter_s=now - self.last,
            time_total_s=self.time_total_offset + (now - self.start),
            timestamp=int(now),
            date=datetime.datetime.fromtimestamp(now).strftime("%Y-%m-%d_%H-%M-%S"),
            pid=self.pid,
            hostname=self.hostname,
            node_ip="127.0.0.1",
            trial_id=self.context.trial_id,
            iterations_since_restore=self.iterations_since_restore,
            time_since_restore=now - self.start,
            done=bool(metrics.get("done", False)),
            checkpoint_dir_name=ckpt_name,
        )
        self.last = now
        self.channel(result)


def _is_checkpoint_dir(path: str) -> bool:
    return os.path.basename(os.path.normpath(path)).startswith("checkpoint_0")


_HOSTNAME: str | None = None


def _hostname() -> str:
    global _HOSTNAME
    if _HOSTNAME is None:
        _HOSTNAME = socket.gethostname()
    return _HOSTNAME


def _get_session(fn: str) -> _Session:
    if _session is None:
        raise TuneError(
            f"`poptune.{fn}()` was called outside a trial; call it from the trainable passed to "
            "`Tuner(...)` or `tune.run(...)`"
        )
    return _session


def report(metrics: dict[str, Any] | None = None, *, checkpoint: Checkpoint | None = None,
           **kwargs: Any) -> None:
    """Report metrics (and optionally a checkpoint) for the current iteration.

    The checkpoint directory is persisted into the trial directory (moved when on the same
    filesystem) before this returns. Each call increments ``training_iteration``. The legacy
    keyword form ``report(loss=0.1)`` is accepted too.
    """
    session = _get_session("report")
    if metrics is None:
        metrics = {}
    elif not isinstance(metrics, dict):
        raise bad_type("metrics", metrics, "a dict of metric name to value")
    if kwargs:
        metrics = {**metrics, **kwargs}
    session.report(metrics, checkpoint)


def get_checkpoint() -> Checkpoint | None:
    """The checkpoint this trial should resume from (its own, or a PBT donor's), or None."""
    return _get_session("get_checkpoint").restore_checkpoint


def get_context() -> TuneContext:
    """The running trial's id, name, directory, experiment name and resources."""
    return _get_session("get_context").context


def get_trial_id() -> str:
    return get_context().trial_id


def get_trial_name() -> str:
    return get_context().trial_name


def get_trial_dir() -> str:
    return get_context().trial_dir


__all__ = ["TuneContext", "get_checkpoint", "get_context", "report"]
