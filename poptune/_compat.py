"""Stand-ins for the few ``ray.*`` calls Ray Tune scripts make around tuning.

They let a script written for Ray run after an import swap (``import poptune as ray``):
``ray.init(num_cpus=2)`` limits poptune's local backend to 2 CPUs, ``ray.shutdown()`` and
``ray.is_initialized()`` do what they say, and nothing starts a cluster. A script that joins a
cluster, ``ray.init(address="auto")`` or ``ray.init(address="head:6379")``, gets its trials run
there: the Ray backend, unless ``TuneConfig(backend=...)`` or ``POPTUNE_BACKEND`` says otherwise
(``address="local"`` keeps the local engine, as no address does).

Example:
    >>> init(num_cpus=2); is_initialized()
    True
    >>> shutdown(); is_initialized()
    False
"""

from __future__ import annotations

import os
from typing import Any

from poptune._validation import bad_type, check_in_range

_initialized = False
#: the cluster ``init(address=...)`` named (None: none, or ``"local"``)
_cluster: str | None = None
#: whether ``init`` set ``POPTUNE_ADDRESS`` (``shutdown`` takes it back)
_set_address = False
#: ``init(log_to_driver=...)`` (None: not given)
_log_to_driver: bool | None = None


def init(address: str | None = None, *, num_cpus: float | None = None,
         num_gpus: float | None = None, **kwargs: Any) -> None:
    """Record resource limits for the local backend (no cluster is started), or the Ray
    cluster at ``address`` to run trials on (``"auto"``, ``"host:6379"``, ``"ray://host:10001"``;
    ``"local"`` is the local engine).
    """
    global _initialized, _cluster, _set_address, _log_to_driver
    if kwargs.get("log_to_driver") is not None:
        _log_to_driver = bool(kwargs["log_to_driver"])
    if num_cpus is not None:
        check_in_range("num_cpus", num_cpus, 0, low_open=True)
        os.environ["POPTUNE_NUM_CPUS"] = str(num_cpus)
    if num_gpus is not None:
        check_in_range("num_gpus", num_gpus, 0)
        os.environ["POPTUNE_NUM_GPUS"] = str(int(num_gpus))
    if address is not None and not isinstance(address, str):
        raise bad_type("address", address, 'a Ray cluster address ("auto", "host:6379", '
                       '"ray://host:10001") or "local"')
    if kwargs.get("resources") and not (address and address != "local"):
        import warnings

        warnings.warn(
            f"`resources={kwargs['resources']!r}` is ignored: poptune's local engine offers only "
            "'cpu', 'gpu' and 'memory' (a trial that asks for a custom resource fails before "
            "it starts); on a Ray cluster (`init(address=...)`) the cluster's own resources "
            "count", UserWarning, stacklevel=2)
    if address and address != "local":
        _cluster = address
        if "POPTUNE_ADDRESS" not in os.environ:
            os.environ["POPTUNE_ADDRESS"] = address
            _set_address = True
    _initialized = True


def requested_backend() -> str | None:
    """``"ray"`` after ``init(address=...)`` named a cluster, else None."""
    return "ray" if _cluster else None


def is_initialized() -> bool:
    return _initialized


def log_to_driver() -> bool:
    """Whether the driver shows what trials print (local backend): ``init(log_to_driver=...)``,
    else ``RAY_LOG_TO_DRIVER`` (``1``/``true``), else True, as Ray."""
    if _log_to_driver is not None:
        return _log_to_driver
    env = os.environ.get("RAY_LOG_TO_DRIVER")
    return True if env is None else env.lower() in ("1", "true")


def shutdown() -> None:
    global _initialized, _cluster, _set_address, _log_to_driver
    _initialized, _cluster, _log_to_driver = False, None, None
    if _set_address:
        os.environ.pop("POPTUNE_ADDRESS", None)
        _set_address = False


def put(value: Any, **kwargs: Any) -> Any:
    """``ray.put``: poptune ships objects to workers itself, so the reference is the object."""
    return value


def get(ref: Any, **kwargs: Any) -> Any:
    """``ray.get``: the identity for what :func:`put` returned (lists too)."""
    return ref


def get_gpu_ids() -> list[int | str]:
    """``ray.get_gpu_ids``: the GPUs given to the running trial (``CUDA_VISIBLE_DEVICES``, which
    poptune sets for each trial), as ints (a UUID stays a str); ``[]`` without one."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return [int(g) if g.strip().isdigit() else g.strip() for g in visible.split(",") if g.strip()]
