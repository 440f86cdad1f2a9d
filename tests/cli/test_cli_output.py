"""What ``poptune ls``/``show`` print from an experiment others may have written (markup,
terminal escape sequences, wide configs), and the smaller CLI promises around them:
``dashboard EXPERIMENT_DIR``, Ctrl-D at ``repair``'s question, experiments named ``.x``,
``plot`` errors that name their option, each subcommand's own usage line."""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

import poptune as tune
from poptune.cli import main
from tests.cli.test_cli import _hand_made, output, storage  # noqa: F401 - a fixture

ESC = "\x1b]0;PWNED-TITLE\x07\x1b[31mRED\x1b[0m\x1b[2J"
METRIC = "sc[/]ore"
KEY = "k[/]"
MARKUP_VALUE = "[bold]x[/bold] :red_circle:"


def hostile_train(config: dict[str, Any]) -> None:
    for i in range(2):
        tune.report({METRIC: (i + 1) * config[KEY], "acc": 1.0})
    if config[KEY] > 0.5:
        raise ValueError("boom [/] [bold red]markup[/bold red] " + ESC)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An experiment whose name, metric, trial names, config keys and values and error
    message hold rich markup, emoji codes and terminal escape sequences."""
    root = tmp_path_factory.mktemp("hostile")
    tune.Tuner(
        hostile_train,
        param_space={KEY: tune.grid_search([0.2, 0.8]), "v": ESC, "w": MARKUP_VALUE},
        tune_config=tune.TuneConfig(metric=METRIC, mode="max",
                                    trial_name_creator=lambda t: "[/]T" + ESC + t.trial_id[-1]),
        run_config=tune.RunConfig(name="exp[bold]x[red]", storage_path=str(root), verbose=0),
    ).fit()
    return root


WIDE_VALUES = [[round((0.0731 * (3 * k + i) + 0.001) % 0.997, 6) for k in range(12)]
               for i in range(3)]
WIDE_IDS = [f"98128_{i:05d}" for i in range(3)]


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 finished trials with 12 hyperparameters of long names, whose ids share their first
    characters (as in the probe: every id cut to ``9812…``, status and iteration squeezed
    out)."""
    import json

    from poptune.storage.journal import Journal
    from poptune.storage.records import (
        ExperimentEnded,
        ExperimentStarted,
        ResultReported,
        StatusChanged,
        TrialCreated,
    )

    exp = tmp_path_factory.mktemp("wide") / "widecfg"
    exp.mkdir()
    journal = Journal(str(exp / "journal.jsonl"))
    journal.append(ExperimentStarted("widecfg", "f", "validation_accuracy", "max",
                                     start=time.time()))
    for tid, values in zip(WIDE_IDS, WIDE_VALUES):
        config = {f"hyperparameter_{k:02d}": v for k, v in enumerate(values)}
        (exp / f"f_{tid}").mkdir()
        (exp / f"f_{tid}" / "params.json").write_text(json.dumps(config))
        journal.append(TrialCreated(tid, "f", "", tid[-1], str(exp / f"f_{tid}"), f"f_{tid}"))
        journal.append(ResultReported(tid, {"validation_accuracy": 0.5,
                                            "training_iteration": 1, "config": config}))
        journal.append(StatusChanged(tid, "TERMINATED"))
    journal.append(ExperimentEnded())
    journal.commit()
    journal.close()
    return exp


# -- markup and escape sequences ---------------------------------------------------------------
def test_ls_and_show_print_markup_in_names_as_typed(hostile: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = output(capsys, ["ls", str(hostile)])
    assert (code, err) == (0, "")
    assert "exp[bold]x[red]" in out and f"{METRIC}=1.6 (max)" in out
    code, out, err = output(capsys, ["show", "exp[bold]x[red]", "--storage", str(hostile)])
    assert (code, err) == (0, "")
    assert out.splitlines()[0].startswith("exp[bold]x[red]  finished")
    assert f"best {METRIC}=1.6" in out and f"{METRIC} (max)" in out and KEY in out
    assert "[bold]x[/bold] :red_circle:" in out  # no markup applied, no emoji
    assert "[/]T" in out and "boom [/] [bold red]markup[/bold red]" in out


def test_show_escapes_terminal_control_sequences(hostile: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["show", "exp[bold]x[red]", "--storage", str(hostile)], ["ls", str(hostile)]):
        code, out, _ = output(capsys, argv)
        assert code == 0
        assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f]", out), repr(out)
    visible = ESC.encode("unicode_escape").decode()  # \x1b]0;PWNED-TITLE\x07...
    assert out.count(visible) == 0  # ls shows no trial name
    code, out, _ = output(capsys, ["show", "exp[bold]x[red]", "--storage", str(hostile)])
    # the trial names (table and errors), the config value and the error message
    assert out.count(visible) == 2 + 2 + 1 + 1


