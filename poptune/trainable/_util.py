"""``with_parameters`` and ``with_resources``: wrap a trainable without changing it."""

from __future__ import annotations

import functools
import inspect
import math
import pickle
from typing import Any, cast

from poptune._validation import bad_type, bad_value

_RESOURCE_KEYS = {"cpu", "gpu", "memory"}


def normalize_resources(resources: Any, name: str = "resources_per_trial") -> dict[str, float]:
    """Turn ``{"cpu": 1, "gpu": 0.5}`` (or a PlacementGroupFactory-like object) into a dict.

    As in Ray, a CPU count left out is 0 CPUs (``{"gpu": 1}`` is a GPU and no CPU), while
    no request (None or ``{}``) is one CPU. ``{"cpu": 0}`` is accepted (Ray refuses it): such
    trials run a few per CPU (see :mod:`poptune.engine.resources`).

    >>> normalize_resources({"CPU": 2})
    {'cpu': 2.0, 'gpu': 0.0}
    >>> normalize_resources({"gpu": 1})
    {'cpu': 0.0, 'gpu': 1.0}
    """
    if resources is None or (isinstance(resources, dict) and not resources):
        return {"cpu": 1.0, "gpu": 0.0}
    bundles = getattr(resources, "bundles", None)
    if bundles is not None:  # PlacementGroupFactory: sum its bundles
        total: dict[str, float] = {}
        for bundle in bundles:
            for k, v in bundle.items():
                total[k.lower()] = total.get(k.lower(), 0.0) + float(v)
        resources = total
    if not isinstance(resources, dict):
        raise bad_type(name, resources, 'a dict such as {"cpu": 1, "gpu": 0.5}')
    out: dict[str, float] = {"cpu": 0.0, "gpu": 0.0}
    for key, value in resources.items():
        k = str(key).lower()
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
                or not math.isfinite(value)):  # NaN compares false: it would pass `< 0`
            raise bad_value(f"{name}[{key!r}]", value, "a finite number >= 0")
        if k not in _RESOURCE_KEYS:
            out[k] = float(value)  # custom resources are carried but only checked for existence
            continue
        out[k] = float(value)
    if out["gpu"] > 1 and out["gpu"] != int(out["gpu"]):
        raise bad_value(f"{name}['gpu']", out["gpu"], "a fraction <= 1 or a whole number")
    return out


class _Parameters:
    """The objects bound by :func:`with_parameters`.

    In the driver they are the objects themselves. Pickled (when the trainable is shipped to
    the workers, once per worker) they become their cloudpickle bytes (protocol 5) with the
    large contiguous buffers (numpy arrays' data) out of band; each trial then unpickles its
    own copy (:meth:`get`), as each Ray trial gets its own from the object store, the arrays
    over the shipped buffers, read-only and not copied (Ray's zero-copy reads).

    Example:
        >>> import pickle
        >>> import numpy as np
        >>> params = _Parameters({"lst": [1], "arr": np.zeros(2)})
        >>> params.get()["lst"] is params.get()["lst"]  # in the driver: the objects
        True
        >>> shipped = pickle.loads(pickle.dumps(params, protocol=5))
        >>> a, b = shipped.get(), shipped.get()  # in a trial: a copy per call
        >>> a["lst"] is b["lst"], a["arr"].flags.writeable
        (False, False)
    """

    __slots__ = ("_objects", "_data", "_views")

    def __init__(self, objects: dict[str, Any]) -> None:
        self._objects: dict[str, Any] | None = objects
        self._data: bytes | None = None
        self._views: list[memoryview] = []

    @classmethod
    def _shipped(cls, data: bytes, buffers: list[Any]) -> _Parameters:
        params = cls.__new__(cls)
        params._objects = None
        params._data = data
        # read-only views of the buffers (a bytearray when the array was writable): the
        # arrays each trial unpickles over them are read-only, as Ray's
        params._views = [memoryview(b).toreadonly() for b in buffers]
        return params

    def get(self) -> dict[str, Any]:
        """The objects: in the driver, the bound ones; once shipped, a fresh copy."""
        if self._objects is not None:
            return self._objects
        return pickle.loads(cast(bytes, self._data), buffers=self._views)

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, tuple[Any, ...]]:
        if self._objects is not None:
            import cloudpickle

            found: list[pickle.PickleBuffer] = []
            data = cloudpickle.dumps(self._objects, protocol=5, buffer_callback=found.append)
            # the buffers go in the outer pickle as they are (in band, one copy); a protocol
            # without out-of-band buffers takes them as bytes
            buffers: list[Any] = (list(found) if isinstance(protocol, int) and protocol >= 5
                                  else [bytes(b.raw()) for b in found])
        else:
            data = cast(bytes, self._data)
            buffers = [v.obj if isinstance(protocol, int) and protocol >= 5 else v.tobytes()
                       for v in self._views]
        return (_Parameters._shipped, (data, buffers))


