"""What local worker processes print, relayed through the driver with Ray's prefix.

Each worker's stdout and stderr are pipes; one driver thread (a ``selectors`` loop) drains all
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
"""

from __future__ import annotations

import contextlib
import os
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
        self._plain = os.environ.get("RAY_DISABLE_WORKER_LOG_PREFIX", "").lower() in ("1", "true")
        self._color_env = os.environ.get("RAY_COLOR_PREFIX")

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
        text = data.decode("utf-8", "replace")
        if "\r\n" in text:
            text = text.replace("\r\n", "\n")
        out = sys.stderr if stream.is_err else sys.stdout
        if out is None:
            return
        if not self._plain:
            prefix = self._prefix(stream, out)
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

    def _prefix(self, stream: _Stream, out: Any) -> str:
        head = f"({stream.name} pid={stream.pid})" if stream.name else f"(pid={stream.pid})"
        env = self._color_env
        if env == "0":
            return head + " "
        if env == "1":
            return f"{_PALETTE[stream.pid % len(_PALETTE)]}{head}{_RESET} "
        try:
            tty = bool(out.isatty())
        except Exception:  # noqa: BLE001
            tty = False
        return f"{_CYAN}{head}{_RESET} " if tty else head + " "

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
