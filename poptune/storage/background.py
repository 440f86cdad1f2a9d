"""A single background thread for trial-directory I/O.

Creating and appending files costs about a millisecond per operation on some filesystems;
doing it off the runner's loop lets the driver answer trials while the disk catches up. The
journal, which is what makes results durable, is still written on the runner's thread. All
tasks run in submission order, so each trial's files see their writes in order.

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


class BackgroundIO:
    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = queue.Queue()
        self._said: set[str] = set()  # failure messages logged already
        self._thread = threading.Thread(target=self._run, name="poptune-io", daemon=True)
        self._thread.start()
        self.errors: list[BaseException] = []

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                fn, args = item
                try:
                    fn(*args)
                except Exception as exc:  # noqa: BLE001 - reported, never kills the thread
                    self.errors.append(exc)
                    if str(exc) not in self._said:  # a full disk fails every write: say it once
                        self._said.add(str(exc))
                        logger.warning("poptune: writing trial files failed: %s (further "
                                       "failures like it are not repeated)", exc)
            finally:
                self._queue.task_done()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self._queue.put((fn, args))

    def drain(self) -> None:
        """Wait until everything submitted so far is done."""
        self._queue.join()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
