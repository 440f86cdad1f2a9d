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
import types
from collections import ChainMap
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


#: what cloudpickle (from 3.1.3) writes for every code object's file name (for a payload that
#: does not depend on where the function was defined)
_DYNAMIC = "<dynamic-code>"


def _code_reduce_with_filename(code: types.CodeType) -> Any:
    """cloudpickle's reducer of a code object, keeping the object's own ``co_filename``: a
    trial's traceback then names the user's script and shows its lines, as Ray's (which
    bundles an older cloudpickle) does, instead of ``File "<dynamic-code>"``."""
    assert _cloudpickle_code_reduce is not None  # only installed when cloudpickle has it
    ctor, args = _cloudpickle_code_reduce(code)
    return ctor, tuple(code.co_filename if type(a) is str and a == _DYNAMIC else a
                       for a in args)


_cloudpickle_code_reduce = getattr(getattr(cloudpickle, "cloudpickle", None), "_code_reduce",
                                   None)


class _SourcePickler(cloudpickle.Pickler):
    if _cloudpickle_code_reduce is not None:
        dispatch_table = ChainMap({types.CodeType: _code_reduce_with_filename},
                                  cloudpickle.Pickler.dispatch_table)


def dumps_with_sources(obj: Any) -> bytes:
    """``cloudpickle.dumps(obj)``, but functions pickled by value keep their file names (a
    trainable from the user's script: its tracebacks point at the script's lines).

    Example:
        >>> def f():
        ...     return 1
        >>> cloudpickle.loads(dumps_with_sources(f)).__code__.co_filename == (
        ...     f.__code__.co_filename)
        True
    """
    buf = io.BytesIO()
    _SourcePickler(buf, protocol=pickle.DEFAULT_PROTOCOL).dump(obj)
    return buf.getvalue()