def test_error_messages_escape_control_characters(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    odd = tmp_path / ("not_an_experiment" + ESC)  # a directory name from someone else
    odd.mkdir()
    code, out, err = output(capsys, ["show", str(odd)])
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert "\x1b" not in err and "not_an_experiment\\x1b]0;PWNED-TITLE\\x07" in err


# -- wide tables -------------------------------------------------------------------------------
def _check_whole(out: str, wide: Path) -> None:
    """Every trial id, status, iteration, hyperparameter name and value is in ``out``."""
    assert "…" not in out
    for k in range(12):
        assert f"hyperparameter_{k:02d}" in out
    for values in WIDE_VALUES:
        for v in values:
            assert f"{v:.4g}" in out
    for tid in WIDE_IDS:
        rows = [line for line in out.splitlines() if tid in line and "│" in line]
        assert rows and "TERMINATED" in rows[0]  # (its first table has the status)


def test_show_into_a_pipe_cuts_nothing(wide: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = output(capsys, ["show", str(wide)])
    assert code == 0
    _check_whole(out, wide)
    table = [line for line in out.splitlines() if line[:1] in "┏┃┡│└"]
    assert len({len(line) for line in table}) == 1 and len(table[0]) > 200  # one table
    header = next(line for line in table if "trial" in line)
    assert header.split()[1:6:2] == ["trial", "status", "iter"]


def test_show_on_a_narrow_terminal_continues_hyperparameters_in_more_tables(
        wide: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    import poptune.cli as cli

    buffer = io.StringIO()
    console = Console(file=buffer, width=80, force_terminal=True, color_system=None)
    monkeypatch.setattr(cli, "_console", lambda: console)
    assert main(["show", str(wide)]) == 0
    out = buffer.getvalue()
    tables = [line for line in out.splitlines() if line[:1] in "┏┃┡│└"]
    assert max(len(line) for line in tables) <= 80
    _check_whole(out, wide)
    headers = [line for line in out.splitlines() if line.startswith("┃ trial")]
    assert len(headers) > 1 and all("trial" in h for h in headers)  # each led by the trial
    assert "status" in headers[0] and "iter" in headers[0]
    assert "hyperparameters " in out and ", continued" in out


def test_show_of_an_interrupted_experiment_shows_no_silences(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """RUNNING in an interrupted experiment is the status its trials had when it stopped:
    no "silent" column as if they were hung now, and a line says so."""
    from poptune.storage.journal import Journal
    from poptune.storage.records import ExperimentStarted, StatusChanged, TrialCreated

    exp = tmp_path / "killed"
    exp.mkdir()
    journal = Journal(str(exp / "journal.jsonl"))
    journal.append(ExperimentStarted("killed", "train", "score", "max", start=time.time()))
    journal.append(TrialCreated("k_00000", "train", "", "0", str(exp / "k_00000"), "k_00000"))
    journal.append(StatusChanged("k_00000", "RUNNING"))
    journal.commit()
    journal.close()
    old = time.time() - 600
    os.utime(exp / "journal.jsonl", (old, old))
    code, out, _ = output(capsys, ["show", str(exp)])
    assert code == 0 and out.split()[1] == "interrupted"
    assert "silent" not in out and "RUNNING" in out
    assert "were running when the experiment was interrupted" in out


# -- experiments named ".x" ----------------------------------------------------------------------
def test_ls_lists_an_experiment_whose_name_starts_with_a_dot(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _hand_made(tmp_path / ".hidden_exp", "score")  # RunConfig(name=".x") is accepted, as Ray
    _hand_made(tmp_path / "plain", "score")
    code, out, _ = output(capsys, ["ls", str(tmp_path)])
    assert code == 0 and "│ .hidden_exp " in out and "│ plain " in out


# -- dashboard -----------------------------------------------------------------------------------
def _fake_serve(calls: list[dict[str, Any]]) -> Any:
    def serve(root: str, host: str = "", port: int = 0, token: Any = None,
              print_fn: Any = print, filesystem: Any = None) -> None:
        calls.append({"root": root})
        print_fn(f"poptune dashboard for {root}: http://127.0.0.1:{port}/  (Ctrl+C to stop)")

    return serve


def test_dashboard_of_one_experiment_serves_its_storage_opened_on_it(
        storage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    import poptune.dashboard.app as app

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(app, "serve", _fake_serve(calls))
    code, out, err = output(capsys, ["dashboard", str(storage / "pbt_exp"), "--port", "18999"])
    assert (code, err) == (0, "")
    assert calls == [{"root": os.path.realpath(storage)}]
    assert "http://127.0.0.1:18999/#/exp/pbt_exp  (Ctrl+C to stop)" in out
    code, _, err = output(capsys, ["dashboard", str(tmp_path), "--port", "18999"])
    assert code == 0 and calls[-1] == {"root": str(tmp_path)}
    assert err.startswith("poptune dashboard: note: no experiment (a directory holding "
                          f"journal.jsonl) in {tmp_path} yet")


def test_dashboard_help_names_no_experiment_argument(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["dashboard", "--help"])
    out = capsys.readouterr().out
    assert "EXPERIMENT" not in out and "one experiment's directory" in out


# -- repair --------------------------------------------------------------------------------------
def test_repair_takes_ctrl_d_at_its_question_as_no(storage: Path, tmp_path: Path,  # noqa: F811
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    lines = (storage / "pbt_exp" / "journal.jsonl").read_text().splitlines(keepends=True)
    lines[len(lines) // 2] = "not json\n"
    (damaged / "journal.jsonl").write_text("".join(lines))
    before = (damaged / "journal.jsonl").read_bytes()

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    def eof(prompt: str = "") -> str:
        print(prompt, end="")
        raise EOFError

    monkeypatch.setattr("sys.stdin", Tty())
    monkeypatch.setattr("builtins.input", eof)
    code, out, err = output(capsys, ["repair", str(damaged)])
    assert (code, err) == (1, "")
    assert out.endswith("[y/N] \nNot truncated.\n")
    assert (damaged / "journal.jsonl").read_bytes() == before


# -- plot ----------------------------------------------------------------------------------------
def test_plot_writes_the_plots_it_can_and_exits_1_naming_the_one_it_cannot(
        storage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    import poptune.plot as plot

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ValueError("cannot draw this one")

    monkeypatch.setattr(plot, "plot_scatter", broken)
    code, out, err = output(capsys, ["plot", str(storage / "pbt_exp"), "--out",
                                     str(tmp_path / "plots")])
    assert code == 1  # not a usage error: the command line was fine
    assert str(tmp_path / "plots" / "metric.png") in out.split()
    assert err == (f"poptune plot: error: {tmp_path / 'plots' / 'scatter_lr.png'} was not "
                   "written: ValueError: cannot draw this one\n")


def test_plot_leaves_out_a_file_linked_outside_the_experiment_and_says_so(
        storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    pytest.importorskip("matplotlib")
    import shutil

    exp = tmp_path / "copy"
    shutil.copytree(storage / "pbt_exp", exp, ignore=shutil.ignore_patterns("checkpoint_*"))
    (tmp_path / "secret.json").write_text('{"score": 1000039.0, "training_iteration": 1}\n')
    trial = next(d for d in sorted(exp.iterdir()) if (d / "result.json").is_file())
    (trial / "result.json").unlink()
    (trial / "result.json").symlink_to(tmp_path / "secret.json")
    code, out, err = output(capsys, ["plot", str(exp), "--out", str(tmp_path / "plots")])
    assert code == 0 and str(tmp_path / "plots" / "metric.png") in out.split()
    assert err == (f"poptune plot: warning: Not read (left out): "
                   f"'{trial / 'result.json'}' resolves outside '{exp}' "
                   f"(to '{tmp_path / 'secret.json'}')\n")


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc (no directory can be "
                                                        "made in it)")
def test_plot_into_a_directory_that_cannot_be_made_names_out(
        storage: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    pytest.importorskip("matplotlib")
    code, out, err = output(capsys, ["plot", str(storage / "pbt_exp"), "--out",
                                     "/proc/poptune_no_such/plots"])
    assert (code, out) == (1, "")
    assert err.startswith("poptune plot: error: --out /proc/poptune_no_such/plots: cannot "
                          "write /proc/poptune_no_such")


def test_a_usage_error_after_parsing_shows_the_subcommand_usage(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["ls", "a", "--storage", "b"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("usage: poptune ls ")
    assert "poptune ls: error: STORAGE given twice" in err
