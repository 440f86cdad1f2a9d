"""Behaviour of the progress output: verbosity levels, throttling, table content, row limits."""

from __future__ import annotations

import io
import re
import sys
import types
from typing import Any

import pytest
from rich.console import Console
from rich.file_proxy import FileProxy

from poptune.callbacks.progress import (
    CLIReporter,
    JupyterNotebookReporter,
    ProgressCallback,
    ProgressReporter,
)
from poptune.engine.trial import Trial, TrialStatus
from poptune.exceptions import TuneConfigError

R, T, E, P = TrialStatus.RUNNING, TrialStatus.TERMINATED, TrialStatus.ERROR, TrialStatus.PENDING
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingList(list):
    """A trial list that counts how often it is iterated or measured."""

    touches = 0

    def __iter__(self):
        CountingList.touches += 1
        return super().__iter__()

    def __len__(self):
        CountingList.touches += 1
        return super().__len__()


def make_trial(i: int, status: TrialStatus = R, loss: float | None = None, it: int = 0,
               lr: float = 0.01, **fields: Any) -> Trial:
    result: dict[str, Any] = {}
    if loss is not None:
        result = {"loss": loss, "training_iteration": it, "time_total_s": 1.5 * it}
    return Trial(f"abcde_{i:05d}", "train", {"lr": lr, "model": {"layers": 2 + i % 3}},
                 status=status, last_result=result,
                 evaluated_params={"lr": lr, "model/layers": 2 + i % 3}, **fields)


def make_console(terminal: bool = False) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=120, color_system=None), out


def text(out: io.StringIO) -> str:
    return ANSI.sub("", out.getvalue())


def run_experiment(cb: ProgressCallback, clock: FakeClock, trials: list[Trial],
                   n_results: int = 200, dt: float = 0.05) -> None:
    """Start every trial, deliver results round-robin, finish them, end the experiment."""
    cb.setup(total_num_samples=len(trials))
    for t in trials:
        cb.on_trial_start(0, trials, t)
    for k in range(n_results):
        t = trials[k % len(trials)]
        t.last_result = {"loss": 1.0 / (k + 1), "training_iteration": k, "time_total_s": k * dt}
        cb.on_trial_result(k, trials, t, t.last_result)
        clock.now += dt
        cb.on_step_end(k, trials)
    for t in trials:
        t.status = T
        cb.on_trial_complete(0, trials, t)
    trials[-1].status, trials[-1].error_msg, trials[-1].num_failures = E, "ValueError: bad", 1
    cb.on_trial_error(0, trials, trials[-1])
    cb.on_experiment_end(trials, experiment_path="/tmp/exp", elapsed=42.0)


def test_verbose_0_prints_nothing_at_all():
    console, out = make_console(terminal=True)
    clock = FakeClock()
    cb = ProgressCallback(0, metric="loss", mode="min", console=console, clock=clock)
    run_experiment(cb, clock, [make_trial(i) for i in range(3)])
    assert out.getvalue() == ""


def test_verbose_1_prints_only_the_final_summary():
    console, out = make_console()
    clock = FakeClock()
    cb = ProgressCallback(1, metric="loss", mode="min", console=console, clock=clock)
    trials = [make_trial(i) for i in range(3)]
    run_experiment(cb, clock, trials)
    lines = text(out).strip().splitlines()
    assert lines == [
        "Experiment finished after 0:00:42: 3 trials (2 TERMINATED, 1 ERROR)",
        "Experiment path: /tmp/exp",
        # the last result of trial 1 (k=199) has the lowest loss
        f"Best result: {trials[1]} loss=0.005 (lr=0.01, model/layers=3)",
    ]


def test_plain_output_prints_at_most_one_table_per_report_interval():
    console, out = make_console(terminal=False)
    clock = FakeClock()
    cb = ProgressCallback(2, metric="loss", mode="min", console=console, clock=clock)
    trials = [make_trial(i) for i in range(4)]
    # 10,240 results over 10 simulated seconds (dt exact in binary), a loop pass after each
    run_experiment(cb, clock, trials, n_results=10_240, dt=1 / 1024)
    tables = text(out).count("trials done")
    # one per 5 s interval (at 5 s and 10 s) plus the final table
    assert tables == 3


def test_plain_output_is_silent_when_nothing_happened():
    console, out = make_console()
    clock = FakeClock()
    cb = ProgressCallback(2, console=console, clock=clock)
    trials = [make_trial(0)]
    cb.setup(total_num_samples=1)
    for _ in range(100):
        clock.now += 1
        cb.on_step_end(0, trials)
    assert text(out).count("trials done") == 1  # once after 5 s (setup was news), then silence


