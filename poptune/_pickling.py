"""Configs pickled with references to the experiment's constants.

A ``param_space`` may hold big objects (a dataset, a model) that every trial's config shares.
They are pickled once per experiment (the "constants"); a trial's config is pickled with a
reference to each of them by index, and unpickled against the same list.

Example:
    >>> data = list(range(1000))
    >>> blob = dump_config({"lr": 0.1, "data": data}, {id(data): 0})
    >>> len(blob) < 100
    True
    >>> load_config(blob, [data])["data"] is data
    True
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import cloudpickle


class _RefPickler(cloudpickle.Pickler):
    def __init__(self, file: io.BytesIO, refs: dict[int, int]) -> None:
        super().__init__(file)
        self._refs = refs

    def persistent_id(self, obj: Any) -> Any:  # noqa: D401 - pickle hook
        return self._refs.get(id(obj))


class _RefUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, constants: list[Any]) -> None:
        super().__init__(io.BytesIO(data))
        self._constants = constants

    def persistent_load(self, pid: Any) -> Any:  # noqa: D401 - pickle hook
        return self._constants[pid]


#: the types whose values pickle the same with ``pickle`` and ``cloudpickle``
PLAIN = frozenset({int, float, str, bool, type(None)})


def is_plain(value: Any) -> bool:
    """Whether ``value`` is JSON-like plain data (nested dicts with str keys, lists).

    Example:
        >>> is_plain({"a": [1, 2.0, "x", None]}), is_plain({"f": len})
        (True, False)
    """
    kind = type(value)
    if kind in PLAIN:
        return True
    if kind is dict:
        return all(type(k) is str and is_plain(v) for k, v in value.items())
    if kind is list:
        return all(is_plain(v) for v in value)
    return False


def dump_config(config: Any, refs: dict[int, int]) -> bytes:
    """Pickle ``config``; an object whose ``id`` is in ``refs`` becomes a reference to that
    index of the constants."""
    if not refs and is_plain(config):  # nothing to refer to: the C pickler alone, sooner
        return pickle.dumps(config, protocol=pickle.HIGHEST_PROTOCOL)
    buf = io.BytesIO()
    _RefPickler(buf, refs).dump(config)
    return buf.getvalue()


def load_config(blob: bytes, constants: list[Any]) -> Any:
    """Unpickle what :func:`dump_config` made, against the same ``constants``."""
    return _RefUnpickler(blob, constants).load()
