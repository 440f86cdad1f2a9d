"""The experiment as a state machine: events in, instructions out.

The :class:`Controller` owns every trial's status (PENDING, RUNNING, PAUSED, TERMINATED,
ERROR) and every decision about it. It consults the stopper, the scheduler and the searcher
(which decide but never act) and returns typed instructions
(:mod:`poptune.engine.instructions`) that the runner carries out: launch, reply, kill, journal
record, log a result, delete a checkpoint, call the callbacks. No I/O, no clock (time arrives
as :class:`~poptune.engine.events.Tick` events), no processes: tests feed events and compare
the instructions that come back.

It is the package's one long module, by choice: every status change and every decision of
the state machine is here, in one class, where a reader can check each against
``TRANSITIONS`` and the tests in ``tests/engine/test_controller.py``. What decides nothing
lives elsewhere: I/O and journaling in the runner, the records in
:mod:`poptune.storage.records`, checkpoint retention in :mod:`poptune.storage.checkpoints`,
silence detection in :mod:`poptune.engine.silence`.

Example:
    >>> from poptune.engine.testing import make_controller, result
    >>> ctl = make_controller(num_samples=1)
    >>> [type(i).__name__ for i in ctl.handle(Tick(now=0.0, wall=0.0))]
    ['WriteParams', 'Record', 'Snapshot', 'Record', 'Launch', 'Notify']
    >>> tid = ctl.trials[0].trial_id
    >>> [type(i).__name__ for i in ctl.handle(result(tid, score=1.0))]
    ['Record', 'Notify', 'LogResult', 'Reply']
"""

from __future__ import annotations

import enum
import logging
import math
import os
import pickle
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from poptune._dicts import flat_result, flatten_dict
from poptune.checkpoint import Checkpoint
from poptune.engine.events import (
    Abort,
    DoneEvent,
    ErrorEvent,
    ResourcesOffered,
    ResultEvent,
    SavedEvent,
    SaveRequested,
    StoppedEvent,
    TakenBack,
    Tick,
    WorkerLostEvent,
)
from poptune.engine import silence
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
from poptune.engine.resources import ResourcePool, resource_shape, worker_count
from poptune.engine.trial import Trial, TrialStatus
from poptune.exceptions import TrialError, TuneConfigError, TuneError
from poptune.result import AUTO_RESULT_KEYS
from poptune.storage.records import (
    CheckpointDeleted,
    CheckpointSaved,
    ConfigChanged,
    PauseRequested,
    ResourcesChanged,
    ResultReported,
    RolledBack,
    StatusChanged,
    TrialCreated,
)
from poptune.engine.trial_view import TrialView
from poptune.execution.tune_controller import Candidates
from poptune.schedulers._base import (
    Action,
    Exploit,
    Outcome,
    ResizeTrial,
    SchedulerDecision,
    StopTrial,
    TrialScheduler,
)
from poptune.stopper import Stopper
from poptune.storage.checkpoints import CheckpointRecord, TrialCheckpoints
from poptune.trainable._util import normalize_resources

logger = logging.getLogger("poptune")
_intern = sys.intern
#: result values that are the same in most results (interned like the keys)
_SHARED_VALUES = ("hostname", "node_ip", "date")
#: the story entries ``(why, status)`` made so far, shared by every trial's story
_STORY_ENTRIES: dict[tuple[str, TrialStatus], tuple[str, str]] = {}
_CREATED = ("created", "PENDING")

#: seconds a trial told to stop may take to do so before it is killed
STOP_GRACE_S = 10.0
#: Ray Tune's variables for the seconds after which trials waiting for resources a cluster
#: does not offer are warned about (again every as many seconds); 60 by default
RESOURCE_WARN_ENV = ("TUNE_WARN_INSUFFICENT_RESOURCE_THRESHOLD_S_AUTOSCALER",
                     "TUNE_WARN_INSUFFICENT_RESOURCE_THRESHOLD_S")
#: status changes kept per trial for :class:`InvalidTransition` messages
STORY_LENGTH = 12

# enum members as module constants: attribute access on an Enum class is slow on hot paths
_P, _R, _A, _T, _E = (TrialStatus.PENDING, TrialStatus.RUNNING, TrialStatus.PAUSED,
                      TrialStatus.TERMINATED, TrialStatus.ERROR)
_CONTINUE, _STOP, _PAUSE, _SAVE = Answer.CONTINUE, Answer.STOP, Answer.PAUSE, Answer.SAVE
#: the legal status changes (restore sets statuses through :meth:`Controller.adopt`)
TRANSITIONS: frozenset[tuple[TrialStatus, TrialStatus]] = frozenset({
    (_P, _R), (_P, _T),
    (_R, _A), (_R, _T), (_R, _E), (_R, _P),
    (_A, _R), (_A, _T),
})


class InvalidTransition(TuneError):
    """A status change the life cycle does not allow: a bug in poptune, reported with the
    trial's recent story."""

    def __init__(self, trial_id: str, start: TrialStatus, finish: TrialStatus,
                 story: list[tuple[str, str]]) -> None:
        self.trial_id, self.start, self.finish, self.story = trial_id, start, finish, story
        told = "; ".join(f"{what} -> {status}" for what, status in story) or "nothing yet"
        super().__init__(f"trial {trial_id}: {start.value} -> {finish.value} is not a legal "
                         f"transition (recent story: {told})")


class Told(str, enum.Enum):
    """What a running trial has been told and not yet done."""

    STOP = "stop"
    PAUSE = "pause"
    EXPLOIT = "exploit"  # stop, then restart from a donor's checkpoint with a new config
    KILL = "kill"  # the experiment is being interrupted


_TOLD_STOP, _TOLD_PAUSE, _TOLD_EXPLOIT, _TOLD_KILL = Told.STOP, Told.PAUSE, Told.EXPLOIT, Told.KILL
_DECIDE_CONTINUE, _DECIDE_PAUSE, _DECIDE_STOP = (
    SchedulerDecision.CONTINUE, SchedulerDecision.PAUSE, SchedulerDecision.STOP)


@dataclass(slots=True)
class TrialState:
    """The controller's working state of one trial (what the :class:`Trial` does not hold)."""

    checkpoints: TrialCheckpoints
    rows: int = 0
    told: Told | None = None
    exploit: Exploit | None = None  # carried out once the trial has stopped
    awaiting_save: dict[str, Any] | None = None  # a result to decide on once saved
    after_save: Answer | None = None  # the answer once a callback-requested save is done
    stop_requested_at: float | None = None
    restore_meta: dict[str, Any] | None = None  # {"it", "tt"} of the donor's checkpoint
    next_checkpoint_index: int = 0
    resize: Any = None  # resources to take once it has stopped (a ResizeTrial of a runner)
    view: Any = None  # the TrialView the scheduler sees
    #: the last status changes, ``(why, status)`` (at most :data:`STORY_LENGTH`)
    story: list[tuple[str, str]] = field(default_factory=list)
    #: the last intervals between the trial's messages (its usual step time; at most
    #: :data:`~poptune.engine.silence.INTERVALS_KEPT`; a list: an empty deque costs 600 bytes)
    intervals: list[float] = field(default_factory=list)
    warned_silent: float | None = None  # the ``last_heard`` a silence warning was given for


