"""Shared machinery of backends whose workers connect back to the driver.

A worker ("agent") is started by the backend: a local process, a Ray actor or a Dask task. It
connects to the driver's listener, says ``("ready", agent_id)``, and then serves trials over
that connection with the same protocol everywhere (see ``_worker.py``). The backend only
decides how agents are started, watched and killed; everything else lives here.

Launching never blocks: a trial waits in a queue until an agent with the right resource shape
is connected and idle, and ``poll`` accepts new connections as they arrive.
"""

from __future__ import annotations

import abc
import logging
import os
import pickle
import secrets
import select
import struct
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, Listener
from multiprocessing.reduction import ForkingPickler
from typing import Any

from poptune.backends._base import (
    Backend,
    DoneEvent,
    ErrorEvent,
    Event,
    LaunchSpec,
    ResultEvent,
    SavedEvent,
    StoppedEvent,
    WorkerLostEvent,
)
from poptune.backends._relay import OUTPUT, LineWriter
from poptune.engine.resources import node_text, resource_shape
from poptune.exceptions import TuneError

logger = logging.getLogger("poptune")

START_TIMEOUT_S = 120.0
#: agents killed while starting that are replaced in a row before the run fails
START_RETRIES = 3
#: messages up to this size are sent with their header in one write (as ``multiprocessing``)
_SMALL_MESSAGE = 16384
_SIZE = struct.Struct("!i")


class Agent(abc.ABC):
    """A started worker, as its backend sees it."""

    @abc.abstractmethod
    def exit_status(self) -> str | None:
        """None while alive; otherwise a short description of how it ended."""

    @abc.abstractmethod
    def kill(self) -> None:
        """End the agent now (best effort)."""

    def killed_from_outside(self) -> bool:
        """Whether the agent, which has exited, was ended by a signal (``kill -9``, the OOM
        killer) rather than by a failure of its own (an import error): another one may start."""
        return False


class BufferedConnection:
    """The driver's end of a worker's connection: reads what has arrived in one system call
    and splits it into messages (``multiprocessing.connection``'s framing), instead of two
    reads per message and a poll to learn whether another one waits. Sends as usual.

    Example:
        >>> from multiprocessing import Pipe
        >>> a, b = Pipe()
        >>> reader = BufferedConnection(a)
        >>> b.send(("result", "t1", {"x": 1})); b.send(("done", "t1"))
        >>> reader.read_available()
        [('result', 't1', {'x': 1}), ('done', 't1')]
        >>> reader.close(); b.close()
    """

    __slots__ = ("conn", "_fd", "_buf", "_poller")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._fd = conn.fileno()
        self._buf = bytearray()
        self._poller: Any = None  # made by the first poll()

    def fileno(self) -> int:
        return self._fd

    def send(self, obj: Any) -> None:
        # plain pickle: ForkingPickler's reducers (sockets, connections) are never needed
        # here, and its per-call Pickler costs twice the pickling of a launch
        self.send_bytes(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))

    def send_bytes(self, data: bytes) -> None:
        """Send one message in ``multiprocessing.connection``'s framing, header and body in
        one write: what ``Connection.send_bytes`` does without its argument checks and
        memoryview (half the cost of sending a trial's launch or result)."""
        if self.conn.closed:  # its descriptor number may belong to another file by now
            raise OSError("handle is closed")
        size = len(data)
        if size > _SMALL_MESSAGE:  # big: no concatenation copy; huge: the long header too
            self.conn.send_bytes(data)
            return
        buf = _SIZE.pack(size) + data
        fd = self._fd
        sent = os.write(fd, buf)
        while sent < len(buf):  # interrupted, or a full buffer: the rest
            sent += os.write(fd, buf[sent:])

    def recv(self) -> Any:
        """The next message, waiting for it (one read for what has arrived, not two reads
        per message)."""
        while True:
            msg = self._next()
            if msg is not None:
                return ForkingPickler.loads(msg)
            self._fill()

    def close(self) -> None:
        self.conn.close()

    def _frame(self) -> tuple[int, int] | None:
        """``(start, size)`` of the first buffered message once its header is complete."""
        buf = self._buf
        if len(buf) < 4:
            return None
        (size,) = _SIZE.unpack_from(buf)
        if size != -1:
            return 4, size
        if len(buf) < 12:  # multiprocessing's header for messages over 2 GiB
            return None
        return 12, struct.unpack_from("!Q", buf, 4)[0]

    def _next(self) -> bytes | None:
        """The next complete message in the buffer (removed from it), or None."""
        frame = self._frame()
        if frame is None or len(self._buf) < frame[0] + frame[1]:
            return None
        start, size = frame
        msg = bytes(self._buf[start:start + size])
        del self._buf[:start + size]
        return msg

    def _fill(self) -> None:
        chunk = os.read(self._fd, 1 << 16)  # blocks only if nothing has arrived
        if not chunk:
            raise EOFError("the worker closed its connection")
        self._buf += chunk

    def poll(self, timeout: float = 0.0) -> bool:
        """Whether a message has arrived or is arriving (waiting up to ``timeout``): one
        system call (a worker whose results go unanswered asks after every report)."""
        if self._buf:
            return True
        if self._poller is None:
            self._poller = select.poll()
            self._poller.register(self._fd, select.POLLIN)
        return bool(self._poller.poll(max(0.0, timeout) * 1000.0))

    def has_message(self) -> bool:
        """Whether a complete message is buffered already (``wait`` cannot see it)."""
        frame = self._frame()
        return frame is not None and len(self._buf) >= frame[0] + frame[1]

    def read_available(self) -> list[Any]:
        """Every message that has arrived (reading once; completing a partial message)."""
        if not self.has_message():
            self._fill()
        out: list[Any] = []
        while True:
            msg = self._next()
            if msg is None:
                if not self._buf:
                    return out
                self._fill()  # the rest of a message that is arriving
                continue
            out.append(ForkingPickler.loads(msg))