def test_on_trial_result_does_not_look_at_other_trials():
    console, _ = make_console(terminal=True)
    clock = FakeClock()
    trials = CountingList(make_trial(i, loss=1.0) for i in range(10))
    for verbose in (2, 3):
        cb = ProgressCallback(verbose, metric="loss", mode="min", console=console, clock=clock)
        cb.setup(total_num_samples=10)
        CountingList.touches = 0
        for k in range(1000):
            cb.on_trial_result(k, trials, trials[k % 10], {"loss": 0.5, "training_iteration": k})
        assert CountingList.touches == 0
        cb.close()


def test_live_table_in_a_terminal_redraws_at_most_four_times_a_second():
    console, out = make_console(terminal=True)
    clock = FakeClock()
    reporter = CLIReporter()
    renders = []
    original = reporter._render
    reporter._render = lambda *a, **k: renders.append(1) or original(*a, **k)  # type: ignore
    cb = ProgressCallback(2, reporter, metric="loss", mode="min", console=console, clock=clock)
    trials = [make_trial(i) for i in range(4)]
    run_experiment(cb, clock, trials, n_results=5_000, dt=0.001)  # 5 simulated seconds
    assert 5 <= len(renders) <= 5 * 4 + 2  # one per 0.25 s at most, plus the final one
    assert cb._live is None  # stopped at the end: stdout/stderr are given back
    assert not isinstance(sys.stdout, FileProxy)
    shown = text(out)
    assert "Trial name" in shown and "Experiment path: /tmp/exp" in shown


def test_rows_show_status_metric_iteration_time_and_hyperparameters():
    console, out = make_console()
    clock = FakeClock()
    cb = ProgressCallback(2, metric="loss", mode="min", console=console, clock=clock)
    trials = [make_trial(0, R, loss=0.12345678, it=7, lr=0.003),
              make_trial(1, T, loss=0.5, it=10, lr=0.1), make_trial(2, P)]
    cb.setup(total_num_samples=3)
    cb.on_experiment_end(trials)
    shown = text(out)
    header = next(line for line in shown.splitlines() if "Trial name" in line).split()
    assert header == ["Trial", "name", "status", "loss", "iter", "total", "time", "(s)", "lr",
                      "model/layers"]
    row0 = next(line for line in shown.splitlines() if line.startswith(str(trials[0])))
    assert row0.split()[1:] == ["RUNNING", "0.12346", "7", "10.50", "0.003", "2"]
    row1 = next(line for line in shown.splitlines() if line.startswith(str(trials[1])))
    assert row1.split()[1:] == ["TERMINATED", "0.5", "10", "15.00", "0.1", "3"]
    assert f"{trials[2]} PENDING" in re.sub(r" +", " ", shown)
    assert f"Current best: {trials[0]} loss=0.12346" in shown


def test_names_and_values_are_printed_as_typed_never_as_markup_or_escapes():
    """A trial named ``t[/]x`` (``trial_name_creator``) ended fit() with rich's
    MarkupError; ``[bold]`` was applied; escape sequences reached the terminal."""
    console, out = make_console(terminal=True)
    clock = FakeClock()
    cb = ProgressCallback(2, metric="loss", mode="min", console=console, clock=clock)
    trials = [make_trial(0, T, loss=0.5, it=1, custom_trial_name="t[/]x"),
              make_trial(1, T, loss=0.7, it=1, custom_trial_name="t[bold]b"),
              make_trial(2, T, loss=0.9, it=1, custom_trial_name="t\x1b]0;T\x07")]
    trials[0].evaluated_params = {"act": "[/relu]"}
    cb.setup(total_num_samples=3)
    cb.on_experiment_end(trials)
    shown = out.getvalue()
    assert "t[/]x" in shown and "t[bold]b" in shown and "[/relu]" in shown
    assert "t\\x1b]0;T\\x07" in shown and "\x1b]0;" not in shown


def test_nested_metrics_and_config_parameters_are_looked_up_by_path():
    console, out = make_console()
    reporter = CLIReporter(metric_columns=["val/loss"], parameter_columns={"model/layers": "L"})
    t = make_trial(0, T)
    t.last_result = {"val": {"loss": 0.25}, "training_iteration": 3}
    t.evaluated_params = {}
    reporter.setup(console=console, clock=FakeClock())
    reporter.report([t], True)
    shown = text(out)
    row = next(line for line in shown.splitlines() if line.startswith(str(t)))
    assert "val/loss" in shown and row.split()[1:] == ["TERMINATED", "0.25", "2"]


