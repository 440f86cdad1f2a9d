"""The runner: polls the backend, feeds the controller, commits the journal, carries out.

One loop pass: a :class:`~poptune.engine.events.Tick` from the injected clock (the controller
stops, creates and launches trials), poll the backend, hand each event to the
:class:`~poptune.engine.controller.Controller`, commit the journal with one write, then send
the replies and delete the checkpoints the controller released. A trial only continues after
its result is in the journal, so nothing it reported can be lost. Every decision is the
controller's; the runner knows files, the backend and the callbacks.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import math
import os
import pickle
import re
import secrets
import shutil
import time
from typing import Any, Callable

import cloudpickle

from poptune._pickling import dump_config, dumps_with_sources
from poptune._validation import bad_type, bad_value
from poptune.backends._base import Backend, LaunchSpec
from poptune.callbacks._base import Callback
from poptune.clock import current as current_clock
from poptune.config import RunConfig, TuneConfig, log_to_file_names
from poptune.engine._io import rewrite_rows
from poptune.engine.controller import Controller
from poptune.engine.events import Abort, ResourcesOffered, SaveRequested, TakenBack, Tick
from poptune.engine.experiment import (
    TrialHistory,
    default_trial_dirname,
    name_limit,
    pack,
    timestamp,
)
from poptune.engine.instructions import (
    Answer,
    CloseLog,
    DeleteCheckpoint,
    Instruction,
    Kill,
    Launch,
    LogResult,
    Notify,
    PolicyLog,
    Raise,
    Record,
    Reply,
    RestoreLog,
    RewriteLog,
    Snapshot,
    TakeBack,
    WriteError,
    WriteParams,
)
from poptune.engine.resources import ResourcePool, pool_of
from poptune.engine.trial import Trial
from poptune.exceptions import StorageError, TuneError
from poptune.storage.errors import write_failed
from poptune.execution.tune_controller import TuneController
from poptune.schedulers._base import FIFOScheduler, TrialScheduler
from poptune.stopper import Stopper
from poptune.storage.background import BackgroundIO
from poptune.storage.dirs import STORAGE_MARKER
from poptune.storage.journal import Journal
from poptune.storage.pbt_log import write_exploit_logs
from poptune.engine.scheduler_journal import SchedulerJournal
from poptune.storage.records import ExperimentEnded, SearcherState
from poptune.storage.trial_files import TrialFiles
from poptune.storage.trial_logs import RESULT_FILE, rewrite_logs, write_error

logger = logging.getLogger("poptune")

_SCALARS = (int, float, str, bytes, bool, type(None), complex)
#: where experiments before journal schema version 2 kept the scheduler's state
SCHEDULER_STATE_FILE = "scheduler_state.pkl"
#: a searcher that replays creations (random search) has its state journaled with the first
#: new trial, then after this many more, and at the end (restore redoes the rest)
SEARCH_STATE_EVERY = 1000
#: ``POPTUNE_LAUNCH_AHEAD=0`` turns launching ahead off (see ``Controller._send_ahead``)
LAUNCH_AHEAD_ENV = "POPTUNE_LAUNCH_AHEAD"
#: seconds between two readings of a cluster's resources while trials wait for them
OFFER_INTERVAL_S = 2.0
_ANSWER = {a: a.value for a in Answer}  # the protocol's strings, without Enum lookups
#: hooks Ray calls with ``iteration`` and ``trials`` first
_STEP_HOOKS = frozenset({"on_trial_start", "on_trial_restore", "on_trial_save",
                         "on_trial_result", "on_trial_complete", "on_trial_error",
                         "on_trial_recover",
                         "on_checkpoint"})


def collect_constants(space: Any, out: dict[int, Any]) -> None:
    """Collect the objects in ``param_space`` that are shipped once per worker."""
    from poptune.search.sample import Domain

    if isinstance(space, dict):
        for v in space.values():
            collect_constants(v, out)
    elif isinstance(space, (list, tuple)):
        for v in space:
            collect_constants(v, out)
    elif not isinstance(space, _SCALARS) and not isinstance(space, Domain) and not callable(space):
        out[id(space)] = space


class _Files:
    """The runner's per-trial file state: the result-log writer and the pickled config."""

    __slots__ = ("writer", "config_blob", "fresh")

    def __init__(self, fresh: bool = False) -> None:
        #: the key of its open result-file writer (:class:`TrialFiles`), or None
        self.writer: int | None = None
        #: created in this run and not launched yet: its directory has no results
        self.fresh = fresh
        #: the pickled config and the config object it was made from (PBT replaces it)
        self.config_blob: tuple[Any, bytes] | None = None


