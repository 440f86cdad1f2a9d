"""The worker loop as run inside a cluster engine (a Ray actor or a Dask task).

The agent connects back to the driver over TCP and serves trials with the same protocol as a
local worker process, so results reach the driver directly, without the engine's object store
in the way. A Ray actor is a process of its own; a Dask task is a thread of a long-lived
Dask worker process, so it runs the agent in a child process (:func:`serve_in_child`): a
trial the driver kills (the stop grace, ``silence_timeout_s``) then really ends, its Dask
thread is free again, and each run imports the trainable's modules afresh, as on Ray and
locally.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from multiprocessing.connection import Client, Connection
from typing import Any, cast

#: seconds between two checks by an agent in a child process that the driver still holds
#: its connection (it closes it to kill the trial, or when it ends)
WATCH_S = 0.5
#: the exit code of an agent process that could not reach the driver
UNREACHABLE = 3


def serve(address: tuple[str, int], authkey_hex: str, agent_id: str,
          manage_process: bool = False, name_marker: bytes | None = None,
          relay_from: str | None = None, watch_driver: bool = False) -> str:
    """Connect to the driver and run trials until it says goodbye; return how it ended.

    ``name_marker``: see :attr:`Worker.name_marker`. ``relay_from``: the driver's
    ``_relay.PROCESS_TOKEN`` when what the trials' threads print is to be sent to it (a Dask
    agent, see ``_relay.RelayedConnection``), unless this is the driver's own process (an
    in-process cluster: its console shows it already); None: it stays in this process.
    ``watch_driver``: this process ends at once when the driver closes the connection (an
    agent in a child process of its own: the driver's kill of a trial)."""
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
        # the driver's kill closes the connection: a thread of another process cannot be
        # stopped, and a child process ends only at its watch's next look (WATCH_S), so
        # neither writes a checkpoint once the driver has let go of the trial
        worker.guards_checkpoints = not manage_process or watch_driver
        if relay_from is not None:
            from poptune.backends import _relay

            if relay_from != _relay.PROCESS_TOKEN:
                _relay.install_thread_capture()
                relay = _relay.RelayedConnection(conn)
                worker.conn = cast(Connection, relay)
                worker.relay = relay
                worker.run_trial = _relayed(worker)  # type: ignore[method-assign]
        if watch_driver:
            threading.Thread(target=_exit_when_dropped, args=(worker,), daemon=True,
                             name="poptune-driver-watch").start()
        worker.serve()
    finally:
        if relay is not None:
            relay.close()
        else:
            conn.close()
    return "finished"


def _exit_when_dropped(worker: Any) -> None:
    """End this process when the driver has closed the connection: it killed the trial
    (which may be stuck in user code that never reports) or is gone."""
    while True:
        time.sleep(WATCH_S)
        if not worker._driver_alive():
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:  # noqa: BLE001 - ending anyway
                    pass
            os._exit(0)


def worker_env(authkey_hex: str, agent_id: str, overrides: dict[str, str | None],
               defaults: dict[str, str] | None = None,
               python_path: bool = False) -> dict[str, str]:
    """The environment of a process that runs trials (a local worker, a Dask task's agent):
    this process's, with the driver's auth key and the agent's id (the child takes them out
    again: ``_worker.start_child``) and unbuffered output; ``overrides`` set (None: removed),
    ``defaults`` set where unset, and with ``python_path`` this process's ``sys.path`` as
    ``PYTHONPATH`` (the files a Dask client uploaded)."""
    env = dict(os.environ)
    env["POPTUNE_AUTHKEY"] = authkey_hex
    env["POPTUNE_AGENT_ID"] = agent_id
    env.setdefault("PYTHONUNBUFFERED", "1")
    for name, value in (defaults or {}).items():
        env.setdefault(name, value)
    for name, override in overrides.items():
        if override is None:
            env.pop(name, None)
        else:
            env[name] = override
    if python_path:
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def serve_in_child(address: tuple[str, int], authkey_hex: str, agent_id: str,
                   relay_from: str | None = None) -> str:
    """A Dask task's body: run the agent in a child process of its own (``python -m
    poptune.backends._agent``) and wait for it; return how it ended.

    The child sees the Dask worker's ``sys.path`` (files a client uploaded included) and
    environment; what it prints is relayed as ``relay_from`` says (see :func:`serve`), and
    what escapes that (C code, ``os.write``) goes to the Dask worker's log. It ends when the
    driver closes its connection; if the task's thread ends first, the child is killed.
    """
    import subprocess

    env = worker_env(authkey_hex, agent_id, {"POPTUNE_RELAY_FROM": relay_from},
                     python_path=True)
    proc = subprocess.Popen([sys.executable, "-m", "poptune.backends._agent", str(address[0]),
                             str(address[1])], env=env, stdin=subprocess.DEVNULL)
    try:
        code = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if code == UNREACHABLE:  # the child said why in the Dask worker's log
        return f"could not reach the driver at {address[0]}:{address[1]}"
    return "finished" if code == 0 else f"ended: its process exited with code {code}"


def _main() -> None:
    """``python -m poptune.backends._agent HOST PORT``: an agent in a child process of a
    Dask task (:func:`serve_in_child`)."""
    from poptune.backends._worker import start_child

    authkey, agent_id = start_child()
    agent_id = agent_id or ""  # serve_in_child always sets it
    relay_from = os.environ.pop("POPTUNE_RELAY_FROM", None)
    status = serve((sys.argv[1], int(sys.argv[2])), authkey, agent_id, manage_process=True,
                   relay_from=relay_from, watch_driver=True)
    if status != "finished":
        print(f"poptune agent {agent_id}: {status}", file=sys.stderr)
        sys.exit(UNREACHABLE)  # serve returns nothing else


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


if __name__ == "__main__":
    _main()