def with_parameters(trainable: Any, **kwargs: Any) -> Any:
    """Bind (large) objects to a trainable; they are shipped to each worker once.

    A function is called as ``fn(config, **kwargs)``; a class gets them in
    ``setup(config, **kwargs)``.

    As in Ray, each trial gets its own copy of the objects: what one trial changes in them
    is not seen by the next, even in the same worker process. The objects are pickled when
    the experiment starts (``Tuner.fit()``): changes made to them before that are shipped.
    NumPy arrays (also inside other objects, such as a dict or a pandas DataFrame) are not
    copied for each trial: a trial gets them **read-only**, over the data shipped to its
    worker, as Ray's zero-copy reads from its object store give them. Writing into one
    (``arr += 1``, ``arr[0] = 1``) raises ``ValueError: output array is read-only``; copy it
    first (``arr = arr.copy()``) to change it. (Arrays that are not contiguous, such as
    ``a[::2]``, are copied and writable, as in Ray.) Called directly in the driver, the
    wrapped trainable gets the bound objects themselves.

    >>> def train(config, data=None):
    ...     return len(data)
    >>> wrapped = with_parameters(train, data=[1, 2, 3])
    >>> wrapped({})
    3

    In a trial (here, after the round trip through cloudpickle that ships it to a worker):

    >>> import cloudpickle
    >>> import numpy as np
    >>> def writable(config, arr=None):
    ...     return arr.flags.writeable
    >>> shipped = cloudpickle.loads(cloudpickle.dumps(with_parameters(writable, arr=np.zeros(3))))
    >>> shipped({})
    False
    """
    if not callable(trainable):
        raise bad_type("trainable", trainable, "a function or a Trainable class")
    params = _Parameters(kwargs)
    if inspect.isclass(trainable):
        base = trainable

        class _WithParameters(base):  # type: ignore[misc, valid-type]
            def setup(self, config: dict[str, Any], **extra: Any) -> None:
                base.setup(self, config, **{**params.get(), **extra})  # type: ignore[attr-defined]

        _WithParameters.__name__ = base.__name__
        _WithParameters.__qualname__ = base.__qualname__
        _WithParameters._poptune_resources = getattr(base, "_poptune_resources", None)  # type: ignore[attr-defined]
        return _WithParameters

    @functools.wraps(trainable)
    def _inner(config: dict[str, Any], **extra: Any) -> Any:
        return trainable(config, **{**params.get(), **extra})

    _inner._poptune_resources = getattr(trainable, "_poptune_resources", None)  # type: ignore[attr-defined]
    _inner._poptune_with_parameters = True  # type: ignore[attr-defined]
    return _inner


def with_resources(trainable: Any, resources: Any) -> Any:
    """Attach a resource request (``{"cpu": 2, "gpu": 0.5}``) to a trainable.

    ``resources`` may also be a callable ``config -> dict``, evaluated per trial.
    """
    if not callable(trainable):
        raise bad_type("trainable", trainable, "a function or a Trainable class")
    if not callable(resources):
        normalize_resources(resources, "resources")
    if inspect.isclass(trainable):
        wrapped = type(trainable.__name__, (trainable,), {"_poptune_resources": resources})
        wrapped.__qualname__ = trainable.__qualname__
        wrapped.__module__ = trainable.__module__
        return wrapped

    @functools.wraps(trainable)
    def _inner(*args: Any, **kw: Any) -> Any:
        return trainable(*args, **kw)

    _inner._poptune_resources = resources  # type: ignore[attr-defined]
    return _inner


def trainable_resources(trainable: Any, config: dict[str, Any]) -> dict[str, float] | None:
    """The resources attached by :func:`with_resources`, evaluated for ``config``."""
    res = getattr(trainable, "_poptune_resources", None)
    if res is None:
        default = getattr(trainable, "default_resource_request", None)
        if inspect.isclass(trainable) and default is not None:
            res = default(config)
    if res is None:
        return None
    if callable(res) and not isinstance(res, dict):
        res = res(config)
    return normalize_resources(res, "resources")


def trainable_name(trainable: Any) -> str:
    name = getattr(trainable, "__name__", None) or type(trainable).__name__
    return name if name != "<lambda>" else "lambda"