def test_header_shows_done_of_total_running_errored_elapsed_and_budget_left():
    console, out = make_console()
    clock = FakeClock(0.0)
    cb = ProgressCallback(2, console=console, clock=clock, total_samples=10, time_budget_s=600)
    trials = [make_trial(0, R, loss=1.0), make_trial(1, T, loss=1.0),
              make_trial(2, E, error_msg="boom"), make_trial(3, P)]
    cb.setup(num_samples=10)
    clock.now = 125.0
    cb.on_trial_result(1, trials, trials[0], trials[0].last_result)
    cb.on_step_end(1, trials)
    first = text(out).splitlines()[0]
    assert first == ("2/10 trials done (1 running, 1 errored, 1 pending) | elapsed 0:02:05 | "
                     "time budget left 0:07:55")


def test_errored_trials_are_listed_with_failures_and_first_error_line():
    console, out = make_console()
    cb = ProgressCallback(2, console=console, clock=FakeClock())
    bad = make_trial(0, E, error_msg="ValueError: lr too large\nTraceback (most recent call last)",
                     num_failures=3)
    retried = make_trial(1, R, error_msg="WorkerLostError: killed", num_failures=1)
    cb.setup()
    cb.on_experiment_end([bad, retried, make_trial(2, T)])
    shown = text(out)
    assert "Errors (2 trials)" in shown
    rows = [line.rstrip().split(None, 2) for line in shown.splitlines()]
    assert [str(bad), "3", "ValueError: lr too large"] in rows
    assert [str(retried), "1", "WorkerLostError: killed"] in rows
    assert "Traceback" not in shown


def test_error_table_is_bounded_by_max_error_rows_until_the_end():
    console, out = make_console()
    reporter = CLIReporter(max_error_rows=2)
    reporter.setup(console=console, clock=FakeClock())
    trials = [make_trial(i, E, error_msg=f"err {i}") for i in range(5)]
    reporter.report(trials, False)
    shown = text(out)
    assert "err 1" in shown and "err 2" not in shown and "... 3 more errored trials" in shown
    console, out = make_console()  # the final table lists every error, as Ray's
    reporter.setup(console=console, clock=FakeClock())
    reporter.report(trials, True)
    assert "err 4" in text(out) and "more errored" not in text(out)


def test_ten_thousand_trials_render_a_bounded_table_of_the_most_relevant_rows():
    console, out = make_console()
    clock = FakeClock()
    cb = ProgressCallback(2, metric="loss", mode="min", console=console, clock=clock)
    trials = [make_trial(i, T, loss=1.0 + i, it=5) for i in range(10_000)]
    for i in (5000, 5001):
        trials[i].status = R
    trials[9000].last_result["loss"] = -1.0  # the best one
    trials += [make_trial(i, P) for i in range(10_000, 10_003)]
    cb.setup(total_num_samples=10_003)
    cb.on_trial_result(1, trials, trials[7777], trials[7777].last_result)  # the most recent
    clock.now += 10
    cb.on_step_end(1, trials)
    shown = text(out)
    names = [line.split()[0] for line in shown.splitlines() if line.startswith("train_")]
    assert len(names) == 20  # max_progress_rows
    assert names[:2] == [str(trials[5000]), str(trials[5001])]  # running first
    assert names[2] == str(trials[9000])  # then the best by metric
    assert str(trials[7777]) in names  # and the most recently updated
    assert str(trials[10_000]) not in names  # pending trials last
    assert "... 9983 more trials not shown (3 PENDING, 9980 TERMINATED)" in shown
    assert "9998/10003 trials done (2 running, 0 errored, 3 pending)" in shown
    assert len(shown.splitlines()) < 30


def test_intermediate_table_of_many_trials_shows_the_best_ones():
    console, out = make_console()
    reporter = CLIReporter(max_progress_rows=3, metric="loss", mode="max")
    reporter.setup(console=console, clock=FakeClock())
    reporter.report([make_trial(i, T, loss=float(i)) for i in range(50)], False)
    names = [line.split()[0] for line in text(out).splitlines() if line.startswith("train_")]
    assert len(names) == 3 and names[:2] == ["train_abcde_00049", "train_abcde_00048"]


def test_cli_reporter_selects_the_columns_shown():
    console, out = make_console()
    clock = FakeClock()
    reporter = CLIReporter(metric_columns={"loss": "L"}, parameter_columns=["lr"])
    reporter.add_metric_column("acc")
    reporter.add_parameter_column("model/layers", "layers")
    with pytest.raises(ValueError, match="already exists"):
        reporter.add_metric_column("loss")
    with pytest.raises(ValueError, match="already exists"):
        reporter.add_parameter_column("lr")
    cb = ProgressCallback(2, reporter, console=console, clock=clock)
    t = make_trial(0, T, loss=0.5, it=4)
    t.last_result.update(acc=0.9, other=7.0)
    cb.setup()
    cb.on_experiment_end([t])
    header = next(line for line in text(out).splitlines() if "Trial name" in line).split()
    assert header == ["Trial", "name", "status", "L", "acc", "lr", "layers"]