class Runner:
    """Runs one experiment to completion (or interruption)."""

    def __init__(
        self,
        *,
        trainable: Any,
        trainable_name: str,
        param_space: dict[str, Any],
        tune_config: TuneConfig,
        run_config: RunConfig,
        experiment_dir: str,
        experiment_name: str,
        exp_hex: str,
        backend: Backend,
        searcher: Any,
        scheduler: TrialScheduler,
        stopper: Stopper,
        callbacks: list[Any],
        default_resources: dict[str, float],
        resources_fn: Callable[[dict[str, Any]], dict[str, float] | None],
        history: dict[str, TrialHistory] | None = None,
        restore_flags: dict[str, bool] | None = None,
        clock: Any = None,
        remote: Any = None,
        pool: ResourcePool | None = None,
    ) -> None:
        #: a :class:`~poptune.storage.remote.RemoteStorage`, or None for a local experiment
        self.remote = remote
        self._storage_marker: str | None = None  # written for workers on other machines
        self.trainable = trainable
        self.trainable_name = trainable_name
        self.tune_config = tune_config
        self.run_config = run_config
        self.experiment_dir = experiment_dir
        self.experiment_name = experiment_name
        self.backend = backend
        self.searcher = searcher
        self.scheduler = scheduler
        self.callbacks = callbacks
        self.resources_fn = resources_fn
        self.default_resources = default_resources
        #: the experiment's clock (the simulated backend's, else the current one): every
        #: decision's time; file flushing and uploads are paced in real time
        self.clock = clock or getattr(backend, "clock", None) or current_clock()
        #: the backend runs on the simulated clock: a poll waits until the controller's next
        #: deadline (simulated seconds), not half a second
        self._sim_time = bool(getattr(backend, "simulated_time", False))
        self.is_class = isinstance(trainable, type)
        #: what the backend offers (a cluster's pool follows its nodes: read again every
        #: :data:`OFFER_INTERVAL_S` while trials wait)
        self.pool = pool if pool is not None else pool_of(backend)
        self._offered_at = -math.inf
        self.journal = Journal(os.path.join(experiment_dir, "journal.jsonl"),
                               on_commit=remote.put_journal_segment if remote else None)
        self.iteration = 0
        self.files: dict[str, _Files] = {}
        self._replies: list[tuple[str, str]] = []
        self._deletions: list[str] = []
        self._raise_after_commit: BaseException | None = None
        self._snapshot: set[str] = set()
        self._state_files: dict[str, int] = {}
        self._handled = False  # events handled during this loop pass
        #: FIFO keeps no state but metric and mode: nothing to journal
        self._sched_journal = (SchedulerJournal(scheduler, self.journal, experiment_dir)
                               if type(scheduler) is not FIFOScheduler else None)
        self._run_error: BaseException | None = None  # what ended run() early, if anything
        self._last_sync = 0.0
        self._last_flush = 0.0
        self._dirty_writers: set[str] = set()
        self.io = BackgroundIO()  # uploads and remote deletions
        #: the trial files, written by a child process
        self.trial_files = TrialFiles()
        try:  # run() closes the writer and the I/O thread; a failing setup must too
            self._carriers = self._carriers_by_type()
            #: whether workers change into the trial directory (read once, not per launch)
            self._chdir = (getattr(backend, "separate_processes", True)
                           and tune_config.chdir_to_trial_dir is not False
                           and os.environ.get("RAY_CHDIR_TO_TRIAL_DIR", os.environ.get(
                               "POPTUNE_CHDIR_TO_TRIAL_DIR", "1")) != "0")
            #: ``RunConfig(log_to_file=...)``: (stdout file, stderr file) or None, per launch
            self._log_to_file = log_to_file_names(run_config.log_to_file)
            self._listeners: dict[str, list[Callable[..., Any]]] = {}
            #: the driver's visible GPUs (``CUDA_VISIBLE_DEVICES``), which GPU slots map to
            self._visible_devices = [d.strip() for d in os.environ.get(
                "CUDA_VISIBLE_DEVICES", "").split(",") if d.strip() and d.strip() != "-1"]
            self._name_limit = name_limit()  # TUNE_MAX_LEN_IDENTIFIER
            #: directory names ``trial_dirname_creator`` gave in this run (kept unique)
            self._custom_dirnames: set[str] = set()
            from poptune.search.basic_variant import BasicVariantGenerator

            self._plain_search_state = type(searcher) is BasicVariantGenerator
            self._replays_creations = bool(getattr(searcher, "replays_creations", False))
            self._default_fits = False  # whether the default resources were checked
            #: trials created since the searcher's state was last journaled (the first trial's
            #: is at once: restore needs a state to replay from)
            self._unjournaled_creations = SEARCH_STATE_EVERY
            self._snapshot_later = False  # a change is not journaled yet
            # the engine's own result files; a user's CSV/JSON logger callback replaces ours
            sinks = set(run_config.log_sinks or ())
            #: result files a user's logger callback writes (and appends to, as Ray's do)
            self._user_files: tuple[str, ...] = ()
            for cb in callbacks:
                kind = getattr(cb, "_poptune_sink", None)
                if kind:
                    sinks.discard(kind)
                    self._user_files += (RESULT_FILE if kind == "json" else "progress.csv",)
            self.sinks = frozenset(sinks)
            # a user callback may read the trial dir when a trial completes (e.g. MLflow uploads
            # it): its files must be on disk by then. Only a callback that listens to
            # on_trial_complete can, and the live table and the loggers that write files of
            # their own say they do not (a wait for the file writer per trial)
            self._drain_before_complete = any(
                (type(cb).on_trial_complete is not Callback.on_trial_complete
                 or type(cb).on_trial_error is not Callback.on_trial_error)
                and not getattr(cb, "_reads_no_files", False) for cb in callbacks)
            ckpt_cfg = run_config.checkpoint_config
            assert ckpt_cfg is not None
            self.ckpt_cfg = ckpt_cfg
            # unset: on for a class trainable, as Ray's Tuner (tune.run sets it off), when it
            # can save (Ray fails the trial of one without save_checkpoint instead)
            at_end = ckpt_cfg.checkpoint_at_end
            self._checkpoint_at_end = self.is_class and (
                at_end if at_end is not None else _saves_checkpoints(trainable))
            failure = run_config.failure_config
            assert failure is not None
            constants: dict[int, Any] = {}
            collect_constants(param_space, constants)
            self.constants = list(constants.values())
            self.const_refs = {oid: i for i, oid in enumerate(constants)}
            try:
                self._constants_blob = cloudpickle.dumps(self.constants)
            except Exception as exc:  # noqa: BLE001
                raise TuneError(f"a constant in `param_space` cannot be pickled: {exc}") from exc
            self.trial_files.constants(self._constants_blob)  # before any config is sent
            #: every decision: the pure state machine
            self.ctl = Controller(
                scheduler=scheduler, searcher=searcher, stopper=stopper, new_trial=self._new_trial,
                exp_hex=exp_hex, pool=self.pool, default_resources=default_resources,
                is_class=self.is_class, metric=tune_config.metric,
                max_concurrent=tune_config.max_concurrent_trials,
                max_failures=failure.max_failures, fail_fast=failure.fail_fast,
                silence_timeout_s=failure.silence_timeout_s,
                checkpoint_config=ckpt_cfg, remote=remote is not None,
                # on remote storage a result is on storage before its trial goes on (the
                # documented contract of docs/cluster.md "Failures"): every result is answered
                unanswered_results=(getattr(backend, "unanswered_results", False)
                                    and remote is None),
            )
            # a backend whose workers queue trials: launch ahead (Controller._send_ahead)
            if (getattr(backend, "queues_ahead", False)
                    and os.environ.get(LAUNCH_AHEAD_ENV, "1") != "0"):
                self.ctl.allow_launch_ahead()
            view = TuneController(self.ctl.views, pool=self.pool)
            self.ctl.experiment_view = view  # what a Ray-style choose_trial_to_run asks
            scheduler.set_experiment_view(view)
            if history:
                self._take_over(history, restore_flags)
        except BaseException:
            self.trial_files.shutdown()
            self.io.close()
            raise

    def _take_over(self, history: dict[str, TrialHistory],
                   restore_flags: dict[str, bool] | None) -> None:
        """Adopt a restored experiment's trials (the controller decides what each becomes)."""
        for h in history.values():
            self.files[h.trial.trial_id] = _Files()
            trial = h.trial
            if not os.path.exists(os.path.join(trial.local_path, "params.json")):
                # a driver killed before its files were written (they are derived from the
                # journal, which has the config)
                self.trial_files.params(trial.local_path, self._trial_config_blob(trial),
                                        "params" in self.sinks)
        self._carry_out(self.ctl.restore(history.values(), **(restore_flags or {})))
        # the restore deletes only directories no committed record names (stale ones): at
        # once, before any trial runs, or a relaunched trial's new checkpoint of the same
        # name would be deleted with them at the first commit
        self._delete_checkpoints()

    @property
    def trials(self) -> list[Trial]:
        return self.ctl.trials

    def _read_offer(self) -> None:
        """Read a cluster's resources again (at most every :data:`OFFER_INTERVAL_S`): nodes
        that joined take waiting trials at the next tick."""
        now = self.clock.monotonic()
        if now - self._offered_at < OFFER_INTERVAL_S:
            return
        self._offered_at = now
        self._carry_out(self.ctl.handle(ResourcesOffered(self.backend.total_resources())))

    def _now(self) -> tuple[float, float]:
        return self.clock.monotonic(), self.clock.time()

    # ------------------------------------------------------------------------------------
    # what the controller asks of the runner
    def _new_trial(self, trial_id: str, suggestion: Any) -> Trial:
        """Name and place a new trial (the controller decides that it exists)."""
        from poptune.search.variant_generator import format_vars

        self._unjournaled_creations += 1
        index = int(trial_id.rsplit("_", 1)[-1])
        config = suggestion.config
        params = dict(suggestion.resolved_vars)
        tag = suggestion.tag
        if tag is None:
            tag = f"{index}_{format_vars(params)}" if params else str(index)
        resources = self.resources_fn(config)
        if resources is None:  # the experiment's default: checked once
            resources = dict(self.default_resources)
            if not self._default_fits:
                self.pool.check_fits_ever(resources)
                self._default_fits = True
        else:
            self.pool.check_fits_ever(resources)
        trial = Trial(trial_id=trial_id, trainable_name=self.trainable_name, config=config,
                      experiment_tag=tag, resources=resources, evaluated_params=params)
        if self.tune_config.trial_name_creator is not None:
            trial.custom_trial_name = _created_name(
                self.tune_config.trial_name_creator(trial), "trial_name_creator")
        custom_dir = (_created_name(self.tune_config.trial_dirname_creator(trial),
                                    "trial_dirname_creator", is_dir=True)
                      if self.tune_config.trial_dirname_creator is not None else None)
        if custom_dir is not None:
            trial.dirname = self._unique_dirname(custom_dir)
        else:
            trial.dirname = default_trial_dirname(trial, timestamp(), self._name_limit)
        trial.local_path = os.path.join(self.experiment_dir, trial.dirname)
        trial.storage_dir = (self.remote.uri_of(trial.dirname) if self.remote
                             else trial.local_path)
        # a user's dirname creator may name two trials alike: then look before appending
        fresh = self.tune_config.trial_dirname_creator is None
        self.files[trial_id] = _Files(fresh=fresh)
        if fresh:  # our writer replaces what a lost run of the trial left (see TrialLogWriter);
            for name in self._user_files:  # a user's logger appends: make room for it too
                try:
                    os.remove(os.path.join(trial.local_path, name))
                except FileNotFoundError:
                    pass
        return trial

    def _unique_dirname(self, name: str) -> str:
        """A user-made directory name that another trial has (in this run, or on disk) gets
        ``_`` and 4 hex digits, as Ray's ``_create_unique_logdir_name``: two trials never
        share a directory."""
        taken = self._custom_dirnames
        while name in taken or os.path.exists(os.path.join(self.experiment_dir, name)):
            name = f"{name}_{secrets.token_hex(2)}"
        taken.add(name)
        return name

    def _blobs(self) -> dict[str, bytes]:
        try:
            trainable_blob = dumps_with_sources(self.trainable)
        except Exception as exc:  # noqa: BLE001
            raise TuneError(f"the trainable {self.trainable_name!r} cannot be pickled: {exc}") from exc
        blobs = {"trainable": trainable_blob, "constants": self._constants_blob}
        if getattr(self.backend, "runs_elsewhere", False):
            # local storage: a worker must share it; remote storage: a worker that does not
            # share the driver's staging directory keeps its trial files on its own disk
            # and uploads them when the trial ends
            exp_dir, token = self._write_storage_marker()
            blobs["storage_check"] = cloudpickle.dumps((exp_dir, token, self.remote is not None))
        return blobs

    def _write_storage_marker(self) -> tuple[str, str]:
        """A file with a token of this run in the (local or staging) experiment directory: a
        worker on another machine checks whether it sees it before its trial writes there
        (as Ray's storage check)."""
        path = os.path.join(self.experiment_dir, STORAGE_MARKER)
        token = secrets.token_hex(8)
        with open(path, "w") as f:
            f.write(token)
        self._storage_marker = path
        return self.experiment_dir, token

    def _config_blob(self, config: dict[str, Any]) -> bytes:
        return dump_config(config, self.const_refs)

    def _trial_config_blob(self, trial: Trial) -> bytes:
        """The trial's pickled config, made once per config object."""
        files = self.files.get(trial.trial_id)
        if files is None:  # terminated (its file state is gone): not cached
            return self._config_blob(trial.config)
        if files.config_blob is None or files.config_blob[0] is not trial.config:
            files.config_blob = (trial.config, self._config_blob(trial.config))
        return files.config_blob[1]

    # ------------------------------------------------------------------------------------
    # the loop
    def _sim_wait(self) -> float:
        """How long a poll of a simulated backend may move its clock: until the controller's
        next time-based decision (``inf``: until the next event), so a loop pass follows
        each event or deadline however long the simulated steps are."""
        deadline = self.ctl.next_deadline()
        return math.inf if deadline is None else max(0.0, deadline - self.clock.monotonic())

    def run(self) -> list[Trial]:
        ctl = self.ctl
        try:  # a failing setup (an unpicklable trainable) still closes the files and workers
            blobs = self._blobs()
            # Ray's public spec of the experiment (``stop`` {} when none) and the total
            spec = {"stop": self.run_config.stop if self.run_config.stop is not None else {},
                    "num_samples": self.tune_config.num_samples,
                    "time_budget_s": self.tune_config.time_budget_s,
                    "total_num_samples": getattr(self.searcher, "total_samples", None)}
            for cb in self.callbacks:
                _setup_callback(cb, spec)
            self.backend.setup(blobs, self.ctl.worker_count())
            while True:
                self.iteration += 1
                for cb in self.callbacks:
                    cb.on_step_begin(iteration=self.iteration, trials=ctl.trials)
                if self.pool.growable and (ctl.pending or ctl.paused):
                    self._read_offer()
                ticked = ctl.handle(Tick(*self._now()))
                if ticked:  # e.g. trials created: the scheduler saw them
                    self._handled = True
                    self._carry_out(ticked)
                if ctl.finished:
                    self._commit()
                    break
                if self._sim_time:
                    events = self.backend.poll(0.0 if self._replies else self._sim_wait())
                    if events:  # they happened at the clock's reading, which may be far
                        ctl.now, ctl.wall = self._now()  # past the last tick's
                else:
                    events = self.backend.poll(0.5 if not self._replies else 0.0)
                for event in events:
                    self._handled = True
                    self._carry_out(ctl.handle(event))
                self._commit()
                for cb in self.callbacks:
                    cb.on_step_end(iteration=self.iteration, trials=ctl.trials)
            self.journal.append(ExperimentEnded())
        except KeyboardInterrupt as exc:
            self._run_error = exc
            logger.warning("Interrupted: stopping the trials (every result reported so far "
                           "is kept)")
            self._abort()
            raise
        except BaseException as exc:
            self._run_error = exc
            self._abort()
            raise
        finally:
            self._close()
        return ctl.trials

    def _carry_out(self, instructions: list[Instruction]) -> None:
        carriers = self._carriers
        for ins in instructions:
            carriers[type(ins)](ins)

    def _carriers_by_type(self) -> dict[type, Callable[[Any], object]]:
        """One carrier per instruction type (a new type without one fails loudly)."""
        return {
            Record: self._record,
            Reply: self._reply,
            LogResult: lambda i: self._log_result(i.trial, i.result),
            Notify: lambda i: self._notify(i.hook, i.kwargs),
            Launch: self._launch,
            TakeBack: self._take_back,
            DeleteCheckpoint: lambda i: self._deletions.append(i.path),
            Snapshot: lambda i: self._snapshot.add(i.what),
            CloseLog: self._close_log,
            Kill: lambda i: self.backend.kill(i.trial_id),
            WriteParams: lambda i: self.trial_files.params(
                i.trial.local_path, self._trial_config_blob(i.trial), "params" in self.sinks),
            WriteError: lambda i: write_error(i.trial.local_path, i.traceback, i.exception),
            RewriteLog: lambda i: self._rewrite_log(i.trial, i.rows),
            RestoreLog: self._restore_log,
            PolicyLog: lambda i: write_exploit_logs(self.experiment_dir, i.trial_id,
                                                    i.donor_trial_id, i.line),
            Raise: self._raise,
        }

    def _reply(self, ins: Reply) -> None:
        if ins.watch is not None and ins.watch.get("should_checkpoint"):
            # a callback asked the (class) trainable for a checkpoint: the controller decides
            self._carry_out(self.ctl.handle(SaveRequested(ins.trial_id)))
        else:
            self._replies.append((ins.trial_id, _ANSWER[ins.answer]))

    def _take_back(self, ins: TakeBack) -> None:
        if self.backend.take_back(ins.trial_id):  # else its worker runs it: the controller
            self._carry_out(self.ctl.handle(TakenBack(ins.trial_id)))  # hears so at its end

    def _close_log(self, ins: CloseLog) -> None:
        self._close_writer(ins.trial)
        if ins.final:  # terminated: it never runs again in this run (memory per trial)
            self.files.pop(ins.trial.trial_id, None)
        if ins.drain and self._drain_before_complete:
            self.trial_files.drain()  # e.g. MLflow uploading the trial dir: its files are
                                      # complete

    def _raise(self, ins: Raise) -> None:
        if not ins.after_commit:
            raise ins.error
        if self._raise_after_commit is None:
            self._raise_after_commit = ins.error

    def _record(self, ins: Record) -> None:
        rec = ins.record
        if ins.config is not None:  # the config object: pickled once per object
            trial = self.ctl.by_id.get(getattr(rec, "trial_id", ""))
            blob = (self._trial_config_blob(trial) if trial is not None
                    and trial.config is ins.config else self._config_blob(ins.config))
            encoded = rec.encode()  # the record's dict with the config filled in: no copy
            encoded["config"] = base64.b64encode(blob).decode()  # of the frozen record
            self.journal.append(encoded)
            return
        self.journal.append(rec)

    def _log_result(self, trial: Trial, result: dict[str, Any]) -> None:
        files = self.files.get(trial.trial_id)
        if files is not None and files.writer is not None:
            self.trial_files.write(files.writer, result)  # a copy: callbacks may add keys
            self._dirty_writers.add(trial.trial_id)

    def _notify(self, hook: str, kwargs: dict[str, Any]) -> None:
        listeners = self._listeners.get(hook)
        if listeners is None:  # the callbacks that do something on this hook, once per hook
            listeners = self._listeners[hook] = [
                getattr(cb, hook) for cb in self.callbacks
                if getattr(type(cb), hook, None) is not getattr(Callback, hook, None)]
        if not listeners:
            return  # the base hooks do nothing
        if hook in _STEP_HOOKS:
            kwargs = {"iteration": self.iteration, "trials": self.ctl.trials, **kwargs}
        for listen in listeners:
            listen(**kwargs)

    def _launch(self, ins: Launch) -> None:
        trial = ins.trial
        files = self.files[trial.trial_id]
        if files.writer is None and ("json" in self.sinks or "csv" in self.sinks):
            files.writer = self.trial_files.open(
                trial.local_path, "json" in self.sinks, "csv" in self.sinks, files.fresh,
                trial.config, self._trial_config_blob(trial))
        files.fresh = False
        spec = LaunchSpec(
            trial_id=trial.trial_id,
            trial_name=str(trial),
            trial_dir=trial.local_path,
            experiment_name=self.experiment_name,
            experiment_dir=self.experiment_dir,
            config_blob=self._trial_config_blob(trial),
            resources=dict(trial.resources),
            restore_path=ins.restore_path,
            start_iteration=ins.start_iteration,
            time_total_offset=ins.time_total_offset,
            next_checkpoint_index=ins.next_checkpoint_index,
            timesteps_total=ins.timesteps_total,
            episodes_total=ins.episodes_total,
            log_to_file=self._log_to_file,
            checkpoint_frequency=self.ckpt_cfg.checkpoint_frequency if self.is_class else 0,
            checkpoint_at_end=self._checkpoint_at_end,
            chdir=self._chdir,
            storage_trial_dir=trial.storage_dir if self.remote else None,
            answered=self.ctl.answers_results,
            reuse_actors=self.is_class and bool(self.tune_config.reuse_actors),
            env=({} if getattr(self.backend, "assigns_devices", False)
                 else {"CUDA_VISIBLE_DEVICES": ",".join(self._devices(ins.gpu_ids))
                       if ins.gpu_ids else ""}),
        )
        if ins.after is not None:
            self.backend.launch_after(spec, ins.after)
        else:
            self.backend.launch(spec)

    def _devices(self, gpu_ids: list[int]) -> list[str]:
        """The devices a trial's GPU slots are: the driver's ``CUDA_VISIBLE_DEVICES`` entries
        when it has them (slot 0 of ``"2,3"`` is device 2, as Ray numbers a node's GPUs),
        else the slot numbers."""
        visible = self._visible_devices
        return [visible[i] if i < len(visible) else str(i) for i in gpu_ids]

    def _rewrite_log(self, trial: Trial, rows: int) -> None:
        self._close_writer(trial)
        self.trial_files.drain()  # rows written so far must be on disk before we cut them
        rewrite_rows(trial.local_path, rows)

    def _restore_log(self, ins: RestoreLog) -> None:
        self.trial_files.drain()  # nothing of an earlier writer may land after the rewrite
        rewrite_logs(ins.trial.local_path, ins.rows, "json" in self.sinks, "csv" in self.sinks)

    def _close_writer(self, trial: Trial) -> None:
        files = self.files.get(trial.trial_id)
        if files is not None and files.writer is not None:
            self.trial_files.close(files.writer)
            files.writer = None
            self._dirty_writers.discard(trial.trial_id)

    # ------------------------------------------------------------------------------------
    # commit
    def _state_file(self, stem: str, ext: str) -> str:
        """The next of two alternating file names for a big state: a file written for a
        commit that never completes cannot overwrite the one the last commit names."""
        self._state_files[stem] = n = 1 - self._state_files.get(stem, 1)
        return f"{stem}.{n}{ext}"

    def _record_search_state(self) -> None:
        """Make the searcher's state part of the experiment after it changed.

        Called once per loop pass, just before the journal commits, when a trial was created
        or finished during the pass: the state lands in the same atomic commit as the trial
        records that changed it. A small state goes into the journal itself; a big one (a
        model-based searcher's history) is written to a file the record names, so the
        journal does not grow quadratically.
        """
        save_state = getattr(self.searcher, "save_state", None)
        if save_state is None:
            return
        try:
            state = save_state()
            if self._plain_search_state:  # our own generator's state: plain data, fast pickle
                blob = base64.b64encode(pickle.dumps(state, protocol=5)).decode()
            else:
                blob = pack(state)
        except Exception:  # noqa: BLE001 - a searcher whose state cannot be pickled
            return
        if len(blob) <= 4096:
            self.journal.append(SearcherState(state=blob))
            return
        name = self._state_file("searcher_state", ".b64")
        path = os.path.join(self.experiment_dir, name)
        try:
            with open(path + ".tmp", "w") as f:
                f.write(blob)
            os.replace(path + ".tmp", path)
        except OSError as exc:
            raise write_failed(exc, path, "the searcher's state") from exc
        self.journal.append(SearcherState(file=name))

    def _commit(self) -> None:
        if "searcher" in self._snapshot:
            self._snapshot.discard("searcher")
            if (self._replays_creations  # journaled now and then (see SEARCH_STATE_EVERY)
                    and self._unjournaled_creations <= SEARCH_STATE_EVERY):
                self._snapshot_later = True
            else:
                self._unjournaled_creations = 0
                self._snapshot_later = False
                self._record_search_state()
        if self._sched_journal is not None:  # in the same commit as what it has seen
            self._sched_journal.before_commit(handled=self._handled,
                                              course_changed="scheduler" in self._snapshot)
        self._handled = False
        self._snapshot.clear()
        self.journal.commit()
        for trial_id, answer in self._replies:
            self.backend.reply(trial_id, answer)
        self._replies.clear()
        if self._deletions:
            self._delete_checkpoints()
        if self._raise_after_commit is not None:
            exc, self._raise_after_commit = self._raise_after_commit, None
            raise exc
        now = time.monotonic()  # pacing of file I/O, not a decision
        if now - self._last_flush > 0.5:
            for tid in self._dirty_writers:
                key = self.files[tid].writer
                if key is not None:
                    self.trial_files.flush(key)
            self._dirty_writers.clear()
            self._last_flush = now
        if self.remote is not None and now - self._last_sync > 5.0:
            self._last_sync = now
            self.trial_files.drain()  # the upload sees every file written so far
            self.io.submit(self.remote.sync_dir, self.experiment_dir)
        self.trial_files.release()  # this pass's file writes, while the loop waits for workers
        self.io.release()

    def _delete_checkpoints(self) -> None:
        """Delete checkpoints whose deletion is now committed to the journal."""
        for path in self._deletions:
            if self.remote is not None:
                self.io.submit(self.remote.rm, path)
            else:
                shutil.rmtree(path, ignore_errors=True)
        self._deletions.clear()

    def _abort(self) -> None:
        try:
            self._carry_out([i for i in self.ctl.handle(Abort()) if not isinstance(i, Raise)])
        except Exception:  # noqa: BLE001 - the run's own error matters more
            logger.exception("poptune: stopping the running trials failed")

    def _close(self) -> None:
        try:
            # a run that failed writing the experiment (a full disk) ends with that one
            # error: nothing more is written, and nothing more fails
            failed_writing = isinstance(self._run_error, StorageError)
            if ("searcher" in self._snapshot or self._snapshot_later) and not failed_writing:
                self._snapshot.discard("searcher")
                self._record_search_state()
            if self._sched_journal is not None and not failed_writing:
                self._sched_journal.final()
            try:
                self.journal.close(commit=not failed_writing)
            except StorageError as exc:
                if self._run_error is None:
                    raise
                logger.warning("poptune: closing the journal failed too: %s", exc)
            self._delete_checkpoints()  # their records are committed now
            if self._storage_marker is not None:
                with contextlib.suppress(OSError):
                    os.remove(self._storage_marker)
        finally:
            for t in self.ctl.trials:
                self._close_writer(t)
            self.trial_files.shutdown()
            self.io.drain()
            self.io.close()
            self.backend.shutdown()
            if self.remote is not None:  # the final state of every file, on storage
                try:
                    self.remote.sync_dir(self.experiment_dir)
                except StorageError as exc:
                    if self._run_error is None:
                        raise
                    # the run already failed (often for the same reason): keep its error
                    logger.warning("poptune: final upload to %s failed too: %s",
                                   self.remote.uri, exc)


