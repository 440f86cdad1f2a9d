"""What the runner feeds the :class:`~poptune.engine.controller.Controller`.

The backend's events (a trial reported, saved, finished, stopped, failed, lost its worker)
plus those the runner makes itself: :class:`Tick`, the clock's time once per loop pass (the
controller's only source of time: stop grace, stop-all, creating and launching trials),
:class:`Abort`, when the experiment is interrupted, and :class:`ResourcesOffered`, a
cluster's resources read again while trials wait.

Example:
    >>> Tick(now=12.5, wall=1.7e9)
    Tick(now=12.5, wall=1700000000.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from poptune.backends._base import (
    DoneEvent,
    ErrorEvent,
    ResultEvent,
    SavedEvent,
    StoppedEvent,
    WorkerLostEvent,
)

__all__ = ["Tick", "Abort", "SaveRequested", "ResourcesOffered", "TakenBack", "Event", "ResultEvent", "SavedEvent", "DoneEvent", "StoppedEvent",
           "ErrorEvent", "WorkerLostEvent"]


@dataclass(frozen=True, slots=True)
class Tick:
    """One pass of the runner loop begins: ``now`` on the injected clock (monotonic seconds),
    ``wall`` the epoch time on the same clock."""

    now: float
    wall: float


@dataclass(frozen=True, slots=True)
class SaveRequested:
    """A callback set ``should_checkpoint`` in the result the trial waits on (class
    trainables): save, then carry on as decided."""

    trial_id: str


@dataclass(frozen=True, slots=True)
class TakenBack:
    """A trial sent ahead to a busy worker is the driver's again (the runner fed it right
    after the backend's :meth:`~poptune.backends._base.Backend.take_back` said so)."""

    trial_id: str


@dataclass(frozen=True, slots=True)
class Abort:
    """The experiment is interrupted (Ctrl-C or an error): end every running trial now."""


@dataclass(frozen=True, slots=True)
class ResourcesOffered:
    """What a cluster offers now (``Backend.total_resources()``: nodes joined or left),
    read again by the runner while trials wait: the pool takes the new totals."""

    totals: dict[str, Any]


Event = Union[ResultEvent, SavedEvent, DoneEvent, StoppedEvent, ErrorEvent, WorkerLostEvent,
              Tick, Abort, SaveRequested, ResourcesOffered, TakenBack]
