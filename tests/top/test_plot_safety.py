"""What ``poptune.lineage``/``poptune.plot`` (and so ``poptune plot``) read from an experiment
directory that someone else could have written: no file whose real path leaves it (a planted
symlink: ``result.json``, ``params.json``, ``pbt_global.txt``, ``journal.jsonl`` or a whole
trial directory), no FIFO (it would block ``open()`` for ever); and names that matplotlib
would parse as mathtext (``$...$``) drawn as they are."""

from __future__ import annotations

import json
import logging
import os
import threading

import pytest

from poptune.exceptions import StorageError
from poptune.lineage import hyperparam_schedule, load_experiment
from tests.top.test_lineage import LINES, make_experiment, tid

OUTSIDE_SCORE = 1_000_039.0


@pytest.fixture
def exp_dir(tmp_path):
    return make_experiment(tmp_path)


@pytest.fixture
def outside(tmp_path):
    """Files outside the experiment: result rows with a score no trial reached, params, a
    PBT log with a line that would be an exploit, and a file that is no log at all."""
    d = tmp_path / "outside"
    d.mkdir()
    (d / "result.json").write_text(json.dumps(
        {"score": OUTSIDE_SCORE, "training_iteration": 1, "trial_id": tid(0),
         "config": {"lr": 7.0}}) + "\n")
    (d / "params.json").write_text(json.dumps({"lr": 7.0}))
    (d / "pbt_global.txt").write_text(json.dumps(LINES[0]) + "\n")
    (d / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    trial = d / "train_abcde_00009_9_lr=7_2026-01-01_00-00-00"
    trial.mkdir()
    (trial / "result.json").write_text((d / "result.json").read_text())
    (trial / "params.json").write_text(json.dumps({"lr": 7.0}))
    return d


def _trial_dirs(exp: str) -> list[str]:
    return sorted(os.path.join(exp, n) for n in os.listdir(exp) if n.startswith("train_"))


def _scores(exp) -> list[float]:
    return [r["score"] for t in exp.trials for r in t.rows]


def test_symlinked_result_and_params_files_are_not_read(exp_dir, outside, caplog):
    first = _trial_dirs(exp_dir)[0]
    for name in ("result.json", "params.json"):
        os.remove(os.path.join(first, name))
        os.symlink(outside / name, os.path.join(first, name))
    with caplog.at_level(logging.WARNING, logger="poptune.lineage"):
        exp = load_experiment(exp_dir)
    assert OUTSIDE_SCORE not in _scores(exp)
    assert all(t.params != {"lr": 7.0} for t in exp.trials)
    assert "resolves outside" in caplog.text and "result.json" in caplog.text
    # a trial directory given on its own: confined to that directory (both files refused,
    # it holds no trial)
    with pytest.raises(StorageError, match="it holds no result.json or params.json$"):
        hyperparam_schedule(first)


def test_a_symlinked_trial_directory_is_not_followed(exp_dir, outside):
    os.symlink(outside / "train_abcde_00009_9_lr=7_2026-01-01_00-00-00",
               os.path.join(exp_dir, "train_abcde_00009_9_lr=7_2026-01-01_00-00-00"))
    exp = load_experiment(exp_dir)
    assert tid(9) not in [t.trial_id for t in exp.trials]
    assert OUTSIDE_SCORE not in _scores(exp)


def test_a_symlinked_pbt_log_is_not_read(exp_dir, outside, caplog):
    log = os.path.join(exp_dir, "pbt_global.txt")
    os.remove(log)
    os.symlink(outside / "passwd", log)  # was: "Could not read PBT policy file": it was read
    with caplog.at_level(logging.WARNING, logger="poptune.lineage"):
        assert load_experiment(exp_dir).exploits == []
    assert "pbt_global.txt" in caplog.text
    os.remove(log)
    os.symlink(outside / "pbt_global.txt", log)  # a well-formed log: still not read
    assert load_experiment(exp_dir).exploits == []


def test_a_symlinked_journal_is_not_read(exp_dir, outside):
    (outside / "journal.jsonl").write_text("not a journal\n")
    os.symlink(outside / "journal.jsonl", os.path.join(exp_dir, "journal.jsonl"))
    assert len(load_experiment(exp_dir).trials) == 3  # (reading it: RestoreError)


def _load_within(path: str, seconds: float) -> tuple[bool, object]:
    """Load the experiment in a thread; (finished, what it returned or raised)."""
    box: list[object] = []

    def target() -> None:
        try:
            box.append(load_experiment(path))
        except Exception as exc:  # noqa: BLE001
            box.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive(), (box[0] if box else None)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("where", ["result.json", "pbt_global.txt", "journal.jsonl"])
def test_a_fifo_never_blocks_loading(exp_dir, where):
    path = (os.path.join(_trial_dirs(exp_dir)[0], "result.json") if where == "result.json"
            else os.path.join(exp_dir, where))
    if os.path.exists(path):
        os.remove(path)
    os.mkfifo(path)
    done, got = _load_within(exp_dir, 20)
    if not done:  # release the blocked open() before failing
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
    assert done, f"load_experiment blocked on the FIFO {where}"
    assert not isinstance(got, BaseException), got
    assert len(got.trials) == 3  # type: ignore[attr-defined]


def test_a_bad_log_line_is_named_without_reading_the_file_again(exp_dir, monkeypatch):
    import poptune.storage.pbt_log as pbt_log

    with open(os.path.join(exp_dir, "pbt_global.txt"), "a") as f:
        f.write("[1, 2]\nnot json\n")

    def no_reopen(path):
        raise AssertionError(f"{path} opened again")

    monkeypatch.setattr(pbt_log, "read_policy_file", no_reopen)
    with pytest.raises(ValueError, match=r"^Could not read PBT policy file .*pbt_global.txt: "
                                         r"line 5 must be a list \[target_tag.*got \[1, 2\]$"):
        load_experiment(exp_dir)


# -- plots ----------------------------------------------------------------------------------
mpl = pytest.importorskip("matplotlib")

from poptune import plot  # noqa: E402

MATH_METRIC = "score$\\nosuch$"
MATH_KEY = "lr$\\bogus{$"


def _rename(exp_dir: str, metric: str, key: str) -> None:
    """Rewrite every file of the experiment with ``metric`` for score and ``key`` for lr."""
    for trial in _trial_dirs(exp_dir):
        rows = [json.loads(line) for line in open(os.path.join(trial, "result.json"))]
        with open(os.path.join(trial, "result.json"), "w") as f:
            for r in rows:
                r[metric] = r.pop("score")
                r["config"] = {key: r["config"]["lr"]}
                f.write(json.dumps(r) + "\n")
        with open(os.path.join(trial, "params.json"), "w") as f:
            json.dump({key: rows[0]["config"][key]}, f)
    log = os.path.join(exp_dir, "pbt_global.txt")
    lines = [json.loads(line) for line in open(log)]
    with open(log, "w") as f:
        for line in lines:
            line[4], line[5] = {key: line[4]["lr"]}, {key: line[5]["lr"]}
            f.write(json.dumps(line) + "\n")


def test_dollar_signs_in_names_are_drawn_as_text(exp_dir, tmp_path):
    _rename(exp_dir, MATH_METRIC, MATH_KEY)
    paths = plot.plot_all(exp_dir, tmp_path / "out", metric=MATH_METRIC, mode="max",
                          over_time=True)
    names = sorted(os.path.basename(p) for p in paths)
    assert names == ["best_over_time.png", "family_tree.png", "metric.png",
                     "scatter_lr_bogus_.png", "schedules.png", "trials_over_time.png"]
    fig = plot.plot_metric(exp_dir, MATH_METRIC)
    (ax,) = fig.axes
    assert ax.get_ylabel() == MATH_METRIC.replace("$", r"\$")
    fig.canvas.draw()  # parsing happens when drawn: no mathtext error
    fig = plot.plot_scatter(exp_dir, MATH_METRIC)
    assert fig.axes[0].get_xlabel() == MATH_KEY.replace("$", r"\$")
    fig.canvas.draw()


def test_one_plot_that_fails_does_not_lose_the_others(exp_dir, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("cannot draw this one")

    monkeypatch.setattr(plot, "plot_scatter", broken)
    with pytest.warns(plot.PlotWarning, match=r"scatter_lr.png was not written: RuntimeError: "
                                              r"cannot draw this one"):
        paths = plot.plot_all(exp_dir, tmp_path / "out", metric="score", mode="max")
    assert [os.path.basename(p) for p in paths] == ["metric.png", "schedules.png",
                                                    "family_tree.png"]
    assert all(os.path.getsize(p) > 0 for p in paths)


def test_a_metric_nobody_reported_lists_metrics_not_bookkeeping():
    with pytest.raises(ValueError) as exc:
        plot.check_metric_reported("nope", False, ["score", "pid", "timestamp", "config/lr",
                                                   "iterations_since_restore"], "/x",
                                   name="--metric")
    assert str(exc.value) == ("--metric must be a numeric metric the trials reported, got "
                              "'nope'; reported in /x: ['score']")
