"""Progress output: Ray Tune's reporters and the callback that drives them.

:class:`ProgressCallback` is what the runner installs. What it prints depends on ``verbose``:

* ``0``: nothing at all.
* ``1``: only a final summary (experiment path, trial counts, best result, total time).
* ``2``: a live table when the console is a terminal (rich ``Live``, redrawn at most
  ``live_refresh_per_second`` times a second), an in-place HTML table in a Jupyter notebook,
  or a plain compact table at most every ``max_report_frequency`` seconds otherwise; then the
  final table and the summary.
* ``3``: like ``2`` plus one line per result, completion and error (Ray's verbosity 3).

The reporters keep Ray's names and arguments (:class:`CLIReporter`,
:class:`JupyterNotebookReporter`, ``should_report``/``report``/``setup``,
``add_metric_column``/``add_parameter_column``); passing one as ``progress_reporter`` chooses
the columns and the plain-output frequency. A user's own :class:`ProgressReporter` subclass
is consulted (at most 4 times a second) at every verbosity but 0.

Cost: a result costs a dictionary store (plus one queued line at verbose 3, printed in one
batch per redraw); tables are built only when a redraw is due, in O(trials), and a live
redraw waits at least ten times its own cost, so drawing takes at most ~10% of the driver.
Tables show at most ``max_progress_rows`` rows: running trials first, then the best by
metric, then the most recently updated, with a "... N more trials not shown" line, and only
the hyperparameter columns that fit the console. ``rich`` is imported on the first draw;
output to a file or pipe is 160 columns wide unless ``$COLUMNS`` or the console says else.

Example:
    >>> import io
    >>> from rich.console import Console
    >>> from poptune.engine.trial import Trial, TrialStatus
    >>> out = io.StringIO()
    >>> cb = ProgressCallback(1, metric="loss", mode="min",
    ...                       console=Console(file=out, width=100), clock=lambda: 0.0)
    >>> t = Trial("abc_00000", "train", {"lr": 0.1}, evaluated_params={"lr": 0.1},
    ...           status=TrialStatus.TERMINATED, last_result={"loss": 0.25})
    >>> cb.setup(total_num_samples=1)
    >>> cb.on_experiment_end([t], experiment_path="/tmp/exp", elapsed=3.0)
    >>> print(out.getvalue().strip())
    Experiment finished after 0:00:03: 1 trial (1 TERMINATED)
    Experiment path: /tmp/exp
    Best result: train_abc_00000 loss=0.25 (lr=0.1)
"""

from __future__ import annotations

import datetime
import enum
import heapq
import io
import itertools
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from numbers import Integral, Number, Real
from typing import TYPE_CHECKING, Any, ClassVar, SupportsFloat, TypeGuard

from poptune._validation import bad_type, bad_value, check_in_range, check_mode
from poptune.callbacks._base import Callback
from poptune.engine.trial import Trial, TrialStatus

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

__all__ = [
    "CLIReporter",
    "JupyterNotebookReporter",
    "ProgressCallback",
    "ProgressReporter",
    "TuneReporterBase",
]

Columns = Sequence[str] | Mapping[str, str] | None

#: Ray's name for the metric used when only ``mode`` is given.
DEFAULT_METRIC = "_metric"
#: Keys the framework fills in; never inferred as user metrics.
AUTO_RESULT_KEYS = frozenset({
    "training_iteration", "time_this_iter_s", "time_total_s", "time_since_restore",
    "iterations_since_restore", "timesteps_this_iter", "timesteps_since_restore",
    "timesteps_total", "episodes_this_iter", "episodes_total", "done", "config", "trial_id",
    "experiment_id", "experiment_tag", "date", "timestamp", "pid", "hostname", "node_ip",
    "should_checkpoint", "checkpoint_dir_name",
})
_ITER, _TIME = "training_iteration", "time_total_s"
_STATUS_ORDER = (TrialStatus.RUNNING, TrialStatus.PAUSED, TrialStatus.PENDING,
                 TrialStatus.TERMINATED, TrialStatus.ERROR)
_STATUS_STYLE = {TrialStatus.RUNNING: "green", TrialStatus.PAUSED: "yellow",
                 TrialStatus.PENDING: "dim", TrialStatus.TERMINATED: "blue",
                 TrialStatus.ERROR: "bold red"}