def test_metric_columns_are_inferred_up_to_infer_limit():
    console, out = make_console()
    reporter = CLIReporter(infer_limit=2, metric="loss", mode="min")
    reporter.setup(console=console, clock=FakeClock())
    t = make_trial(0, T, loss=0.5, it=4)
    t.last_result.update(acc=0.9, f1=0.8, flag=True, name="x")
    reporter.report([t], True)
    header = next(line for line in text(out).splitlines() if "Trial name" in line).split()
    assert header[3:7] == ["loss", "acc", "iter", "total"]


def test_cli_reporter_frequency_sets_the_plain_output_interval():
    console, out = make_console()
    clock = FakeClock()
    cb = ProgressCallback(2, CLIReporter(max_report_frequency=1), console=console, clock=clock)
    run_experiment(cb, clock, [make_trial(i) for i in range(2)], n_results=100, dt=0.1)
    assert text(out).count("trials done") == 10 + 1  # once a second for 10 s, then the end


def test_print_intermediate_tables_false_shows_status_lines_until_the_end():
    console, out = make_console()
    clock = FakeClock()
    cb = ProgressCallback(2, CLIReporter(print_intermediate_tables=False), console=console,
                          clock=clock)
    run_experiment(cb, clock, [make_trial(i) for i in range(2)], n_results=200, dt=0.1)
    shown = text(out)
    tables = [ln for ln in shown.splitlines() if ln.split()[:3] == ["Trial", "name", "status"]]
    assert shown.count("trials done") == 5 and len(tables) == 1


def test_verbose_3_adds_one_line_per_result_completion_and_error():
    console, out = make_console()
    clock = FakeClock()
    cb = ProgressCallback(3, metric="loss", mode="min", console=console, clock=clock)
    trials = [make_trial(i) for i in range(2)]
    run_experiment(cb, clock, trials, n_results=10, dt=0.1)
    shown = text(out)
    assert shown.count("Result: ") == 10
    assert f"Result: {trials[1]} iter 9 (0.9s): loss=0.1" in shown
    assert f"Trial {trials[0]} completed after 8 iterations." in shown
    assert f"Trial {trials[1]} errored (failure 1): ValueError: bad" in shown
    console, out = make_console()  # a failure that will be retried says so
    cb = ProgressCallback(3, metric="loss", mode="min", console=console, clock=clock)
    cb.setup(num_samples=2)
    trials[1].num_failures = 2
    cb.on_trial_recover(0, trials, trials[1])
    cb.on_experiment_end(trials, experiment_path="/tmp/exp", elapsed=1.0)
    assert f"Trial {trials[1]} errored (failure 2), retrying: ValueError: bad" in text(out)


def test_a_custom_ray_style_reporter_is_consulted_at_most_four_times_a_second():
    class Reporter(ProgressReporter):  # the shape of Ray's documented custom reporter
        def __init__(self) -> None:
            self.asked, self.reports = 0, []

        def should_report(self, trials, done=False):
            self.asked += 1
            return True

        def report(self, trials, *sys_info):
            self.reports.append(sys_info)

    console, out = make_console()
    clock = FakeClock()
    reporter = Reporter()
    cb = ProgressCallback(2, reporter, console=console, clock=clock)
    run_experiment(cb, clock, [make_trial(i) for i in range(2)], n_results=1000, dt=0.001)
    assert reporter.asked <= 4 + 1 + 1
    assert reporter.reports[-1] == (True,)  # done
    assert "Trial name" not in text(out) and "Experiment finished" in text(out)


def test_jupyter_reporter_prints_text_outside_a_notebook():
    console, out = make_console()
    reporter = JupyterNotebookReporter(overwrite=True, metric="loss", mode="min")
    reporter.setup(console=console, clock=FakeClock())
    reporter.report([make_trial(0, T, loss=0.5)], True)
    assert "Trial name" in text(out)


def test_jupyter_reporter_updates_one_html_output_in_place(monkeypatch):
    shown: list[Any] = []

    class Handle:
        def update(self, obj):
            shown.append(("update", obj.data))

    class ZMQInteractiveShell:
        pass

    def display(obj, display_id=False):
        shown.append(("display", obj.data))
        return Handle()

    ipython = types.ModuleType("IPython")
    ipython.get_ipython = ZMQInteractiveShell  # type: ignore[attr-defined]
    ipython_display = types.ModuleType("IPython.display")
    ipython_display.display = display  # type: ignore[attr-defined]
    ipython_display.HTML = type("HTML", (), {"__init__": lambda s, d: setattr(s, "data", d)})
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", ipython_display)

    console, out = make_console()
    clock = FakeClock()
    cb = ProgressCallback(2, console=console, clock=clock)  # picks the notebook reporter itself
    run_experiment(cb, clock, [make_trial(0)], n_results=30, dt=0.1)
    kinds = [kind for kind, _ in shown]
    assert kinds[0] == "display" and set(kinds[1:]) == {"update"} and len(kinds) == 4
    assert "<pre" in shown[-1][1] and "Trial name" in shown[-1][1]
    assert "Trial name" not in text(out)  # the table went to the notebook, the summary to text


