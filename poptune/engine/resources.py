"""Resource accounting for trials: CPUs, whole and fractional GPUs.

Example:
    >>> pool = ResourcePool(cpu=2, gpu=1)
    >>> pool.allocate("a", {"cpu": 1, "gpu": 0.5})
    [0]
    >>> pool.allocate("b", {"cpu": 1, "gpu": 0.5})
    [0]
    >>> pool.allocate("c", {"cpu": 1, "gpu": 0}) is None
    True
"""

from __future__ import annotations

import logging
from typing import Any, cast

from poptune.exceptions import ResourceError

logger = logging.getLogger("poptune")

_EPS = 1e-9
#: trials asking for 0 CPUs run at most this many per CPU of the pool at once (each still
#: needs a worker process or actor): without a cap the pool would hold any number of them
ZERO_CPU_TRIALS_PER_CPU = 4
#: the resource keys that are not custom resources
_BUILTIN = ("cpu", "gpu", "memory")


class ResourcePool:
    """Tracks free CPUs and per-GPU free fractions.

    Trials asking for 0 CPUs are capped at :attr:`zero_cpu_limit` running at once
    (:data:`ZERO_CPU_TRIALS_PER_CPU` per CPU, at least that many): a warning names the cap.

    A *growable* pool is a cluster's (Ray, Dask): nodes join and leave while the experiment
    runs, so :meth:`update` takes the cluster's new totals, and a request larger than what
    the cluster offers now is not an error (it waits, as on Ray Tune: the controller warns).

    A cluster's pool also knows its *nodes* (``nodes``: one dict per machine, with ``name``,
    ``cpu``, ``gpu``, ``memory``, ``custom``; see :func:`cluster_offer`): a trial is placed
    only where one node has all it asks for free (the first such node), as Ray places an
    actor, not merely where the cluster's total has it (and its whole GPUs where one part of
    a node has them: :attr:`Node.gpu_groups`, a Dask worker). A pool without nodes (this
    machine) is one node, as before.

    >>> ResourcePool(cpu=2, gpu=0).max_concurrent({"cpu": 0})
    8
    >>> pool = ResourcePool(cpu=0, gpu=0, where="the Dask cluster", growable=True)
    >>> pool.check_fits_ever({"cpu": 4}), pool.fits_total({"cpu": 4})  # no error: it may grow
    (None, False)
    >>> pool.update(cpu=8, gpu=0), pool.fits_total({"cpu": 4}), pool.max_concurrent({"cpu": 4})
    (True, True, 2)
    """

    def __init__(self, cpu: float, gpu: float, memory: float | None = None,
                 custom: dict[str, float] | None = None, where: str = "this machine",
                 growable: bool = False, nodes: list[dict[str, Any]] | None = None) -> None:
        #: the totals follow a cluster's nodes (:meth:`update`); amounts never fail at once
        self.growable = growable
        #: bytes of memory trials may ask for in all (None: not checked)
        self.memory_total = memory
        #: custom resources (a Ray cluster's ``--resources``) and their free amounts; None:
        #: the backend offers none
        self.custom_total = dict(custom) if custom is not None else None
        self.custom_free = dict(custom or {})
        #: what offers these resources, for messages ("this machine", "the Ray cluster")
        self.where = where
        self.cpu_total = float(cpu)
        self.gpu_total = int(gpu)
        self.cpu_free = float(cpu)
        self.gpu_free = [1.0] * int(gpu)
        #: what each trial holds: CPUs, GPU id -> fraction (on a node: the node's own GPU
        #: numbers), custom amounts, its node (None: a pool without nodes), memory
        self._held: dict[str, tuple[float, dict[int, float], dict[str, float] | None,
                                    Node | None, float]] = {}
        self.zero_cpu_limit = ZERO_CPU_TRIALS_PER_CPU * max(1, int(self.cpu_total))
        self._zero_cpu_held = 0
        #: a cluster's machines (None: no node is known, e.g. this machine's pool); their
        #: GPUs are consecutive entries of :attr:`gpu_free`
        self.nodes: list[Node] | None = None
        #: per request (its items): the nodes whose totals can hold it, first fit first
        self._fitting: dict[tuple[Any, ...], list[Node]] = {}
        if nodes is not None:
            self._set_nodes(nodes)

    def check_fits_ever(self, resources: dict[str, float], what: str = "resources_per_trial") -> None:
        """Raise ``ResourceError`` at once if ``resources`` can never be satisfied here.

        On a growable pool only what no node can ever add fails: custom resources from a
        backend that offers none (Dask); amounts wait for the cluster to grow.
        """
        if self.growable:
            if self.custom_total is None:
                self._check_custom(resources, what)
            return
        over = self._exceeds(resources)
        if over == "custom":
            self._check_custom(resources, what)
        elif over is not None:
            raise self._too_much(over, resources, what)

    def _exceeds(self, resources: dict[str, float]) -> str | None:
        """What ``resources`` ask more of than the pool offers in all (free or not): the
        first of ``"cpu"``, ``"gpu"``, ``"memory"`` and ``"custom"`` that does not fit, or
        None. (Shared by :meth:`check_fits_ever` and :meth:`fits_total`, which the
        controller calls on every tick of a growable pool: keep it cheap.)"""
        if resources.get("cpu", 1.0) > self.cpu_total + _EPS:
            return "cpu"
        gpu = resources.get("gpu", 0.0)
        if gpu and (gpu > self.gpu_total + _EPS or not self.gpu_total):
            return "gpu"  # the epsilon is for float sums: no GPU holds even 1e-10 of one
        memory = resources.get("memory", 0.0) or 0.0
        if self.memory_total is not None and memory > self.memory_total:
            return "memory"
        return "custom" if self._missing_custom(resources) else None

    def _too_much(self, over: str, resources: dict[str, float], what: str) -> ResourceError:
        """The error for ``resources`` asking for more ``over`` (cpu, gpu or memory) than the
        pool offers in all."""
        where = self.where
        if over == "cpu":
            cpu = resources.get("cpu", 1.0)
            return ResourceError(
                f"`{what}` asks for {cpu:g} CPUs per trial, but {where} offers "
                f"{self.cpu_total:g}; request at most {self.cpu_total:g} CPUs"
            )
        if over == "gpu":
            fix = ("run on a machine with GPUs, or set POPTUNE_NUM_GPUS if detection is wrong"
                   if where == "this machine" else "add workers with GPUs")
            return ResourceError(
                f"`{what}` asks for {resources.get('gpu', 0.0):g} GPU(s) per trial, but "
                f"{self.gpu_total} GPU(s) are available on {where}; request 0 GPUs or {fix}"
            )
        memory = resources.get("memory", 0.0) or 0.0
        total = cast(float, self.memory_total)
        return ResourceError(
            f"`{what}` asks for {memory:g} bytes of memory per trial, but {where} has "
            f"{total:g} bytes ({total / 2**30:.1f} GiB); `memory` is in bytes: request at "
            f"most {total:g}"
        )

    def _missing_custom(self, resources: dict[str, float]) -> list[str]:
        """The custom resources ``resources`` ask more of than the pool offers in all (any
        positive amount of one it offers none of)."""
        offered = self.custom_total or {}
        return [k for k, v in resources.items()
                if v and k not in _BUILTIN and (v > offered.get(k, 0.0) + _EPS
                                                or not offered.get(k))]

    def _check_custom(self, resources: dict[str, float], what: str) -> None:
        missing = sorted(self._missing_custom(resources))
        if missing:
            offered = self.custom_total or {}
            has = (f"; it offers {dict(sorted(offered.items()))}" if offered
                   else "; accepted keys are 'cpu', 'gpu' and 'memory'")
            raise ResourceError(
                f"`{what}` asks for custom resources "
                f"{ {k: resources[k] for k in missing} }, which {self.where} does not "
                f"offer{has}"
            )

    def fits_total(self, resources: dict[str, float]) -> bool:
        """Whether ``resources`` fit what the pool offers in all (free or not).

        >>> ResourcePool(cpu=4, gpu=1).fits_total({"cpu": 2, "gpu": 0.5})
        True
        """
        return self._exceeds(resources) is None

    def fits_one_node(self, resources: dict[str, float]) -> bool:
        """Whether ``resources`` fit one node as a whole (free or not): :meth:`fits_total`
        for a pool without nodes. A request that fits the total but no node waits for a
        bigger node (the controller warns as it does for one larger than the total).

        >>> pool = ResourcePool(cpu=4, gpu=0, nodes=[{"name": "a", "cpu": 2},
        ...                                          {"name": "b", "cpu": 2}])
        >>> pool.fits_total({"cpu": 3}), pool.fits_one_node({"cpu": 3})
        (True, False)
        """
        if self.nodes is None:
            return self.fits_total(resources)
        return self.fits_total(resources) and bool(self._nodes_for(resources))

    def update(self, cpu: float, gpu: float, memory: float | None = None,
               custom: dict[str, float] | None = None,
               nodes: list[dict[str, Any]] | None = None, **_: Any) -> bool:
        """Take a cluster's new totals (nodes joined or left), keeping what trials hold;
        return whether anything changed. A GPU that left is dropped even if a trial held
        part of it (its node is gone; so is the trial's worker). ``nodes``: the cluster's
        machines now (see the class); their GPUs replace the ``gpu`` count."""
        changed = False
        cpu = float(cpu)
        if cpu != self.cpu_total:
            self.cpu_free += cpu - self.cpu_total
            self.cpu_total = cpu
            self.zero_cpu_limit = ZERO_CPU_TRIALS_PER_CPU * max(1, int(cpu))
            changed = True
        if nodes is not None:
            changed = self._set_nodes(nodes) or changed
        elif int(gpu) != self.gpu_total:
            n = int(gpu)
            if n > len(self.gpu_free):
                self.gpu_free += [1.0] * (n - len(self.gpu_free))
            else:
                del self.gpu_free[n:]
            self.gpu_total = n
            changed = True
        if memory != self.memory_total:
            self.memory_total = memory
            changed = True
        new = dict(custom) if custom is not None else None
        if new != self.custom_total:
            for k in set(new or {}) | set(self.custom_total or {}):
                delta = (new or {}).get(k, 0.0) - (self.custom_total or {}).get(k, 0.0)
                self.custom_free[k] = self.custom_free.get(k, 0.0) + delta
            self.custom_total = new
            changed = True
        return changed

    def _set_nodes(self, specs: list[dict[str, Any]]) -> bool:
        """Take a cluster's nodes now (``specs``: see the class), keeping what trials hold
        on those that stay (a node is known by its ``name``); rebuild :attr:`gpu_free` from
        their GPUs. Return whether any node joined, left or changed."""
        old = {n.name: n for n in self.nodes or ()}
        nodes: list[Node] = []
        gpus: list[float] = []
        changed = self.nodes is None
        for spec in specs:
            node = old.pop(str(spec["name"]), None)
            if node is None:
                node, kept = Node(str(spec["name"])), []
                changed = True
            else:
                kept = self.gpu_free[node.gpu_start:node.gpu_start + node.gpu]
            changed = node.take(spec) or changed
            node.gpu_start = len(gpus)
            gpus += kept[:node.gpu] + [1.0] * (node.gpu - len(kept))
            nodes.append(node)
        for gone in old.values():  # its trials' workers are gone with it
            gone.gone = changed = True
        self.nodes = nodes
        self.gpu_free = gpus
        self.gpu_total = len(gpus)
        if changed:
            self._fitting.clear()
        return changed

    def allocate(self, key: str, resources: dict[str, float]) -> list[int] | None:
        """Reserve resources for ``key``; return the GPU ids, or None if they don't fit now."""
        plan = self._plan(resources)
        if plan is None:
            return None
        cpu, zero, taken, custom, node, memory = plan
        if custom:
            free = self.custom_free
            for k, v in custom.items():
                free[k] = free.get(k, 0.0) - v
        self.cpu_free -= cpu
        self._zero_cpu_held += zero
        for i, amount in taken.items():
            self.gpu_free[i] -= amount
        if node is not None:
            return self._hold_on(node, key, cpu, taken, custom, memory)
        self._held[key] = (cpu, taken, custom, None, 0.0)
        return sorted(taken)

    def _hold_on(self, node: Node, key: str, cpu: float, taken: dict[int, float],
                 custom: dict[str, float] | None, memory: float) -> list[int]:
        """Reserve on ``node`` what :meth:`allocate` took from the pool (its GPUs are
        held by their number on the node, which stays when other nodes come and go)."""
        node.cpu_held += cpu
        node.memory_held += memory
        if custom:
            for k, v in custom.items():
                node.custom_held[k] = node.custom_held.get(k, 0.0) + v
        start = node.gpu_start
        self._held[key] = (cpu, {i - start: a for i, a in taken.items()}, custom, node, memory)
        return sorted(taken)

    def fits_now(self, resources: dict[str, float]) -> bool:
        """Whether :meth:`allocate` would reserve ``resources`` now (nothing is reserved).

        >>> pool = ResourcePool(cpu=1, gpu=0)
        >>> pool.fits_now({"cpu": 1}), pool.allocate("a", {"cpu": 1}), pool.fits_now({"cpu": 1})
        (True, [], False)
        """
        return self._plan(resources) is not None

    def _plan(self, resources: dict[str, float]) -> tuple[float, bool, dict[int, float],
                                                        dict[str, float] | None,
                                                        Node | None, float] | None:
        """What reserving ``resources`` would take: ``(cpu, asks for no CPU, GPU id ->
        fraction, custom amounts, node, memory)``, or None if they do not fit now."""
        cpu = resources.get("cpu", 1.0)
        if cpu > self.cpu_free + _EPS:
            return None
        zero = cpu <= _EPS
        if zero and self._zero_cpu_held >= self.zero_cpu_limit:
            return None
        if self.nodes is not None:
            return self._plan_on_nodes(resources, cpu, zero)
        gpu = resources.get("gpu", 0.0)
        taken: dict[int, float] = {}
        if gpu > 0:
            taken = _take_gpus(self.gpu_free, gpu)
            if not taken:
                return None
        custom = None
        if self.custom_total is not None and len(resources) > 2:  # cpu and gpu: none
            custom = {k: v for k, v in resources.items()
                      if k not in ("cpu", "gpu", "memory") and v}
            if any(v > self.custom_free.get(k, 0.0) + _EPS for k, v in custom.items()):
                return None
        return cpu, zero, taken, custom, None, 0.0

    def _gpus(self, gpu: float, start: int, stop: int) -> dict[int, float]:
        """GPU id -> fraction for ``gpu`` GPUs among ids ``start`` to ``stop`` (a node's):
        :func:`_take_gpus` on those."""
        taken = _take_gpus(self.gpu_free[start:stop], gpu)
        return {start + i: a for i, a in taken.items()} if start else taken

    def _plan_on_nodes(self, resources: dict[str, float], cpu: float, zero: bool
                       ) -> tuple[float, bool, dict[int, float], dict[str, float] | None,
                                  Node | None, float] | None:
        """:meth:`_plan` on a pool with nodes: the first node with everything free."""
        gpu = resources.get("gpu", 0.0)
        memory = resources.get("memory", 0.0) or 0.0
        custom = {k: v for k, v in resources.items() if v and k not in _BUILTIN} or None
        for node in self._nodes_for(resources):
            if cpu > node.cpu - node.cpu_held + _EPS:
                continue
            if memory and node.memory is not None and (
                    memory > node.memory - node.memory_held + _EPS):
                continue
            if custom and any(v > node.custom.get(k, 0.0) - node.custom_held.get(k, 0.0) + _EPS
                              for k, v in custom.items()):
                continue
            taken = self._node_gpus(node, gpu) if gpu > 0 else {}
            if gpu > 0 and not taken:
                continue
            return cpu, zero, taken, custom, node, memory
        return None

    def _node_gpus(self, node: Node, gpu: float) -> dict[int, float]:
        """GPU id -> fraction for ``gpu`` GPUs on ``node``: whole GPUs all from one of its
        :attr:`Node.gpu_groups` (a Dask task gets one worker's), a fraction from any GPU."""
        start = node.gpu_start
        if gpu < 1 or not node.gpu_groups:
            return self._gpus(gpu, start, start + node.gpu)
        for size in node.gpu_groups:
            taken = self._gpus(gpu, start, start + size) if size + _EPS >= gpu else {}
            if taken:
                return taken
            start += size
        return {}

    def _nodes_for(self, resources: dict[str, float]) -> list[Node]:
        """The nodes whose totals can hold ``resources``, in order (kept per request until
        the nodes change: a cluster's per-trial path looks at those only)."""
        key = tuple(resources.items())
        nodes = self._fitting.get(key)
        if nodes is None:
            if len(self._fitting) > 1000:  # requests made from configs: keep it bounded
                self._fitting.clear()
            nodes = self._fitting[key] = [n for n in self.nodes or () if n.holds(resources)]
        return nodes

    def release(self, key: str) -> None:
        held = self._held.pop(key, None)
        if held is None:
            return
        cpu, taken, custom, node, memory = held
        self.cpu_free += cpu
        self._zero_cpu_held -= cpu <= _EPS
        if custom:
            free = self.custom_free
            for k, v in custom.items():
                free[k] = free.get(k, 0.0) + v
        if node is not None:
            self._release_on(node, cpu, taken, custom, memory)
            return
        for i, amount in taken.items():
            if i < len(self.gpu_free):  # not a GPU that left with its node
                self.gpu_free[i] += amount

    def _release_on(self, node: Node, cpu: float, taken: dict[int, float],
                    custom: dict[str, float] | None, memory: float) -> None:
        """Give back what a trial held on ``node`` (nothing if the node left)."""
        if node.gone:
            return
        node.cpu_held -= cpu
        node.memory_held -= memory
        if custom:
            for k, v in custom.items():
                node.custom_held[k] -= v
        for i, amount in taken.items():
            if i < node.gpu:  # not a GPU the node no longer has
                self.gpu_free[node.gpu_start + i] += amount

    def max_concurrent(self, resources: dict[str, float]) -> int:
        """How many trials with these resources fit at once on an empty pool (on a pool
        with nodes: on each node, added up).

        >>> ResourcePool(cpu=6, gpu=0, nodes=[{"name": "a", "cpu": 3},
        ...                                   {"name": "b", "cpu": 3}]).max_concurrent({"cpu": 2})
        2
        """
        if self.nodes is not None:
            n = sum(node.max_concurrent(resources) for node in self.nodes)
            return min(n, self.zero_cpu_limit) if resources.get("cpu", 1.0) <= _EPS else n
        n = _count(self.cpu_total, self.gpu_total, resources, self.zero_cpu_limit)
        for k, v in (self.custom_total or {}).items():
            need = resources.get(k, 0.0)
            if need:
                n = min(n, int(v // need + _EPS))
        return max(n, 0)

    def largest_node(self, resources: dict[str, float]) -> Node | None:
        """The node that comes closest to holding ``resources``: the most of the asked
        resources in full, then the most CPUs, then GPUs (None: no node known)."""
        return max(self.nodes or (), default=None,
                   key=lambda n: (n.covers(resources), n.cpu, n.gpu))


def _take_gpus(free: list[float], gpu: float) -> dict[int, float]:
    """Index -> fraction in ``free`` (free fractions of GPUs) for ``gpu`` GPUs: a fraction
    on the first GPU with that much free, whole GPUs on the first wholly free ones; {} if
    they are not free."""
    if gpu < 1:
        for i, left in enumerate(free):
            if left + _EPS >= gpu:
                return {i: gpu}
        return {}
    whole = [i for i, left in enumerate(free) if left >= 1 - _EPS]
    return {i: 1.0 for i in whole[: int(gpu)]} if len(whole) >= int(gpu) else {}


def _count(cpu_total: float, gpu_total: int, resources: dict[str, float],
           zero_limit: int) -> int:
    """How many trials asking for ``resources`` the CPUs and GPUs hold (``zero_limit`` for
    trials asking for no CPU)."""
    cpu = resources.get("cpu", 1.0)
    gpu = resources.get("gpu", 0.0)
    n = int(cpu_total // cpu + _EPS) if cpu > _EPS else zero_limit
    if gpu > 0:
        per_gpu = int(1 // gpu + _EPS) if gpu < 1 else 0
        n = min(n, per_gpu * gpu_total if gpu < 1 else int(gpu_total // gpu))
    return n


class Node:
    """One machine of a cluster as a :class:`ResourcePool` sees it: what it offers and what
    trials hold on it; its GPUs are entries ``gpu_start`` to ``gpu_start + gpu`` of the
    pool's ``gpu_free``, split into :attr:`gpu_groups` when a trial gets whole GPUs of one
    part only (a Dask machine's workers)."""

    __slots__ = ("name", "cpu", "gpu", "memory", "custom", "cpu_held", "memory_held",
                 "custom_held", "gpu_start", "gone", "gpu_groups")

    def __init__(self, name: str) -> None:
        self.name = name
        self.cpu = 0.0
        self.gpu = 0
        #: bytes trials may ask for on it (None: not checked)
        self.memory: float | None = None
        self.custom: dict[str, float] = {}
        self.cpu_held = 0.0
        self.memory_held = 0.0
        self.custom_held: dict[str, float] = {}
        self.gpu_start = 0
        #: it left the cluster (what trials held there is not given back)
        self.gone = False
        #: the GPUs of each part of the node that one trial's whole GPUs must come from, in
        #: order (spec ``worker_gpus``: a Dask task runs on one worker); (): the node is one
        self.gpu_groups: tuple[int, ...] = ()

    def take(self, spec: dict[str, Any]) -> bool:
        """Take the node's totals from ``spec``; whether they changed."""
        memory = spec.get("memory")
        groups = _gpu_groups(spec.get("worker_gpus"))
        new = (float(spec.get("cpu", 0.0)), sum(groups) or int(spec.get("gpu", 0)),
               None if memory is None else float(memory),
               {k: float(v) for k, v in (spec.get("custom") or {}).items()}, groups)
        if new == (self.cpu, self.gpu, self.memory, self.custom, self.gpu_groups):
            return False
        self.cpu, self.gpu, self.memory, self.custom, self.gpu_groups = new
        return True

    def most_gpus(self) -> int:
        """The most GPUs one trial can have here: the node's, or its largest GPU group's."""
        return max(self.gpu_groups, default=self.gpu)

    def holds(self, resources: dict[str, float]) -> bool:
        """Whether ``resources`` fit the node's totals (free or not); no ``cpu``: one."""
        return self.covers(resources) == len(resources) and (
            "cpu" in resources or self.cpu >= 1 - _EPS)

    def covers(self, resources: dict[str, float]) -> int:
        """How many of the amounts in ``resources`` fit the node's totals."""
        n = 0
        for k, v in resources.items():
            if k == "cpu":
                n += v <= self.cpu + _EPS
            elif k == "gpu":
                n += v <= _EPS or (self.gpu >= 1 and v <= self.most_gpus() + _EPS)
            elif k == "memory":
                n += not v or self.memory is None or v <= self.memory
            else:
                n += not v or v <= self.custom.get(k, 0.0) + _EPS
        return n

    def max_concurrent(self, resources: dict[str, float]) -> int:
        """How many trials asking for ``resources`` fit the node when it is empty."""
        n = _count(self.cpu, self.gpu, resources, 1 << 30)  # 0 CPUs: the pool's cap
        gpu = resources.get("gpu", 0.0)
        if gpu >= 1 and self.gpu_groups:  # whole GPUs: from one group each
            n = min(n, sum(int(g // gpu + _EPS) for g in self.gpu_groups))
        memory = resources.get("memory", 0.0) or 0.0
        if memory and self.memory is not None:
            n = min(n, int(self.memory // memory + _EPS))
        for k, v in resources.items():
            if v and k not in _BUILTIN:
                n = min(n, int(self.custom.get(k, 0.0) // v + _EPS))
        return max(n, 0)

    def __str__(self) -> str:
        return node_text({"name": self.name, "cpu": self.cpu, "gpu": self.gpu,
                          "memory": self.memory, "custom": self.custom,
                          "worker_gpus": self.gpu_groups})


def _gpu_groups(worker_gpus: Any) -> tuple[int, ...]:
    """:attr:`Node.gpu_groups` from a node spec's ``worker_gpus`` (the ``GPU`` amounts of a
    Dask machine's workers): () unless two or more hold whole GPUs (fractions of a GPU per
    worker keep the machine as one group)."""
    amounts = [float(g) for g in worker_gpus or () if float(g) > 0]
    if len(amounts) < 2 or any(g != int(g) for g in amounts):
        return ()
    return tuple(int(g) for g in amounts)


def node_text(node: dict[str, Any]) -> str:
    """A node for messages: ``name: 3 CPUs, 0 GPUs`` (its largest Dask worker's GPUs when
    it has several, memory and custom resources too).

    >>> node_text({"name": "10.0.0.5", "cpu": 8, "gpu": 1, "memory": 2**34, "custom": {"a": 1}})
    "10.0.0.5: 8 CPUs, 1 GPUs, 16.0 GiB memory, {'a': 1}"
    >>> node_text({"name": "10.0.0.6", "cpu": 2, "gpu": 2, "worker_gpus": [1, 1]})
    '10.0.0.6: 2 CPUs, 2 GPUs, but a Dask task runs on one worker and its largest has 1 GPUs'
    """
    text = (f"{node.get('name')}: {float(node.get('cpu', 0)):g} CPUs, "
            f"{int(node.get('gpu', 0))} GPUs")
    if node.get("worker_gpus"):
        text += (", but a Dask task runs on one worker and its largest has "
                 f"{max(float(g) for g in node['worker_gpus']):g} GPUs")
    if node.get("memory") is not None:
        text += f", {float(node['memory']) / 2**30:.1f} GiB memory"
    return text + (f", {node['custom']}" if node.get("custom") else "")


def cluster_offer(nodes: list[dict[str, Any]], where: str, memory: bool = True,
                  custom: bool = True) -> dict[str, Any]:
    """What a cluster backend's ``total_resources()`` returns: the totals of ``nodes``
    (one dict per machine: ``name``, ``cpu``, ``gpu``, ``memory``, ``custom``; a Dask
    machine's also ``worker_gpus``, its workers' GPUs, see :attr:`Node.gpu_groups`) and the
    nodes themselves. ``memory``/``custom``: whether the cluster offers them at all (Dask
    does not: None).

    >>> offer = cluster_offer([{"name": "a", "cpu": 3, "gpu": 0, "custom": {"x": 1}},
    ...                        {"name": "b", "cpu": 3, "gpu": 1}], "the Ray cluster", memory=False)
    >>> offer["cpu"], offer["gpu"], offer["memory"], offer["custom"], len(offer["nodes"])
    (6.0, 1.0, None, {'x': 1.0}, 2)
    """
    totals: dict[str, float] = {}
    for node in nodes:
        for k, v in (node.get("custom") or {}).items():
            totals[k] = totals.get(k, 0.0) + float(v)
    return {"cpu": float(sum(float(n.get("cpu", 0)) for n in nodes)),
            "gpu": float(sum(float(n.get("gpu", 0)) for n in nodes)),
            "memory": (float(sum(float(n.get("memory") or 0) for n in nodes))
                       if memory else None),
            "custom": totals if custom else None, "where": where, "nodes": nodes}


def pool_of(backend: Any) -> ResourcePool:
    """The resource pool a backend offers: growable for backends whose trials run on a
    cluster (``runs_elsewhere``: Ray, Dask), whose nodes may join during the run."""
    return ResourcePool(**backend.total_resources(),
                        growable=bool(getattr(backend, "runs_elsewhere", False)))


def resource_shape(resources: dict[str, float]) -> tuple[Any, ...]:
    """A hashable key for a resource request (zero amounts left out): the controller tries
    one trial per shape, the backends reuse agents only for the same shape.

    >>> resource_shape({"gpu": 0, "cpu": 1}) == resource_shape({"cpu": 1.0})
    True
    """
    return tuple(sorted((k, float(v)) for k, v in resources.items() if v))


def worker_count(pool: ResourcePool, resources: dict[str, float],
                 max_concurrent: int | None = None, total_samples: int | None = None) -> int:
    """How many trials asking for ``resources`` run at once: what fits the pool, capped by
    ``max_concurrent_trials`` and the number of trials the searcher will make (at least 1).

    >>> worker_count(ResourcePool(cpu=8, gpu=0), {"cpu": 2}, max_concurrent=3, total_samples=10)
    3
    """
    n = pool.max_concurrent(resources)
    capped = resources.get("cpu", 1.0) <= _EPS
    if max_concurrent and max_concurrent > 0:
        capped = capped and max_concurrent > n
        n = min(n, max_concurrent)
    if total_samples:
        capped = capped and total_samples > n
        n = min(n, total_samples)
    if capped:
        _warn_zero_cpu(pool, resources.get("cpu", 1.0))
    return max(1, n)


_warned: set[tuple[float, int]] = set()


def _warn_zero_cpu(pool: ResourcePool, cpu: float) -> None:
    """Say (once per process and cap) that trials asking for no CPU are capped."""
    key = (pool.cpu_total, pool.zero_cpu_limit)
    if key in _warned:
        return
    _warned.add(key)
    logger.warning(
        "poptune: trials ask for %g CPUs; at most %d of them run at once (%d per CPU of the "
        "%g here), not one worker process per trial without limit. Ask for a fraction (e.g. "
        '{"cpu": 0.1}: 10 per CPU) to choose another number.',
        cpu, pool.zero_cpu_limit, ZERO_CPU_TRIALS_PER_CPU, pool.cpu_total)


def machine_memory() -> float:
    """Bytes of physical memory on this machine (infinite where the OS does not say)."""
    import os

    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return float("inf")
