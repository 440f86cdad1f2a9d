"""Syne Tune's ``Tuner`` on poptune's engine.

``Tuner(trial_backend, scheduler, stop_criterion, n_workers).run()`` runs the experiment
with poptune (worker processes, journal, restore-safe layout) in
``$SYNETUNE_FOLDER/<name>`` (default ``~/syne-tune/<name>``, as Syne Tune), writes
``metadata.json`` and ``results.csv.zip`` there for :func:`load_experiment`, and the
directory is an ordinary poptune experiment: ``poptune ls ~/syne-tune`` and the dashboard
show it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from poptune._validation import bad_type, bad_value
from poptune.exceptions import TuneConfigError, TuneError
from poptune.syne_tune._bridge import METADATA_FILE, Bridge
from poptune.syne_tune.backend._python import CUDA, TrialBackend, TrialSetup
from poptune.syne_tune.optimizer.baselines import SyneScheduler
from poptune.syne_tune.stopping_criterion import TuningStatus
from poptune.syne_tune.tuner_callback import is_syne_callback

logger = logging.getLogger("poptune.syne_tune")

__all__ = ["TrialFailedError", "Tuner", "experiment_path", "json_default", "name_from_base"]

ENV_FOLDER = "SYNETUNE_FOLDER"
#: the pickled tuner, as Syne Tune names it (``ST_TUNER_DILL_FILENAME``)
TUNER_FILE = "tuner.dill"
#: lines of a trial's log shown when it failed or reported nothing
TAIL_LINES = 20


class TrialFailedError(TuneError, ValueError):
    """More than ``max_failures`` trials failed: Syne Tune's ``ValueError("Trial - {id}
    failed")``, and a poptune :class:`~poptune.exceptions.TuneError`."""


def json_default(value: Any) -> Any:
    """``json.dump``'s ``default`` for ``metadata.json``: numpy scalars as numbers (as Syne
    Tune's ``dump_json_with_numpy``), arrays as lists, anything else as its ``str``.

    Example:
        >>> import numpy as np
        >>> json.dumps({"seed": np.int64(3), "w": np.float32(0.5)}, default=json_default)
        '{"seed": 3, "w": 0.5}'
    """
    if getattr(value, "size", None) == 1 and callable(getattr(value, "item", None)):
        return value.item()
    if callable(getattr(value, "tolist", None)):
        return value.tolist()
    return str(value)


def experiment_path(tuner_name: str | None = None, local_path: str | None = None) -> Path:
    """Where experiments live: ``local_path``, else ``$SYNETUNE_FOLDER``, else
    ``~/syne-tune``; with ``tuner_name`` the experiment's own directory."""
    root = Path(local_path) if local_path is not None else Path(
        os.environ.get(ENV_FOLDER) or "~/syne-tune").expanduser()
    return root / tuner_name if tuner_name is not None else root


def name_from_base(base: str, max_length: int = 63) -> str:
    """``base`` plus a UTC timestamp with milliseconds, e.g. ``lenet-2026-12-03-12-00-00-123``.

    Example:
        >>> bool(re.fullmatch(r"x-\\d{4}(-\\d\\d){5}-\\d{3}", name_from_base("x")))
        True
    """
    now = time.time()
    stamp = time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(now)) + f"-{int(now * 1000) % 1000:03d}"
    return f"{base[:max_length - len(stamp) - 1]}-{stamp}"


def _tail(path: str, lines: int = TAIL_LINES) -> str | None:
    """The last ``lines`` lines of a text file, or None if it is missing or empty."""
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    return "\n".join(text.rstrip().splitlines()[-lines:]) or None


def _show_logs(trial: Any, what: str) -> None:
    """Print where a trial's output is, with the tails of its error and std files."""
    trial_dir = getattr(trial, "local_path", None) or ""
    print(f"{what}; its directory is {trial_dir}")
    files = [getattr(trial, "error_file", None)] + [
        os.path.join(trial_dir, name) for name in ("stdout.txt", "stderr.txt")]
    shown = False
    for path in files:
        text = _tail(path) if path else None
        if text:
            shown = True
            print(f"--- last lines of {path}:\n{text}")
    if not shown:
        print("(a PythonBackend function's output is not captured: it went to this console)")


