"""What workers print, relayed through the driver with Ray's prefix.

A local worker process's stdout and stderr are pipes; one driver thread (a ``selectors`` loop) drains all
of them as data arrives, so a worker never blocks on a full pipe, and writes every complete
line to the driver's *current* ``sys.stdout`` / ``sys.stderr`` (looked up at write time: rich's
``Live`` redirection puts the lines above its table), prefixed as Ray prefixes them:

    (train_fn pid=1234) hello

The name is the trainable's (a function's ``__name__``, a class's name), announced by the worker
in its own stream (an in-band marker line, as Ray's ``:actor_name:`` lines in its log files), so
a line is named after the trainable that ran when it was written, also when a worker serves
trials of several experiments. Before a worker knows its trainable, its lines read
``(pid=1234) ...``, as Ray's for a process without a task or actor name. A partial line is
held until its newline, or written when its worker's stream ends; only this thread writes, so
lines of two workers never interleave within a line.

As Ray: ``RAY_DISABLE_WORKER_LOG_PREFIX=1`` drops the prefix, ``RAY_COLOR_PREFIX=0`` never
colours it, ``RAY_COLOR_PREFIX=1`` colours it by pid. Otherwise it is cyan in a terminal only
(Ray colours it into files and pipes too). Ray's duplicate-line folding ("[repeated 3x across
cluster]") is not copied: every line is written.

Dask agents (a child process of each Dask task, whose output would otherwise land in the Dask
worker's log) capture what each trial's threads print and send it over their connection
instead (the second half of this module); the driver writes those lines with the same
:class:`LineWriter`, named after the trial's trainable and prefixed with the agent's pid. (On
Ray, Ray's log monitor relays what the actors print.)
"""

from __future__ import annotations

import contextlib
import os
import pickle
import secrets
import selectors
import sys
import threading
import time
from typing import Any

#: the marker line a worker writes to its stdout and stderr to name what it runs next:
#: ``MARKER + name + b"\n"`` (the NUL keeps it apart from anything a trial prints)
MARKER = b"\x00poptune-relay-name:"
#: the line start by which a Ray worker names its actor to Ray's log monitor (Ray's
#: ``ray_constants.LOG_PREFIX_ACTOR_NAME``)
RAY_ACTOR_NAME = b":actor_name:"
#: a line longer than this without a newline is written in pieces (bounded memory)
_MAX_LINE = 1 << 16
_READ = 1 << 16
#: at most this long (seconds) is spent reading what the pipes hold when the relay closes
_CLOSE_DRAIN_S = 2.0
_CYAN = "\x1b[36m"
_RESET = "\x1b[0m"
#: Ray's ``RAY_COLOR_PREFIX=1`` palette (colorama's magenta, cyan, green, light black, light
#: blue, light magenta), picked by pid
_PALETTE = ("\x1b[35m", "\x1b[36m", "\x1b[32m", "\x1b[90m", "\x1b[94m", "\x1b[95m")


def announce(name: str, marker: bytes = MARKER) -> None:
    """In a worker whose output is relayed: name what it runs from now on (its trainable).

    ``marker`` starts the line that says so: :data:`MARKER` for this module's relay,
    :data:`RAY_ACTOR_NAME` in a Ray actor, whose output Ray's log monitor prefixes with the
    name it reads from such a line (as it does for Ray Tune's trainable actors).
    """
    line = marker + name.replace("\n", " ").encode("utf-8", "replace") + b"\n"
    for fd, stream in ((1, sys.stdout), (2, sys.stderr)):
        with contextlib.suppress(Exception):
            stream.flush()  # what was printed before goes out under the old name
        with contextlib.suppress(OSError):
            os.write(fd, line)