#: characters Ray replaces in a trial directory name (the rest of a user's name is kept)
_RAY_DIRNAME_UNSAFE = re.compile(r'[()<>:"\\|?*]')


def _created_name(name: Any, creator: str, is_dir: bool = False) -> str | None:
    """What a ``trial_name_creator``/``trial_dirname_creator`` returned, as Ray takes it: None
    or ``""`` means the default name; anything but a str is a ``TypeError``; a directory name
    with ``/`` is an error and Ray's reserved characters become ``_``."""
    if name is None or name == "":
        return None
    if not isinstance(name, str):
        raise bad_type(creator, name, "a function returning a str (or None for the default)")
    if is_dir:
        if os.sep in name or "/" in name:
            raise bad_value(f"{creator}(trial)", name, "a directory name without '/'")
        if name in (".", ".."):
            raise bad_value(f"{creator}(trial)", name, "a directory name other than '.' or '..'")
        name = _RAY_DIRNAME_UNSAFE.sub("_", name)
    return name


def _saves_checkpoints(trainable: Any) -> bool:
    """Whether a class trainable implements ``save_checkpoint`` (the base raises)."""
    from poptune.trainable import Trainable

    save = getattr(trainable, "save_checkpoint", None)
    return save is not None and save is not Trainable.save_checkpoint


def _setup_callback(cb: Any, spec: dict[str, Any]) -> None:
    """``cb.setup(**spec)``; a ``setup`` that takes none of these gets no arguments, with
    Ray's warning."""
    try:
        cb.setup(**spec)
    except TypeError as exc:
        if "argument" not in str(exc):
            raise
        import warnings

        warnings.warn(f"Please update `setup` method in callback `{type(cb)}` to match the "
                      "method signature in `ray.tune.callback.Callback`.", FutureWarning,
                      stacklevel=2)
        cb.setup()