def wait(objects: list[Any], timeout: float) -> list[Any]:
    """The objects (with ``fileno()``) that are readable within ``timeout`` seconds: one
    ``poll(2)``, without the selector objects ``multiprocessing.connection.wait`` builds on
    every call (the driver waits once per loop pass)."""
    poller = select.poll()
    by_fd: dict[int, Any] = {}
    for obj in objects:
        fd = obj.fileno()
        by_fd[fd] = obj
        poller.register(fd, select.POLLIN)
    return [by_fd[fd] for fd, _ in poller.poll(max(0.0, timeout) * 1000.0)]


@dataclass
class _Handle:
    agent: Agent
    conn: BufferedConnection
    shape: tuple[Any, ...]
    trial_id: str | None = None
    #: the trial sent ahead to it (:meth:`ConnectionBackend.launch_after`), not started yet,
    #: its number in the agent's :class:`~poptune.backends._ahead.AheadSlot`, and the slot
    queued: str | None = None
    queued_number: int = 0
    slot: Any = None
    #: the end of its last trial, if it returned and the agent has been idle since: a trial
    #: sent ahead after that one still starts there (the worker takes it when it arrives)
    done: DoneEvent | None = None
    #: when its last trial ended (``time.monotonic()``)
    idle_since: float = 0.0


#: an agent idle for longer than this is checked for life before it gets a trial (one that
#: just sent a trial's end is alive: the check, a system call, is skipped for it; a send to
#: one that died meanwhile fails and the trial goes to another agent)
_CHECK_IDLE_AFTER_S = 1.0


@dataclass
class _Starting:
    agent: Agent
    shape: tuple[Any, ...]
    started: float = field(default_factory=time.monotonic)
    #: what its trials ask for (for the message when it never starts)
    resources: dict[str, float] = field(default_factory=dict)
    #: whether the warning that it has not started yet was given
    warned: bool = False


