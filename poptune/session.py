"""The in-trial API: ``report``, ``get_checkpoint``, ``get_context``.

These functions work inside a trial (a function or class trainable running in a worker). The
worker installs a :class:`_Session`. Outside a trial (a trainable called directly, to try it)
they do what Ray Tune's do: warn once per function and return ``None`` (``report`` reports
nothing; ``get_context()`` gives a context whose getters return ``None``).

Example (inside a trainable)::

    def train(config):
        for step in range(10):
            tune.report({"loss": 1.0 / (step + 1)})
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from poptune._validation import bad_type, bad_value
from poptune.checkpoint import Checkpoint
from poptune.clock import local_date
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

    def get_trial_resources(self) -> Any:
        """The trial's resources as a :class:`~poptune.PlacementGroupFactory`, as in Ray
        (``.required_resources`` gives ``{"CPU": 1.0, "GPU": 0.5}``)."""
        from poptune.execution.placement_groups import resource_dict_to_pg_factory

        return resource_dict_to_pg_factory(self.trial_resources)

    def get_world_rank(self) -> int:
        return self.world_rank

    def get_local_rank(self) -> int:
        return self.local_rank

    def get_world_size(self) -> int:
        return self.world_size

    def get_local_world_size(self) -> int:
        """1: a trial is one process (Ray Train's ranks have no meaning in Tune)."""
        return 1

    def get_node_rank(self) -> int:
        return 0

    def get_storage(self) -> str:
        return self.experiment_dir

    def get_metadata(self) -> dict[str, Any]:
        """Raises, as in Ray 2.60 (a Ray Train trainer's metadata; never set in Tune)."""
        raise DeprecationWarning(
            "`get_metadata` is deprecated for Ray Tune, as it has never been usable.")


class _Session:
    """Per-trial state inside a worker. ``channel(result, checkpoint_name)`` hands a result to
    the driver and returns only when the trial may continue (or raises ``TrialStopped``)."""

    #: a directory written through the legacy ``checkpoint_dir`` context, not yet reported
    _pending_checkpoint: str | None = None
    #: the user metrics of the last ``report`` (repeated by a final report that only carries
    #: a pending legacy checkpoint)
    _last_metrics: dict[str, Any] | None = None
    #: a ``UtilMonitor`` when the config asks for ``log_sys_usage``: each result gets ``perf``
    monitor: Any = None

    def __init__(
        self,
        context: TuneContext,
        channel: Callable[[dict[str, Any]], None],
        restore_checkpoint: str | None,
        start_iteration: int = 0,
        time_total_offset: float = 0.0,
        next_checkpoint_index: int = 0,
        storage_trial_dir: str | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        #: epoch seconds for the automatic time keys; None reads ``time.time()`` (a worker
        #: process); the simulated backend passes its clock's ``time``
        self._clock = clock
        #: called with whether the trial failed when its function or class ends, however it
        #: ends, in this order (a reused worker process outlives its trials: e.g.
        #: ``setup_wandb``'s run ends here)
        self.at_end: list[Callable[[bool], None]] = []
        self.storage_trial_dir = storage_trial_dir
        self.context = context
        self.channel = channel
        self.restore_checkpoint = Checkpoint(restore_checkpoint) if restore_checkpoint else None
        self.iteration = start_iteration
        self.iterations_since_restore = 0
        self.time_total_offset = time_total_offset
        self.next_checkpoint_index = next_checkpoint_index
        self.start = time.time() if clock is None else clock()
        self.last = self.start
        self.hostname = _hostname()
        self.pid = os.getpid()

    def persist_checkpoint(self, checkpoint: Checkpoint) -> str:
        """Move (same filesystem) or copy the checkpoint into the trial dir; return its name."""
        if not isinstance(checkpoint, Checkpoint):
            raise bad_type("checkpoint", checkpoint, "a poptune.Checkpoint (Checkpoint.from_directory(path))")
        name = checkpoint_dir_name(self.next_checkpoint_index)
        self.next_checkpoint_index += 1
        if self.storage_trial_dir is not None:  # remote storage: upload, then drop the local copy
            from poptune.storage.remote import upload_checkpoint

            with checkpoint.as_directory() as local:
                upload_checkpoint(local, f"{self.storage_trial_dir}/{name}")
                managed = os.path.realpath(local).startswith(
                    os.path.realpath(self.context.trial_dir) + os.sep)
            if checkpoint._local and not managed:
                shutil.rmtree(checkpoint.path, ignore_errors=True)
            return name
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
        if checkpoint is None and self._pending_checkpoint is not None:
            ckpt_name: str | None = self._persist_pending_checkpoint()
        else:
            self._discard_pending_checkpoint()  # an explicit checkpoint wins
            ckpt_name = self.persist_checkpoint(checkpoint) if checkpoint is not None else None
        self._last_metrics = {k: v for k, v in metrics.items() if k != "done"}
        now = time.time() if self._clock is None else self._clock()
        self.iteration += 1
        self.iterations_since_restore += 1
        result = dict(metrics)
        result.update(
            training_iteration=self.iteration,
            time_this_iter_s=now - self.last,
            time_total_s=self.time_total_offset + (now - self.start),
            timestamp=int(now),
            date=local_date(now),
            pid=self.pid,
            hostname=self.hostname,
            node_ip="127.0.0.1",
            trial_id=self.context.trial_id,
            iterations_since_restore=self.iterations_since_restore,
            time_since_restore=now - self.start,
            done=bool(metrics.get("done", False)),
            checkpoint_dir_name=ckpt_name,
        )
        if self.monitor is not None:
            result.update(self.monitor.get_data())
        self.last = now
        try:
            self.channel(result)
        except Exception as exc:  # noqa: BLE001 - name the value the driver cannot receive
            raise _unsendable(metrics, exc) from exc

    # -- the legacy ``checkpoint_dir`` context (Ray <= 1.x) ---------------------------------
    def _new_pending_dir(self, step: int) -> str:
        """A fresh directory inside the trial dir (so persisting it is a rename)."""
        trial_dir = self.context.trial_dir
        os.makedirs(trial_dir, exist_ok=True)
        for name in os.listdir(trial_dir):  # leftovers of a run that stopped mid-checkpoint
            path = os.path.join(trial_dir, name)
            if name.startswith(_PENDING_PREFIX) and path != self._pending_checkpoint:
                shutil.rmtree(path, ignore_errors=True)
        return tempfile.mkdtemp(prefix=f"{_PENDING_PREFIX}{step}_", dir=trial_dir)

    def _set_pending_checkpoint(self, path: str) -> None:
        """``path`` becomes the checkpoint of the next report (replacing an unreported one)."""
        if self._pending_checkpoint is not None and self._pending_checkpoint != path:
            shutil.rmtree(self._pending_checkpoint, ignore_errors=True)
        self._pending_checkpoint = path

    def _persist_pending_checkpoint(self) -> str:
        """Rename the pending directory to the next ``checkpoint_NNNNNN``; return its name."""
        src, self._pending_checkpoint = self._pending_checkpoint, None
        assert src is not None
        name = checkpoint_dir_name(self.next_checkpoint_index)
        self.next_checkpoint_index += 1
        if self.storage_trial_dir is not None:  # remote storage: upload, then drop the local copy
            from poptune.storage.remote import upload_checkpoint

            upload_checkpoint(src, f"{self.storage_trial_dir}/{name}")
            shutil.rmtree(src, ignore_errors=True)
            return name
        target = os.path.join(self.context.trial_dir, name)
        if os.path.exists(target):  # a stale dir from a run that crashed before recording it
            shutil.rmtree(target)
        try:
            os.rename(src, target)
        except OSError:  # the trial dir moved to another filesystem meanwhile
            shutil.copytree(src, target)
            shutil.rmtree(src, ignore_errors=True)
        return name

    def _discard_pending_checkpoint(self) -> None:
        if self._pending_checkpoint is not None:
            shutil.rmtree(self._pending_checkpoint, ignore_errors=True)
            self._pending_checkpoint = None

    def _flush_pending_checkpoint(self) -> None:
        """Report a checkpoint left by ``checkpoint_dir`` with no report after it.

        The final result repeats the last reported metrics with ``done=True``, as Ray's
        function runner ends a trial with a copy of its last result.
        """
        if self._pending_checkpoint is not None:
            self.report({**(self._last_metrics or {}), "done": True})


_PENDING_PREFIX = ".checkpoint_dir_tmp_"


def _is_checkpoint_dir(path: str) -> bool:
    return os.path.basename(os.path.normpath(path)).startswith("checkpoint_0")


_HOSTNAME: str | None = None


def _hostname() -> str:
    global _HOSTNAME
    if _HOSTNAME is None:
        _HOSTNAME = socket.gethostname()
    return _HOSTNAME


_local = threading.local()


def current_session() -> "_Session | None":
    """The session of the trial running in this thread (threaded agents such as Dask tasks
    run several trials in one process), else the process's session."""
    return getattr(_local, "session", None) or _session


_warned_outside: set[str] = set()


def _outside(fn: str, returning: Any = None) -> None:
    """Warn (once per function and process) that ``fn`` was called outside a trial: as in
    Ray Tune, it then does nothing and returns ``returning``."""
    if fn not in _warned_outside:
        _warned_outside.add(fn)
        warnings.warn(f"`{fn}` is meant to only be called inside a function that is executed "
                      f"by a Tuner (or tune.run). Returning `{returning}`.", stacklevel=3)


class _ContextOutsideATrial(TuneContext):
    """``get_context()`` outside a trial: each getter warns once and returns None (Ray)."""

    def __init__(self) -> None:
        super().__init__(trial_id="", trial_name="", trial_dir="", experiment_name="",
                         experiment_dir="")


def _getter_outside(name: str) -> Callable[[TuneContext], Any]:
    def getter(self: TuneContext) -> Any:
        _outside(name)
        return None

    getter.__name__ = getter.__qualname__ = name
    return getter


for _name in ("get_trial_id", "get_trial_name", "get_trial_dir", "get_experiment_name",
              "get_trial_resources", "get_world_rank", "get_local_rank", "get_world_size",
              "get_local_world_size", "get_node_rank", "get_storage"):
    setattr(_ContextOutsideATrial, _name, _getter_outside(_name))


def _unsendable(metrics: dict[str, Any], exc: Exception) -> Exception:
    """``exc`` (sending a result failed), or a TypeError naming the first metric that
    cannot be pickled."""
    import cloudpickle

    for key, value in metrics.items():
        try:
            cloudpickle.dumps(value)
        except Exception:  # noqa: BLE001 - any failure means this value cannot travel
            return bad_type(f"metrics[{key!r}]", value,
                            f"a picklable value (numbers, str, lists, dicts); pickling it "
                            f"failed with: {exc}")
    return exc


def report(metrics: dict[str, Any] | None = None, *, checkpoint: Checkpoint | None = None,
           **kwargs: Any) -> None:
    """Report metrics (and optionally a checkpoint) for the current iteration.

    The checkpoint directory is persisted into the trial directory (moved when on the same
    filesystem) before this returns. Each call increments ``training_iteration``. The legacy
    keyword form ``report(loss=0.1)`` is accepted too.
    """
    session = current_session()
    if session is None:
        _outside("report")
        return
    if metrics is None:
        metrics = {}
    elif not isinstance(metrics, dict):
        raise bad_type("metrics", metrics, "a dict of metric name to value")
    if kwargs:
        metrics = {**metrics, **kwargs}
    session.report(metrics, checkpoint)


def get_checkpoint() -> Checkpoint | None:
    """The checkpoint this trial should resume from (its own, or a PBT donor's), or None."""
    session = current_session()
    if session is None:
        _outside("get_checkpoint")
        return None
    return session.restore_checkpoint


def get_context() -> TuneContext:
    """The running trial's id, name, directory, experiment name and resources (outside a
    trial, a context whose getters warn and return None, as Ray's)."""
    session = current_session()
    return _ContextOutsideATrial() if session is None else session.context


@contextlib.contextmanager
def checkpoint_dir(step: int) -> Iterator[str]:
    """Write a checkpoint the Ray <= 1.x way (legacy API).

    Yields a fresh directory; the files written into it become the checkpoint attached to the
    trial's next :func:`report`. A second ``checkpoint_dir`` before that report replaces the
    first. If the with-block raises, the directory is discarded. When the trial is restarted
    from the checkpoint (pause and resume, a PBT exploit, a retry, ``tune.run(resume=...)``),
    a trainable ``train(config, checkpoint_dir=None)`` receives its path as
    ``checkpoint_dir`` (and :func:`get_checkpoint` returns it).

    With ``tune.run``, a checkpoint written after the trial's last ``report`` is reported when
    the function returns, with a final result that repeats the last metrics and
    ``done=True``. Outside a trial the context yields the current directory, as in Ray, so the
    function can also be called directly.

    Args:
        step: the iteration this checkpoint belongs to (Ray required it; poptune names the
            directory ``checkpoint_NNNNNN`` by its own count).

    Raises:
        TuneConfigError: ``step`` is None.

    Example::

        def train(config, checkpoint_dir=None):
            start = 0
            if checkpoint_dir:
                with open(os.path.join(checkpoint_dir, "step")) as f:
                    start = int(f.read()) + 1
            for step in range(start, 10):
                with tune.checkpoint_dir(step=step) as d:
                    with open(os.path.join(d, "step"), "w") as f:
                        f.write(str(step))
                tune.report(loss=1.0 / (step + 1))
    """
    if step is None:
        raise bad_value("step", step, "the int iteration of this checkpoint (checkpoint_dir(step))")
    session = current_session()
    if session is None:
        yield os.path.abspath("./")
        return
    path = session._new_pending_dir(step)
    try:
        yield path
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    session._set_pending_checkpoint(path)


def _flush_pending_checkpoint() -> None:
    """Report a checkpoint written by ``checkpoint_dir`` after the last report (see there)."""
    session = current_session()
    if session is not None:
        session._flush_pending_checkpoint()


def _discard_pending_checkpoint() -> None:
    """Drop an unreported ``checkpoint_dir`` checkpoint (the trial failed or was stopped)."""
    session = current_session()
    if session is not None:
        session._discard_pending_checkpoint()


def at_trial_end(fn: Callable[[bool], None]) -> bool:
    """Call ``fn(failed)`` when the running trial ends (returned, stopped, or failed: then
    ``failed`` is True), in the process that runs it, before the driver hears of the end;
    False, and nothing registered, outside a trial."""
    session = current_session()
    if session is None:
        return False
    session.at_end.append(fn)
    return True


def get_trial_id() -> str:
    return get_context().trial_id


def get_trial_name() -> str:
    return get_context().trial_name


def get_trial_dir() -> str:
    return get_context().trial_dir


__all__ = ["TuneContext", "checkpoint_dir", "get_checkpoint", "get_context", "report"]
