"""``Tuner``: configure an experiment, run it, restore it.

Example:
    >>> import poptune as tune
    >>> def objective(config):
    ...     tune.report({"score": config["x"] ** 2})
    >>> tuner = tune.Tuner(objective, param_space={"x": tune.grid_search([1, 2, 3])},
    ...                    tune_config=tune.TuneConfig(metric="score", mode="min"),
    ...                    run_config=tune.RunConfig(verbose=0, storage_path=__import__("tempfile").mkdtemp()))
    >>> tuner.fit().get_best_result().config["x"]
    1
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import pickle
import secrets
import shutil
from collections.abc import Callable, Sequence
from typing import Any, cast

import cloudpickle

from poptune._validation import bad_type, bad_value
from poptune.backends import get_backend
from poptune.clock import SimulatedClock
from poptune.clock import current as current_clock
from poptune.clock import set_current as set_current_clock
from poptune.config import RunConfig, TuneConfig, default_storage_path
from poptune.engine.experiment import ExperimentHistory, replay_journal, timestamp, unpack
from poptune.engine.trial import Trial, TrialStatus
from poptune.exceptions import RestoreError, StorageError, TuneConfigError, TuneError
from poptune.result import TIMESTAMP
from poptune.schedulers._base import FIFOScheduler, TrialScheduler
from poptune.stopper import (
    CombinedStopper,
    TimeoutStopper,
    as_stopper,
    load_stopper_state,
    save_stopper_state,
)
from poptune.storage.journal import Journal
from poptune.storage.lock import acquire_experiment, check_remote_free
from poptune.storage.records import ExperimentStarted
from poptune.storage.remote import is_remote, local_path
from poptune.trainable._util import normalize_resources, trainable_name, trainable_resources

logger = logging.getLogger("poptune")

TUNER_FILE = "tuner.pkl"
JOURNAL_FILE = "journal.jsonl"


def _check_trainable(trainable: Any) -> None:
    if trainable is None or isinstance(trainable, str) or not callable(trainable):
        raise bad_type(
            "trainable", trainable,
            "a function `train(config)` or a `poptune.Trainable` subclass",
        )
    if inspect.isclass(trainable):
        from poptune.trainable import Trainable

        if not issubclass(trainable, Trainable):
            raise bad_type("trainable", trainable, "a function or a `poptune.Trainable` subclass")
        return
    try:
        params = [p for p in inspect.signature(trainable).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                  and p.default is p.empty]
    except (TypeError, ValueError):
        return
    if len(params) > 1:
        raise TuneConfigError(
            f"`trainable` {trainable_name(trainable)!r} must take one positional argument "
            f"(config), got the required parameters {[p.name for p in params]}; bind the others "
            "with `tune.with_parameters(trainable, name=value)`"
        )


def _check_same_experiment(state: dict[str, Any], trainable: Any,
                           param_space: dict[str, Any] | None) -> None:
    """``Tuner.restore`` continues the experiment it was given, as in Ray: the trainable must
    have the name it had, a re-specified ``param_space`` the same (flattened) keys."""
    from poptune.registry import resolve_trainable
    from poptune._dicts import flatten_dict

    resolved, registered = resolve_trainable(trainable)
    expected = state.get("trainable_name")
    got = registered or (trainable_name(resolved) if resolved is not None else None)
    if expected is not None and got != expected:
        raise TuneConfigError(
            f"`trainable` passed to `Tuner.restore()` is named {got!r} but the experiment ran "
            f"{expected!r}; pass the trainable the experiment was started with")
    if param_space is not None and isinstance(state.get("param_space"), dict):
        if not isinstance(param_space, dict):
            raise bad_type("param_space", param_space, "a dict")
        keys = sorted(flatten_dict(param_space))
        old = sorted(flatten_dict(state["param_space"]))
        if keys != old:
            raise TuneConfigError(
                f"`param_space` passed to `Tuner.restore()` has the keys {keys} but the "
                f"experiment's has {old}; re-specify the same space (only to refresh objects "
                "in it), not new hyperparameters")


def _check_storage(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".poptune_write_test_{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as exc:
        raise StorageError(
            f"`storage_path` {path!r} cannot be written ({exc.strerror or exc}); choose a "
            "writable directory"
        ) from exc


def _check_space(space: Any, prefix: str = "") -> None:
    """Reject a search-space factory left uncalled (``{"lr": tune.loguniform}``), naming its key."""
    from poptune.search import sample

    items = space.items() if isinstance(space, dict) else (
        enumerate(space) if isinstance(space, (list, tuple)) else ())
    for key, value in items:
        path = f"{prefix}{key}"
        if isinstance(value, (dict, list, tuple)):
            _check_space(value, path + "/")
        elif (inspect.isfunction(value) and value.__module__ == sample.__name__
              and not value.__name__.startswith("_")) or (
                isinstance(value, type) and issubclass(value, sample.Domain)):
            name = getattr(value, "__name__", repr(value))
            raise bad_value(f"param_space[{path!r}]", value,
                            f"a value or a called search space such as tune.{name}(...), "
                            f"not the function tune.{name} itself")


class Tuner:
    """Tune a trainable over a search space.

    Args:
        trainable: a function ``train(config)`` or a ``Trainable`` subclass.
        param_space: the search space (nested dict of domains and constants).
        tune_config: a :class:`~poptune.TuneConfig`.
        run_config: a :class:`~poptune.RunConfig`.
    """

    def __init__(
        self,
        trainable: Any = None,
        *,
        param_space: dict[str, Any] | None = None,
        tune_config: TuneConfig | None = None,
        run_config: RunConfig | None = None,
        _restore: dict[str, Any] | None = None,
    ) -> None:
        from poptune.registry import resolve_trainable

        trainable, self._registered_name = resolve_trainable(trainable)  # tune.register_trainable
        _check_trainable(trainable)
        if param_space is not None and not isinstance(param_space, dict):
            raise bad_type("param_space", param_space, "a dict")
        _check_space(param_space or {})
        if tune_config is not None and not isinstance(tune_config, TuneConfig):
            raise bad_type("tune_config", tune_config, "a poptune.TuneConfig")
        if run_config is not None and not isinstance(run_config, RunConfig):
            raise bad_type("run_config", run_config, "a poptune.RunConfig")
        self.trainable = trainable
        self.param_space = param_space or {}
        self.tune_config = tune_config or TuneConfig()
        self.run_config = run_config or RunConfig()
        failure = self.run_config.failure_config
        if failure is not None and failure.fail_fast and failure.max_failures != 0:
            raise bad_value("max_failures", failure.max_failures, "0 when `fail_fast` is set")
        if self.tune_config.metric is not None and self.tune_config.mode is None:
            raise TuneConfigError(
                f"`mode` must be 'min' or 'max' when `metric` is set (metric="
                f"{self.tune_config.metric!r}), got None"
            )
        self._restore = _restore
        #: whether an interrupted fit() says how to resume (tune.run says it its own way)
        self._say_how_to_resume = True
        self._result_grid: Any = None
        self._experiment_dir: str | None = _restore["experiment_dir"] if _restore else None

    # ------------------------------------------------------------------------------------
    @classmethod
    def can_restore(cls, path: str | os.PathLike[str], storage_filesystem: Any = None) -> bool:
        """True if ``path`` is an experiment directory that :meth:`restore` can continue."""
        path = os.fspath(path)
        if is_remote(path):
            from poptune.storage.remote import JOURNAL_SEGMENTS, RemoteStorage

            remote = RemoteStorage(path, storage_filesystem)
            return remote.exists(TUNER_FILE) and remote.exists(JOURNAL_SEGMENTS)
        path = os.path.expanduser(local_path(path))
        return os.path.isfile(os.path.join(path, TUNER_FILE)) and os.path.isfile(
            os.path.join(path, JOURNAL_FILE))

    @classmethod
    def restore(
        cls,
        path: str | os.PathLike[str],
        trainable: Any,
        resume_unfinished: bool = True,
        resume_errored: bool = False,
        restart_errored: bool = False,
        param_space: dict[str, Any] | None = None,
        storage_filesystem: Any = None,
        _tuner_kwargs: Any = None,
        _resume_config: Any = None,
    ) -> "Tuner":
        """Continue an interrupted or crashed experiment. Finished trials never re-run.

        Unfinished trials resume from their latest checkpoint (results they reported after it
        are rolled back and reported again, so each appears once); errored trials are resumed
        (``resume_errored``, which wins if both are given, as in Ray) or restarted from
        scratch (``restart_errored``).
        ``_resume_config`` (a :class:`~poptune.ResumeConfig`), when given, replaces the
        three flags, as in Ray. ``trainable`` (or its registered name) must be the one the
        experiment ran, a re-specified ``param_space`` must have the same keys
        (``TuneConfigError``, a ``ValueError``, otherwise).
        """
        if _resume_config is not None:
            from poptune.config import ResumeConfig

            if not isinstance(_resume_config, ResumeConfig):
                raise bad_type("_resume_config", _resume_config, "a poptune.ResumeConfig")
            flags = _resume_config._flags()
            resume_unfinished = flags["resume_unfinished"]
            resume_errored = flags["resume_errored"]
            restart_errored = flags["restart_errored"]
        path = os.fspath(path)
        remote = None
        if not is_remote(path):
            path = os.path.abspath(os.path.expanduser(local_path(path)))
        if not cls.can_restore(path, storage_filesystem):
            raise RestoreError(
                f"`path` {path!r} is not a restorable poptune experiment (it needs {TUNER_FILE} "
                f"and {JOURNAL_FILE})"
            )
        uri, segments = path, 0
        if is_remote(path):  # work in a local staging copy; storage stays authoritative
            from poptune.storage.remote import RemoteStorage, staging_dir

            remote = RemoteStorage(path, storage_filesystem)
            # a live driver on this machine works in the same staging directory: refuse
            # before the download overwrites its files
            check_remote_free(remote)
            state = cloudpickle.loads(remote.fs.cat_file(remote.path_of(TUNER_FILE)))
            path = staging_dir(path.rstrip("/").rsplit("/", 1)[-1], state["exp_hex"])
            remote.download_experiment(path)
            remote.start_journal_after_existing()
            segments = remote.journal_length()
        pkl = os.path.join(path, TUNER_FILE)
        with open(pkl, "rb") as f:
            try:
                state = cloudpickle.load(f)
            except (pickle.UnpicklingError, EOFError) as exc:
                raise RestoreError(
                    f"{pkl} is damaged (truncated or not a pickle: {exc}); the experiment "
                    "cannot be restored from it") from exc
        if not isinstance(state, dict) or "tune_config" not in state:
            raise RestoreError(f"{pkl} is not a poptune tuner state (got {type(state).__name__})")
        from poptune.storage.replay import load_state

        # verify the journal now: damage is reported by restore(), not later by fit()
        journal_state = load_state(
            os.path.join(path, JOURNAL_FILE),
            name=f"{uri.rstrip('/')}/journal/*.jsonl (its segments concatenated)" if remote
            else None)
        header = journal_state.header
        theirs = header.exp_hex if header is not None else None
        if header is not None and theirs and state.get("exp_hex") and theirs != state["exp_hex"]:
            raise RestoreError(
                f"{os.path.join(path, JOURNAL_FILE)} belongs to another experiment (id "
                f"{theirs!r}, named {header.name!r}) than {pkl} (id "
                f"{state['exp_hex']!r}): put the experiment's own journal back, or restore "
                "the directory the journal came from")
        tune_config: TuneConfig = state["tune_config"]
        run_config: RunConfig = state["run_config"]
        run_config.callbacks = _unpickle_callbacks(state.get("callbacks"), pkl)
        run_config.progress_reporter = next(
            iter(_unpickle_callbacks(state.get("progress_reporter"), pkl) or []), None)
        _check_same_experiment(state, trainable, param_space)
        tuner = cls(trainable, param_space=param_space if param_space is not None else state["param_space"],
                    tune_config=tune_config, run_config=run_config,
                    _restore={"experiment_dir": path, "state": state, "remote": remote,
                              "uri": uri, "segments": segments,
                              "journal_state": journal_state, "run_config": run_config,
                              "resume_unfinished": resume_unfinished,
                              "resume_errored": resume_errored,
                              "restart_errored": restart_errored})
        return tuner

    # ------------------------------------------------------------------------------------
    def fit(self) -> Any:
        """Run the experiment and return a :class:`~poptune.ResultGrid`.

        Raises:
            ExperimentLockedError: another live driver runs this experiment (same ``name`` and
                ``storage_path``, or the path given to :meth:`restore`).
        """
        rc = self.run_config
        name = self._registered_name or trainable_name(self.trainable)
        remote = None
        if self._restore:
            exp_dir = self._restore["experiment_dir"]
            remote = self._restore.get("remote")
            exp_name = (self._restore["uri"].rstrip("/").rsplit("/", 1)[-1] if remote
                        else os.path.basename(exp_dir))
            exp_hex = self._restore["state"]["exp_hex"]
        else:
            storage = os.fspath(rc.storage_path or default_storage_path())
            exp_name = rc.name or f"{name}_{timestamp()}"
            exp_hex = secrets.token_hex(3)[:5]
            if is_remote(storage):
                from poptune.storage.remote import RemoteStorage, staging_dir

                remote = RemoteStorage(f"{storage.rstrip('/')}/{exp_name}", rc.storage_filesystem)
                remote.check_writable()
                exp_dir = staging_dir(exp_name, exp_hex)
            else:
                storage = os.path.abspath(os.path.expanduser(local_path(storage)))
                _check_storage(storage)
                exp_dir = os.path.join(storage, exp_name)
        os.makedirs(exp_dir, exist_ok=True)
        self._remote = remote
        self._experiment_dir = exp_dir
        # one driver per experiment: taken before anything is written into it, held until
        # the runner has finished (also on errors and Ctrl-C)
        owner = acquire_experiment(exp_dir, remote)
        try:
            if remote is not None:
                remote.guard = owner.check  # a driver that lost its lease stops committing
            return self._fit_owned(name, exp_dir, exp_name, exp_hex, remote)
        finally:
            if remote is not None:
                remote.guard = None
            owner.release()

    def _fit_owned(self, name: str, exp_dir: str, exp_name: str, exp_hex: str,
                   remote: Any) -> Any:
        tc = self.tune_config
        default_res = normalize_resources(None)
        probe_res = _probe_resources(self.trainable)
        if probe_res is not None:
            default_res = probe_res
        backend = get_backend(tc.backend)
        try:
            runner, clock, user_stopper, budget, callbacks = self._prepare_run(
                name, exp_dir, exp_name, exp_hex, remote, backend, default_res)
        except BaseException:
            # the runner shuts the backend down once it runs; a setup that fails before (a
            # bad scheduler, a damaged journal) must not leave the prestarted workers, a
            # Ray or Dask cluster it started, or its socket directory behind
            try:
                backend.shutdown()
            except Exception:  # noqa: BLE001 - the setup's own error matters more
                logger.exception("poptune: shutting the backend down after a failed setup failed")
            raise
        previous_clock = set_current_clock(clock)  # stoppers, schedulers, progress read it
        start = clock.monotonic()
        interrupted = False
        try:
            trials = runner.run()
        except KeyboardInterrupt:
            interrupted = True
            trials = runner.trials
        finally:
            save_stopper_state({"stop": user_stopper, "budget": budget,
                                "callbacks": _callback_states(self.run_config.callbacks or []),
                                "clock": _clock_reading(clock, runner)},
                               exp_dir, remote)
            try:
                for cb in callbacks:  # keywords, as Ray's CallbackList calls it
                    run_info = ({"experiment_path": exp_dir,
                                 "elapsed": clock.monotonic() - start,
                                 "interrupted": interrupted}
                                if getattr(cb, "_wants_run_info", False) else {})
                    cb.on_experiment_end(trials=runner.trials, **run_info)
            finally:
                set_current_clock(previous_clock)
        if interrupted and self._say_how_to_resume:
            logger.warning("Experiment interrupted; resume with Tuner.restore(%r, trainable=...)",
                           exp_dir)
        self._result_grid = self._make_grid(trials, runner, exp_dir)
        return self._result_grid

    def _prepare_run(self, name: str, exp_dir: str, exp_name: str, exp_hex: str, remote: Any,
                     backend: Any, default_res: dict[str, float]) -> tuple[Any, ...]:
        """Everything between the backend's start and the run: the searcher, scheduler,
        stoppers, the restored history or the new journal, the callbacks and the runner."""
        from poptune.callbacks.progress import progress_sys_info
        from poptune.engine.runner import Runner

        tc, rc = self.tune_config, self.run_config
        clock = getattr(backend, "clock", None) or current_clock()  # simulated time, or real
        from poptune.engine.resources import pool_of

        pool = pool_of(backend)
        pool.check_fits_ever(default_res)
        searcher = self._make_searcher()
        prestart = getattr(backend, "prestart", None)
        if prestart is not None:  # overlap worker start-up with the rest of the setup
            from poptune.engine.resources import worker_count

            prestart(worker_count(pool, default_res, tc.max_concurrent_trials,
                                  getattr(searcher, "total_samples", None)),
                     default_res.get("cpu", 1.0))
        scheduler = tc.scheduler if tc.scheduler is not None else FIFOScheduler()
        if not isinstance(scheduler, TrialScheduler):
            raise bad_type("scheduler", scheduler, "a poptune TrialScheduler")
        if not self._restore:  # a restored scheduler already holds metric/mode
            seed = {} if tc.seed is None else {"seed": tc.seed}  # PBT seeds its explore
            scheduler.set_search_properties(tc.metric, tc.mode, **seed)
        user_stopper = as_stopper(rc.stop)
        # TuneConfig has turned a timedelta into seconds already
        budget = TimeoutStopper(cast(float, tc.time_budget_s)) if tc.time_budget_s else None
        if self._restore:  # as in Ray, the stoppers continue as the run left them
            user_stopper, budget = self._restored_stoppers(exp_dir, user_stopper, budget)
        stopper = CombinedStopper(user_stopper, budget) if budget is not None else user_stopper
        history = None
        if self._restore:
            if remote is not None and remote.journal_length() != self._restore["segments"]:
                # the experiment went on between Tuner.restore() and fit(): start from its end
                remote.download_experiment(exp_dir)
                remote.start_journal_after_existing()
                self._restore.pop("journal_state", None)  # replayed again from the new copy
            history = self._load_history(exp_dir, searcher, scheduler)
            resume_clock = getattr(backend, "resume_clock", None)
            if resume_clock is not None:  # simulated time goes on from the last run's end
                last = _resume_time(exp_dir, history)
                if last is not None:
                    resume_clock(last)
        else:
            self._save_tuner_state(exp_dir, exp_hex)
            _set_previous_run_aside(exp_dir, f"{timestamp()}-{exp_hex}", remote)
            if remote is not None:
                remote.upload_file(os.path.join(exp_dir, TUNER_FILE), TUNER_FILE)
            journal = Journal(os.path.join(exp_dir, JOURNAL_FILE),
                              on_commit=remote.put_journal_segment if remote else None)
            simulated = isinstance(clock, SimulatedClock)  # the views read its start
            journal.append(ExperimentStarted(name=exp_name, trainable=name, metric=tc.metric,
                                             mode=tc.mode, start=clock.time(), exp_hex=exp_hex,
                                             clock="simulated" if simulated else None))
            journal.close()
        # the progress output's header lines, read from the runner only when a table is drawn
        callbacks = self._make_callbacks(searcher, exp_dir,
                                         lambda: progress_sys_info(scheduler, runner.pool))
        if self._restore:
            _set_callback_states(rc.callbacks or [], (load_stopper_state(exp_dir) or {})
                                 .get("callbacks"))
        runner = Runner(
            trainable=self.trainable, trainable_name=name, param_space=self.param_space,
            tune_config=tc, run_config=rc, experiment_dir=exp_dir, experiment_name=exp_name,
            exp_hex=exp_hex, backend=backend, searcher=searcher, scheduler=scheduler,
            stopper=stopper, callbacks=callbacks, default_resources=default_res,
            resources_fn=lambda config: trainable_resources(self.trainable, config),
            history=history, remote=remote, pool=pool,
            restore_flags={k: bool(self._restore[k]) for k in (
                "resume_unfinished", "resume_errored", "restart_errored")} if self._restore else None,
        )
        return runner, clock, user_stopper, budget, callbacks

    def _restored_stoppers(self, exp_dir: str, stop: Any, budget: Any) -> tuple[Any, Any]:
        """The stoppers as the interrupted run left them: the time budget's remainder always
        (``time_budget_s`` is the experiment's), the ``stop`` stopper unless this run was
        given another (``tune.run(resume=True, stop=...)`` replaces the run config)."""
        saved = load_stopper_state(exp_dir) or {}
        if budget is not None and isinstance(saved.get("budget"), TimeoutStopper):
            budget = saved["budget"]
        if self.run_config is (self._restore or {}).get("run_config") and saved.get("stop"):
            stop = saved["stop"]
        return stop, budget

    def get_results(self) -> Any:
        """The :class:`~poptune.ResultGrid` of the last ``fit()`` (or read from disk)."""
        if self._result_grid is not None:
            return self._result_grid
        if self._experiment_dir is None:
            raise TuneError("`get_results()` needs `fit()` to have run (or a restored Tuner)")
        from poptune.results import ResultGrid

        tc = self.tune_config  # a restored Tuner's: the experiment's metric and mode
        # statuses and kept checkpoints from the journal; best_checkpoints ranked by the
        # experiment's CheckpointConfig, as fit()'s grid
        return ResultGrid.from_path(self._experiment_dir, default_metric=tc.metric,
                                    default_mode=tc.mode,
                                    _checkpoint_config=self.run_config.checkpoint_config)

    # ------------------------------------------------------------------------------------
    def _make_searcher(self) -> Any:
        from poptune.search._base import SearchAlgorithm, Searcher
        from poptune.search.basic_variant import BasicVariantGenerator

        tc = self.tune_config
        alg = tc.search_alg
        if alg is None:
            alg = BasicVariantGenerator()
        elif isinstance(alg, Searcher):
            from poptune.search.search_generator import SearchGenerator

            alg = SearchGenerator(alg)
        elif not isinstance(alg, SearchAlgorithm):
            raise bad_type("search_alg", alg, "a poptune Searcher or SearchAlgorithm")
        accepted = (self._restore or {}).get("state", {}).get("space_accepted")
        if self._restore and accepted is not None and hasattr(alg, "_space_accepted"):
            # the searcher in tuner.pkl already holds metric, mode and (if it took it) the
            # space: asking again would get a Ray-style "already set" refusal
            alg._space_accepted = accepted
        elif not self._restore or getattr(alg, "metric", None) is None:
            from poptune.search._base import _set_search_properties_compat

            # Ray's public spec of the experiment, for searchers that take **spec
            _set_search_properties_compat(
                alg.set_search_properties, tc.metric, tc.mode, self.param_space,
                stop=self.run_config.stop if self.run_config.stop is not None else {},
                num_samples=tc.num_samples, time_budget_s=tc.time_budget_s)
        alg.setup_experiment(self.param_space, tc.num_samples, tc.seed)
        self._searcher_obj = alg
        return alg

    def _make_callbacks(self, searcher: Any, exp_dir: str | None = None,
                        sys_info: Callable[[], Sequence[str]] | None = None) -> list[Any]:
        from poptune.callbacks import Callback

        rc, tc = self.run_config, self.tune_config
        callbacks: list[Any] = []
        for cb in rc.callbacks or []:
            if not isinstance(cb, Callback):
                raise bad_type("callbacks", cb, "a list of poptune.Callback instances")
            callbacks.append(cb)
        if os.environ.get("POPTUNE_TENSORBOARD", "0") == "1":  # Ray's default, on request
            from poptune.logger.tensorboardx import TBXLoggerCallback

            if not any(isinstance(cb, TBXLoggerCallback) for cb in callbacks):
                callbacks.append(TBXLoggerCallback())
        verbose = 2 if rc.verbose is None else int(rc.verbose)
        raises = getattr(rc.failure_config, "fail_fast", False) == "raise"  # the error speaks
        try:
            from poptune.callbacks.progress import ProgressCallback
        except ImportError:  # pragma: no cover
            return callbacks
        callbacks.append(ProgressCallback(
            verbose=verbose, reporter=rc.progress_reporter, metric=tc.metric, mode=tc.mode,
            total_samples=getattr(searcher, "total_samples", None),
            time_budget_s=tc.time_budget_s, experiment_path=exp_dir, sys_info=sys_info,
            # tune.run names the failed trials itself
            log_errors=not raises, log_incomplete=self._say_how_to_resume and not raises,
        ))
        return callbacks

    def _save_tuner_state(self, exp_dir: str, exp_hex: str) -> None:
        rc = self.run_config
        run_config = RunConfig(
            name=rc.name, storage_path=rc.storage_path, stop=rc.stop,
            checkpoint_config=rc.checkpoint_config, failure_config=rc.failure_config,
            callbacks=None, verbose=rc.verbose, progress_reporter=None,
            log_sinks=rc.log_sinks,
        )
        state = {"param_space": self.param_space,
                 "tune_config": _portable_tune_config(self.tune_config),
                 "run_config": run_config, "exp_hex": exp_hex,
                 # apart: one that cannot be unpickled at restore must not block it
                 "callbacks": _pickle_callbacks(rc.callbacks or []),
                 "progress_reporter": _pickle_callbacks(
                     [rc.progress_reporter] if rc.progress_reporter is not None else []),
                 "trainable_name": self._registered_name or trainable_name(self.trainable),
                 "space_accepted": getattr(getattr(self, "_searcher_obj", None),
                                           "_space_accepted", None)}
        try:
            blob = cloudpickle.dumps(state)
        except Exception:  # noqa: BLE001 - keep restore possible without the unpicklable parts
            run_config.stop = None  # the same object as state["run_config"]
            try:
                blob = cloudpickle.dumps(state)
            except Exception as exc:  # noqa: BLE001
                raise TuneConfigError(
                    f"the experiment configuration cannot be pickled for restore: {exc}") from exc
        tmp = os.path.join(exp_dir, TUNER_FILE + ".tmp")
        with open(tmp, "wb") as f:
            f.write(blob)
        os.replace(tmp, os.path.join(exp_dir, TUNER_FILE))

    def _load_history(self, exp_dir: str, searcher: Any, scheduler: TrialScheduler) -> dict[str, Any]:
        from poptune.engine.runner import SCHEDULER_STATE_FILE

        assert self._restore is not None
        from poptune.engine.runner import collect_constants

        found: dict[int, Any] = {}
        collect_constants(self._restore["state"]["param_space"], found)
        remote = self._restore.get("remote")
        hist: ExperimentHistory = replay_journal(os.path.join(exp_dir, JOURNAL_FILE),
                                                 list(found.values()),
                                                 storage_root=remote.uri if remote else None,
                                                 state=self._restore.pop("journal_state", None))
        for orphan in hist.orphan_dirs:  # before any trial runs (see orphan_trial_dirs)
            logger.info("poptune: removing %s: no committed record names this trial "
                        "directory (its trial runs again in a new one)", orphan)
            shutil.rmtree(orphan, ignore_errors=True)
        if hist.search_state is not None and hasattr(searcher, "load_state"):
            searcher.load_state(unpack(hist.search_state))
            if hist.created_after_search_state and getattr(searcher, "replays_creations",
                                                            False):
                # its state is journaled now and then: redo the creations since
                searcher.replay_creations(hist.created_after_search_state)
        sched_path = os.path.join(exp_dir, SCHEDULER_STATE_FILE)
        if hist.scheduler_state is not None:  # the state at the last commit
            scheduler.load_state(cloudpickle.loads(hist.scheduler_state))
            for delta in hist.scheduler_deltas:  # committed after that state, in order
                scheduler.apply_state_delta(delta)
        elif os.path.exists(sched_path):  # journals before schema version 2
            with open(sched_path, "rb") as f:
                scheduler.load_state(cloudpickle.load(f))
        return hist.trials

    def _make_grid(self, trials: list[Trial], runner: Any, exp_dir: str) -> Any:
        from poptune.checkpoint import Checkpoint
        from poptune.results import Result, ResultGrid
        from poptune.results.result import rank_checkpoints

        results = []
        remote = getattr(self, "_remote", None)
        exists = (lambda p: True) if remote is not None else os.path.isdir
        for t in trials:
            records = runner.ctl.checkpoints_of(t.trial_id) if t.trial_id in runner.ctl.state else []
            error = None
            if t.status == TrialStatus.ERROR:
                error = _load_error(t)
            best = []
            if records:
                for rec in records:
                    if exists(rec.path):
                        metrics = {k: v for k, v in rec.metrics.items() if k != "_rows"}
                        best.append((Checkpoint(rec.path), {**metrics, "config": t.config}))
            ckpt = Checkpoint(t.checkpoint_path) if t.checkpoint_path and exists(t.checkpoint_path) else None
            result = Result(
                metrics=t.last_result or {},  # the run is over: shared, not copied
                checkpoint=ckpt, error=error,
                path=t.storage_dir if remote is not None else t.local_path,
                # Ray's: the top num_to_keep by score, worst to best (not the latest as such)
                best_checkpoints=(rank_checkpoints(best, self.run_config.checkpoint_config)
                                  if best else best),
                _status=t.status.value,
            )
            if (t.last_result or {}).get("trial_id") != t.trial_id:
                result._trial_id = t.trial_id  # (else its metrics say it: no entry needed)
            if best:
                result._kept_checkpoints = best  # all kept on disk, oldest first
            results.append(result)
        experiment_path = remote.uri if remote is not None else exp_dir
        return ResultGrid(results, experiment_path=experiment_path,
                          default_metric=self.tune_config.metric,
                          default_mode=self.tune_config.mode)


def _probe_resources(trainable: Any) -> dict[str, float] | None:
    """The trainable's resources when they are the same for every trial (they size the
    worker pool), else None: ``with_resources`` given a function of the config is asked per
    trial only; so is a class trainable's ``default_resource_request(config)`` that needs a
    config (as in Ray, it is never given an empty one by mistake)."""
    res = getattr(trainable, "_poptune_resources", None)
    if res is not None and callable(res) and not isinstance(res, dict):
        return None
    if res is None and inspect.isclass(trainable):
        try:
            return trainable_resources(trainable, {})
        except Exception:  # noqa: BLE001 - it reads the config: asked per trial instead
            logger.debug("default_resource_request needs a config; asked per trial",
                         exc_info=True)
            return None
    return trainable_resources(trainable, {})


def _portable_tune_config(tc: TuneConfig) -> TuneConfig:
    """``tc`` as ``tuner.pkl`` keeps it: a backend object that cannot be pickled (a
    ``DaskBackend`` holds its client's connection) is kept as its kind, ``"dask"``, which a
    restore builds from ``POPTUNE_ADDRESS`` (a backend's connection is never restored)."""
    backend = tc.backend
    if backend is None or isinstance(backend, str):
        return tc
    try:
        cloudpickle.dumps(backend)
        return tc
    except Exception:  # noqa: BLE001 - a live connection, a lock, a thread
        from poptune.backends import BACKEND_NAMES

        kinds = [c.__name__.lower().removesuffix("backend") for c in type(backend).__mro__]
        kind = next((k for k in kinds if k in BACKEND_NAMES), None)  # a subclass: its base's
        return dataclasses.replace(tc, backend=kind)


def _pickle_callbacks(callbacks: Sequence[Any]) -> bytes | None:
    """The user's callbacks (or progress reporter), pickled for :meth:`Tuner.restore` (Ray
    restores them from its ``tuner.pkl`` too); one that cannot be pickled is left out with a
    warning."""
    if not callbacks:
        return None
    try:
        return cloudpickle.dumps(list(callbacks))  # the usual case: pickled once
    except Exception:  # noqa: BLE001 - find the ones that cannot be, and keep the rest
        pass
    kept = []
    for cb in callbacks:
        try:
            cloudpickle.dumps(cb)
        except Exception as exc:  # noqa: BLE001 - a lock, an open file, a live connection
            logger.warning(
                "poptune: the callback %r cannot be pickled (%s: %s); Tuner.restore of this "
                "experiment will run without it", cb, type(exc).__name__, exc)
            continue
        kept.append(cb)
    return cloudpickle.dumps(kept) if kept else None


def _clock_reading(clock: Any, runner: Any) -> dict[str, Any] | None:
    """A simulated clock's reading as the run ends, with the journal's last commit number (a
    restore resumes the clock from it: see :func:`_resume_time`); None on real time."""
    if not isinstance(clock, SimulatedClock):
        return None
    return {"time": clock.time(), "commits": runner.journal.seq}


def _resume_time(exp_dir: str, history: dict[str, Any]) -> float | None:
    """The latest simulated time of a restored experiment: the exact reading its last run kept
    (``stopper_state.pkl``, role ``clock``) when the journal has not gone on since; else (a
    driver killed before it could keep one) the latest ``timestamp`` of its results, whole
    seconds the session wrote or values a trainable reported, and never earlier than a kept
    reading."""
    from poptune.storage.journal import _last_commit

    saved = (load_stopper_state(exp_dir) or {}).get("clock")
    if not isinstance(saved, dict):
        saved = {}
    kept = saved.get("time")
    if not isinstance(kept, (int, float)) or isinstance(kept, bool):
        kept = None
    elif saved.get("commits") == _last_commit(os.path.join(exp_dir, JOURNAL_FILE))[1]:
        return float(kept)
    stamps = [row[TIMESTAMP] for h in history.values() for row in h.rows
              if isinstance(row.get(TIMESTAMP), (int, float))]
    if kept is not None:
        stamps.append(kept)
    return max(stamps, default=None)


def _callback_states(callbacks: Sequence[Any]) -> dict[int, Any] | None:
    """Each callback's ``get_state()`` by its place in ``RunConfig(callbacks=...)`` (as Ray's
    ``CallbackList`` keeps them), or None when every one is stateless."""
    states = {}
    for i, cb in enumerate(callbacks):
        get_state = getattr(cb, "get_state", None)
        try:
            state = get_state() if callable(get_state) else None
        except Exception:  # noqa: BLE001 - the run's own end matters more
            logger.exception("poptune: %r.get_state() failed; a restore starts it afresh", cb)
            continue
        if state is not None:
            states[i] = state
    return states or None


def _set_callback_states(callbacks: Sequence[Any], states: Any) -> None:
    """Give each callback back the state :func:`_callback_states` kept for its place."""
    if not isinstance(states, dict):
        return
    for i, cb in enumerate(callbacks):
        set_state = getattr(cb, "set_state", None)
        if states.get(i) is not None and callable(set_state):
            set_state(states[i])


def _unpickle_callbacks(blob: bytes | None, where: str) -> list[Any] | None:
    """The callbacks :func:`_pickle_callbacks` saved, or None (with a warning if they cannot
    be loaded here, e.g. their package is not installed: the restore runs without them)."""
    if not blob:
        return None
    try:
        return list(cloudpickle.loads(blob))
    except Exception as exc:  # noqa: BLE001
        logger.warning("poptune: the experiment's callbacks saved in %s cannot be loaded "
                       "(%s: %s); the restored run goes on without them", where,
                       type(exc).__name__, exc)
        return None


def _set_previous_run_aside(exp_dir: str, suffix: str, remote: Any) -> None:
    """A new run under the name of an earlier one: keep the earlier run's journal (and
    scheduler state) under another name, so that restore, ``ResultGrid.from_path``, the
    dashboard and the CLI see the new run only; its trial directories stay where they are.

    This matches Ray Tune 2.60, which reuses the directory as it is: ``TunerInternal.__init__``
    overwrites ``tuner.pkl`` (ray/tune/impl/tuner_internal.py:168-186), each run writes its own
    ``experiment_state-<start time>.json`` (tune/execution/tune_controller.py:73, 216-220,
    302-304) next to the old one, trial directories get fresh ids (tune/experiment/trial.py:
    188, 590) and ``Tuner.restore``/``ExperimentAnalysis`` read only the newest state file, i.e.
    the newest run (tune/execution/experiment_state.py:36-61, tune_controller.py:436-455,
    tune/analysis/experiment_analysis.py:95).
    """
    from poptune.engine.runner import SCHEDULER_STATE_FILE

    stem, ext = os.path.splitext(SCHEDULER_STATE_FILE)
    moved = False
    old = os.path.join(exp_dir, JOURNAL_FILE)
    if os.path.exists(old):
        os.replace(old, os.path.join(exp_dir, f"journal-{suffix}.jsonl"))
        moved = True
    state = os.path.join(exp_dir, SCHEDULER_STATE_FILE)
    if os.path.exists(state):
        os.replace(state, os.path.join(exp_dir, f"{stem}-{suffix}{ext}"))
    if remote is not None:
        moved = remote.set_journal_aside(suffix) or moved
        if remote.exists(SCHEDULER_STATE_FILE):
            remote.fs.mv(remote.path_of(SCHEDULER_STATE_FILE),
                         remote.path_of(f"{stem}-{suffix}{ext}"))
    if moved:
        logger.info("experiment %r already held a run: it is kept as journal-%s, and restore "
                    "and results now see the new run only", remote.uri if remote else exp_dir,
                    suffix)


def _load_error(trial: Trial) -> BaseException:
    from poptune.exceptions import TrialError

    path = os.path.join(trial.local_path, "error.pkl")
    if os.path.exists(path):
        try:
            with open(path, "rb") as f:
                exc = cloudpickle.load(f)
            if isinstance(exc, BaseException):
                return exc
        except Exception:  # noqa: BLE001
            pass
    return TrialError(f"Trial {trial} failed: {trial.error_msg}")

