"""The trial files (``params.json``, ``params.pkl``, ``result.json``, ``progress.csv``),
written by a child process of the driver.

Formatting and writing these files costs as much as everything else the driver does for a
short trial; on a thread of the driver it also competes with the driver's loop for the
interpreter lock. So the driver sends its file operations to one writer process
(:class:`TrialFiles`) in batches, and the writer formats and writes them in order. The
journal, which is what makes results durable, stays on the driver's thread: these files are
derived from it (restore rewrites them from the journal).

The operations, in order per trial: ``params`` (write params.json/params.pkl), ``open`` (a
:class:`~poptune.storage.trial_logs.TrialLogWriter` with the trial's config for its
``result.json`` rows), ``write`` (a row), ``flush``, ``close``. :meth:`TrialFiles.drain` waits
until the writer has done everything sent before it. If the writer process cannot be started,
or dies, the operations run in the driver instead (with a warning).

Configs travel pickled with references to the experiment's constants
(:mod:`poptune._pickling`): a big object in ``param_space`` is sent to the writer once, not
once per trial.

Example:
    >>> import os, tempfile
    >>> d = os.path.join(tempfile.mkdtemp(), "trial")
    >>> from poptune._pickling import dump_config
    >>> files = TrialFiles()
    >>> config = {"lr": 0.1}
    >>> blob = dump_config(config, {})
    >>> files.params(d, blob)
    >>> key = files.open(d, json=True, csv=True, fresh=True, config=config, config_blob=blob)
    >>> files.write(key, {"loss": 0.5, "config": config})
    >>> files.close(key)
    >>> files.drain()
    >>> open(os.path.join(d, "progress.csv")).read()
    'loss\\n0.5\\n'
    >>> files.shutdown()
"""

from __future__ import annotations

import logging
import os
import pickle
import select
import socket
import subprocess
import sys
import time
from typing import Any

from poptune._pickling import PLAIN, load_config
from poptune.storage.dirs import ensure_dir
from poptune.storage.trial_logs import TrialLogWriter, write_params

logger = logging.getLogger("poptune")

_HEADER = 8  # bytes of a message's length prefix
#: operations that make a message, and the longest a released operation waits to be sent
BATCH_OPS, BATCH_S = 512, 0.05