_CUSTOM_POLL_S = 0.25  # a user's reporter is asked `should_report` at most this often
_IDLE_REDRAW_S = 1.0  # a live table with nothing new still ticks its clock this often
_LOG_WIDTH = 160  # width of plain output to a file or pipe (unless $COLUMNS says otherwise)
_MAX_DRAW_SHARE = 0.1  # a live redraw waits 1/share times its own cost (<= 10% of the driver)


# ----------------------------------------------------------------------------- helpers


def _lookup(result: Mapping[str, Any], key: str) -> Any:
    """``result[key]``, else the nested value at ``"a/b"``, else ``None``."""
    if key in result:
        return result[key]
    if "/" not in key:
        return None
    node: Any = result
    for part in key.split("/"):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


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


# ----------------------------------------------------------------------------- reporters


class ProgressReporter:
    """Base class for progress reporters (Ray Tune's ``ProgressReporter``).

    The callback calls :meth:`setup` once, then asks :meth:`should_report` (at most 4 times a
    second, and with ``done=True`` at the end) and calls :meth:`report` when it says yes.

    Example:
        >>> class CountReporter(ProgressReporter):
        ...     def should_report(self, trials, done=False):
        ...         return done
        ...     def report(self, trials, done, *sys_info):
        ...         print(f"{len(trials)} trials")
    """

    def setup(self, start_time: float | None = None, total_samples: int | None = None,
              metric: str | None = None, mode: str | None = None, **kwargs: Any) -> None:
        """Called once before the first trial starts, with what is known at run time."""

    def should_report(self, trials: list[Trial], done: bool = False) -> bool:
        """Whether :meth:`report` should be called now; ``done`` marks the last attempt."""
        raise NotImplementedError

    def report(self, trials: list[Trial], done: bool, *sys_info: Any) -> None:
        """Show the progress of ``trials``; ``sys_info`` are extra lines to show."""
        raise NotImplementedError

    def set_search_properties(self, metric: str | None, mode: str | None) -> bool:
        """Receive the experiment's metric and mode; ``False`` means they conflict."""
        return True

    def set_total_samples(self, total_samples: int | None) -> None:
        """Receive the number of trials the experiment will run."""


