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
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from poptune._validation import bad_type, bad_value
from poptune.checkpoint import Checkpoint, _split_fs
from poptune.clock import local_date
from poptune.exceptions import TrialStopped, TuneError
from poptune.result import count_steps

_session: "_Session | None" = None


def checkpoint_dir_name(index: int) -> str:
    """Ray's checkpoint directory name: ``checkpoint_000007``."""
    return f"checkpoint_{index:06d}"


#: the names :func:`checkpoint_dir_name` gives (``CHECKPOINT_DIR.fullmatch(name)``)
CHECKPOINT_DIR = re.compile(r"checkpoint_\d{6}")


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
    #: the trial dir on remote storage (checkpoints are uploaded there); None when local
    storage_trial_dir: str | None = None

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

    def get_storage(self) -> "StorageContext":
        """Where the trial's files go, with the attribute names of Ray's ``StorageContext``
        (``str()`` of it is the experiment directory)."""
        return StorageContext(self.experiment_dir, self.trial_dir, self.storage_trial_dir)

    def get_metadata(self) -> dict[str, Any]:
        """Raises, as in Ray 2.60 (a Ray Train trainer's metadata; never set in Tune)."""
        raise DeprecationWarning(
            "`get_metadata` is deprecated for Ray Tune, as it has never been usable.")


