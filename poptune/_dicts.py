"""The one flatten, unflatten and nested lookup every part of poptune uses.

Semantics follow Ray (``ray._private.dict.flatten_dict`` / ``unflattened_lookup``): nested
dicts become ``"a/b"`` keys, lists and tuples stay whole, and an empty dict has no leaves,
so ``{"a": {}}`` flattens to ``{}`` -- ``progress.csv``, loggers, the dashboard,
schedulers, searchers and ``Result`` all see the same keys.

Example:
    >>> flatten_dict({"val": {"loss": 0.5, "extra": {}}, "lr": [1, 2]})
    {'val/loss': 0.5, 'lr': [1, 2]}
    >>> nested_get({"val": {"loss": 0.5}}, "val/loss")
    0.5
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from poptune._validation import bad_value
from poptune.exceptions import TuneConfigError

__all__ = ["MISSING", "flat_result", "flatten_dict", "nested_get", "unflatten_dict"]


class _Missing:
    """The type of :data:`MISSING` (one instance, with a readable repr)."""

    def __repr__(self) -> str:
        return "MISSING"


#: what :func:`nested_get` returns for an absent key when asked to tell it from ``None``
MISSING: Any = _Missing()


#: common leaf types, checked before the (slow) ``Mapping`` ABC check
_LEAVES = frozenset({int, float, str, bool, list, tuple, type(None)})


def flatten_dict(
    dt: Mapping[Any, Any], delimiter: str = "/", prevent_delimiter: bool = False
) -> dict[str, Any]:
    """Flatten nested dicts into ``{"a/b": value}``; lists are leaves, empty dicts vanish.

    Args:
        dt: the (possibly nested) mapping; it is not modified.
        delimiter: joins the keys of nested levels.
        prevent_delimiter: raise ``TuneConfigError`` if a key already holds ``delimiter``.

    Example:
        >>> flatten_dict({"a": {"b": 1, "c": {"d": 2}}, "e": [3], "f": {}})
        {'a/b': 1, 'a/c/d': 2, 'e': [3]}
        >>> flatten_dict({"a": {"b": 1}}, delimiter=".")
        {'a.b': 1}
    """
    out: dict[str, Any] = {}

    def walk(node: Mapping[Any, Any], prefix: str) -> None:
        for key, value in node.items():
            key = str(key)
            if prevent_delimiter and delimiter in key:
                raise bad_value("key", key, f"free of the delimiter {delimiter!r}")
            full = f"{prefix}{delimiter}{key}" if prefix else key
            if type(value) is dict or (type(value) not in _LEAVES and isinstance(value, Mapping)):
                walk(value, full)
            else:
                out[full] = value

    walk(dt, "")
    return out


def flat_result(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` as schedulers and searchers see it in Ray: flattened when a value is a dict,
    else the very same object (no copy: this runs for every result).

    Example:
        >>> flat_result({"val": {"loss": 1.0}, "config": {"lr": 0.1}, "it": 2})
        {'val/loss': 1.0, 'config/lr': 0.1, 'it': 2}
        >>> r = {"loss": 1.0}
        >>> flat_result(r) is r
        True
    """
    for value in result.values():
        if isinstance(value, dict):
            return flatten_dict(result)
    return result


def unflatten_dict(dt: Mapping[str, Any], delimiter: str = "/") -> dict[str, Any]:
    """Inverse of :func:`flatten_dict`.

    Example:
        >>> unflatten_dict({"a/b": 1, "a/c": 2, "d": 3})
        {'a': {'b': 1, 'c': 2}, 'd': 3}
    """
    out: dict[str, Any] = {}
    for key, value in dt.items():
        *parents, last = str(key).split(delimiter)
        node = out
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise TuneConfigError(
                    f"`{key}` cannot be unflattened: its parent `{part}` holds a "
                    f"{type(node).__name__}, not a dict"
                )
        node[last] = value
    return out


def nested_get(d: Mapping[str, Any] | None, key: str, default: Any = None) -> Any:
    """``d[key]``, else the value at the nested path ``"a/b"`` (``d["a"]["b"]``), else
    ``default`` (pass :data:`MISSING` to tell an absent key from a ``None`` value).

    Example:
        >>> nested_get({"val": {"loss": 0.5}, "a/b": 1}, "val/loss"), nested_get({"a/b": 1}, "a/b")
        (0.5, 1)
        >>> nested_get({"val": {}}, "val/loss") is None, nested_get(None, "x", MISSING)
        (True, MISSING)
    """
    if not d:
        return default
    if key in d:
        return d[key]
    if "/" not in key:
        return default
    node: Any = d
    for part in key.split("/"):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node
