"""The experiment journal: an append-only file of checksummed records in atomic commits.

Every line is one JSON object. A record (see :mod:`poptune.storage.records`) is written as
its JSON with a last field ``"c"``: the CRC-32 of the line without that field. Records are
buffered during one pass of the runner loop; :meth:`Journal.commit` writes them followed by
a commit marker ``{"e":"commit","n":<sequence>,"k":<number of records>,"c":...}`` with a
single ``os.write``, before any decision is sent back to a trial, so a result a trial saw
acknowledged is on disk even if the driver is killed right after. (A trial whose results go
unanswered, ``LaunchSpec.answered``, does not wait: a driver killed before the commit loses
its last results, and a restore runs them again from the trial's checkpoint.) A group
without its marker (a driver killed mid-write) was never acknowledged:
:mod:`poptune.storage.replay` drops it whole and reopening the journal cuts it off. The
header record (``"e":"exp"``) carries the schema version.

Example:
    >>> import tempfile, os
    >>> from poptune.storage.records import ExperimentStarted, ResultReported
    >>> path = os.path.join(tempfile.mkdtemp(), "journal.jsonl")
    >>> j = Journal(path)
    >>> j.append(ExperimentStarted("exp", "train", start=0.0))
    >>> j.append(ResultReported("a", {"x": 1}))
    >>> j.commit(); j.close()
    >>> open(path).read().splitlines()[1]
    '{"e":"result","t":"a","r":{"x":1},"c":816204127}'
"""

from __future__ import annotations

import json
import os
import logging
import zlib
from typing import Any, Callable

from poptune.storage.errors import describe_records, write_failed
from poptune.storage.records import Record

logger = logging.getLogger(__name__)

JOURNAL_FILE = "journal.jsonl"
COMMIT = "commit"


def json_default(obj: Any) -> Any:
    """Encode numpy scalars/arrays and anything else JSON cannot (as its repr)."""
    item = getattr(obj, "item", None)
    if callable(item):
        try:
            return item()
        except (ValueError, TypeError):
            pass
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return repr(obj)


_encoder = json.JSONEncoder(default=json_default, allow_nan=True, separators=(",", ":"))


def dumps(obj: Any) -> str:
    return _encoder.encode(obj)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (``os.write`` may write less than it was given)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _checksummed(body: bytes) -> bytes:
    """A JSON object's bytes as a journal line: its CRC-32 as a last field ``"c"``."""
    return b'%s,"c":%d}\n' % (body[:-1], zlib.crc32(body))


def checksum_ok(line: bytes, c: Any) -> bool:
    """Whether ``c`` is the checksum of ``line`` (without its newline) as
    :func:`_checksummed` wrote it."""
    idx = line.rfind(b',"c":')
    return idx > 0 and zlib.crc32(line[:idx] + b"}") == c


def frame(record: dict[str, Any]) -> bytes:
    """One journal line (with its newline): the record's JSON plus its checksum field."""
    return _checksummed(_encoder.encode(record).encode())


def encode_group(lines: list[bytes], seq: int) -> bytes:
    """A commit group: framed ``lines`` then the commit marker number ``seq``."""
    # the marker's JSON written directly (it is on every commit): what frame() would make
    lines.append(_checksummed(b'{"e":"%s","n":%d,"k":%d}' % (COMMIT.encode(), seq, len(lines))))
    data = b"".join(lines)
    lines.pop()
    return data


def _last_commit(path: str) -> tuple[int, int]:
    """``(end offset, sequence number)`` of the journal's committed part.

    Reads backwards from the end: the last commit marker ends the committed part; a version-1
    record (no checksum) is committed on its own; a partial last line and checksummed records
    after the last marker are an unacknowledged tail.
    """
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        return 0, 0
    window = 1 << 16
    with open(path, "rb") as f:
        while True:
            start = max(0, size - window)
            f.seek(start)
            data = f.read(size - start)
            base = start
            if start > 0:  # the window starts mid-line: skip to the first line start
                nl = data.find(b"\n")
                if nl < 0:
                    window *= 4
                    continue
                base, data = start + nl + 1, data[nl + 1:]
            lines = data.split(b"\n")[:-1]  # complete lines only
            ends, off = [], base
            for line in lines:
                off += len(line) + 1
                ends.append(off)
            for line, line_end in zip(reversed(lines), reversed(ends)):
                kind, seq, framed = _peek(line)
                if kind == COMMIT:
                    return line_end, seq
                if kind is not None and not framed:  # a version-1 record
                    return line_end, 0
            if start == 0:
                return 0, 0
            window *= 4


def _peek(line: bytes) -> tuple[str | None, int, bool]:
    """(kind, commit number, has a checksum) of a line; kind None if it is not valid."""
    try:
        d = json.loads(line)
    except ValueError:
        return None, 0, False
    if not isinstance(d, dict):
        return None, 0, False
    c = d.get("c")
    if c is not None and not checksum_ok(line, c):
        return None, 0, False
    kind = d.get("e")
    if kind == COMMIT and c is not None:
        return COMMIT, int(d.get("n") or 0), True
    return (str(kind) if kind else None), 0, c is not None


class Journal:
    """Buffered, append-only writer of checksummed records in atomic commit groups.

    Opening a journal cuts off an unacknowledged tail (records after the last commit marker,
    a partial last line) and continues the commit numbering.

    Args:
        path: the journal file (created if missing).
        on_commit: called with the bytes of each commit after they are written locally
            (remote storage uploads them as a journal segment).
    """

    def __init__(self, path: str, on_commit: Callable[[bytes], Any] | None = None) -> None:
        self.path = path
        self.on_commit = on_commit
        end, self.seq = _last_commit(path)
        size = os.path.getsize(path) if os.path.exists(path) else 0
        if size > end:
            logger.info("journal %s: cutting %d bytes of unacknowledged records after the "
                        "last commit (byte %d)", path, size - end, end)
            with open(path, "rb+") as f:
                f.truncate(end)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._size = end  # bytes committed so far
        self._buffer: list[bytes] = []

    def append(self, record: Record | dict[str, Any]) -> None:
        """Buffer one record (a typed record, or for now its dict form)."""
        self._buffer.append(frame(record if isinstance(record, dict) else record.encode()))

    def commit(self) -> None:
        """Write everything buffered and a commit marker with one system call."""
        if not self._buffer:
            return
        self.seq += 1
        data = encode_group(self._buffer, self.seq)
        self._buffer.clear()
        try:
            write_all(self._fd, data)
        except OSError as exc:  # e.g. a full disk: take the torn group back, so later
            try:                # commits never follow it
                os.ftruncate(self._fd, self._size)
            except OSError:
                pass
            self.seq -= 1
            raise write_failed(exc, self.path, describe_records(
                data.splitlines()[:-1])) from exc
        self._size += len(data)
        if self.on_commit is not None:
            self.on_commit(data)

    def close(self, commit: bool = True) -> None:
        """Commit what is buffered (unless ``commit`` is False: it is dropped), then close;
        the file is closed even when that commit fails."""
        if self._fd >= 0:
            try:
                if commit:
                    self.commit()
            finally:
                self._buffer.clear()
                os.close(self._fd)
                self._fd = -1
