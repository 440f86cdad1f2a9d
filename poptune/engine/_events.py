"""How the runner reacts to each trial event: results, saves, completions, errors, lost
workers, and the scheduler's decisions (continue, pause, stop, exploit). Split from
``runner.py``; :class:`TrialEvents` is mixed into :class:`~poptune.engine.runner.Runner` and
uses its state."""

from __future__ import annotations

import base64
import logging
import os
import pickle
import shutil
from typing import TYPE_CHECKING, Any

from poptune.backends._base import (
    DoneEvent,
    ErrorEvent,
    ResultEvent,
    SavedEvent,
    StoppedEvent,
    WorkerLostEvent,
)
from poptune.callbacks._progress_format import AUTO_RESULT_KEYS
from poptune.engine._io import ckpt_metrics, rewrite_rows
from poptune.engine.controller import Controller, ErrorOutcome, Reply, StopOutcome, Told
from poptune.engine.trial import Trial, TrialStatus
from poptune.search.variant_generator import flatten_dict
from poptune.exceptions import TrialError, TuneConfigError, TuneError
from poptune.schedulers._base import Exploit, SchedulerDecision
from poptune.storage.trial_logs import write_error

if TYPE_CHECKING:
    from poptune.config import TuneConfig
    from poptune.engine.resources import ResourcePool
    from poptune.schedulers._base import TrialScheduler
    from poptune.stopper import Stopper
    from poptune.storage.background import BackgroundIO
    from poptune.storage.journal import Journal

logger = logging.getLogger("poptune")


def flat_result(result: dict[str, Any]) -> dict[str, Any]:
    """The result as schedulers and searchers see it in Ray: nested dicts flattened to
    ``"a/b"`` keys (``{"val": {"loss": 1}}`` → ``{"val/loss": 1}``), ``config`` included.

    >>> flat_result({"val": {"loss": 1.0}, "config": {"lr": 0.1}, "it": 2})
    {'val/loss': 1.0, 'config/lr': 0.1, 'it': 2}
    """
    if not any(isinstance(v, dict) for v in result.values()):
        return result
    return flatten_dict(result)


