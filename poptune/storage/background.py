"""A single background thread for trial-directory I/O.

Creating and appending files costs about a millisecond per operation on some filesystems;
doing it off the runner's loop lets the driver answer trials while the disk catches up. The
journal, which is what makes results durable, is still written on the runner's thread. All
tasks run in submission order, so each trial's files see their writes in order.

Submitted tasks are handed to the thread in batches: :meth:`BackgroundIO.release` (the runner
calls it once per loop pass, just before it waits for workers), :meth:`~BackgroundIO.drain`,
:meth:`~BackgroundIO.close`, or once ``batch_size`` tasks wait. One hand-over per pass instead
of one per task saves the queue's locking and, more, the thread switches: every hand-over can
make the runner wait for the interpreter lock while the thread runs.

Example:
    >>> io = BackgroundIO()
    >>> out = []
    >>> io.submit(out.append, 1); io.drain(); out
    [1]
    >>> io.close()
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable

logger = logging.getLogger("poptune")


_Task = tuple[Callable[..., Any], tuple[Any, ...]]


class BackgroundIO:
    def __init__(self, batch_size: int = 256) -> None:
        self.batch_size = batch_size
        self._pending: list[_Task] = []
        self._queue: queue.Queue[list[_Task] | None] = queue.Queue()
        self._said: set[str] = set()  # failure messages logged already
        self._thread = threading.Thread(target=self._run, name="poptune-io", daemon=True)
        self._thread.start()
        self.errors: list[BaseException] = []

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            try:
                if batch is None:
                    return
                for fn, args in batch:
                    try:
                        fn(*args)
                    except Exception as exc:  # noqa: BLE001 - reported, never kills the thread
                        self.errors.append(exc)
                        if str(exc) not in self._said:  # a full disk fails every write: once
                            self._said.add(str(exc))
                            logger.warning("poptune: writing trial files failed: %s (further "
                                           "failures like it are not repeated)", exc)
            finally:
                self._queue.task_done()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)``; it runs after the tasks submitted before it."""
        self._pending.append((fn, args))
        if len(self._pending) >= self.batch_size:
            self.release()

    def release(self) -> None:
        """Hand the tasks submitted so far to the thread."""
        if self._pending:
            batch, self._pending = self._pending, []
            self._queue.put(batch)

    def drain(self) -> None:
        """Wait until everything submitted so far is done."""
        self.release()
        self._queue.join()

    def close(self) -> None:
        self.release()
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
