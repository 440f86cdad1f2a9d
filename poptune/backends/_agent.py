"""The worker loop as run inside a cluster engine (a Ray actor or a Dask task).

The agent connects back to the driver over TCP and serves trials with the same protocol as a
local worker process, so results reach the driver directly, without the engine's object store
in the way.
"""

from __future__ import annotations

from multiprocessing.connection import Client
from typing import Any


def serve(address: tuple[str, int], authkey_hex: str, agent_id: str,
          manage_process: bool = False, name_marker: bytes | None = None) -> str:
    """Connect to the driver and run trials until it says goodbye; return how it ended.

    ``name_marker``: see :attr:`Worker.name_marker`."""
    from poptune.backends._worker import Worker

    try:
        conn = Client((str(address[0]), int(address[1])), family="AF_INET",
                      authkey=bytes.fromhex(authkey_hex))
    except (ConnectionRefusedError, OSError) as exc:
        return f"could not reach the driver at {address[0]}:{address[1]} ({exc})"
    try:
        worker = Worker(conn, agent_id, manage_process=manage_process)
        worker.name_marker = name_marker
        # a Dask task's thread: the driver's kill closes the connection but cannot stop it
        worker.guards_checkpoints = not manage_process
        worker.serve()
    finally:
        conn.close()
    return "finished"


class RayAgent:
    """Body of the Ray actor class (decorated with ``ray.remote`` by the Ray backend)."""

    def serve(self, address: Any, authkey_hex: str, agent_id: str) -> str:
        from poptune.backends._relay import RAY_ACTOR_NAME

        # its own process; Ray's log monitor prefixes what it prints with the trainable's
        # name, as Ray Tune's trainable actors: ``(train_fn pid=N)``, not ``(RayAgent ...)``
        return serve(address, authkey_hex, agent_id, manage_process=True,
                     name_marker=RAY_ACTOR_NAME)

    def pid(self) -> int:
        import os

        return os.getpid()
