"""The slot that arbitrates a trial sent ahead to a busy worker (launch ahead).

The driver sends a worker its next trial while it runs one; the worker starts it when the
running one returns. Until then the driver may want it back (another slot is free and
nothing else waits, or the experiment stops), and the worker may be deep in a trial that
reads no message for hours. So who gets the trial is decided in a small shared file, under
its ``flock``: the driver *offers* a trial's number, and then either the worker *claims* it
or the driver *takes it back*: whoever comes first; the other one learns it lost. Neither
waits for the other.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "ahead-1")
    >>> driver, worker = AheadSlot(path, create=True), AheadSlot(path)
    >>> driver.offer(7)
    >>> worker.take(7), driver.take(7)  # the worker claimed it: the driver cannot have it
    (True, False)
    >>> driver.offer(8)
    >>> driver.take(8), worker.take(8)  # taken back first: the worker must drop it
    (True, False)
    >>> driver.close(); worker.close()
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct

__all__ = ["AheadSlot"]

_NUMBER = struct.Struct("<q")


class AheadSlot:
    """One worker's slot (a file of 8 bytes, mapped; ``create``: make it, empty)."""

    __slots__ = ("path", "_fd", "_map")

    def __init__(self, path: str, create: bool = False) -> None:
        self.path = path
        flags = os.O_RDWR | (os.O_CREAT | os.O_TRUNC if create else 0)
        self._fd = os.open(path, flags, 0o600)
        try:
            if create:
                os.ftruncate(self._fd, _NUMBER.size)
            self._map = mmap.mmap(self._fd, _NUMBER.size)
        except BaseException:
            os.close(self._fd)
            raise

    def offer(self, number: int) -> None:
        """Put trial ``number`` (> 0) in the slot (replacing one nobody took)."""
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            _NUMBER.pack_into(self._map, 0, number)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def take(self, number: int) -> bool:
        """Take trial ``number`` out of the slot: True if it was still there (it is yours
        now), False if the other side took it first."""
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            if _NUMBER.unpack_from(self._map, 0)[0] != number:
                return False
            _NUMBER.pack_into(self._map, 0, 0)
            return True
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)
