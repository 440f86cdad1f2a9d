"""A Ray cluster on loopback for backend tests: a head and worker nodes started with
``ray start --block`` in their own process groups, so that teardown stops exactly them
(``ray stop`` would stop every Ray cluster on the machine), and this process connected."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests._net import free_port, wait_for_port

BIN = os.path.dirname(sys.executable)


@contextlib.contextmanager
def ray_cluster(ray: Any, logs: Path, cpus_per_node: int,
                worker_args: tuple[str, ...] = ()) -> Iterator[str]:
    """A head and one worker node of ``cpus_per_node`` CPUs each (the worker started with
    ``worker_args`` too, e.g. ``--resources=...``); yields the address once both nodes'
    CPUs are in the cluster. Disconnects this process, then ends both process groups."""
    port = free_port()
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    common = [f"--num-cpus={cpus_per_node}", "--node-ip-address=127.0.0.1",
              "--disable-usage-stats", "--block"]
    ray_bin = os.path.join(BIN, "ray")
    address = f"127.0.0.1:{port}"
    procs = [subprocess.Popen(
        [ray_bin, "start", "--head", f"--port={port}", "--include-dashboard=false", *common],
        env=env, start_new_session=True, stdout=open(logs / "head.log", "w"),
        stderr=subprocess.STDOUT)]
    try:
        wait_for_port(port, 180)
        procs.append(subprocess.Popen(
            [ray_bin, "start", f"--address={address}", *worker_args, *common], env=env,
            start_new_session=True, stdout=open(logs / "worker.log", "w"),
            stderr=subprocess.STDOUT))
        os.environ["RAY_AUTH_MODE"] = "disabled"
        ray.init(address=address)
        deadline = time.time() + 180
        while ray.cluster_resources().get("CPU", 0) < 2 * cpus_per_node and (
                time.time() < deadline):
            time.sleep(0.2)
        assert ray.cluster_resources().get("CPU", 0) == 2 * cpus_per_node, (
            "the Ray worker node did not join")
        yield address
    finally:
        # disconnect first: a Ray driver whose cluster disappears ends its whole process
        # (pytest included) about a minute later
        ray.shutdown()
        stop_groups(procs)


def stop_groups(procs: list[subprocess.Popen[Any]], grace: float = 5.0) -> None:
    """End the process groups of ``procs``: SIGTERM, then SIGKILL for what still runs after
    ``grace`` seconds in all (``ray start --block`` often takes over 30 s to stop)."""
    for proc in reversed(procs):
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the group: its raylet, GCS, workers
        except ProcessLookupError:
            pass
        proc.wait()
