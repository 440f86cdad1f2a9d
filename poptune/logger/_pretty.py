"""``pretty_print(result)``: a result as block YAML, as Ray Tune's ``ray.tune.logger.pretty_print``.

``config`` and ``hist_stats`` and keys whose value is None are left out, keys are sorted,
values that JSON cannot hold become their ``str``, and a list longer than three items is
written on one line (``[1, 2, 3, 4]``). The output reads back with ``yaml.safe_load``.

Example:
    >>> print(pretty_print({"loss": 0.5, "config": {"lr": 1}, "info": {"n": [1, 2]},
    ...                     "done": False, "name": "a: b"}), end="")
    done: false
    info:
      n:
      - 1
      - 2
    loss: 0.5
    name: 'a: b'
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Set
from typing import Any

__all__ = ["pretty_print"]

_FLOW_AFTER = 3  # longer sequences go on one line, as Ray's dumper does
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ./()-]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "~"}


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value).lower()
        return text.replace("e", ".0e") if "." not in text and "e" in text else text
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _RESERVED and not text.endswith(" "):
        return text
    return "'" + text.replace("'", "''") + "'"


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {_flow(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


def _block(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key in sorted(value, key=str):
            item = value[key]
            head = f"{pad}{_scalar(key)}:"
            if isinstance(item, dict) and item:
                lines.append(head)
                lines.extend(_block(item, indent + 2))
            elif isinstance(item, list) and 0 < len(item) <= _FLOW_AFTER:
                lines.append(head)
                lines.extend(_block(item, indent))
            else:
                lines.append(f"{head} {_flow(item)}")
    else:  # a short list
        for item in value:
            if isinstance(item, dict) and item:
                sub = _block(item, indent + 2)
                lines.append(f"{pad}- {sub[0].lstrip()}")
                lines.extend(sub[1:])
            else:
                lines.append(f"{pad}- {_flow(item)}")
    return lines


def pretty_print(result: dict[str, Any], exclude: Set[str] | None = None) -> str:
    """``result`` as YAML text (without ``config``, ``hist_stats``, None values and the keys in
    ``exclude``)."""
    out = {k: v for k, v in result.items()
           if v is not None and k not in ("config", "hist_stats")
           and (exclude is None or k not in exclude)}
    cleaned = json.loads(json.dumps(out, default=str))
    return "\n".join(_block(cleaned, 0)) + "\n" if cleaned else "{}\n"