class StorageContext:
    """``get_context().get_storage()``: where a trial's files go, with the attribute names of
    Ray's ``StorageContext``. ``str()`` (and ``os.fspath``) of it is the experiment directory.

    Example:
        >>> s = StorageContext("/r/exp", "/r/exp/t_1")
        >>> s.storage_path, s.experiment_dir_name, s.trial_dir_name, s.trial_fs_path
        ('/r', 'exp', 't_1', '/r/exp/t_1')
        >>> str(s), s.trial_working_directory
        ('/r/exp', '/r/exp/t_1')
    """

    def __init__(self, experiment_dir: str, trial_dir: str,
                 storage_trial_dir: str | None = None) -> None:
        self._path = experiment_dir
        #: the local directory the trial runs in (its files before an upload)
        self.trial_working_directory = trial_dir
        self.trial_dir_name = os.path.basename(os.path.normpath(trial_dir))
        self.experiment_dir_name = os.path.basename(os.path.normpath(experiment_dir))
        if storage_trial_dir is None:
            self.storage_path = os.path.dirname(os.path.normpath(experiment_dir))
        else:  # remote: the URI of the experiment's parent
            self.storage_path = storage_trial_dir.rstrip("/").rsplit("/", 2)[0]

    @property
    def storage_filesystem(self) -> Any:
        """The filesystem of :attr:`storage_path` (an fsspec one; Ray's is pyarrow's)."""
        return _split_fs(self.storage_path)[0]

    @property
    def storage_fs_path(self) -> str:
        """:attr:`storage_path` within :attr:`storage_filesystem`."""
        return _split_fs(self.storage_path)[1]

    @property
    def experiment_fs_path(self) -> str:
        return f"{self.storage_fs_path}/{self.experiment_dir_name}"

    @property
    def trial_fs_path(self) -> str:
        return f"{self.experiment_fs_path}/{self.trial_dir_name}"

    def __str__(self) -> str:
        return self._path

    def __fspath__(self) -> str:
        return self._path

    def __repr__(self) -> str:
        return (f"StorageContext(storage_path={self.storage_path!r}, "
                f"experiment_dir_name={self.experiment_dir_name!r}, "
                f"trial_dir_name={self.trial_dir_name!r})")


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
    #: the trial runs a class Trainable: the worker reports ``step()``'s results, a user's
    #: ``tune.report`` only warns (Ray's class trainables have no session), and results
    #: carry ``checkpoint_dir_name`` only with a checkpoint
    is_class = False
    #: the name of the last checkpoint this trial reported (``checkpoint_NNNNNN``)
    _latest_checkpoint: str | None = None
    #: whether the driver still runs this trial: asked before a checkpoint is written where
    #: the driver's journal may credit it to another run (None: not asked; see
    #: ``Worker._driver_alive``)
    driver_alive: Callable[[], bool] | None = None

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
        timesteps_total: float | None = None,
        episodes_total: float | None = None,
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
        #: seconds since (re)start: the sum of the results' ``time_this_iter_s``
        self.time_since_restore = 0.0
        #: Ray's ``timesteps_total``/``episodes_total`` (None until a result reports
        #: ``timesteps_this_iter``/``episodes_this_iter``; a restore carries them over)
        self.timesteps_total = timesteps_total
        self.episodes_total = episodes_total
        self.timesteps_since_restore: float = 0
        self._counts = timesteps_total is not None or episodes_total is not None
        self.next_checkpoint_index = next_checkpoint_index
        self.start = time.time() if clock is None else clock()
        self.last = self.start
        self.hostname = _hostname()
        self.node_ip = _node_ip()
        self.pid = os.getpid()

    def persist_checkpoint(self, checkpoint: Checkpoint) -> str:
        """Move (same filesystem) or copy the checkpoint into the trial dir; return its name.

        A moved (or, on remote storage, uploaded) directory of the user's is left in place
        empty, so code that removes or reuses it after ``report`` works."""
        if not isinstance(checkpoint, Checkpoint):
            raise bad_type("checkpoint", checkpoint, "a poptune.Checkpoint (Checkpoint.from_directory(path))")
        if self.driver_alive is not None and not self.driver_alive():
            # killed by the driver, but running on (a Dask task cannot be stopped): its
            # checkpoint would replace one the driver credits to the trial's retry
            raise TrialStopped("the driver ended this trial")
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
                os.makedirs(checkpoint.path, exist_ok=True)
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
        else:
            os.makedirs(src, exist_ok=True)  # the user's path still exists, emptied
        return name

    def _iteration_time(self, now: float) -> float:
        """The iteration's ``time_this_iter_s``: the time since the last report (or the
        start), ``now`` being this report's reading of the session's clock."""
        return now - self.last

    def report(self, metrics: dict[str, Any], checkpoint: Checkpoint | None = None) -> None:
        """Send ``metrics`` with the automatic keys, as Ray's ``Trainable.train()`` fills
        them: a reported ``training_iteration``/``timestamp`` is kept, a reported
        ``time_this_iter_s`` is the iteration's time, and ``timesteps_this_iter``/
        ``episodes_this_iter`` add up to ``timesteps_total``/``episodes_total``."""
        if not isinstance(metrics, dict):
            raise bad_type("metrics", metrics, "a dict of metric name to value")
        if checkpoint is None and self._pending_checkpoint is not None:
            ckpt_name: str | None = self._persist_pending_checkpoint()
        else:
            self._discard_pending_checkpoint()  # an explicit checkpoint wins
            ckpt_name = self.persist_checkpoint(checkpoint) if checkpoint is not None else None
        if ckpt_name is not None:
            self._latest_checkpoint = ckpt_name
        self._last_metrics = {k: v for k, v in metrics.items() if k != "done"}
        now = time.time() if self._clock is None else self._clock()
        self.iteration += 1
        self.iterations_since_restore += 1
        result = dict(metrics)
        # a result with one of Ray's keys of its own (rare: one set test on the fast path)
        own = self._counts or not _OWN_KEYS.isdisjoint(metrics)
        this_iter = metrics.get("time_this_iter_s") if own else None
        if this_iter is None:
            this_iter = self._iteration_time(now)
        self.time_since_restore += this_iter
        result.update(
            training_iteration=self.iteration,
            time_this_iter_s=this_iter,
            time_total_s=self.time_total_offset + self.time_since_restore,
            timestamp=int(now),
            date=local_date(now),
            pid=self.pid,
            hostname=self.hostname,
            node_ip=self.node_ip,
            trial_id=self.context.trial_id,
            iterations_since_restore=self.iterations_since_restore,
            time_since_restore=self.time_since_restore,
            done=bool(metrics.get("done", False)),
            checkpoint_dir_name=ckpt_name,
        )
        if ckpt_name is None and self.is_class:
            del result["checkpoint_dir_name"]
        if own:
            self._own_keys(metrics, result)
        if self.monitor is not None:
            result.update(self.monitor.get_data())
        self.last = now
        try:
            self.channel(result)
        except Exception as exc:  # noqa: BLE001 - name the value the driver cannot receive
            raise _unsendable(metrics, exc) from exc

    def _own_keys(self, metrics: dict[str, Any], result: dict[str, Any]) -> None:
        """As Ray's ``Trainable.train()``: keep a reported ``training_iteration`` and (truthy)
        ``timestamp``; add this result's ``timesteps_this_iter``/``episodes_this_iter`` to
        the totals, filled in unless the result reports them itself."""
        if "training_iteration" in metrics:  # Ray's setdefault
            result["training_iteration"] = metrics["training_iteration"]
        if metrics.get("timestamp"):
            result["timestamp"] = metrics["timestamp"]
        self.timesteps_total, self.episodes_total, steps = count_steps(
            result, self.timesteps_total, self.episodes_total)
        self.timesteps_since_restore += steps
        self._counts = self.timesteps_total is not None or self.episodes_total is not None
        if self.timesteps_since_restore:
            result["timesteps_since_restore"] = self.timesteps_since_restore

    def latest_checkpoint(self) -> Checkpoint | None:
        """The last checkpoint this trial reported (as persisted: in the trial dir, or its
        URI on remote storage), else the one it started from (:attr:`restore_checkpoint`)."""
        name = self._latest_checkpoint
        if name is None:
            return self.restore_checkpoint
        if self.storage_trial_dir is not None:
            return Checkpoint(f"{self.storage_trial_dir}/{name}")
        return Checkpoint(os.path.join(self.context.trial_dir, name))

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
#: keys Ray's ``Trainable.train()`` takes from a result rather than filling in
_OWN_KEYS = frozenset(("training_iteration", "timestamp", "time_this_iter_s",
                       "timesteps_this_iter", "episodes_this_iter"))


