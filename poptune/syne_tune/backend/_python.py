"""``PythonBackend``: a Python function ``f(**hyperparameters)`` that reports through
:class:`~poptune.syne_tune.Reporter`, run in poptune's worker processes."""

from __future__ import annotations

import inspect
import os
import shutil
from collections.abc import Callable
from typing import Any

from poptune._validation import bad_type

CHECKPOINT_KEY = "st_checkpoint_dir"


class TrialBackend:
    """What :class:`~poptune.syne_tune.Tuner` asks a backend: a poptune trainable and the
    name Syne Tune gives its experiments."""

    def trainable(self, config_space: dict[str, Any]) -> Any:
        raise NotImplementedError

    def entrypoint_stem(self) -> str:
        raise NotImplementedError


def _run_function(fn: Callable[..., Any], keys: list[str], wants_checkpoint: bool,
                  config: dict[str, Any]) -> None:
    from poptune import session
    from poptune.syne_tune import report

    kwargs = {k: config[k] for k in keys if k in config}
    if wants_checkpoint:
        ckpt_dir = os.path.join(session.get_context().get_trial_dir(), "st_checkpoint")
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        restored = session.get_checkpoint()
        if restored is not None:
            restored.to_directory(ckpt_dir)
        os.makedirs(ckpt_dir, exist_ok=True)
        kwargs[CHECKPOINT_KEY] = ckpt_dir
        setattr(session.current_session(), report.SESSION_ATTR, ckpt_dir)
    fn(**kwargs)


class PythonBackend(TrialBackend):
    """Run ``tune_function(**config)`` for each trial in poptune's worker processes.

    The function gets the keys of ``config_space`` (constants included) as keyword
    arguments and reports with ``Reporter()``; a function with a ``st_checkpoint_dir``
    parameter gets a directory that is saved with each report and restored on resume
    (PBT). Unlike Syne Tune, the function keeps its globals (it is shipped with
    cloudpickle), so imports inside it are optional.

    Args:
        tune_function: the objective.
        config_space: the search space (the same dict as the scheduler's).
        rotate_gpus, delete_checkpoints: accepted for Syne Tune compatibility.

    Example:
        >>> def f(x):
        ...     from poptune.syne_tune import Reporter
        ...     Reporter()(loss=x ** 2)
        >>> backend = PythonBackend(f, {"x": 1.0})
    """

    def __init__(self, tune_function: Callable[..., Any], config_space: dict[str, Any],
                 rotate_gpus: bool = True, delete_checkpoints: bool = False) -> None:
        if not callable(tune_function) or inspect.isclass(tune_function):
            raise bad_type("tune_function", tune_function, "a function f(**config)")
        if not isinstance(config_space, dict):
            raise bad_type("config_space", config_space, "a dict of domains and constants")
        self.tune_function = tune_function
        self.config_space = config_space
        self.delete_checkpoints = delete_checkpoints

    def entrypoint_stem(self) -> str:
        return "python_entrypoint"

    def trainable(self, config_space: dict[str, Any]) -> Any:
        fn, keys = self.tune_function, list(self.config_space)
        try:
            wants = CHECKPOINT_KEY in inspect.signature(fn).parameters
        except (TypeError, ValueError):
            wants = False

        def trainable(config: dict[str, Any]) -> None:
            _run_function(fn, keys, wants, config)

        trainable.__name__ = trainable.__qualname__ = getattr(fn, "__name__", "tune_function")
        return trainable
