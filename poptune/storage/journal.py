"""An append-only journal of everything that happened in an experiment.

Each line is one JSON record. Records are buffered during one pass of the runner loop and
written with a single ``os.write`` before any decision is sent back to a trial, so a result a
trial saw acknowledged is on disk even if the driver is killed right after. A partial last line
(driver killed mid-write) is ignored and cut off when the journal is reopened.

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "journal.jsonl")
    >>> j = Journal(path)
    >>> j.append({"e": "result", "t": "a", "r": {"x": 1}})
    >>> j.commit(); j.close()
    >>> list(read_journal(path))
    [{'e': 'result', 't': 'a', 'r': {'x': 1}}]
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterator

JOURNAL_FILE = "journal.jsonl"


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


def _truncate_partial_tail(path: str) -> None:
    """Cut a partial last line (no trailing newline) left by a killed driver."""
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        return
    if size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        pos = size
        chunk = 4096
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            data = f.read(pos - start)
            idx = data.rfind(b"\n")
            if idx >= 0:
                f.truncate(start + idx + 1)
                return
            pos = start
        f.truncate(0)


class Journal:
    """Buffered, append-only JSON-lines writer."""

    def __init__(self, path: str, on_commit: Any = None) -> None:
        self.path = path
        #: called with the bytes of each commit after they are written locally (remote
        #: storage uploads them as a journal segment)
        self.on_commit = on_commit
        _truncate_partial_tail(path)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._buffer: list[str] = []

    def append(self, record: dict[str, Any]) -> None:
        self._buffer.append(dumps(record))

    def commit(self) -> None:
        """Write everything buffered with one system call."""
        if not self._buffer:
            return
        data = ("\n".join(self._buffer) + "\n").encode()
        self._buffer.clear()
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        if self.on_commit is not None:
            self.on_commit(data)

    def close(self) -> None:
        if self._fd >= 0:
            self.commit()
            os.close(self._fd)
            self._fd = -1


def read_journal(path: str) -> Iterator[dict[str, Any]]:
    """Yield the journal's complete records in order (a partial last line is skipped)."""
    with open(path, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                return
            try:
                yield json.loads(raw)
            except ValueError:
                return

