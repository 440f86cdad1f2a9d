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
from typing import Any

from poptune.exceptions import ResourceError

logger = logging.getLogger("poptune")

_EPS = 1e-9
#: trials asking for 0 CPUs run at most this many per CPU of the pool at once (each still
#: needs a worker process or actor): without a cap the pool would hold any number of them
ZERO_CPU_TRIALS_PER_CPU = 4


class ResourcePool:
    """Tracks free CPUs and per-GPU free fractions.

    Trials asking for 0 CPUs are capped at :attr:`zero_cpu_limit` running at once
    (:data:`ZERO_CPU_TRIALS_PER_CPU` per CPU, at least that many): a warning names the cap.

    >>> ResourcePool(cpu=2, gpu=0).max_concurrent({"cpu": 0})
    8
    """

    def __init__(self, cpu: float, gpu: float, memory: float | None = None,
                 custom: dict[str, float] | None = None, where: str = "this machine") -> None:
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
        """Raise ``ResourceError`` at once if ``resources`` can never be satisfied here."""
        cpu = resources.get("cpu", 1.0)
        gpu = resources.get("gpu", 0.0)
        where = self.where
        local = where == "this machine"
        if cpu > self.cpu_total + _EPS:
            hint = "" if local else " (its workers may still be starting)"
            raise ResourceError(
                f"`{what}` asks for {cpu:g} CPUs per trial, but {where} offers "
                f"{self.cpu_total:g}{hint}; request at most {self.cpu_total:g} CPUs"
            )
        if gpu > self.gpu_total + _EPS:
            fix = ("run on a machine with GPUs, or set POPTUNE_NUM_GPUS if detection is wrong"
                   if local else "add workers with GPUs")
            raise ResourceError(
                f"`{what}` asks for {gpu:g} GPU(s) per trial, but {self.gpu_total} GPU(s) are "
                f"available on {where}; request 0 GPUs or {fix}"
            )
        memory = resources.get("memory", 0.0) or 0.0
        if self.memory_total is not None and memory > self.memory_total:
            raise ResourceError(
                f"`{what}` asks for {memory:g} bytes of memory per trial, but {where} has "
                f"{self.memory_total:g} bytes ({self.memory_total / 2**30:.1f} GiB); `memory` is "
                f"in bytes: request at most {self.memory_total:g}"
            )
        custom = sorted(k for k, v in resources.items() if k not in ("cpu", "gpu", "memory") and v)
        offered = self.custom_total or {}
        missing = [k for k in custom if resources[k] > offered.get(k, 0.0) + _EPS]
        if missing:
            has = (f"; it offers {dict(sorted(offered.items()))}" if offered
                   else "; accepted keys are 'cpu', 'gpu' and 'memory'")
            raise ResourceError(
                f"`{what}` asks for custom resources "
                f"{ {k: resources[k] for k in missing} }, which {where} does not offer{has}"
            )

    def allocate(self, key: str, resources: dict[str, float]) -> list[int] | None:
        """Reserve resources for ``key``; return the GPU ids, or None if they don't fit now."""
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
            for k, v in custom.items():
                self.custom_free[k] -= v
        self.cpu_free -= cpu
        self._zero_cpu_held += zero
        for i, amount in taken.items():
            self.gpu_free[i] -= amount
        self._held[key] = (cpu, taken, custom)
        return sorted(taken)

    def release(self, key: str) -> None:
        held = self._held.pop(key, None)
        if held is None:
            return
        cpu, taken, custom = held
        self.cpu_free += cpu
        self._zero_cpu_held -= cpu <= _EPS
        for i, amount in taken.items():
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