class LineWriter:
    """Writes a worker's complete lines to the driver's *current* ``sys.stdout`` /
    ``sys.stderr``, each prefixed as Ray prefixes them: ``(train_fn pid=1234) hello``, or
    ``(pid=1234) hello`` without a name (the prefix switches are read when it is made).
    Used by :class:`OutputRelay` (local workers) and for the ``"output"`` messages of Dask
    agents (``_conn.py``).

    Example:
        >>> LineWriter().write("train_fn", 1234, False, "hello\\nworld\\n")
        (train_fn pid=1234) hello
        (train_fn pid=1234) world
    """

    __slots__ = ("_plain", "_color_env")

    def __init__(self) -> None:
        self._plain = os.environ.get("RAY_DISABLE_WORKER_LOG_PREFIX", "").lower() in ("1", "true")
        self._color_env = os.environ.get("RAY_COLOR_PREFIX")

    def write(self, name: str, pid: int, is_err: bool, text: str) -> None:
        """Write ``text``, one or more lines that end with a newline, to ``sys.stderr`` if
        ``is_err`` else ``sys.stdout``; a broken or missing stream drops them."""
        if "\r\n" in text:
            text = text.replace("\r\n", "\n")
        out = sys.stderr if is_err else sys.stdout
        if out is None:
            return
        if not self._plain:
            prefix = self._prefix(name, pid, out)
            text = prefix + text[:-1].replace("\n", "\n" + prefix) + "\n"
        try:
            try:
                out.write(text)
            except UnicodeEncodeError:
                enc = getattr(out, "encoding", None) or "ascii"
                out.write(text.encode(enc, "replace").decode(enc))
            out.flush()
        except Exception:  # noqa: BLE001 - a closed or broken stream: the lines are dropped
            pass

    def _prefix(self, name: str, pid: int, out: Any) -> str:
        head = f"({name} pid={pid})" if name else f"(pid={pid})"
        env = self._color_env
        if env == "0":
            return head + " "
        if env == "1":
            return f"{_PALETTE[pid % len(_PALETTE)]}{head}{_RESET} "
        try:
            tty = bool(out.isatty())
        except Exception:  # noqa: BLE001
            tty = False
        return f"{_CYAN}{head}{_RESET} " if tty else head + " "


class _Stream:
    __slots__ = ("pid", "is_err", "name", "buf")

    def __init__(self, pid: int, is_err: bool) -> None:
        self.pid = pid
        self.is_err = is_err
        self.name = ""
        self.buf = b""


