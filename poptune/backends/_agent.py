"""The worker loop as run inside a cluster engine (a Ray actor or a Dask task).

The agent connects back to the driver over TCP and serves trials with the same protocol as a
local worker process, so results reach the driver directly, without the engine's object store
in the way.
"""

from __future__ import annotations

from multiprocessing.connection import Client, Connection
from typing import Any, cast


def serve(address: tuple[str, int], authkey_hex: str, agent_id: str,
          manage_process: bool = False, name_marker: bytes | None = None,
          relay_from: str | None = None) -> str:
    """Connect to the driver and run trials until it says goodbye; return how it ended.

    ``name_marker``: see :attr:`Worker.name_marker`. ``relay_from``: the driver's
    ``_relay.PROCESS_TOKEN`` when what the trials' threads print is to be sent to it (a Dask
    agent, see ``_relay.RelayedConnection``), unless this is the driver's own process (an
    in-process cluster: its console shows it already); None: it stays in this process."""
    from poptune.backends._worker import Worker

    try:
        conn = Client((str(address[0]), int(address[1])), family="AF_INET",
                      authkey=bytes.fromhex(authkey_hex))
    except (ConnectionRefusedError, OSError) as exc:
        return f"could not reach the driver at {address[0]}:{address[1]} ({exc})"
    relay = None
    try:
        worker = Worker(conn, agent_id, manage_process=manage_process)
        worker.name_marker = name_marker
        # a Dask task's thread: the driver's kill closes the connection but cannot stop it
        worker.guards_checkpoints = not manage_process
        if relay_from is not None:
            from poptune.backends import _relay

            if relay_from != _relay.PROCESS_TOKEN:
                _relay.install_thread_capture()
                relay = _relay.RelayedConnection(conn)
                worker.conn = cast(Connection, relay)
                worker.relay = relay
                worker.run_trial = _relayed(worker)  # type: ignore[method-assign]
        worker.serve()
    finally:
        if relay is not None:
            relay.close()
        else:
            conn.close()
    return "finished"


def _relayed(worker: Any) -> Any:
    """``worker.run_trial`` that captures what the trial's threads print from its start (the
    worker's ``_end`` sends it, a partial last line too, before the trial's end)."""
    run_trial = worker.run_trial
    relay = worker.relay

    def run(spec: Any) -> None:
        relay.begin(spec.trial_id, getattr(worker.blobs.get("trainable"), "__name__", "func"))
        try:
            run_trial(spec)
        finally:
            relay.detach()

    return run


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
