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

_DICT_CHECKPOINT_FILE = "_dict_checkpoint.pkl"


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
        self._iteration = 0
        self._time_total = 0.0
        self._timesteps_total = None
        self._episodes_total = None
        self._start = current_clock().time()
        self._last = self._start
        self._restored = False
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
        self._iteration = 0
        self._time_total = 0.0
        self._timesteps_total = None
        self._episodes_total = None
        self._restored = False
        self._start = self._last = current_clock().time()
        return True

    def cleanup(self) -> None:
        """Called once when the trial stops."""

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

    def train(self) -> dict[str, Any]:
        """Run one ``step`` and return its result with the auto-filled keys."""
        result = self.step()
        if not isinstance(result, dict):
            raise TypeError(
                f"`{type(self).__name__}.step()` must return a dict of metrics, got {result!r}"
            )
        now = current_clock().time()
        self._iteration += 1
        self._time_total += now - self._last
        result = dict(result)
        result.setdefault("done", False)
        result["training_iteration"] = self._iteration
        result["time_this_iter_s"] = now - self._last
        result["time_total_s"] = self._time_total
        self._last = now
        return result

    def save(self, checkpoint_dir: str | None = None) -> str:
        """Save into ``checkpoint_dir`` (a temp dir if omitted) and return the directory."""
        checkpoint_dir = checkpoint_dir or tempfile.mkdtemp(prefix="checkpoint_tmp")
        os.makedirs(checkpoint_dir, exist_ok=True)
        data = self.save_checkpoint(checkpoint_dir)
        if isinstance(data, dict):
            with open(os.path.join(checkpoint_dir, _DICT_CHECKPOINT_FILE), "wb") as f:
                pickle.dump(data, f)
        elif data is not None and not (isinstance(data, str) and os.path.isdir(data)):
            raise TypeError(
                f"`{type(self).__name__}.save_checkpoint()` must return None or a dict, got {data!r}"
            )
        with open(os.path.join(checkpoint_dir, ".trainable_state.pkl"), "wb") as f:
            pickle.dump({"iteration": self._iteration, "time_total": self._time_total}, f)
        return checkpoint_dir

    def restore(self, checkpoint_dir: str) -> None:
        """Load a checkpoint directory written by :meth:`save`."""
        dict_file = os.path.join(checkpoint_dir, _DICT_CHECKPOINT_FILE)
        state_file = os.path.join(checkpoint_dir, ".trainable_state.pkl")
        if os.path.exists(state_file):
            with open(state_file, "rb") as f:
                state = pickle.load(f)
            self._iteration = state["iteration"]
            self._time_total = state["time_total"]
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


def _context() -> Any:
    from poptune import session

    current = session.current_session()
    return current.context if current is not None else None
