"""The scheduler extension point.

A scheduler *decides*; it never acts. The runner calls its hooks and carries out the value
each returns:

* :meth:`TrialScheduler.on_trial_result` returns a :data:`Decision`: ``CONTINUE``, ``PAUSE``,
  ``STOP``, ``NOOP`` (Ray's constants) or an :class:`Exploit` value meaning "restart this
  trial from that checkpoint with this config".
* :meth:`TrialScheduler.choose_trial_to_run` picks which pending/paused trial gets a free slot.

Hooks are called in the driver, one at a time, in event order. Trials passed in are read-only.
``save_state``/``load_state`` make the scheduler's memory part of the experiment, so a restored
experiment continues where it stopped.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Union

from poptune._validation import check_mode
from poptune.exceptions import TuneConfigError
from poptune.experiment.trial import Trial, TrialStatus


class SchedulerDecision(str, enum.Enum):
    """What happens to a trial after one of its results."""

    CONTINUE = "CONTINUE"
    PAUSE = "PAUSE"
    STOP = "STOP"
    NOOP = "NOOP"


@dataclass(frozen=True)
class Exploit:
    """Restart ``trial_id`` from ``checkpoint_path`` (another trial's) with ``config``.

    Returned by PBT-style schedulers. The runner stops the trial, pins the donor's checkpoint
    so no cleanup deletes it, and relaunches the trial with ``config`` and that checkpoint.
    """

    trial_id: str
    donor_trial_id: str
    checkpoint_path: str
    config: dict[str, Any]
    donor_result: dict[str, Any] = field(default_factory=dict)
    #: the policy-log record (``pbt_global.txt`` / ``pbt_policy_*.txt``), see :attr:`log_line`
    target_tag: str = ""
    donor_tag: str = ""
    target_iteration: int = 0
    donor_iteration: int = 0
    donor_config: dict[str, Any] = field(default_factory=dict)
    #: the trial's new ``experiment_tag`` (``"{orig_tag}@perturbed[...]"``); None keeps it
    experiment_tag: str | None = None

    @property
    def log_line(self) -> list[Any] | None:
        """Ray's policy-log line ``[target_tag, clone_tag, target_iteration, clone_iteration,
        clone_config, new_config]``; None when the scheduler did not fill the record."""
        if not (self.target_tag or self.donor_tag):
            return None
        return [
            self.target_tag,
            self.donor_tag,
            self.target_iteration,
            self.donor_iteration,
            self.donor_config,
            self.config,
        ]


Decision = Union[SchedulerDecision, Exploit]


class TrialScheduler:
    """Base class of every scheduler. Ray's class constants are kept for user subclasses."""

    CONTINUE = SchedulerDecision.CONTINUE
    PAUSE = SchedulerDecision.PAUSE
    STOP = SchedulerDecision.STOP
    NOOP = SchedulerDecision.NOOP

    _metric: str | None = None
    _mode: str | None = None
    #: a scheduler that pauses trials and resumes them later needs checkpoints to do so
    needs_checkpoints = False

    @property
    def metric(self) -> str | None:
        return self._metric

    @property
    def mode(self) -> str | None:
        return self._mode

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        """Receive metric/mode from ``TuneConfig``; giving them in both places is an error."""
        if (self._metric or self._mode) and (metric or mode):
            if (metric and self._metric and metric != self._metric) or (
                mode and self._mode and mode != self._mode
            ) or (metric and self._metric) or (mode and self._mode):
                raise TuneConfigError(
                    f"`metric`/`mode` were given both to {type(self).__name__} "
                    f"(metric={self._metric!r}, mode={self._mode!r}) and to TuneConfig "
                    f"(metric={metric!r}, mode={mode!r}); set them in one place only"
                )
        check_mode(mode)
        if metric is not None:
            self._metric = metric
        if mode is not None:
            self._mode = mode
        if self._mode and not self._metric:
            self._metric = "_metric"
        return True

    def on_trial_add(self, trial: Trial) -> None:
        """A trial was created (before it first starts)."""

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> Decision:
        """A running trial reported ``result``; return what to do with it."""
        return SchedulerDecision.CONTINUE

    def on_trial_complete(self, trial: Trial, result: dict[str, Any]) -> None:
        """A trial finished (its function returned or it was stopped)."""

    def on_trial_error(self, trial: Trial) -> None:
        """A trial errored for good."""

    def on_trial_remove(self, trial: Trial) -> None:
        """A trial was stopped by the runner (stop criteria, ``STOP`` decision)."""

    def choose_trial_to_run(self, candidates: list[Trial]) -> Trial | None:
        """Pick the next trial to launch among PENDING and PAUSED ones (FIFO by default).

        PENDING trials come first, in creation order, then PAUSED ones.
        """
        for status in (TrialStatus.PENDING, TrialStatus.PAUSED):
            for trial in candidates:
                if trial.status == status:
                    return trial
        return None

    def pinned_checkpoints(self) -> set[str]:
        """Checkpoint paths a future decision may restore from; never deleted while listed."""
        return set()

    def take_exploits(self) -> list[Exploit]:
        """Exploits decided for trials other than the one that just reported (synch PBT).

        The runner calls this after every hook call (it is cheap) and, before launching
        anything, applies each returned :class:`Exploit` to its PAUSED target: new config,
        restore from ``checkpoint_path``. Each exploit is returned once.
        """
        return []

    def take_stops(self) -> list[str]:
        """Ids of trials other than the reporting one to stop for good (e.g. HyperBand halving
        a bracket of PAUSED trials). Called like :meth:`take_exploits`; each id returned once.
        A PAUSED or PENDING trial becomes TERMINATED at once; a RUNNING one stops at its next
        report.
        """
        return []

    def take_resource_changes(self) -> list[tuple[str, Any]]:
        """New resources for trials that are not running, as ``(trial_id, resources)`` pairs
        (a dict or a ``PlacementGroupFactory``). The runner calls this before launching and
        relaunches each trial with its new resources; each pair is returned once."""
        return []

    def set_experiment_view(self, view: Any) -> None:
        """Receive a read-only view of the experiment (a
        :class:`~poptune.execution.TuneController`: the trials, the total resources), once,
        before the first trial starts. Most schedulers do not need it."""

    def should_checkpoint(self, trial: Trial, result: dict[str, Any]) -> bool:
        """Class trainables only: return True to have the trial save a checkpoint right after
        ``result`` (before :meth:`on_trial_result` sees it). Function trainables checkpoint
        through ``tune.report(checkpoint=...)`` themselves."""
        return False

    def debug_string(self) -> str:
        return f"Using {type(self).__name__}."

    def save_state(self) -> dict[str, Any]:
        """State to store with the experiment (picklable)."""
        return {k: v for k, v in self.__dict__.items() if not k.startswith("__")}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`save_state` returned."""
        self.__dict__.update(state)


class FIFOScheduler(TrialScheduler):
    """Run trials in the order they were created; never stops or pauses anything."""

    def __init__(self) -> None:
        pass