class Controller:
    """Trial statuses and every decision about them.

    Args:
        scheduler, searcher, stopper: the deciders it consults.
        new_trial: makes the :class:`Trial` for an id and a searcher suggestion (naming and
            directories; raises ``ResourceError`` for resources that never fit).
        pool: the backend's resources.
        default_resources: what a trial asks for unless its trainable says otherwise.
        is_class: the trainable is a ``Trainable`` class (it can save on request and pause).
        metric: ``TuneConfig.metric`` (checked in every result, as Ray does).
        max_concurrent: ``TuneConfig.max_concurrent_trials`` (None: as many as fit).
        max_failures, fail_fast, silence_timeout_s: ``FailureConfig``.
        checkpoint_config: ``CheckpointConfig`` (``num_to_keep`` and its score).
        remote: checkpoints live on remote storage (paths are URIs).
        strict_metrics: Ray's strict metric check (off with
            ``TUNE_DISABLE_STRICT_METRIC_CHECKING=1``); None reads the environment.
        unanswered_results: the backend lets trials go on without waiting for an answer to
            each result. Used when nothing can answer but "continue" (a function trainable,
            a scheduler that does not decide on results, a stopper that does not read them):
            no :class:`Reply` to a result then, and a stop decided elsewhere (a time budget,
            a scheduler's action) is sent at once, to be seen at the trial's next result.
    """

    def __init__(
        self,
        *,
        scheduler: TrialScheduler,
        searcher: Any,
        stopper: Any,
        new_trial: Callable[[str, Any], Trial],
        exp_hex: str,
        pool: ResourcePool,
        default_resources: dict[str, float],
        is_class: bool = False,
        metric: str | None = None,
        max_concurrent: int | None = None,
        max_failures: int = 0,
        fail_fast: bool | str = False,
        silence_timeout_s: float | None = None,
        checkpoint_config: Any = None,
        remote: bool = False,
        strict_metrics: bool | None = None,
        unanswered_results: bool = False,
    ) -> None:
        self.scheduler = scheduler
        #: the read-only experiment view schedulers get (set by the runner)
        self.experiment_view: Any = None
        self.searcher = searcher
        self.stopper = stopper
        #: whether the stopper can end the experiment (checked after every result, and on
        #: every tick for a time budget)
        self._stop_all_checked = getattr(type(stopper), "stop_all", None) is not Stopper.stop_all
        self.new_trial = new_trial
        self.exp_hex = exp_hex
        self.pool = pool
        self.default_resources = default_resources
        self.is_class = is_class
        self.metric = metric
        self.max_concurrent = max_concurrent if max_concurrent and max_concurrent > 0 else None
        self.max_failures = max_failures
        self.fail_fast = fail_fast
        self.silence_timeout_s = silence_timeout_s
        self.remote = remote
        if strict_metrics is None:
            strict_metrics = os.environ.get("TUNE_DISABLE_STRICT_METRIC_CHECKING", os.environ.get(
                "POPTUNE_DISABLE_STRICT_METRIC_CHECKING", "0")) != "1"
        self.strict_metrics = strict_metrics
        self._ckpt_cfg = checkpoint_config
        self.trials: list[Trial] = []
        self.by_id: dict[str, Trial] = {}
        self.state: dict[str, TrialState] = {}
        self.pending: dict[str, Trial] = {}
        self.paused: dict[str, Trial] = {}
        self.running: dict[str, Trial] = {}
        self.pinned: dict[str, int] = {}
        self.searcher_done = False
        self.stopping_all = False
        self.next_index = 0
        self.now = 0.0
        self.wall = 0.0
        self._stopping: dict[str, Trial] = {}
        #: launch ahead (the runner turns it on; see :meth:`_send_ahead`): trials are sent to
        #: the worker of a running trial, to start there when it ends, without a round trip
        #: through the driver
        self.launch_ahead = False
        #: running trial id -> the PENDING trial sent ahead to its worker (out of
        #: :attr:`pending` meanwhile: no other slot takes it)
        self._ahead: dict[str, Trial] = {}
        #: trials sent ahead that the controller has asked back (:class:`TakeBack`)
        self._asked_back: set[str] = set()
        self._warned_pause = False
        #: since when no trial runs and none waiting fits what the cluster offers (a
        #: growable pool); None: not so
        self._starved_since: float | None = None
        self.resource_warn_s = _resource_warn_s()
        self._wanted: list[tuple[str, str]] | None = None
        # hooks left at the base class's do-nothing are not called (nor is the result
        # flattened for them): the hot path of every result
        self._sched_listens = (
            type(scheduler).on_trial_result is not TrialScheduler.on_trial_result)
        #: whether a trial waits for the answer to each of its results (see
        #: ``unanswered_results``)
        self.answers_results = not (unanswered_results and not is_class
                                    and not self._sched_listens
                                    and not getattr(stopper, "stops_on_results", True))
        from poptune.search._base import SearchAlgorithm

        self._search_listens = getattr(type(searcher), "on_trial_result", None) is not (
            SearchAlgorithm.on_trial_result)
        #: whether a completion changes the searcher's journaled state (random search
        #: without a concurrency limit: only a new trial does)
        self._completion_snapshots = getattr(searcher, "completion_changes_state", True)
        self._pinned_check = self._is_pinned  # one bound method for every trial's checkpoints
        self._default_choice = (
            type(scheduler).choose_trial_to_run is TrialScheduler.choose_trial_to_run)
        #: the resources every trial so far asks for ({} before the first); None once two
        #: trials ask for different ones (see :meth:`_launch`)
        self._shapes: dict[str, Any] | None = {}
        from poptune.search.basic_variant import BasicVariantGenerator

        self._variants = isinstance(searcher, BasicVariantGenerator)
        self._max_pending_for: tuple[int | None, int] | None = None  # (total_samples, value)
        #: whether a completion's last result is read (the base scheduler and random search
        #: ignore it)
        self._completion_read = (
            type(scheduler).on_trial_complete is not TrialScheduler.on_trial_complete
            or getattr(type(searcher), "on_trial_complete", None)
            is not BasicVariantGenerator.on_trial_complete)

    # ------------------------------------------------------------------------------------
    # the one entry point
    def handle(self, event: Any) -> list[Instruction]:
        """Apply one event; return what the runner must do, in order.

        An exception inside a decision (a user's stopper, scheduler or searcher raising, or
        Ctrl-C) comes back as a final :class:`Raise` after the instructions already decided,
        so the result that was being handled still reaches the journal.
        """
        out: list[Instruction] = []
        try:
            if isinstance(event, Tick):
                self._on_tick(event, out)
            elif isinstance(event, Abort):
                self._on_abort(out)
            elif isinstance(event, SaveRequested):
                self._on_save_requested(event.trial_id, out)
            elif isinstance(event, ResourcesOffered):
                self._on_resources(event.totals)
            elif isinstance(event, TakenBack):
                self._on_taken_back(event.trial_id, out)
            else:
                trial = self.by_id.get(event.trial_id)
                if trial is None or trial.status != _R:
                    return out  # unknown, or its run was already ended (a kill): ignored
                if isinstance(event, ResultEvent):
                    self._on_result(trial, event.result, out)
                elif isinstance(event, SavedEvent):
                    self._on_saved(trial, event.checkpoint_dir_name, out)
                elif isinstance(event, DoneEvent):
                    nxt = self._ahead.pop(trial.trial_id, None) if self._ahead else None
                    self._on_done(trial, out)
                    if nxt is not None:
                        self._hand_over(nxt, event.continued == nxt.trial_id, out)
                elif isinstance(event, StoppedEvent):
                    self._on_stopped(trial, out)
                elif isinstance(event, ErrorEvent):
                    self._on_error(trial, event.traceback, event.exception, False, out)
                elif isinstance(event, WorkerLostEvent):
                    self._on_error(trial, f"WorkerLostError: {event.detail}\n", None, True, out)
                else:
                    raise TypeError(f"unknown event {event!r}")
        except BaseException as exc:  # noqa: BLE001 - handed to the runner, which raises it
            out.append(Raise(exc))
        return out

    @property
    def finished(self) -> bool:
        """No trial runs and none will: the experiment is over."""
        if self.running:
            return False
        if self.stopping_all:
            return True
        return not (self.pending or self.paused) and self.searcher_done

    # ------------------------------------------------------------------------------------
    # statuses
    def _set(self, trial: Trial, status: TrialStatus, why: str) -> None:
        start = trial.status
        st = self.state[trial.trial_id]
        if start != status and (start, status) not in TRANSITIONS:
            raise InvalidTransition(trial.trial_id, start, status, list(st.story))
        story = st.story
        entry = _STORY_ENTRIES.get((why, status))
        if entry is None:  # one shared tuple per (why, status): not one per trial
            entry = _STORY_ENTRIES[(why, status)] = (why, status.value)
        story.append(entry)
        if len(story) > STORY_LENGTH:
            del story[0]
        self._index(trial, status)

    def _index(self, trial: Trial, status: TrialStatus) -> None:
        tid = trial.trial_id
        self.pending.pop(tid, None)
        self.paused.pop(tid, None)
        self.running.pop(tid, None)
        trial.status = status
        if status == _P:
            self.pending[tid] = trial
        elif status == _A:
            self.paused[tid] = trial
        elif status == _R:
            self.running[tid] = trial

    def adopt(self, trial: Trial, out: list[Instruction], *, rows: int = 0,
              checkpoints: list[tuple[str, dict[str, Any], int]] = (),  # type: ignore[assignment]
              restore_meta: dict[str, Any] | None = None, next_checkpoint_index: int = 0) -> None:
        """Track a trial restored from the journal, in the status restore gave it; what the
        scheduler's ``on_trial_add`` decides goes to ``out``."""
        st = TrialState(checkpoints=self._new_checkpoints(), rows=rows,
                        restore_meta=restore_meta, next_checkpoint_index=next_checkpoint_index)
        for name, metrics, nrows in checkpoints:
            st.checkpoints.records.append(
                CheckpointRecord(self._ckpt_path(trial, name), {**metrics, "_rows": nrows}, nrows))
        # checkpoints taken after the restore are newer than every adopted one (num_to_keep
        # without a score attribute keeps the newest)
        st.checkpoints._counter = max((r.order for r in st.checkpoints.records), default=0)
        st.story.append(("restored", trial.status.value))
        self._track(trial, st)
        if trial.restore_path and not trial.is_finished():
            self._pin(trial.restore_path)
        idx = int(trial.trial_id.rsplit("_", 1)[-1])
        self.next_index = max(self.next_index, idx + 1)
        self._fill_config(trial, self._ask(self.scheduler.on_trial_add(st.view), out))

    def restore(self, histories: Any, *, resume_unfinished: bool = True,
                resume_errored: bool = False, restart_errored: bool = False) -> list[Instruction]:
        """Take over the trials of a restored experiment (``TrialHistory`` values from the
        journal's replay) and decide what each becomes, as ``Tuner.restore`` promises:
        finished trials never re-run; unfinished ones resume from their latest checkpoint
        (rows after it are rolled back) or from the donor's checkpoint of a pending exploit,
        ahead of new trials unless their scheduler had paused them; errored ones are left,
        resumed (``resume_errored``) or restarted from scratch (``restart_errored``). Returns
        the records and log rewrites to carry out."""
        out: list[Instruction] = []
        #: where each waiting trial queues: the interrupted ones first, in launch order, then
        #: the others in the order they began to wait (as in the run that was interrupted)
        queue: dict[str, tuple[int, int]] = {}
        #: unfinished in the journal, ended by this restore: the scheduler and searcher
        #: hear of it as in a run that ended them (their journaled states had not)
        ended: list[tuple[Trial, bool]] = []
        for h in histories:
            t = h.trial
            status, keep = t.status, None
            queue[t.trial_id] = (0 if status == _R and not h.pausing else 1, h.status_seq)
            if status == _E:
                if resume_errored:  # wins over restart_errored, as in Ray
                    keep = self._restore_point(h)
                    status = _P
                elif restart_errored:
                    keep, h.checkpoints, t.checkpoint_path = 0, [], None
                    status = _P
            elif status == _T or t.last_result.get("done"):
                status = _T
            elif resume_unfinished:
                if h.restore_meta:  # a pending PBT exploit: start from the donor's checkpoint
                    t.restore_path = h.restore_meta["path"]
                else:
                    keep = self._restore_point(h)
                # a trial its scheduler paused waits for it again (HyperBand, PBT); one the
                # driver's end interrupted (RUNNING) resumes first, ahead of new trials,
                # as in the run that was not interrupted (Ray requeues it as PENDING too)
                paused = status == _A or h.pausing
                status = _A if paused and (h.rows[:keep] if keep is not None
                                           else h.rows) else _P
            else:
                status = _T
            if keep is not None and keep < len(h.rows):
                h.rows = h.rows[:keep]
                out.append(Record(RolledBack(t.trial_id, keep)))
            if keep is not None:
                t.last_result = h.rows[-1] if h.rows else {}
            if status == _T and t.status in (_R, _P, _A):
                ended.append((t, bool(h.rows)))
                t.status = status
                out.append(RestoreLog(t, h.rows))  # its TERMINATED record: _terminate's
            elif status != t.status or t.status != _E:
                t.status = status
                out.append(Record(StatusChanged(t.trial_id, status.value)))
                out.append(RestoreLog(t, h.rows))
            # directories the journal deleted or never recorded (no committed record names
            # them): the runner removes them before any trial runs
            out.extend(DeleteCheckpoint(p) for p in getattr(h, "stale_checkpoints", ()))
            self.adopt(t, out, rows=len(h.rows),
                       checkpoints=[c for c in h.checkpoints if c[0] not in h.deleted],
                       restore_meta=h.restore_meta,
                       next_checkpoint_index=h.next_checkpoint_index)
        for waiting in (self.pending, self.paused):
            ordered = sorted(waiting.values(), key=lambda tr: queue[tr.trial_id])
            waiting.clear()
            waiting.update((tr.trial_id, tr) for tr in ordered)
        for t, ran in ended:  # e.g. a model-based searcher would wait for it for ever
            ending: list[Instruction] = []
            self._terminate(t, "done" if ran else "removed", ending)
            # the callbacks are not set up yet (Ray tells them nothing either)
            out.extend(i for i in ending if type(i) is not Notify)
        return out

    def _restore_point(self, h: Any) -> int:
        """Rows up to the trial's latest surviving checkpoint (which it restarts from)."""
        while h.checkpoints and h.checkpoints[-1][0] in h.deleted:
            h.checkpoints.pop()
        h.trial.checkpoint_path = (
            self._ckpt_path(h.trial, h.checkpoints[-1][0]) if h.checkpoints else None)
        return h.checkpoints[-1][2] if h.checkpoints else 0

    def _track(self, trial: Trial, st: TrialState) -> None:
        shapes = self._shapes
        if shapes is not None and trial.resources != shapes:  # no call when they match
            self._note_shape(trial.resources)
        st.view = TrialView(trial)
        self.trials.append(trial)
        self.by_id[trial.trial_id] = trial
        self.state[trial.trial_id] = st
        self._index(trial, trial.status)

    def allow_launch_ahead(self) -> None:
        """Launch ahead (:meth:`_send_ahead`) if nothing can tell the difference: the default
        FIFO choice of the next trial, results nobody answers (no stopper or scheduler
        reads them), function trainables, and random or grid search (a searcher that learns
        from results would be asked for a trial before the last one's result: it is not
        launched ahead). The runner asks when its backend queues."""
        self.launch_ahead = (self._default_choice and not self.answers_results
                             and not self.is_class and self._variants)

    def views(self) -> list[Any]:
        """Read-only views of every trial, in creation order (for the scheduler)."""
        return [self.state[t.trial_id].view for t in self.trials]

    def checkpoints_of(self, trial_id: str) -> list[CheckpointRecord]:
        """The trial's retained checkpoints, oldest first."""
        return list(self.state[trial_id].checkpoints.records)

    def worker_count(self) -> int:
        """How many trials can run at once (workers to start)."""
        return worker_count(self.pool, self.default_resources, self.max_concurrent,
                            getattr(self.searcher, "total_samples", None))

    # ------------------------------------------------------------------------------------
    # checkpoints and pins
    def _ckpt_path(self, trial: Trial, name: str) -> str:
        if self.remote:
            return f"{trial.storage_dir}/{name}"
        return os.path.join(trial.local_path, name)

    def _new_checkpoints(self) -> TrialCheckpoints:
        cfg = self._ckpt_cfg
        return TrialCheckpoints(
            num_to_keep=getattr(cfg, "num_to_keep", None),
            score_attribute=getattr(cfg, "checkpoint_score_attribute", None),
            score_order=getattr(cfg, "checkpoint_score_order", "max"),
            is_pinned=self._pinned_check,
        )

    def _is_pinned(self, path: str) -> bool:
        if self.pinned.get(path):
            return True
        return path in self.scheduler.pinned_checkpoints()

    def _pin(self, path: str) -> None:
        self.pinned[path] = self.pinned.get(path, 0) + 1

    def _await_exploit(self, st: TrialState, ex: Exploit) -> None:
        """A running trial is to stop, then restart from ``ex``'s donor checkpoint (pinned
        until then; an exploit it was already waiting for is dropped)."""
        self._drop_exploit(st)
        st.told = _TOLD_EXPLOIT
        st.exploit = ex
        self._pin(ex.checkpoint_path)

    def _interrupt(self, trial: Trial, out: list[Instruction]) -> None:
        """Tell a running trial that does not wait for answers to stop now: it sees it at its
        next result (an answered trial is told in the answer to that result)."""
        if not self.answers_results:
            out.append(Reply(trial.trial_id, _STOP))

    def _drop_exploit(self, st: TrialState) -> None:
        """Forget the exploit a trial waits for, if any, and release its donor's pin."""
        if st.exploit is not None:
            self._unpin(st.exploit.checkpoint_path)
            st.exploit = None

    def _unpin(self, path: str | None) -> None:
        if path and path in self.pinned:
            self.pinned[path] -= 1
            if self.pinned[path] <= 0:
                del self.pinned[path]

    def _register_checkpoint(self, trial: Trial, name: str, metrics: dict[str, Any],
                             out: list[Instruction]) -> None:
        st = self.state[trial.trial_id]
        path = self._ckpt_path(trial, name)
        index = int(name.rsplit("_", 1)[-1])
        st.next_checkpoint_index = max(st.next_checkpoint_index, index + 1)
        trial.checkpoint_path = path
        self._unpin(trial.restore_path)
        trial.restore_path = None
        st.restore_meta = None
        m = {k: v for k, v in metrics.items() if k != "config"}
        if self.is_class:  # the result it came with named it: Ray's metrics do not
            m.pop("checkpoint_dir_name", None)
        out.append(Record(CheckpointSaved(trial.trial_id, name, path, index, st.rows, m)))
        for old in st.checkpoints.add(path, {**m, "_rows": st.rows}):
            out.append(Record(CheckpointDeleted(trial.trial_id,
                                                old.rstrip("/").rsplit("/", 1)[-1])))
            out.append(DeleteCheckpoint(old))
        out.append(Notify("on_checkpoint", {"trial": trial, "checkpoint": Checkpoint(path)}))
        out.append(Notify("on_trial_save", {"trial": trial}))

    # ------------------------------------------------------------------------------------
    # the clock: stop-all, stop grace, new trials, launches
    def _on_tick(self, tick: Tick, out: list[Instruction]) -> None:
        self.now, self.wall = tick.now, tick.wall
        if not self.stopping_all and self.stopper.stop_all():
            self._stop_everything(out)
        self._enforce_stop_grace(out)
        self._watch_silence(out)
        self._create_trials(out)
        self._launch(out)
        if self.pool.growable:
            self._watch_resources()

    def _on_resources(self, totals: dict[str, Any]) -> None:
        """A cluster's nodes joined or left: the pool takes its new totals and nodes (the
        next tick launches what fits now)."""
        if self.pool.update(**totals):
            self._max_pending_for = None  # worker_count() follows the pool
            pool = self.pool
            logger.info("poptune: %s now offers %g CPUs, %d GPUs%s%s", pool.where,
                        pool.cpu_total, pool.gpu_total,
                        f", {pool.custom_total}" if pool.custom_total else "",
                        f" on {len(pool.nodes)} node(s)" if pool.nodes is not None else "")

    def _watch_resources(self) -> None:
        """Warn, as Ray Tune does, when no trial has run for ``resource_warn_s`` because no
        waiting trial fits what the cluster offers (in all, or on one of its nodes: it may
        be autoscaling, the experiment waits), and again every ``resource_warn_s``."""
        waiting = (*self.pending.values(), *self.paused.values())
        if self.running or not waiting or self.stopping_all or any(
                self.pool.fits_one_node(t.resources) for t in self._by_shape(waiting)):
            self._starved_since = None
            return
        if self._starved_since is None:
            self._starved_since = self.now
        elif self.now - self._starved_since >= self.resource_warn_s:
            self._starved_since = self.now
            asked = {k: v for k, v in waiting[0].resources.items() if v}
            pool = self.pool
            custom = f" and {pool.custom_total}" if pool.custom_total else ""
            lacks = (f"no single node of {pool.where} offers"
                     if pool.fits_total(waiting[0].resources) else f"{pool.where} does not offer")
            logger.warning(
                "Ignore this message if the cluster is autoscaling. No trial is running and "
                "no new trial has been started within the last %.0f seconds: %d trial(s) "
                "wait for resources %s. You asked for %s per trial, but %s "
                "only has %g CPUs and %d GPUs%s%s. Stop the tuning and adjust the required "
                "resources (`tune.with_resources`, `resources_per_trial`), or add more "
                "resources to your cluster.", self.resource_warn_s, len(waiting), lacks,
                dict(asked), pool.where, pool.cpu_total, pool.gpu_total, custom,
                _largest_node(pool, waiting[0].resources))

    @staticmethod
    def _by_shape(trials: tuple[Trial, ...]) -> list[Trial]:
        """One trial of each resource request among ``trials``."""
        seen: dict[tuple[Any, ...], Trial] = {}
        for t in trials:
            seen.setdefault(resource_shape(t.resources), t)
        return list(seen.values())

    def _stop_everything(self, out: list[Instruction]) -> None:
        self.stopping_all = True
        for nxt in self._ahead.values():  # claimed ones are stopped when they start
            self._ask_for(nxt, out)
        for t in self.trials:
            st = self.state[t.trial_id]
            if t.status == _R:
                self._stop_running(t, out)
            elif t.status in (_P, _A) and st.rows > 0:
                self._end_waiting(t, out)
        never_started = [t for t in self.pending.values() if self.state[t.trial_id].rows == 0]
        for t in never_started:
            self.pending.pop(t.trial_id, None)
        if never_started:
            gone = {t.trial_id for t in never_started}
            self.trials = [t for t in self.trials if t.trial_id not in gone]

    def _stop_running(self, trial: Trial, out: list[Instruction]) -> None:
        """The experiment stops: tell a running trial to stop (once), and kill it if it has
        not stopped after the stop grace time."""
        st = self.state[trial.trial_id]
        if st.told is None:
            st.told = _TOLD_STOP
            self._interrupt(trial, out)
        st.stop_requested_at = self.now
        self._stopping[trial.trial_id] = trial

    def _enforce_stop_grace(self, out: list[Instruction]) -> None:
        for t in list(self._stopping.values()):
            st = self.state[t.trial_id]
            if t.status != _R or st.stop_requested_at is None:
                self._stopping.pop(t.trial_id, None)
            elif self.now - st.stop_requested_at > STOP_GRACE_S:
                self._stopping.pop(t.trial_id, None)
                out.append(Kill(t.trial_id))
                self._on_stopped(t, out)

    def _watch_silence(self, out: list[Instruction]) -> None:
        """Warn about a running trial silent far longer than its usual step time; fail one
        silent longer than ``silence_timeout_s`` (see :mod:`poptune.engine.silence`)."""
        timeout = self.silence_timeout_s
        fleet: list[float] | None = None  # every trial's intervals: gathered once per tick
        for t in list(self.running.values()):
            heard = t.last_heard
            if heard is None or t.trial_id in self._stopping:
                continue  # a trial told to stop has its own grace time
            silent = self.now - heard
            if silent < silence.WARN_FLOOR_S and (timeout is None or silent <= timeout):
                continue
            st = self.state[t.trial_id]
            if timeout is not None and silent > timeout:
                out.append(Kill(t.trial_id))
                self._on_error(t, silence.timeout_text(t, silent, timeout), None, False, out)
                continue
            if st.warned_silent == heard:
                continue
            known = st.intervals
            if not known:  # none of its own yet: the other trials'
                if fleet is None:
                    fleet = self._all_intervals()
                known = fleet
            after = silence.warn_after(known)
            if silent > after:
                st.warned_silent = heard
                logger.warning(silence.warning_text(t, silent, after, bool(known)))

    def _all_intervals(self) -> list[float]:
        """Every trial's recent step intervals: what the silence warning of a trial with none
        of its own yet is reckoned from."""
        return [i for s in self.state.values() for i in s.intervals]

    def next_deadline(self) -> float | None:
        """The earliest time (on the clock of :class:`Tick`'s ``now``) at which a tick would
        decide something though no event came before it, or None if none would.

        Those deadlines are the time budget (a stopper with ``_time_left``: a
        :class:`~poptune.stopper.TimeoutStopper`, also inside a ``CombinedStopper``), the
        stop grace of trials told to stop, the silence warning and ``silence_timeout_s`` of
        running trials, and the warning about trials waiting for resources a cluster does
        not offer. Never earlier than the last tick's time: a
        deadline a tick did not act on yet (its ``>`` needs a later reading) comes back as
        the next representable time after it. A runner on simulated time sleeps until then
        instead of waking every half second; any other decision follows an event.
        """
        now = self.now
        best = math.inf
        if not self.stopping_all:
            time_left = getattr(self.stopper, "_time_left", None)
            left = time_left() if time_left is not None else None
            if left is not None:
                best = now + left
        for t in self._stopping.values():
            requested = self.state[t.trial_id].stop_requested_at
            if t.status == _R and requested is not None:
                best = min(best, requested + STOP_GRACE_S)
        timeout = self.silence_timeout_s
        fleet = None  # the warning threshold of a trial with no interval of its own yet
        for t in self.running.values():
            heard = t.last_heard
            if heard is None or t.trial_id in self._stopping:
                continue
            if timeout is not None:
                best = min(best, heard + timeout)
            st = self.state[t.trial_id]
            if st.warned_silent != heard:  # the threshold as _watch_silence reckons it
                if st.intervals:
                    at = heard + silence.warn_after(st.intervals)
                else:  # the other trials' intervals (a longer list): only past the floor
                    at = heard + silence.WARN_FLOOR_S
                    if at <= now:
                        if fleet is None:
                            fleet = silence.warn_after(self._all_intervals())
                        at = heard + fleet
                best = min(best, at)
        if self._starved_since is not None:
            best = min(best, self._starved_since + self.resource_warn_s)
        if best == math.inf:
            return None
        return best if best > now else math.nextafter(now, math.inf)

    def _max_pending(self) -> int:
        """Random/grid search with a known number of trials creates up to 1,000 of them ahead
        (a PBT population exists as a whole); an endless one (``num_samples=-1``) and a
        model-based searcher only when a slot can take the trial."""
        total = getattr(self.searcher, "total_samples", None)
        cached = self._max_pending_for
        if cached is not None and cached[0] == total:
            return cached[1]  # the pool and the limits do not change during a run
        n = max(self.worker_count(), 1000) if self._variants and total else self.worker_count()
        self._max_pending_for = (total, n)
        return n

    def _create_trials(self, out: list[Instruction]) -> None:
        if self.searcher_done or self.stopping_all:
            return
        waiting = len(self.pending)
        room = self._max_pending() - len(self.running) - waiting
        if self.max_concurrent:
            if self.launch_ahead:  # and one more per running trial, to send ahead
                room = min(room, 3 * self.max_concurrent - len(self.running) - waiting
                           - len(self._ahead))
            else:
                room = min(room, self.max_concurrent - len(self.running) - waiting)
        while room > 0:
            trial_id = f"{self.exp_hex}_{self.next_index:05d}"
            suggestion = self.searcher.next_trial(trial_id)
            if suggestion is None:
                if self.searcher.is_finished():
                    self.searcher_done = True
                return
            self.next_index += 1
            trial = self.new_trial(trial_id, suggestion)
            st = TrialState(checkpoints=self._new_checkpoints())
            st.story.append(_CREATED)
            trial.status = _P
            self._track(trial, st)
            # the scheduler may fill in config values (PBT samples what it mutates)
            self._fill_config(trial, self._ask(self.scheduler.on_trial_add(st.view), out))
            out.append(WriteParams(trial))
            out.append(Record(TrialCreated(
                trial_id, trial.trainable_name, "", trial.experiment_tag, trial.local_path,
                trial.dirname, trial.resources, trial.evaluated_params,
                trial.custom_trial_name), config=trial.config))
            out.append(Snapshot("searcher"))
            room -= 1

    def _launch(self, out: list[Instruction]) -> None:
        if self.stopping_all:
            return
        self._launch_waiting(out)
        if self.pending:
            if self.launch_ahead and len(self._ahead) < len(self.running):
                self._send_ahead(out)
        elif self._ahead and not self.paused:
            self._ask_back(out)

    def _ask_back(self, out: list[Instruction]) -> None:
        """A slot is free and nothing waits but trials sent ahead to busy workers: ask for
        one back (the oldest), so that a free slot takes the next trial at once whatever the
        others do. Its worker may have claimed it (the trial before just ended): then it
        runs there."""
        if self.max_concurrent and len(self.running) >= self.max_concurrent:
            return
        for trial in self._ahead.values():
            if trial.trial_id not in self._asked_back:
                if self.pool.fits_now(trial.resources):
                    self._ask_for(trial, out)
                return

    def _ask_for(self, trial: Trial, out: list[Instruction]) -> None:
        """Ask the backend for a trial sent ahead back, once."""
        if trial.trial_id not in self._asked_back:
            self._asked_back.add(trial.trial_id)
            out.append(TakeBack(trial.trial_id))

    def _on_taken_back(self, trial_id: str, out: list[Instruction]) -> None:
        """A trial sent ahead is the driver's again: it waits first in line (and the free
        slot that asked for it takes it now)."""
        self._asked_back.discard(trial_id)
        for before, trial in self._ahead.items():
            if trial.trial_id == trial_id:
                del self._ahead[before]
                self._return_waiting(trial, out)
                if not self.stopping_all:
                    self._launch(out)
                return

    def _launch_waiting(self, out: list[Instruction]) -> None:
        while True:
            if self.max_concurrent and len(self.running) >= self.max_concurrent:
                return
            if not self.pending and not self.paused:
                return
            trial: Trial | None
            if self._default_choice and self._shapes is None:
                # FIFO, trials of several resource shapes: the first that fits, pending
                # first, then paused (Ray's FIFO: a big trial does not hold back small ones)
                fitting = self._first_fitting()
                if fitting is None:
                    return
                self._start(fitting[0], fitting[1], out)
                continue
            if self._default_choice:  # FIFO: pending first, then paused, in order
                trial = next(iter(self.pending.values() or self.paused.values()))
            else:
                if self._shapes and not self.pool.fits_now(self._shapes):
                    return  # every trial asks for these and no slot has them: none to choose
                chosen = self._ask(self.scheduler.choose_trial_to_run(Candidates(
                    [self.state[t].view for t in (*self.pending, *self.paused)],
                    self.experiment_view)), out)
                trial = None if chosen is None else self.by_id.get(chosen.trial_id)
                if trial is None or trial.status not in (_P, _A):
                    return
            gpu_ids = self.pool.allocate(trial.trial_id, trial.resources)
            if gpu_ids is None:
                return
            self._start(trial, gpu_ids, out)

    def _send_ahead(self, out: list[Instruction]) -> None:
        """Launch ahead: give each running trial's worker the next pending trial, to start
        as soon as the running one ends by itself, so the worker does not wait for the
        driver between trials (on two cores that wait is most of a short trial's cost).

        Only where nothing can tell the difference (the runner decides: FIFO, unanswered
        results, function trainables, a backend that queues): the trial stays PENDING and
        holds no resources until the end of the one before says it started
        (:meth:`_hand_over`); then it is started as :meth:`_launch` would have started it
        at the next tick. Fresh trials only, in FIFO order: a retried or paused one waiting
        first is launched as usual.
        """
        for running in self.running.values():
            if running.trial_id in self._ahead or running.resources.get("gpu"):
                continue
            if self.paused or not self.pending:
                return
            trial = next(iter(self.pending.values()))
            st = self.state[trial.trial_id]
            if (st.rows or trial.num_failures or trial.restore_path or trial.checkpoint_path
                    or trial.resources != running.resources):
                return
            del self.pending[trial.trial_id]
            self._ahead[running.trial_id] = trial
            out.append(Launch(trial, [], None, 0, 0.0, st.next_checkpoint_index,
                              after=running.trial_id))

    def _hand_over(self, trial: Trial, started: bool, out: list[Instruction]) -> None:
        """The trial sent ahead after one that ended: RUNNING if the worker started it
        (stopped at once when the experiment is stopping), else PENDING again."""
        self._asked_back.discard(trial.trial_id)
        if not started:
            self._return_waiting(trial, out)
            return
        gpu_ids = self.pool.allocate(trial.trial_id, trial.resources)
        if gpu_ids is None:  # the one before held the same resources: cannot happen
            raise InvalidTransition(trial.trial_id, trial.status, _R,
                                    list(self.state[trial.trial_id].story))
        self._start(trial, gpu_ids, out, sent=True)
        if self.stopping_all:
            self._stop_running(trial, out)
        elif self.pending:
            self._send_ahead(out)

    def _return_waiting(self, trial: Trial, out: list[Instruction]) -> None:
        """A trial sent ahead that did not start waits again, first in line (or, once the
        experiment is stopping, is dropped as every trial that never started)."""
        if self.stopping_all:
            self.trials.remove(trial)
            return
        self._first_in_line(trial)

    def _first_in_line(self, trial: Trial) -> None:
        """Put a PENDING trial at the front of :attr:`pending` (launched next)."""
        self.pending = {trial.trial_id: trial, **self.pending}

    def _lose_ahead(self, trial: Trial, out: list[Instruction]) -> None:
        """The trial sent ahead to ``trial``'s worker, which the driver ends or replaces
        without its word: its worker may have started it, so it is killed with it."""
        nxt = self._ahead.pop(trial.trial_id, None)
        if nxt is not None:
            self._asked_back.discard(nxt.trial_id)
            out.append(Kill(nxt.trial_id))
            self._return_waiting(nxt, out)

    def _first_fitting(self) -> tuple[Trial, list[int]] | None:
        """The first waiting trial (pending, then paused) whose resources are free now, and
        its GPU ids; each resource shape is tried once."""
        tried: set[tuple[Any, ...]] = set()
        for waiting in (self.pending, self.paused):
            for t in waiting.values():
                shape = resource_shape(t.resources)
                if shape in tried:
                    continue
                gpu_ids = self.pool.allocate(t.trial_id, t.resources)
                if gpu_ids is not None:
                    return t, gpu_ids
                tried.add(shape)
        return None

    def _note_shape(self, resources: dict[str, Any]) -> None:
        """Remember whether every trial asks for the same resources (then FIFO need look at
        the first waiting trial only); ``_shapes`` None: they differ."""
        if self._shapes is not None and resources != self._shapes:
            if not self._shapes:
                self._shapes = dict(resources)
            else:
                self._shapes = None

    def _resize(self, trial: Trial, new: Any, out: list[Instruction]) -> None:
        """Give a trial that is not running the resources a resizing scheduler chose."""
        what = "the resources_allocation_function's result"
        resources = normalize_resources(new, what)
        self.pool.check_fits_ever(resources, what=what)
        self._note_shape(resources)
        trial.resources = resources
        logger.info("poptune: trial %s resized to %s", trial, resources)
        out.append(Record(ResourcesChanged(trial.trial_id, resources)))

    def _start(self, trial: Trial, gpu_ids: list[int], out: list[Instruction],
               sent: bool = False) -> None:
        """Start a trial: RUNNING, launched (unless ``sent`` ahead already: it runs)."""
        st = self.state[trial.trial_id]
        restore = trial.restore_path or trial.checkpoint_path
        start_iter, time_offset = 0, 0.0
        meta = st.restore_meta
        counts: dict[str, Any] = {}  # Ray's step totals carried on from the checkpoint
        if trial.restore_path and meta:
            start_iter, time_offset = meta.get("it", 0), meta.get("tt", 0.0)
            counts = meta
        elif restore and st.checkpoints.latest:
            m = counts = st.checkpoints.latest.metrics
            start_iter, time_offset = m.get("training_iteration", 0), m.get("time_total_s", 0.0)
        self._set(trial, _R, "launched")
        st.told = None
        st.stop_requested_at = None
        if trial.start_time is None:
            trial.start_time = self.wall
        trial.last_heard = self.now
        out.append(Record(StatusChanged(trial.trial_id, "RUNNING")))
        if not sent:
            out.append(Launch(trial, gpu_ids, restore, start_iter, time_offset,
                              st.next_checkpoint_index, counts.get("timesteps_total"),
                              counts.get("episodes_total")))
        out.append(Notify("on_trial_start", {"trial": trial}))
        if restore is not None:
            out.append(Notify("on_trial_restore", {"trial": trial}))

    # ------------------------------------------------------------------------------------
    # results
    def _on_result(self, trial: Trial, result: dict[str, Any], out: list[Instruction]) -> None:
        """A trial reported: decide, then log the row and tell the callbacks and the searcher
        (Ray's order: a row that stopped the trial says ``done: true``)."""
        st = self.state[trial.trial_id]
        # one copy of each key string for all results (a result arrives unpickled with
        # fresh strings; kept as last_result they would cost ~1 KB per trial)
        result = {_intern(k) if type(k) is str else k: v for k, v in result.items()}
        for key in _SHARED_VALUES:
            value = result.get(key)
            if type(value) is str:
                result[key] = _intern(value)
        if result.get("trial_id") == trial.trial_id:
            result["trial_id"] = trial.trial_id  # the trial's own string, not a copy
        result["experiment_tag"] = trial.experiment_tag
        result["config"] = trial.config
        st.rows += 1
        trial.last_result = result
        heard, trial.last_heard = trial.last_heard, self.now
        if heard is not None:
            intervals = st.intervals
            intervals.append(self.now - heard)
            if len(intervals) > silence.INTERVALS_KEPT:
                del intervals[0]
        ckpt_name = result.get("checkpoint_dir_name")
        if ckpt_name:
            # its records now; its callbacks (on_checkpoint, on_trial_save) after the result's
            # on_trial_result, in Ray's order
            registered: list[Instruction] = []
            self._register_checkpoint(trial, ckpt_name, result, registered)
            out.extend(i for i in registered if type(i) is not Notify)
            try:
                self._answer_result(trial, st, result, ckpt_name, out)
            finally:
                out.extend(i for i in registered if type(i) is Notify)
                if self.is_class:  # decided on: Ray's class results have no such key
                    result.pop("checkpoint_dir_name", None)
            return
        self._answer_result(trial, st, result, ckpt_name, out)

    def _answer_result(self, trial: Trial, st: TrialState, result: dict[str, Any],
                       ckpt_name: Any, out: list[Instruction]) -> None:
        """Log a result and decide on it (or repeat a decision already told, or save first)."""
        if st.told is not None and st.told != _TOLD_EXPLOIT:
            # already told to stop or pause: answer the same way (a trial an exploit waits
            # for is decided on: the stopper's stop wins over the exploit); an unanswered
            # trial was told when it was decided
            self._log_result(trial, result, out)
            if self.answers_results:
                out.append(Reply(trial.trial_id,
                                 _PAUSE if st.told == _TOLD_PAUSE else _STOP))
            return
        if self.is_class and not ckpt_name and (
                result.get("should_checkpoint")
                or self.scheduler.should_checkpoint(st.view, flat_result(result))):
            # save first, decide once saved: a PBT decision must see this step's checkpoint
            self._log_result(trial, result, out)
            st.awaiting_save = result
            out.append(Reply(trial.trial_id, _SAVE))
            return
        self._decide(trial, result, False, out)

    def _log_result(self, trial: Trial, result: dict[str, Any], out: list[Instruction]) -> None:
        """Journal the row, pass it to the callbacks, then append it to the trial's files (what
        a callback changes in it in place reaches result.json/progress.csv, as in Ray, whose
        file loggers are callbacks that come last)."""
        row = result.copy()  # without its config (a copy and a pop: no comprehension)
        row.pop("config", None)
        if self.is_class:  # its checkpoint is recorded on its own (CheckpointSaved)
            row.pop("checkpoint_dir_name", None)
        out.append(Record(ResultReported(trial.trial_id, row)))
        out.append(Notify("on_trial_result", {"trial": trial, "result": result}))
        out.append(LogResult(trial, result))

    def _on_saved(self, trial: Trial, name: str, out: list[Instruction]) -> None:
        st = self.state[trial.trial_id]
        trial.last_heard = self.now
        self._register_checkpoint(trial, name, trial.last_result, out)
        if st.awaiting_save is not None:
            result, st.awaiting_save = st.awaiting_save, None
            self._decide(trial, result, True, out)
        elif st.after_save is not None:  # a save a callback asked for: now carry on
            out.append(Reply(trial.trial_id, st.after_save))
            st.after_save = None

    def _decide(self, trial: Trial, result: dict[str, Any], logged: bool,
                out: list[Instruction]) -> None:
        """Decide on a result; mark it ``done`` when it stops the trial; log it unless that
        happened already; tell the searcher unless the trial is to stop (as Ray does: a
        searcher never hears the result that stopped a trial, only its completion)."""
        try:
            answer: Answer | None
            answer, flat = self._answer(trial, result, out)
        except BaseException:  # e.g. Ctrl-C inside a stopper: the row goes into the journal
            if not logged:     # with the checkpoint registered for it, or restore loses it
                self._log_result(trial, result, out)
            raise
        st = self.state[trial.trial_id]
        stopping = st.told == _TOLD_STOP and not result.get("done")
        if not logged:
            if stopping:
                result["done"] = True
            self._log_result(trial, result, out)
            if (self.is_class and answer == _CONTINUE
                    and not result.get("checkpoint_dir_name")):
                # a callback may ask for a checkpoint (SaveRequested): the runner watches
                out.append(Reply(trial.trial_id, answer, watch=result))
                answer = None
        if answer is not None and (answer != _CONTINUE or self.answers_results):
            out.append(Reply(trial.trial_id, answer))
        if not stopping and self._search_listens:
            self.searcher.on_trial_result(trial.trial_id,
                                          flat if flat is not None else flat_result(result))

    def _on_save_requested(self, trial_id: str, out: list[Instruction]) -> None:
        """A callback asked the trial for a checkpoint: save, then continue (the decision
        stands)."""
        st = self.state.get(trial_id)
        if st is None or trial_id not in self.running:
            return
        st.after_save = _CONTINUE
        out.append(Reply(trial_id, _SAVE))

    def _wanted_metrics(self) -> list[tuple[str, str]]:
        """The metrics results must hold, each with who ranks by it (fixed once trials run)."""
        if self._wanted is None:
            searcher_metric = getattr(self.searcher, "metric", None)
            wanted = [(self.metric, "TuneConfig(metric=...)"),
                      (self.scheduler.metric, type(self.scheduler).__name__)]
            for m in (searcher_metric if isinstance(searcher_metric, list)
                      else [searcher_metric]):
                wanted.append(
                    (m, type(getattr(self.searcher, "searcher", self.searcher)).__name__))
            self._wanted = [(m, w) for m, w in wanted if m and m != "_metric"]
        return self._wanted

    def _missing_metric(self, trial: Trial, result: dict[str, Any]) -> TuneError | None:
        """The error for a result that lacks a metric TuneConfig, the scheduler or the searcher
        ranks by (Ray's strict metric check). A result with only the automatic keys (a
        function that returned without reporting) is not checked."""
        flat: dict[str, Any] | None = None
        for metric, where in self._wanted_metrics():
            if metric in result:
                continue
            if flat is None:  # a nested metric ("val/loss"): only now flatten
                flat = flat_result(result)
            if metric in flat:
                continue
            reported = sorted(k for k in flat if k not in AUTO_RESULT_KEYS
                              and not k.startswith("config/") and k != "config")
            if not reported or not self.strict_metrics:
                return None
            return TuneConfigError(
                f"trial {trial} reported a result without the metric `{metric}` that "
                f"{where} ranks by; it reported {', '.join(reported)}. Report `{metric}` "
                "in every tune.report() call, or set TUNE_DISABLE_STRICT_METRIC_CHECKING=1 "
                "to skip this check")
        return None

    def _answer(self, trial: Trial, result: dict[str, Any],
                out: list[Instruction]) -> tuple[Answer, dict[str, Any] | None]:
        """Check the metrics, ask the stopper, then the scheduler; return the worker's answer
        and the flattened result if it was made (only a scheduler that listens needs it)."""
        st = self.state[trial.trial_id]
        flat: dict[str, Any] | None = None
        missing = self._missing_metric(trial, result)
        if missing is not None:  # as in Ray: a result without the metric ends the experiment
            out.append(Raise(missing, after_commit=True))
            st.told = _TOLD_STOP
            return _STOP, flat
        if result.get("done"):
            return _CONTINUE, flat
        try:
            stop = bool(self.stopper(trial.trial_id, result))
        except TuneError as exc:
            out.append(Raise(exc, after_commit=True))
            stop = True
        # a stop of them all is decided at once (Ray checks after every event), also when
        # the same result stops this trial (ExperimentPlateauStopper says both)
        stop_all = (self._stop_all_checked and not self.stopping_all
                    and self.stopper.stop_all())
        if stop or stop_all:  # the stopper's stop overrides an exploit waiting for the trial
            st.told = _TOLD_STOP
            self._drop_exploit(st)
            if stop_all:
                self._stop_everything(out)
            return _STOP, flat
        if st.told == _TOLD_EXPLOIT:
            return _STOP, flat  # an exploit decided elsewhere is waiting for this trial
        if self._sched_listens:
            flat = flat_result(result)
            decision = self._ask(self.scheduler.on_trial_result(st.view, flat), out)
        else:
            decision = _DECIDE_CONTINUE
        if decision != _DECIDE_CONTINUE:
            out.append(Snapshot("scheduler"))
        if isinstance(decision, Exploit):
            self._policy_log(decision, out)
        elif st.told in (_TOLD_EXPLOIT, _TOLD_STOP):
            # an action of the Outcome was about this trial itself (synchronous PBT's last
            # member in the bottom quantile, a HyperBand halving): it wins over the value
            return _STOP, flat
        if isinstance(decision, Exploit):
            self._await_exploit(st, decision)
            return _STOP, flat
        if decision == _DECIDE_STOP:
            st.told = _TOLD_STOP
            return _STOP, flat
        if decision == _DECIDE_PAUSE:
            # pausing a function trial without a checkpoint would silently restart it from
            # scratch (Ray #27170): it keeps running instead
            if self.is_class or trial.checkpoint_path:
                st.told = _TOLD_PAUSE
                out.append(Record(PauseRequested(trial.trial_id)))  # a restore pauses it too
                return _PAUSE, flat
            if not self._warned_pause:
                self._warned_pause = True
                logger.warning(
                    "%s asked to pause trial %s, which has not reported a checkpoint; pausing "
                    "it would restart it from scratch, so it keeps running. Report checkpoints "
                    "with tune.report(..., checkpoint=...) so trials can be paused and resumed."
                    " (Warned once per experiment.)", type(self.scheduler).__name__, trial)
        return _CONTINUE, flat

    # ------------------------------------------------------------------------------------
    # exploits and the scheduler's decisions about other trials
    def _ask(self, answer: Any, out: list[Instruction]) -> Any:
        """A hook's value; the actions on other trials of an :class:`Outcome` are carried out
        first, in order."""
        if isinstance(answer, Outcome):
            for action in answer.actions:
                self._apply(action, out)
            return answer.value
        return answer

    def _apply(self, action: Action, out: list[Instruction]) -> None:
        """Carry out a scheduler's decision about a trial other than the one it was asked
        about."""
        trial = self.by_id.get(action.trial_id)
        if trial is None or trial.is_finished():
            return
        st = self.state[trial.trial_id]
        running = trial.status == _R
        if isinstance(action, Exploit):
            self._policy_log(action, out)
            if not running:
                self._carry_out_exploit(trial, action, out)
                return
            self._await_exploit(st, action)
            self._interrupt(trial, out)
        elif isinstance(action, StopTrial):
            if not running:
                self._end_waiting(trial, out)
                return
            st.told = _TOLD_STOP
            self._drop_exploit(st)
            self._interrupt(trial, out)
        elif isinstance(action, ResizeTrial):
            if running:
                st.resize = action.resources
            else:
                self._resize(trial, action.resources, out)
        else:
            raise TypeError(f"{type(self.scheduler).__name__} returned an unknown action "
                            f"{action!r}; accepted: Exploit, StopTrial, ResizeTrial")

    def _fill_config(self, trial: Trial, values: Any) -> None:
        """Write the values a scheduler's ``on_trial_add`` filled in (``"a/b"`` paths) into a
        copy of the trial's config and its ``evaluated_params``."""
        if not values:
            return
        if not isinstance(values, dict):
            raise TypeError(f"{type(self.scheduler).__name__}.on_trial_add returned "
                            f"{values!r}; accepted: None or a dict of config values by path")
        config = dict(trial.config)
        for path, value in values.items():
            keys = str(path).split("/")
            node = config
            for key in keys[:-1]:
                child = node.get(key)
                node[key] = dict(child) if isinstance(child, dict) else {}
                node = node[key]
            node[keys[-1]] = value
        trial.config = config
        trial.evaluated_params.update(values)

    def _carry_out_exploit(self, trial: Trial, ex: Exploit, out: list[Instruction]) -> None:
        donor = self.by_id.get(ex.donor_trial_id)
        st = self.state[trial.trial_id]
        donor_metrics = ex.donor_result
        if donor is not None:
            for rec in self.state[donor.trial_id].checkpoints.records:
                if rec.path == ex.checkpoint_path:
                    donor_metrics = rec.metrics
        donor_meta = {"it": donor_metrics.get("training_iteration", 0),
                      "tt": donor_metrics.get("time_total_s", 0.0),
                      "timesteps_total": donor_metrics.get("timesteps_total"),
                      "episodes_total": donor_metrics.get("episodes_total")}
        trial.config = ex.config
        flat = flatten_dict(ex.config)  # the progress table shows current values
        trial.evaluated_params = {k: flat.get(k, v) for k, v in trial.evaluated_params.items()}
        if ex.experiment_tag:
            trial.experiment_tag = ex.experiment_tag
        old_restore = trial.restore_path
        trial.restore_path = ex.checkpoint_path
        self._pin(ex.checkpoint_path)
        self._unpin(old_restore)
        st.restore_meta = donor_meta
        out.append(Record(ConfigChanged(
            trial.trial_id, "", ex.checkpoint_path, donor_meta["it"], donor_meta["tt"],
            ex.donor_trial_id, ex.checkpoint_path.rstrip("/").rsplit("/", 1)[-1]),
            config=ex.config))
        out.append(WriteParams(trial))  # as Ray's JSON logger at the trial's next start

    def _policy_log(self, ex: Exploit, out: list[Instruction]) -> None:
        """Append the exploit to pbt_global.txt / pbt_policy_*.txt when it is decided."""
        trial, donor = self.by_id.get(ex.trial_id), self.by_id.get(ex.donor_trial_id)
        if not getattr(self.scheduler, "log_config", False) or trial is None or donor is None:
            return
        line = ex.log_line or [
            trial.experiment_tag, donor.experiment_tag,
            trial.last_result.get("training_iteration", 0),
            ex.donor_result.get("training_iteration", 0), donor.config, ex.config,
        ]
        out.append(PolicyLog(trial.trial_id, donor.trial_id, line))

    # ------------------------------------------------------------------------------------
    # a trial stops running
    def _release(self, trial: Trial, out: list[Instruction]) -> None:
        if self._ahead:
            self._lose_ahead(trial, out)
        self.pool.release(trial.trial_id)
        self.state[trial.trial_id].stop_requested_at = None
        self._stopping.pop(trial.trial_id, None)

    def _on_done(self, trial: Trial, out: list[Instruction]) -> None:
        """The trial's function returned, or it stopped for good after running."""
        self._release(trial, out)
        self.state[trial.trial_id].told = None
        self._terminate(trial, "done", out)

    def _end_waiting(self, trial: Trial, out: list[Instruction]) -> None:
        """A PAUSED or PENDING trial ends without running again (Ray's ``stop_trial``: the
        scheduler's ``on_trial_remove``, the searcher's completion without a result)."""
        st = self.state[trial.trial_id]
        self._drop_exploit(st)
        self._terminate(trial, "removed", out)

    def _terminate(self, trial: Trial, why: str, out: list[Instruction]) -> None:
        """TERMINATED for good: journal it, close its files, tell the deciders (a trial that
        ran gets ``on_trial_complete`` with its last result, a waiting one
        ``on_trial_remove``, as in Ray) and the callbacks."""
        st = self.state[trial.trial_id]
        self._set(trial, _T, why)
        if trial.last_result:  # in place, as Ray's controller updates its last result
            trial.last_result["done"] = True
        else:
            trial.last_result = {"done": True}
        out.append(Record(StatusChanged(trial.trial_id, "TERMINATED")))
        out.append(CloseLog(trial, drain=True, final=True))
        self._unpin(trial.restore_path)
        last: dict[str, Any] | None = None
        if why == "done":
            # flattened only for a scheduler or searcher that reads it (this runs per trial)
            last = (flat_result(trial.last_result) if self._completion_read
                    else trial.last_result)
            self._ask(self.scheduler.on_trial_complete(st.view, last), out)
        else:
            self._ask(self.scheduler.on_trial_remove(st.view), out)
        out.append(Snapshot("scheduler"))
        self.searcher.on_trial_complete(trial.trial_id, last, error=False)
        if self._completion_snapshots:
            out.append(Snapshot("searcher"))
        out.append(Notify("on_trial_complete", {"trial": trial}))

    def _on_stopped(self, trial: Trial, out: list[Instruction]) -> None:
        """A running trial stopped (it was told to, or it was killed after the grace time)."""
        self._release(trial, out)
        st = self.state[trial.trial_id]
        told, st.told = st.told, None
        if told == _TOLD_EXPLOIT and st.exploit is not None:
            ex, st.exploit = st.exploit, None
            self._set(trial, _A, "exploited")
            self._carry_out_exploit(trial, ex, out)
            self._unpin(ex.checkpoint_path)
            out.append(Record(StatusChanged(trial.trial_id, "PAUSED")))
        elif told == _TOLD_PAUSE and not self.stopping_all:
            self._set(trial, _A, "paused")
            out.append(Record(StatusChanged(trial.trial_id, "PAUSED")))
            if st.resize is not None:
                new, st.resize = st.resize, None
                self._resize(trial, new, out)
        elif told == _TOLD_KILL:  # interrupted: unfinished in the journal, resumed by restore
            self._set(trial, _A, "interrupted")
        else:
            self._on_done(trial, out)

    def _on_error(self, trial: Trial, tb: str, blob: bytes | None, lost: bool,
                  out: list[Instruction]) -> None:
        """The trial raised (or, ``lost``, its worker died)."""
        st = self.state[trial.trial_id]
        if lost and st.told in (_TOLD_STOP, _TOLD_KILL):
            self._on_stopped(trial, out)  # killed while being stopped: not a failure
            return
        self._release(trial, out)
        st.told = None
        self._drop_exploit(st)
        st.awaiting_save = None
        st.after_save = None
        trial.num_failures += 1
        trial.error_file = os.path.join(trial.local_path, "error.txt")
        out.append(WriteError(trial, tb, blob))
        last_line = tb.strip().splitlines()[-1] if tb.strip() else "unknown error"
        trial.error_msg = last_line
        retry = not self.fail_fast and (self.max_failures == -1
                                        or trial.num_failures <= self.max_failures)
        if retry:
            self._set(trial, _P, "retry")
            if self.launch_ahead:
                # first in line, ahead of the fresh trials made early to be sent ahead (which
                # would not exist yet without it), as Ray's FIFO runs the oldest one first
                self._first_in_line(trial)
            logger.warning("Trial %s failed (%s); retrying from %s (%d/%s)", trial, last_line,
                           "its latest checkpoint" if trial.restore_path or trial.checkpoint_path
                           else "the start", trial.num_failures,
                           "inf" if self.max_failures == -1 else self.max_failures)
            self._rollback_to_checkpoint(trial, out)
            out.append(Record(StatusChanged(trial.trial_id, "PENDING", trial.num_failures,
                                            last_line, trial.error_file)))
            out.append(Notify("on_trial_recover", {"trial": trial}))  # Ray's hook for a retry
            return
        self._set(trial, _E, "failed")
        out.append(Record(StatusChanged(trial.trial_id, "ERROR", trial.num_failures,
                                            last_line, trial.error_file)))
        out.append(CloseLog(trial, drain=True))  # complete before on_trial_error reads them
        self._unpin(trial.restore_path)
        self._ask(self.scheduler.on_trial_error(st.view), out)
        out.append(Snapshot("scheduler"))
        self.searcher.on_trial_complete(trial.trial_id, None, error=True)
        if self._completion_snapshots:
            out.append(Snapshot("searcher"))
        out.append(Notify("on_trial_error", {"trial": trial}))
        if self.fail_fast:
            self._stop_everything(out)
            # Ray ends the experiment at once: the other running trials are stopped now (no
            # stop grace, nothing more they report is recorded) and end TERMINATED
            for other in list(self._stopping.values()):
                self._stopping.pop(other.trial_id, None)
                out.append(Kill(other.trial_id))
                self._on_stopped(other, out)
            if self.fail_fast == "raise":
                exc: BaseException | None = None
                if blob is not None:
                    try:
                        exc = pickle.loads(blob)
                    except Exception:  # noqa: BLE001
                        exc = None
                out.append(Raise(exc if exc is not None
                                 else TrialError(f"Trial {trial} failed:\n{tb}"),
                                 after_commit=True))

    def _rollback_to_checkpoint(self, trial: Trial, out: list[Instruction]) -> None:
        """Forget results after the checkpoint the trial restarts from (no duplicates)."""
        st = self.state[trial.trial_id]
        if trial.restore_path:
            return  # a pending exploit: it restarts from the donor's checkpoint anyway
        latest = st.checkpoints.latest
        keep_rows = latest.metrics.get("_rows", st.rows) if latest else 0
        if keep_rows >= st.rows:
            return
        st.rows = keep_rows
        out.append(RewriteLog(trial, keep_rows))
        out.append(Record(RolledBack(trial.trial_id, keep_rows)))

    def _on_abort(self, out: list[Instruction]) -> None:
        for t in list(self.running.values()):
            if self._ahead:
                self._lose_ahead(t, out)
            self.state[t.trial_id].told = _TOLD_KILL
            out.append(Kill(t.trial_id))
            self.pool.release(t.trial_id)


def _largest_node(pool: ResourcePool, resources: dict[str, float]) -> str:
    """For the warning about trials waiting for resources: the pool's nodes, and the one
    that comes closest to ``resources`` (nothing for a pool without nodes)."""
    if pool.nodes is None:
        return ""
    largest = pool.largest_node(resources)
    if largest is None:
        return " on no node"
    return f" on {len(pool.nodes)} node(s), the largest ({largest})"


def _resource_warn_s() -> float:
    """Ray Tune's threshold for the warning about trials waiting for resources
    (:data:`RESOURCE_WARN_ENV`), 60 s by default."""
    for name in RESOURCE_WARN_ENV:
        text = os.environ.get(name)
        if text:
            try:
                return float(text)
            except ValueError:
                raise TuneConfigError(
                    f"{name} must be a number of seconds, got {text!r}") from None
    return 60.0
