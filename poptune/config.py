"""Experiment configuration: ``TuneConfig``, ``RunConfig``, ``CheckpointConfig``, ``FailureConfig``.

The dataclasses store what they are given; ``__post_init__`` validates once, with messages that
name the parameter, the value received and what is accepted.

Example:
    >>> TuneConfig(metric="loss", mode="min", num_samples=8).num_samples
    8
    >>> TuneConfig(num_samples=0)
    Traceback (most recent call last):
    ...
    poptune.exceptions.TuneConfigError: `num_samples` must be a positive int or -1 (unlimited), got 0
"""

from __future__ import annotations

import datetime
import enum
import math
import numbers
import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence, Union

from poptune._validation import bad_type, bad_value, check_mode, check_one_of
from poptune.backends import BACKEND_NAMES, Backend

StopSpec = Union[Mapping[str, Any], Callable[[str, dict], bool], Any, None]


@dataclass
class CheckpointConfig:
    """Which checkpoints to keep and, for class trainables, when to take them.

    Args:
        num_to_keep: keep at most this many checkpoints per trial (None keeps all). A
            checkpoint a trial may still restore from is never deleted, whatever this says.
        checkpoint_score_attribute: rank checkpoints by this metric (default: recency).
        checkpoint_score_order: "max" or "min".
        checkpoint_frequency: class trainables: checkpoint every N iterations (0 = never).
        checkpoint_at_end: class trainables: checkpoint when the trial ends (None, the
            default: yes under a ``Tuner``, no under ``tune.run``, as in Ray).
    """

    num_to_keep: int | None = None
    checkpoint_score_attribute: str | None = None
    checkpoint_score_order: str = "max"
    checkpoint_frequency: int = 0
    checkpoint_at_end: bool | None = None

    def __post_init__(self) -> None:
        if self.num_to_keep is not None and (
            isinstance(self.num_to_keep, bool) or not isinstance(self.num_to_keep, int)
            or self.num_to_keep < 1
        ):
            raise bad_value("num_to_keep", self.num_to_keep, "None or an int >= 1")
        check_one_of("checkpoint_score_order", self.checkpoint_score_order, ("max", "min"))
        if isinstance(self.checkpoint_frequency, bool) or not isinstance(
            self.checkpoint_frequency, int
        ) or self.checkpoint_frequency < 0:
            raise bad_value("checkpoint_frequency", self.checkpoint_frequency, "an int >= 0")
        if self.checkpoint_score_attribute is not None and not isinstance(
                self.checkpoint_score_attribute, str):
            raise bad_type("checkpoint_score_attribute", self.checkpoint_score_attribute,
                           "None or a metric name (str)")
        if self.checkpoint_at_end is not None and not isinstance(self.checkpoint_at_end, bool):
            raise bad_type("checkpoint_at_end", self.checkpoint_at_end, "None or a bool")


@dataclass
class FailureConfig:
    """How trial failures are handled.

    Args:
        max_failures: retries per trial from its latest checkpoint; -1 retries forever.
        fail_fast: stop the whole experiment at the first trial error; ``"raise"`` re-raises it.
        silence_timeout_s: (poptune) fail a running trial the driver has heard nothing from
            (no result, no checkpoint since its launch or its last one) for more than this
            many seconds: its worker is killed and the trial errors, retried within
            ``max_failures``. For a worker that hangs (a deadlock, a stopped process). None
            (default): never; the driver still warns once when a trial is silent for over
            ``max(10 x its median step interval, 60 s)``. Measured on the experiment's clock,
            from the launch (worker start-up included).

    Example:
        >>> FailureConfig(max_failures=2, silence_timeout_s=600).silence_timeout_s
        600
    """

    max_failures: int = 0
    fail_fast: bool | str = False
    silence_timeout_s: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.max_failures, bool) or not isinstance(self.max_failures, int) or (
            self.max_failures < -1
        ):
            raise bad_value("max_failures", self.max_failures, "an int >= -1 (-1 = retry forever)")
        if not isinstance(self.fail_fast, bool) and self.fail_fast != "raise":
            raise bad_value("fail_fast", self.fail_fast, 'True, False or "raise"')
        t = self.silence_timeout_s
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float))
                              or not 0 < t < math.inf):
            raise bad_value("silence_timeout_s", t, "None or a number of seconds > 0")


