"""Run trials on a Dask cluster (``pip install 'poptune[dask]'``).

``TuneConfig(backend="dask")`` or ``POPTUNE_BACKEND=dask``; the scheduler address comes from
``POPTUNE_ADDRESS`` (``tcp://host:8786``), or pass a ``distributed.Client``; with neither, an
in-process ``LocalCluster`` is started (for trying things out). This is how poptune reaches
Slurm/PBS (dask-jobqueue) and Kubernetes (dask-kubernetes). Each trial slot is a long-running
Dask task that runs an agent in a child process, which connects back to the driver; GPU
requests map to the Dask worker resource ``GPU`` (start workers with ``--resources GPU=1``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from multiprocessing.connection import Listener
from typing import Any

from poptune._compat import log_to_driver
from poptune._imports import require
from poptune.backends._conn import Agent, ConnectionBackend
from poptune.backends._probe import driver_ip, host_port, unreachable
from poptune.engine.resources import cluster_offer
from poptune.exceptions import TuneError


class _DaskTaskAgent(Agent):
    def __init__(self, future: Any) -> None:
        self.future = future

    def exit_status(self) -> str | None:
        if not self.future.done():
            return None
        if self.future.status == "error":
            exc = self.future.exception()
            return f"Dask task failed: {type(exc).__name__}: {exc}"
        if self.future.status == "cancelled":
            client = getattr(self.future, "client", None)
            status = getattr(client, "status", "running")
            if status not in ("running", "connecting"):
                # the scheduler is gone: every task was cancelled with it
                address = getattr(getattr(client, "scheduler", None), "address", "?")
                return (f"Dask task cancelled: the connection to the Dask scheduler at "
                        f"{address} was lost (client {status}); once the scheduler runs "
                        "again, resume with Tuner.restore(...)")
            return "Dask task cancelled"
        return f"Dask task {self.future.result()}"

    def kill(self) -> None:
        try:
            self.future.cancel()
        except Exception:  # noqa: BLE001 - the client may be closing
            pass


def _in_process_cluster(distributed: Any, scratch: str) -> Any:
    """A ``LocalCluster`` of in-process workers (one thread per CPU) keeping their scratch
    space in ``scratch``. In-process: a cluster of processes would re-import the user's
    script, which breaks scripts without a ``__main__`` guard. Without a dashboard, which
    poptune never uses: ``dashboard_address=None`` alone still has the scheduler open its
    HTTP server on port 8787 of every interface (a warning when that port is taken); it
    listens on a free loopback port instead."""
    import dask

    with dask.config.set({"temporary-directory": scratch}):
        return distributed.LocalCluster(
            n_workers=os.cpu_count() or 1, threads_per_worker=1, processes=False,
            dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})


def dask_nodes(workers: Any) -> list[dict[str, Any]]:
    """The machines of a Dask cluster from its workers' info (``scheduler_info()``): one
    node per host, with its workers' threads as CPUs and their ``GPU`` resources added up.
    Per host, not per worker: Dask gives a task one thread of any worker, and the CPUs a
    trial asks for are the machine's (a ``LocalCluster`` or ``dask worker --nworkers 4``
    has several single-thread workers per machine). But a task's ``GPU`` must all be one
    worker's: a host with several GPU workers lists their amounts (``worker_gpus``), and
    the pool gives a trial whole GPUs of one of them only.

    >>> dask_nodes([{"host": "10.0.0.5", "nthreads": 2, "resources": {"GPU": 1}},
    ...             {"host": "10.0.0.5", "nthreads": 2}, {"host": "10.0.0.6", "nthreads": 4}])
    [{'name': '10.0.0.5', 'cpu': 4.0, 'gpu': 1.0}, {'name': '10.0.0.6', 'cpu': 4.0, 'gpu': 0.0}]
    >>> dask_nodes([{"host": "10.0.0.7", "nthreads": 1, "resources": {"GPU": 1}}] * 2)
    [{'name': '10.0.0.7', 'cpu': 2.0, 'gpu': 2.0, 'worker_gpus': [1.0, 1.0]}]
    """
    hosts: dict[str, dict[str, Any]] = {}
    per_worker: dict[str, list[float]] = {}
    for w in workers:
        host = str(w.get("host") or w.get("name") or "?")
        node = hosts.setdefault(host, {"name": host, "cpu": 0.0, "gpu": 0.0})
        gpu = float((w.get("resources") or {}).get("GPU", 0))
        node["cpu"] += float(w.get("nthreads", 1))
        node["gpu"] += gpu
        if gpu > 0:
            per_worker.setdefault(host, []).append(gpu)
    for host, gpus in per_worker.items():
        if len(gpus) > 1:  # one GPU worker: its GPUs are the machine's
            hosts[host]["worker_gpus"] = gpus
    return list(hosts.values())


class DaskBackend(ConnectionBackend):
    """Trials as tasks on a ``dask.distributed`` cluster.

    Args:
        address: scheduler address (default ``$POPTUNE_ADDRESS``).
        client: an existing ``distributed.Client`` (takes precedence over ``address``).
    """

    runs_elsewhere = True  # a local storage_path must be shared: see Worker._check_storage
    placed_by_cluster = True  # Dask starts a task when a worker has a thread (and GPU) free
    # each agent is a child process of its Dask task (``_agent.serve_in_child``): it may
    # change directory; its devices are its Dask worker's (GPU ids counted over the whole
    # cluster mean nothing on one node), so CUDA_VISIBLE_DEVICES is left as the worker has it
    assigns_devices = True

    def __init__(self, address: str | None = None, client: Any = None,
                 timeout: float = 20.0) -> None:
        super().__init__()
        distributed = require("distributed", "the Dask backend")
        #: what trials print reaches the driver (``_relay.py``), unless
        #: ``init(log_to_driver=False)``: then it stays in the Dask workers' logs, as on Ray
        self._log_to_driver = log_to_driver()
        self._own_client = client is None
        self._cluster = None
        self._scratch: str | None = None
        if client is None:
            address = address or os.environ.get("POPTUNE_ADDRESS") or None
            hp = host_port(address) if address else None
            why = unreachable([hp[0]], hp[1], min(timeout, 10.0)) if hp else None
            if why is not None:  # nothing listens: say so now, not after the client's timeout
                raise TuneError(
                    f"could not connect to the Dask scheduler at {address}: nothing accepts "
                    f"connections there ({why}). Check that `dask scheduler` runs there (it "
                    "prints its address, tcp://host:8786 by default) and that no firewall "
                    "blocks the port. The address comes from POPTUNE_ADDRESS (or "
                    "DaskBackend(address=...)); poptune never starts a local cluster instead.")
            try:
                if address:
                    client = distributed.Client(address, timeout=timeout)
                else:
                    # its workers' scratch space is ours to remove (Dask would leave
                    # dask-scratch-space in the temporary directory)
                    self._scratch = tempfile.mkdtemp(prefix="poptune_dask_")
                    self._cluster = _in_process_cluster(distributed, self._scratch)
                    client = distributed.Client(self._cluster)
            except (OSError, TimeoutError) as exc:
                raise TuneError(
                    f"could not connect to the Dask scheduler at {address or '(local)'}: "
                    f"{type(exc).__name__}: {exc}. Check POPTUNE_ADDRESS and that the "
                    "scheduler is running."
                ) from exc
        self._client = client
        info = client.scheduler_info()
        sched = str(info.get("address", ""))
        self._host = "127.0.0.1" if ("127.0.0.1" in sched or "localhost" in sched
                                     or sched.startswith("inproc")) else driver_ip()

    def total_resources(self) -> dict[str, Any]:
        """The cluster's CPUs (worker threads) and GPUs (the worker resource ``GPU``), in
        all and per host: :func:`dask_nodes`."""
        workers = self._client.scheduler_info().get("workers", {}).values()
        return cluster_offer(dask_nodes(workers), "the Dask cluster", memory=False,
                             custom=False)

    def _shape(self, resources: dict[str, float]) -> tuple[Any, ...]:
        return (resources.get("gpu", 0.0),)

    def _listen(self) -> Listener:
        return Listener((self._host if self._host == "127.0.0.1" else "0.0.0.0", 0),
                        family="AF_INET", authkey=self._authkey)

    def _start_agent(self, agent_id: str, resources: dict[str, float]) -> Agent:
        from poptune.backends._agent import serve_in_child
        from poptune.backends._relay import PROCESS_TOKEN

        assert self._listener is not None
        gpu = resources.get("gpu", 0.0)
        future = self._client.submit(
            serve_in_child, (self._host, self._listener.address[1]), self._authkey.hex(),
            agent_id,
            relay_from=PROCESS_TOKEN if self._log_to_driver else None,
            key=f"poptune-agent-{agent_id}", pure=False,
            resources={"GPU": gpu} if gpu else None,
        )
        return _DaskTaskAgent(future)

    def _cleanup(self) -> None:
        if self._own_client:
            self._client.close()
            if self._cluster is not None:
                self._cluster.close()
            if self._scratch is not None:
                shutil.rmtree(self._scratch, ignore_errors=True)
                self._scratch = None
