"""The one reader of experiment journals: verify, group, replay.

:func:`read_groups` reads a journal (a local file or the bytes of downloaded segments),
verifies every record's checksum and yields the committed groups in order, as typed records
(:mod:`poptune.storage.records`). :func:`load_state` folds them into an
:class:`ExperimentState` (trials, results, checkpoints, exploits, searcher and scheduler
state) — what restore, :class:`~poptune.ExperimentAnalysis` and lineage read;
:class:`JournalReader` returns the groups committed since its last call (the dashboard).

* An unacknowledged tail — a last group without its commit marker, a partial last line —
  is normal after a crash: it is dropped whole and logged, never an error.
* Anything else that does not verify (an unreadable or altered record, a torn group, a
  missing commit) followed by further commits is damage: :class:`JournalDamagedError` (a
  :class:`~poptune.exceptions.RestoreError`) names the file, the byte offset and what
  truncating to the last good commit would lose (``poptune repair`` does that).
* A journal without a header record, or written by a newer schema: ``RestoreError``.

Version-1 journals (no checksums, no commit markers: poptune before the schema) replay too,
each record being its own commit.

Example:
    >>> import os, tempfile
    >>> from poptune.storage.journal import Journal
    >>> from poptune.storage.records import ExperimentStarted, ResultReported
    >>> path = os.path.join(tempfile.mkdtemp(), "journal.jsonl")
    >>> j = Journal(path)
    >>> j.append(ExperimentStarted("exp", "train"))
    >>> j.commit()
    >>> j.append(ResultReported("a", {"x": 1}))
    >>> j.close()
    >>> [[type(r).__name__ for r in g] for g in read_groups(path)]
    [['ExperimentStarted'], ['ResultReported']]
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Union

from poptune.exceptions import RestoreError
from poptune.storage.confined import open_under
from poptune.storage.journal import COMMIT, checksum_ok
from poptune.storage.records import (
    SCHEMA_VERSION,
    CheckpointDeleted,
    CheckpointSaved,
    ConfigChanged,
    ExperimentEnded,
    ExperimentStarted,
    PauseRequested,
    Record,
    ResourcesChanged,
    ResultReported,
    RolledBack,
    SchedulerDelta,
    SchedulerState,
    SearcherState,
    StatusChanged,
    TrialCreated,
    decode_record,
)

__all__ = ["Damage", "JournalDamagedError", "JournalReader", "ExperimentState", "TrialState",
           "read_groups", "load_state", "check_journal", "JournalCheck"]

logger = logging.getLogger(__name__)

Source = Union[str, bytes]


@dataclass(frozen=True)
class Damage:
    """Where a journal stops verifying and what truncating it there would lose."""

    path: str
    offset: int  #: byte offset of the first record (or group) that does not verify
    line: int  #: its 1-based line number
    reason: str
    good_end: int  #: end of the last good commit: truncating here keeps everything before
    lost_commits: int
    lost_records: int
    lost_results: int
    lost_trials: tuple[str, ...]
    unreadable_lines: int

    def describe(self) -> str:
        trials = ", ".join(self.lost_trials[:10]) + (
            f" and {len(self.lost_trials) - 10} more" if len(self.lost_trials) > 10 else "")
        return (
            f"journal {self.path} is damaged at byte {self.offset} (line {self.line}): "
            f"{self.reason}. Truncating it to its last good commit (byte {self.good_end}) "
            f"would lose {self.lost_commits} later commit(s) with {self.lost_records} "
            f"readable record(s) ({self.lost_results} result(s)"
            + (f" of trial(s) {trials}" if trials else "") + ")"
            + (f" and {self.unreadable_lines} unreadable line(s)" if self.unreadable_lines
               else "") + "."
        )


class JournalDamagedError(RestoreError):
    """A journal record in the middle does not verify (see :attr:`damage`)."""

    def __init__(self, damage: Damage, hint: str = "") -> None:
        super().__init__(damage.describe() + hint)
        self.damage = damage


@dataclass(frozen=True)
class _Tail:
    offset: int
    size: int
    records: int
    results: int
    reason: str


class _Scanner:
    """Verifies a journal's bytes and yields its committed groups.

    State that outlives one call of :meth:`scan` (the incremental reader rescans from the
    end of the last commit): the schema version, the last commit number, the line count.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.version: int | None = None  # None: no header yet
        self.last_seq = 0
        self.lines = 0  # lines before the committed end
        self.committed = 0  # byte offset of the committed end
        self.damage: Damage | None = None
        self.tail: _Tail | None = None

    def _future(self, v: Any) -> None:
        raise RestoreError(
            f"journal {self.path} was written with journal schema version {v}, but this "
            f"poptune reads versions up to {SCHEMA_VERSION}: upgrade poptune to read it")

    def _no_header(self, what: str) -> RestoreError:
        return RestoreError(
            f"journal {self.path} is not a poptune journal: {what} (it has no valid "
            f"experiment header record). Nothing can be restored from it; if it is a "
            f"damaged copy, look for a backup (journal.jsonl.damaged-*) or start anew")

    def scan(self, data: bytes, base: int) -> Iterator[tuple[int, list[Record]]]:
        """Yield ``(end offset, records)`` per committed group of ``data`` (the journal's
        bytes from offset ``base``, the end of the last commit scanned before)."""
        self.damage = self.tail = None
        pending: list[Record] = []
        pending_start = pending_line = -1
        bad: tuple[int, int, str] | None = None  # offset, line, reason of the first bad line
        pos, n, line_no = 0, len(data), self.lines
        loads = json.loads
        while pos < n:
            nl = data.find(b"\n", pos)
            if nl < 0:
                if bad is None:
                    bad = (base + pos, line_no + 1, "a partial last line (no newline)")
                break
            line_no += 1
            raw, start, pos = data[pos:nl], base + pos, nl + 1
            try:
                d = loads(raw)
                ok = isinstance(d, dict)
            except ValueError:
                ok = False
            if not ok:
                if bad is None:
                    bad = (start, line_no, "an unreadable line (not a JSON object)")
                continue
            kind = d.get("e")
            if kind == "exp" and int(d.get("v", 1) or 1) > SCHEMA_VERSION:
                self._future(d.get("v"))
            c = d.pop("c", None)
            if c is None:
                legacy = self.version == 1 or (self.version is None and kind == "exp"
                                               and not pending and bad is None)
                if not legacy:
                    if bad is None:
                        bad = (start, line_no, "a record without its checksum")
                    continue
            elif not checksum_ok(raw, c):
                if bad is None:
                    bad = (start, line_no, "a record whose checksum does not match")
                continue
            if kind == COMMIT and c is not None:
                if bad is not None:
                    self._damaged(data, base, *bad)
                    return
                k, seq = d.get("k"), d.get("n")
                if k != len(pending):
                    self._damaged(data, base, pending_start if pending else start,
                                  pending_line if pending else line_no,
                                  f"a torn commit group: commit {seq} counts {k} record(s) "
                                  f"but {len(pending)} precede it")
                    return
                if seq != self.last_seq + 1 and not any(
                        isinstance(r, ExperimentStarted) for r in pending):
                    self._damaged(data, base, pending_start if pending else start,
                                  pending_line if pending else line_no,
                                  f"commit {seq} follows commit {self.last_seq} (commits in "
                                  f"between are missing)")
                    return
                self.last_seq = int(seq)
                self.committed, self.lines = base + pos, line_no
                group, pending = pending, []
                yield self.committed, group
                continue
            if bad is not None:
                if c is None:  # a version-1 record is committed: the bad line is damage
                    self._damaged(data, base, *bad)
                    return
                continue  # part of the tail after the bad line
            try:
                rec = decode_record(d)
            except (KeyError, ValueError, TypeError) as exc:
                bad = (start, line_no, f"a malformed {kind!r} record ({type(exc).__name__}: "
                                       f"{exc})")
                continue
            if self.version is None:
                if not isinstance(rec, ExperimentStarted):
                    raise self._no_header(f"its first record is {kind!r}, not 'exp'")
            if isinstance(rec, ExperimentStarted):
                self.version = rec.version
            if c is None:  # version 1: every record is its own commit
                if pending:
                    self._damaged(data, base, pending_start, pending_line,
                                  "a torn commit group followed by a version-1 record")
                    return
                self.committed, self.lines = base + pos, line_no
                yield self.committed, [rec]
                continue
            if not pending:
                pending_start, pending_line = start, line_no
            pending.append(rec)
        if bad is not None or pending:
            off = min(bad[0] if bad else base + n, pending_start if pending else base + n)
            results = sum(isinstance(r, ResultReported) for r in pending)
            reason = bad[2] if bad and bad[0] == off else "a commit group without its marker"
            self.tail = _Tail(off, base + n - off, len(pending), results, reason)

    def _damaged(self, data: bytes, base: int, offset: int, line: int, reason: str) -> None:
        commits = records = results = unreadable = 0
        trials: dict[str, None] = {}
        for raw in data[self.committed - base:].split(b"\n"):
            if not raw:
                continue
            try:
                d = json.loads(raw)
            except ValueError:
                unreadable += 1
                continue
            if not isinstance(d, dict):
                unreadable += 1
                continue
            kind = d.get("e")
            if kind == COMMIT:
                commits += 1
                continue
            records += 1
            if "c" not in d:
                commits += 1
            results += kind == "result"
            tid = d.get("t", d.get("id") if kind == "trial" else None)
            if tid is not None:
                trials[str(tid)] = None
        self.damage = Damage(self.path, offset, line, reason, self.committed, commits, records,
                             results, tuple(trials), unreadable)