def _is_checkpoint_dir(path: str) -> bool:
    return os.path.basename(os.path.normpath(path)).startswith("checkpoint_0")


_HOSTNAME: str | None = None


def _hostname() -> str:
    global _HOSTNAME
    if _HOSTNAME is None:
        _HOSTNAME = socket.gethostname()
    return _HOSTNAME


_NODE_IP: str | None = None


def _node_ip() -> str:
    """This machine's address, as Ray's ``node_ip`` (looked up once per process)."""
    global _NODE_IP
    if _NODE_IP is None:
        from poptune.backends._probe import driver_ip

        _NODE_IP = driver_ip()
    return _NODE_IP


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
    """``get_context()`` outside a trial: each getter warns once and returns what Ray's
    does: None, but a world size of 1 and ranks of 0."""

    def __init__(self) -> None:
        super().__init__(trial_id="", trial_name="", trial_dir="", experiment_name="",
                         experiment_dir="")


def _getter_outside(name: str, returning: Any = None) -> Callable[[TuneContext], Any]:
    def getter(self: TuneContext) -> Any:
        _outside(name, returning)
        return returning

    getter.__name__ = getter.__qualname__ = name
    return getter


for _name, _value in (("get_trial_id", None), ("get_trial_name", None),
                      ("get_trial_dir", None), ("get_experiment_name", None),
                      ("get_trial_resources", None), ("get_storage", None),
                      ("get_world_size", 1), ("get_world_rank", 0), ("get_local_rank", 0),
                      ("get_local_world_size", 0), ("get_node_rank", 0)):
    setattr(_ContextOutsideATrial, _name, _getter_outside(_name, _value))


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

    As in Ray, outside a trial, and inside a class Trainable (whose ``step`` returns its
    results), it warns once and does nothing.

    Raises:
        TypeError: no metrics (``report()``, ``report(None)``), or not a dict.
        ValueError: the metrics hold a torch tensor or module (as Ray, which cannot ship one).
    """
    session = current_session()
    if session is None or session.is_class:
        _outside("report")
        return
    if metrics is None:
        if not kwargs:
            raise bad_type("metrics", metrics, "a dict of metric name to value "
                           "(report(metrics) needs one, as Ray's)")
        metrics = {}
    elif not isinstance(metrics, dict):
        raise bad_type("metrics", metrics, "a dict of metric name to value")
    if kwargs:
        metrics = {**metrics, **kwargs}
    if "torch" in sys.modules and _holds_tensor(metrics):
        raise ValueError(
            "Passing objects containg Torch tensors as metrics is not supported as it will "
            "throw an exception on deserialization (got metrics with a torch tensor or "
            "module). You can either convert the tensors to Python objects (e.g. "
            "`tensor.item()`) or report a `Checkpoint` to store your Torch objects.")
    session.report(metrics, checkpoint)


def _holds_tensor(obj: Any, kinds: tuple[type, ...] = ()) -> bool:
    """Whether ``obj`` is or holds (in dict keys and values, lists, tuples) a torch tensor
    or module (``torch`` is imported already)."""
    if not kinds:
        import torch

        kinds = (torch.Tensor, torch.nn.Module)
    if isinstance(obj, kinds):
        return True
    if isinstance(obj, dict):
        return any(_holds_tensor(k, kinds) or _holds_tensor(v, kinds) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return any(_holds_tensor(v, kinds) for v in obj)
    return False


def get_checkpoint() -> Checkpoint | None:
    """The trial's latest checkpoint, as Ray's: the last one it reported, else the one it
    resumes from (its own, or a PBT donor's), or None."""
    session = current_session()
    if session is None:
        _outside("get_checkpoint")
        return None
    return session.latest_checkpoint()


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
