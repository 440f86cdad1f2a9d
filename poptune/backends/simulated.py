"""Run trials in the driver process on simulated time (``TuneConfig(backend="simulated")``).

Each trial runs in its own thread, but only one thread runs at a time: the driver hands the
baton to a trial and waits until the trial blocks (it declared a step's duration with
:func:`poptune.simulation.advance`, or it reported and waits for the runner's answer) or
ends. The backend keeps a queue of wake-ups ordered by simulated time (ties by the order they
were made) and :meth:`SimulatedBackend.poll` moves :attr:`SimulatedBackend.clock` forward to
the next one. Nothing depends on how fast the machine is, so a seeded experiment gives the
same results, in the same order, at the same simulated times, run after run.

The trials run the real worker code (:class:`~poptune.backends._worker.Worker`): function
and class trainables, ``tune.report(metrics, checkpoint=...)``, ``tune.get_checkpoint()``,
``tune.get_context()``, checkpoints persisted as ``checkpoint_000NNN`` directories in the
trial directory, replies continue/stop/pause/save, errors with their traceback, kills.
Trials run in the driver's working directory (the backend does not ``chdir``) and share the
driver's environment variables.

Example:
    >>> import tempfile
    >>> import poptune as tune
    >>> from poptune import simulation
    >>> def train(config):
    ...     for step in range(1, 4):
    ...         simulation.advance(config["s"])  # each step takes s simulated seconds
    ...         tune.report({"loss": 1.0 / step})
    >>> grid = tune.Tuner(
    ...     train, param_space={"s": tune.grid_search([10.0, 60.0])},
    ...     tune_config=tune.TuneConfig(backend="simulated"),
    ...     run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(), verbose=0)).fit()
    >>> sorted(r.metrics["time_total_s"] for r in grid)
    [30.0, 180.0]
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
import pickle
import threading
from collections import deque
from typing import Any, cast

from poptune import session as _session_mod
from poptune import simulation as _simulation
from poptune._validation import bad_value, check_in_range
from poptune.backends._base import (
    Backend,
    DoneEvent,
    ErrorEvent,
    Event,
    LaunchSpec,
    ResultEvent,
    SavedEvent,
    StoppedEvent,
)
from poptune.backends._worker import Worker, _stop
from poptune.checkpoint import Checkpoint
from poptune.clock import SimulatedClock, set_thread_clock
from poptune.exceptions import TuneError
from poptune.session import TuneContext, _Session

__all__ = ["SimulatedBackend"]


class _Killed(BaseException):
    """Unwinds the thread of a killed trial (not an ``Exception``: user code lets it pass)."""


class _SimTrial:
    """One launched trial: its thread, its baton and its mailbox of replies."""

    __slots__ = ("spec", "backend", "thread", "go", "token", "replies", "awaiting",
                 "blocked", "advanced", "declared", "killed", "ended")

    def __init__(self, spec: LaunchSpec, backend: SimulatedBackend) -> None:
        self.spec = spec
        self.backend = backend
        self.thread: threading.Thread | None = None
        self.go = threading.Semaphore(0)
        self.token = 0  # which wake-up the trial waits for (older ones are stale)
        self.replies: deque[str] = deque()
        self.awaiting = False  # blocked until the runner replies
        self.blocked = False  # waiting for the baton
        self.advanced = False  # declared this step's duration already
        self.declared = 0.0  # simulated seconds declared since the last report
        self.killed = False
        self.ended = False  # sent done/stopped/error

    # --- called in the trial's thread ----------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Spend ``seconds`` of simulated time (``poptune.simulation.advance``)."""
        self.advanced = True
        self.declared += seconds
        if seconds > 0:
            backend = self.backend
            self.token = token = next(backend._tokens)
            backend._push(backend.clock.monotonic() + seconds, self, token)
            backend._block(self)