class TuneReporterBase(ProgressReporter):
    """Table-building reporter with Ray's columns, row limits and report frequency.

    Args:
        metric_columns: metrics to show; a dict maps each metric to its column title. When
            omitted, ``metric`` plus up to ``infer_limit`` numeric results are inferred, with
            Ray's default columns (``iter``, ``total time (s)``, ...) when reported.
        parameter_columns: hyperparameters to show (``"a/b"`` for nested ones); a dict maps
            each to its title. When omitted, every sampled hyperparameter is shown.
        total_samples: number of trials the experiment will run (the runner sets it).
        max_progress_rows: rows of the trial table (running, then best, then most recent).
        max_error_rows: rows of the error table.
        max_column_length: cells longer than this are cut with "…".
        max_report_frequency: seconds between two plain reports.
        infer_limit: how many metric columns to infer.
        print_intermediate_tables: show the trial table in intermediate reports (default
            yes); ``False`` shows only the status lines until the end.
        metric: metric that ranks trials ("best"); the experiment's metric when omitted.
        mode: ``"min"`` or ``"max"``.
        sort_by_metric: sort finished trials by metric even when all rows fit.
    """

    DEFAULT_COLUMNS: ClassVar[dict[str, str]] = {
        "mean_accuracy": "acc", "mean_loss": "loss", "episode_reward_mean": "reward",
        "timesteps_total": "ts", _ITER: "iter", _TIME: "total time (s)",
    }

    def __init__(
        self,
        metric_columns: Columns = None,
        parameter_columns: Columns = None,
        total_samples: int | None = None,
        max_progress_rows: int = 20,
        max_error_rows: int = 20,
        max_column_length: int = 20,
        max_report_frequency: float = 5,
        infer_limit: int = 3,
        print_intermediate_tables: bool | None = None,
        metric: str | None = None,
        mode: str | None = None,
        sort_by_metric: bool = False,
    ) -> None:
        for name, value, low in (("max_progress_rows", max_progress_rows, 1),
                                 ("max_error_rows", max_error_rows, 0),
                                 ("max_column_length", max_column_length, 4),
                                 ("infer_limit", infer_limit, 0)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise bad_type(name, value, f"an int >= {low}")
            check_in_range(name, value, low)
        check_in_range("max_report_frequency", max_report_frequency, 0)
        check_mode(mode)
        self._metrics_override = metric_columns is not None
        self._metric_columns = (_as_columns(metric_columns) if self._metrics_override
                                else dict(self.DEFAULT_COLUMNS))
        self._parameter_columns = _as_columns(parameter_columns)
        self._inferred: dict[str, str] = {}
        self._total_samples = total_samples
        self._max_progress_rows = max_progress_rows
        self._max_error_rows = max_error_rows
        self._max_column_length = max_column_length
        self._max_report_frequency = float(max_report_frequency)
        self._infer_limit = infer_limit
        self._print_intermediate_tables = (True if print_intermediate_tables is None
                                           else bool(print_intermediate_tables))
        self._metric = metric
        self._mode = mode
        self._sort_by_metric = sort_by_metric
        self._clock: Callable[[], float] = time.monotonic
        self._start_time = self._clock()
        self._last_report_time: float | None = None
        self._time_budget_s: float | None = None
        self._console: Console | None = None
        self._recency: dict[str, int] = {}  # trial_id -> stamp of its latest event
        self._stamps = itertools.count()

    # --- Ray's configuration API -----------------------------------------------------------

    def setup(self, start_time: float | None = None, total_samples: int | None = None,
              metric: str | None = None, mode: str | None = None, *,
              console: Console | None = None, clock: Callable[[], float] | None = None,
              time_budget_s: float | None = None, **kwargs: Any) -> None:
        """Receive run-time settings; ``start_time`` is read in the reporter's ``clock``.

        Raises:
            TuneConfigError: the reporter has its own ``metric``/``mode`` and the
                experiment's differ.
        """
        if clock is not None:
            self._clock = clock
        if console is not None:
            self._console = console
        self.set_start_time(start_time)
        if total_samples is not None:
            self.set_total_samples(total_samples)
        if not self.set_search_properties(metric, mode):
            which, own, got = (("metric", self._metric, metric)
                               if metric and self._metric and metric != self._metric
                               else ("mode", self._mode, mode))
            raise bad_value(which, got, f"the progress reporter's own {which} {own!r} or None")
        self._time_budget_s = time_budget_s
        self._last_report_time = self._start_time

    def set_search_properties(self, metric: str | None, mode: str | None) -> bool:
        if (metric and self._metric and metric != self._metric) or (
                mode and self._mode and mode != self._mode):
            return False
        self._metric = self._metric or metric
        self._mode = self._mode or mode
        if self._metric is None and self._mode:
            self._metric = DEFAULT_METRIC
        return True

    def set_total_samples(self, total_samples: int | None) -> None:
        self._total_samples = total_samples

    def set_start_time(self, timestamp: float | None = None) -> None:
        self._start_time = self._clock() if timestamp is None else timestamp

    def should_report(self, trials: list[Trial], done: bool = False) -> bool:
        """Yes at the end, or when ``max_report_frequency`` seconds passed since the last yes."""
        now = self._clock()
        last = self._last_report_time
        if last is None or now - last >= self._max_report_frequency:
            self._last_report_time = now
            return True
        return done

    def add_metric_column(self, metric: str, representation: str | None = None) -> None:
        """Show ``metric`` (titled ``representation``); stops inferring metric columns."""
        if metric in self._metric_columns:
            raise ValueError(f"Column {metric} already exists.")
        self._metrics_override = True
        self._metric_columns[metric] = representation or metric

    def add_parameter_column(self, parameter: str, representation: str | None = None) -> None:
        """Show hyperparameter ``parameter`` (``"a/b"`` when nested), titled ``representation``."""
        if parameter in self._parameter_columns:
            raise ValueError(f"Column {parameter} already exists.")
        self._parameter_columns[parameter] = representation or parameter

    # --- what the callback uses ------------------------------------------------------------

    def _touch(self, trial: Trial) -> None:
        """Record that ``trial`` just had an event (O(1); ranks "most recent" rows)."""
        self._recency[trial.trial_id] = next(self._stamps)

    def _infer(self, rows: Iterable[Trial]) -> None:
        limit = self._infer_limit - (1 if self._metric else 0)
        if self._metrics_override or len(self._inferred) >= limit:
            return
        for trial in rows:
            for key, _ in _scalar_items(trial.last_result):
                known = key in self._inferred or key in self.DEFAULT_COLUMNS
                if not known and key != self._metric:
                    self._inferred[key] = key
                    if len(self._inferred) >= limit:
                        return

    def _metric_titles(self) -> dict[str, str]:
        """Candidate metric columns, user metrics first and ``iter``/``total time`` last."""
        if self._metrics_override:
            cols = dict(self._metric_columns)
        else:
            cols = {}
            if self._metric:
                cols[self._metric] = self.DEFAULT_COLUMNS.get(self._metric, self._metric)
            cols.update((k, v) for k, v in self._inferred.items() if k not in cols)
            cols.update((k, v) for k, v in self._metric_columns.items() if k not in cols)
        for key in (_ITER, _TIME):
            if key in cols:
                cols[key] = cols.pop(key)
        return cols

    def _result_line(self, trial: Trial, result: Mapping[str, Any]) -> str:
        """One line for one result (verbose 3); O(columns), independent of the trial count."""
        self._infer((trial,))
        n = self._max_column_length
        parts = [f"{k}={_fmt(v, n)}" for k, title in self._metric_titles().items()
                 if k not in (_ITER, _TIME) and (v := _lookup(result, k)) is not None]
        elapsed = result.get(_TIME)
        when = f" ({elapsed:.1f}s)" if _is_number(elapsed) else ""
        line = f"Result: {trial} iter {result.get(_ITER, '?')}{when}"
        return f"{line}: {', '.join(parts)}" if parts else line

    def _header(self, counts: Mapping[TrialStatus, int], n: int) -> str:
        done = counts.get(TrialStatus.TERMINATED, 0) + counts.get(TrialStatus.ERROR, 0)
        total_samples = self._total_samples
        if total_samples is not None and (total_samples < 0 or total_samples >= sys.maxsize):
            total = "inf"
        else:
            total = str(max(total_samples or 0, n))
        extra = "".join(f", {counts[s]} {s.value.lower()}"
                        for s in (TrialStatus.PAUSED, TrialStatus.PENDING) if counts.get(s))
        elapsed = self._clock() - self._start_time
        running, errored = counts.get(TrialStatus.RUNNING, 0), counts.get(TrialStatus.ERROR, 0)
        parts = [f"{done}/{total} trials done ({running} running, {errored} errored{extra})",
                 f"elapsed {_fmt_duration(elapsed)}"]
        if self._time_budget_s is not None:
            parts.append(f"time budget left {_fmt_duration(self._time_budget_s - elapsed)}")
        return " | ".join(parts)

    def _best_line(self, best: Trial | None) -> str | None:
        if best is None or not self._metric:
            return None
        n = self._max_column_length
        shown = itertools.islice(best.evaluated_params.items(), 6)
        params = ", ".join(f"{k}={_fmt(v, n)}" for k, v in shown)
        value = _fmt(_lookup(best.last_result, self._metric), n)
        return f"{best} {self._metric}={value}" + (f" ({params})" if params else "")

    def _select_rows(self, trials: Sequence[Trial], scored: list[tuple[float, int, Trial]],
                     done: bool) -> list[Trial]:
        """At most ``max_progress_rows`` trials, grouped by status; O(trials)."""
        max_rows = self._max_progress_rows
        if len(trials) <= max_rows:
            rows = list(trials)
            if self._sort_by_metric and scored:  # finished trials best first (Ray)
                ranked = sorted(scored, key=lambda s: s[:2])
                rank = {id(t): i for i, (_, _, t) in enumerate(ranked)}
                rows.sort(key=lambda t: rank.get(id(t), len(rank))
                          if t.status is TrialStatus.TERMINATED else 0)
        else:
            picked = [t for t in trials if t.status is TrialStatus.RUNNING][:max_rows]
            budget = max_rows - len(picked)
            if budget:
                taken = {id(t) for t in picked}
                best = [t for _, _, t in heapq.nsmallest(budget, scored, key=lambda s: s[:2])]
                recent = heapq.nlargest(budget, (t for t in trials if id(t) not in taken),
                                        key=lambda t: self._recency.get(t.trial_id, -1))
                share = budget if done else (budget + 1) // 2
                for t in itertools.chain(best[:share], recent, best[share:]):
                    if len(picked) >= max_rows:
                        break
                    if id(t) not in taken:
                        taken.add(id(t))
                        picked.append(t)
            rows = picked
        order = {s: i for i, s in enumerate(_STATUS_ORDER)}
        return sorted(rows, key=lambda t: order.get(t.status, len(order)))  # stable in groups

    def _trial_table(self, rows: Sequence[Trial]) -> list[Any]:
        """The trial table, keeping only the columns that fit the console at their full width.

        Name, status and metrics come first; hyperparameter columns that would not fit are
        left out and named below the table rather than squeezed into unreadable "…" cells.
        """
        from rich import box
        from rich.table import Table
        from rich.text import Text

        self._infer(rows)
        n = self._max_column_length
        metrics = {k: title for k, title in self._metric_titles().items()
                   if any(_lookup(t.last_result, k) is not None for t in rows)}
        params = self._parameter_columns or {  # in search-space order, as sampled
            k: k for t in rows for k in t.evaluated_params}
        columns = [(_fmt(title, n), [_fmt(_lookup(t.last_result, k), n, k == _TIME) for t in rows])
                   for k, title in metrics.items()]
        columns += [(_fmt(title, n), [_fmt(_param(t, k), n) for t in rows])
                    for k, title in params.items()]
        names = [str(t) for t in rows]
        gap = 3  # padding and separator between two columns
        used = max(map(len, ["Trial name", *names])) + max(len(str(t.status)) for t in rows) + gap
        width = self._get_console().width
        keep = 0
        for title, cells in columns:
            need = max(len(title), *map(len, cells)) + gap
            if keep and used + need > width:
                break
            used, keep = used + need, keep + 1
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
        table.add_column("Trial name", no_wrap=True)
        table.add_column("status", no_wrap=True)
        for title, _ in columns[:keep]:
            table.add_column(title, justify="right", no_wrap=True)
        for i, t in enumerate(rows):
            table.add_row(names[i], Text(str(t.status), style=_STATUS_STYLE.get(t.status, "")),
                          *(cells[i] for _, cells in columns[:keep]))
        if keep == len(columns):
            return [table]
        left_out = ", ".join(title for title, _ in columns[keep:])
        note = Text(f"({len(columns) - keep} columns not shown: {left_out})", style="dim",
                    no_wrap=True, overflow="ellipsis")
        return [table, note]

    def _render(
        self, trials: Sequence[Trial], done: bool, sys_info: Sequence[Any] = ()
    ) -> RenderableType:
        """Header, best trial, trial table and error table; O(trials)."""
        from rich import box
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        counts = Counter(t.status for t in trials)
        parts: list[Any] = [Text(self._header(counts, len(trials)), style="bold")]
        parts.extend(Text(str(s)) for s in sys_info)
        scored: list[tuple[float, int, Trial]] = []
        if self._metric and self._mode:
            scored = [(k, i, t) for i, t in enumerate(trials)
                      if (k := _score_key(t, self._metric, self._mode)) is not None]
        best = min(scored, key=lambda s: s[:2])[2] if scored else None
        if (line := self._best_line(best)) is not None:
            parts.append(Text(f"Current best: {line}", no_wrap=True, overflow="ellipsis"))
        if trials and (done or self._print_intermediate_tables):
            rows = self._select_rows(trials, scored, done)
            parts.extend(self._trial_table(rows))
            hidden = counts - Counter(t.status for t in rows)
            if hidden:
                parts.append(Text(f"... {sum(hidden.values())} more trials not shown "
                                  f"({_counts_text(hidden)})", style="dim"))
        errored = [t for t in trials if t.error_msg or t.status is TrialStatus.ERROR]
        if errored and self._max_error_rows:
            noun = "trial" if len(errored) == 1 else "trials"
            errors = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                           title=f"Errors ({len(errored)} {noun})", title_justify="left")
            errors.add_column("Trial name", no_wrap=True)
            errors.add_column("# failures", justify="right")
            errors.add_column("error", no_wrap=True, overflow="ellipsis")
            for t in errored[: self._max_error_rows]:
                errors.add_row(str(t), str(t.num_failures), _first_line(t.error_msg))
            parts.append(errors)
            if len(errored) > self._max_error_rows:
                parts.append(Text(f"... {len(errored) - self._max_error_rows} more errored trials",
                                  style="dim"))
        return Group(*parts)

    def _get_console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console()
        return self._console


