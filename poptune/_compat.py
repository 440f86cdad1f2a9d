"""Stand-ins for the few ``ray.*`` calls Ray Tune scripts make around tuning.

They let a script written for Ray run after an import swap (``import poptune as ray``):
``ray.init(num_cpus=2)`` limits poptune's local backend to 2 CPUs, ``ray.shutdown()`` and
``ray.is_initialized()`` do what they say, and nothing starts a cluster.

Example:
    >>> init(num_cpus=2); is_initialized()
    True
    >>> shutdown(); is_initialized()
    False
"""

from __future__ import annotations

import os
from typing import Any

from poptune._validation import check_in_range

_initialized = False


def init(address: str | None = None, *, num_cpus: float | None = None,
         num_gpus: float | None = None, **kwargs: Any) -> None:
    """Record resource limits for the local backend (no cluster is started).

    ``address`` (a Ray cluster) selects the Ray backend when it is available.
    """
    global _initialized
    if num_cpus is not None:
        check_in_range("num_cpus", num_cpus, 0, low_open=True)
        os.environ["POPTUNE_NUM_CPUS"] = str(num_cpus)
    if num_gpus is not None:
        check_in_range("num_gpus", num_gpus, 0)
        os.environ["POPTUNE_NUM_GPUS"] = str(int(num_gpus))
    if address:
        os.environ.setdefault("POPTUNE_ADDRESS", address)
    _initialized = True


def is_initialized() -> bool:
    return _initialized


def shutdown() -> None:
    global _initialized
    _initialized = False


def put(value: Any, **kwargs: Any) -> Any:
    """``ray.put``: poptune ships objects to workers itself, so the reference is the object."""
    return value


def get(ref: Any, **kwargs: Any) -> Any:
    """``ray.get``: the identity for what :func:`put` returned (lists too)."""
    return ref