class OutputRelay:
    """The driver's relay thread and the pipes it drains.

    Example:
        >>> relay = OutputRelay()
        >>> r, w = os.pipe()
        >>> relay.add(1234, r, None)
        >>> _ = os.write(w, MARKER + b"train_fn\\nhello\\npartial"); os.close(w)
        >>> relay.close()  # what the pipes held is written before it returns
        (train_fn pid=1234) hello
        (train_fn pid=1234) partial
    """

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._pending: list[tuple[int, _Stream]] = []  # added, not yet registered
        self._lock = threading.Lock()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._writer = LineWriter()

    # --- the driver's side ------------------------------------------------------------------
    def add(self, pid: int, stdout_fd: int | None, stderr_fd: int | None) -> None:
        """Relay the read ends of a worker's pipes (the relay closes them)."""
        with self._lock:
            if self._closing:
                for fd in (stdout_fd, stderr_fd):
                    if fd is not None:
                        os.close(fd)
                return
            for fd, is_err in ((stdout_fd, False), (stderr_fd, True)):
                if fd is not None:
                    os.set_blocking(fd, False)
                    self._pending.append((fd, _Stream(pid, is_err)))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="poptune-output-relay",
                                                daemon=True)
                self._thread.start()
        self._wake()

    def close(self, timeout: float = 10.0) -> None:
        """Write everything the pipes hold by now (a partial last line too), close them and
        end the thread. Call it after the workers have exited: a stream still open then (a
        process a trial started that outlives its worker) is cut off."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            thread = self._thread
        self._wake()
        if thread is not None:
            thread.join(timeout)
        if thread is None or not thread.is_alive():
            self._release()

    # --- the relay thread -------------------------------------------------------------------
    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # a full wake pipe wakes the thread anyway
            os.write(self._wake_w, b"x")

    def _run(self) -> None:
        sel = self._selector
        while not self._closing:
            for key, _ in sel.select():
                if key.data is None:
                    with contextlib.suppress(OSError):
                        while os.read(self._wake_r, 4096):
                            pass
                    self._register_pending()
                else:
                    self._read(key.fd, key.data)
        # closing: the workers are gone, so what their pipes hold is all there is to read
        self._register_pending()
        # (bounded: a process a trial left behind may go on printing)
        deadline = time.monotonic() + _CLOSE_DRAIN_S
        while (ready := [key for key, _ in sel.select(0) if key.data is not None]) and (
                time.monotonic() < deadline):
            for key in ready:
                self._read(key.fd, key.data)
        for key in list(sel.get_map().values()):
            if key.data is not None:
                self._end(key.fd, key.data)

    def _register_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for fd, stream in pending:
            self._selector.register(fd, selectors.EVENT_READ, stream)

    def _read(self, fd: int, stream: _Stream) -> None:
        try:
            data = os.read(fd, _READ)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._end(fd, stream)
            return
        buf = stream.buf + data if stream.buf else data
        cut = buf.rfind(b"\n") + 1
        if cut == 0 and len(buf) <= _MAX_LINE:
            stream.buf = buf
            return
        if cut == 0:  # a very long line: written in pieces
            stream.buf = b""
            self._write(stream, buf + b"\n")
            return
        stream.buf = buf[cut:]
        self._write(stream, buf[:cut])

    def _end(self, fd: int, stream: _Stream) -> None:
        """The stream closed (its worker exited): its partial last line goes out."""
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(fd)
        with contextlib.suppress(OSError):
            os.close(fd)
        if stream.buf:
            buf, stream.buf = stream.buf + b"\n", b""
            self._write(stream, buf)

    def _write(self, stream: _Stream, data: bytes) -> None:
        """Write complete lines (``data`` ends with a newline), each prefixed; a name marker
        among them names the lines after it."""
        start = 0
        while (at := data.find(MARKER, start)) >= 0:
            end = data.find(b"\n", at)
            if end < 0:  # cut by a forced piece of a huge line: not a marker
                break
            if at > start:  # a partial line before the marker is a line of its own
                before = data[start:at]
                self._emit(stream, before if before.endswith(b"\n") else before + b"\n")
            stream.name = data[at + len(MARKER):end].decode("utf-8", "replace")
            start = end + 1
        if start < len(data):
            self._emit(stream, data[start:] if start else data)

    def _emit(self, stream: _Stream, data: bytes) -> None:
        self._writer.write(stream.name, stream.pid, stream.is_err,
                           data.decode("utf-8", "replace"))

    def _release(self) -> None:
        for key in list(self._selector.get_map().values()):
            if key.data is not None:
                with contextlib.suppress(OSError):
                    os.close(key.fd)
        with self._lock:
            pending, self._pending = self._pending, []
        for fd, _ in pending:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._selector.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)


# --- a Dask agent's process: what trial threads print, sent over their connections -----------
#
# A Dask agent (a child process of its Dask task; an agent serving in a thread of a process
# would share that process's ``sys.stdout`` with other threads, other agents' included) runs
# its trials in one thread: :func:`install_thread_capture` puts a :class:`_ThreadStream` in place of
# ``sys.stdout`` and ``sys.stderr`` once per process, which keeps a write made by a thread of a
# trial for the driver (in the trial's :class:`_Capture`) and hands any other thread's write to
# the stream it replaced. A trial's threads are the thread that runs it and the threads it
# starts while it runs (a data loader's thread, a thread pool's), found by a wrapper around
# ``threading.Thread.start``; such a thread's writes after its trial ended go to the process's
# own streams (the Dask worker's log). Only Python-level writes to ``sys.stdout`` and
# ``sys.stderr`` are seen: ``os.write(1, ...)``, C code and subprocesses write to the worker's
# file descriptors, and so to its log, as does a logging handler that holds the stream
# ``_ThreadStream`` replaced (Dask's own).
#
# A trial's complete lines go to the driver in ``("output", trial_id, pid, name, chunks)``
# messages on the connection it already has (:class:`RelayedConnection`): the first unsent line
# is sent with what follows it within :data:`_BATCH_S` (by the connection's flusher thread), or
# at once by the printing thread once :data:`_MAX_PENDING` characters wait, and what is pending
# goes out before each message of the trial's own (a result, its end), so the lines printed
# before a result arrive before it. A partial line is held until its newline (at most
# :data:`_MAX_LINE` characters: a longer one is sent in pieces), or sent when the trial ends.

#: identifies this process: an agent that runs in the driver's own process (an in-process
#: Dask cluster) captures nothing, since what it prints is on the driver's console already
PROCESS_TOKEN = secrets.token_hex(8)
#: the printing thread sends its trial's lines itself once this many characters wait
_MAX_PENDING = 1 << 16
#: otherwise the flusher sends them this long (seconds) after the first of them was printed
_BATCH_S = 0.05
#: the kind of the message that carries a trial's lines
OUTPUT = "output"

#: thread ident -> the capture of the trial that thread belongs to (each thread adds and
#: removes its own entry, the trial's thread through its RelayedConnection)
_captures: dict[int, _Capture] = {}
_install_lock = threading.Lock()
_installed = False


class _ThreadStream:
    """Stands in for ``sys.stdout`` / ``sys.stderr`` in a Dask agent's process: a write from a
    trial's thread is kept for the driver; any other goes to the stream it replaced."""

    def __init__(self, stream: Any, is_err: bool) -> None:
        self._stream = stream
        self._is_err = is_err

    def write(self, text: str) -> Any:
        capture = _captures.get(threading.get_ident())
        if capture is None or not capture.add(self._is_err, text):
            return self._stream.write(text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


_thread_start = threading.Thread.start


def _start_in_capture(thread: threading.Thread) -> None:
    """``threading.Thread.start``: a thread started by a trial's thread is the trial's too."""
    capture = _captures.get(threading.get_ident())
    if capture is not None:
        run = thread.run

        def run_captured() -> None:
            ident = threading.get_ident()
            _captures[ident] = capture
            try:
                run()
            finally:
                if _captures.get(ident) is capture:
                    del _captures[ident]

        thread.run = run_captured  # type: ignore[method-assign]
    _thread_start(thread)


def install_thread_capture() -> None:
    """Put :class:`_ThreadStream` in place of ``sys.stdout`` and ``sys.stderr``, and make the
    threads a trial starts its own; once per process (nothing is captured until a
    :class:`RelayedConnection` begins a trial)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        _installed = True
        for name, is_err in (("stdout", False), ("stderr", True)):
            stream = getattr(sys, name)
            if stream is not None and not isinstance(stream, _ThreadStream):
                setattr(sys, name, _ThreadStream(stream, is_err))
        threading.Thread.start = _start_in_capture  # type: ignore[method-assign,assignment]


class _Capture:
    """What the threads of one trial printed and the driver has not got yet."""

    __slots__ = ("relay", "trial_id", "name", "pid", "lock", "parts", "size", "partial",
                 "closed")

    def __init__(self, relay: RelayedConnection, trial_id: str, name: str) -> None:
        self.relay = relay
        self.trial_id = trial_id
        self.name = name
        self.pid = os.getpid()
        self.lock = threading.Lock()
        #: complete lines, in the order written: (is_err, text ending with a newline)
        self.parts: list[tuple[bool, str]] = []
        self.size = 0
        self.partial = ["", ""]  # stdout's, stderr's line without its newline yet
        self.closed = False

    def add(self, is_err: bool, text: str) -> bool:
        """Keep ``text`` written to stderr if ``is_err`` else stdout; False once the trial
        ended (the caller writes it to the process's stream instead)."""
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__} "
                            f"({text!r:.60})")
        with self.lock:
            if self.closed:
                return False
            was_empty = not self.parts
            i = 1 if is_err else 0
            buf = self.partial[i] + text if self.partial[i] else text
            cut = buf.rfind("\n") + 1
            if cut:
                self._keep(is_err, buf[:cut] if cut < len(buf) else buf)
                buf = buf[cut:]
            if len(buf) > _MAX_LINE:  # a very long line: sent in pieces
                self._keep(is_err, buf + "\n")
                buf = ""
            self.partial[i] = buf
            full = self.size >= _MAX_PENDING
            due = was_empty and bool(self.parts)
        if full:
            self.relay.flush_quietly()
        elif due:
            self.relay.schedule_flush()
        return True

    def _keep(self, is_err: bool, text: str) -> None:
        self.parts.append((is_err, text))
        self.size += len(text)

    def take(self) -> list[tuple[bool, str]]:
        """The lines kept so far (removed), consecutive ones of a stream joined."""
        with self.lock:
            parts, self.parts, self.size = self.parts, [], 0
        chunks: list[tuple[bool, str]] = []
        run: list[str] = []
        run_err = False
        for is_err, text in parts:
            if run and is_err != run_err:
                chunks.append((run_err, "".join(run)))
                run = []
            run_err = is_err
            run.append(text)
        if run:
            chunks.append((run_err, "".join(run)))
        return chunks

    def close(self, keep_partial: bool) -> None:
        """The trial ended: its partial lines are complete (if ``keep_partial``, else they and
        what was not sent are dropped); later writes go to the process's streams."""
        with self.lock:
            self.closed = True
            if not keep_partial:
                self.parts, self.size = [], 0
            for i, buf in enumerate(self.partial):
                if buf and keep_partial:
                    self._keep(bool(i), buf + "\n")
            self.partial = ["", ""]


