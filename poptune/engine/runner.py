"""The runner: drives trials on a backend, keeps the books, persists everything.

One loop pass: create trials while there is room, launch what the scheduler picks, poll the
backend, handle each event (persist → ask stopper/scheduler → queue a reply), commit the
journal with one write, then send the replies. A trial only continues after its result is in
the journal, so nothing it reported can be lost.

Trial statuses, and what each running trial has been told, belong to the pure
:class:`~poptune.engine.controller.Controller`: the runner reports events to it and carries
out the replies and outcomes it returns (journal, backend, callbacks, files).
"""

from __future__ import annotations

import base64
import io
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import cloudpickle

from poptune.backends._base import (
    Backend,
    LaunchSpec,
)
from poptune.config import RunConfig, TuneConfig
from poptune.engine._events import TrialEvents
from poptune.engine._io import AsyncWriter, ckpt_record, rewrite_rows  # noqa: F401
from poptune.engine.controller import Controller, Told
from poptune.engine.experiment import TrialHistory, default_trial_dirname, pack, timestamp
from poptune.engine.resources import ResourcePool
from poptune.engine.trial import Trial, TrialStatus
from poptune.exceptions import StorageError, TuneError
from poptune.execution.tune_controller import TuneController
from poptune.schedulers._base import Exploit, TrialScheduler
from poptune.stopper import Stopper
from poptune.storage.background import BackgroundIO
from poptune.storage.checkpoints import TrialCheckpoints
from poptune.storage.journal import Journal
from poptune.storage.trial_logs import write_params
from poptune.trainable._util import normalize_resources

logger = logging.getLogger("poptune")

_SCALARS = (int, float, str, bytes, bool, type(None), complex)
SCHEDULER_STATE_FILE = "scheduler_state.pkl"
SEARCHER_STATE_FILE = "searcher_state.b64"
_STOP_GRACE_S = 10.0


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


class _RefPickler(cloudpickle.Pickler):
    def __init__(self, file: io.BytesIO, refs: dict[int, int]) -> None:
        super().__init__(file)
        self._refs = refs

    def persistent_id(self, obj: Any) -> Any:  # noqa: D401 - pickle hook
        return self._refs.get(id(obj))


@dataclass
class _Live:
    """Driver-side state of a trial that is not persisted as such."""

    writer: AsyncWriter | None = None
    checkpoints: TrialCheckpoints | None = None
    rows: int = 0
    exploit: Exploit | None = None
    awaiting_save: dict[str, Any] | None = None  # a result to decide on once saved
    after_save: str | None = None  # the reply to send once a callback-requested save is done
    stop_requested_at: float | None = None
    gpu_ids: list[int] = field(default_factory=list)
    error_blob: bytes | None = None
    restore_meta: dict[str, Any] | None = None
    next_checkpoint_index: int = 0
    #: the pickled config and the config object it was made from (PBT replaces the object)
    config_blob: tuple[Any, bytes] | None = None