class _SimConn:
    """The worker's connection to the driver, in process: sending queues an event, receiving
    waits (without the baton) for the runner's reply."""

    def __init__(self, backend: SimulatedBackend, trial: _SimTrial) -> None:
        self._backend, self._trial = backend, trial

    def send(self, msg: tuple[Any, ...]) -> None:
        self._backend._emit(self._trial, msg)

    def recv(self) -> Any:
        return self._backend._await_reply(self._trial)

    def poll(self, timeout: float = 0.0) -> bool:
        """Nothing arrives unasked: every trial's results are answered, none is sent ahead."""
        return False


class _SimSession(_Session):
    """A session whose time keys read the simulated clock and whose steps take
    ``step_time`` unless the trial declared their duration."""

    _sim_trial: _SimTrial
    _declared = 0.0

    def report(self, metrics: dict[str, Any], checkpoint: Checkpoint | None = None) -> None:
        trial = self._sim_trial
        if not trial.advanced:
            trial.advance(trial.backend.step_time)
        trial.advanced = False
        self._declared, trial.declared = trial.declared, 0.0
        super().report(metrics, checkpoint)

    def _iteration_time(self, now: float) -> float:
        # what the trial declared (0.2 after advance(0.2), not a difference of readings
        # such as 0.19999999999999996)
        return self._declared


class _SimWorker(Worker):
    sets_process_session = False  # several trials share the process: one session per thread

    def __init__(self, backend: SimulatedBackend, trial: _SimTrial) -> None:
        super().__init__(cast(Any, _SimConn(backend, trial)), agent_id="simulated",
                         manage_process=False)
        self.blobs = backend._blobs
        self._backend, self._trial = backend, trial
        self.session_clock = backend.clock.time

    session_type = _SimSession

    def _new_session(self, ctx: TuneContext, channel: Any, spec: LaunchSpec) -> _Session:
        sess = super()._new_session(ctx, channel, spec)
        cast(_SimSession, sess)._sim_trial = self._trial
        return sess

    # ``reuse_actors``: the Trainables of ended trials are kept by the backend (a pool, as
    # Ray's cached actors) rather than by this one-trial worker
    def _take_cached(self, cls: Any, resources: dict[str, float]) -> Any:
        pool = self._backend._cached
        for i, (kept_cls, kept_resources, inst) in enumerate(pool):
            if kept_cls is cls and kept_resources == resources:
                del pool[i]
                return inst
        return None

    def _keep_cached(self, cls: Any, resources: dict[str, float], inst: Any) -> None:
        self._backend._cached.append((cls, dict(resources), inst))


def _from_env(name: str, default: float, accepted: str) -> float:
    """The number in environment variable ``name``, or ``default`` if it is unset or empty."""
    env = os.environ.get(name)
    try:
        return float(env) if env else default
    except ValueError:
        raise bad_value(name, env, accepted) from None