def test_invalid_arguments_are_rejected_with_the_standard_message():
    with pytest.raises(TuneConfigError, match=r"`verbose` must be in \[0, 3\], got 4"):
        ProgressCallback(4)
    with pytest.raises(TypeError, match="`verbose` must be an int"):
        ProgressCallback("2")  # type: ignore[arg-type]
    with pytest.raises(TuneConfigError, match="`mode` must be one of"):
        ProgressCallback(1, mode="best")
    with pytest.raises(TypeError, match="`progress_reporter`"):
        ProgressCallback(2, reporter=object())  # type: ignore[arg-type]
    with pytest.raises(TuneConfigError, match="`max_progress_rows` must be >= 1, got 0"):
        CLIReporter(max_progress_rows=0)


def test_a_reporter_metric_that_contradicts_the_experiment_metric_ranks_only_its_table(caplog):
    console, out = make_console()
    cb = ProgressCallback(2, CLIReporter(metric="acc", mode="max"), metric="loss", mode="min",
                          console=console, clock=FakeClock())
    with caplog.at_level("WARNING", logger="poptune"):
        cb.setup()  # Ray's default engine runs it too (its old one raised)
    assert "progress reporter's metric 'acc'" in caplog.text
    trials = [make_trial(0, T, loss=1.0), make_trial(1, T, loss=2.0)]
    for t, acc in zip(trials, (0.1, 0.9)):
        t.last_result["acc"] = acc
    cb.on_experiment_end(trials, elapsed=1)
    shown = text(out)
    assert f"Current best: {trials[1]} acc=0.9" in shown  # the reporter's table: its metric
    assert f"Best result: {trials[0]} loss=1" in shown  # the experiment's summary: its own


def test_reporter_metric_is_used_when_the_experiment_has_none():
    console, out = make_console()
    cb = ProgressCallback(1, CLIReporter(metric="loss", mode="max"), console=console,
                          clock=FakeClock())
    cb.setup()
    cb.on_experiment_end([make_trial(0, T, loss=1.0), make_trial(1, T, loss=3.0)], elapsed=1)
    assert "Best result: train_abcde_00001 loss=3" in text(out)


def test_ray_verbosity_enums_are_accepted():
    import enum

    class Verbosity(enum.IntEnum):
        V0_MINIMAL = 0
        V3_TRIAL_DETAILS = 3

    assert ProgressCallback(Verbosity.V3_TRIAL_DETAILS).verbose == 3


def test_hyperparameter_columns_that_do_not_fit_are_named_instead_of_squeezed():
    console, out = make_console(terminal=True)  # 120 columns
    reporter = CLIReporter(metric="loss", mode="min")
    reporter.setup(console=console, clock=FakeClock())
    t = make_trial(0, T, loss=0.5, it=3)
    t.evaluated_params = {f"optimizer/param_{j}": 0.001 * j for j in range(12)}
    reporter.report([t], True)
    lines = text(out).splitlines()
    header = next(line for line in lines if line.startswith("Trial name")).split()
    assert header[:6] == ["Trial", "name", "status", "loss", "iter", "total"]
    assert "optimizer/param_0" in header and "optimizer/param_11" not in header
    assert "…" not in " ".join(header)
    assert any(line.startswith("(") and "columns not shown: " in line for line in lines)
    assert max(len(line.rstrip()) for line in lines) <= 120


def test_verbose_3_lines_under_a_live_table_are_batched_per_redraw():
    console, out = make_console(terminal=True)
    clock = FakeClock()
    cb = ProgressCallback(3, metric="loss", mode="min", console=console, clock=clock)
    run_experiment(cb, clock, [make_trial(i) for i in range(4)], n_results=5_000, dt=0.001)
    shown = text(out)
    assert shown.count("Result: ") == 5_000  # every result is printed ...
    # ... but each print under a live table repaints it: one batch per redraw, not per result
    assert shown.count("trials done") <= 3 * (5 * 4 + 2)


def test_elapsed_time_is_read_from_the_experiment_clock_by_default():
    from poptune.clock import SimulatedClock, use

    console, out = make_console()
    clock = SimulatedClock(start=50.0)
    cb = ProgressCallback(2, console=console, total_samples=10, time_budget_s=3600)
    trials = [make_trial(0, R, loss=1.0)]
    with use(clock):  # Tuner.fit installs the backend's clock like this
        cb.setup(num_samples=10)
        clock.advance(125.0)
        cb.on_trial_result(1, trials, trials[0], trials[0].last_result)
        cb.on_step_end(1, trials)
        cb.on_experiment_end(trials)
    lines = text(out).splitlines()
    assert lines[0] == ("0/10 trials done (1 running, 0 errored) | elapsed 0:02:05 | "
                        "time budget left 0:57:55")
    assert any(line.startswith("Experiment finished after 0:02:05") for line in lines)