class FileOps:
    """Carries out file operations (in the writer process, or in the driver as a fallback).

    Every failure is collected in :attr:`errors` as a message; the next operation runs.
    """

    def __init__(self) -> None:
        self.writers: dict[int, TrialLogWriter] = {}
        self.configs: dict[int, Any] = {}
        self.errors: list[str] = []
        self.constants: list[Any] = []
        self._last: tuple[bytes, Any] = (b"", None)  # the last config unpickled: its blob

    def _config(self, blob: bytes) -> Any:
        """The config a blob holds (a trial's params and its writer share one)."""
        if self._last[0] != blob:
            self._last = (blob, load_config(blob, self.constants))
        return self._last[1]

    def run(self, ops: list[tuple[Any, ...]]) -> None:
        for op in ops:
            try:
                self._run(op)
            except Exception as exc:  # noqa: BLE001 - reported, the writer goes on
                self.errors.append(f"{type(exc).__name__}: {exc}")

    def _run(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "drain":  # in the driver: done by now
            return
        if kind == "write":
            _, key, row = op
            writer = self.writers.get(key)
            if writer is not None:
                if "config" not in row and key in self.configs:
                    row["config"] = self.configs[key]  # sent once per writer, not per row
                writer.write(row)
        elif kind == "open":
            _, key, trial_dir, json, csv, fresh, blob = op
            if not fresh:
                ensure_dir(trial_dir)
            self.writers[key] = TrialLogWriter(trial_dir, json, csv, fresh=fresh)
            self.configs[key] = self._config(blob)
        elif kind == "flush":
            writer = self.writers.get(op[1])
            if writer is not None:
                writer.flush()
        elif kind == "close":
            writer = self.writers.pop(op[1], None)
            self.configs.pop(op[1], None)
            if writer is not None:
                writer.close()
        elif kind == "params":
            _, trial_dir, blob, pickle_too = op
            write_params(trial_dir, self._config(blob), pickle_too)
        elif kind == "constants":
            import cloudpickle

            self.constants = cloudpickle.loads(op[1]) if op[1] else []
        else:
            raise ValueError(f"unknown trial-file operation {kind!r}")


def _dumps(obj: Any) -> bytes:
    try:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - a user's object from the script (``__main__``)
        import cloudpickle

        return cloudpickle.dumps(obj)


def _portable(value: Any) -> Any:
    """``value`` with every object of a class the writer process cannot import (one from the
    user's script, ``__main__``) replaced by ``str(object)``: what result.json and
    progress.csv show for it anyway (Ray's fallback). Pickled by reference, such an object
    would fail the writer's unpickling of the whole batch."""
    kind = type(value)
    if kind in PLAIN:
        return value
    if kind is dict:
        return {k: _portable(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return kind(_portable(v) for v in value)
    if kind.__module__ == "__main__":
        return str(value)
    return value


def _sendable(op: tuple[Any, ...]) -> tuple[Any, ...]:
    """``op`` with each row value that cannot be pickled replaced by its ``str`` (what
    ``result.json`` shows for it anyway). Results from worker processes always pickle; one
    reported on the simulated backend, in the driver, may not (a lock, a generator)."""
    if op[0] != "write":
        return op
    row = {}
    for k, v in op[2].items():
        try:
            _dumps(v)
        except Exception:  # noqa: BLE001
            v = str(v)
        row[k] = v
    return (op[0], op[1], row)


class TrialFiles:
    """The driver's side: queues operations, sends them to the writer process in batches
    (:meth:`release`, called once per loop pass), waits for it (:meth:`drain`).

    Args:
        process: start a writer process (False: run the operations in the driver, e.g. for
            tests of the files alone).
    """

    def __init__(self, process: bool = True) -> None:
        self._ops: list[tuple[Any, ...]] = []
        self._next_key = 0
        self._said: set[str] = set()
        self._out = bytearray()  # sent data the socket did not take yet
        self._in = bytearray()  # the writer's answers, as they arrive
        #: the ``open`` operation and the config of every writer not closed yet (reopened in
        #: the driver if the process dies)
        self._open: dict[int, tuple[tuple[Any, ...], Any]] = {}
        self._constants_op: tuple[Any, ...] = ("constants", b"")
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._inline: FileOps | None = None
        self._drains = 0
        self._sent_at = 0.0  # time.monotonic() of the last message
        if process:
            try:
                self._start()
            except OSError as exc:
                self._fallback(f"the trial-file writer process could not start: {exc}")
        else:
            self._inline = FileOps()

    # -- the writer process ----------------------------------------------------------------
    def _start(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "poptune.storage._files_process", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours

    def _fallback(self, why: str) -> None:
        """Run the operations in the driver from now on."""
        logger.warning("poptune: %s; writing trial files in the driver instead", why)
        self._inline = FileOps()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def _send(self, data: bytes) -> None:
        """Queue ``data`` and write what the socket takes without waiting."""
        self._out += data
        self._pump()

    def _pump(self, wait: bool = False) -> None:
        sock = self._sock
        assert sock is not None
        while self._out:
            try:
                sent = sock.send(self._out)
            except BlockingIOError:
                if not wait:
                    return
                select.select([], [sock], [], 0.5)
                self._check_alive()
                continue
            del self._out[:sent]

    def _check_alive(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            raise BrokenPipeError(f"the trial-file writer exited with code {self._proc.returncode}")

    def _read_reply(self) -> tuple[Any, ...]:
        """The writer's next answer (waiting for it)."""
        sock, buf = self._sock, self._in
        assert sock is not None
        while True:
            if len(buf) >= _HEADER:
                end = _HEADER + int.from_bytes(buf[:_HEADER], "big")
                if len(buf) >= end:
                    reply = pickle.loads(buf[_HEADER:end])
                    del buf[:end]
                    return reply
            ready, _, _ = select.select([sock], [], [], 0.5)
            if not ready:
                self._check_alive()
                continue
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise BrokenPipeError("the trial-file writer closed its connection")
            buf += chunk

    # -- operations ------------------------------------------------------------------------
    def constants(self, blob: bytes) -> None:
        """The experiment's constants (cloudpickled), which config blobs refer to; before
        any operation that sends a config."""
        self._ops.insert(0, ("constants", blob))
        self._constants_op = self._ops[0]

    def params(self, trial_dir: str, config_blob: bytes, pickle_too: bool = True) -> None:
        """Write the trial's ``params.json`` (and ``params.pkl``); makes its directory."""
        self._ops.append(("params", trial_dir, config_blob, pickle_too))

    def open(self, trial_dir: str, json: bool, csv: bool, fresh: bool, config: Any,
             config_blob: bytes) -> int:
        """Start a writer of the trial's result files; returns its key. ``fresh``: the trial's
        ``params`` came first and it has no earlier results. ``config`` is the object
        ``config_blob`` pickles: rows whose ``config`` it is do not send it again."""
        key = self._next_key = self._next_key + 1
        op = ("open", key, trial_dir, json, csv, fresh, config_blob)
        self._ops.append(op)
        self._open[key] = (op, config)
        return key

    def write(self, key: int, row: dict[str, Any]) -> None:
        """Append a copy of ``row`` (as it is now: callbacks may add keys later)."""
        plain = PLAIN
        for k, v in row.items():
            if type(v) not in plain and k != "config":  # nested, numpy, objects: portable
                row = {k: v if k == "config" else _portable(v) for k, v in row.items()}
                break
        else:
            row = dict(row)
        if row and next(reversed(row)) == "config":
            opened = self._open.get(key)
            if opened is not None and row["config"] is opened[1]:
                del row["config"]  # the writer adds its config back, last: sent once
        self._ops.append(("write", key, row))

    def flush(self, key: int) -> None:
        self._ops.append(("flush", key))

    def close(self, key: int) -> None:
        self._ops.append(("close", key))
        self._open.pop(key, None)

    def release(self, force: bool = False) -> None:
        """Send the operations queued so far (without waiting for the writer), once
        :data:`BATCH_OPS` of them wait or :data:`BATCH_S` passed since the last send (or
        ``force``): each message wakes the writer up, so fewer, bigger ones cost less on both
        sides (a row reaches its file at most ``BATCH_S`` later)."""
        if not self._ops:
            if self._out and self._sock is not None:
                self._pump()
            return
        now = time.monotonic()
        if not force and len(self._ops) < BATCH_OPS and now - self._sent_at < BATCH_S:
            return
        self._sent_at = now
        ops, self._ops = self._ops, []
        if self._inline is not None:
            self._run_inline(ops)
            return
        try:
            body = _dumps(ops)
        except Exception:  # noqa: BLE001 - a value that cannot be pickled: its repr instead
            body = _dumps([_sendable(op) for op in ops])
        try:
            self._send(len(body).to_bytes(_HEADER, "big") + body)
        except OSError as exc:
            self._lost(exc, ops)

    def _run_inline(self, ops: list[tuple[Any, ...]]) -> None:
        inline = self._inline
        assert inline is not None
        inline.run(ops)
        self._report(inline.errors)
        inline.errors.clear()

    def _lost(self, exc: BaseException, ops: list[tuple[Any, ...]]) -> None:
        """The writer process is gone: the driver writes from now on. Rows the writer had
        not flushed are missing from the files (the journal has them: restore rewrites a
        trial's files from it); the open writers are reopened and ``ops`` are redone."""
        self._fallback(f"the trial-file writer failed ({exc}); rows sent to it since its "
                       "last flush may be missing from result.json/progress.csv")
        self._out.clear()
        reopen = [("open", key, op[2], op[3], op[4], False, op[6])
                  for key, (op, _) in self._open.items()
                  if not any(o[0] == "open" and o[1] == key for o in ops)]
        self._run_inline([self._constants_op, *reopen, *ops])  # the undelivered batch

    def drain(self) -> None:
        """Wait until every operation released or queued so far is on disk."""
        token = 0
        if self._inline is None:
            self._drains += 1
            token = self._drains
            self._ops.append(("drain", token))
        self.release(force=True)
        if self._inline is not None:  # done in the driver (or the writer was lost meanwhile)
            return
        try:
            self._pump(wait=True)
            while True:
                reply = self._read_reply()
                self._report(reply[2])
                if reply[1] == token:
                    return
        except OSError as exc:  # it died with operations it may or may not have done
            self._lost(exc, [])

    def _report(self, errors: list[str]) -> None:
        for message in errors:
            if message not in self._said:  # a full disk fails every write: said once
                self._said.add(message)
                logger.warning("poptune: writing trial files failed: %s (further failures "
                               "like it are not repeated)", message)

    def shutdown(self) -> None:
        """Finish everything, then stop the writer process."""
        try:
            self.drain()
        finally:
            if self._sock is not None:
                self._sock.close()  # the writer exits at the end of its input
                self._sock = None
            if self._proc is not None:
                try:
                    self._proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
                self._proc = None


def serve(sock: socket.socket) -> None:
    """The writer process: carry out each message's operations, answer drains."""
    ops_runner = FileOps()
    buf = bytearray()
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            return
        buf += chunk
        while len(buf) >= _HEADER:
            size = int.from_bytes(buf[:_HEADER], "big")
            if len(buf) < _HEADER + size:
                break
            ops = pickle.loads(buf[_HEADER:_HEADER + size])
            del buf[:_HEADER + size]
            for op in ops:
                if op[0] == "drain":
                    body = pickle.dumps(("drained", op[1], ops_runner.errors))
                    sock.sendall(len(body).to_bytes(_HEADER, "big") + body)
                    ops_runner.errors = []
                else:
                    ops_runner.run([op])