class Runner(TrialEvents):
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
        clock: Callable[[], float] = time.monotonic,
        remote: Any = None,
    ) -> None:
        #: a :class:`~poptune.storage.remote.RemoteStorage`, or None for a local experiment
        self.remote = remote
        self.trainable = trainable
        self.trainable_name = trainable_name
        self.param_space = param_space
        self.tune_config = tune_config
        self.run_config = run_config
        self.experiment_dir = experiment_dir
        self.experiment_name = experiment_name
        self.exp_hex = exp_hex
        self.backend = backend
        self.searcher = searcher
        self.scheduler = scheduler
        self.stopper = stopper
        self.callbacks = callbacks
        self.default_resources = default_resources
        self.resources_fn = resources_fn
        self.clock = clock
        self.is_class = isinstance(trainable, type)
        self.trials: list[Trial] = []
        self.by_id: dict[str, Trial] = {}
        self.live: dict[str, _Live] = {}
        self.pool = ResourcePool(**backend.total_resources())
        self.journal = Journal(os.path.join(experiment_dir, "journal.jsonl"),
                               on_commit=remote.put_journal_segment if remote else None)
        self.iteration = 0
        self.replies: list[tuple[str, str]] = []
        self.searcher_done = False
        self.stopping_all = False
        self.fatal: BaseException | None = None
        self.raise_trial_error: BaseException | None = None
        self.pinned: dict[str, int] = {}
        self._stopping: dict[str, Trial] = {}
        self._warned_pause = False
        self._sched_dirty = False
        self._search_dirty = False  # searcher state changed since the last commit
        self._run_error: BaseException | None = None  # what ended run() early, if anything
        self._last_sync = 0.0
        self._default_choice = (
            type(scheduler).choose_trial_to_run is TrialScheduler.choose_trial_to_run)
        self._resizing = (
            type(scheduler).take_resource_changes is not TrialScheduler.take_resource_changes)
        scheduler.set_experiment_view(
            TuneController(lambda: self.trials, self.pool.cpu_total, self.pool.gpu_total))
        self.io = BackgroundIO()
        # the engine's own result files; a user's CSV/JSON logger callback replaces ours
        sinks = set(run_config.log_sinks or ())
        for cb in callbacks:
            kind = getattr(cb, "_poptune_sink", None)
            if kind:
                sinks.discard(kind)
        self.sinks = frozenset(sinks)
        from poptune.callbacks.progress import ProgressCallback

        self._user_callbacks = [cb for cb in callbacks if not isinstance(cb, ProgressCallback)]
        self._last_flush = 0.0
        self._last_state_save = 0.0
        self._dirty_writers: set[str] = set()
        ckpt_cfg = run_config.checkpoint_config
        assert ckpt_cfg is not None
        self.ckpt_cfg = ckpt_cfg
        failure = run_config.failure_config
        assert failure is not None
        self.max_failures = failure.max_failures
        self.fail_fast = failure.fail_fast
        #: trial statuses and what running trials were told: the pure state machine
        self.ctl = Controller(failure.max_failures, failure.fail_fast)
        max_conc = tune_config.max_concurrent_trials or 0
        self.max_concurrent = max_conc if max_conc > 0 else None
        constants: dict[int, Any] = {}
        collect_constants(param_space, constants)
        self.constants = list(constants.values())
        self.const_refs = {oid: i for i, oid in enumerate(constants)}
        self.next_index = 0
        if history:
            self._adopt_history(history)

    # ------------------------------------------------------------------------------------
    # setup and restore
    def _adopt_history(self, history: dict[str, TrialHistory]) -> None:
        for h in history.values():
            t = h.trial
            live = _Live(rows=len(h.rows), next_checkpoint_index=h.next_checkpoint_index,
                         restore_meta=h.restore_meta)
            live.checkpoints = self._new_ckpt_manager()
            for name, metrics, rows in h.checkpoints:
                if name not in h.deleted:
                    live.checkpoints.records.append(
                        ckpt_record(self._ckpt_path(t, name), metrics, rows))
            self.trials.append(t)
            self.by_id[t.trial_id] = t
            self.live[t.trial_id] = live
            self.ctl.add(t)
            if t.restore_path and not t.is_finished:
                self._pin(t.restore_path)
            idx = int(t.trial_id.rsplit("_", 1)[-1])
            self.next_index = max(self.next_index, idx + 1)
            self.scheduler.on_trial_add(t)

    def _ckpt_path(self, trial: Trial, name: str) -> str:
        if self.remote is not None:
            return f"{trial.storage_dir}/{name}"
        return os.path.join(trial.local_path, name)

    def _new_ckpt_manager(self) -> TrialCheckpoints:
        return TrialCheckpoints(
            num_to_keep=self.ckpt_cfg.num_to_keep,
            score_attribute=self.ckpt_cfg.checkpoint_score_attribute,
            score_order=self.ckpt_cfg.checkpoint_score_order,
            is_pinned=self._is_pinned,
        )

    def _is_pinned(self, path: str) -> bool:
        if self.pinned.get(path):
            return True
        return path in self.scheduler.pinned_checkpoints()

    def _blobs(self) -> dict[str, bytes]:
        try:
            trainable_blob = cloudpickle.dumps(self.trainable)
        except Exception as exc:  # noqa: BLE001
            raise TuneError(f"the trainable {self.trainable_name!r} cannot be pickled: {exc}") from exc
        try:
            constants_blob = cloudpickle.dumps(self.constants)
        except Exception as exc:  # noqa: BLE001
            raise TuneError(f"a constant in `param_space` cannot be pickled: {exc}") from exc
        return {"trainable": trainable_blob, "constants": constants_blob}

    def _config_blob(self, config: dict[str, Any]) -> bytes:
        buf = io.BytesIO()
        _RefPickler(buf, self.const_refs).dump(config)
        return buf.getvalue()

    def _trial_config_blob(self, trial: Trial) -> bytes:
        """The trial's pickled config, made once per config object."""
        live = self.live[trial.trial_id]
        if live.config_blob is None or live.config_blob[0] is not trial.config:
            live.config_blob = (trial.config, self._config_blob(trial.config))
        return live.config_blob[1]

    def _worker_count(self) -> int:
        n = self.pool.max_concurrent(self.default_resources)
        if self.max_concurrent:
            n = min(n, self.max_concurrent)
        total = getattr(self.searcher, "total_samples", None)
        if total:
            n = min(n, total)
        return max(1, n)

    # ------------------------------------------------------------------------------------
    # the loop
    def run(self) -> list[Trial]:
        blobs = self._blobs()
        self.start_time = self.clock()
        for cb in self.callbacks:
            cb.setup(stop=self.run_config.stop, num_samples=self.tune_config.num_samples,
                     total_num_samples=getattr(self.searcher, "total_samples", None))
        self.backend.setup(blobs, self._worker_count())
        try:
            while not self._finished():
                self.iteration += 1
                for cb in self.callbacks:
                    cb.on_step_begin(self.iteration, self.trials)
                self._create_trials()
                self._launch()
                events = self.backend.poll(0.5 if not self.replies else 0.0)
                for event in events:
                    self._handle(event)
                self._check_stop_all()
                self._enforce_stop_grace()
                self._commit()
                for cb in self.callbacks:
                    cb.on_step_end(self.iteration, self.trials)
                if self.fatal is not None:
                    raise self.fatal
            self.journal.append({"e": "end"})
        except KeyboardInterrupt as exc:
            self._run_error = exc
            logger.warning(
                "Experiment interrupted; its state is saved. Resume it with "
                "Tuner.restore(%r, trainable=...)", self.experiment_dir,
            )
            self._abort()
            raise
        except BaseException as exc:
            self._run_error = exc
            self._abort()
            raise
        finally:
            self._close()
        return self.trials

    def _finished(self) -> bool:
        return self.ctl.is_finished(self.searcher_done, self.stopping_all)

    def _max_pending(self) -> int:
        """Random/grid search creates up to 1,000 trials ahead (a PBT population exists as a
        whole); a model-based searcher is asked only when a slot is free."""
        from poptune.search.basic_variant import BasicVariantGenerator

        if isinstance(self.searcher, BasicVariantGenerator):
            return max(self._worker_count(), 1000)
        return self._worker_count()

    def _running_count(self) -> int:
        return len(self.ctl.running)

    def _create_trials(self) -> None:
        if self.searcher_done or self.stopping_all:
            return
        waiting = len(self.ctl.pending)
        room = self._max_pending() - self._running_count() - waiting
        if self.max_concurrent:
            room = min(room, self.max_concurrent - self._running_count() - waiting)
        while room > 0:
            trial_id = f"{self.exp_hex}_{self.next_index:05d}"
            suggestion = self.searcher.next_trial(trial_id)
            if suggestion is None:
                if self.searcher.is_finished():
                    self.searcher_done = True
                return
            self._add_trial(trial_id, suggestion)
            room -= 1

    def _add_trial(self, trial_id: str, suggestion: Any) -> None:
        from poptune.search.variant_generator import format_vars

        index = self.next_index
        self.next_index += 1
        config = suggestion.config
        params = dict(suggestion.resolved_vars)
        tag = f"{index}_{format_vars(params)}" if params else str(index)
        resources = self.resources_fn(config) or dict(self.default_resources)
        self.pool.check_fits_ever(resources)
        trial = Trial(trial_id=trial_id, trainable_name=self.trainable_name, config=config,
                      experiment_tag=tag, resources=resources, evaluated_params=params)
        if self.tune_config.trial_name_creator is not None:
            trial.custom_trial_name = str(self.tune_config.trial_name_creator(trial))
        if self.tune_config.trial_dirname_creator is not None:
            trial.dirname = str(self.tune_config.trial_dirname_creator(trial))
        else:
            trial.dirname = default_trial_dirname(trial, timestamp())
        trial.local_path = os.path.join(self.experiment_dir, trial.dirname)
        trial.storage_dir = (self.remote.uri_of(trial.dirname) if self.remote
                             else trial.local_path)
        self.scheduler.on_trial_add(trial)  # may fill in config keys (PBT) or replace it (replay)
        config = trial.config
        self.io.submit(write_params, trial.local_path, config, "params" in self.sinks)
        live = _Live(checkpoints=self._new_ckpt_manager())
        self.trials.append(trial)
        self.by_id[trial_id] = trial
        self.live[trial_id] = live
        self.ctl.add(trial, TrialStatus.PENDING)
        self.journal.append({
            "e": "trial", "id": trial_id, "trainable": self.trainable_name,
            "config": base64.b64encode(self._trial_config_blob(trial)).decode(),
            "tag": tag, "path": trial.local_path, "dirname": trial.dirname,
            "resources": resources, "params": params, "name": trial.custom_trial_name,
        })
        self._search_dirty = True

    def _record_search_state(self) -> None:
        """Make the searcher's state part of the experiment after it changed.

        Called once per loop pass, just before the journal commits, when a trial was created
        or finished during the pass: the state lands in the same atomic commit as the trial
        records that changed it. A small state goes into the journal itself; a big one (a
        model-based searcher's history) is written to ``searcher_state.pkl`` and the journal
        only notes that, so the journal does not grow quadratically.
        """
        save_state = getattr(self.searcher, "save_state", None)
        if save_state is None:
            return
        try:
            blob = pack(save_state())
        except Exception:  # noqa: BLE001 - a searcher whose state cannot be pickled
            return
        if len(blob) <= 4096:
            self.journal.append({"e": "search", "state": blob})
            return
        path = os.path.join(self.experiment_dir, SEARCHER_STATE_FILE)
        with open(path + ".tmp", "w") as f:
            f.write(blob)
        os.replace(path + ".tmp", path)
        self.journal.append({"e": "search", "file": SEARCHER_STATE_FILE})

    def _launch(self) -> None:
        if self.stopping_all:
            return
        if self._resizing:
            self._apply_resource_changes()
        while True:
            if self.max_concurrent and self._running_count() >= self.max_concurrent:
                return
            if not self.ctl.pending and not self.ctl.paused:
                return
            trial: Trial | None
            if self._default_choice:  # FIFO: pending first, then paused, in order
                trial = next(iter(self.ctl.pending.values() or self.ctl.paused.values()))
            else:
                trial = self.scheduler.choose_trial_to_run(
                    list(self.ctl.pending.values()) + list(self.ctl.paused.values()))
                self._take_exploits()
            if trial is None:
                return
            gpu_ids = self.pool.allocate(trial.trial_id, trial.resources)
            if gpu_ids is None:
                return
            self._start(trial, gpu_ids)

    def _apply_resource_changes(self) -> None:
        """Give paused trials the resources a resizing scheduler chose for them."""
        for trial_id, new in self.scheduler.take_resource_changes():
            trial = self.by_id.get(trial_id)
            if trial is None or trial.is_finished:
                continue
            what = "the resources_allocation_function's result"
            resources = normalize_resources(new, what)
            self.pool.check_fits_ever(resources, what=what)
            trial.resources = resources
            self.journal.append({"e": "resources", "t": trial_id, "r": resources})

    def _start(self, trial: Trial, gpu_ids: list[int]) -> None:
        live = self.live[trial.trial_id]
        live.gpu_ids = gpu_ids
        restore = trial.restore_path or trial.checkpoint_path
        start_iter, time_offset = 0, 0.0
        meta = live.restore_meta
        if trial.restore_path and meta:
            start_iter, time_offset = meta.get("it", 0), meta.get("tt", 0.0)
        elif restore and live.checkpoints and live.checkpoints.latest:
            m = live.checkpoints.latest.metrics
            start_iter, time_offset = m.get("training_iteration", 0), m.get("time_total_s", 0.0)
        if live.writer is None:
            live.writer = AsyncWriter(self.io, trial.local_path, "json" in self.sinks,
                                       "csv" in self.sinks)
        spec = LaunchSpec(
            trial_id=trial.trial_id,
            trial_name=str(trial),
            trial_dir=trial.local_path,
            experiment_name=self.experiment_name,
            experiment_dir=self.experiment_dir,
            config_blob=self._trial_config_blob(trial),
            resources=dict(trial.resources),
            restore_path=restore,
            start_iteration=start_iter,
            time_total_offset=time_offset,
            next_checkpoint_index=live.next_checkpoint_index,
            checkpoint_frequency=self.ckpt_cfg.checkpoint_frequency if self.is_class else 0,
            checkpoint_at_end=bool(self.ckpt_cfg.checkpoint_at_end) if self.is_class else False,
            chdir=getattr(self.backend, "separate_processes", True) and os.environ.get(
                "RAY_CHDIR_TO_TRIAL_DIR", os.environ.get(
                "POPTUNE_CHDIR_TO_TRIAL_DIR", "1")) != "0",
            storage_trial_dir=trial.storage_dir if self.remote else None,
            env=({} if getattr(self.backend, "assigns_devices", False)
                 else {"CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in gpu_ids)}),
        )
        was_restore = restore is not None
        self.ctl.on_launch(trial)
        if trial.start_time is None:
            trial.start_time = time.time()
        live.stop_requested_at = None
        self.journal.append({"e": "status", "t": trial.trial_id, "s": "RUNNING"})
        self.backend.launch(spec)
        for cb in self.callbacks:
            cb.on_trial_start(self.iteration, self.trials, trial)
            if was_restore:
                cb.on_trial_restore(self.iteration, self.trials, trial)

    # trial events live in _events.TrialEvents (mixin)

    def _check_stop_all(self) -> None:
        if self.stopping_all:
            return
        if self.stopper.stop_all():
            self.stopping_all = True
            self._stop_everything()

    def _stop_everything(self) -> None:
        now = self.clock()
        for t in self.trials:
            live = self.live[t.trial_id]
            if t.status == TrialStatus.RUNNING:
                self.ctl.tell(t.trial_id, Told.STOP, keep=True)
                live.stop_requested_at = now
                self._stopping[t.trial_id] = t
            elif t.status in (TrialStatus.PENDING, TrialStatus.PAUSED) and live.rows > 0:
                self.ctl.on_done(t)
                self.journal.append({"e": "status", "t": t.trial_id, "s": "TERMINATED"})
        never_started = [t for t in self.ctl.pending.values()
                         if self.live[t.trial_id].rows == 0]
        for t in never_started:
            self.ctl.forget_pending(t.trial_id)
        gone = {t.trial_id for t in never_started}
        self.trials = [t for t in self.trials if t.trial_id not in gone]

    def _enforce_stop_grace(self) -> None:
        if not self._stopping:
            return
        now = self.clock()
        for t in list(self._stopping.values()):
            live = self.live[t.trial_id]
            if t.status != TrialStatus.RUNNING or live.stop_requested_at is None:
                self._stopping.pop(t.trial_id, None)
            elif now - live.stop_requested_at > _STOP_GRACE_S:
                self._stopping.pop(t.trial_id, None)
                self.backend.kill(t.trial_id)
                self._on_stopped(t)

    def _commit(self) -> None:
        if self._search_dirty:
            self._search_dirty = False
            self._record_search_state()
        self.journal.commit()
        for trial_id, decision in self.replies:
            self.backend.reply(trial_id, decision)
        self.replies.clear()
        now = self.clock()
        if now - self._last_flush > 0.5:
            for tid in self._dirty_writers:
                w = self.live[tid].writer
                if w is not None:
                    w.flush()
            self._dirty_writers.clear()
            self._last_flush = now
        if now - self._last_state_save > 2.0 or (
                self._sched_dirty and now - self._last_state_save > 0.2):
            self._sched_dirty = False
            self.save_scheduler_state()
            self._last_state_save = now
        if self.remote is not None and now - self._last_sync > 5.0:
            self._last_sync = now
            self.io.submit(self.remote.sync_dir, self.experiment_dir)

    def save_scheduler_state(self) -> None:
        path = os.path.join(self.experiment_dir, SCHEDULER_STATE_FILE)
        try:
            blob = cloudpickle.dumps(self.scheduler.save_state())
        except Exception:  # noqa: BLE001 - a scheduler with unpicklable state is not persisted
            return
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)

    def _abort(self) -> None:
        for t in self.trials:
            if t.status == TrialStatus.RUNNING:
                self.ctl.tell(t.trial_id, Told.KILL)
                self.backend.kill(t.trial_id)
                self.pool.release(t.trial_id)

    def _close(self) -> None:
        try:
            if self._search_dirty:
                self._search_dirty = False
                self._record_search_state()
            self.journal.close()
        finally:
            for t in self.trials:
                self._close_writer(t)
            self.io.drain()
            self.io.close()
            self.save_scheduler_state()
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