class CLIReporter(TuneReporterBase):
    """Prints the progress table to the console (Ray Tune's ``CLIReporter``).

    Takes the arguments of :class:`TuneReporterBase`. Passed as
    ``RunConfig(progress_reporter=...)``, it chooses the columns and how often plain output
    is printed; in a terminal the table is shown live instead.

    Example:
        >>> reporter = CLIReporter(metric_columns=["loss", "accuracy"], parameter_columns=["lr"])
        >>> reporter.add_metric_column("f1")
    """

    def report(self, trials: list[Trial], done: bool, *sys_info: Any) -> None:
        self._get_console().print(self._render(trials, done, sys_info))


def _notebook_shell() -> Any:
    """The running IPython kernel shell, or ``None`` outside a notebook (never imports IPython)."""
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython else None
    return None if shell is None or "Terminal" in type(shell).__name__ else shell


class JupyterNotebookReporter(TuneReporterBase):
    """Shows the progress table as HTML in a Jupyter notebook (Ray's ``JupyterNotebookReporter``).

    Args:
        overwrite: update one output in place instead of appending a table per report.
        **kwargs: the arguments of :class:`TuneReporterBase`.

    Outside a notebook kernel it prints text to the console like :class:`CLIReporter`.
    """

    def __init__(self, overwrite: bool = True, metric_columns: Columns = None, *args: Any,
                 **kwargs: Any) -> None:
        super().__init__(metric_columns, *args, **kwargs)
        self._overwrite = overwrite
        self._handle: Any = None

    def _html(self, renderable: RenderableType) -> str:
        from rich.console import Console

        width = self._console.width if self._console is not None else 120
        recorder = Console(file=io.StringIO(), record=True, width=width, force_jupyter=False,
                           force_terminal=True, color_system="truecolor")
        recorder.print(renderable)
        return recorder.export_html(inline_styles=True, code_format=(
            "<pre style=\"white-space:pre;overflow-x:auto;line-height:normal;"
            "font-family:Menlo,'DejaVu Sans Mono',consolas,monospace\">{code}</pre>"))

    def report(self, trials: list[Trial], done: bool, *sys_info: Any) -> None:
        renderable = self._render(trials, done, sys_info)
        if _notebook_shell() is None:
            self._get_console().print(renderable)
            return
        from IPython.display import HTML, display

        html = HTML(self._html(renderable))
        if self._overwrite and self._handle is not None:
            self._handle.update(html)
        else:
            self._handle = display(html, display_id=True)


