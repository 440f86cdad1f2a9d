"""A single background thread for the runner's slow storage calls: uploads to remote storage
and remote deletions (the trial files have their own writer process,
:mod:`poptune.storage.trial_files`).

Such a call can take a long time; doing it off the runner's loop lets the driver answer trials
meanwhile. The journal, which is what makes results durable, is still written on the runner's
thread. All tasks run in submission order.

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
import threading
from collections import deque
from typing import Any, Callable

logger = logging.getLogger("poptune")

_Task = tuple[Callable[..., Any], tuple[Any, ...]]
#: how long a wait may last before it looks again: a Ctrl-C that lands between handing a
#: batch over and the wake-up call costs at most this much, never a hang (queue.Queue's
#: ``join`` waits forever for a count such an interrupt can leave wrong)
_RECHECK_S = 0.5


class BackgroundIO:
    def __init__(self, batch_size: int = 256) -> None:
        self.batch_size = batch_size
        self._pending: list[_Task] = []
        self._cond = threading.Condition()
        self._batches: deque[list[_Task] | None] = deque()
        self._handed = 0  # batches handed to the thread
        self._done = 0  # batches it finished
        self._said: set[str] = set()  # failure messages logged already
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="poptune-io", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._batches:
                    self._cond.wait(_RECHECK_S)
                batch = self._batches.popleft()
            if batch is None:
                return
            try:
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
                with self._cond:
                    self._done += 1
                    self._cond.notify_all()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)``; it runs after the tasks submitted before it."""
        self._pending.append((fn, args))
        if len(self._pending) >= self.batch_size:
            self.release()

    def release(self) -> None:
        """Hand the tasks submitted so far to the thread."""
        if self._pending:
            batch, self._pending = self._pending, []
            with self._cond:
                self._batches.append(batch)
                self._handed += 1
                self._cond.notify_all()

    def drain(self) -> None:
        """Wait until everything submitted so far is done."""
        self.release()
        with self._cond:
            target = self._handed
            while self._done < target and self._thread.is_alive():
                self._cond.wait(_RECHECK_S)

    def close(self) -> None:
        self.release()
        if self._thread.is_alive():
            with self._cond:
                self._batches.append(None)
                self._cond.notify_all()
            self._thread.join()