def test_the_table_shows_how_long_each_running_trial_has_been_silent_once_one_hangs():
    console, out = make_console()
    clock = FakeClock(now=1000.0)
    cb = ProgressCallback(2, metric="loss", mode="min", console=console, clock=clock)
    trials = [make_trial(0, R, loss=0.5, it=3, last_heard=1000.0 - 75.0),  # hung
              make_trial(1, R, loss=0.4, it=9, last_heard=1000.0 - 2.0),
              make_trial(2, T, loss=0.3, it=10, last_heard=900.0)]
    cb.setup(total_num_samples=3)
    cb.on_experiment_end(trials)
    lines = text(out).splitlines()
    header = next(line for line in lines if "Trial name" in line).split()
    assert header[:4] == ["Trial", "name", "status", "silent"]
    rows = {t: next(line for line in lines if line.startswith(str(t))).split()[1:3]
            for t in trials}
    assert rows[trials[0]] == ["RUNNING", "1m15s"]
    assert rows[trials[1]] == ["RUNNING", "2s"]
    assert rows[trials[2]] == ["TERMINATED", "0.3"]  # only running trials can be silent


def test_no_silent_column_while_every_running_trial_speaks():
    console, out = make_console()
    clock = FakeClock(now=1000.0)
    cb = ProgressCallback(2, metric="loss", mode="min", console=console, clock=clock)
    trials = [make_trial(0, R, loss=0.5, it=3, last_heard=1000.0 - 9.0)]
    cb.setup(total_num_samples=1)
    cb.on_experiment_end(trials)
    assert "silent" not in next(line for line in text(out).splitlines() if "Trial name" in line)


# --- what reaches the terminal: errors, full final tables, paths, system lines ----------------


def _failed_trial(tmp_path: Any, i: int = 0, status: TrialStatus = E, failures: int = 1) -> Trial:
    """A trial whose error.txt holds a traceback, as the engine leaves it."""
    error_file = tmp_path / f"t{i}" / "error.txt"
    error_file.parent.mkdir()
    error_file.write_text('Traceback (most recent call last):\n  File "train.py", line 3, in '
                          'train\nValueError: boom\n')
    return make_trial(i, status, loss=1.0, it=1, error_msg="ValueError: boom",
                      error_file=str(error_file), num_failures=failures)


def test_a_trial_failure_is_logged_with_its_traceback_at_every_verbosity(tmp_path, caplog,
                                                                           monkeypatch):
    bad = _failed_trial(tmp_path)
    console, out = make_console()
    cb = ProgressCallback(0, console=console, clock=FakeClock())
    cb.setup()
    with caplog.at_level("ERROR", logger="poptune"):
        cb.on_trial_recover(0, [bad], bad)  # a failure that will be retried says so
        cb.on_trial_error(0, [bad], bad)
    assert [r.getMessage() for r in caplog.records] == [
        f"Trial task failed for trial {bad} (failure 1, will be retried)\n"
        'Traceback (most recent call last):\n  File "train.py", line 3, in train\n'
        "ValueError: boom",
        f"Trial task failed for trial {bad}\nTraceback (most recent call last):\n"
        '  File "train.py", line 3, in train\nValueError: boom']
    assert out.getvalue() == ""  # stdout stays silent at verbose 0
    caplog.clear()
    quiet = ProgressCallback(2, console=console, clock=FakeClock(), log_errors=False)
    monkeypatch.setenv("TUNE_PRINT_ALL_TRIAL_ERRORS", "0")  # Ray's switch
    for cb in (quiet, ProgressCallback(2, console=console, clock=FakeClock())):
        cb.setup()
        cb.on_trial_error(0, [bad], bad)
    assert not caplog.records


def test_the_trials_that_errored_are_named_at_the_end_at_every_verbosity(tmp_path, caplog):
    trials = [make_trial(0, T, loss=1.0), _failed_trial(tmp_path, 1), _failed_trial(tmp_path, 2)]
    with caplog.at_level("ERROR", logger="poptune"):
        for log_incomplete in (True, False):  # tune.run says it itself
            cb = ProgressCallback(0, console=make_console()[0], clock=FakeClock(),
                                  log_incomplete=log_incomplete)
            cb.setup()
            cb.on_experiment_end(trials)
    assert [r.getMessage() for r in caplog.records] == [
        "Trials did not complete: [train_abcde_00001, train_abcde_00002]"]


