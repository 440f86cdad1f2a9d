"""What the driver-side tracking callbacks (W&B, Comet, Aim) share: the tracking library's calls,
made in order on one background thread, so that the slow ones (importing the library,
starting a run, ending it, uploading) never hold up the engine.

A callback keeps one :class:`CallThread` per experiment, started at its first trial and
stopped in ``on_experiment_end`` after the runs still open are ended. The callback pickles
without it (``tuner.pkl`` keeps the callbacks for ``Tuner.restore``).

Example:
    >>> class Echo(CallThread):
    ...     library, thread_name = "Echo", "poptune-echo"
    ...     def _start(self, trial_id, text):
    ...         self.runs[trial_id] = text
    ...     def _end(self, trial_id, failed):
    ...         print("end", self.runs.pop(trial_id), "failed" if failed else "ok")
    >>> calls = Echo()
    >>> calls.start()
    >>> calls.put("start", "t1", "first")
    >>> calls.put("end", "t1", False)
    >>> calls.put("start", "t2", "second")  # not ended by its trial: ended as failed
    >>> calls.stop(timeout=10)
    end first ok
    end second failed
    True
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import TYPE_CHECKING, Any

from poptune.logger._base import LoggerCallback

if TYPE_CHECKING:
    from poptune.experiment.trial import Trial

__all__ = ["CallThread", "ThreadedLoggerCallback"]

logger = logging.getLogger("poptune")


class CallThread(threading.Thread):
    """Makes one callback's library calls in order: ``put("start", trial_id, ...)`` runs
    ``self._start(trial_id, ...)`` on this thread. A call that raises is logged as a warning
    and the next one runs: a logging failure never ends an experiment.

    ``runs`` maps trial ids to the library's open runs; a subclass defines ``_end(trial_id,
    failed)``, which :meth:`stop` also calls for each run left open (``failed=True``).
    """

    #: the library's name in the warnings
    library = "tracking"
    #: the thread's name
    thread_name = "poptune-tracking"
    #: where failed calls are logged
    log = logger
    #: a call that fails again for the same trial is logged at DEBUG, not as a warning
    warn_once = False

    def __init__(self) -> None:
        super().__init__(name=self.thread_name, daemon=True)
        self.calls: queue.Queue[tuple[Any, ...] | None] = queue.Queue()
        self.runs: dict[str, Any] = {}
        self._failed: set[tuple[str, str]] = set()  # (call, trial id) warned about

    def put(self, call: str, trial_id: str, *args: Any) -> None:
        """Queue ``self._<call>(trial_id, *args)``."""
        self.calls.put((call, trial_id, *args))

    def run(self) -> None:
        while True:
            call = self.calls.get()
            if call is None:
                break
            self._make(call)
        for trial_id in list(self.runs):  # runs their trials did not end (an interrupted fit)
            self._make(("end", trial_id, True))

    def _make(self, call: tuple[Any, ...]) -> None:
        try:
            getattr(self, "_" + call[0])(*call[1:])
        except Exception as exc:  # noqa: BLE001 - a logging failure never ends a run
            level = logging.WARNING
            if self.warn_once:
                if (call[0], call[1]) in self._failed:
                    level = logging.DEBUG
                self._failed.add((call[0], call[1]))
            self.log.log(level, "poptune: %s %s for trial %s failed: %s: %s", self.library,
                         call[0], call[1], type(exc).__name__, exc)

    def _end(self, trial_id: str, failed: bool) -> None:
        raise NotImplementedError

    def stop(self, timeout: float) -> bool:
        """Make the queued calls, end the runs still open, then end the thread; wait up to
        ``timeout`` seconds. Returns whether the thread ended in time."""
        self.calls.put(None)
        self.join(max(0.0, timeout))
        return not self.is_alive()


class ThreadedLoggerCallback(LoggerCallback):
    """A :class:`LoggerCallback` whose library calls a :class:`CallThread` makes.

    Subclasses set ``_call_thread`` (the thread's class, or override :meth:`_new_calls`),
    queue calls with ``self._calls().put(...)`` and mark a trial's run as asked for in
    ``self._started``; a trial's run is ended (``"end"``, :meth:`_end_run`) when the trial
    finishes, not when it is about to be retried. ``setup`` runs before the first call (also
    for a callback used outside a fit). Subclasses call ``super().__init__()``.
    """

    _call_thread: type[CallThread] = CallThread
    #: attributes of this process dropped when pickled (besides the thread)
    _runtime_attributes: tuple[str, ...] = ()
    #: it reads no trial files when a trial completes (checkpoints are on disk when reported)
    _reads_no_files = True

    def __init__(self) -> None:
        self._runs: CallThread | None = None
        self._started: set[str] = set()  # trials whose run was asked for and not ended
        self._ready = False

    def __getstate__(self) -> dict[str, Any]:
        """The arguments only (``tuner.pkl`` keeps the callback for ``Tuner.restore``): the
        runs, their thread and the library's module belong to this process."""
        state = dict(self.__dict__)
        for runtime in self._runtime_attributes:
            state.pop(runtime, None)
        state.update(_runs=None, _started=set(), _ready=False)
        return state

    def setup(self, *args: Any, **kwargs: Any) -> None:
        self._ready = True

    def _calls(self) -> CallThread:
        """The thread that makes the calls, started (and the callback set up) at first use."""
        if not self._ready:
            self.setup()
        if self._runs is None or not self._runs.is_alive():
            self._runs = self._new_calls()
            self._runs.start()
        return self._runs

    def _new_calls(self) -> CallThread:
        """A new thread for the calls (not started yet)."""
        return self._call_thread()

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        if trial.status.is_finished():  # not when it is about to be retried
            self._end_run(trial.trial_id, failed)

    def _end_run(self, trial_id: str, failed: bool) -> None:
        """Queue the end of the trial's run."""
        if self._runs is not None:
            self._started.discard(trial_id)
            self._runs.put("end", trial_id, failed)

    def _stop_calls(self, timeout: float) -> bool:
        """End the open runs and the thread, waiting up to ``timeout`` seconds; whether they
        ended in time."""
        runs, self._runs = self._runs, None
        self._started.clear()
        return runs is None or runs.stop(timeout)