def _read(source: Source, name: str | None) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source), name or "<journal segments>"
    with open(source, "rb") as f:
        return f.read(), name or source


def read_groups(source: Source, *, name: str | None = None,
                tail_log_level: int = logging.WARNING) -> Iterator[list[Record]]:
    """Yield the journal's committed groups of records, in order.

    Args:
        source: the journal's path, or its bytes (e.g. downloaded segments).
        name: how messages name the journal (default: the path).
        tail_log_level: the level at which a dropped unacknowledged tail is logged.

    Raises:
        JournalDamagedError: a record or group in the middle does not verify.
        RestoreError: the journal is empty, has no header or a newer schema version.
    """
    data, path = _read(source, name)
    scanner = _Scanner(path)
    if not data.strip():
        raise RestoreError(f"journal {path} is empty: the experiment never committed its "
                           f"header, there is nothing to restore or read")
    any_group = False
    for _, group in scanner.scan(data, 0):
        any_group = True
        yield group
    if scanner.damage is not None:
        raise JournalDamagedError(scanner.damage, _repair_hint(path))
    if not any_group:
        raise scanner._no_header("no committed record could be read")
    if scanner.tail is not None:
        t = scanner.tail
        logger.log(tail_log_level,
                   "journal %s: dropped an unacknowledged tail at byte %d (%d bytes, %d "
                   "record(s), %d result(s); %s) - normal after the driver was killed",
                   path, t.offset, t.size, t.records, t.results, t.reason)