# ----------------------------------------------------------------------------- callback


class _Display(enum.Enum):
    """How intermediate progress is shown."""

    OFF = "off"  # verbose 0 or 1
    LIVE = "live"  # rich Live in a terminal
    PLAIN = "plain"  # a printed table every max_report_frequency seconds
    NOTEBOOK = "notebook"  # JupyterNotebookReporter, redrawn in place
    CUSTOM = "custom"  # the user's own ProgressReporter decides


class ProgressCallback(Callback):
    """The runner's progress output; see the module docstring for what each verbosity shows.

    Args:
        verbose: 0 (silent), 1 (final summary), 2 (progress table), 3 (plus each result).
            Ray's ``Verbosity``/``AirVerbosity`` enums are accepted.
        reporter: a Ray-style ``progress_reporter``: a :class:`CLIReporter` or
            :class:`JupyterNotebookReporter` sets columns and frequency; any other
            :class:`ProgressReporter` replaces the built-in table.
        metric: the experiment's metric (ranks rows, names the best result).
        mode: ``"min"`` or ``"max"``.
        total_samples: trials the experiment will run (else taken from :meth:`setup`).
        time_budget_s: the experiment's time budget (seconds or a ``timedelta``), to show the
            time left.
        console: where to print (a ``rich.console.Console``); stdout by default.
        clock: monotonic seconds; inject a fake one in tests.
        live_refresh_per_second: most redraws per second of the live table.

    The runner calls ``setup`` once, the trial hooks as events happen, ``on_step_end`` on
    every loop pass (redraws happen there, when due) and ``on_experiment_end`` once, with
    ``experiment_path=`` and ``elapsed=``, also on interrupt (it stops the live display).
    """

    def __init__(
        self,
        verbose: int,
        reporter: ProgressReporter | None = None,
        metric: str | None = None,
        mode: str | None = None,
        total_samples: int | None = None,
        time_budget_s: float | datetime.timedelta | None = None,
        console: Console | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        live_refresh_per_second: float = 4.0,
    ) -> None:
        level = verbose.value if isinstance(verbose, enum.Enum) else verbose
        if not isinstance(level, int) or isinstance(level, bool):
            raise bad_type("verbose", verbose, "an int in [0, 3]")
        check_in_range("verbose", level, 0, 3)
        check_mode(mode)
        if reporter is not None and not (callable(getattr(reporter, "should_report", None))
                                         and callable(getattr(reporter, "report", None))):
            raise bad_type("progress_reporter", reporter, "a ProgressReporter or None")
        if isinstance(time_budget_s, datetime.timedelta):
            time_budget_s = time_budget_s.total_seconds()
        if time_budget_s is not None:
            check_in_range("time_budget_s", time_budget_s, 0)
        check_in_range("live_refresh_per_second", live_refresh_per_second, 0, low_open=True)
        self.verbose = level
        self._user_reporter = reporter
        self._reporter: TuneReporterBase | None = None
        self._metric, self._mode = metric, mode
        self._total_samples = total_samples
        self._time_budget_s = time_budget_s
        self._console = console
        self._clock = clock
        self._live_period = 1.0 / live_refresh_per_second
        self._display = _Display.OFF
        self._is_setup = False
        self._tracking = False  # touch rows on events (a built-in table is shown)
        self._start = 0.0
        self._next_draw = -math.inf
        self._last_draw = -math.inf
        self._dirty = True
        self._live: Live | None = None
        self._lines: list[str] = []  # verbose-3 lines waiting to be printed
        self._experiment_path: str | None = None

    # --- setup -------------------------------------------------------------------------------

    def setup(self, stop: Any = None, num_samples: int | None = None,
              total_num_samples: int | None = None, **info: Any) -> None:
        self._is_setup = True
        self._start = self._clock()
        self._experiment_path = info.get("experiment_path", self._experiment_path)
        if self.verbose == 0:
            return
        total = next((n for n in (self._total_samples, total_num_samples, num_samples)
                      if n is not None), None)
        user = self._user_reporter
        if user is not None and not isinstance(user, TuneReporterBase):
            # Ray's signature and time base (wall clock) for a user's own reporter
            user.setup(start_time=time.time(), total_samples=total, metric=self._metric,
                       mode=self._mode)
            self._display = _Display.CUSTOM
            return
        console = self._get_console()
        if isinstance(user, TuneReporterBase):
            self._reporter = user
        elif console.is_jupyter or _notebook_shell() is not None:
            self._reporter = JupyterNotebookReporter(overwrite=True, max_report_frequency=1)
        else:
            self._reporter = CLIReporter()
        self._reporter.setup(start_time=self._start, total_samples=total, metric=self._metric,
                             mode=self._mode, console=console, clock=self._clock,
                             time_budget_s=self._time_budget_s)
        self._metric, self._mode = self._reporter._metric, self._reporter._mode
        if self.verbose < 2:
            return
        if isinstance(self._reporter, JupyterNotebookReporter):
            self._display = _Display.NOTEBOOK
        elif console.is_terminal and not console.is_jupyter:
            self._display = _Display.LIVE
        else:
            self._display = _Display.PLAIN
        self._tracking = True

    def _get_console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            console = Console()
            if not (console.is_terminal or console.is_jupyter or "COLUMNS" in os.environ):
                console = Console(width=_LOG_WIDTH)  # logs don't wrap: keep the columns
            self._console = console
        return self._console

    # --- events: O(1) each --------------------------------------------------------------------

    def _event(self, trial: Trial) -> None:
        if not self._is_setup:
            self.setup()
        if self._tracking:
            self._reporter._touch(trial)  # type: ignore[union-attr]
            self._dirty = True

    def _say(self, line: str) -> None:
        """Queue a verbose-3 line; lines are printed in one batch per redraw (a print under a
        live table repaints the table, so one print per result would not keep up)."""
        self._lines.append(line)

    def _flush(self) -> None:
        if self._lines:
            text, self._lines = "\n".join(self._lines), []
            self._get_console().print(text, markup=False, highlight=False, emoji=False,
                                      soft_wrap=True)

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._event(trial)

    def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial,
                        result: dict[str, Any], **info: Any) -> None:
        self._event(trial)
        if self.verbose == 3 and self._reporter is not None:
            self._say(self._reporter._result_line(trial, result))

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._event(trial)
        if self.verbose == 3 and self._reporter is not None:
            self._say(f"Trial {trial} completed after "
                      f"{trial.last_result.get(_ITER, 0)} iterations.")

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._event(trial)
        if self.verbose == 3 and self._reporter is not None:
            self._say(f"Trial {trial} errored (failure {trial.num_failures}): "
                      f"{_first_line(trial.error_msg)}")

    # --- drawing ------------------------------------------------------------------------------

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        """Redraw if due: O(1) when not, O(trials) when it is."""
        if not self._is_setup:
            self.setup()
        display = self._display
        if display is _Display.OFF:
            return
        if self._lines and display is not _Display.LIVE:
            self._flush()
        now = self._clock()
        if now < self._next_draw:
            return
        sys_info = info.get("sys_info", ())
        if display is _Display.LIVE:
            wait = self._live_period
            if self._dirty or now - self._last_draw >= _IDLE_REDRAW_S:
                began = time.perf_counter()
                self._flush()
                self._draw_live(trials, done=False, sys_info=sys_info)
                wait = max(wait, (time.perf_counter() - began) / _MAX_DRAW_SHARE)
                self._last_draw, self._dirty = now, False
            self._next_draw = now + wait
        elif display is _Display.CUSTOM:
            self._next_draw = now + _CUSTOM_POLL_S
            user = self._user_reporter
            if user.should_report(trials, done=False):  # type: ignore[union-attr]
                user.report(trials, False, *sys_info)  # type: ignore[union-attr]
        else:  # PLAIN or NOTEBOOK: the reporter's own frequency, and only when there is news
            reporter = self._reporter
            assert reporter is not None
            if self._dirty and reporter.should_report(trials, done=False):
                reporter.report(trials, False, *sys_info)
                self._dirty = False

    def _draw_live(
        self, trials: Sequence[Trial], done: bool, sys_info: Sequence[Any] = ()
    ) -> None:
        renderable = self._reporter._render(trials, done, sys_info)  # type: ignore[union-attr]
        if self._live is None:
            from rich.live import Live

            self._live = Live(renderable, console=self._get_console(), auto_refresh=False,
                              transient=False)
            self._live.start(refresh=True)
        else:
            self._live.update(renderable, refresh=True)

    def close(self) -> None:
        """Stop the live display (restores stdout/stderr); safe to call more than once."""
        if self._live is not None:
            live, self._live = self._live, None
            live.stop()

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        """Final table (verbose >= 2) and summary (verbose >= 1)."""
        if not self._is_setup:
            self.setup()
        if self.verbose == 0:
            return
        sys_info = info.get("sys_info", ())
        try:
            self._flush()
            if self._display is _Display.LIVE:
                self._draw_live(trials, done=True, sys_info=sys_info)
            elif self._display is _Display.CUSTOM:
                user = self._user_reporter
                if user.should_report(trials, done=True):  # type: ignore[union-attr]
                    user.report(trials, True, *sys_info)  # type: ignore[union-attr]
            elif self._display is not _Display.OFF:
                self._reporter.report(trials, True, *sys_info)  # type: ignore[union-attr]
        finally:
            self.close()
        self._get_console().print(self._summary(trials, **info), markup=False, highlight=False,
                                  emoji=False)

    def _summary(self, trials: Sequence[Trial], **info: Any) -> str:
        elapsed = info.get("elapsed")
        if elapsed is None:
            elapsed = self._clock() - self._start
        counts = Counter(t.status for t in trials)
        verb = "interrupted" if info.get("interrupted") else "finished"
        noun = "trial" if len(trials) == 1 else "trials"
        states = _counts_text(counts) or "none started"
        lines = [f"Experiment {verb} after {_fmt_duration(elapsed)}: "
                 + f"{len(trials)} {noun} ({states})"]
        path = info.get("experiment_path") or self._experiment_path
        if path:
            lines.append(f"Experiment path: {path}")
        if self._metric and self._mode:
            scored = [(k, i, t) for i, t in enumerate(trials)
                      if (k := _score_key(t, self._metric, self._mode)) is not None]
            if scored:
                best = min(scored, key=lambda s: s[:2])[2]
                reporter = self._reporter or CLIReporter(metric=self._metric, mode=self._mode)
                lines.append(f"Best result: {reporter._best_line(best)}")
        return "\n".join(lines)
