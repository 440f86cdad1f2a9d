"""``Trainable``: the class API, as in Ray Tune.

Subclass it and implement ``setup``, ``step`` and, to support pausing and PBT,
``save_checkpoint``/``load_checkpoint``.

Example:
    >>> class Counter(Trainable):
    ...     def setup(self, config):
    ...         self.x = config.get("start", 0)
    ...     def step(self):
    ...         self.x += 1
    ...         return {"x": self.x}
    ...     def save_checkpoint(self, checkpoint_dir):
    ...         return {"x": self.x}
    ...     def load_checkpoint(self, checkpoint):
    ...         self.x = checkpoint["x"]
    >>> t = Counter({"start": 3})
    >>> t.train()["x"], t.training_iteration
    (4, 1)
"""

from __future__ import annotations

import copy
import os
import pickle
import tempfile
from typing import Any

from poptune.clock import current as current_clock
from poptune.clock import local_date
from poptune.result import count_steps

_DICT_CHECKPOINT_FILE = "_dict_checkpoint.pkl"
#: a bare ``Trainable.save()``'s counters (under Tune they are in the checkpoint's result)
_STATE_FILE = ".trainable_state.pkl"


class CheckpointNotFoundError(ValueError, FileNotFoundError):
    """:meth:`Trainable.restore` was given a checkpoint that does not exist (Ray raises a
    ``ValueError``; a ``FileNotFoundError`` too, for code that caught that)."""