def _repair_hint(path: str) -> str:
    if path.endswith(".jsonl") and os.path.isfile(path):
        return (f" Nothing was restored. `poptune repair {os.path.dirname(os.path.abspath(path))}`"
                f" shows the damage and can truncate the journal (keeping a backup).")
    return ""


class JournalReader:
    """Reads the groups a journal committed since the last call (for live views).

    Remembers the byte offset after the last complete commit; an unacknowledged tail waits
    for its marker. Example:

        >>> import os, tempfile
        >>> from poptune.storage.journal import Journal
        >>> from poptune.storage.records import ExperimentStarted
        >>> path = os.path.join(tempfile.mkdtemp(), "journal.jsonl")
        >>> reader = JournalReader(path)
        >>> reader.read()
        ([], False)
        >>> j = Journal(path); j.append(ExperimentStarted("exp", "f")); j.close()
        >>> groups, restarted = reader.read(); len(groups), restarted
        (1, False)
    """

    def __init__(self, path: str, root: str | None = None) -> None:
        self.path = path
        #: if set, the journal is read only if its real path is inside ``root`` (an
        #: ``OutsideRootError``, a ``PermissionError``, otherwise): see poptune.storage.confined
        self.root = root
        self._scanner = _Scanner(path)
        self._seen_size = -1
        self._identity: tuple[int, int] | None = None  # (device, inode) of the file read
        #: the damage found so far (reading stops before it), or None
        self.damage: Damage | None = None

    @property
    def offset(self) -> int:
        """Byte offset after the last committed group returned."""
        return self._scanner.committed

    def read(self) -> tuple[list[list[Record]], bool]:
        """``(new committed groups, restarted)``; ``restarted`` means the file shrank or was
        replaced (truncated or rewritten): the groups are from its start and the caller must
        drop what it built before.

        Raises:
            RestoreError: the journal has no valid header or a newer schema version.
        """
        try:
            st = os.stat(self.path)
        except OSError:
            return [], False
        size, identity = st.st_size, (st.st_dev, st.st_ino)
        # shrunk, or another file now (replaced whole, e.g. by a mirror of remote storage)
        restarted = size < self._scanner.committed or (
            self._identity is not None and identity != self._identity)
        self._identity = identity
        if restarted:
            self._scanner, self.damage = _Scanner(self.path), None
        if size == self._seen_size and not restarted:
            return [], False
        self._seen_size = size
        start = self._scanner.committed
        with (open(self.path, "rb") if self.root is None
              else open_under(self.root, self.path)) as f:
            f.seek(start)
            data = f.read(size - start)
        groups = [g for _, g in self._scanner.scan(data, start)]
        self.damage = self._scanner.damage
        return groups, restarted


