"""Run trials as Ray actors on an existing Ray cluster (``pip install 'poptune[ray]'``).

``TuneConfig(backend="ray")`` or ``POPTUNE_BACKEND=ray``; the cluster address comes from
``POPTUNE_ADDRESS`` (``auto``, ``ray://host:10001``, ``host:6379``), else from a ``RAY_ADDRESS``
where a cluster answers, else a local Ray instance is started (``ray.init(address="local")``:
never the cluster a stale ``/tmp/ray/ray_current_cluster`` names; see :func:`choose_address`).
Each actor holds one trial's resources (fractional GPUs included; Ray sets
``CUDA_VISIBLE_DEVICES``) and is reused for later trials of the same resource shape. Results
travel over a direct connection to the driver, not through Ray's object store.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import socket
import sys
from multiprocessing.connection import Listener
from typing import Any

from poptune._imports import require
from poptune.backends._conn import Agent, ConnectionBackend
from poptune.backends._probe import driver_ip, host_port, unreachable
from poptune.engine.resources import cluster_offer
from poptune.exceptions import TuneError

logger = logging.getLogger("poptune")

_RESOURCE_NAMES = {"cpu": "CPU", "gpu": "GPU", "memory": "memory"}
#: the resources of a Ray node that are not custom resources trials may ask for
_NOT_CUSTOM = ("CPU", "GPU", "memory", "object_store_memory")


def _what_to_check(address: str | None) -> str:
    if not address:
        return "Check that Ray can start on this machine (`ray start --head` shows why not)."
    hp = host_port(address)
    port = hp[1] if hp else 6379
    if address.startswith("ray://"):
        running = (f"that the head node runs a Ray Client server on that port (`ray start "
                   f"--head --ray-client-server-port={port}`; 10001 by default)")
    else:
        running = (f"that a Ray head node is running there (on the head: `ray start --head "
                   f"--port={port}`; from this machine `ray status --address {address}` must "
                   "answer)")
    return (
        f"Check {running}, that the address is the head's GCS address (host:6379, printed by "
        "`ray start --head`) or its Ray Client address (ray://host:10001), and that no "
        f"firewall blocks port {port}. The address comes from POPTUNE_ADDRESS (set by "
        "ray.init(address=...) too, or RayBackend(address=...)); poptune never starts a local "
        "Ray instance in its place."
    )


def _check_reachable(address: str, timeout: float, source: str = "") -> None:
    """Raise :class:`TuneError` unless something accepts TCP connections at ``address``
    (``source`` says where it came from, for the message)."""
    hp = host_port(address)
    if hp is None:  # "auto"/"local": Ray finds (or fails to find) the cluster itself
        return
    host, port = hp
    hosts = [host]
    if "://" not in address:  # Ray dials a GCS address on loopback via this node's IP
        with contextlib.suppress(Exception):  # a private helper; the plain host is enough
            services = importlib.import_module("ray._private.services")
            resolved = services.resolve_ip_for_localhost(host)
            if resolved != host:
                hosts.append(resolved)
    why = unreachable(hosts, port, timeout)
    if why is not None:
        raise TuneError(
            f"could not connect to the Ray cluster at {address}{source}: nothing accepts "
            f"connections there ({why}). {_what_to_check(address)}"
        )


def _warn_if_other_cluster(ray: Any, address: str) -> None:
    """Ray is already connected (``ray.init`` ran earlier): say so if ``address`` names a
    different cluster, since that connection is what the trials will use."""
    try:
        current = str(ray.get_runtime_context().gcs_address)
    except Exception:  # noqa: BLE001 - older Ray or a client connection: nothing to compare
        return
    wanted, have = host_port(address), host_port(current)
    if not wanted or not have:
        return
    local = {"127.0.0.1", "localhost", driver_ip()}
    other_host = wanted[0] != have[0] and not {wanted[0], have[0]} <= local
    if wanted[1] != have[1] or other_host:
        logger.warning(
            "poptune: Ray is already connected to %s in this process; the address %s (from "
            "POPTUNE_ADDRESS or RayBackend(address=...)) is ignored. Call ray.shutdown() "
            "first to use it.", current, address)


def _address_file(init_kwargs: dict[str, Any]) -> str:
    """The file where ``ray start`` leaves the address of the last cluster it started (and
    ``ray.init()`` without an address looks for one): ``<ray temp dir>/ray_current_cluster``,
    the temp dir being ``_temp_dir``, else ``$RAY_TMPDIR/ray``, else ``$TMPDIR/ray`` (Linux),
    else ``/tmp/ray``."""
    temp = init_kwargs.get("_temp_dir")
    if not temp:
        base = os.environ.get("RAY_TMPDIR")
        if base is None and sys.platform.startswith("linux"):
            base = os.environ.get("TMPDIR")
        temp = os.path.join(base or "/tmp", "ray")
    return os.path.join(str(temp), "ray_current_cluster")


def _read_address_file(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip() or None
    except OSError:
        return None


def _resolve_auto(address: str, init_kwargs: dict[str, Any]) -> tuple[str, str]:
    """What Ray will dial for ``address="auto"`` and where that comes from: ``RAY_ADDRESS``,
    else the address file's address (so a stale file fails at once instead of after many
    minutes of retries)."""
    if address != "auto":
        return address, ""
    env = os.environ.get("RAY_ADDRESS")
    if env:
        return env, " (address auto: RAY_ADDRESS)"
    path = _address_file(init_kwargs)
    found = _read_address_file(path)
    if found:
        return found, f" (address auto: the last cluster `ray start` started, named in {path})"
    return address, ""


def choose_address(init_kwargs: dict[str, Any], timeout: float) -> str:
    """The address to hand ``ray.init`` when poptune was given none: ``"local"`` (start a
    local Ray instance, as documented), unless ``RAY_ADDRESS`` names a cluster that answers.

    ``ray.init()`` without an address would join the cluster named by ``RAY_ADDRESS`` or by
    the ``ray_current_cluster`` file and retry a dead one for many minutes. A live
    ``RAY_ADDRESS`` is an address the user set (a Ray job's driver gets one) and is used; a
    dead one, and the file's address whether it answers or not, are ignored with a warning
    that names them.
    """
    env = os.environ.get("RAY_ADDRESS") or None
    if env is not None and env != "local":
        hp = host_port(env)
        why = None if hp is None else unreachable([hp[0]], hp[1], timeout)
        if hp is not None and why is None:
            logger.info("poptune: using the Ray cluster at %s (from RAY_ADDRESS)", env)
            return env
        if hp is not None:
            logger.warning(
                "poptune: RAY_ADDRESS=%s is ignored: nothing accepts connections there (%s); "
                "starting a local Ray instance instead (set POPTUNE_ADDRESS to insist on a "
                "cluster).", env, why)
        else:
            logger.warning("poptune: RAY_ADDRESS=%s is ignored (not host:port or "
                           "ray://host:port); starting a local Ray instance instead (set "
                           "POPTUNE_ADDRESS=auto to join a running cluster).", env)
    path = _address_file(init_kwargs)
    found = _read_address_file(path)
    hp = host_port(found) if found else None
    if hp is not None:
        why = unreachable([hp[0]], hp[1], timeout)
        if why is None:
            logger.warning(
                "poptune: a Ray cluster started with `ray start` answers at %s (named in %s); "
                "poptune starts its own local Ray instance, as it does without an address. "
                "Set POPTUNE_ADDRESS=%s to run the trials on that cluster.", found, path, found)
        else:
            logger.warning(
                "poptune: ignoring the stale Ray address %s in %s: nothing accepts "
                "connections there (%s), the cluster that wrote it is gone; starting a local "
                "Ray instance. Delete the file to silence this.", found, path, why)
    return "local"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _ray_error_text(exc: BaseException) -> str:
    r"""``Type: message`` of what ended a Ray actor: a ``RayTaskError``'s cause (its own first
    line is Ray's colour-coded task header, which names no cause), without colour codes.

    >>> _ray_error_text(ValueError("\x1b[36mboom\x1b[39m\nmore"))
    'ValueError: boom'
    """
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    lines = _ANSI.sub("", str(exc)).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200] if lines else ''}"


def _node_of(info: dict[str, Any]) -> dict[str, Any]:
    """A node of :func:`~poptune.engine.resources.cluster_offer` from one of ``ray.nodes()``:
    named by its address and the start of its node id (two nodes may share an address).

    >>> node = _node_of({"NodeID": "ab12cd34ef56aa", "NodeManagerAddress": "10.0.0.5",
    ...     "Resources": {"CPU": 3.0, "memory": 1e9, "node:10.0.0.5": 1.0, "accel": 2.0}})
    >>> node["name"], node["cpu"], node["gpu"], node["memory"], node["custom"]
    ('10.0.0.5/ab12cd34ef56', 3.0, 0.0, 1000000000.0, {'accel': 2.0})
    """
    res = info.get("Resources") or {}
    return {"name": f"{info.get('NodeManagerAddress', '?')}/{str(info.get('NodeID', ''))[:12]}",
            "cpu": float(res.get("CPU", 0)), "gpu": float(res.get("GPU", 0)),
            "memory": float(res["memory"]) if "memory" in res else None,
            "custom": {k: float(v) for k, v in res.items() if k not in _NOT_CUSTOM
                       and not k.startswith(("node:", "accelerator_type:"))}}


class _RayActorAgent(Agent):
    def __init__(self, ray: Any, actor: Any, ref: Any) -> None:
        self._ray, self.actor, self.ref = ray, actor, ref

    def exit_status(self) -> str | None:
        ready, _ = self._ray.wait([self.ref], timeout=0)
        if not ready:
            return None
        try:
            return f"Ray actor {self._ray.get(self.ref)}"
        except Exception as exc:  # noqa: BLE001 - the actor died; say how
            return f"Ray actor died: {_ray_error_text(exc)}"

    def kill(self) -> None:
        try:
            self._ray.kill(self.actor, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone
            pass


class RayBackend(ConnectionBackend):
    """Trials as Ray actors.

    Args:
        address: Ray cluster address (default ``$POPTUNE_ADDRESS``; None starts local Ray, or
            joins ``$RAY_ADDRESS`` when a cluster answers there: :func:`choose_address`).
        connect_timeout: seconds to wait for a TCP connection to ``address`` before giving up
            (a closed port fails at once); Ray itself would retry for many minutes.
        init_kwargs: passed to ``ray.init`` when this backend starts Ray.
    """

    runs_elsewhere = True  # a local storage_path must be shared: see Worker._check_storage
    placed_by_cluster = True  # Ray starts an actor when a node has its resources free

    assigns_devices = True

    def __init__(self, address: str | None = None, connect_timeout: float = 10.0,
                 **init_kwargs: Any) -> None:
        super().__init__()
        self._ray = require("ray", "the Ray backend")
        address = address or os.environ.get("POPTUNE_ADDRESS") or None
        self._started_ray = False
        if not self._ray.is_initialized():
            if address:
                # ray.init retries a silent address for many minutes (20 attempts of ~40 s
                # each in Ray 2.x): find out at once whether anything listens there
                dialled, source = _resolve_auto(address, init_kwargs)
                _check_reachable(dialled, connect_timeout, source)
            else:  # never the dead cluster a stale RAY_ADDRESS or ray_current_cluster names
                address = choose_address(init_kwargs, min(connect_timeout, 2.0))
            try:
                from poptune._compat import log_to_driver

                # poptune.init(log_to_driver=...) / RAY_LOG_TO_DRIVER, unless given here
                self._ray.init(address=address, ignore_reinit_error=True,
                               include_dashboard=False,
                               **{"log_to_driver": log_to_driver(), **init_kwargs})
            except Exception as exc:  # noqa: BLE001 - a cluster that does not answer
                local = address == "local"
                what = ("start a local Ray instance" if local
                        else f"connect to the Ray cluster at {address}")
                raise TuneError(
                    f"could not {what}: {type(exc).__name__}: {str(exc).rstrip('.')}. "
                    f"{_what_to_check(None if local else address)}"
                ) from exc
            self._started_ray = True
        elif address and host_port(address):
            _warn_if_other_cluster(self._ray, address)
        remote = self._ray.remote(num_cpus=0)
        from poptune.backends._agent import RayAgent

        self._actor_cls = remote(RayAgent)
        self._host = "127.0.0.1" if self._is_local() else driver_ip()

    def _is_local(self) -> bool:
        nodes = [n for n in self._ray.nodes() if n.get("Alive")]
        ips = {n.get("NodeManagerAddress") for n in nodes}
        return ips <= {"127.0.0.1", driver_ip(), socket.gethostbyname(socket.gethostname())}

    def total_resources(self) -> dict[str, Any]:
        """The cluster's CPUs, GPUs, memory and custom resources (``ray start
        --resources``), as trials may ask for them, in all and per alive node (a trial's
        actor must fit one node)."""
        nodes = [_node_of(n) for n in self._ray.nodes() if n.get("Alive")]
        return cluster_offer(nodes, "the Ray cluster",
                             memory=any(n["memory"] is not None for n in nodes))

    def _reuse_across_shapes(self) -> bool:
        return False  # an idle actor holds cluster resources: free them for other shapes

    def _listen(self) -> Listener:
        return Listener((self._host if self._host == "127.0.0.1" else "0.0.0.0", 0),
                        family="AF_INET", authkey=self._authkey)

    def _start_agent(self, agent_id: str, resources: dict[str, float]) -> Agent:
        assert self._listener is not None
        opts: dict[str, Any] = {"num_cpus": resources.get("cpu", 1.0),
                                "num_gpus": resources.get("gpu", 0.0), "max_restarts": 0}
        if resources.get("memory"):  # bytes, as Ray's ``memory`` resource
            opts["memory"] = resources["memory"]
        custom = {k: v for k, v in resources.items() if k not in _RESOURCE_NAMES and v}
        if custom:
            opts["resources"] = custom
        actor = self._actor_cls.options(**opts).remote()
        port = self._listener.address[1]
        ref = actor.serve.remote((self._host, port), self._authkey.hex(), agent_id)
        return _RayActorAgent(self._ray, actor, ref)

    def _cleanup(self) -> None:
        if self._started_ray and os.environ.get("POPTUNE_KEEP_RAY") != "1":
            self._ray.shutdown()
