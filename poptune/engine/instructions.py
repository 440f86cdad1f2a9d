"""What the :class:`~poptune.engine.controller.Controller` hands back to the runner.

The controller decides; the runner carries out, in this order within one loop pass:

1. :class:`Record` — appended to the journal buffer at once;
2. :class:`Launch`, :class:`TakeBack`, :class:`Kill`, :class:`LogResult`, :class:`CloseLog`,
   :class:`RewriteLog`, :class:`RestoreLog`, :class:`WriteError`, :class:`WriteParams`,
   :class:`PolicyLog`, :class:`Notify` — carried out at once, in the order given;
3. the journal is committed (one write);
4. :class:`Reply` and :class:`DeleteCheckpoint` — only after that commit, so a trial never
   continues, and no checkpoint disappears, before the record of why is on disk.

:class:`Raise` ends the run with an error after the instructions before it were carried out.

Example:
    >>> Reply("a_00000", Answer.STOP)
    Reply(trial_id='a_00000', answer=<Answer.STOP: 'stop'>, watch=None)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from poptune.engine.trial import Trial
    from poptune.storage.records import Record as JournalRecord


class Answer(str, enum.Enum):
    """The answer a worker gets to a reported result (the backend protocol's strings)."""

    CONTINUE = "continue"
    STOP = "stop"
    PAUSE = "pause"
    SAVE = "save"  # class trainables: save a checkpoint, then the result is decided


@dataclass(frozen=True, slots=True)
class Record:
    """Append ``record`` to the journal (committed before any :class:`Reply` is sent).

    ``config``: the config object of a record whose ``config`` field the runner fills in
    (pickled once per config object; the controller does no encoding).
    """

    record: JournalRecord
    config: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer the trial's pending result (sent after the journal commit).

    ``watch``: the result a callback may still mark ``should_checkpoint`` (Ray lets
    ``on_trial_result`` ask a class trainable for a checkpoint): if it did by the time this
    reply is carried out, the runner feeds :class:`~poptune.engine.events.SaveRequested`
    instead of sending the answer.
    """

    trial_id: str
    answer: Answer
    watch: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Launch:
    """Start ``trial`` on the backend with the resources already reserved (``gpu_ids``).

    ``after``: send it ahead to the worker of that running trial instead, to start there
    when that one returns (:meth:`~poptune.backends._base.Backend.launch_after`): it is
    still PENDING, and it holds no resources until it starts.
    """

    trial: Trial
    gpu_ids: list[int]
    restore_path: str | None
    start_iteration: int
    time_total_offset: float
    next_checkpoint_index: int
    #: the restored checkpoint's ``timesteps_total``/``episodes_total`` (None: not counted)
    timesteps_total: float | None = None
    episodes_total: float | None = None
    after: str | None = None


@dataclass(frozen=True, slots=True)
class TakeBack:
    """Take back ``trial_id``, sent ahead with :attr:`Launch.after`, if its worker has not
    claimed it yet (the runner then feeds :class:`~poptune.engine.events.TakenBack`)."""

    trial_id: str


@dataclass(frozen=True, slots=True)
class Kill:
    """End the trial's run at once (its worker is replaced)."""

    trial_id: str


@dataclass(frozen=True, slots=True)
class LogResult:
    """Append ``result`` to the trial's ``result.json`` / ``progress.csv``."""

    trial: Trial
    result: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CloseLog:
    """The trial's result files are complete for now (``drain``: wait until they are on disk,
    e.g. before a user callback uploads the trial directory; ``final``: the trial ended for
    good, its file state can go)."""

    trial: Trial
    drain: bool = False
    final: bool = False


@dataclass(frozen=True, slots=True)
class RewriteLog:
    """Keep only the first ``rows`` results in the trial's result files (a rollback)."""

    trial: Trial
    rows: int


@dataclass(frozen=True, slots=True)
class RestoreLog:
    """Replace the trial's result files with exactly ``rows`` (the journal's, on restore)."""

    trial: Trial
    rows: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class WriteError:
    """Write ``error.txt`` (and ``error.pkl``) into the trial directory."""

    trial: Trial
    traceback: str
    exception: bytes | None


@dataclass(frozen=True, slots=True)
class WriteParams:
    """Write the new trial's ``params.json``."""

    trial: Trial


@dataclass(frozen=True, slots=True)
class PolicyLog:
    """Append an exploit to ``pbt_global.txt`` and the policy files (Ray's format)."""

    trial_id: str
    donor_trial_id: str
    line: list[Any]


@dataclass(frozen=True, slots=True)
class DeleteCheckpoint:
    """Delete a checkpoint nothing may restore from any more (after the commit)."""

    path: str


@dataclass(frozen=True, slots=True)
class Notify:
    """Call ``hook`` on every callback with these keyword arguments (the runner adds
    ``iteration`` and ``trials`` where Ray passes them)."""

    hook: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The searcher's (or scheduler's) state changed: journal it with the next commit."""

    what: str  # "searcher" | "scheduler"


@dataclass(frozen=True, slots=True)
class Raise:
    """End the run with ``error`` (after the journal commit when ``after_commit``)."""

    error: BaseException
    after_commit: bool = False


Instruction = Union[Record, Reply, Launch, TakeBack, Kill, LogResult, CloseLog, RewriteLog,
                    RestoreLog, WriteError,
                    WriteParams, PolicyLog, DeleteCheckpoint, Notify, Snapshot, Raise]
