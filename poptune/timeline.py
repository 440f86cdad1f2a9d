"""When each trial ran, in wall-clock seconds since the experiment started.

Rows carry ``timestamp`` (whole epoch seconds, as Ray) and ``time_since_restore`` (precise
seconds since the trial's process started or resumed). Each row bounds the start of its run
to ``[timestamp - time_since_restore, timestamp + 1 - time_since_restore)``; intersecting the
bounds of a run's rows pins its start to well under a second, so every row gets a precise
wall-clock time (a row with a precise ``st_worker_timestamp``, as
:class:`poptune.syne_tune.Reporter` adds, fixes it exactly). A run ends at its last row; a trial that paused or was exploited and
resumed has several runs (``iterations_since_restore`` starts again at 1).

Used by :func:`poptune.plot.plot_best_over_time`, :func:`poptune.plot.plot_trials_over_time`
and the dashboard's ``/timeline`` endpoint.

Example:
    >>> rows = [{"timestamp": 100, "time_since_restore": 0.5, "iterations_since_restore": 1,
    ...          "loss": 3.0},
    ...         {"timestamp": 101, "time_since_restore": 1.2, "iterations_since_restore": 2,
    ...          "loss": 1.0}]
    >>> tl = timeline([("t0", "t0", rows)], metric="loss", mode="min", start=99.0)
    >>> tl["trials"][0]["runs"], tl["trials"][0]["final"]
    ([[1.15, 2.35]], 1.0)
    >>> tl["best"]
    [[1.65, 3.0], [2.35, 1.0]]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["PRECISE_KEY", "run_starts", "timeline"]

#: a precise report time (epoch seconds) when the row has it (Syne Tune's ``Reporter``)
PRECISE_KEY = "st_worker_timestamp"


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _runs(rows: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    runs: list[list[dict[str, Any]]] = []
    last = math.inf
    for row in rows:
        its = _num(row.get("iterations_since_restore"))
        if not runs or (its is not None and its <= last):
            runs.append([])
        runs[-1].append(row)
        last = its if its is not None else last
    return runs


def _start(run: list[dict[str, Any]]) -> float | None:
    lo, hi = -math.inf, math.inf
    for row in run:
        exact = _num(row.get(PRECISE_KEY))
        if exact is not None:  # a precise report time: the start follows from one row
            return exact - _since(row)
        ts = _num(row.get("timestamp"))
        since = _num(row.get("time_since_restore"))
        if since is None:
            since = _num(row.get("time_total_s"))
        if ts is None or since is None:
            continue
        lo, hi = max(lo, ts - since), min(hi, ts + 1 - since)
    if lo == -math.inf:
        return None
    return lo if hi < lo else (lo + hi) / 2


def run_starts(rows: Sequence[dict[str, Any]]) -> list[tuple[float, list[dict[str, Any]]]]:
    """Each run of a trial as ``(epoch start, its rows)`` (runs without times are left out).

    A trial's runs follow one another: when whole-second timestamps cannot tell short runs
    apart, a run starts where the one before it ended (never on top of it).

    >>> rows = [{"timestamp": 100, "time_since_restore": 0.1, "iterations_since_restore": 1},
    ...         {"timestamp": 100, "time_since_restore": 0.1, "iterations_since_restore": 1}]
    >>> [round(s, 2) for s, _ in run_starts(rows)]
    [100.4, 100.5]
    """
    out = []
    prev_end = -math.inf
    for run in _runs(rows):
        start = _start(run)
        if start is not None:
            start = max(start, prev_end)
            out.append((start, run))
            prev_end = start + max(_since(r) for r in run)
    return out


def _since(row: dict[str, Any]) -> float:
    value = _num(row.get("time_since_restore"))
    if value is None:
        value = _num(row.get("time_total_s"))
    return value or 0.0


def timeline(trials: Sequence[tuple[str, str, Sequence[dict[str, Any]]]],
             metric: str | None = None, mode: str | None = None,
             start: float | None = None) -> dict[str, Any]:
    """The wall-clock story of an experiment.

    Args:
        trials: ``(trial_id, label, rows)`` per trial, rows in reporting order (flat keys).
        metric, mode: the metric to follow; ``mode`` ``"min"``/``"max"`` enables ``best``.
        start: the experiment's start (epoch seconds); default: the first run's start.

    Returns:
        ``{"start", "trials": [{"trial_id", "label", "runs": [[t0, t1], ...],
        "points": [[t, value], ...], "final"}], "best": [[t, best so far], ...]}``, times
        in seconds since ``start``.
    """
    per: list[tuple[str, str, list[tuple[float, list[dict[str, Any]]]]]] = [
        (tid, label, run_starts(rows)) for tid, label, rows in trials]
    firsts = [s for _, _, runs in per for s, _ in runs]
    if start is None:
        start = min(firsts) if firsts else 0.0
    out_trials, events = [], []
    for tid, label, runs in per:
        spans, points = [], []
        final = None
        for run_start, run in runs:
            t0 = run_start - start
            times = [t0 + _since(r) for r in run]
            spans.append([round(t0, 3), round(max(times), 3)])
            for t, row in zip(times, run):
                value = _num(row.get(metric)) if metric else None
                if value is not None:
                    points.append([round(t, 3), value])
                    final = value
        out_trials.append({"trial_id": tid, "label": label, "runs": spans, "points": points,
                           "final": final})
        events += points
    best: list[list[float]] = []
    if mode in ("min", "max"):
        for t, value in sorted(events, key=lambda p: p[0]):
            if not best or (value < best[-1][1] if mode == "min" else value > best[-1][1]):
                best.append([t, value])
    return {"start": start, "metric": metric, "mode": mode, "trials": out_trials,
            "best": best}
