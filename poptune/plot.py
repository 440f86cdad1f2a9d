"""Pictures of an experiment directory: curves, PBT schedules, family tree, scatter plots.

Every function takes an experiment directory (or a :class:`poptune.lineage.Experiment`
already loaded), returns a :class:`matplotlib.figure.Figure` drawn on the Agg canvas (no
display, the global backend is left alone) and, given ``out``, saves it as a PNG.
matplotlib is optional: ``pip install 'poptune[plot]'``.

Example:
    >>> import tempfile
    >>> from poptune import plot
    >>> paths = plot.plot_all("~/poptune_results/pbt_function_api_example",
    ...                       tempfile.mkdtemp())  # doctest: +SKIP
    >>> [os.path.basename(p) for p in paths]  # doctest: +SKIP
    ['metric.png', 'schedules.png', 'family_tree.png', 'scatter_lr.png', ...]
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Union

from poptune._imports import require
from poptune._validation import bad_type, bad_value, check_one_of
from poptune.lineage import (
    Experiment,
    TrialRecord,
    _chain,
    _flatten,
    _iteration,
    _lookup,
    load_experiment,
    mutated_keys,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["PlotWarning", "plot_all", "plot_best_over_time", "plot_family_tree", "plot_metric",
           "plot_scatter", "plot_schedules", "plot_trials_over_time"]

ExpLike = Union[str, "os.PathLike[str]", Experiment]


class PlotWarning(UserWarning):
    """:func:`plot_all` could not draw one of its plots (the others are written)."""


_LEGEND_MAX = 10
_DPI = 110


# -- shared helpers -------------------------------------------------------------------------
def _figure(width: float, height: float) -> Figure:
    require("matplotlib", "poptune.plot")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, out: str | os.PathLike[str] | None) -> Figure:
    if out is not None:
        if not isinstance(out, (str, os.PathLike)):
            raise bad_type("out", out, "the path of a PNG file to write (str or os.PathLike)")
        path = os.path.expanduser(os.fspath(out))
        if os.path.isdir(path):
            raise bad_value("out", out, "the path of a PNG file to write, not a directory")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=_DPI)
    return fig


def _text(value: Any) -> str:
    """``value`` as matplotlib text drawn literally: a ``$`` in a metric or hyperparameter
    name (``score$x$``) would start mathtext, which renders it as math or fails to parse."""
    return str(value).replace("$", r"\$")


def _exp(experiment: ExpLike) -> Experiment:
    return experiment if isinstance(experiment, Experiment) else load_experiment(experiment)


def _colors(exp: Experiment) -> dict[str, Any]:
    require("matplotlib", "poptune.plot")
    from matplotlib import colormaps

    n = len(exp.trials)
    cmap = colormaps["tab10" if n <= 10 else "tab20" if n <= 20 else "viridis"]
    pick = (lambda i: cmap(i)) if n <= 20 else (lambda i: cmap(i / max(n - 1, 1)))
    return {t.trial_id: pick(i) for i, t in enumerate(exp.trials)}


def _light(color: Any, amount: float = 0.6) -> tuple[float, ...]:
    """``color`` mixed with white."""
    return tuple(1 - (1 - c) * (1 - amount) for c in color[:3])


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _last_value(trial: TrialRecord, metric: str) -> float | None:
    for row in reversed(trial.rows):
        value = _number(_lookup(row, metric))
        if value is not None:
            return value
    return None


def check_metric_reported(metric: str, found: bool, reported: Iterable[str], where: str,
                          name: str = "`metric`") -> None:
    """The one check (and message) for a ``metric`` no trial reported, shared by the plots
    and ``poptune show``/``poptune ls``: raise unless ``found``.

    ``reported`` are the numeric metrics the trials did report (their last results; the
    ``config/...`` keys and the keys poptune fills in, such as ``pid`` or ``timestamp``, are
    left out), ``where`` the experiment (or storage) they were read from, ``name`` what the
    message calls the metric (``--metric`` on the command line).

    Raises:
        ValueError: ``found`` is false (the message lists ``reported``).

    Example:
        >>> try:
        ...     check_metric_reported("nope", False, ["score", "loss"], "/tmp/exp")
        ... except ValueError as exc:
        ...     print(str(exc).replace("; ", ";\\n"))
        `metric` must be a numeric metric the trials reported, got 'nope';
        reported in /tmp/exp: ['loss', 'score']
    """
    if found:
        return
    from poptune.result import AUTO_RESULT_KEYS

    seen = sorted({k for k in reported if not k.startswith("config/")
                   and k not in AUTO_RESULT_KEYS})
    raise ValueError(f"{name} must be a numeric metric the trials reported, got {metric!r}; "
                     f"reported in {where}: {seen}")


def _check_metric(exp: Experiment, metric: str) -> None:
    found = any(_number(_lookup(r, metric)) is not None for t in exp.trials for r in t.rows)
    seen = () if found else (k for t in exp.trials for r in t.rows[-1:]
                             for k, v in _flatten(r).items() if _number(v) is not None)
    check_metric_reported(metric, found, seen, exp.path)


def out_dir_problem(out: str | os.PathLike[str]) -> str | None:
    """Why no directory can be made (or used) at ``out``, or None: it is a file, or a path
    component above it is one.

    Example:
        >>> import tempfile
        >>> out_dir_problem(tempfile.mkdtemp()) is None
        True
        >>> f = tempfile.NamedTemporaryFile()
        >>> out_dir_problem(f.name)
        'it is a file'
        >>> out_dir_problem(os.path.join(f.name, "plots")).endswith("is a file")
        True
    """
    path = os.path.abspath(os.path.expanduser(os.fspath(out)))
    probe = path
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if os.path.isdir(probe):
        return None
    return "it is a file" if probe == path else f"{probe} is a file"


def _log_scale(values: list[float]) -> bool:
    return bool(values) and min(values) > 0 and max(values) / min(values) > 50


def _legend(ax: Axes, exp: Experiment, **kwargs: Any) -> None:
    if len(exp.trials) <= _LEGEND_MAX:
        ax.legend(fontsize="small", framealpha=0.85, **kwargs)


def _best(exp: Experiment, metric: str | None, mode: str | None) -> TrialRecord | None:
    if not metric or mode not in ("min", "max"):
        return None
    scored = [(v, t) for t in exp.trials if (v := _last_value(t, metric)) is not None]
    if not scored:
        return None
    pick = max if mode == "max" else min
    return pick(scored, key=lambda vt: vt[0])[1]


# -- the plots ------------------------------------------------------------------------------
def plot_metric(experiment_dir: ExpLike, metric: str, out: str | os.PathLike[str] | None = None,
                ax: Axes | None = None) -> Figure:
    """``metric`` per trial over ``training_iteration``, with PBT exploits marked.

    Each exploit shows as a cross where the target stopped (its ``target_iteration``) and
    a dashed line from the donor's curve at ``donor_iteration`` to the target's first
    result after it resumed from the donor's checkpoint.

    Args:
        experiment_dir: the experiment directory (or a loaded ``Experiment``).
        metric: a reported metric, e.g. ``"mean_accuracy"`` (``"a/b"`` reaches nested ones).
        out: save the figure as a PNG here.
        ax: draw into these axes instead of a new figure.

    Raises:
        ValueError: no trial reported ``metric`` (the message lists what they reported).

    Example:
        >>> fig = plot_metric("~/poptune_results/exp", "mean_accuracy",
        ...                   out="/tmp/metric.png")  # doctest: +SKIP
    """
    exp = _exp(experiment_dir)
    _check_metric(exp, metric)
    if ax is None:
        ax = _figure(9, 5.2).add_subplot()
    colors = _colors(exp)

    def point(row: dict[str, Any] | None, pos: int = 0) -> tuple[int, float] | None:
        value = _number(_lookup(row, metric)) if row else None
        return None if value is None or row is None else (_iteration(row, pos), value)

    many = len(exp.trials) > _LEGEND_MAX  # no legend: one collection draws every curve
    lines: list[list[tuple[int, float]]] = []
    line_colors: list[Any] = []
    for t in exp.trials:
        for k, seg in enumerate(exp.segments(t.trial_id)):
            pts = [p for i, r in enumerate(seg.rows) if (p := point(r, i)) is not None]
            if many:
                lines.append(pts)
                line_colors.append(colors[t.trial_id])
                continue
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color=colors[t.trial_id],
                    lw=1.3, label=t.label if k == 0 else None)
    if lines:
        from matplotlib.collections import LineCollection

        ax.add_collection(LineCollection(lines, colors=line_colors, linewidths=1.3))
        ax.autoscale_view()
    jumps = 0
    for ev in exp.exploits:
        segs = exp.segments(ev.target_trial_id)
        pos = next((i for i, s in enumerate(segs) if s.event is ev), None)
        if not pos:  # never resumed (the run ended), so nothing to connect
            continue
        stop, start = point(segs[pos - 1].rows[-1]), point(segs[pos].rows[0])
        donor = point(exp.donor_row(ev))
        if stop:
            ax.plot(*stop, marker="x", ms=5, mew=1.2, color=colors[ev.target_trial_id], ls="none")
        if donor and start:
            ax.plot([donor[0], start[0]], [donor[1], start[1]], ls="--", lw=0.8, alpha=0.75,
                    color=colors[ev.target_trial_id])
        jumps += 1
    ax.set_xlabel("training_iteration")
    ax.set_ylabel(_text(metric))
    ax.set_title(f"{_text(metric)} per trial ({len(exp.trials)} trials, "
                 f"{len(exp.exploits)} exploits)")
    ax.grid(alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    if many:
        handles = []
    if jumps:
        from matplotlib.lines import Line2D

        handles += [Line2D([], [], color="0.3", marker="x", ls="none",
                           label="exploited: target stops"),
                    Line2D([], [], color="0.3", ls="--", lw=0.8,
                           label="resumes from donor's checkpoint")]
    if handles:
        ax.legend(handles=handles, fontsize="small", framealpha=0.85, ncol=2)
    return _save(ax.figure, out)  # type: ignore[arg-type]


def _levels(exp: Experiment, key: str) -> list[float]:
    """The distinct values of an integer hyperparameter taking at most 6 (else ``[]``)."""
    values = {v for t in exp.trials for r in t.rows
              if (v := _number(_flatten(r.get("config") or {}).get(key))) is not None}
    whole = all(v.is_integer() for v in values)
    return sorted(values) if whole and 1 < len(values) <= 6 else []


def _numeric_hyperparams(exp: Experiment) -> list[str]:
    keys = []
    for key in mutated_keys(exp):
        values = [_flatten(r.get("config") or {}).get(key) for t in exp.trials for r in t.rows]
        values = [v for v in values if v is not None]
        if values and all(_number(v) is not None for v in values):
            keys.append(key)
    return keys


def plot_schedules(experiment_dir: ExpLike, out: str | os.PathLike[str] | None = None
                   ) -> Figure:
    """Each trial's hyperparameter schedule as step lines, one subplot per numeric mutated
    hyperparameter (as each trial ran them, see :func:`poptune.lineage.hyperparam_schedule`).

    A trial's value is drawn over the iterations it produced with it; a dotted jump joins
    the value it had when exploited to the value it resumed with at the donor's iteration.

    Example:
        >>> fig = plot_schedules("~/poptune_results/exp", out="/tmp/s.png")  # doctest: +SKIP
    """
    exp = _exp(experiment_dir)
    keys = _numeric_hyperparams(exp)
    fig = _figure(9, 1.2 + 2.6 * max(len(keys), 1))
    if not keys:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "No numeric hyperparameter changed during this experiment",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return _save(fig, out)
    axes = fig.subplots(len(keys), 1, sharex=True, squeeze=False)[:, 0]
    colors = _colors(exp)
    for ax, key in zip(axes, keys):
        seen: list[float] = []
        levels = _levels(exp, key)
        for i, t in enumerate(exp.trials):
            prev: tuple[int, float] | None = None
            # a few discrete values: offset the lanes slightly so lines do not hide each other
            nudge = (i - (len(exp.trials) - 1) / 2) * 0.25 / max(len(exp.trials), 1) * (
                (levels[-1] - levels[0]) / max(len(levels) - 1, 1)) if levels else 0.0
            for k, seg in enumerate(exp.segments(t.trial_id)):
                value = _number(_flatten(seg.rows[0].get("config") or {}).get(key))
                if value is None:
                    continue
                value += nudge
                x0, x1 = _iteration(seg.rows[0], 0) - 1, _iteration(seg.rows[-1], 0)
                seen.append(value)
                if prev is not None:
                    ax.plot([prev[0], x0], [prev[1], value], color=colors[t.trial_id], lw=0.8,
                            ls="-" if prev[0] == x0 else ":", alpha=0.8)
                ax.plot([x0, x1], [value, value], color=colors[t.trial_id], lw=1.6,
                        label=t.label if k == 0 else None)
                prev = (x1, value)
        if levels:
            ax.set_yticks(levels, [f"{v:g}" for v in levels])
        elif _log_scale(seen):
            ax.set_yscale("log")
        ax.set_ylabel(_text(key))
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("training_iteration")
    axes[0].set_title(f"Hyperparameter schedules ({len(exp.trials)} trials, "
                      f"{len(exp.exploits)} exploits)")
    _legend(axes[0], exp, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, out)


def plot_family_tree(experiment_dir: ExpLike, out: str | os.PathLike[str] | None = None,
                     metric: str | None = None, mode: str | None = None) -> Figure:
    """The population's family tree: one lane per trial over ``training_iteration``, an
    arrow from the donor's lane at ``donor_iteration`` to the target's lane at
    ``target_iteration`` for each exploit.

    With ``metric`` and ``mode`` (inferred from ``tuner.pkl`` when omitted) each lane ends
    with the trial's final value, and the lineage of the best trial's final model is drawn
    in black.

    Example:
        >>> fig = plot_family_tree("~/poptune_results/exp", out="/tmp/t.png")  # doctest: +SKIP
    """
    exp = _exp(experiment_dir)
    if metric is None or mode is None:
        metric, mode = _infer(exp.path, metric, mode)
    n = len(exp.trials)
    fig = _figure(10, 1.4 + 0.45 * max(n, 2))
    ax = fig.add_subplot()
    colors, lane = _colors(exp), {t.trial_id: i for i, t in enumerate(exp.trials)}
    x_end = max((_iteration(r, i) for t in exp.trials for i, r in enumerate(t.rows)), default=1)
    for t in exp.trials:
        y = lane[t.trial_id]
        for seg in exp.segments(t.trial_id):
            ax.plot([_iteration(seg.rows[0], 0) - 1, _iteration(seg.rows[-1], 0)], [y, y],
                    color=_light(colors[t.trial_id]), lw=5, solid_capstyle="butt", zorder=1)
        ax.plot([0, x_end], [y, y], color="0.85", lw=0.6, zorder=0)
        value = _last_value(t, metric) if metric else None
        if value is not None:
            ax.text(x_end * 1.01, y, f"{value:.4g}", va="center", fontsize="small")
    for ev in exp.exploits:
        ax.annotate("", xy=(ev.target_iteration, lane[ev.target_trial_id]),
                    xytext=(ev.donor_iteration, lane[ev.donor_trial_id]),
                    arrowprops={"arrowstyle": "-|>", "color": colors[ev.donor_trial_id],
                                "lw": 0.9, "alpha": 0.85, "shrinkA": 0, "shrinkB": 1,
                                "mutation_scale": 8})
    best = _best(exp, metric, mode)
    if best is not None:
        chain = _chain(exp, best.trial_id)
        trail = [(chain[0].donor_trial_id if chain else best.trial_id, 0)]
        for ev in chain:
            trail += [(ev.donor_trial_id, ev.donor_iteration),
                      (ev.target_trial_id, ev.donor_iteration)]  # the model moves lanes
        trail.append((best.trial_id, _iteration(best.rows[-1], 0) if best.rows else 0))
        ax.plot([x for _, x in trail], [lane[t] for t, _ in trail], color="black", lw=1.8,
                label=f"lineage of the best trial ({best.label}, {len(chain)} exploits)")
        ax.legend(loc="upper left", bbox_to_anchor=(0, -0.12), fontsize="small", frameon=False)
    ax.set_yticks(range(n), [t.label for t in exp.trials])
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlim(0, x_end * (1.09 if metric else 1.02))
    ax.set_xlabel("training_iteration")
    ax.grid(axis="x", alpha=0.3)
    tail = f"; final {_text(metric)} at right" if metric else ""
    ax.set_title(f"PBT family tree: {len(exp.exploits)} exploits, arrows donor → target{tail}")
    return _save(fig, out)


def _scatter_keys(exp: Experiment) -> list[str]:
    finals = [_flatten(t.final_config) for t in exp.trials if t.rows or t.params]
    keys = {k for f in finals for k in f}
    return sorted(k for k in keys if len({repr(f.get(k)) for f in finals}) > 1)


def plot_scatter(experiment_dir: ExpLike, metric: str, mode: str | None = None,
                 out: str | os.PathLike[str] | None = None,
                 hyperparams: list[str] | None = None) -> Figure:
    """Final ``metric`` of each trial against each hyperparameter of its final config.

    Works for any experiment. Numbers go on a (log, if they span over 50×) axis; other
    values are categories. With ``mode`` the best trial is starred.

    Args:
        hyperparams: the (flattened) config keys to plot; default: those that differ
            between trials.

    Raises:
        ValueError: ``metric`` was never reported, or no hyperparameter differs.

    Example:
        >>> fig = plot_scatter("~/poptune_results/exp", "loss", "min")  # doctest: +SKIP
    """
    if mode is not None:
        check_one_of("mode", mode, ("min", "max"))
    exp = _exp(experiment_dir)
    _check_metric(exp, metric)
    keys = list(hyperparams) if hyperparams else _scatter_keys(exp)
    if not keys:
        raise ValueError(f"no hyperparameter differs between the trials of {exp.path}; "
                         "pass `hyperparams` to choose some")
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig = _figure(4.2 * cols + 0.6, 3.6 * rows + 0.5)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    colors, best = _colors(exp), _best(exp, metric, mode)
    for ax, key in zip(axes, keys):
        pts = [(_flatten(t.final_config).get(key), v, t) for t in exp.trials
               if (v := _last_value(t, metric)) is not None]
        nums = [_number(x) for x, _, _ in pts]
        numeric = all(n is not None for n in nums)
        cats = sorted({repr(x) for x, _, _ in pts}) if not numeric else []
        index = {c: i for i, c in enumerate(cats)}
        xs = [num if num is not None and numeric else index[repr(x)]
              for (x, _, _), num in zip(pts, nums)]
        rest = [i for i, (_, _, t) in enumerate(pts) if t is not best]  # one call for them
        ax.scatter([xs[i] for i in rest], [pts[i][1] for i in rest],
                   color=[colors[pts[i][2].trial_id] for i in rest], s=36, marker="o",
                   edgecolors="none", zorder=3)
        for xv, (_, y, t) in zip(xs, pts):
            if best is not None and t is best:
                ax.scatter(xv, y, color=colors[t.trial_id], s=140, marker="*",
                           edgecolors="black", zorder=3, label=f"best ({t.label})")
            if len(pts) <= 30:
                ax.annotate(str(t.index), (xv, y), xytext=(4, 3), textcoords="offset points",
                            fontsize="x-small", color="0.3")
        levels = sorted({n for n in nums if n is not None}) if numeric else []
        if numeric and len(levels) <= 6 and all(v.is_integer() for v in levels):
            ax.set_xticks(levels, [f"{v:g}" for v in levels])
            ax.margins(x=0.15)
        elif numeric and _log_scale(levels):
            ax.set_xscale("log")
        if cats:
            ax.set_xticks(range(len(cats)), [_text(c.strip("'")) for c in cats])
        ax.set_xlabel(_text(key))
        ax.set_ylabel(f"final {_text(metric)}")
        ax.grid(alpha=0.3)
        if best is not None:
            ax.legend(fontsize="small")
    for ax in axes[len(keys):]:
        ax.set_axis_off()
    fig.suptitle(f"final {_text(metric)} vs hyperparameters ({len(exp.trials)} trials)")
    return _save(fig, out)


# -- over wall-clock time ------------------------------------------------------------------
def _timeline(exp: Experiment, metric: str | None, mode: str | None) -> dict[str, Any]:
    import json

    from poptune.storage.confined import open_under
    from poptune.timeline import timeline

    start = None
    try:  # the journal's first record is the experiment header, with its start time
        with open_under(exp.path, os.path.join(exp.path, "journal.jsonl")) as f:
            start = _number(json.loads(f.readline()).get("start"))
    except (OSError, ValueError, AttributeError):
        pass
    return timeline([(t.trial_id, t.label, t.rows) for t in exp.trials], metric, mode, start)


def plot_best_over_time(experiment_dir: ExpLike, metric: str | None = None,
                        mode: str | None = None, out: str | os.PathLike[str] | None = None
                        ) -> Figure:
    """The best ``metric`` so far against wall-clock seconds since the experiment started,
    with every result as a faint dot (Syne Tune's ``ExperimentResult.plot``, for any
    experiment). ``metric``/``mode`` default to the experiment's, from ``tuner.pkl``.

    Example:
        >>> fig = plot_best_over_time("~/poptune_results/exp", "loss", "min")  # doctest: +SKIP
    """
    exp = _exp(experiment_dir)
    metric, mode = _infer(exp.path, metric, mode) if metric is None or mode is None else (
        metric, mode)
    if metric is None or mode not in ("min", "max"):
        raise ValueError(f"`metric` and `mode` must be given (inferred from {exp.path}: "
                         f"metric={metric!r}, mode={mode!r})")
    _check_metric(exp, metric)
    tl = _timeline(exp, metric, mode)
    ax = _figure(8, 4.5).add_subplot()
    pts = [p for t in tl["trials"] for p in t["points"]]
    ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=8, color="0.6", alpha=0.5,
               label="results")
    best = tl["best"]
    if best:
        end = max(p[0] for p in pts)
        xs = [b[0] for b in best] + [end]
        ys = [b[1] for b in best] + [best[-1][1]]
        ax.step(xs, ys, where="post", color="C0", lw=2, label=f"best {_text(metric)} so far")
    if _log_scale([p[1] for p in pts]):
        ax.set_yscale("log")
    ax.set_xlabel("wall-clock time (s)")
    ax.set_ylabel(_text(metric))
    ax.set_title(f"Best {_text(metric)} over time ({len(exp.trials)} trials)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save(ax.figure, out)  # type: ignore[arg-type]


def plot_trials_over_time(experiment_dir: ExpLike, metric: str | None = None,
                          mode: str | None = None, out: str | os.PathLike[str] | None = None
                          ) -> Figure:
    """One bar per trial from its start to its end in wall-clock time (one per run when it
    paused or was exploited), coloured by its final ``metric``: idle workers and the gaps of
    synchronous scheduling show as white space.

    Example:
        >>> fig = plot_trials_over_time("~/poptune_results/exp", "loss")  # doctest: +SKIP
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    exp = _exp(experiment_dir)
    if metric is None or mode is None:
        metric, mode = _infer(exp.path, metric, mode)
    if metric is not None:
        _check_metric(exp, metric)
    tl = _timeline(exp, metric, mode)
    n = len(tl["trials"])
    fig = _figure(9, 1.6 + 0.22 * min(max(n, 4), 60))
    ax = fig.add_subplot()
    finals = [t["final"] for t in tl["trials"] if t["final"] is not None]
    cmap = colormaps["viridis" if mode != "max" else "viridis_r"]
    norm = Normalize(min(finals), max(finals)) if finals else None
    bars: dict[str, list[Any]] = {"y": [], "width": [], "left": [], "color": []}
    for lane, t in enumerate(tl["trials"]):
        color = cmap(norm(t["final"])) if norm and t["final"] is not None else "0.7"
        for t0, t1 in t["runs"]:
            bars["y"].append(lane)
            bars["width"].append(max(t1 - t0, 1e-3))
            bars["left"].append(t0)
            bars["color"].append(color)
    if bars["y"]:  # one collection for every run of every trial (a patch each is slow)
        from matplotlib.collections import PolyCollection

        ax.add_collection(PolyCollection(
            [[(x, y - 0.4), (x + w, y - 0.4), (x + w, y + 0.4), (x, y + 0.4)]
             for x, y, w in zip(bars["left"], bars["y"], bars["width"])],
            facecolors=bars["color"], edgecolors="0.3", linewidths=0.3))
        ax.autoscale_view()
    if n <= 40:
        ax.set_yticks(range(n), [_text(t["label"]) for t in tl["trials"]], fontsize="x-small")
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlabel("wall-clock time (s)")
    ax.set_ylabel("trial")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"Trials over time ({n} trials)")
    if norm is not None:
        fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax,
                     label=f"final {_text(metric)}")
    return _save(fig, out)