class ConnectionBackend(Backend):
    """Base of the local, Ray and Dask backends."""

    #: whether the backend places trials on devices itself (then the runner leaves
    #: ``CUDA_VISIBLE_DEVICES`` alone)
    assigns_devices = False
    #: whether the worker may change directory into the trial dir (separate processes only)
    separate_processes = True
    #: the workers read a stop or pause sent unasked at a trial's next result
    unanswered_results = True
    #: a cluster (Ray, Dask) starts an agent when one of its nodes has the resources free:
    #: one still waiting after :data:`START_TIMEOUT_S` is warned about and waited for, as
    #: Ray Tune waits for a trial's actor (on this machine it is a failure)
    placed_by_cluster = False

    def __init__(self) -> None:
        self._authkey = secrets.token_bytes(16)
        self._listener: Listener | None = None
        self._workers: list[_Handle] = []
        self._by_trial: dict[str, _Handle] = {}
        self._starting: dict[str, _Starting] = {}
        self._queue: list[LaunchSpec] = []
        #: numbers of the trials offered in agents' slots (launch ahead)
        self._ahead_numbers = 0
        #: agents killed while starting since the last one that connected
        self._start_failures = 0
        self._register_msg: tuple[Any, ...] | None = None
        #: writes the lines Dask trials print (made with the first of them)
        self._line_writer: LineWriter | None = None
        self._init_msg: tuple[Any, ...] = ("init",) + self._init_payload()

    # --- to implement -------------------------------------------------------------------
    @abc.abstractmethod
    def _listen(self) -> Listener:
        """Open the listener agents connect to."""

    @abc.abstractmethod
    def _start_agent(self, agent_id: str, resources: dict[str, float]) -> Agent:
        """Start one agent that will connect with ``agent_id``."""

    def _init_payload(self) -> tuple[Any, ...]:
        import os
        import sys

        return (list(sys.path), os.getcwd())

    # --- agents -------------------------------------------------------------------------
    def _ensure_listener(self) -> Listener:
        if self._listener is None:
            self._listener = self._listen()
        return self._listener

    def start_agents(self, n: int, resources: dict[str, float]) -> None:
        """Start ``n`` agents for trials of this resource shape (non-blocking)."""
        self._ensure_listener()
        shape = self._shape(resources)
        for _ in range(n):
            agent_id = secrets.token_hex(8)
            self._starting[agent_id] = _Starting(self._start_agent(agent_id, resources), shape,
                                                 resources=dict(resources))

    def _accept_ready(self, block_s: float = 0.0) -> None:
        """Adopt agents that connected (waiting up to ``block_s`` for the first)."""
        listener = self._ensure_listener()
        sock = listener._listener._socket  # type: ignore[attr-defined]
        deadline = time.monotonic() + block_s
        while self._starting:
            remaining = deadline - time.monotonic()
            sock.settimeout(max(0.0, min(remaining, 1.0)) if remaining > 0 else 0.0)
            try:
                conn = listener.accept()
            except (BlockingIOError, OSError):
                self._check_starting()
                if time.monotonic() >= deadline:
                    return
                continue
            try:
                kind, agent_id = conn.recv()
            except (EOFError, OSError):
                continue
            pending = self._starting.pop(str(agent_id), None)
            if pending is None:
                conn.close()
                continue
            conn.send(self._init_msg)
            if self._register_msg is not None:
                conn.send(self._register_msg)
            self._workers.append(_Handle(pending.agent, BufferedConnection(conn), pending.shape))
            self._start_failures = 0
            deadline = time.monotonic()  # got one: do not wait for more

    def _check_starting(self) -> None:
        """A starting agent that was killed from outside is replaced (the trial waiting for
        it starts on the next one), up to :data:`START_RETRIES` times in a row; one that
        failed on its own ends the run with a :class:`TuneError`, and so does one not
        started after :data:`START_TIMEOUT_S`, except on a cluster (see
        :attr:`placed_by_cluster`): there it is warned about once and waited for."""
        now = time.monotonic()
        for agent_id, pending in list(self._starting.items()):
            status = pending.agent.exit_status()
            if status is None and now - pending.started <= START_TIMEOUT_S:
                continue
            if status is None and self.placed_by_cluster:
                if not pending.warned:
                    pending.warned = True
                    self._warn_not_started(pending)
                continue
            if (status is not None and pending.agent.killed_from_outside()
                    and self._start_failures < START_RETRIES):
                self._start_failures += 1
                del self._starting[agent_id]
                logger.warning("poptune: a worker was killed while it started (%s); starting "
                               "another", status)
                continue
            for other in self._starting.values():
                other.agent.kill()
            self._starting.clear()
            if status is None:  # a cluster may lack a node with that much free
                wanted = {k: v for k, v in pending.resources.items() if v}
                raise TuneError(
                    f"a poptune worker for trials asking for {wanted} did not start within "
                    f"{START_TIMEOUT_S:g} s: its process did not connect to the driver (an "
                    "overloaded machine, or a start that hangs); see the output above"
                ) from None
            raise TuneError(
                f"a poptune worker failed to start ({status}); see its output above"
            ) from None

    def _warn_not_started(self, pending: _Starting) -> None:
        """Say that a cluster has not started an agent within :data:`START_TIMEOUT_S`, with
        what its trials ask for and the cluster's nodes (the run goes on waiting)."""
        wanted = {k: v for k, v in pending.resources.items() if v}
        try:
            offer = self.total_resources()
            nodes = "; ".join(node_text(n) for n in offer.get("nodes") or ()) or "none"
            where = offer.get("where", "the cluster")
        except Exception as exc:  # noqa: BLE001 - the message must not end the run
            nodes, where = f"not known ({type(exc).__name__}: {exc})", "the cluster"
        logger.warning(
            "poptune: a worker for trials asking for %s has not started within %g s: %s "
            "starts it when one node has that much free, which another program's tasks, "
            "idle workers of other trials or its own placement may delay (its nodes: %s). "
            "poptune waits for it, as Ray Tune waits for a trial's actor; the trial starts "
            "then.", wanted, START_TIMEOUT_S, where, nodes)

    def _drop(self, worker: _Handle) -> None:
        if worker in self._workers:
            self._workers.remove(worker)
        if worker.trial_id is not None:
            self._by_trial.pop(worker.trial_id, None)
        if worker.queued is not None:  # dies with it
            self._by_trial.pop(worker.queued, None)
        if worker.slot is not None:
            worker.slot.close()
            worker.slot = None
        try:
            worker.conn.close()
        except OSError:
            pass
        worker.agent.kill()

    def _dispatch(self) -> None:
        """Send queued trials to idle agents of the right shape; start agents if needed."""
        if not self._queue:
            return
        checked_before = time.monotonic() - _CHECK_IDLE_AFTER_S
        for w in list(self._workers):
            if (w.trial_id is None and w.idle_since < checked_before
                    and w.agent.exit_status() is not None):
                self._drop(w)  # an idle agent that died is replaced; no trial is charged
        still: list[LaunchSpec] = []
        starting_by_shape: dict[tuple[Any, ...], int] = {}
        for s in self._starting.values():
            starting_by_shape[s.shape] = starting_by_shape.get(s.shape, 0) + 1
        for spec in self._queue:
            shape = self._shape(spec.resources)
            worker = next((w for w in self._workers
                           if w.trial_id is None and w.shape == shape), None)
            if worker is None:
                if starting_by_shape.get(shape, 0) > 0:
                    starting_by_shape[shape] -= 1
                else:
                    idle_other = next((w for w in self._workers if w.trial_id is None), None)
                    if idle_other is not None and not self._reuse_across_shapes():
                        self._drop(idle_other)  # free its resources for the new shape
                    self.start_agents(1, spec.resources)
                still.append(spec)
                continue
            try:
                worker.conn.send(("start", spec))
            except OSError:  # it died since its last trial: replaced; no trial is charged
                self._drop(worker)
                self.start_agents(1, spec.resources)
                still.append(spec)
                continue
            worker.trial_id = spec.trial_id
            worker.done = None
            self._by_trial[spec.trial_id] = worker
        self._queue = still

    def _reuse_across_shapes(self) -> bool:
        return True

    def _shape(self, resources: dict[str, float]) -> tuple[Any, ...]:
        """Agents are reused for trials of the same shape (all trials, by default)."""
        return resource_shape(resources)

    # --- Backend API ----------------------------------------------------------------------
    def setup(self, blobs: dict[str, bytes], max_concurrent: int) -> None:
        self._ensure_listener()
        self._register_msg = ("register", blobs)
        for w in self._workers:  # connected before the blobs existed
            w.conn.send(self._register_msg)

    def launch(self, spec: LaunchSpec) -> None:
        self._queue.append(spec)
        self._accept_ready(0.0)
        self._dispatch()

    def _slot_path(self, worker: _Handle) -> str | None:
        """Where ``worker``'s :class:`~poptune.backends._ahead.AheadSlot` lives (None: this
        backend does not queue ahead)."""
        return None

    def _offer(self, worker: _Handle, spec: LaunchSpec, after: str,
               committed: bool = False) -> bool:
        """Send ``spec`` to start after ``after``: offered in the agent's slot (the driver may
        take it back until the agent claims it), or ``committed`` (number 0: the agent,
        idle since ``after`` returned, just starts it)."""
        number, slot = 0, worker.slot
        if not committed:
            if slot is None:
                from poptune.backends._ahead import AheadSlot

                path = self._slot_path(worker)
                if path is None:
                    return False
                slot = worker.slot = AheadSlot(path, create=True)
            self._ahead_numbers += 1
            number = self._ahead_numbers
            slot.offer(number)
        try:
            worker.conn.send(("queue", spec, after, number, slot and slot.path))
        except OSError:
            return False  # dead: its end is a lost worker
        worker.queued_number = number
        return True

    def launch_after(self, spec: LaunchSpec, trial_id: str) -> None:
        worker = self._by_trial.get(trial_id)
        if worker is not None and worker.trial_id == trial_id and worker.queued is None:
            if self._offer(worker, spec, trial_id):
                worker.queued = spec.trial_id
                self._by_trial[spec.trial_id] = worker
            return
        # it returned already (its DoneEvent is on its way to the controller): the worker,
        # idle since, takes the trial when it arrives, and that event says so
        worker = next((w for w in self._workers if w.done is not None
                       and w.done.trial_id == trial_id), None)
        if worker is None or worker.done is None or not self._offer(worker, spec, trial_id,
                                                                     committed=True):
            return  # it ended otherwise, or its worker has another trial: none starts
        worker.done.continued = worker.trial_id = spec.trial_id
        worker.done = None
        self._by_trial[spec.trial_id] = worker

    def take_back(self, trial_id: str) -> bool:
        worker = self._by_trial.get(trial_id)
        if worker is None:
            return True  # never sent, or its worker is gone
        if worker.queued != trial_id:
            return False  # its worker runs it
        if not worker.slot.take(worker.queued_number):
            return False  # claimed: the end of the trial before says so
        worker.queued = None
        del self._by_trial[trial_id]
        return True

    def reply(self, trial_id: str, decision: str) -> None:
        worker = self._by_trial.get(trial_id)
        if worker is None:
            return
        try:
            worker.conn.send(decision)
        except OSError:
            pass

    def kill(self, trial_id: str) -> None:
        self._queue = [s for s in self._queue if s.trial_id != trial_id]
        worker = self._by_trial.get(trial_id)
        if worker is not None:
            self._drop(worker)

    def poll(self, timeout: float) -> list[Event]:
        if self._queue:
            self._accept_ready(0.0)
            self._dispatch()
        busy = {w.conn: w for w in self._workers if w.trial_id is not None}
        waitables: list[Any] = list(busy)
        listener_sock = None
        if self._starting and self._listener is not None:
            listener_sock = self._listener._listener._socket  # type: ignore[attr-defined]
            waitables.append(listener_sock)
        if not waitables:
            if timeout > 0:
                time.sleep(min(timeout, 0.05))
            return []
        events: list[Event] = []
        buffered = [c for c in busy if c.has_message()]
        ready = buffered or wait(waitables, timeout=timeout)
        for obj in ready:
            if obj is listener_sock:
                self._accept_ready(0.0)
                self._dispatch()
                continue
            worker = busy[obj]  # type: ignore[index]
            trial_id = worker.trial_id
            assert trial_id is not None
            try:
                for msg in worker.conn.read_available():
                    event = self._to_event(worker, msg)
                    if event is not None:
                        events.append(event)
            except (EOFError, OSError):
                status = self._wait_exit(worker.agent)
                self._drop(worker)
                events.append(WorkerLostEvent(trial_id, f"worker {status}"))
        if self._queue:
            self._dispatch()
        return events

    @staticmethod
    def _wait_exit(agent: Agent, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = agent.exit_status()
            if status is not None:
                return status
            time.sleep(0.01)
        return "lost its connection"

    def _to_event(self, worker: _Handle, msg: tuple[Any, ...]) -> Event | None:
        """The event a worker's message is, or None (lines a Dask trial printed: written)."""
        kind, trial_id = msg[0], msg[1]
        if kind == "result":
            return ResultEvent(trial_id, msg[2])
        if kind == "saved":
            return SavedEvent(trial_id, msg[2])
        if kind == OUTPUT:  # ("output", trial_id, pid, name, [(is_err, lines), ...])
            self._write_output(msg[2], msg[3], msg[4])
            return None
        self._by_trial.pop(trial_id, None)  # the trial is over: the agent is free again
        worker.trial_id = None
        worker.idle_since = time.monotonic()
        queued, worker.queued = worker.queued, None
        if queued is not None:
            # after a return the worker starts the trial sent ahead if it claims it: at the
            # end (the message says so), or later if it arrives late, unless taken back now
            if kind == "done" and ((len(msg) > 2 and msg[2])
                                   or not worker.slot.take(worker.queued_number)):
                worker.trial_id = queued
                return DoneEvent(trial_id, queued)
            self._by_trial.pop(queued, None)  # it dropped it, or never will start it
        if kind == "done":
            worker.done = DoneEvent(trial_id)
            return worker.done
        if kind == "stopped":
            return StoppedEvent(trial_id)
        if kind == "error":
            return ErrorEvent(trial_id, msg[2], msg[3])
        raise TuneError(f"unexpected message from worker: {kind!r}")

    def _write_output(self, pid: int, name: str, chunks: list[tuple[bool, str]]) -> None:
        """Write lines a Dask trial printed as the local relay writes a worker's."""
        writer = self._line_writer
        if writer is None:
            writer = self._line_writer = LineWriter()
        for is_err, text in chunks:
            writer.write(name, pid, is_err, text)

    def shutdown(self) -> None:
        for w in list(self._workers):
            try:
                w.conn.send(("shutdown",))
            except OSError:
                pass
        deadline = time.monotonic() + 2.0
        for w in list(self._workers):
            while w.agent.exit_status() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            self._drop(w)
        for pending in self._starting.values():
            pending.agent.kill()
        self._starting.clear()
        self._workers.clear()
        self._by_trial.clear()
        self._queue.clear()
        try:
            self._cleanup()
        finally:
            self._close_listener()

    def _close_listener(self) -> None:
        """Close the listener, last: on this machine :meth:`_cleanup` has removed its socket
        with the socket's directory already (see there)."""
        listener, self._listener = self._listener, None
        if listener is None:
            return
        try:
            listener.close()
        except FileNotFoundError:  # its socket file, removed with its directory
            pass

    def _cleanup(self) -> None:
        """Release backend-specific resources once the agents are gone, before the listener
        is closed: the local backend removes its socket's directory here, socket included,
        while it still holds the directory's lock. (Closing the listener first would unlink
        the socket and leave the directory empty until then, for as long as the output relay
        takes to close: a driver killed meanwhile would leave an empty, unlocked directory,
        which later drivers only remove once it is a minute old.)"""
