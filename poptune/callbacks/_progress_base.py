"""Reporter base classes: Ray's :class:`ProgressReporter` interface and :class:`TuneReporterBase`.

:class:`TuneReporterBase` holds Ray's column and frequency settings and builds the progress
view with ``rich`` (header, best trial, trial table cut to the rows and, in a terminal, the
columns that fit, error table with each error file) and the one-line texts of verbose 3. The
concrete reporters that print it are in :mod:`poptune.callbacks._progress_reporters`; all
are importable from :mod:`poptune.callbacks.progress`.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from poptune._text import plain_text
from poptune._validation import bad_type, check_in_range, check_mode
from poptune.callbacks._progress_format import (
    _ITER,
    _STATUS_ORDER,
    _STATUS_STYLE,
    _TIME,
    DEFAULT_METRIC,
    Columns,
    _as_columns,
    _counts_text,
    _first_line,
    _fmt,
    _fmt_duration,
    _is_number,
    _lookup,
    _param,
    _scalar_items,
    _score_key,
)
from poptune.clock import current as current_clock
from poptune.engine.silence import fmt_seconds
from poptune.experiment.trial import Trial, TrialStatus

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

__all__ = ["ProgressReporter", "TuneReporterBase"]

logger = logging.getLogger("poptune")

#: the trial table gets a "silent" column (time since each running trial last sent anything)
#: once a running trial has been silent this long
SHOW_SILENCE_AFTER_S = 10.0


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
        #: an injected clock (tests) for both elapsed time and report frequency; None: the
        #: experiment's clock for elapsed time, the real clock for how often to print
        self._clock: Callable[[], float] | None = None
        self._start_time = self._now()
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
        """Receive run-time settings; ``start_time`` is read in the reporter's ``clock``
        (default: the experiment's clock, :func:`poptune.clock.current`).

        A reporter whose own ``metric``/``mode`` differ from the experiment's keeps them for
        its table and "Current best" line, with a warning (Ray's default engine ignores such
        a reporter; its old one raised).
        """
        if clock is not None:
            self._clock = clock
        if console is not None:
            self._console = console
        self.set_start_time(start_time)
        if total_samples is not None:
            self.set_total_samples(total_samples)
        if not self.set_search_properties(metric, mode):
            logger.warning("The progress reporter's metric %r (mode %r) differs from the "
                           "experiment's %r (mode %r): the progress table ranks trials by the "
                           "reporter's, everything else by the experiment's", self._metric,
                           self._mode, metric, mode)
        self._time_budget_s = time_budget_s
        self._last_report_time = self._wall()

    def _now(self) -> float:
        """The experiment's time (simulated seconds in a simulated fit)."""
        clock = self._clock
        return clock() if clock is not None else current_clock().monotonic()

    def _wall(self) -> float:
        """The time that paces printing: a person reads the output in real seconds."""
        clock = self._clock
        return clock() if clock is not None else time.monotonic()

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
        self._start_time = self._now() if timestamp is None else timestamp

    def should_report(self, trials: list[Trial], done: bool = False) -> bool:
        """Yes at the end, or when ``max_report_frequency`` seconds passed since the last yes."""
        now = self._wall()
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
        elapsed = self._now() - self._start_time
        running, errored = counts.get(TrialStatus.RUNNING, 0), counts.get(TrialStatus.ERROR, 0)
        parts = [f"{done}/{total} trials done ({running} running, {errored} errored{extra})",
                 f"elapsed {_fmt_duration(elapsed)}"]
        if self._time_budget_s is not None:
            parts.append(f"time budget left {_fmt_duration(self._time_budget_s - elapsed)}")
        return " | ".join(parts)

    def _best_line(self, best: Trial | None, full: bool = False) -> str | None:
        """``name metric=value (params)``: the first 6 parameters, or all when ``full``."""
        if best is None or not self._metric:
            return None
        n = self._max_column_length
        items = best.evaluated_params.items()
        shown = items if full else itertools.islice(items, 6)
        params = ", ".join(f"{k}={_fmt(v, n)}" for k, v in shown)
        value = _fmt(_lookup(best.last_result, self._metric), n)
        return f"{best} {self._metric}={value}" + (f" ({params})" if params else "")

    def _select_rows(self, trials: Sequence[Trial], scored: list[tuple[float, int, Trial]],
                     done: bool) -> list[Trial]:
        """At most ``max_progress_rows`` trials (all when ``done``, as Ray's final table),
        grouped by status; O(trials)."""
        max_rows = self._max_progress_rows
        if done or len(trials) <= max_rows:
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
                share = (budget + 1) // 2
                for t in itertools.chain(best[:share], recent, best[share:]):
                    if len(picked) >= max_rows:
                        break
                    if id(t) not in taken:
                        taken.add(id(t))
                        picked.append(t)
            rows = picked
        order = {s: i for i, s in enumerate(_STATUS_ORDER)}
        return sorted(rows, key=lambda t: order.get(t.status, len(order)))  # stable in groups

    def _unbounded(self) -> bool:
        """Whether output goes to a file or pipe: no screen width to fit, nothing is cut."""
        console = self._get_console()
        return not (console.is_terminal or console.is_jupyter)

    def _natural_width(self, table: Any) -> Any:
        """``table`` at its full width when the output is unbounded (not squeezed to fit)."""
        if self._unbounded():
            from rich.measure import Measurement

            console = self._get_console()
            wide = Measurement.get(console, console.options.update_width(1 << 20), table).maximum
            if wide > console.width:
                table.width = wide
        return table

    def _trial_table(self, rows: Sequence[Trial]) -> list[Any]:
        """The trial table; in a terminal, only the columns that fit it at their full width.

        Name, status and metrics come first; in a terminal, hyperparameter and inferred metric
        columns that would not fit are left out and named below the table rather than
        squeezed into unreadable "…" cells. Columns the user listed (``metric_columns``,
        ``parameter_columns``) are always shown, and so is every column in a file or pipe.
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
        listed = self._metric_columns if self._metrics_override else {}
        # (title, cells, the user listed it: never left out)
        columns = [(_fmt(title, n), [_fmt(_lookup(t.last_result, k), n, k == _TIME) for t in rows],
                    k in listed) for k, title in metrics.items()]
        columns += [(_fmt(title, n), [_fmt(_param(t, k), n) for t in rows],
                     bool(self._parameter_columns)) for k, title in params.items()]
        silent = self._silences(rows)
        if silent is not None:  # a hung trial's silence is never cut for width
            columns.insert(0, ("silent", silent, True))
        names = [str(t) for t in rows]
        gap = 3  # padding and separator between two columns
        need = [max(len(title), *map(len, cells)) + gap for title, cells, _ in columns]
        used = max(map(len, ["Trial name", *names])) + max(len(str(t.status)) for t in rows) + gap
        used += sum(w for w, (_, _, must) in zip(need, columns) if must)
        width = self._get_console().width if not self._unbounded() else None
        shown: list[tuple[str, list[str]]] = []
        left_out: list[str] = []
        for w, (title, cells, must) in zip(need, columns):
            if must or width is None or not shown or used + w <= width:
                used += 0 if must else w
                shown.append((title, cells))
            else:  # this column and every optional one after it
                width = -1
                left_out.append(title)
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
        table.add_column("Trial name", no_wrap=True)
        table.add_column("status", no_wrap=True)
        for title, _ in shown:
            table.add_column(plain_text(title), justify="right", no_wrap=True)
        for i, t in enumerate(rows):  # names and values as typed: never read as markup
            table.add_row(plain_text(names[i]),
                          Text(str(t.status), style=_STATUS_STYLE.get(t.status, "")),
                          *(plain_text(cells[i]) for _, cells in shown))
        if not left_out:
            return [self._natural_width(table)]
        note = Text(f"({len(left_out)} columns not shown: {', '.join(left_out)})", style="dim",
                    no_wrap=True, overflow="ellipsis")
        return [table, note]

    def _silences(self, rows: Sequence[Trial]) -> list[str] | None:
        """How long each running trial has sent nothing (``Trial.last_heard``), or None
        while no running trial has been silent for :data:`SHOW_SILENCE_AFTER_S`."""
        now = self._now()
        silent = [now - t.last_heard if t.status is TrialStatus.RUNNING
                  and t.last_heard is not None else None for t in rows]
        if not any(s is not None and s >= SHOW_SILENCE_AFTER_S for s in silent):
            return None
        return ["" if s is None else fmt_seconds(s) for s in silent]

    def _render(
        self, trials: Sequence[Trial], done: bool, sys_info: Sequence[Any] = ()
    ) -> RenderableType:
        """Header, best trial, trial table and error table; O(trials)."""
        from rich.console import Group
        from rich.text import Text

        counts = Counter(t.status for t in trials)
        parts: list[Any] = [Text(self._header(counts, len(trials)), style="bold")]
        parts.extend(Text(str(s)) for s in sys_info)
        scored: list[tuple[float, int, Trial]] = []
        if self._metric and self._mode:
            scored = [(k, i, t) for i, t in enumerate(trials)
                      if (k := _score_key(t, self._metric, self._mode)) is not None]
        best = min(scored, key=lambda s: s[:2])[2] if scored else None
        wide = self._unbounded()
        if (line := self._best_line(best, full=wide)) is not None:
            parts.append(Text(f"Current best: {line}", no_wrap=not wide, overflow="ellipsis"))
        if trials and (done or self._print_intermediate_tables):
            rows = self._select_rows(trials, scored, done)
            parts.extend(self._trial_table(rows))
            hidden = counts - Counter(t.status for t in rows)
            if hidden:
                parts.append(Text(f"... {sum(hidden.values())} more trials not shown "
                                  f"({_counts_text(hidden)})", style="dim"))
        parts.extend(self._error_parts(trials, done, wide))
        return Group(*parts)

    def _error_parts(self, trials: Sequence[Trial], done: bool, wide: bool) -> list[Any]:
        """The error table: name, failures (``1*``: it ended well after a retry, as Ray marks
        it), error file and first error line; all errored trials when ``done``, else at most
        ``max_error_rows``. In a terminal too narrow for the paths, each path gets a line."""
        from rich import box
        from rich.table import Table
        from rich.text import Text

        errored = [t for t in trials if t.error_msg or t.status is TrialStatus.ERROR]
        limit = len(errored) if done else self._max_error_rows  # all at the end (Ray)
        shown = errored[:limit]
        if not shown:
            return []
        names = [str(t) for t in shown]
        files = [t.error_file or "" for t in shown]
        fails = [f"{t.num_failures}{'*' if t.status is TrialStatus.TERMINATED else ''}"
                 for t in shown]
        fixed = max(map(len, ["Trial name", *names])) + len("# failures") + 6
        path_width = max(map(len, ["error file", *files])) + 3
        width = self._get_console().width
        in_table = wide or fixed + path_width + 20 <= width  # the paths fit whole
        fixed += path_width if in_table else 0
        noun = "trial" if len(errored) == 1 else "trials"
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                      title=f"Errors ({len(errored)} {noun})", title_justify="left")
        table.add_column("Trial name", no_wrap=True)
        table.add_column("# failures", justify="right", no_wrap=True)
        if in_table:
            table.add_column("error file", no_wrap=True)
        table.add_column("error", no_wrap=True, overflow="ellipsis",
                         max_width=None if wide else max(10, width - fixed))
        for t, name, path, fail in zip(shown, names, files, fails):
            table.add_row(name, fail, *([path] if in_table else []), _first_line(t.error_msg))
        parts: list[Any] = [self._natural_width(table)]
        if not in_table:
            parts.extend(Text(f"{name} error file: {path}", overflow="fold")
                         for name, path in zip(names, files) if path)
        if len(errored) > limit:
            parts.append(Text(f"... {len(errored) - limit} more errored trials", style="dim"))
        if any(f.endswith("*") for f in fails):
            parts.append(Text("* The trial terminated successfully after retrying."))
        return parts

    def _get_console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console()
        return self._console