def test_the_error_table_and_the_verbose_3_line_name_each_error_file(tmp_path):
    bad = _failed_trial(tmp_path)
    console, out = make_console()
    cb = ProgressCallback(3, console=console, clock=FakeClock())
    cb.setup()
    cb.on_trial_error(0, [bad], bad)
    cb.on_experiment_end([bad])
    shown = text(out)
    assert (f"Trial {bad} errored (failure 1): ValueError: boom (error file: {bad.error_file})"
            in shown)
    header = next(line for line in shown.splitlines() if "# failures" in line).split()
    assert header == ["Trial", "name", "#", "failures", "error", "file", "error"]
    assert [str(bad), "1", bad.error_file, "ValueError:", "boom"] in [
        line.split() for line in shown.splitlines()]
    console, out = make_console(terminal=True)  # too narrow for the path: a line of its own
    reporter = CLIReporter()
    reporter.setup(console=console, clock=FakeClock())
    reporter.report([bad], True)
    shown = text(out)
    assert [str(bad), "1", "ValueError:", "boom"] in [line.split() for line in shown.splitlines()]
    assert f"{bad}errorfile:{bad.error_file}" in "".join(shown.split())


def test_a_trial_that_ended_well_after_a_retry_is_marked_with_rays_footnote(tmp_path):
    console, out = make_console()
    reporter = CLIReporter()
    reporter.setup(console=console, clock=FakeClock())
    recovered, failed = _failed_trial(tmp_path, 0, T), _failed_trial(tmp_path, 1, E, failures=2)
    reporter.report([recovered, failed], True)
    rows = {line.split()[0]: line.split()[1] for line in text(out).splitlines()
            if line.startswith("train_") and "error.txt" in line}
    assert rows == {str(recovered): "1*", str(failed): "2"}
    assert "* The trial terminated successfully after retrying." in text(out)
    console, out = make_console()
    reporter.setup(console=console, clock=FakeClock())
    reporter.report([failed], True)
    assert "retrying" not in text(out)


def test_the_final_table_shows_every_trial_whatever_max_progress_rows(tmp_path):
    console, out = make_console()
    reporter = CLIReporter(max_progress_rows=5, max_error_rows=2, metric="loss", mode="min")
    reporter.setup(console=console, clock=FakeClock())
    trials = [make_trial(i, T, loss=float(i)) for i in range(25)]
    trials += [_failed_trial(tmp_path, i) for i in range(25, 29)]
    reporter.report(trials, False)
    assert len([ln for ln in text(out).splitlines() if ln.startswith("train_")]) == 5 + 2
    assert "more trials not shown" in text(out)
    console, out = make_console()
    reporter.setup(console=console, clock=FakeClock())
    reporter.report(trials, True)
    names = [line.split()[0] for line in text(out).splitlines() if line.startswith("train_")]
    assert len(names) == 29 + 4 and set(names) == {str(t) for t in trials}
    assert "not shown" not in text(out) and "more errored" not in text(out)


def test_output_to_a_file_keeps_every_column_and_the_whole_best_trial(tmp_path):
    console, out = make_console(terminal=False)  # 120 columns, but not a terminal
    cb = ProgressCallback(2, metric="loss", mode="min", console=console, clock=FakeClock())
    t = make_trial(0, T, loss=0.5, it=3)
    t.evaluated_params = {f"hyperparameter_{j}": 0.001 * (j + 1) for j in range(12)}
    cb.setup()
    cb.on_experiment_end([t], experiment_path="/tmp/exp")
    lines = text(out).splitlines()
    header = next(line for line in lines if line.startswith("Trial name")).split()
    assert header[-12:] == [f"hyperparameter_{j}" for j in range(12)]
    row = next(line for line in lines if line.startswith(str(t))).split()
    assert row[-12:] == [f"{0.001 * (j + 1):.5g}" for j in range(12)]
    assert "not shown" not in text(out) and "…" not in text(out)
    best = next(line for line in lines if line.startswith("Best result: "))
    assert best.endswith("hyperparameter_11=0.012)")


def test_columns_the_user_listed_are_never_left_out_in_a_terminal():
    console, out = make_console(terminal=True)  # 120 columns
    listed = [f"optimizer/param_{j}" for j in (9, 10, 11)]
    reporter = CLIReporter(metric="loss", mode="min", parameter_columns=listed)
    reporter.setup(console=console, clock=FakeClock())
    t = make_trial(0, T, loss=0.5, it=3)
    t.evaluated_params = {f"optimizer/param_{j}": 0.001 * j for j in range(12)}
    t.last_result.update({f"metric_number_{j}": float(j) for j in range(2)})
    reporter.report([t], True)
    lines = text(out).splitlines()
    header = next(line for line in lines if line.startswith("Trial name")).split()
    # the inferred columns give way to the listed ones, which come last
    assert header[3:] == ["loss", "metric_number_0", *listed]
    assert "(3 columns not shown: metric_number_1, iter, total time (s))" in lines
    assert max(len(line.rstrip()) for line in lines) <= 120


