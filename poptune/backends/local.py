"""The embedded default backend: persistent local worker processes.

Workers are started once (``python -m poptune.backends._worker``), connect back over a Unix
socket, and run one trial at a time; they are reused across trials. A worker that dies (e.g.
``kill -9``) is detected through its connection and replaced.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Listener
from typing import Any

from poptune._compat import log_to_driver
from poptune.backends._conn import Agent, ConnectionBackend
from poptune.backends._relay import OutputRelay
from poptune.storage.lock import lock_dir, remove_unlocked_dirs


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


#: the driver's socket directory: ``poptune-<pid>-<random>`` in the temp directory (short: a
#: Unix socket's path has at most 107 bytes), ``flock``-ed by the driver for as long as it
#: runs (versions before the lock named it ``poptune_<random>``: never swept, as a live one
#: holds no lock)
_SOCKET_DIR_PREFIX = "poptune-"
_SOCKET_NAME = "driver.sock"
#: the workers' launch-ahead slots in it (``poptune/backends/_ahead.py``)
_SLOT_PREFIX = "ahead-"
#: an empty socket directory this old (seconds) whose lock is free is a dead driver's
_EMPTY_STALE_AFTER_S = 60.0


def remove_stale_socket_dirs(parent: str | None = None) -> list[str]:
    """Remove socket directories left by drivers that died without shutting down (``kill -9``,
    the OOM killer); return their paths.

    A driver holds a ``flock`` on its directory from before its socket exists until it has
    removed it, so a directory whose socket exists and whose lock can be taken belongs to no
    live process (a pid check would not see a driver in another PID namespace sharing
    ``/tmp``). Only a directory holding nothing but that socket (and its workers' launch-ahead
    slots, ``ahead-*``) is removed, or nothing at all and older than a minute (a driver that
    exited without shutting its backend down, whose listener unlinked the socket at exit).
    """
    now = time.time()

    def ours(name: str) -> bool:
        return name == _SOCKET_NAME or name.startswith(_SLOT_PREFIX)

    def stale(entry: os.DirEntry[str]) -> bool:
        listed = os.listdir(entry.path)
        if not all(ours(n) for n in listed):
            return False  # something else is in it: not ours to remove
        # no socket: it was unlinked at exit by a driver whose backend was never shut down;
        # one made just now has no lock yet either, hence the age
        return _SOCKET_NAME in listed or now - entry.stat().st_mtime > _EMPTY_STALE_AFTER_S

    def remove(path: str) -> None:
        for name in os.listdir(path):
            if ours(name):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(path, name))
        os.rmdir(path)

    return remove_unlocked_dirs(_SOCKET_DIR_PREFIX, "-", stale, remove, parent)


class _ProcessAgent(Agent):
    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc

    def exit_status(self) -> str | None:
        code = self.proc.poll()
        return None if code is None else f"pid {self.proc.pid} exited with code {code}"

    def killed_from_outside(self) -> bool:
        code = self.proc.poll()
        return code is not None and code < 0  # ended by a signal

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


class LocalBackend(ConnectionBackend):
    """Run trials in worker processes on this machine.

    Args:
        num_cpus: CPUs trials may use (default: ``os.cpu_count()``, env ``POPTUNE_NUM_CPUS``).
        num_gpus: GPUs trials may use (default: detected).
    """

    #: a worker takes the next trial while it runs one (see ``Controller._send_ahead``)
    queues_ahead = True

    def __init__(self, num_cpus: float | None = None, num_gpus: float | None = None) -> None:
        super().__init__()
        env_cpus = os.environ.get("POPTUNE_NUM_CPUS")
        self._cpus = float(num_cpus if num_cpus is not None else (env_cpus or os.cpu_count() or 1))
        self._gpus = float(num_gpus if num_gpus is not None else detect_gpus())
        self._tmpdir: str | None = None
        self._tmpdir_lock: int | None = None  # held while the socket exists
        self._threads_per_worker = 1.0
        #: what the workers print is relayed, prefixed, by one thread (``_relay.py``); with
        #: ``init(log_to_driver=False)`` it is not shown, as in Ray
        self._log_to_driver = log_to_driver()
        self._relay: OutputRelay | None = None

    def total_resources(self) -> dict[str, Any]:
        from poptune.engine.resources import machine_memory

        return {"cpu": self._cpus, "gpu": self._gpus, "memory": machine_memory()}

    def _shape(self, resources: dict[str, float]) -> tuple[Any, ...]:
        return ()  # any local worker process can run any trial

    def _slot_path(self, worker: Any) -> str | None:
        if self._tmpdir is None:
            return None
        return os.path.join(self._tmpdir, f"{_SLOT_PREFIX}{id(worker):x}")

    def _listen(self) -> Listener:
        remove_stale_socket_dirs()
        self._tmpdir = tempfile.mkdtemp(prefix=f"{_SOCKET_DIR_PREFIX}{os.getpid()}-")
        self._tmpdir_lock = lock_dir(self._tmpdir)  # before the socket: see above
        return Listener(os.path.join(self._tmpdir, _SOCKET_NAME), family="AF_UNIX",
                        authkey=self._authkey)

    def prestart(self, n: int, cpus_per_trial: float = 1.0) -> None:
        """Start ``n`` workers early so their start-up overlaps the driver's own setup."""
        if self._listener is None:
            self._threads_per_worker = cpus_per_trial
            self.start_agents(max(1, n), {"cpu": cpus_per_trial})

    def setup(self, blobs: dict[str, bytes], max_concurrent: int) -> None:
        if self._listener is None:
            self.prestart(max_concurrent)
        super().setup(blobs, max_concurrent)

    def _start_agent(self, agent_id: str, resources: dict[str, float]) -> Agent:
        from poptune.backends._agent import worker_env

        assert self._listener is not None
        # one BLAS/OpenMP thread per CPU a trial gets, as Ray does: two 1-CPU trials that each
        # start a thread per core run several times slower than with one thread each
        env = worker_env(self._authkey.hex(), agent_id,
                         {"POPTUNE_RELAYED": "1" if self._log_to_driver else None},
                         {"OMP_NUM_THREADS": str(max(1, int(self._threads_per_worker)))})
        args = [sys.executable, "-m", "poptune.backends._worker", str(self._listener.address)]
        if not self._log_to_driver:
            return _ProcessAgent(subprocess.Popen(args, env=env, cwd=os.getcwd(),
                                                  stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL))
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            proc = subprocess.Popen(args, env=env, cwd=os.getcwd(), stdout=out_w, stderr=err_w)
        except BaseException:
            for fd in (out_r, err_r):
                os.close(fd)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        if self._relay is None:
            self._relay = OutputRelay()
        self._relay.add(proc.pid, out_r, err_r)
        return _ProcessAgent(proc)

    def _cleanup(self) -> None:
        if self._relay is not None:  # the workers are gone: what they printed goes out
            self._relay.close()
            self._relay = None
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
        if self._tmpdir_lock is not None:
            os.close(self._tmpdir_lock)
            self._tmpdir_lock = None
