"""The backend extension point: where trials run.

The runner talks to a backend through a handful of calls and a stream of events:

* :meth:`Backend.setup` once, with the experiment's shared blobs (trainable, constants);
* :meth:`Backend.launch` to start a trial; the trial then reports results;
* each :class:`ResultEvent` must be answered exactly once with :meth:`Backend.reply`
  (``"continue"``, ``"stop"``, ``"pause"`` or ``"save"``; after ``"save"`` the backend emits a
  :class:`SavedEvent` and waits for another reply), except for a trial launched with
  ``LaunchSpec.answered=False`` (only on a backend whose :attr:`Backend.unanswered_results`
  is True): it goes on after each result without waiting, and a ``"stop"`` or ``"pause"``
  sent to it any time is seen at its next result;
* :meth:`Backend.poll` returns the events that arrived (results, saves, completions, errors,
  lost workers, acknowledgements of stop/pause);
* :meth:`Backend.kill` ends a trial at once (its worker is replaced);
* on a backend whose :attr:`Backend.queues_ahead` is True, :meth:`Backend.launch_after` sends
  a trial to the worker of a running one, to start when that one returns (its
  :class:`DoneEvent` says so: ``continued``), without waiting for the driver; after any other
  end it is dropped. :meth:`Backend.take_back` takes it back, if the worker has not claimed
  it yet, at once: the worker need not read anything;
* :meth:`Backend.shutdown` at the end.

A backend never decides anything: it carries out what the runner asks.
"""

from __future__ import annotations

import abc
import operator
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class LaunchSpec:
    """Everything a worker needs to run one trial."""

    trial_id: str
    trial_name: str
    trial_dir: str
    experiment_name: str
    experiment_dir: str
    config_blob: bytes
    resources: dict[str, float]
    restore_path: str | None = None
    start_iteration: int = 0
    time_total_offset: float = 0.0
    next_checkpoint_index: int = 0
    checkpoint_frequency: int = 0
    checkpoint_at_end: bool = False
    chdir: bool = True
    env: dict[str, str] = field(default_factory=dict)
    #: the trial dir on remote storage (checkpoints are uploaded there); None when local
    storage_trial_dir: str | None = None
    #: whether the trial waits for an answer to each result; False when nothing can answer
    #: but "continue" (a stop or pause then arrives unasked and is seen at the next result)
    answered: bool = True
    #: ``TuneConfig(reuse_actors=True)`` with a class trainable: the worker keeps the
    #: Trainable of a trial that ended (not failed) and resets it (``Trainable.reset`` ->
    #: ``reset_config``) for its next trial of the same trainable and resources, as Ray
    #: reuses the actor
    reuse_actors: bool = False
    #: Ray's ``timesteps_total``/``episodes_total`` of the checkpoint the trial restores from
    #: (None: not counted), carried on as ``time_total_offset`` is
    timesteps_total: float | None = None
    episodes_total: float | None = None
    #: ``RunConfig(log_to_file=...)``: the files (in the trial dir) the trial's stdout and
    #: stderr are also written to; None when it is off
    log_to_file: tuple[str | None, str | None] | None = None

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # its values in field order, without the field names: one is sent per trial, and
        # the names were half of its pickle (~640 bytes) and of its unpickling time
        return (LaunchSpec, _launch_values(self))


_LAUNCH_FIELDS = tuple(f.name for f in fields(LaunchSpec))
#: a spec's values in field order, as one tuple (made in C: a third of a generator's time)
_launch_values = operator.attrgetter(*_LAUNCH_FIELDS)


@dataclass
class ResultEvent:
    trial_id: str
    result: dict[str, Any]


@dataclass
class SavedEvent:
    trial_id: str
    checkpoint_dir_name: str


@dataclass
class DoneEvent:
    trial_id: str
    #: the trial sent ahead to this trial's worker (:meth:`Backend.launch_after`), which
    #: the worker starts after it (now, or when it arrives); None when it starts none
    continued: str | None = None


@dataclass
class StoppedEvent:
    trial_id: str


@dataclass
class ErrorEvent:
    trial_id: str
    traceback: str
    exception: bytes | None = None


@dataclass
class WorkerLostEvent:
    trial_id: str
    detail: str


Event = ResultEvent | SavedEvent | DoneEvent | StoppedEvent | ErrorEvent | WorkerLostEvent


class Backend(abc.ABC):
    """Base class of every backend."""

    #: whether its trials can run with results left unanswered (``LaunchSpec.answered``)
    unanswered_results = False
    #: whether its workers may run on other machines (Ray, Dask): with a local
    #: ``storage_path`` each worker checks that it sees the driver's experiment directory
    runs_elsewhere = False
    #: whether a trial can be sent ahead to the worker of a running one
    #: (:meth:`launch_after`)
    queues_ahead = False

    @abc.abstractmethod
    def setup(self, blobs: dict[str, bytes], max_concurrent: int) -> None:
        """Prepare to run trials; ``blobs`` are shipped to each worker once."""

    @abc.abstractmethod
    def total_resources(self) -> dict[str, Any]:
        """Resources available to trials: :class:`~poptune.engine.resources.ResourcePool`'s
        arguments, e.g. ``{"cpu": 2, "gpu": 0}`` (and ``memory``, ``custom``, ``where``; a
        cluster adds ``nodes``, one dict per machine: see
        :func:`~poptune.engine.resources.cluster_offer`)."""

    @abc.abstractmethod
    def launch(self, spec: LaunchSpec) -> None:
        """Start a trial (the resources were already accounted for by the runner)."""

    def launch_after(self, spec: LaunchSpec, trial_id: str) -> None:
        """Send ``spec``'s trial to the worker running ``trial_id``, to start there once that
        trial returns (only if :attr:`queues_ahead`). Nothing is sent when the backend has
        seen that trial end already: its end's event then says none starts."""
        raise NotImplementedError(f"{type(self).__name__} does not queue trials ahead")

    def take_back(self, trial_id: str) -> bool:
        """Take back a trial sent with :meth:`launch_after`: True if its worker had not
        claimed it (it never starts there; also for a trial the backend no longer knows),
        False if it had (the end's event of the trial before says it continued with it)."""
        raise NotImplementedError(f"{type(self).__name__} does not queue trials ahead")

    @abc.abstractmethod
    def reply(self, trial_id: str, decision: str) -> None:
        """Answer the trial's pending result: continue, stop, pause or save."""

    @abc.abstractmethod
    def poll(self, timeout: float) -> list[Event]:
        """Wait up to ``timeout`` seconds for events and return those that arrived."""

    @abc.abstractmethod
    def kill(self, trial_id: str) -> None:
        """End a trial at once, without waiting for it to report."""

    @abc.abstractmethod
    def shutdown(self) -> None:
        """Stop every worker."""
