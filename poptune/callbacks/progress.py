"""Progress output: Ray Tune's reporters and the callback that drives them.

:class:`ProgressCallback` is what the runner installs. What it prints depends on ``verbose``:

* ``0``: nothing on stdout.
* ``1``: where the results go (``View detailed results here: <path>``) at the start, and a
  final summary (experiment path, trial counts, best result, total time).
* ``2``: a live table when the console is a terminal (rich ``Live``, redrawn at most
  ``live_refresh_per_second`` times a second), an in-place HTML table in a Jupyter notebook,
  or a plain compact table at most every ``max_report_frequency`` seconds otherwise; then the
  final table and the summary.
* ``3``: like ``2`` plus one line per result, completion and error (Ray's verbosity 3).

At every verbosity, as in Ray, each trial failure is logged on the ``poptune`` logger
(stderr) as ``Trial task failed for trial <name>`` with its traceback (``error.txt``), unless
``TUNE_PRINT_ALL_TRIAL_ERRORS=0``; at the end ``Trials did not complete: [...]`` names the
trials that ended in error.

The reporters keep Ray's names and arguments (:class:`CLIReporter`,
:class:`JupyterNotebookReporter`, ``should_report``/``report``/``setup``,
``add_metric_column``/``add_parameter_column``); passing one as ``progress_reporter`` chooses
the columns and the plain-output frequency. A user's own :class:`ProgressReporter` subclass
is consulted (at most 4 times a second) at every verbosity but 0. (The reporters live in
``_progress_base``/``_progress_reporters`` and the formatting helpers in ``_progress_format``;
all are importable from here.)

Cost: a result costs a dictionary store (plus one queued line at verbose 3, printed in one
batch per redraw); tables are built only when a redraw is due, in O(trials), and a live
redraw waits at least ten times its own cost, so drawing takes at most ~10% of the driver.
Intermediate tables show at most ``max_progress_rows`` rows: running trials first, then the
best by metric, then the most recently updated, with a "... N more trials not shown" line;
the final table shows every trial and every error, as Ray's. In a terminal a table keeps the
columns that fit it (and every column the user listed); output to a file or pipe keeps every
column, its text lines wrapping at 160 columns unless ``$COLUMNS`` or the console says else.
``rich`` is imported on the first draw.

Example:
    >>> import io
    >>> from rich.console import Console
    >>> from poptune.experiment.trial import Trial, TrialStatus
    >>> out = io.StringIO()
    >>> cb = ProgressCallback(1, metric="loss", mode="min",
    ...                       console=Console(file=out, width=100), clock=lambda: 0.0)
    >>> t = Trial("abc_00000", "train", {"lr": 0.1}, evaluated_params={"lr": 0.1},
    ...           status=TrialStatus.TERMINATED, last_result={"loss": 0.25})
    >>> cb.setup(total_num_samples=1, experiment_path="/tmp/exp")
    >>> cb.on_experiment_end([t], experiment_path="/tmp/exp", elapsed=3.0)
    >>> print(out.getvalue().strip())
    View detailed results here: /tmp/exp
    Experiment finished after 0:00:03: 1 trial (1 TERMINATED)
    Experiment path: /tmp/exp
    Best result: train_abc_00000 loss=0.25 (lr=0.1)
"""

from __future__ import annotations

