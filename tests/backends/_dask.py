"""A real Dask cluster on loopback for backend tests: a ``dask scheduler`` process and ``dask
worker`` processes, each in a log file, all stopped at the end.

Example (in a fixture)::

    with DaskCluster(tmp_path) as cluster:
        cluster.add_worker(nthreads=2)
        cluster.wait_for_workers(1)
        yield cluster.address
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from typing import Any

from tests._net import free_port, wait_for_port

DASK = os.path.join(os.path.dirname(sys.executable), "dask")


class DaskCluster:
    """A scheduler on a free loopback port (up when the constructor returns), and workers
    started with :meth:`add_worker`; :meth:`stop` (or leaving the ``with``) ends them all."""

    def __init__(self, logs: pathlib.Path) -> None:
        self.logs = logs
        port = free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        self.procs: list[subprocess.Popen[Any]] = []
        self._start(["scheduler", "--host", "127.0.0.1", "--port", str(port)], "scheduler.log")
        if not wait_for_port(port, 60):
            self.stop()
            raise RuntimeError(f"the Dask scheduler did not listen on port {port} within 60 s")

    def add_worker(self, nthreads: int = 1, log: str | None = None) -> pathlib.Path:
        """Start one worker process with ``nthreads`` threads; return its log file."""
        name = log or f"worker{len(self.procs)}.log"
        self._start(["worker", self.address, "--nthreads", str(nthreads), "--nworkers", "1"],
                    name)
        return self.logs / name

    def wait_for_workers(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(n, timeout=120)

    def _start(self, args: list[str], log: str) -> None:
        with open(self.logs / log, "w") as out:
            self.procs.append(subprocess.Popen([DASK, *args, "--no-dashboard"], stdout=out,
                                               stderr=subprocess.STDOUT))

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def __enter__(self) -> DaskCluster:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
