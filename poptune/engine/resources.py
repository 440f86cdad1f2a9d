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
                 growable: bool = False) -> None:
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
        self._held: dict[str, tuple[float, dict[int, float], dict[str, float] | None]] = {}
        self.zero_cpu_limit = ZERO_CPU_TRIALS_PER_CPU * max(1, int(self.cpu_total))
        self._zero_cpu_held = 0

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
        if resources.get("gpu", 0.0) > self.gpu_total + _EPS:
            return "gpu"
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
        """The custom resources ``resources`` ask more of than the pool offers in all."""
        offered = self.custom_total or {}
        return [k for k, v in resources.items()
                if v and k not in _BUILTIN and v > offered.get(k, 0.0) + _EPS]

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
        if not self.gpu_total and resources.get("gpu", 0.0) > 0:
            return False  # below _EPS too: no GPU to place it on (check_fits_ever lets it by)
        return self._exceeds(resources) is None

    def update(self, cpu: float, gpu: float, memory: float | None = None,
               custom: dict[str, float] | None = None, **_: Any) -> bool:
        """Take a cluster's new totals (nodes joined or left), keeping what trials hold;
        return whether anything changed. A GPU that left is dropped even if a trial held
        part of it (its node is gone; so is the trial's worker)."""
        changed = False
        cpu = float(cpu)
        if cpu != self.cpu_total:
            self.cpu_free += cpu - self.cpu_total
            self.cpu_total = cpu
            self.zero_cpu_limit = ZERO_CPU_TRIALS_PER_CPU * max(1, int(cpu))
            changed = True
        n = int(gpu)
        if n != self.gpu_total:
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

    def allocate(self, key: str, resources: dict[str, float]) -> list[int] | None:
        """Reserve resources for ``key``; return the GPU ids, or None if they don't fit now."""
        plan = self._plan(resources)
        if plan is None:
            return None
        cpu, zero, taken, custom = plan
        if custom:
            for k, v in custom.items():
                self.custom_free[k] -= v
        self.cpu_free -= cpu
        self._zero_cpu_held += zero
        for i, amount in taken.items():
            self.gpu_free[i] -= amount
        self._held[key] = (cpu, taken, custom)
        return sorted(taken)

    def fits_now(self, resources: dict[str, float]) -> bool:
        """Whether :meth:`allocate` would reserve ``resources`` now (nothing is reserved).

        >>> pool = ResourcePool(cpu=1, gpu=0)
        >>> pool.fits_now({"cpu": 1}), pool.allocate("a", {"cpu": 1}), pool.fits_now({"cpu": 1})
        (True, [], False)
        """
        return self._plan(resources) is not None

    def _plan(self, resources: dict[str, float]) -> tuple[float, bool, dict[int, float],
                                                        dict[str, float] | None] | None:
        """What reserving ``resources`` would take: ``(cpu, asks for no CPU, GPU id ->
        fraction, custom amounts)``, or None if they do not fit now."""
        cpu = resources.get("cpu", 1.0)
        gpu = resources.get("gpu", 0.0)
        if cpu > self.cpu_free + _EPS:
            return None
        zero = cpu <= _EPS
        if zero and self._zero_cpu_held >= self.zero_cpu_limit:
            return None
        taken: dict[int, float] = {}
        if gpu > 0:
            if gpu < 1:
                for i, free in enumerate(self.gpu_free):
                    if free + _EPS >= gpu:
                        taken[i] = gpu
                        break
            else:
                whole = [i for i, free in enumerate(self.gpu_free) if free >= 1 - _EPS]
                if len(whole) >= int(gpu):
                    taken = {i: 1.0 for i in whole[: int(gpu)]}
            if not taken:
                return None
        custom = None
        if self.custom_total is not None and len(resources) > 2:  # cpu and gpu: none
            custom = {k: v for k, v in resources.items()
                      if k not in ("cpu", "gpu", "memory") and v}
            if any(v > self.custom_free.get(k, 0.0) + _EPS for k, v in custom.items()):
                return None
        return cpu, zero, taken, custom

    def release(self, key: str) -> None:
        held = self._held.pop(key, None)
        if held is None:
            return
        cpu, taken, custom = held
        self.cpu_free += cpu
        self._zero_cpu_held -= cpu <= _EPS
        for i, amount in taken.items():
            if i < len(self.gpu_free):  # not a GPU that left with its node
                self.gpu_free[i] += amount
        if custom:
            for k, v in custom.items():
                self.custom_free[k] += v

    def max_concurrent(self, resources: dict[str, float]) -> int:
        """How many trials with these resources fit at once on an empty pool."""
        cpu = resources.get("cpu", 1.0)
        gpu = resources.get("gpu", 0.0)
        n = int(self.cpu_total // cpu + _EPS) if cpu > _EPS else self.zero_cpu_limit
        if gpu > 0:
            per_gpu = int(1 // gpu + _EPS) if gpu < 1 else 0
            n = min(n, per_gpu * self.gpu_total if gpu < 1 else int(self.gpu_total // gpu))
        for k, v in (self.custom_total or {}).items():
            need = resources.get(k, 0.0)
            if need:
                n = min(n, int(v // need + _EPS))
        return max(n, 0)


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