def test_a_run_that_never_started_prints_no_summary():
    console, out = make_console()
    cb = ProgressCallback(2, console=console, clock=FakeClock())
    cb.on_experiment_end([], experiment_path="/tmp/exp", elapsed=0.0)  # setup never ran
    assert text(out) == ""
    cb.on_experiment_end([], experiment_path="/tmp/exp", elapsed=0.0, interrupted=True)
    assert "Experiment interrupted after 0:00:00: 0 trials (none started)" in text(out)


def test_the_results_path_is_printed_once_at_the_start_from_verbose_1():
    for verbose, shown in ((0, ""), (1, "View detailed results here: /tmp/exp\n")):
        console, out = make_console()
        cb = ProgressCallback(verbose, console=console, clock=FakeClock(),
                              experiment_path="/tmp/exp")
        cb.setup(total_num_samples=1)
        cb.on_step_end(0, [make_trial(0)])
        assert text(out) == shown


class SysInfoReporter(ProgressReporter):
    """A user's reporter keeping the ``sys_info`` lines it is given at the end."""

    def __init__(self) -> None:
        self.got: list[tuple[Any, ...]] = []

    def should_report(self, trials, done=False):
        return done

    def report(self, trials, done, *sys_info):
        self.got.append(sys_info)


def test_system_lines_are_read_only_when_a_table_is_drawn_and_reach_a_users_reporter():
    calls = []

    def sys_info() -> tuple[str, str]:
        calls.append(1)
        return ("Using FIFO scheduling algorithm.", "Logical resource usage: 1/2 CPUs, 0/0 GPUs")

    clock = FakeClock()
    trials = [make_trial(0, loss=1.0)]
    quiet = ProgressCallback(0, clock=clock, sys_info=sys_info)
    run_experiment(quiet, clock, trials, n_results=50)
    assert calls == []  # verbose 0: never read
    reporter = SysInfoReporter()
    cb = ProgressCallback(2, reporter, console=make_console()[0], clock=clock, sys_info=sys_info)
    run_experiment(cb, clock, trials, n_results=50)
    assert reporter.got == [sys_info()]  # Ray's old engine passes these two
    console, out = make_console()
    cb = ProgressCallback(2, console=console, clock=clock, sys_info=sys_info)
    run_experiment(cb, clock, trials, n_results=50)
    assert "Logical resource usage: 1/2 CPUs, 0/0 GPUs" in text(out).splitlines()


def _fails_when_told(config):
    import poptune as tune

    tune.report({"loss": config["x"]})
    if config["fail"]:
        raise ValueError("boom from trial")


def test_a_tuner_run_says_where_results_go_logs_failures_and_passes_system_lines(
        tmp_path, caplog, capsys):
    import poptune as tune

    reporter = SysInfoReporter()
    space = {"x": 1.0, "fail": tune.grid_search([False, True])}
    with caplog.at_level("WARNING", logger="poptune"):
        grid = tune.Tuner(_fails_when_told, param_space=space, run_config=tune.RunConfig(
            storage_path=str(tmp_path), name="exp", verbose=1, progress_reporter=reporter,
            failure_config=tune.FailureConfig(max_failures=1))).fit()
    assert grid.num_errors == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"View detailed results here: {tmp_path / 'exp'}"
    messages = [r.getMessage() for r in caplog.records]
    failed = [m for m in messages if m.startswith("Trial task failed for trial ")]
    assert len(failed) == 2 and "(failure 1, will be retried)" in failed[0]
    assert all(m.endswith("ValueError: boom from trial") and "Traceback" in m for m in failed)
    assert any(m.endswith("retrying from the start (1/1)") for m in messages)  # no checkpoint
    assert len([m for m in messages if m.startswith("Trials did not complete: [")]) == 1
    assert reporter.got[-1][0] == "Using FIFO scheduling algorithm."
    assert re.fullmatch(r"Logical resource usage: [\d.]+/[\d.]+ CPUs, [\d.]+/\d+ GPUs",
                        reporter.got[-1][1])


def test_tune_run_names_the_failed_trials_once(tmp_path, caplog):
    import poptune as tune

    with caplog.at_level("ERROR", logger="poptune"):
        tune.run(_fails_when_told, config={"x": 1.0, "fail": True}, storage_path=str(tmp_path),
                 verbose=0, raise_on_failed_trial=False)
    assert len([r for r in caplog.records
                if r.getMessage().startswith("Trials did not complete")]) == 1