class Trainable:
    """Base class for class-based trainables.

    Attributes:
        config: the trial's configuration (a copy).
        iteration / training_iteration: iterations completed so far.
        trial_id, trial_name, logdir: facts about the running trial (set by the worker).
    """

    def __init__(self, config: dict[str, Any] | None = None, logger_creator: Any = None,
                 storage: Any = None, **setup_kwargs: Any) -> None:
        self.config: dict[str, Any] = dict(config or {})
        self._reset_counters()
        self._last_result: dict[str, Any] | None = None
        ctx = _context()
        self._trial_id = ctx.trial_id if ctx else "default"
        self._trial_name = ctx.trial_name if ctx else "default"
        # outside a trial: a temporary directory, made only if ``logdir`` is read
        self._logdir: str | None = ctx.trial_dir if ctx else None
        self.setup(copy.deepcopy(self.config), **setup_kwargs)

    # --- hooks for subclasses --------------------------------------------------------
    def setup(self, config: dict[str, Any], **kwargs: Any) -> None:
        """Called once with the trial's config (and ``with_parameters`` kwargs)."""

    def step(self) -> dict[str, Any]:
        """Run one iteration and return its metrics. Must be overridden."""
        raise NotImplementedError(f"{type(self).__name__} must implement `step()`")

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any] | None:
        """Write state into ``checkpoint_dir`` (or return a dict to be pickled there)."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement `save_checkpoint(checkpoint_dir)` to be paused, "
            "checkpointed or used with PBT"
        )

    def load_checkpoint(self, checkpoint: dict[str, Any] | str) -> None:
        """Restore state from what ``save_checkpoint`` wrote (a dir path, or the dict)."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement `load_checkpoint(checkpoint)` to be restored"
        )

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        """Apply a new config in place; return True if supported.

        With ``TuneConfig(reuse_actors=True)`` a trial's Trainable is kept when the trial
        ends and reset for the next trial (see :meth:`reset`), which calls this instead of
        ``setup``; returning False fails that trial, as in Ray.
        """
        return False

    def reset(self, new_config: dict[str, Any], storage: Any = None) -> bool:
        """Reset this Trainable for a new trial with ``new_config``, as Ray's.

        Takes the running trial's facts (``trial_id``, ``trial_name``, ``logdir``), calls
        :meth:`reset_config` and, if it returns True, starts the counters afresh (iteration,
        total time; a checkpoint restored next sets them). Returns what ``reset_config``
        returned. ``setup`` is not called again.

        Example:
            >>> class Scaled(Trainable):
            ...     def setup(self, config):
            ...         self.k = config["k"]
            ...     def step(self):
            ...         return {"y": self.k * self.iteration}
            ...     def reset_config(self, new_config):
            ...         self.k = new_config["k"]
            ...         return True
            >>> t = Scaled({"k": 1})
            >>> _ = t.train(); _ = t.train()
            >>> t.reset({"k": 10}), t.iteration, t.config
            (True, 0, {'k': 10})
            >>> t.train()["y"]
            0
            >>> Trainable().reset({})  # reset_config not implemented
            False
        """
        self.config = new_config
        ctx = _context()
        if ctx is not None:
            self._trial_id = ctx.trial_id
            self._trial_name = ctx.trial_name
            self._logdir = ctx.trial_dir
        else:  # outside a trial (as Ray's: a new temporary directory, made on first use)
            self._logdir = None
        if not self.reset_config(new_config):
            return False
        self._reset_counters()
        return True

    def _reset_counters(self) -> None:
        """Counters of a fresh start (a checkpoint restored next sets the totals)."""
        self._iteration = 0
        self._time_total = 0.0
        self._timesteps_total: float | None = None
        self._episodes_total: float | None = None
        self._time_since_restore = 0.0
        self._timesteps_since_restore: float = 0
        self._iterations_since_restore = 0
        self._restored = False

    def cleanup(self) -> None:
        """Called once when the trial stops."""

    def log_result(self, result: dict[str, Any]) -> None:
        """Called with each result (with its automatic keys and ``config``), in the process
        that runs the trial, before the driver gets it. Override to log it your way."""

    def _export_model(self, export_formats: list[str], export_dir: str) -> dict[str, Any]:
        """Override to export the model in ``export_formats`` into ``export_dir``; return
        ``{format: path}`` of what was exported (default: nothing, ``{}``)."""
        return {}

    def export_model(self, export_formats: list[str] | str,
                     export_dir: str | None = None) -> dict[str, Any]:
        """Export the model (:meth:`_export_model`) into ``export_dir`` (default: :attr:`logdir`).

        Example:
            >>> Trainable().export_model("h5", "/tmp")
            {}
        """
        if isinstance(export_formats, str):
            export_formats = [export_formats]
        return self._export_model(list(export_formats), export_dir or self.logdir)

    # --- driver-facing API ------------------------------------------------------------
    @property
    def iteration(self) -> int:
        return self._iteration

    @property
    def training_iteration(self) -> int:
        return self._iteration

    @property
    def trial_id(self) -> str:
        return self._trial_id

    @property
    def trial_name(self) -> str:
        return self._trial_name

    @property
    def logdir(self) -> str:
        """The trial's directory; outside a trial, a temporary directory made on first use
        (as Ray's ``trainable_`` one; a Trainable that never reads it leaves nothing)."""
        if self._logdir is None:
            self._logdir = tempfile.mkdtemp(prefix="trainable_")
        return self._logdir

    @property
    def trial_resources(self) -> Any:
        """This trial's resources as a :class:`~poptune.PlacementGroupFactory` (as in Ray);
        they change when a ``ResourceChangingScheduler`` resizes the trial."""
        from poptune.execution.placement_groups import resource_dict_to_pg_factory

        ctx = _context()
        return resource_dict_to_pg_factory(dict(ctx.trial_resources) if ctx else None)

    def get_config(self) -> dict[str, Any]:
        return self.config

    def get_current_ip_pid(self) -> tuple[str, int]:
        """``(node IP, process id)`` of the process running this Trainable (the node IP as
        Ray's: this machine's address)."""
        from poptune.session import _node_ip

        return _node_ip(), os.getpid()

    def is_actor(self) -> bool:
        """Whether this Trainable runs a trial (Ray: inside an actor), not called directly."""
        return _context() is not None

    @classmethod
    def resource_help(cls, config: dict[str, Any]) -> str:
        """A help text on this trainable's resources (``""``, as Ray's base class)."""
        return ""

    def get_state(self) -> dict[str, Any]:
        """The counters (``iteration``, ``timesteps_total``, ``time_total``,
        ``episodes_total``) and ``last_result``, as Ray's."""
        return {"iteration": self._iteration, "timesteps_total": self._timesteps_total,
                "time_total": self._time_total, "episodes_total": self._episodes_total,
                "last_result": self._last_result}

    def get_auto_filled_metrics(self, now: Any = None, time_this_iter: float | None = None,
                                timestamp: int | None = None,
                                debug_metrics_only: bool = False) -> dict[str, Any]:
        """The keys :meth:`train` adds to each result, as Ray's (``now``: a ``datetime``,
        default now; ``debug_metrics_only``: only those that need no iteration)."""
        from poptune.session import _hostname, _node_ip

        epoch = current_clock().time() if now is None else now.timestamp()
        filled: dict[str, Any] = {
            "trial_id": self.trial_id, "date": local_date(epoch),
            "timestamp": timestamp if timestamp else int(epoch),
            "time_this_iter_s": time_this_iter, "time_total_s": self._time_total,
            "pid": os.getpid(), "hostname": _hostname(), "node_ip": _node_ip(),
            "config": self.config, "time_since_restore": self._time_since_restore,
            "iterations_since_restore": self._iterations_since_restore,
        }
        if self._timesteps_since_restore:
            filled["timesteps_since_restore"] = self._timesteps_since_restore
        if debug_metrics_only:
            filled = {k: v for k, v in filled.items() if k in _DEBUG_METRICS}
        return filled

    def train(self) -> dict[str, Any]:
        """Run one ``step`` and return its result with the automatic keys, as Ray's
        (``done``, ``training_iteration``, ``timestamp``, ``timesteps_total`` and
        ``episodes_total`` only if the result has none; a reported ``time_this_iter_s`` is
        the iteration's time), after :meth:`log_result` saw it.

        Example:
            >>> class Steps(Trainable):
            ...     def step(self):
            ...         return {"timesteps_this_iter": 10, "time_this_iter_s": 2.0}
            >>> t = Steps()
            >>> _ = t.train(); r = t.train()
            >>> r["timesteps_total"], r["time_total_s"], r["training_iteration"], r["trial_id"]
            (20, 4.0, 2, 'default')
        """
        clock = current_clock()
        start = clock.time()
        result = self.step()
        if not isinstance(result, dict):
            raise TypeError(
                f"`{type(self).__name__}.step()` must return a dict of metrics, got {result!r}"
            )
        result = dict(result)
        self._iteration += 1
        self._iterations_since_restore += 1
        this_iter = result.get("time_this_iter_s")
        if this_iter is None:
            this_iter = clock.time() - start
        self._time_total += this_iter
        self._time_since_restore += this_iter
        result.setdefault("done", False)
        self._timesteps_total, self._episodes_total, steps = count_steps(
            result, self._timesteps_total, self._episodes_total)
        self._timesteps_since_restore += steps
        result.setdefault("training_iteration", self._iteration)
        result.update(self.get_auto_filled_metrics(time_this_iter=this_iter,
                                                   timestamp=result.get("timestamp")))
        self.log_result(result)
        self._last_result = result
        return result

    def train_buffered(self, buffer_time_s: float,
                       max_buffer_length: int = 1000) -> list[dict[str, Any]]:
        """Call :meth:`train` until ``buffer_time_s`` seconds have passed (at least once),
        ``max_buffer_length`` results are collected, or a result is ``done`` or asks for a
        checkpoint; return the results."""
        clock = current_clock()
        results: list[dict[str, Any]] = []
        until = clock.time() + buffer_time_s
        while not results or clock.time() < until:
            result = self.train()
            results.append(result)
            if (result.get("done") or result.get("should_checkpoint")
                    or len(results) >= max_buffer_length):
                break
        return results

    def save(self, checkpoint_dir: str | None = None) -> str:
        """Save into ``checkpoint_dir`` (a temp dir if omitted) and return the directory.

        Called directly (outside Tune), it also writes the counters (iteration, total
        time and steps) into the directory's ``.trainable_state.pkl``, for :meth:`restore`;
        under Tune they are kept with the checkpoint's result, as in Ray.

        Raises:
            ValueError: ``save_checkpoint`` returned a path other than ``checkpoint_dir``.
        """
        checkpoint_dir = checkpoint_dir or tempfile.mkdtemp(prefix="checkpoint_tmp")
        os.makedirs(checkpoint_dir, exist_ok=True)
        data = self.save_checkpoint(checkpoint_dir)
        if isinstance(data, dict):
            with open(os.path.join(checkpoint_dir, _DICT_CHECKPOINT_FILE), "wb") as f:
                pickle.dump(data, f)
        elif isinstance(data, (str, os.PathLike)):
            if os.path.normpath(os.fspath(data)) != os.path.normpath(checkpoint_dir):
                raise ValueError(
                    "The returned checkpoint path from `save_checkpoint` must be None or the "
                    f"same as the provided path argument. Got {data} != {checkpoint_dir}")
        elif data is not None:
            raise TypeError(
                f"`{type(self).__name__}.save_checkpoint()` must return None, a dict or the "
                f"checkpoint_dir it was given, got {data!r}"
            )
        if _context() is None:
            with open(os.path.join(checkpoint_dir, _STATE_FILE), "wb") as f:
                pickle.dump({"iteration": self._iteration, "time_total": self._time_total,
                             "timesteps_total": self._timesteps_total,
                             "episodes_total": self._episodes_total}, f)
        return checkpoint_dir

    def restore(self, checkpoint_path: Any) -> None:
        """Load a checkpoint written by :meth:`save`: its directory (a path) or a
        :class:`~poptune.Checkpoint`. The counters come from the directory's
        ``.trainable_state.pkl`` if it has one (under Tune the worker sets them from the
        checkpoint's result).

        Raises:
            CheckpointNotFoundError: (a ``ValueError``) the checkpoint does not exist.
        """
        from poptune.checkpoint import Checkpoint

        ckpt = (checkpoint_path if isinstance(checkpoint_path, Checkpoint)
                else Checkpoint(os.fspath(checkpoint_path)))
        if not (os.path.exists(ckpt.path) if ckpt._local else ckpt.filesystem.exists(ckpt.path)):
            fs = "local" if ckpt._local else type(ckpt.filesystem).__name__
            raise CheckpointNotFoundError(
                "Could not recover from checkpoint as it does not exist on storage anymore. "
                f"Got storage fs type `{fs}` and path: {ckpt.path} (`checkpoint_path` must "
                "be an existing checkpoint directory or a Checkpoint of one)")
        self._time_since_restore = 0.0
        self._iterations_since_restore = 0
        self._timesteps_since_restore = 0
        with ckpt.as_directory() as checkpoint_dir:
            state_file = os.path.join(checkpoint_dir, _STATE_FILE)
            if os.path.exists(state_file):
                with open(state_file, "rb") as f:
                    state = pickle.load(f)
                self._iteration = state["iteration"]
                self._time_total = state["time_total"]
                self._timesteps_total = state.get("timesteps_total", self._timesteps_total)
                self._episodes_total = state.get("episodes_total", self._episodes_total)
            dict_file = os.path.join(checkpoint_dir, _DICT_CHECKPOINT_FILE)
            if os.path.exists(dict_file):
                with open(dict_file, "rb") as f:
                    self.load_checkpoint(pickle.load(f))
            else:
                self.load_checkpoint(checkpoint_dir)
        self._restored = True

    def stop(self) -> None:
        self.cleanup()

    @classmethod
    def default_resource_request(cls, config: dict[str, Any]) -> Any:
        return None


#: Ray's ``DEBUG_METRICS``: the automatic keys that need no iteration
_DEBUG_METRICS = ("trial_id", "experiment_id", "date", "timestamp", "pid", "hostname",
                  "node_ip", "config")


def _context() -> Any:
    from poptune import session

    current = session.current_session()
    return current.context if current is not None else None