@dataclass
class TuneConfig:
    """What to search and how (Ray Tune's ``TuneConfig`` plus ``seed`` and ``backend``).

    Args:
        metric: metric to optimise; passed to the scheduler and searcher.
        mode: "min" or "max".
        search_alg: a ``Searcher``/``SearchAlgorithm``; random/grid search by default.
        scheduler: a ``TrialScheduler``; FIFO by default.
        num_samples: trials to sample (grids are repeated this many times); -1 = unlimited.
        max_concurrent_trials: upper bound on trials running at once (None/0 = no limit).
        time_budget_s: stop the experiment after this many seconds.
        reuse_actors: ``True``, as in Ray: a class trainable's instance is kept when its trial
            ends (done, stopped or paused; not when it failed) and reset for a later trial with
            the same resources, through ``Trainable.reset`` -> ``reset_config(new_config)``,
            instead of a new instance and ``setup``; a ``reset_config`` returning False (the
            default) fails that trial. A kept instance's ``cleanup`` runs when it is not reused
            (at the latest when the experiment's workers end). ``False``/``None`` (the
            default): a new Trainable for each trial. Function trainables are unaffected.
            Worker processes are reused either way: module globals persist between trials
            (Ray without ``reuse_actors`` starts a new actor process per trial).
        trial_name_creator: ``Callable[[Trial], str]`` for trial names.
        trial_dirname_creator: ``Callable[[Trial], str]`` for trial directory names.
        seed: seed for sampling configurations; the same seed samples the same configs.
        backend: "local" (default), "ray", "dask" or "simulated" (in the driver process, on
            simulated time: see ``poptune.simulation``), or a ``Backend`` instance such as
            ``SimulatedBackend(num_cpus=8)``; env ``POPTUNE_BACKEND`` also sets it, and
            ``ray.init(address=...)`` naming a cluster selects ``"ray"``.
        chdir_to_trial_dir: deprecated (Ray 2.60 raises on it): ``False`` keeps trials in the
            driver's working directory, like ``RAY_CHDIR_TO_TRIAL_DIR=0``; warns.
    """

    metric: str | None = None
    mode: str | None = None
    search_alg: Any = None
    scheduler: Any = None
    num_samples: int = 1
    max_concurrent_trials: int | None = None
    time_budget_s: float | datetime.timedelta | None = None
    reuse_actors: bool | None = None
    trial_name_creator: Callable[[Any], str] | None = None
    trial_dirname_creator: Callable[[Any], str] | None = None
    seed: int | None = None
    backend: Any = None
    chdir_to_trial_dir: Any = None  # deprecated (Ray 2.60 rejects it): False = no chdir

    def __post_init__(self) -> None:
        if self.metric is not None and not isinstance(self.metric, str):
            raise bad_type("metric", self.metric, "a str")
        if self.metric == "":
            raise bad_value("metric", self.metric, "None or a non-empty metric name")
        check_mode(self.mode)
        if isinstance(self.num_samples, bool) or not isinstance(self.num_samples, int) or (
            self.num_samples == 0 or self.num_samples < -1
        ):
            raise bad_value("num_samples", self.num_samples, "a positive int or -1 (unlimited)")
        if self.max_concurrent_trials is not None and (
            isinstance(self.max_concurrent_trials, bool)
            or not isinstance(self.max_concurrent_trials, int)
            or self.max_concurrent_trials < 0
        ):
            raise bad_value("max_concurrent_trials", self.max_concurrent_trials, "None or an int >= 0")
        if isinstance(self.time_budget_s, datetime.timedelta):
            self.time_budget_s = self.time_budget_s.total_seconds()
        if self.time_budget_s == 0 and not isinstance(self.time_budget_s, bool):
            self.time_budget_s = None  # as Ray: 0 is no budget (e.g. an argparse default)
        if self.time_budget_s is not None and (
            isinstance(self.time_budget_s, bool)
            or not isinstance(self.time_budget_s, (int, float))
            or not self.time_budget_s > 0  # NaN too
        ):
            raise bad_value("time_budget_s", self.time_budget_s, "None or a number of seconds > 0")
        for name in ("trial_name_creator", "trial_dirname_creator"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise bad_type(name, value, "a callable taking a Trial and returning a str")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise bad_type("seed", self.seed, "an int or None")
        if self.seed is not None and self.seed < 0:
            raise bad_value("seed", self.seed, "None or an int >= 0")
        if self.backend is not None:
            if not isinstance(self.backend, Backend):
                if not isinstance(self.backend, str):
                    raise bad_type("backend", self.backend,
                                   f"one of {', '.join(map(repr, BACKEND_NAMES))} or a Backend")
                check_one_of("backend", self.backend, BACKEND_NAMES)
        if self.chdir_to_trial_dir is not None:
            if not isinstance(self.chdir_to_trial_dir, bool):
                raise bad_type("chdir_to_trial_dir", self.chdir_to_trial_dir, "a bool or None")
            warnings.warn("`chdir_to_trial_dir` is deprecated (Ray 2.60 rejects it): set the "
                          "RAY_CHDIR_TO_TRIAL_DIR environment variable to 0 instead; poptune "
                          "still honours it", DeprecationWarning, stacklevel=3)


@dataclass
class RunConfig:
    """Where results go and when trials stop (Ray Tune's ``RunConfig``).

    Args:
        name: experiment name (default ``{trainable}_{date}``).
        storage_path: parent directory (default ``~/poptune_results``); an fsspec URI for
            remote storage.
        stop: a dict of ``metric: threshold`` (stop when ``result[metric] >= threshold``), a
            ``Callable[[trial_id, result], bool]`` or a ``Stopper``.
        checkpoint_config: a :class:`CheckpointConfig`.
        failure_config: a :class:`FailureConfig`.
        callbacks: a list of :class:`~poptune.callbacks.Callback`.
        verbose: 0 silent, 1 final summary, 2 live table (default), 3 also every result.
        progress_reporter: a Ray-style ``CLIReporter`` whose columns to use.
        log_to_file: also write each trial's stdout and stderr to files in its directory,
            as Ray: ``True`` (files ``stdout`` and ``stderr``), a file name (both into it)
            or a pair ``(stdout file, stderr file)`` (None for one: not written). The files
            are appended to (a restarted trial adds to them). See
            :func:`log_to_file_names`.
        storage_filesystem: an fsspec filesystem for ``storage_path``.
        sync_config: accepted for compatibility (poptune writes to storage directly).
        log_sinks: poptune only: which per-trial result files the engine writes, any of
            ``"json"`` (``result.json``), ``"csv"`` (``progress.csv``) and ``"params"``
            (``params.pkl``; ``params.json`` is always written). Default: all three. ``()``
            keeps a 50,000-trial run to two files per trial; the journal still records
            every result, so nothing is lost and ``Tuner.restore`` still works. Env
            ``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1`` (Ray's switch) means ``("params",)``.
    """

    name: str | None = None
    storage_path: str | os.PathLike[str] | None = None
    stop: StopSpec = None
    checkpoint_config: CheckpointConfig | None = None
    failure_config: FailureConfig | None = None
    callbacks: Sequence[Any] | None = None
    verbose: int | None = None
    progress_reporter: Any = None
    log_to_file: Any = False
    storage_filesystem: Any = None
    sync_config: Any = None
    local_dir: str | None = None  # deprecated alias of storage_path
    log_sinks: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if self.log_sinks is None:
            disabled = os.environ.get("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "0") == "1"
            self.log_sinks = ("params",) if disabled else ("json", "csv", "params")
        if isinstance(self.log_sinks, str) or not all(
                s in ("json", "csv", "params") for s in self.log_sinks):
            raise bad_value("log_sinks", self.log_sinks,
                            "a collection of 'json', 'csv' and 'params'")
        self.log_sinks = tuple(self.log_sinks)
        log_to_file_names(self.log_to_file)  # raises on a value Ray rejects
        if self.name == "":
            self.name = None  # as Ray: the default name
        if self.name is not None and (not isinstance(self.name, str) or not self.name
                                      or "/" in self.name):
            raise bad_value("name", self.name, "a non-empty str without '/'")
        if self.name in (".", ".."):  # would write into storage_path itself, or its parent
            raise bad_value("name", self.name, "a directory name other than '.' and '..'")
        if self.name is not None and ("\x00" in self.name or len(self.name.encode()) > 255):
            raise bad_value("name", self.name,
                            "a directory name of at most 255 bytes without NUL characters")
        if self.storage_path is None and self.local_dir is not None:
            self.storage_path = self.local_dir
        if self.storage_path is not None:
            if not isinstance(self.storage_path, (str, os.PathLike)):
                raise bad_type("storage_path", self.storage_path, "a str path or URI")
            self.storage_path = os.fspath(self.storage_path)
        if self.verbose is not None:
            verbose = getattr(self.verbose, "value", self.verbose)
            if isinstance(verbose, bool):  # Ray accepts True/False (an int subclass)
                verbose = int(verbose)
            if not isinstance(verbose, int) or not 0 <= verbose <= 3:
                raise bad_value("verbose", self.verbose, "an int in [0, 3]")
            self.verbose = verbose
        if self.checkpoint_config is None:
            self.checkpoint_config = CheckpointConfig()
        elif not isinstance(self.checkpoint_config, CheckpointConfig):
            raise bad_type("checkpoint_config", self.checkpoint_config, "a CheckpointConfig")
        if self.failure_config is None:
            self.failure_config = FailureConfig()
        elif not isinstance(self.failure_config, FailureConfig):
            raise bad_type("failure_config", self.failure_config, "a FailureConfig")
        if self.callbacks is not None:
            if isinstance(self.callbacks, (str, bytes, Mapping)) or not isinstance(
                    self.callbacks, Iterable):
                raise bad_type("callbacks", self.callbacks, "None or a list of Callback objects")
            self.callbacks = list(self.callbacks)  # each must be a Callback: checked by fit()
        if self.stop is not None and not (isinstance(self.stop, (Mapping, list, tuple))
                                          or callable(self.stop)):
            raise bad_type("stop", self.stop, "a dict, a callable(trial_id, result), a Stopper "
                           "or a list of Stoppers")
        if isinstance(self.stop, Mapping):
            for key, limit in self.stop.items():
                if not isinstance(limit, numbers.Real):  # bools count, as in Ray
                    raise bad_type(f"stop[{key!r}]", limit,
                                   "a number (stop when the result reaches it)")


def log_to_file_names(log_to_file: Any) -> tuple[str | None, str | None] | None:
    """``RunConfig(log_to_file=...)`` as ``(stdout file, stderr file)`` (None: off), as Ray's
    ``_validate_log_to_file``.

    Example:
        >>> log_to_file_names(True), log_to_file_names("out.log"), log_to_file_names(False)
        (('stdout', 'stderr'), ('out.log', 'out.log'), None)
        >>> log_to_file_names(("a",))
        Traceback (most recent call last):
        ...
        ValueError: If you pass a Sequence to `log_to_file` it has to have a length of 2 (for stdout and stderr, respectively). The Sequence you passed has length 1: ('a',).

    Raises:
        ValueError: not a bool, a str or a sequence of two file names (str or None).
    """
    if not log_to_file:
        return None
    if log_to_file is True:
        return "stdout", "stderr"
    if isinstance(log_to_file, (str, os.PathLike)):
        name = os.fspath(log_to_file)
        return name, name
    if isinstance(log_to_file, Sequence) and not isinstance(log_to_file, (bytes, bytearray)):
        if len(log_to_file) != 2:
            raise ValueError(
                "If you pass a Sequence to `log_to_file` it has to have a length of 2 (for "
                "stdout and stderr, respectively). The Sequence you passed has length "
                f"{len(log_to_file)}: {log_to_file!r}.")
        out, err = (os.fspath(f) if isinstance(f, os.PathLike) else f for f in log_to_file)
        if all(f is None or isinstance(f, str) for f in (out, err)):
            return out, err
    raise ValueError(
        "You can pass a boolean, a string, or a Sequence of length 2 (of file names: str or "
        f"None) to `log_to_file`, but you passed something else ({log_to_file!r} of type "
        f"{type(log_to_file).__name__}).")


def default_storage_path() -> str:
    """``$POPTUNE_STORAGE_PATH`` or ``~/poptune_results``.

    Ray's old ``TUNE_RESULT_DIR``/``RAY_AIR_LOCAL_CACHE_DIR`` are not read (Ray 2.60 refuses
    to run with them set): a warning says where the results go instead."""
    path = os.environ.get("POPTUNE_STORAGE_PATH") or os.path.expanduser("~/poptune_results")
    for var in ("TUNE_RESULT_DIR", "RAY_AIR_LOCAL_CACHE_DIR"):
        if os.environ.get(var):
            import warnings

            warnings.warn(f"${var} is not read (Ray 2.60 rejects it too): results go to "
                          f"{path}; set RunConfig(storage_path=...) or $POPTUNE_STORAGE_PATH",
                          UserWarning, stacklevel=2)
    return path


class _ResumeType(enum.Enum):
    """How ``Tuner.restore`` treats trials of one status (Ray's ``ResumeConfig.ResumeType``).

    Members: ``RESUME`` (continue from the latest checkpoint), ``RESTART`` (start again
    without a checkpoint), ``SKIP`` (leave it as it is: unfinished trials end as TERMINATED).
    """

    RESUME = "resume"
    RESTART = "restart"
    SKIP = "skip"


@dataclass
class ResumeConfig:
    """Which trials a restored experiment continues (``Tuner.restore(..., _resume_config=)``,
    ``tune.run(resume_config=...)``), as Ray Tune's ``ResumeConfig``.

    Args:
        finished: for TERMINATED trials; only ``SKIP`` (finished trials never re-run here).
        unfinished: for PENDING/RUNNING/PAUSED trials: ``RESUME`` (default) or ``SKIP``.
        errored: for ERROR trials: ``SKIP`` (default), ``RESUME`` or ``RESTART``.

    Values are ``ResumeConfig.ResumeType`` members or their strings (``"resume"``, ...).

    Example:
        >>> rc = ResumeConfig(errored=ResumeConfig.ResumeType.RESTART)
        >>> rc._flags()
        {'resume_unfinished': True, 'resume_errored': False, 'restart_errored': True}
    """

    ResumeType = _ResumeType

    finished: Any = _ResumeType.SKIP
    unfinished: Any = _ResumeType.RESUME
    errored: Any = _ResumeType.SKIP

    def __post_init__(self) -> None:
        allowed = {"finished": ("SKIP",), "unfinished": ("RESUME", "SKIP"),
                   "errored": ("RESUME", "RESTART", "SKIP")}
        for name, names in allowed.items():
            value = getattr(self, name)
            try:
                kind = value if isinstance(value, _ResumeType) else _ResumeType(str(value).lower())
            except ValueError:
                kind = None
            if kind is None or kind.name not in names:
                raise bad_value(name, value, "one of " + ", ".join(
                    f"ResumeConfig.ResumeType.{n}" for n in names)
                    + (" (poptune never re-runs a finished trial)" if name == "finished" else "")
                    + (" (poptune has no restart for unfinished trials)"
                       if name == "unfinished" else ""))
            setattr(self, name, kind)

    def _flags(self) -> dict[str, bool]:
        """The ``Tuner.restore`` flags this config means."""
        return {"resume_unfinished": self.unfinished is _ResumeType.RESUME,
                "resume_errored": self.errored is _ResumeType.RESUME,
                "restart_errored": self.errored is _ResumeType.RESTART}


@dataclass
class SyncConfig:
    """Ray Tune's file-sync settings, accepted and validated (``RunConfig(sync_config=...)``).

    None of them changes what poptune does: it writes straight to ``storage_path``; on remote
    storage the journal is uploaded at every commit, checkpoints before ``report`` returns,
    and the rest of the experiment directory in the background and at the end
    (:mod:`poptune.storage.remote`). So ``sync_period``, ``sync_timeout``, ``sync_artifacts``
    and ``sync_artifacts_on_checkpoint`` are kept only so that scripts run unchanged.

    Example:
        >>> SyncConfig(sync_period=60).sync_period
        60
        >>> SyncConfig(sync_timeout=-1)
        Traceback (most recent call last):
        ...
        poptune.exceptions.TuneConfigError: `sync_timeout` must be a number > 0, got -1
    """

    sync_period: float = 300
    sync_timeout: float = 1800
    sync_artifacts: bool = False
    sync_artifacts_on_checkpoint: bool = True

    def __post_init__(self) -> None:
        for name in ("sync_period", "sync_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise bad_value(name, value, "a number > 0")
        for name in ("sync_artifacts", "sync_artifacts_on_checkpoint"):
            if not isinstance(getattr(self, name), bool):
                raise bad_type(name, getattr(self, name), "a bool")


__all__ = ["CheckpointConfig", "FailureConfig", "ResumeConfig", "RunConfig", "SyncConfig",
           "TuneConfig", "default_storage_path"]
