"""``PythonBackend``: a Python function ``f(**hyperparameters)`` that reports through
:class:`~poptune.syne_tune.Reporter`, run in poptune's worker processes."""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from poptune._validation import bad_type

CHECKPOINT_KEY = "st_checkpoint_dir"
CUDA = "CUDA_VISIBLE_DEVICES"


@dataclass(frozen=True)
class TrialSetup:
    """What a Syne Tune trial gets around its run, as under Syne Tune's ``LocalBackend``:
    the launcher's working directory and, when ``set_cuda``, the driver's
    ``CUDA_VISIBLE_DEVICES`` (``cuda``; None: unset) instead of the engine's."""

    cwd: str
    set_cuda: bool = False
    cuda: str | None = None

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        old_cwd, old_cuda = os.getcwd(), os.environ.get(CUDA)
        if old_cwd != self.cwd and os.path.isdir(self.cwd):
            os.chdir(self.cwd)
        if self.set_cuda:
            _set_env(CUDA, self.cuda)
        try:
            yield
        finally:
            if self.set_cuda:
                _set_env(CUDA, old_cuda)
            if os.getcwd() != old_cwd and os.path.isdir(old_cwd):
                os.chdir(old_cwd)


def _set_env(key: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = value


class TrialBackend:
    """What :class:`~poptune.syne_tune.Tuner` asks a backend: a poptune trainable, the
    name Syne Tune gives its experiments and the GPUs each trial asks for."""

    rotate_gpus: bool = True
    num_gpus_per_trial: int = 1
    #: the working directory when the backend was built: trials run there (as Syne Tune)
    cwd: str = ""

    def trainable(self, config_space: dict[str, Any], setup: TrialSetup) -> Any:
        raise NotImplementedError

    def entrypoint_stem(self) -> str:
        raise NotImplementedError

    def gpus_per_trial(self, num_gpus: float, n_workers: int) -> float:
        """The ``gpu`` request of each trial: none without GPUs or ``rotate_gpus``;
        ``num_gpus_per_trial`` when all workers fit; else a share, so that ``n_workers``
        trials fit on the GPUs at once (Syne Tune then puts several trials on one GPU).

        Example:
            >>> b = PythonBackend(lambda x: None, {})
            >>> b.gpus_per_trial(0, 2), b.gpus_per_trial(2, 2), b.gpus_per_trial(2, 3)
            (0.0, 1.0, 0.5)
        """
        gpus = int(num_gpus)
        if not self.rotate_gpus or gpus < 1:
            return 0.0
        per = min(self.num_gpus_per_trial, gpus)
        if per * n_workers <= gpus:
            return float(per)
        if gpus >= n_workers:
            return float(gpus // n_workers)
        return 1.0 / math.ceil(n_workers / gpus)


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise bad_type(name, value, "True or False")
    return value


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
        rotate_gpus: when poptune's backend has GPUs, give each trial one (a share of one
            when ``n_workers`` is larger than the number of GPUs), as Syne Tune rotates
            them; False (or no GPU): the trial keeps the driver's ``CUDA_VISIBLE_DEVICES``.
        delete_checkpoints: accepted for Syne Tune compatibility.

    The function runs in the working directory the backend was built in (not the trial
    directory), so relative paths mean what they mean to the launcher.

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
        self.rotate_gpus = _check_bool("rotate_gpus", rotate_gpus)
        self.delete_checkpoints = delete_checkpoints
        self.cwd = os.getcwd()

    def entrypoint_stem(self) -> str:
        return "python_entrypoint"

    def trainable(self, config_space: dict[str, Any], setup: TrialSetup) -> Any:
        fn, keys = self.tune_function, list(self.config_space)
        try:
            wants = CHECKPOINT_KEY in inspect.signature(fn).parameters
        except (TypeError, ValueError):
            wants = False

        def trainable(config: dict[str, Any]) -> None:
            with setup.applied():
                _run_function(fn, keys, wants, config)

        trainable.__name__ = trainable.__qualname__ = getattr(fn, "__name__", "tune_function")
        return trainable