# -- everything at once --------------------------------------------------------------------
def _infer(path: str, metric: str | None, mode: str | None) -> tuple[str | None, str | None]:
    """Fill ``metric``/``mode`` from the journal's header, else ``tuner.pkl``'s TuneConfig
    (or its scheduler's) found by scanning its opcodes: nothing is ever unpickled here."""
    from poptune.dashboard.data import ExperimentView

    view = ExperimentView(os.path.expanduser(path))
    view.refresh()
    found_metric, found_mode = view.metric_mode()
    if metric is None or metric == found_metric:
        metric = metric or found_metric
        mode = mode or found_mode
    return metric, mode


def plot_all(experiment_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str],
             metric: str | None = None, mode: str | None = None, *,
             over_time: bool = False) -> list[str]:
    """Write every plot of an experiment as PNGs into ``out_dir``; return their paths.

    ``metric.png`` always; with ``over_time`` also ``trials_over_time.png`` and (when the
    mode is known) ``best_over_time.png``; ``schedules.png`` and ``family_tree.png`` when the experiment
    has PBT exploits; ``scatter_<hyperparameter>.png`` for each hyperparameter that differs
    between trials. ``metric``/``mode`` default to the experiment's ``TuneConfig`` (or its
    scheduler's), read from the journal's header or found in ``tuner.pkl`` without
    unpickling it (plotting never runs code from the experiment directory).

    A plot that cannot be drawn does not stop the others: it is left out of the returned
    paths and a :class:`PlotWarning` names its file and why.

    Raises:
        ValueError: ``metric`` was not given and cannot be inferred, or was never reported;
            ``out_dir`` is a file (or lies under one).
        TypeError: ``experiment_dir`` or ``out_dir`` is not a path.
        StorageError: ``experiment_dir`` does not exist or is not an experiment.

    Example:
        >>> plot_all("~/poptune_results/exp", "/tmp/plots")  # doctest: +SKIP
        ['/tmp/plots/metric.png', '/tmp/plots/schedules.png', ...]
    """
    if not isinstance(out_dir, (str, os.PathLike)):
        raise bad_type("out_dir", out_dir, "the path of a directory (str or os.PathLike)")
    problem = out_dir_problem(out_dir)
    if problem is not None:
        raise bad_value("out_dir", os.fspath(out_dir),
                        f"a directory, or a path where one can be made ({problem})")
    if not isinstance(experiment_dir, (str, os.PathLike)):
        raise bad_type("experiment_dir", experiment_dir,
                       "the path of an experiment directory (str or os.PathLike)")
    exp = load_experiment(os.path.expanduser(os.fspath(experiment_dir)))
    metric, mode = _infer(exp.path, metric, mode)
    if metric is None:
        raise ValueError(
            f"`metric` must be given: it could not be inferred from {exp.path} "
            "(TuneConfig(metric=...) was not set there); pass metric=..., e.g. "
            "plot_all(path, out_dir, metric='mean_accuracy', mode='max')")
    _check_metric(exp, metric)  # a usage error before any file is written
    out = os.path.expanduser(os.fspath(out_dir))
    os.makedirs(out, exist_ok=True)
    jobs: list[tuple[str, Any]] = [
        ("metric.png", lambda path: plot_metric(exp, metric, out=path))]
    if exp.exploits:
        jobs.append(("schedules.png", lambda path: plot_schedules(exp, out=path)))
        jobs.append(("family_tree.png", lambda path: plot_family_tree(
            exp, out=path, metric=metric, mode=mode)))
    if over_time:
        jobs.append(("trials_over_time.png",
                     lambda path: plot_trials_over_time(exp, metric, mode, out=path)))
        if mode in ("min", "max"):
            jobs.append(("best_over_time.png",
                         lambda path: plot_best_over_time(exp, metric, mode, out=path)))
    for key in _scatter_keys(exp):
        safe = re.sub(r"[^\w.=-]+", "_", key)
        jobs.append((f"scatter_{safe}.png", lambda path, key=key: plot_scatter(
            exp, metric, mode, out=path, hyperparams=[key])))
    paths = []
    for name, draw in jobs:
        path = os.path.join(out, name)
        try:
            draw(path)
        except OSError:  # the output directory itself: no other plot can be written either
            raise
        except Exception as exc:  # noqa: BLE001 - one plot's failure must not lose the others
            warnings.warn(PlotWarning(f"{path} was not written: {type(exc).__name__}: "
                                      f"{' '.join(str(exc).split())}"), stacklevel=2)
            continue
        paths.append(path)
    return paths
