"""Shared pieces of the progress output: constants, cell formatting and result lookups.

Pure functions with no ``rich`` import: looking a (possibly nested, ``"a/b"``) key up in a
result or config, formatting table cells and durations, ranking trials by metric. Used by
the reporters (:mod:`poptune.callbacks._progress_base`) and :mod:`poptune.callbacks.progress`.

Example:
    >>> _fmt(3.14159265, 20), _fmt("a long text", 6), _fmt_duration(3725)
    ('3.1416', 'a lon…', '1:02:05')
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from numbers import Integral, Number, Real
from typing import Any, SupportsFloat, TypeGuard

from poptune._dicts import nested_get
from poptune.experiment.trial import Trial, TrialStatus
from poptune.result import AUTO_RESULT_KEYS, DEFAULT_METRIC  # noqa: F401  (re-exported)

Columns = Sequence[str] | Mapping[str, str] | None

_ITER, _TIME = "training_iteration", "time_total_s"
_STATUS_ORDER = (TrialStatus.RUNNING, TrialStatus.PAUSED, TrialStatus.PENDING,
                 TrialStatus.TERMINATED, TrialStatus.ERROR)
_STATUS_STYLE = {TrialStatus.RUNNING: "green", TrialStatus.PAUSED: "yellow",
                 TrialStatus.PENDING: "dim", TrialStatus.TERMINATED: "blue",
                 TrialStatus.ERROR: "bold red"}


#: ``result[key]``, else the nested value at ``"a/b"``, else ``None``.
_lookup = nested_get


def _param(trial: Trial, key: str) -> Any:
    if key in trial.evaluated_params:
        return trial.evaluated_params[key]
    return _lookup(trial.config, key)


def _is_number(value: Any) -> TypeGuard[SupportsFloat]:
    kind = type(value)
    if kind is float or kind is int:  # fast path: an ABC check costs ~1 µs per trial per redraw
        return True
    return isinstance(value, Number) and not isinstance(value, bool)


def _scalar_items(
    result: Mapping[str, Any], prefix: str = "", depth: int = 2
) -> Iterator[tuple[str, Any]]:
    """Numeric leaves of ``result`` as ``("a/b", value)``, at most ``depth`` levels deep."""
    for key, value in result.items():
        if not prefix and key in AUTO_RESULT_KEYS:
            continue
        if isinstance(value, Mapping):
            if depth > 1:
                yield from _scalar_items(value, f"{prefix}{key}/", depth - 1)
        elif _is_number(value):
            yield f"{prefix}{key}", value


def _fmt(value: Any, max_len: int, seconds: bool = False) -> str:
    """A table cell: ints as is, reals with 5 significant digits (``seconds``: 2 decimals),
    the rest cut to ``max_len``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = str(value)
    elif isinstance(value, Integral):
        text = str(int(value))
    elif isinstance(value, Real):
        text = f"{float(value):.2f}" if seconds else f"{float(value):.5g}"
    else:
        text = str(value)
    return text if len(text) <= max_len else text[: max(max_len - 1, 1)] + "…"


def _fmt_duration(seconds: float) -> str:
    """``h:mm:ss``, with a day count when needed."""
    minutes, secs = divmod(int(max(0.0, seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    core = f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{days}d {core}" if days else core


def _first_line(text: str | None) -> str:
    return text.strip().splitlines()[0] if text and text.strip() else ""


def _score_key(trial: Trial, metric: str, mode: str) -> float | None:
    """Sort key where smaller is better; ``None`` when the trial has no usable value."""
    value = _lookup(trial.last_result, metric) if trial.last_result else None
    if not _is_number(value) or math.isnan(number := float(value)):
        return None
    return -number if mode == "max" else number


def _counts_text(counts: Mapping[TrialStatus, int]) -> str:
    return ", ".join(f"{counts[s]} {s}" for s in _STATUS_ORDER if counts.get(s))


def _as_columns(columns: Columns) -> dict[str, str]:
    if columns is None:
        return {}
    if isinstance(columns, Mapping):
        return dict(columns)
    return {c: c for c in columns}