class RelayedConnection:
    """A Dask agent's connection to the driver, which also carries what its trials' threads
    print (see above). Its sends are serialised by a lock (its flusher thread sends too); the
    worker uses it as the connection it wraps.

    Example (no Dask: a pipe, and a stand-in for ``sys.stdout``):
        >>> import io; from multiprocessing import Pipe
        >>> driver, agent = Pipe()
        >>> relay = RelayedConnection(agent)
        >>> out = _ThreadStream(io.StringIO(), is_err=False)
        >>> relay.begin("t1", "train_fn")
        >>> _ = out.write("hello\\nwor"); _ = out.write("ld")
        >>> relay.end(); relay.send(("done", "t1")); relay.detach()
        >>> driver.recv()[4], driver.recv()
        ([(False, 'hello\\nworld\\n')], ('done', 't1'))
        >>> relay.close(); driver.close()
    """

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        #: the thread that holds the lock (a write it makes while sending is not sent then)
        self._sender: int | None = None
        self._capture: _Capture | None = None
        self._trial_thread: int | None = None
        self._cond = threading.Condition()
        self._due = False
        self._closing = False
        self._flusher: threading.Thread | None = None

    # --- the connection the worker uses ---------------------------------------------------
    def send(self, obj: Any) -> None:
        self.send_bytes(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))

    def send_bytes(self, data: bytes) -> None:
        """Send what the trial printed so far, then ``data`` (one message)."""
        with self._lock:
            self._sender = threading.get_ident()
            try:
                self._send_output()
                self._conn.send_bytes(data)
            finally:
                self._sender = None

    def recv(self) -> Any:
        return self._conn.recv()

    def poll(self, timeout: float = 0.0) -> bool:
        return bool(self._conn.poll(timeout))

    def fileno(self) -> int:
        return int(self._conn.fileno())

    @property
    def closed(self) -> bool:
        return bool(self._conn.closed)

    def close(self) -> None:
        """End the flusher thread and close the connection."""
        with self._cond:
            self._closing = True
            self._cond.notify()
            flusher = self._flusher
        if flusher is not None:
            flusher.join(timeout=10.0)
        self._conn.close()

    # --- a trial's output -----------------------------------------------------------------
    def begin(self, trial_id: str, name: str) -> None:
        """Capture what the calling thread (the one that runs trial ``trial_id``, a trainable
        called ``name``) and the threads it starts print, until :meth:`end`."""
        self.detach()
        capture = self._capture = _Capture(self, trial_id, name)
        self._trial_thread = ident = threading.get_ident()
        _captures[ident] = capture

    def end(self) -> None:
        """The trial ended: what it printed, a partial last line too, goes out before the
        next message sent (its end); its threads' later writes go to the process's streams."""
        capture = self._capture
        if capture is not None:
            capture.close(keep_partial=True)
        self._release_thread()

    def detach(self) -> None:
        """After the trial (also one whose end was never sent): forget its capture."""
        self._release_thread()
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.close(keep_partial=False)

    def _release_thread(self) -> None:
        ident, self._trial_thread = self._trial_thread, None
        if ident is not None and _captures.get(ident) is self._capture:
            del _captures[ident]

    def flush_output(self) -> None:
        """Send what the trial printed so far (unless the calling thread is sending already:
        then it goes with the next message)."""
        if self._sender == threading.get_ident():
            return
        with self._lock:
            self._sender = threading.get_ident()
            try:
                self._send_output()
            finally:
                self._sender = None

    def flush_quietly(self) -> None:
        """:meth:`flush_output`; if the driver is gone (or killed the trial), the trial's
        lines are dropped and its later ones go to the process's streams."""
        try:
            self.flush_output()
        except (OSError, ValueError):
            capture = self._capture
            if capture is not None:
                capture.close(keep_partial=False)

    def _send_output(self) -> None:
        """Under the lock: one message with the current capture's lines, if it has any."""
        capture = self._capture
        if capture is None:
            return
        chunks = capture.take()
        if chunks:
            self._conn.send_bytes(pickle.dumps(
                (OUTPUT, capture.trial_id, capture.pid, capture.name, chunks),
                protocol=pickle.HIGHEST_PROTOCOL))

    # --- the flusher thread ---------------------------------------------------------------
    def schedule_flush(self) -> None:
        """A first unsent line: the flusher sends it, with what follows, :data:`_BATCH_S`
        later."""
        with self._cond:
            if self._closing:
                return
            self._due = True
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_loop, daemon=True,
                                                 name="poptune-output-flusher")
                _thread_start(self._flusher)  # not a trial's thread, whoever starts it
            self._cond.notify()

    def _flush_loop(self) -> None:
        while True:
            with self._cond:
                while not self._due and not self._closing:
                    self._cond.wait()
                if self._closing:
                    return
            time.sleep(_BATCH_S)
            with self._cond:
                self._due = False
            self.flush_quietly()