# -- what a journal says ----------------------------------------------------------------------
@dataclass
class TrialState:
    """One trial as the journal describes it (configs stay base64 pickles)."""

    created: TrialCreated
    config: str  #: the current config (the latest exploit's, else the initial one)
    status: str = "PENDING"
    failures: int = 0
    error_msg: str | None = None
    error_file: str | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    #: the config blob each result was reported with (shared strings, parallel to results)
    result_configs: list[str] = field(default_factory=list)
    checkpoints: list[CheckpointSaved] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)
    #: an exploit carried out but not yet followed by a checkpoint of the trial's own
    pending_restore: ConfigChanged | None = None
    #: every exploit, with the number of results the trial had when it happened
    exploits: list[tuple[ConfigChanged, int]] = field(default_factory=list)
    next_checkpoint_index: int = 0
    #: its scheduler paused it on its latest result and it had not stopped yet
    pausing: bool = False
    #: the journal position of its creation, its latest status or pause request: the
    #: order trials began to wait in (a restore queues them in it)
    status_seq: int = 0

    @property
    def trial_id(self) -> str:
        return self.created.trial_id

    @property
    def live_checkpoints(self) -> list[CheckpointSaved]:
        """Checkpoints not deleted, oldest first."""
        return [c for c in self.checkpoints if c.name not in self.deleted]

    def roll_back(self, rows: int) -> None:
        """Keep the first ``rows`` results and the checkpoints taken within them."""
        del self.results[rows:]
        del self.result_configs[rows:]
        self.checkpoints = [c for c in self.checkpoints if c.rows <= rows]
        self.pending_restore = None