class SimulatedBackend(Backend):
    """Trials in the driver process, on simulated time.

    Args:
        num_cpus: CPUs the simulated machine offers (default 2, env ``POPTUNE_NUM_CPUS``);
            with 1 CPU per trial, that many trials run at once.
        num_gpus: GPUs it offers (default 0, env ``POPTUNE_NUM_GPUS``).
        step_time: simulated seconds a step takes when the trainable does not say (with
            :func:`poptune.simulation.advance`) before it reports.
        start: the simulated clock's first reading.

    Attributes:
        clock: the :class:`~poptune.clock.SimulatedClock` every trial and the runner read.
    """

    #: trials share the driver's process: no ``chdir``, no per-trial environment
    separate_processes = False
    #: :meth:`poll` counts simulated seconds: the runner polls until the controller's next
    #: deadline rather than every half second
    simulated_time = True

    def __init__(self, num_cpus: float | None = None, num_gpus: float | None = None,
                 step_time: float = 1.0, start: float = 0.0) -> None:
        if num_cpus is None:
            num_cpus = _from_env("POPTUNE_NUM_CPUS", 2.0, "a number of CPUs")
        if num_gpus is None:
            num_gpus = _from_env("POPTUNE_NUM_GPUS", 0.0, "a number of GPUs")
        check_in_range("num_cpus", num_cpus, 0, low_open=True)
        check_in_range("num_gpus", num_gpus, 0)
        check_in_range("step_time", step_time, 0)
        if not math.isfinite(step_time):
            raise bad_value("step_time", step_time, "a finite number of seconds >= 0")
        self._cpus, self._gpus = float(num_cpus), float(num_gpus)
        self.step_time = float(step_time)
        self.clock = SimulatedClock(start)
        self._blobs: dict[str, Any] = {}
        #: ``reuse_actors``: (trainable, resources, instance) of ended class trials
        self._cached: list[tuple[Any, dict[str, float], Any]] = []
        self._trials: dict[str, _SimTrial] = {}
        self._heap: list[tuple[float, int, int, _SimTrial]] = []
        self._seq = itertools.count()
        self._tokens = itertools.count(1)
        self._events: list[Event] = []
        self._back = threading.Semaphore(0)  # a trial hands the baton back to the driver

    def __getstate__(self) -> dict[str, Any]:
        """Pickles as its settings and clock (``TuneConfig(backend=...)`` is saved for
        restore); running trials are not part of it."""
        return {"num_cpus": self._cpus, "num_gpus": self._gpus, "step_time": self.step_time,
                "now": self.clock.monotonic()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["num_cpus"], state["num_gpus"],  # type: ignore[misc]
                      state["step_time"], state["now"])

    def resume_clock(self, last_time: float) -> None:
        """Continue a restored experiment's clock from ``last_time`` (the latest
        :meth:`~poptune.clock.Clock.time` its journal holds) rather than from where the clock
        stood when the experiment was saved: the resumed run's times follow the old ones."""
        offset = self.clock.time() - self.clock.monotonic()
        if last_time - offset > self.clock.monotonic():
            self.clock.advance_to(last_time - offset)

    def __repr__(self) -> str:
        return (f"SimulatedBackend(num_cpus={self._cpus:g}, num_gpus={self._gpus:g}, "
                f"step_time={self.step_time:g}, now={self.clock.monotonic():g})")

    # --- Backend API ----------------------------------------------------------------------
    def setup(self, blobs: dict[str, bytes], max_concurrent: int) -> None:
        import cloudpickle

        self._drop_cached()  # a new experiment: its trainable is another
        self._blobs = {k: cloudpickle.loads(v) for k, v in blobs.items()}

    def total_resources(self) -> dict[str, Any]:
        return {"cpu": self._cpus, "gpu": self._gpus}

    def launch(self, spec: LaunchSpec) -> None:
        if spec.trial_id in self._trials:
            raise TuneError(f"trial {spec.trial_id} is already running on the simulated backend")
        if not self._blobs:
            raise TuneError("SimulatedBackend.launch() needs setup(blobs, ...) first")
        trial = _SimTrial(spec, self)
        self._trials[spec.trial_id] = trial
        trial.token = token = next(self._tokens)
        self._push(self.clock.monotonic(), trial, token)

    def reply(self, trial_id: str, decision: str) -> None:
        trial = self._trials.get(trial_id)
        if trial is None:
            return
        trial.replies.append(decision)
        if trial.awaiting:
            self._push(self.clock.monotonic(), trial, trial.token)

    def poll(self, timeout: float | None) -> list[Event]:
        """Run the trials due next, in simulated-time order, until some produce events.

        The clock moves to the first wake-up that produces events, but by at most
        ``timeout`` simulated seconds (``None`` or ``math.inf``: no limit); then every trial
        due at that same time runs too. Returns ``[]`` at once, the clock unmoved, when no
        trial can run (all wait for replies, or none is launched).
        """
        if timeout is None:
            timeout = math.inf
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (
                timeout >= 0):
            raise bad_value("timeout", timeout, "None or a number of seconds >= 0")
        limit = self.clock.monotonic() + timeout
        while not self._events:
            if not self._next_due(limit):
                return []
        now = self.clock.monotonic()
        while self._next_due(now):  # everything else due at the same simulated time
            pass
        events, self._events = self._events, []
        return events

    def kill(self, trial_id: str) -> None:
        trial = self._trials.pop(trial_id, None)
        if trial is None:
            return
        trial.killed = True
        self._unwind(trial)

    def shutdown(self) -> None:
        for trial_id in list(self._trials):
            self.kill(trial_id)
        self._drop_cached()
        self._heap.clear()
        self._events.clear()

    def _drop_cached(self) -> None:
        """Stop the kept Trainables (their ``cleanup``), as Ray removes its cached actors."""
        cached, self._cached = self._cached, []
        for _, _, inst in cached:
            _stop(inst)

    # --- the event loop (driver side) -------------------------------------------------------
    def _push(self, when: float, trial: _SimTrial, token: int) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), token, trial))

    def _next_due(self, limit: float) -> bool:
        """Run the next live wake-up due by ``limit``; False (the clock moved to ``limit``
        when finite) when there is none."""
        heap = self._heap
        while heap:
            when, _, token, trial = heap[0]
            if when > limit:
                break
            heapq.heappop(heap)
            if trial.killed or trial.ended or token != trial.token:
                continue  # stale: the trial ended, was killed or was woken already
            if when > self.clock.monotonic():
                self.clock.advance_to(when)
            self._run(trial)
            return True
        if heap and math.isfinite(limit) and limit > self.clock.monotonic():
            self.clock.advance_to(limit)
        return False

    def _run(self, trial: _SimTrial) -> None:
        """Hand the baton to ``trial`` and wait until it blocks or ends."""
        if trial.thread is None:
            trial.thread = threading.Thread(target=self._main, args=(trial,), daemon=True,
                                            name=f"poptune-sim-{trial.spec.trial_id}")
            trial.thread.start()
        else:
            trial.go.release()
        try:
            self._back.acquire()
        except BaseException:  # Ctrl-C while the trial ran: let it stop, then unwind it
            trial.killed = True
            self._trials.pop(trial.spec.trial_id, None)
            self._back.acquire()
            self._unwind(trial)
            raise

    def _unwind(self, trial: _SimTrial) -> None:
        """End a killed trial's thread (it raises ``_Killed`` where it waits)."""
        thread = trial.thread
        if thread is not None and thread.is_alive() and trial.blocked:
            trial.go.release()
            self._back.acquire()
            thread.join()

    # --- called in trial threads ----------------------------------------------------------
    def _main(self, trial: _SimTrial) -> None:
        _simulation._local.trial = trial
        set_thread_clock(self.clock)
        try:
            if not trial.killed:
                _SimWorker(self, trial).run_trial(trial.spec)
        except _Killed:
            pass
        finally:
            _simulation._local.trial = None
            set_thread_clock(None)
            _session_mod._local.session = None
            trial.blocked = False
            self._back.release()

    def _block(self, trial: _SimTrial) -> None:
        """Give the baton back to the driver until this trial is woken."""
        if trial.killed:
            raise _Killed()
        trial.blocked = True
        self._back.release()
        trial.go.acquire()
        trial.blocked = False
        if trial.killed:
            raise _Killed()

    def _await_reply(self, trial: _SimTrial) -> str:
        while not trial.replies:
            trial.token = next(self._tokens)
            trial.awaiting = True
            try:
                self._block(trial)
            finally:
                trial.awaiting = False
        return trial.replies.popleft()

    def _emit(self, trial: _SimTrial, msg: tuple[Any, ...]) -> None:
        if trial.killed:
            return
        kind, trial_id = msg[0], msg[1]
        event: Event
        if kind == "result":
            # a copy, as a worker process's result is: the trainable may reuse its objects
            event = ResultEvent(trial_id, pickle.loads(pickle.dumps(msg[2], protocol=-1)))
        elif kind == "saved":
            event = SavedEvent(trial_id, msg[2])
        else:
            trial.ended = True
            if self._trials.get(trial_id) is trial:
                del self._trials[trial_id]
            if kind == "done":
                event = DoneEvent(trial_id)
            elif kind == "stopped":
                event = StoppedEvent(trial_id)
            elif kind == "error":
                event = ErrorEvent(trial_id, msg[2], msg[3])
            else:
                raise TuneError(f"unexpected message from a simulated trial: {kind!r}")
        self._events.append(event)