class TrialEvents:
    """Event handlers of the runner (a mixin; ``self`` is the :class:`Runner`)."""

    # the Runner's state these handlers use (declared for type checkers; set by Runner)
    by_id: dict[str, Trial]
    live: dict[str, Any]
    trials: list[Trial]
    ctl: Controller
    journal: Journal
    scheduler: TrialScheduler
    searcher: Any
    stopper: Stopper
    tune_config: TuneConfig
    callbacks: list[Any]
    _user_callbacks: list[Any]
    pool: ResourcePool
    io: BackgroundIO
    remote: Any
    replies: list[tuple[str, str]]
    pinned: dict[str, int]
    iteration: int
    is_class: bool
    fail_fast: bool | str
    max_failures: int
    experiment_dir: str
    fatal: BaseException | None
    stopping_all: bool
    _dirty_writers: set[str]
    _warned_pause: bool
    _sched_dirty: bool
    _search_dirty: bool

    if TYPE_CHECKING:  # Runner methods the handlers call
        def _ckpt_path(self, trial: Trial, name: str) -> str: ...
        def _config_blob(self, config: dict[str, Any]) -> bytes: ...
        def _stop_everything(self) -> None: ...
    # ------------------------------------------------------------------------------------
    # events
    def _handle(self, event: Any) -> None:
        trial = self.by_id.get(event.trial_id)
        if trial is None:
            return
        if isinstance(event, ResultEvent):
            self._on_result(trial, event.result)
        elif isinstance(event, SavedEvent):
            self._on_saved(trial, event.checkpoint_dir_name)
        elif isinstance(event, DoneEvent):
            self._on_done(trial)
        elif isinstance(event, StoppedEvent):
            self._on_stopped(trial)
        elif isinstance(event, ErrorEvent):
            self._on_error(trial, event.traceback, event.exception)
        elif isinstance(event, WorkerLostEvent):
            self._on_error(trial, f"WorkerLostError: {event.detail}\n", None, lost=True)

    def _register_checkpoint(self, trial: Trial, name: str, metrics: dict[str, Any]) -> None:
        live = self.live[trial.trial_id]
        path = self._ckpt_path(trial, name)
        index = int(name.rsplit("_", 1)[-1])
        live.next_checkpoint_index = max(live.next_checkpoint_index, index + 1)
        trial.checkpoint_path = path
        self._unpin(trial.restore_path)
        trial.restore_path = None
        live.restore_meta = None
        self.journal.append({"e": "ckpt", "t": trial.trial_id, "name": name, "path": path,
                             "index": index, "rows": live.rows,
                             "m": ckpt_metrics(metrics)})
        assert live.checkpoints is not None
        for old in live.checkpoints.add(path, {**ckpt_metrics(metrics), "_rows": live.rows}):
            self._delete_checkpoint(trial, old)
        for cb in self.callbacks:
            cb.on_checkpoint(self.iteration, self.trials, trial, path)
            cb.on_trial_save(self.iteration, self.trials, trial)

    def _delete_checkpoint(self, owner: Trial, path: str) -> None:
        self.journal.append({"e": "ckpt_del", "t": owner.trial_id, "name": os.path.basename(path)})
        if self.remote is not None:
            self.io.submit(self.remote.rm, path)
        else:
            shutil.rmtree(path, ignore_errors=True)

    def _on_result(self, trial: Trial, result: dict[str, Any]) -> None:
        """A trial reported: decide, then log the row and tell the callbacks and the searcher
        (Ray's order: a row that stopped the trial says ``done: true``)."""
        live = self.live[trial.trial_id]
        result["experiment_tag"] = trial.experiment_tag
        result["config"] = trial.config
        live.rows += 1
        trial.last_result = result
        ckpt_name = result.get("checkpoint_dir_name")
        if ckpt_name:
            self._register_checkpoint(trial, ckpt_name, result)
        again = self.ctl.reply_while_told(trial.trial_id)
        if again is not None:  # already told to stop or pause: answer the same way
            self._log_result(trial, result)
            self.replies.append((trial.trial_id, again.value))
            return
        if self.is_class and not ckpt_name and (
                result.get("should_checkpoint")
                or self.scheduler.should_checkpoint(trial, flat_result(result))):
            # save first, decide once saved: a PBT decision must see this step's checkpoint
            self._log_result(trial, result)
            live.awaiting_save = result
            self.replies.append((trial.trial_id, Reply.SAVE.value))
            return
        self._decide(trial, result, logged=False)

    def _log_result(self, trial: Trial, result: dict[str, Any]) -> None:
        """Journal the row, append it to the trial's files and pass it to the callbacks."""
        journal_result = {k: v for k, v in result.items() if k != "config"}
        self.journal.append({"e": "result", "t": trial.trial_id, "r": journal_result})
        live = self.live[trial.trial_id]
        if live.writer is not None:
            live.writer.write(dict(result))  # callbacks may add keys while the thread writes
            self._dirty_writers.add(trial.trial_id)
        for cb in self.callbacks:
            cb.on_trial_result(self.iteration, self.trials, trial, result)

    def _on_saved(self, trial: Trial, name: str) -> None:
        live = self.live[trial.trial_id]
        self._register_checkpoint(trial, name, trial.last_result)
        if live.awaiting_save is not None:
            result, live.awaiting_save = live.awaiting_save, None
            self._decide(trial, result, logged=True)
        elif live.after_save is not None:  # a save a callback asked for: now carry on
            self.replies.append((trial.trial_id, live.after_save))
            live.after_save = None

    def _decide(self, trial: Trial, result: dict[str, Any], *, logged: bool) -> None:
        """Decide on a result; mark it ``done`` when it stops the trial; log it unless that
        happened already; tell the searcher unless the trial is to stop (as Ray does: a
        searcher never hears the result that stopped a trial, only its completion)."""
        flat = flat_result(result)
        try:
            reply = self._decision_reply(trial, result, flat)
        except BaseException:  # e.g. Ctrl-C inside a stopper: the row goes into the journal
            if not logged:     # with the checkpoint registered for it, or restore loses it
                self._log_result(trial, result)
            raise
        stopping = self.ctl.told_to(trial.trial_id) == Told.STOP and not result.get("done")
        if not logged:
            if stopping:
                result["done"] = True
            self._log_result(trial, result)
            if (self.is_class and reply == Reply.CONTINUE and result.get("should_checkpoint")
                    and not result.get("checkpoint_dir_name")):
                # a callback asked for a checkpoint: save, then continue (the decision stands)
                self.live[trial.trial_id].after_save = Reply.CONTINUE.value
                reply = Reply.SAVE
        self.replies.append((trial.trial_id, reply.value))
        if not stopping:
            self.searcher.on_trial_result(trial.trial_id, flat)

    def _missing_metric(self, trial: Trial, flat: dict[str, Any]) -> TuneError | None:
        """The error for a result that lacks a metric TuneConfig, the scheduler or the searcher
        ranks by (Ray's strict metric check; ``TUNE_DISABLE_STRICT_METRIC_CHECKING=1`` or
        ``POPTUNE_DISABLE_STRICT_METRIC_CHECKING=1`` turns it off). A result with only the
        automatic keys (a function that returned without reporting) is not checked."""
        searcher_metric = getattr(self.searcher, "metric", None)
        wanted = [(self.tune_config.metric, "TuneConfig(metric=...)"),
                  (self.scheduler.metric, type(self.scheduler).__name__)]
        for m in searcher_metric if isinstance(searcher_metric, list) else [searcher_metric]:
            wanted.append((m, type(getattr(self.searcher, "searcher", self.searcher)).__name__))
        for metric, where in wanted:
            if not metric or metric == "_metric" or metric in flat:
                continue
            # only now (the rare case) list what was reported and read the opt-out
            reported = sorted(k for k in flat if k not in AUTO_RESULT_KEYS
                              and not k.startswith("config/"))
            opted_out = os.environ.get("TUNE_DISABLE_STRICT_METRIC_CHECKING", os.environ.get(
                "POPTUNE_DISABLE_STRICT_METRIC_CHECKING", "0")) == "1"
            if not reported or opted_out:
                return None
            return TuneConfigError(
                f"trial {trial} reported a result without the metric `{metric}` that "
                f"{where} ranks by; it reported {', '.join(reported)}. Report `{metric}` "
                "in every tune.report() call, or set TUNE_DISABLE_STRICT_METRIC_CHECKING=1 "
                "to skip this check")
        return None

    def _decision_reply(self, trial: Trial, result: dict[str, Any],
                        flat: dict[str, Any]) -> Reply:
        """Check the metrics, ask the stopper, then the scheduler; return the worker's reply."""
        missing = self._missing_metric(trial, flat)
        if missing is not None:  # as in Ray: a result without the metric ends the experiment
            self.fatal = missing
            return self.ctl.on_decision(trial, SchedulerDecision.STOP, can_pause=False,
                                        by_stopper=True)
        if result.get("done"):
            return Reply.CONTINUE
        try:
            stop = bool(self.stopper(trial.trial_id, result))
        except TuneError as exc:
            self.fatal = exc
            stop = True
        decision: Any = SchedulerDecision.STOP
        if not stop:
            decision = self.scheduler.on_trial_result(trial, flat)
            if decision != SchedulerDecision.CONTINUE:
                self._sched_dirty = True
            if isinstance(decision, Exploit):
                self._log_exploit(decision)
            self._take_exploits()
        # pausing a function trial without a checkpoint would silently restart it from
        # scratch (Ray #27170): it keeps running instead
        can_pause = self.is_class or bool(trial.checkpoint_path)
        reply = self.ctl.on_decision(trial, decision, can_pause=can_pause, by_stopper=stop)
        if isinstance(decision, Exploit):
            self.live[trial.trial_id].exploit = decision
            self._pin(decision.checkpoint_path)
        paused_refused = decision == SchedulerDecision.PAUSE and reply == Reply.CONTINUE
        if paused_refused and not self._warned_pause:
            self._warned_pause = True
            logger.warning(
                "%s asked to pause trial %s, which has not reported a checkpoint; pausing it "
                "would restart it from scratch, so it keeps running. Report checkpoints with "
                "tune.report(..., checkpoint=...) so trials can be paused and resumed. "
                "(Warned once per experiment.)", type(self.scheduler).__name__, trial)
        return reply

    def _pin(self, path: str) -> None:
        self.pinned[path] = self.pinned.get(path, 0) + 1

    def _unpin(self, path: str | None) -> None:
        if path and path in self.pinned:
            self.pinned[path] -= 1
            if self.pinned[path] <= 0:
                del self.pinned[path]

    def _take_exploits(self) -> None:
        """Carry out exploits and stops the scheduler decided outside ``on_trial_result``."""
        self._apply_exploits(self.scheduler.take_exploits())
        for trial_id in self.scheduler.take_stops():
            trial = self.by_id.get(trial_id)
            if trial is None or trial.is_finished:
                continue
            if trial.status == TrialStatus.RUNNING:
                self.ctl.tell(trial.trial_id, Told.STOP)
                self.live[trial.trial_id].exploit = None
            else:
                self._on_done(trial)

    def _apply_exploits(self, exploits: list[Exploit]) -> None:
        for ex in exploits:
            target = self.by_id.get(ex.trial_id)
            if target is None:
                continue
            self._log_exploit(ex)
            if target.status == TrialStatus.RUNNING:
                live = self.live[target.trial_id]
                self.ctl.tell(target.trial_id, Told.EXPLOIT)
                live.exploit = ex
                self._pin(ex.checkpoint_path)
                continue  # carried out when it next reports / stops
            self._carry_out_exploit(target, ex)

    def _carry_out_exploit(self, trial: Trial, ex: Exploit) -> None:
        donor = self.by_id.get(ex.donor_trial_id)
        live = self.live[trial.trial_id]
        donor_meta = {"it": ex.donor_result.get("training_iteration", 0),
                      "tt": ex.donor_result.get("time_total_s", 0.0)}
        if donor is not None:
            dl = self.live[donor.trial_id]
            for rec in dl.checkpoints.records if dl.checkpoints else []:
                if rec.path == ex.checkpoint_path:
                    donor_meta = {"it": rec.metrics.get("training_iteration", 0),
                                  "tt": rec.metrics.get("time_total_s", 0.0)}
        trial.config = ex.config
        flat = flatten_dict(ex.config)  # the progress table shows current values
        trial.evaluated_params = {k: flat.get(k, v) for k, v in trial.evaluated_params.items()}
        if ex.experiment_tag:
            trial.experiment_tag = ex.experiment_tag
        old_restore = trial.restore_path
        trial.restore_path = ex.checkpoint_path
        self._pin(ex.checkpoint_path)
        self._unpin(old_restore)
        live.restore_meta = donor_meta
        self.journal.append({"e": "config", "t": trial.trial_id,
                             "config": base64.b64encode(self._config_blob(ex.config)).decode(),
                             "restore": {"path": ex.checkpoint_path, **donor_meta}})

    def _log_exploit(self, ex: Exploit) -> None:
        """Append the exploit to pbt_global.txt / pbt_policy_*.txt when it is decided."""
        trial, donor = self.by_id.get(ex.trial_id), self.by_id.get(ex.donor_trial_id)
        if not getattr(self.scheduler, "log_config", False) or trial is None or donor is None:
            return
        from poptune.storage.pbt_log import write_exploit_logs

        line = getattr(ex, "log_line", None) or [
            trial.experiment_tag, donor.experiment_tag,
            trial.last_result.get("training_iteration", 0),
            ex.donor_result.get("training_iteration", 0), donor.config, ex.config,
        ]
        write_exploit_logs(self.experiment_dir, trial.trial_id, donor.trial_id, line)

    def _finish_running(self, trial: Trial) -> None:
        self.pool.release(trial.trial_id)
        live = self.live[trial.trial_id]
        live.stop_requested_at = None

    def _close_writer(self, trial: Trial) -> None:
        live = self.live[trial.trial_id]
        if live.writer is not None:
            live.writer.close()
            live.writer = None
            self._dirty_writers.discard(trial.trial_id)

    def _on_done(self, trial: Trial) -> None:
        self._finish_running(trial)
        self.ctl.on_done(trial)
        trial.last_result = {**trial.last_result, "done": True}
        self.journal.append({"e": "status", "t": trial.trial_id, "s": "TERMINATED"})
        self._close_writer(trial)
        if self._user_callbacks:  # e.g. MLflow uploading the trial dir: files must be complete
            self.io.drain()
        self._unpin(trial.restore_path)
        last = flat_result(trial.last_result)
        self.scheduler.on_trial_complete(trial, last)
        self._take_exploits()
        self.searcher.on_trial_complete(trial.trial_id, last, error=False)
        self._search_dirty = True
        for cb in self.callbacks:
            cb.on_trial_complete(self.iteration, self.trials, trial)

    def _on_stopped(self, trial: Trial) -> None:
        self._finish_running(trial)
        live = self.live[trial.trial_id]
        outcome = self.ctl.on_stopped(trial, stopping_all=self.stopping_all,
                                      has_exploit=live.exploit is not None)
        if outcome == StopOutcome.EXPLOITED:
            ex, live.exploit = live.exploit, None
            assert ex is not None
            self._carry_out_exploit(trial, ex)
            self._unpin(ex.checkpoint_path)
            self.journal.append({"e": "status", "t": trial.trial_id, "s": "PAUSED"})
        elif outcome == StopOutcome.PAUSED:
            self.journal.append({"e": "status", "t": trial.trial_id, "s": "PAUSED"})
        elif outcome == StopOutcome.DONE:
            self._on_done(trial)
        # INTERRUPTED: stays unfinished in the journal

    def _on_error(self, trial: Trial, tb: str, blob: bytes | None, lost: bool = False) -> None:
        self._finish_running(trial)
        outcome = self.ctl.on_error(trial, lost=lost)
        if outcome == ErrorOutcome.STOPPED:  # killed while being stopped: not a failure
            self._on_stopped(trial)
            return
        self.live[trial.trial_id].awaiting_save = None
        self.live[trial.trial_id].after_save = None
        trial.error_file = write_error(trial.local_path, tb, blob)
        last_line = tb.strip().splitlines()[-1] if tb.strip() else "unknown error"
        trial.error_msg = last_line
        if outcome == ErrorOutcome.RETRY:
            logger.warning("Trial %s failed (%s); retrying from its latest checkpoint (%d/%s)",
                           trial, last_line, trial.num_failures,
                           "inf" if self.max_failures == -1 else self.max_failures)
            self._rollback_to_checkpoint(trial)
            self.journal.append({"e": "status", "t": trial.trial_id, "s": "PENDING",
                                 "failures": trial.num_failures, "msg": last_line,
                                 "file": trial.error_file})
            for cb in self.callbacks:
                cb.on_trial_error(self.iteration, self.trials, trial)
            return
        self.journal.append({"e": "status", "t": trial.trial_id, "s": "ERROR",
                             "failures": trial.num_failures, "msg": last_line,
                             "file": trial.error_file})
        self._close_writer(trial)
        self._unpin(trial.restore_path)
        self.scheduler.on_trial_error(trial)
        self._take_exploits()
        self.searcher.on_trial_complete(trial.trial_id, None, error=True)
        self._search_dirty = True
        for cb in self.callbacks:
            cb.on_trial_error(self.iteration, self.trials, trial)
        if self.fail_fast:
            self.stopping_all = True
            self._stop_everything()
            if self.fail_fast == "raise":
                exc: BaseException | None = None
                if blob is not None:
                    try:
                        exc = pickle.loads(blob)
                    except Exception:  # noqa: BLE001
                        exc = None
                self.fatal = exc if exc is not None else TrialError(f"Trial {trial} failed:\n{tb}")

    def _rollback_to_checkpoint(self, trial: Trial) -> None:
        """Forget results after the checkpoint the trial restarts from (no duplicates)."""
        live = self.live[trial.trial_id]
        if trial.restore_path:
            return  # a pending exploit: it restarts from the donor's checkpoint anyway
        latest = live.checkpoints.latest if live.checkpoints else None
        keep_rows = latest.metrics.get("_rows", live.rows) if latest else 0
        if keep_rows >= live.rows:
            return
        self._close_writer(trial)
        self.io.drain()  # rows written so far must be on disk before we cut them
        rewrite_rows(trial.local_path, keep_rows)
        live.rows = keep_rows
        self.journal.append({"e": "rollback", "t": trial.trial_id, "rows": keep_rows})

    # ------------------------------------------------------------------------------------