def _best(status: TuningStatus, metric: str, mode: str) -> tuple[int, float] | None:
    """The trial with the best value of ``metric`` over all its results, and that value."""
    sign = 1.0 if mode == "min" else -1.0
    best = [(sign * st.min_metrics[metric] if mode == "min" else sign * st.max_metrics[metric],
             trial_id) for trial_id, st in status.trial_metric_statistics.items()
            if metric in st.min_metrics]
    if not best:
        return None
    value, trial_id = min(best)
    return trial_id, sign * value


class Tuner:
    """Run ``scheduler`` over ``trial_backend`` with ``n_workers`` trials at a time until
    ``stop_criterion(status)`` holds.

    Args:
        trial_backend: a :class:`PythonBackend` or :class:`LocalBackend`.
        scheduler: a baseline from :mod:`poptune.syne_tune.optimizer.baselines`.
        stop_criterion: a :class:`StoppingCriterion` or any ``f(TuningStatus) -> bool``.
        n_workers: trials running at once.
        max_failures: failed trials tolerated; one more stops tuning and raises
            :class:`TrialFailedError` (a ``ValueError``, as Syne Tune; default 1).
        tuner_name: the experiment's name prefix (default: the backend's entry point):
            letters, digits, ``-``, ``_`` and ``.``.
        suffix_tuner_name: append a timestamp to the name (default True).
        callbacks: poptune callbacks and Syne Tune ``TunerCallback`` objects
            (:mod:`poptune.syne_tune.tuner_callback`); ``results.csv.zip`` is written
            either way, and a ``StoreResultsCallback`` among them holds its rows.
        metadata: extra entries for ``metadata.json``.
        results_update_interval: seconds between writes of ``results.csv.zip`` (and of
            ``tuner.dill``).
        save_tuner: pickle the tuner into ``tuner.dill`` (:meth:`save`) with each write of
            the results and at the end of :meth:`run` (default True, as Syne Tune).
        sleep_time, print_update_interval, start_jobs_without_delay, trial_backend_path,
            output_logger: accepted for compatibility (poptune does not poll, so there is
            nothing to sleep).

    Trials run in the working directory their backend was built in, and see GPUs as
    the backend's ``rotate_gpus`` says. A trial that ends without reporting raises
    ``ValueError("trial {id} completed and no metrics got observed")`` (as Syne Tune).

    :meth:`run` on a tuner that ran before (in this process, or loaded with :meth:`load`)
    continues its experiment, as Syne Tune: the trials that ended stay ended, new trial ids
    follow the old ones, the searcher and scheduler go on from their journaled state, the
    status keeps its counts (so a new ``stop_criterion`` counts the earlier trials too) and
    ``results.csv.zip`` keeps the earlier rows.

    Example:
        >>> from poptune.syne_tune import Tuner, StoppingCriterion, Reporter
        >>> from poptune.syne_tune.backend import PythonBackend
        >>> from poptune.syne_tune.config_space import uniform
        >>> from poptune.syne_tune.optimizer.baselines import RandomSearch
        >>> def f(x):
        ...     Reporter()(loss=(x - 0.5) ** 2)
        >>> space = {"x": uniform(0, 1)}
        >>> tuner = Tuner(PythonBackend(f, space), RandomSearch(space, metric="loss"),
        ...               StoppingCriterion(max_num_trials_finished=3), n_workers=2)
        >>> tuner.run()  # doctest: +SKIP
    """

    def __init__(self, trial_backend: TrialBackend, scheduler: SyneScheduler,
                 stop_criterion: Callable[[TuningStatus], bool], n_workers: int,
                 sleep_time: float = 5.0, results_update_interval: float = 10.0,
                 print_update_interval: float = 30.0, max_failures: int = 1,
                 tuner_name: str | None = None, asynchronous_scheduling: bool = True,
                 wait_trial_completion_when_stopping: bool = False,
                 callbacks: list[Any] | None = None, metadata: dict[str, Any] | None = None,
                 suffix_tuner_name: bool = True, save_tuner: bool = True,
                 start_jobs_without_delay: bool = True, trial_backend_path: str | None = None,
                 output_logger: Any = None) -> None:
        if not isinstance(trial_backend, TrialBackend):
            raise bad_type("trial_backend", trial_backend, "a PythonBackend or LocalBackend")
        if not isinstance(scheduler, SyneScheduler):
            raise bad_type("scheduler", scheduler,
                           "a scheduler from poptune.syne_tune.optimizer.baselines")
        if not callable(stop_criterion):
            raise bad_type("stop_criterion", stop_criterion,
                           "a StoppingCriterion or a callable(TuningStatus) -> bool")
        if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
            raise bad_value("n_workers", n_workers, "an integer >= 1")
        if not asynchronous_scheduling:
            raise bad_value("asynchronous_scheduling", asynchronous_scheduling,
                            "True (poptune schedules asynchronously)")
        if wait_trial_completion_when_stopping:
            raise bad_value("wait_trial_completion_when_stopping",
                            wait_trial_completion_when_stopping,
                            "False (running trials are stopped when the criterion holds)")
        if tuner_name is not None and (not isinstance(tuner_name, str) or not re.fullmatch(
                r"[A-Za-z0-9._-]+", tuner_name) or tuner_name in (".", "..")):
            raise bad_value("tuner_name", tuner_name, "a name usable as a directory: letters, "
                            "digits, '-', '_' and '.' (not '.' or '..')")
        self.trial_backend = trial_backend
        self.scheduler = scheduler
        self.stop_criterion = stop_criterion
        self.n_workers = n_workers
        self.max_failures = max_failures
        self.results_update_interval = results_update_interval
        self.callbacks = list(callbacks or [])
        base = tuner_name or trial_backend.entrypoint_stem().replace("_", "-")
        self.name = name_from_base(base) if suffix_tuner_name else base
        self.tuner_path = experiment_path(self.name)
        self.metadata = dict(metadata or {})
        self.metadata.update(st_tuner_creation_timestamp=time.time(),
                             entrypoint=trial_backend.entrypoint_stem(),
                             backend=type(trial_backend).__name__, **scheduler.metadata())
        self.save_tuner = save_tuner
        self.status: TuningStatus | None = None
        self._bridge: Bridge | None = None
        self._configs: dict[int, dict[str, Any]] = {}
        #: the results table and Syne Tune's view of the trials of the earlier runs
        self._rows: list[dict[str, Any]] = []
        self._trials: dict[int, Any] = {}
        self._save_failed = False

    def __getstate__(self) -> dict[str, Any]:
        """What :meth:`save` pickles: all but the live link to a running engine."""
        state = dict(self.__dict__)
        bridge = state.pop("_bridge", None)
        if bridge is not None:  # saved during a run: the table and trials as they are now
            state["_rows"], state["_trials"] = list(bridge.rows), dict(bridge.trials)
            state["_configs"] = {n: t.config for n, t in bridge.trials.items()}
        state["_bridge"] = None
        return state

    def save(self, folder: str | os.PathLike[str] | None = None) -> None:
        """Pickle this tuner into ``{folder}/tuner.dill`` (default: the experiment's
        directory), as Syne Tune; :meth:`load` reads it back. The file is written with
        cloudpickle (the tune function, lambdas and closures included) and loads with
        ``pickle``, ``cloudpickle`` or ``dill``.

        Example:
            >>> tuner.save()  # doctest: +SKIP
            >>> Tuner.load(str(tuner.tuner_path)).status.num_trials_started  # doctest: +SKIP
            4
        """
        import cloudpickle

        path = Path(folder) if folder is not None else self.tuner_path
        path.mkdir(parents=True, exist_ok=True)
        target = path / TUNER_FILE
        data = cloudpickle.dumps(self)
        tmp = path / f".{TUNER_FILE}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, target)
        logger.debug("saved the tuner in %s", target)

    @staticmethod
    def load(tuner_path: str | os.PathLike[str]) -> "Tuner":
        """The tuner :meth:`save` pickled into ``{tuner_path}/tuner.dill``. Its
        :attr:`tuner_path` becomes ``tuner_path`` (Syne Tune resets it to
        ``$SYNETUNE_FOLDER/<name>``, which differs when the experiment was elsewhere), so
        :meth:`run` continues the experiment there.

        Raises:
            FileNotFoundError: there is no ``tuner.dill`` in ``tuner_path``.
            TuneConfigError: the file holds something else than a tuner.
            TypeError: ``tuner_path`` is not a path.

        Example:
            >>> tuner = Tuner.load("~/syne-tune/python-entrypoint-2026-12-03-12-00-00-000")  # doctest: +SKIP
            >>> tuner.stop_criterion = StoppingCriterion(max_num_trials_started=20)  # doctest: +SKIP
            >>> tuner.run()  # doctest: +SKIP
        """
        import pickle

        if not isinstance(tuner_path, (str, os.PathLike)):
            raise bad_type("tuner_path", tuner_path, "the experiment's directory (str or Path)")
        path = Path(tuner_path).expanduser()
        with open(path / TUNER_FILE, "rb") as f:
            tuner = pickle.load(f)
        if not isinstance(tuner, Tuner):
            raise bad_value("tuner_path", str(path),
                            f"a directory whose {TUNER_FILE} holds a pickled Tuner (it holds a "
                            f"{type(tuner).__name__})")
        tuner.tuner_path = path
        return tuner

    def _autosave(self) -> None:
        """Save during a run: a failure warns once, naming the error, and tuning goes on."""
        if not self.save_tuner or self._save_failed:
            return
        try:
            self.save()
        except Exception as exc:  # noqa: BLE001 - a callback or function that cannot pickle
            self._save_failed = True
            warnings.warn(f"Tuner(save_tuner=True): the tuner could not be pickled into "
                          f"{self.tuner_path / TUNER_FILE} ({type(exc).__name__}: {exc}); "
                          "tuning goes on without it (pass save_tuner=False to skip saving)",
                          stacklevel=2)

    @property
    def tuning_status(self) -> TuningStatus | None:
        """Syne Tune's name for :attr:`status` (None before :meth:`run`)."""
        return self.status

    def run(self) -> None:
        """Run the experiment until the stopping criterion holds (or the searcher is done).

        Raises:
            ValueError: a trial completed without reporting a result (as Syne Tune).
            TrialFailedError: more than ``max_failures`` trials failed.
        """
        import poptune as tune
        from poptune.trainable import with_resources

        parts = self.scheduler.poptune_parts()
        path = str(self.tuner_path)
        syne_cbs = [cb for cb in self.callbacks if is_syne_callback(cb)]
        resume = self.status is not None and tune.Tuner.can_restore(path)
        earlier: dict[str, Any] = ({"status": self.status, "rows": self._rows,
                                    "trials": self._trials} if resume else {})
        bridge = Bridge(self.stop_criterion, self.scheduler.metric_names(), self.max_failures,
                        path, parts.pop("stop", None), self.results_update_interval,
                        parts.pop("resource", None), syne_cbs,
                        scheduler_stops=parts.pop("scheduler_stops", None),
                        scheduler_pauses=parts.pop("scheduler_pauses", None),
                        on_write=self._autosave, **earlier)
        self.status = bridge.status
        #: the results table: a StoreResultsCallback's ``results`` are its rows
        self._bridge = bridge
        resources, setup = self._trial_resources()
        trainable = with_resources(
            self.trial_backend.trainable(self.scheduler.config_space, setup), resources)
        verbose = int(os.environ.get("POPTUNE_SYNE_VERBOSE", 1))
        callbacks = [bridge, *(cb for cb in self.callbacks if cb not in syne_cbs)]
        if resume:
            # the engine continues its journal: ended trials stay ended, the searcher and
            # scheduler go on from their journaled state; this run's stopper and callbacks
            tuner = tune.Tuner.restore(path, trainable)
            tuner.run_config = dataclasses.replace(tuner.run_config, stop=bridge,
                                                   callbacks=callbacks, verbose=verbose)
            tuner.tune_config.max_concurrent_trials = self.n_workers
            restored = tuner.tune_config.scheduler  # the one whose journaled state goes on
            if callable(getattr(restored, "was_stopped", None)):
                bridge.scheduler_stops = restored.was_stopped
            if callable(getattr(restored, "is_waiting", None)):
                bridge.scheduler_pauses = restored.is_waiting
        else:
            with warnings.catch_warnings():  # Syne Tune's trials keep the launcher's cwd
                warnings.simplefilter("ignore", DeprecationWarning)
                tune_config = tune.TuneConfig(
                    metric=self.scheduler.metric, mode=self.scheduler.mode,
                    max_concurrent_trials=self.n_workers, chdir_to_trial_dir=False, **parts)
            tuner = tune.Tuner(
                trainable, param_space=dict(self.scheduler.config_space),
                tune_config=tune_config,
                run_config=tune.RunConfig(
                    name=self.name, storage_path=str(self.tuner_path.parent), stop=bridge,
                    callbacks=callbacks, verbose=verbose))
        os.makedirs(path, exist_ok=True)
        self.metadata["st_tuner_start_timestamp"] = time.time()
        with open(os.path.join(path, METADATA_FILE), "w") as f:
            json.dump(self.metadata, f, default=json_default)
        for cb in syne_cbs:
            if callable(getattr(cb, "on_tuning_start", None)):
                cb.on_tuning_start(self)
        logger.info("results of trials will be saved on %s", path)
        try:
            tuner.fit()
        finally:
            self._configs = {n: t.config for n, t in bridge.trials.items()}
            self._rows, self._trials = bridge.rows, bridge.trials
            self._autosave()
        if verbose:
            self._print_summary()
        for cb in syne_cbs:
            if callable(getattr(cb, "on_tuning_end", None)):
                cb.on_tuning_end()
        self._raise_for(bridge)

    def _trial_resources(self) -> tuple[dict[str, float], TrialSetup]:
        """Each trial's poptune resources, and what it keeps from the driver: a GPU (or a
        share) per trial when poptune's local (or simulated) backend has GPUs and
        ``rotate_gpus``; else the driver's ``CUDA_VISIBLE_DEVICES``. On Ray and Dask no GPU
        is requested and the environment is theirs."""
        from poptune._compat import requested_backend

        name = os.environ.get("POPTUNE_BACKEND") or requested_backend() or "local"
        num_gpus = 0.0
        if name in ("local", "simulated"):
            from poptune.backends import get_backend

            num_gpus = float(get_backend(name).total_resources().get("gpu", 0) or 0)
        gpu = self.trial_backend.gpus_per_trial(num_gpus, self.n_workers)
        cpus = os.cpu_count() or 1
        resources = {"cpu": min(1.0, cpus / self.n_workers)}
        if gpu:
            resources["gpu"] = gpu
        return resources, TrialSetup(cwd=self.trial_backend.cwd,
                                     set_cuda=name == "local" and not gpu,
                                     cuda=os.environ.get(CUDA))

    def _raise_for(self, bridge: Bridge) -> None:
        """Syne Tune's errors at the end of a run: a trial that reported nothing, too many
        failed trials (after showing where their output is)."""
        if bridge.silent is not None:
            number = _number(bridge.silent)
            _show_logs(bridge.silent, f"trial {number} completed and no metrics got observed")
            raise ValueError(f"trial {number} completed and no metrics got observed")
        if bridge.status.num_trials_failed > self.max_failures:
            first = bridge.failed[0]
            number = _number(first)
            _show_logs(first, f"trial {number} failed")
            detail = getattr(first, "error_msg", None) or "see its error.txt"
            raise TrialFailedError(
                f"Trial - {number} failed: {bridge.status.num_trials_failed} trials failed "
                f"(more than max_failures={self.max_failures}); trial {number}: {detail}; "
                f"see the trial logs in {self.tuner_path}")

    def _print_summary(self) -> None:
        """Syne Tune's end-of-run summary (``print_best_metric_found``)."""
        status = self.status
        if status is None or status.overall_metric_statistics.count == 0:
            return
        print("-" * 20)
        print(f"Resource summary (last result is reported):\n{status}")
        best = _best(status, self.scheduler.metric, self.scheduler.mode)
        if best is not None:
            print(f"{self.scheduler.metric}: best {best[1]} for trial-id {best[0]}")
        print("-" * 20)

    def best_config(self, metric: str | int | None = 0) -> tuple[int, dict[str, Any]]:
        """The trial id and config with the best value of ``metric`` (a name, or an index
        into the scheduler's metrics) over all results of the run, as Syne Tune.

        Raises:
            TuneConfigError: before :meth:`run`, for an unknown metric, or with no result.
        """
        names = self.scheduler.metric_names()
        if metric is None or metric == 0:
            metric = names[0]
        if isinstance(metric, int) or metric not in names:
            raise bad_value("metric", metric, f"one of the scheduler's metrics {names} or 0")
        if self.status is None:
            raise TuneConfigError(f"Tuner {self.name!r} has no results: call run() first")
        best = _best(self.status, metric, self.scheduler.mode)
        if best is None:
            raise TuneConfigError(f"Tuner {self.name!r} has no result for {metric!r}")
        trial_id = best[0]
        config = dict(self._configs.get(trial_id, {}))
        print(f"Best configuration (trial {trial_id}, {metric}={best[1]}): {config}")
        return trial_id, config


def _number(trial: Any) -> int:
    from poptune.syne_tune._bridge import trial_number

    return trial_number(trial.trial_id)
