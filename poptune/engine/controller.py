"""The trial life cycle as a pure state machine: events in, instructions out.

The :class:`Controller` owns each trial's status (PENDING, RUNNING, PAUSED, TERMINATED,
ERROR) and what a running trial has been told but not yet done (:class:`Told`: stop, pause,
restart from another trial's checkpoint, be killed). The runner reports events — a trial
was launched, its result was decided on, it stopped, it failed — and carries out what comes
back: the :class:`Reply` for the worker, a :class:`StopOutcome` or :class:`ErrorOutcome`
telling it what to record. No I/O, no clock, no processes: tests feed events and compare
the answers.

Example:
    >>> from poptune.engine.trial import Trial
    >>> from poptune.schedulers import SchedulerDecision
    >>> ctl = Controller(max_failures=0, fail_fast=False)
    >>> t = Trial(trial_id="a", trainable_name="f", config={})
    >>> ctl.add(t); ctl.on_launch(t); t.status.value
    'RUNNING'
    >>> ctl.on_decision(t, SchedulerDecision.PAUSE, can_pause=True)
    <Reply.PAUSE: 'pause'>
    >>> ctl.on_stopped(t, stopping_all=False), t.status.value
    (<StopOutcome.PAUSED: 'paused'>, 'PAUSED')
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

from poptune.engine.trial import TrialStatus
from poptune.schedulers._base import Exploit, SchedulerDecision

if TYPE_CHECKING:
    from poptune.engine.trial import Trial


class Told(str, enum.Enum):
    """What a running trial has been told and not yet done."""

    STOP = "stop"
    PAUSE = "pause"
    EXPLOIT = "exploit"  # stop, then restart from a donor's checkpoint with a new config
    KILL = "kill"  # the experiment is being interrupted


class Reply(str, enum.Enum):
    """The answer a worker gets to a reported result (the backend protocol's strings)."""

    CONTINUE = "continue"
    STOP = "stop"
    PAUSE = "pause"
    SAVE = "save"  # class trainables: save a checkpoint, then the result is decided


class StopOutcome(str, enum.Enum):
    """What a trial that stopped running becomes."""

    EXPLOITED = "exploited"  # PAUSED with a new config; restarts from the donor's checkpoint
    PAUSED = "paused"
    INTERRUPTED = "interrupted"  # PAUSED in memory; unfinished in the journal
    DONE = "done"  # TERMINATED (set by :meth:`Controller.on_done`)


class ErrorOutcome(str, enum.Enum):
    """What a trial that failed becomes."""

    STOPPED = "stopped"  # it was being stopped anyway: handle as a stop
    RETRY = "retry"  # PENDING again, restarts from its latest checkpoint
    FAILED = "failed"  # ERROR for good


class Controller:
    """Statuses, indexes by status, and what each running trial was told.

    Args:
        max_failures: Retries per trial (-1: unlimited), as in ``FailureConfig``.
        fail_fast: ``FailureConfig.fail_fast``; any failure is final when set.
    """

    def __init__(self, max_failures: int, fail_fast: bool | str) -> None:
        self.max_failures = max_failures
        self.fail_fast = fail_fast
        self.pending: dict[str, Trial] = {}
        self.paused: dict[str, Trial] = {}
        self.running: dict[str, Trial] = {}
        self.told: dict[str, Told] = {}

    # -- statuses ------------------------------------------------------------------------------
    def add(self, trial: Trial, status: TrialStatus | None = None) -> None:
        """Track a new (or restored) trial in ``status`` (default: its own)."""
        self.set_status(trial, trial.status if status is None else status)

    def set_status(self, trial: Trial, status: TrialStatus) -> None:
        tid = trial.trial_id
        self.pending.pop(tid, None)
        self.paused.pop(tid, None)
        self.running.pop(tid, None)
        trial.status = status
        if status == TrialStatus.PENDING:
            self.pending[tid] = trial
        elif status == TrialStatus.PAUSED:
            self.paused[tid] = trial
        elif status == TrialStatus.RUNNING:
            self.running[tid] = trial

    def forget_pending(self, trial_id: str) -> None:
        """Drop a PENDING trial that will never start (the experiment is ending)."""
        self.pending.pop(trial_id, None)

    def is_finished(self, searcher_done: bool, stopping_all: bool) -> bool:
        """No trial runs and none will: the experiment is over."""
        if self.running:
            return False
        if stopping_all:
            return True
        return not (self.pending or self.paused) and searcher_done

    # -- events --------------------------------------------------------------------------------
    def on_launch(self, trial: Trial) -> None:
        self.set_status(trial, TrialStatus.RUNNING)
        self.told.pop(trial.trial_id, None)

    def tell(self, trial_id: str, told: Told, *, keep: bool = False) -> None:
        """Record that a running trial is to stop/pause/exploit/be killed (``keep``: unless it
        was already told something)."""
        if keep and trial_id in self.told:
            return
        self.told[trial_id] = told

    def told_to(self, trial_id: str) -> Told | None:
        return self.told.get(trial_id)

    def reply_while_told(self, trial_id: str) -> Reply | None:
        """A result from a trial already told to stop or pause gets the same answer again."""
        told = self.told.get(trial_id)
        if told is None:
            return None
        return Reply.PAUSE if told == Told.PAUSE else Reply.STOP

    def on_decision(self, trial: Trial, decision: Any, *, can_pause: bool,
                    by_stopper: bool = False) -> Reply:
        """Turn the stopper's/scheduler's decision on a result into the worker's reply.

        ``decision`` is a :class:`SchedulerDecision` or an :class:`Exploit`. ``can_pause`` is
        False for a function trainable without a checkpoint: pausing would restart it from
        scratch, so it continues instead (the runner warns). A stop by the stopper
        (``by_stopper``) overrides an exploit waiting for the trial.
        """
        tid = trial.trial_id
        if by_stopper:
            self.told[tid] = Told.STOP
            return Reply.STOP
        if self.told.get(tid) == Told.EXPLOIT and not isinstance(decision, Exploit):
            return Reply.STOP  # an exploit decided elsewhere is waiting for this trial
        if isinstance(decision, Exploit):
            self.told[tid] = Told.EXPLOIT
            return Reply.STOP
        if decision == SchedulerDecision.STOP:
            self.told[tid] = Told.STOP
            return Reply.STOP
        if decision == SchedulerDecision.PAUSE and can_pause:
            self.told[tid] = Told.PAUSE
            return Reply.PAUSE
        return Reply.CONTINUE

    def on_stopped(self, trial: Trial, *, stopping_all: bool,
                   has_exploit: bool = True) -> StopOutcome:
        """A running trial stopped (it was told to, or it was killed after the grace time)."""
        told = self.told.pop(trial.trial_id, None)
        if told == Told.EXPLOIT and has_exploit:
            self.set_status(trial, TrialStatus.PAUSED)
            return StopOutcome.EXPLOITED
        if told == Told.PAUSE and not stopping_all:
            self.set_status(trial, TrialStatus.PAUSED)
            return StopOutcome.PAUSED
        if told == Told.KILL:
            self.set_status(trial, TrialStatus.PAUSED)
            return StopOutcome.INTERRUPTED
        return StopOutcome.DONE

    def on_done(self, trial: Trial) -> None:
        """The trial's function returned, or it stopped for good."""
        self.told.pop(trial.trial_id, None)
        self.set_status(trial, TrialStatus.TERMINATED)

    def on_error(self, trial: Trial, *, lost: bool) -> ErrorOutcome:
        """The trial raised (or, ``lost``, its worker died). Counts the failure."""
        tid = trial.trial_id
        if lost and self.told.get(tid) in (Told.STOP, Told.KILL):
            return ErrorOutcome.STOPPED  # killed while stopping: not a failure
        self.told.pop(tid, None)
        trial.num_failures += 1
        if not self.fail_fast and (self.max_failures == -1
                                   or trial.num_failures <= self.max_failures):
            self.set_status(trial, TrialStatus.PENDING)
            return ErrorOutcome.RETRY
        self.set_status(trial, TrialStatus.ERROR)
        return ErrorOutcome.FAILED
