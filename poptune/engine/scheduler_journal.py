"""How the scheduler's state joins the journal's commit sequence.

A restore must find the scheduler as it was at the last committed result: the state (or
what changed in it) is appended to the journal just before each commit that handled an
event, so it lands in the same atomic group as the results it has seen.

* a scheduler with ``incremental_state`` (ASHA: its rungs grow with every trial) appends a
  :class:`~poptune.storage.records.SchedulerDelta` with what changed at each such commit,
  and its whole state again once the deltas since the last whole state outweigh it (replay
  work stays linear, and so does the journal);
* any other scheduler whose pickled state is small (under 64 KB, e.g. a PBT population) is
  appended whole at each such commit where its bytes changed;
* a big state without deltas is rate-limited (0.2 s after a decision that changed the
  course, 1 s after bookkeeping-only results): pickling it at every commit would make a long
  experiment quadratic. After ``kill -9`` such a scheduler can lag the journal by that much;
  the trials and their results never do.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import cloudpickle

from poptune.storage.journal import Journal
from poptune.storage.records import SchedulerDelta, SchedulerState

__all__ = ["SchedulerJournal", "SMALL_STATE"]

logger = logging.getLogger(__name__)

#: states up to this many pickled bytes are journaled whole at every commit that changed them
SMALL_STATE = 64 * 1024


class SchedulerJournal:
    """Append the scheduler's state to ``journal`` before each commit that needs it.

    Example:
        >>> import tempfile, os
        >>> from poptune.schedulers import ASHAScheduler
        >>> d = tempfile.mkdtemp()
        >>> j = Journal(os.path.join(d, "journal.jsonl"))
        >>> sj = SchedulerJournal(ASHAScheduler(metric="m", mode="max"), j, d)
        >>> sj.before_commit(handled=True, course_changed=False)  # the first: the whole state
        'state'
        >>> sj.before_commit(handled=True, course_changed=False) is None  # nothing changed
        True
    """

    def __init__(self, scheduler: Any, journal: Journal, experiment_dir: str) -> None:
        self.scheduler = scheduler
        self.journal = journal
        self.experiment_dir = experiment_dir
        self.incremental = bool(getattr(scheduler, "incremental_state", False))
        self._whole_bytes: int | None = None  # size of the last whole state (None: none yet)
        self._delta_bytes = 0  # deltas appended since then
        self._last_blob: bytes | None = None
        self._file_index = 1
        self._warned = False
        self._last_save = 0.0
        self._handled = False  # events handled since the state was last appended
        self._due = False  # a course-changing decision since then

    def before_commit(self, *, handled: bool, course_changed: bool) -> str | None:
        """Append what the coming commit needs; returns ``"state"``, ``"delta"`` or None."""
        self._handled = self._handled or handled
        self._due = self._due or course_changed
        if not (self._handled or self._due):
            return None
        try:
            if self.incremental and self._whole_bytes is not None and \
                    self._delta_bytes <= max(self._whole_bytes, SMALL_STATE):
                delta = self.scheduler.state_delta()
                self._handled = self._due = False
                if delta is None:
                    return None
                rec = SchedulerDelta.of(delta)
                self._delta_bytes += len(rec.delta)
                self.journal.append(rec)
                return "delta"
            big = self._whole_bytes is not None and self._whole_bytes >= SMALL_STATE
            if big and not self.incremental:
                since = time.monotonic() - self._last_save
                if not ((self._due and since > 0.2) or since > 1.0):
                    return None  # rate-limited (see the module docstring)
            return self.whole()
        except Exception as exc:  # noqa: BLE001 - a scheduler with unpicklable state
            self._handled = self._due = False
            if not self._warned:
                self._warned = True
                logger.warning("poptune: the state of %s cannot be saved (%s); a restored "
                               "experiment starts it afresh", type(self.scheduler).__name__, exc)
            return None

    def whole(self) -> str | None:
        """Append the whole state (unless its bytes are those appended last)."""
        if self.incremental:
            self.scheduler.state_delta()  # what it holds is in the whole state
        blob = cloudpickle.dumps(self.scheduler.save_state())
        self._handled = self._due = False
        self._last_save = time.monotonic()
        if blob == self._last_blob:
            return None
        self._last_blob = blob
        self._whole_bytes, self._delta_bytes = len(blob), 0
        self._file_index = 1 - self._file_index  # a torn commit never overwrites the last
        rec = SchedulerState.of_blob(blob, self.experiment_dir,
                                     file_name=f"scheduler_state.{self._file_index}.pkl")
        self.journal.append(rec)
        return "state"

    def final(self) -> None:
        """At the end of the run: the whole state, so a later restore replays no deltas."""
        try:
            self.whole()
        except Exception as exc:  # noqa: BLE001
            logger.warning("poptune: the final state of %s cannot be saved (%s)",
                           type(self.scheduler).__name__, exc)
