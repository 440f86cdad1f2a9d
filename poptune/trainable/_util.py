"""``with_parameters`` and ``with_resources``: wrap a trainable without changing it."""

from __future__ import annotations

import functools
import inspect
from typing import Any

from poptune._validation import bad_type, bad_value

_RESOURCE_KEYS = {"cpu", "gpu", "memory"}


def normalize_resources(resources: Any, name: str = "resources_per_trial") -> dict[str, float]:
    """Turn ``{"cpu": 1, "gpu": 0.5}`` (or a PlacementGroupFactory-like object) into a dict.

    >>> normalize_resources({"CPU": 2})
    {'cpu': 2.0, 'gpu': 0.0}
    """
    if resources is None:
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
    out: dict[str, float] = {"cpu": 1.0, "gpu": 0.0}
    for key, value in resources.items():
        k = str(key).lower()
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise bad_value(f"{name}[{key!r}]", value, "a number >= 0")
        if k not in _RESOURCE_KEYS:
            out[k] = float(value)  # custom resources are carried but only checked for existence
            continue
        out[k] = float(value)
    if out["gpu"] > 1 and out["gpu"] != int(out["gpu"]):
        raise bad_value(f"{name}['gpu']", out["gpu"], "a fraction <= 1 or a whole number")
    return out


def with_parameters(trainable: Any, **kwargs: Any) -> Any:
    """Bind large objects to a trainable; they are shipped to each worker once.

    A function is called as ``fn(config, **kwargs)``; a class gets them in
    ``setup(config, **kwargs)``.

    >>> def train(config, data=None):
    ...     return len(data)
    >>> wrapped = with_parameters(train, data=[1, 2, 3])
    >>> wrapped({})
    3
    """
    if not callable(trainable):
        raise bad_type("trainable", trainable, "a function or a Trainable class")
    if inspect.isclass(trainable):
        base = trainable
        params = kwargs

        class _WithParameters(base):  # type: ignore[misc, valid-type]
            def setup(self, config: dict[str, Any], **extra: Any) -> None:
                base.setup(self, config, **{**params, **extra})  # type: ignore[attr-defined]

        _WithParameters.__name__ = base.__name__
        _WithParameters.__qualname__ = base.__qualname__
        _WithParameters._poptune_resources = getattr(base, "_poptune_resources", None)  # type: ignore[attr-defined]
        return _WithParameters

    @functools.wraps(trainable)
    def _inner(config: dict[str, Any], **extra: Any) -> Any:
        return trainable(config, **{**kwargs, **extra})

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