import datetime
import enum
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from poptune._validation import bad_type, check_in_range, check_mode
from poptune.callbacks._base import Callback
from poptune.callbacks._progress_base import ProgressReporter, TuneReporterBase
from poptune.callbacks._progress_format import (  # noqa: F401  (the unused ones: re-exported)
    _ITER,
    _STATUS_ORDER,
    _STATUS_STYLE,
    _TIME,
    AUTO_RESULT_KEYS,
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
from poptune.callbacks._progress_reporters import (
    CLIReporter,
    JupyterNotebookReporter,
    _notebook_shell,
)
from poptune.clock import current as current_clock
from poptune.experiment.trial import Trial, TrialStatus

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live

__all__ = [
    "CLIReporter",
    "JupyterNotebookReporter",
    "ProgressCallback",
    "ProgressReporter",
    "TuneReporterBase",
    "progress_sys_info",
]

logger = logging.getLogger("poptune")

_CUSTOM_POLL_S = 0.25  # a user's reporter is asked `should_report` at most this often
_IDLE_REDRAW_S = 1.0  # a live table with nothing new still ticks its clock this often
_LOG_WIDTH = 160  # width of plain output to a file or pipe (unless $COLUMNS says otherwise)
_MAX_DRAW_SHARE = 0.1  # a live redraw waits 1/share times its own cost (<= 10% of the driver)


def progress_sys_info(scheduler: Any, pool: Any) -> tuple[str, str]:
    """Ray's ``sys_info`` lines: the scheduler's ``debug_string()`` and the logical resource
    usage of ``pool`` (a :class:`~poptune.engine.resources.ResourcePool`).

    Example:
        >>> from poptune.engine.resources import ResourcePool
        >>> from poptune.schedulers import FIFOScheduler
        >>> pool = ResourcePool(cpu=2, gpu=0)
        >>> _ = pool.allocate("a", {"cpu": 1})
        >>> progress_sys_info(FIFOScheduler(), pool)
        ('Using FIFO scheduling algorithm.', 'Logical resource usage: 1/2 CPUs, 0/0 GPUs')
    """
    cpu = max(0.0, round(pool.cpu_total - pool.cpu_free, 3)) + 0.0  # + 0.0: no "-0"
    gpu = max(0.0, round(len(pool.gpu_free) - sum(pool.gpu_free), 3)) + 0.0
    return (scheduler.debug_string(), f"Logical resource usage: {cpu:g}/{pool.cpu_total:g} CPUs, "
                                      f"{gpu:g}/{pool.gpu_total} GPUs")


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
        clock: monotonic seconds for elapsed time and redraw pacing; inject a fake one in
            tests. Default: elapsed time on the experiment's clock
            (:func:`poptune.clock.current`, simulated seconds in a simulated fit), redraws
            paced by the real clock.
        live_refresh_per_second: most redraws per second of the live table.
        experiment_path: where the results go (printed at the start from verbose 1).
        sys_info: returns the lines shown under the table's header and passed to a reporter's
            ``report`` (Ray's scheduler status and ``Logical resource usage: ...``); called
            only when a table is drawn.
        log_errors: log each trial failure with its traceback (off with ``fail_fast="raise"``,
            whose error is raised instead).
        log_incomplete: log ``Trials did not complete: [...]`` at the end (off for
            ``tune.run``, which says it itself).

    The runner calls ``setup`` once, the trial hooks as events happen, ``on_step_end`` on
    every loop pass (redraws happen there, when due) and ``on_experiment_end`` once, with
    ``experiment_path=`` and ``elapsed=``, also on interrupt (it stops the live display).
    """

    #: the runner need not flush trial files before this callback hears of a completion
    _reads_no_files = True
    #: ``on_experiment_end`` also gets ``experiment_path=`` and ``elapsed=`` (Ray passes
    #: ``trials=`` only, so user callbacks get only that)
    _wants_run_info = True


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
        clock: Callable[[], float] | None = None,
        live_refresh_per_second: float = 4.0,
        experiment_path: str | None = None,
        sys_info: Callable[[], Sequence[str]] | None = None,
        log_errors: bool = True,
        log_incomplete: bool = True,
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
        self._experiment_path = experiment_path
        self._sys_info = sys_info
        self._log_errors = log_errors and os.environ.get("TUNE_PRINT_ALL_TRIAL_ERRORS") != "0"
        self._log_incomplete = log_incomplete

    # --- setup -------------------------------------------------------------------------------

    def setup(self, stop: Any = None, num_samples: int | None = None,
              total_num_samples: int | None = None, **info: Any) -> None:
        self._is_setup = True
        self._start = self._now()
        self._experiment_path = info.get("experiment_path", self._experiment_path)
        if self.verbose == 0:
            return
        if self._experiment_path:
            self._get_console().print(f"View detailed results here: {self._experiment_path}",
                                      markup=False, highlight=False, emoji=False, soft_wrap=True)
        total = next((n for n in (self._total_samples, total_num_samples, num_samples)
                      if n is not None), None)
        user = self._user_reporter
        if user is not None and not isinstance(user, TuneReporterBase):
            # Ray's signature and time base (wall clock) for a user's own reporter
            user.setup(start_time=current_clock().time(), total_samples=total, metric=self._metric,
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
        if self._metric is None or (self._mode is None and self._reporter._metric == self._metric):
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
        self._failed(trial, "")

    def on_trial_recover(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._failed(trial, ", retrying")

    def _failed(self, trial: Trial, then: str) -> None:
        self._event(trial)
        if self._log_errors:  # Ray's record, at every verbosity
            retry = f" (failure {trial.num_failures}, will be retried)" if then else ""
            logger.error("Trial task failed for trial %s%s\n%s", trial, retry,
                         (trial.get_error() or trial.error_msg or "").rstrip())
        if self.verbose == 3 and self._reporter is not None:
            where = f" (error file: {trial.error_file})" if trial.error_file else ""
            self._say(f"Trial {trial} errored (failure {trial.num_failures}){then}: "
                      f"{_first_line(trial.error_msg)}{where}")

    def _now(self) -> float:
        """The experiment's time (simulated seconds in a simulated fit)."""
        clock = self._clock
        return clock() if clock is not None else current_clock().monotonic()

    def _wall(self) -> float:
        """The time that paces redraws: a person watches the table in real seconds."""
        clock = self._clock
        return clock() if clock is not None else time.monotonic()

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
        now = self._wall()
        if now < self._next_draw:
            return
        if display is _Display.LIVE:
            wait = self._live_period
            if self._dirty or now - self._last_draw >= _IDLE_REDRAW_S:
                began = time.perf_counter()
                self._flush()
                self._draw_live(trials, done=False, sys_info=self._system_info(info))
                wait = max(wait, (time.perf_counter() - began) / _MAX_DRAW_SHARE)
                self._last_draw, self._dirty = now, False
            self._next_draw = now + wait
        elif display is _Display.CUSTOM:
            self._next_draw = now + _CUSTOM_POLL_S
            user = self._user_reporter
            if user.should_report(trials, done=False):  # type: ignore[union-attr]
                user.report(trials, False, *self._system_info(info))  # type: ignore[union-attr]
        else:  # PLAIN or NOTEBOOK: the reporter's own frequency, and only when there is news
            reporter = self._reporter
            assert reporter is not None
            if self._dirty and reporter.should_report(trials, done=False):
                reporter.report(trials, False, *self._system_info(info))
                self._dirty = False

    def _system_info(self, info: dict[str, Any]) -> Sequence[Any]:
        """The ``sys_info`` lines: passed by the caller, else from the ``sys_info`` source."""
        given = info.get("sys_info")
        if given is not None:
            return tuple(given)
        return tuple(self._sys_info()) if self._sys_info is not None else ()

    def _draw_live(
        self, trials: Sequence[Trial], done: bool, sys_info: Sequence[Any] = ()
    ) -> None:
        renderable = self._reporter._render(trials, done, sys_info)  # type: ignore[union-attr]
        if done and self._live is not None:  # drawn in full (not cut to the screen) by close()
            self._live.update(renderable, refresh=False)
        elif done:
            self._get_console().print(renderable)
        elif self._live is None:
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
        """Final table (verbose >= 2) and summary (verbose >= 1), unless no trial was ever
        created (a run that failed to start); then the trials that errored are logged."""
        try:
            self._final_output(trials, info)
        finally:
            failed = [t for t in trials if t.status is TrialStatus.ERROR]
            if failed and self._log_incomplete:
                logger.error("Trials did not complete: %s", failed)

    def _final_output(self, trials: list[Trial], info: dict[str, Any]) -> None:
        if not (trials or info.get("interrupted")):  # it never started: nothing to sum up
            self.close()
            return
        if not self._is_setup:
            self.setup()
        if self.verbose == 0:
            return
        sys_info = self._system_info(info)
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
                                  emoji=False, soft_wrap=True)  # long lines kept whole

    def _summary(self, trials: Sequence[Trial], **info: Any) -> str:
        elapsed = info.get("elapsed")
        if elapsed is None:
            elapsed = self._now() - self._start
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
                reporter = self._reporter
                if reporter is None or reporter._metric != self._metric:
                    reporter = CLIReporter(metric=self._metric, mode=self._mode)
                lines.append(f"Best result: {reporter._best_line(best, full=True)}")
        return "\n".join(lines)
