"""The embedded default backend: persistent local worker processes.

Workers are started once (``python -m poptune.backends._worker``), connect back over a Unix
socket, and run one trial at a time; they are reused across trials. A worker that dies (e.g.
``kill -9``) is detected through its connection and replaced.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, Listener, wait
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
from poptune.exceptions import TuneError

_START_TIMEOUT_S = 60.0


def detect_gpus() -> int:
    """Number of GPUs: ``POPTUNE_NUM_GPUS``, else ``CUDA_VISIBLE_DEVICES``, else nvidia-smi."""
    env = os.environ.get("POPTUNE_NUM_GPUS")
    if env is not None:
        return int(env)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return 0
    return len([line for line in out.stdout.splitlines() if line.startswith("GPU ")])


@dataclass
class _WorkerHandle:
    proc: subprocess.Popen[bytes]
    conn: Connection
    trial_id: str | None = None


class LocalBackend(Backend):
    """Run trials in worker processes on this machine.

    Args:
        num_cpus: CPUs trials may use (default: ``os.cpu_count()``, env ``POPTUNE_NUM_CPUS``).
        num_gpus: GPUs trials may use (default: detected).
    """

    def __init__(self, num_cpus: float | None = None, num_gpus: float | None = None) -> None:
        env_cpus = os.environ.get("POPTUNE_NUM_CPUS")
        self._cpus = float(num_cpus if num_cpus is not None else (env_cpus or os.cpu_count() or 1))
        self._gpus = float(num_gpus if num_gpus is not None else detect_gpus())
        self._workers: list[_WorkerHandle] = []
        self._by_trial: dict[str, _WorkerHandle] = {}
        self._listener: Listener | None = None
        self._tmpdir: str | None = None
        self._authkey = secrets.token_bytes(16)
        self._init_msg: tuple[Any, ...] = ("init", list(sys.path), os.getcwd())
        self._register_msg: tuple[Any, ...] | None = None
        self._starting: dict[int, subprocess.Popen[bytes]] = {}
        self._deadline = 0.0
        self._threads_per_worker = 1.0

    def total_resources(self) -> dict[str, float]:
        return {"cpu": self._cpus, "gpu": self._gpus}

    # --- worker management ----------------------------------------------------------------
    def prestart(self, n: int, cpus_per_trial: float = 1.0) -> None:
        """Start ``n`` workers early so their start-up overlaps the driver's own setup."""
        if self._listener is None:
            self._tmpdir = tempfile.mkdtemp(prefix="poptune_")
            address = os.path.join(self._tmpdir, "driver.sock")
            self._listener = Listener(address, family="AF_UNIX", authkey=self._authkey)
            self._threads_per_worker = cpus_per_trial
            self._spawn(max(1, n))

    def setup(self, blobs: dict[str, bytes], max_concurrent: int) -> None:
        self._register_msg = ("register", blobs)
        if self._listener is None:
            self.prestart(max_concurrent)
        for w in self._workers:  # connected before the blobs existed
            w.conn.send(self._register_msg)

    def _spawn(self, n: int) -> None:
        """Start ``n`` worker processes; they connect back while the driver keeps working."""
        assert self._listener is not None
        env = dict(os.environ)
        env["POPTUNE_AUTHKEY"] = self._authkey.hex()
        env.setdefault("PYTHONUNBUFFERED", "1")
        # one BLAS/OpenMP thread per CPU a trial gets, as Ray does: two 1-CPU trials that each
        # start a thread per core run several times slower than with one thread each
        env.setdefault("OMP_NUM_THREADS", str(max(1, int(self._threads_per_worker))))
        for _ in range(n):
            proc = subprocess.Popen(
                [sys.executable, "-m", "poptune.backends._worker", self._listener.address],
                env=env,
                cwd=os.getcwd(),
            )
            self._starting[proc.pid] = proc
        self._deadline = time.monotonic() + _START_TIMEOUT_S

    def _accept(self, block: bool) -> None:
        """Adopt workers that connected; with ``block``, wait for at least one."""
        assert self._listener is not None
        sock = self._listener._listener._socket  # type: ignore[attr-defined]
        while self._starting:
            if block:
                sock.settimeout(max(0.05, min(1.0, self._deadline - time.monotonic())))
            else:
                sock.settimeout(0.0)
            try:
                conn = self._listener.accept()
            except (BlockingIOError, OSError):
                if not block:
                    return
                dead = [p for p in self._starting.values() if p.poll() is not None]
                if dead or time.monotonic() > self._deadline:
                    for p in self._starting.values():
                        p.kill()
                    self._starting.clear()
                    raise TuneError(
                        "a poptune worker process failed to start (exit code "
                        f"{dead[0].returncode if dead else 'timeout'}); see its output above"
                    ) from None
                continue
            kind, pid = conn.recv()
            proc = self._starting.pop(pid)
            conn.send(self._init_msg)
            if self._register_msg is not None:
                conn.send(self._register_msg)
            self._workers.append(_WorkerHandle(proc, conn))
            block = False

    def _idle_worker(self) -> _WorkerHandle:
        self._accept(block=False)
        for w in list(self._workers):
            if w.trial_id is None and w.proc.poll() is not None:
                self._drop(w)  # an idle worker that died is replaced, no trial is charged
        for w in self._workers:
            if w.trial_id is None:
                return w
        if not self._starting:
            self._spawn(1)
        while True:
            self._accept(block=True)
            for w in self._workers:
                if w.trial_id is None:
                    return w

    def _drop(self, worker: _WorkerHandle) -> None:
        if worker in self._workers:
            self._workers.remove(worker)
        if worker.trial_id is not None:
            self._by_trial.pop(worker.trial_id, None)
        try:
            worker.conn.close()
        except OSError:
            pass
        if worker.proc.poll() is None:
            worker.proc.kill()
        try:
            worker.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    # --- trials -----------------------------------------------------------------------------
    def launch(self, spec: LaunchSpec) -> None:
        worker = self._idle_worker()
        worker.trial_id = spec.trial_id
        self._by_trial[spec.trial_id] = worker
        try:
            worker.conn.send(("start", spec))
        except OSError:
            pass  # detected as a lost worker at the next poll

    def reply(self, trial_id: str, decision: str) -> None:
        worker = self._by_trial.get(trial_id)
        if worker is None:
            return
        try:
            worker.conn.send(decision)
        except OSError:
            pass

    def kill(self, trial_id: str) -> None:
        worker = self._by_trial.get(trial_id)
        if worker is not None:
            self._drop(worker)

    def poll(self, timeout: float) -> list[Event]:
        busy = {w.conn: w for w in self._workers if w.trial_id is not None}
        if not busy:
            if timeout > 0:
                time.sleep(min(timeout, 0.05))
            return []
        events: list[Event] = []
        ready = wait(list(busy), timeout=timeout)
        for conn in ready:
            worker = busy[conn]  # type: ignore[index]
            trial_id = worker.trial_id
            assert trial_id is not None
            try:
                while True:
                    msg = conn.recv()  # type: ignore[union-attr]
                    event = self._to_event(worker, msg)
                    events.append(event)
                    if worker.trial_id is None or not conn.poll():  # type: ignore[union-attr]
                        break
            except (EOFError, OSError):
                code = worker.proc.wait(timeout=5) if worker.proc.poll() is None else worker.proc.returncode
                self._drop(worker)
                events.append(WorkerLostEvent(trial_id, f"worker pid {worker.proc.pid} exited with code {code}"))
        return events

    def _to_event(self, worker: _WorkerHandle, msg: tuple[Any, ...]) -> Event:
        kind, trial_id = msg[0], msg[1]
        if kind == "result":
            return ResultEvent(trial_id, msg[2])
        if kind == "saved":
            return SavedEvent(trial_id, msg[2])
        # the trial is over: the worker is free again
        self._by_trial.pop(trial_id, None)
        worker.trial_id = None
        if kind == "done":
            return DoneEvent(trial_id)
        if kind == "stopped":
            return StoppedEvent(trial_id)
        if kind == "error":
            return ErrorEvent(trial_id, msg[2], msg[3])
        raise TuneError(f"unexpected message from worker: {kind!r}")

    def shutdown(self) -> None:
        for w in list(self._workers):
            try:
                w.conn.send(("shutdown",))
            except OSError:
                pass
        deadline = time.monotonic() + 2.0
        for w in list(self._workers):
            try:
                w.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            self._drop(w)
        for proc in self._starting.values():  # never connected: nothing to say goodbye to
            proc.kill()
            proc.wait()
        self._starting.clear()
        self._workers.clear()
        self._by_trial.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
