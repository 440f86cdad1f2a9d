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

from poptune.exceptions import ResourceError

_EPS = 1e-9


class ResourcePool:
    """Tracks free CPUs and per-GPU free fractions."""

    def __init__(self, cpu: float, gpu: float, memory: float | None = None) -> None:
        #: bytes of memory trials may ask for in all (None: not checked)
        self.memory_total = memory
        self.cpu_total = float(cpu)
        self.gpu_total = int(gpu)
        self.cpu_free = float(cpu)
        self.gpu_free = [1.0] * int(gpu)
        self._held: dict[str, tuple[float, dict[int, float]]] = {}

    def check_fits_ever(self, resources: dict[str, float], what: str = "resources_per_trial") -> None:
        """Raise ``ResourceError`` at once if ``resources`` can never be satisfied here."""
        cpu = resources.get("cpu", 1.0)
        gpu = resources.get("gpu", 0.0)
        if cpu > self.cpu_total + _EPS:
            raise ResourceError(
                f"`{what}` asks for {cpu:g} CPUs per trial, but this machine offers "
                f"{self.cpu_total:g}; request at most {self.cpu_total:g} CPUs"
            )
        if gpu > self.gpu_total + _EPS:
            raise ResourceError(
                f"`{what}` asks for {gpu:g} GPU(s) per trial, but {self.gpu_total} GPU(s) are "
                "available on this machine; request 0 GPUs, run on a machine with GPUs, or set "
                "POPTUNE_NUM_GPUS if detection is wrong"
            )
        memory = resources.get("memory", 0.0) or 0.0
        if self.memory_total is not None and memory > self.memory_total:
            raise ResourceError(
                f"`{what}` asks for {memory:g} bytes of memory per trial, but this machine has "
                f"{self.memory_total:g} bytes ({self.memory_total / 2**30:.1f} GiB); `memory` is "
                f"in bytes: request at most {self.memory_total:g}"
            )
        custom = sorted(k for k, v in resources.items() if k not in ("cpu", "gpu", "memory") and v)
        if custom:
            raise ResourceError(
                f"`{what}` asks for custom resources {custom}, which the local backend does not "
                "offer; accepted keys are 'cpu', 'gpu' and 'memory'"
            )

    def allocate(self, key: str, resources: dict[str, float]) -> list[int] | None:
        """Reserve resources for ``key``; return the GPU ids, or None if they don't fit now."""
        cpu = resources.get("cpu", 1.0)
        gpu = resources.get("gpu", 0.0)
        if cpu > self.cpu_free + _EPS:
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
        self.cpu_free -= cpu
        for i, amount in taken.items():
            self.gpu_free[i] -= amount
        self._held[key] = (cpu, taken)
        return sorted(taken)

    def release(self, key: str) -> None:
        held = self._held.pop(key, None)
        if held is None:
            return
        cpu, taken = held
        self.cpu_free += cpu
        for i, amount in taken.items():
            self.gpu_free[i] += amount

    def max_concurrent(self, resources: dict[str, float]) -> int:
        """How many trials with these resources fit at once on an empty pool."""
        cpu = resources.get("cpu", 1.0)
        gpu = resources.get("gpu", 0.0)
        n = int(self.cpu_total // cpu + _EPS) if cpu > 0 else 10**6
        if gpu > 0:
            per_gpu = int(1 // gpu + _EPS) if gpu < 1 else 0
            n = min(n, per_gpu * self.gpu_total if gpu < 1 else int(self.gpu_total // gpu))
        return max(n, 0)


def worker_count(pool: ResourcePool, resources: dict[str, float],
                 max_concurrent: int | None = None, total_samples: int | None = None) -> int:
    """How many trials asking for ``resources`` run at once: what fits the pool, capped by
    ``max_concurrent_trials`` and the number of trials the searcher will make (at least 1).

    >>> worker_count(ResourcePool(cpu=8, gpu=0), {"cpu": 2}, max_concurrent=3, total_samples=10)
    3
    """
    n = pool.max_concurrent(resources)
    if max_concurrent and max_concurrent > 0:
        n = min(n, max_concurrent)
    if total_samples:
        n = min(n, total_samples)
    return max(1, n)


def machine_memory() -> float:
    """Bytes of physical memory on this machine (infinite where the OS does not say)."""
    import os

    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return float("inf")