@dataclass
class ExperimentState:
    """Everything the committed journal says about the latest run in it."""

    header: ExperimentStarted | None = None
    runs: list[ExperimentStarted] = field(default_factory=list)
    trials: dict[str, TrialState] = field(default_factory=dict)
    searcher_state: SearcherState | None = None
    #: trials created after ``searcher_state`` (a searcher whose state is journaled now and
    #: then replays their creation on restore)
    created_after_search_state: int = 0
    scheduler_state: SchedulerState | None = None
    #: the scheduler's deltas committed after ``scheduler_state``, in order
    scheduler_deltas: list[SchedulerDelta] = field(default_factory=list)
    finished: bool = False
    #: records folded in so far
    seq: int = 0

    def apply(self, rec: Record) -> None:
        """Fold one record in (records of unknown trials are ignored)."""
        self.seq += 1
        if isinstance(rec, ResultReported):
            t = self.trials.get(rec.trial_id)
            if t is not None:
                t.results.append(rec.result)
                t.result_configs.append(t.config)
        elif isinstance(rec, StatusChanged):
            t = self.trials.get(rec.trial_id)
            if t is not None:
                t.status = rec.status
                t.pausing = False
                t.status_seq = self.seq
                if rec.failures is not None:
                    t.failures, t.error_msg, t.error_file = (rec.failures, rec.message,
                                                             rec.error_file)
        elif isinstance(rec, CheckpointSaved):
            t = self.trials.get(rec.trial_id)
            if t is not None:
                t.checkpoints.append(rec)
                t.deleted.discard(rec.name)
                t.next_checkpoint_index = max(t.next_checkpoint_index, rec.index + 1)
                t.pending_restore = None
        elif isinstance(rec, CheckpointDeleted):
            t = self.trials.get(rec.trial_id)
            if t is not None:
                t.deleted.add(rec.name)
        elif isinstance(rec, TrialCreated):
            self.trials[rec.trial_id] = TrialState(rec, rec.config,
                                                   resources=dict(rec.resources),
                                                   status_seq=self.seq)
            self.created_after_search_state += 1
            if rec.search_state is not None:  # early poptune versions
                self.searcher_state = SearcherState(state=rec.search_state)
                self.created_after_search_state = 0
        elif isinstance(rec, ConfigChanged):
            t = self.trials.get(rec.trial_id)
            if t is not None:
                t.config = rec.config
                t.pending_restore = rec if rec.restore_path is not None else None
                t.exploits.append((rec, len(t.results)))
        elif isinstance(rec, RolledBack):
            t = self.trials.get(rec.trial_id)
            if t is not None:
                t.roll_back(rec.rows)
        elif isinstance(rec, ResourcesChanged):
            t = self.trials.get(rec.trial_id)
            if t is not None:
                t.resources = dict(rec.resources)
        elif isinstance(rec, SearcherState):
            self.searcher_state = rec
            self.created_after_search_state = 0
        elif isinstance(rec, SchedulerState):
            self.scheduler_state = rec
            self.scheduler_deltas = []
        elif isinstance(rec, SchedulerDelta):
            self.scheduler_deltas.append(rec)
        elif isinstance(rec, PauseRequested):
            t = self.trials.get(rec.trial_id)
            if t is not None:
                t.pausing = True
                t.status_seq = self.seq
        elif isinstance(rec, ExperimentEnded):
            self.finished = True
        elif isinstance(rec, ExperimentStarted):  # a new run (not a resume) of this name
            self.runs.append(rec)
            self.header, self.trials, self.finished = rec, {}, False
            self.searcher_state = self.scheduler_state = None
            self.created_after_search_state = 0
            self.scheduler_deltas = []

    def donor_of(self, rec: ConfigChanged) -> str | None:
        """The exploit's donor trial: the record's ``donor`` (schema 2), else the trial whose
        directory holds the restored checkpoint (older journals)."""
        if rec.donor is not None:
            return rec.donor
        path = str(rec.restore_path or "").rstrip("/")
        parent = posixpath.dirname(path.replace("\\", "/"))
        for tid, t in self.trials.items():
            if t.created.dirname == posixpath.basename(parent) or \
                    parent == t.created.path.replace("\\", "/").rstrip("/"):
                return tid
        return None


def load_state(source: Source, *, name: str | None = None,
               tail_log_level: int = logging.WARNING) -> ExperimentState:
    """Replay a journal into an :class:`ExperimentState` (see :func:`read_groups`)."""
    state = ExperimentState()
    apply = state.apply
    for group in read_groups(source, name=name, tail_log_level=tail_log_level):
        for rec in group:
            apply(rec)
    return state


# -- repair -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class JournalCheck:
    """What :func:`check_journal` found."""

    path: str
    size: int
    commits: int  #: good commit groups
    good_end: int  #: end of the last good commit
    damage: Damage | None
    tail: _Tail | None


def check_journal(path: str) -> JournalCheck:
    """Verify a journal without raising on damage (``poptune repair``).

    Raises:
        RestoreError: it is empty, has no header or a newer schema version.
    """
    data, path = _read(path, None)
    if not data.strip():
        raise RestoreError(f"journal {path} is empty: there is nothing to repair")
    scanner = _Scanner(path)
    commits = sum(1 for _ in scanner.scan(data, 0))
    if not commits and scanner.damage is None:
        raise scanner._no_header("no committed record could be read")
    return JournalCheck(path, len(data), commits, scanner.committed, scanner.damage,
                        scanner.tail)
