"""Crash safety: SIGKILL of the driver or of a worker, Ctrl-C, and Tuner.restore."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

import poptune as tune
from poptune.tuner import Tuner
from tests._modules import source_module

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TRAIN_MODULE = textwrap.dedent('''
    import os, tempfile, time, signal
    import poptune as tune

    def train(config):
        start = 0
        ckpt = tune.get_checkpoint()
        if ckpt:
            with ckpt.as_directory() as d:
                start = int(open(os.path.join(d, "step")).read())
        for step in range(start + 1, config["steps"] + 1):
            time.sleep(config.get("sleep", 0.01))
            if config.get("suicide_at") == step and not os.path.exists(config["marker"]):
                open(config["marker"], "w").close()
                os.kill(os.getpid(), signal.SIGKILL)
            ckpt = None
            if step % 3 == 0:
                d = tempfile.mkdtemp()
                open(os.path.join(d, "step"), "w").write(str(step))
                ckpt = tune.Checkpoint.from_directory(d)
            tune.report({"value": step * config["k"]}, checkpoint=ckpt)
''')

DRIVER = textwrap.dedent('''
    import sys
    sys.path.insert(0, {moddir!r})
    import poptune as tune
    import crashmod
    tune.Tuner(
        crashmod.train,
        param_space={{"k": tune.grid_search([1, 2, 3, 4]), "steps": 30, "sleep": 0.02}},
        run_config=tune.RunConfig(name="crash", storage_path={storage!r}, verbose=0),
    ).fit()
''')


@pytest.fixture
def crashmod(tmp_path):
    with source_module(tmp_path, "crashmod", TRAIN_MODULE) as mod:
        yield mod


def _count_results(journal: str) -> int:
    try:
        with open(journal, "rb") as f:
            return sum(1 for line in f if line.startswith(b'{"e":"result"'))
    except FileNotFoundError:
        return 0


_DRIVERS: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_driver_left_behind():
    """A test that fails while its driver runs (a wait that timed out) must not leave the
    driver running: kill every driver the test started."""
    yield
    while _DRIVERS:
        proc = _DRIVERS.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def _popen(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen(args, env=env)
    _DRIVERS.append(proc)
    return proc


def _start_driver(tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(moddir=str(tmp_path), storage=str(tmp_path / "results")))
    env = dict(os.environ, PYTHONPATH=ROOT)
    return _popen([sys.executable, str(script)], env=env)


def _wait_for_results(proc, journal, n, timeout=60):
    deadline = time.time() + timeout
    while _count_results(journal) < n:
        assert proc.poll() is None, "driver ended before it could be interrupted"
        assert time.time() < deadline
        time.sleep(0.005)


def _assert_complete_and_unique(exp_dir, ks=(1, 2, 3, 4), steps=30):
    grid = tune.ResultGrid.from_path(exp_dir) if hasattr(tune.ResultGrid, "from_path") else None
    dirs = [os.path.join(exp_dir, d) for d in os.listdir(exp_dir)
            if os.path.isdir(os.path.join(exp_dir, d))]
    assert len(dirs) == len(ks)
    seen = set()
    for d in dirs:
        df = pd.read_csv(os.path.join(d, "progress.csv"))
        assert list(df["training_iteration"]) == list(range(1, steps + 1)), d
        k = json.load(open(os.path.join(d, "params.json")))["k"]
        seen.add(k)
        assert list(df["value"]) == [s * k for s in range(1, steps + 1)]
        rows = [json.loads(line) for line in open(os.path.join(d, "result.json"))]
        assert [r["training_iteration"] for r in rows] == list(range(1, steps + 1))
    assert seen == set(ks)
    return grid


@pytest.mark.parametrize("kill_after", [3, 37, 90])
def test_driver_sigkill_then_restore_loses_and_duplicates_nothing(tmp_path, crashmod, kill_after):
    exp_dir = str(tmp_path / "results" / "crash")
    proc = _start_driver(tmp_path)
    _wait_for_results(proc, os.path.join(exp_dir, "journal.jsonl"), kill_after)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert Tuner.can_restore(exp_dir)
    grid = Tuner.restore(exp_dir, trainable=crashmod.train).fit()
    assert grid.num_errors == 0 and len(grid) == 4
    assert all(r.metrics["training_iteration"] == 30 for r in grid)
    _assert_complete_and_unique(exp_dir)


def test_ctrl_c_stops_workers_and_leaves_a_restorable_experiment(tmp_path, crashmod):
    exp_dir = str(tmp_path / "results" / "crash")
    proc = _start_driver(tmp_path)
    _wait_for_results(proc, os.path.join(exp_dir, "journal.jsonl"), 20)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)  # it exits at once; the margin is for a loaded machine
    assert Tuner.can_restore(exp_dir)
    grid = Tuner.restore(exp_dir, trainable=crashmod.train).fit()
    assert grid.num_errors == 0
    _assert_complete_and_unique(exp_dir)


def test_worker_sigkill_is_detected_and_trial_retried_from_checkpoint(tmp_path, crashmod):
    grid = tune.Tuner(
        crashmod.train,
        param_space={"k": 1, "steps": 10, "sleep": 0.0, "suicide_at": 5,
                     "marker": str(tmp_path / "marker")},
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0, name="wk",
                                  failure_config=tune.FailureConfig(max_failures=1)),
    ).fit()
    r = grid[0]
    assert os.path.exists(tmp_path / "marker")
    assert r.error is None
    df = pd.read_csv(os.path.join(r.path, "progress.csv"))
    assert list(df["training_iteration"]) == list(range(1, 11))
    # resumed from checkpoint_000000 (step 3), so steps 4.. ran again in the new worker
    assert df["pid"].nunique() == 2
    # read back from disk, the trial that recovered has no error either (its error.txt stays)
    again = tune.ResultGrid.from_path(str(tmp_path / "wk"))
    assert again.num_errors == 0 and again[0].error is None
    assert os.path.exists(os.path.join(r.path, "error.txt"))


def test_worker_sigkill_without_retries_errors_the_trial(tmp_path, crashmod):
    grid = tune.Tuner(
        crashmod.train,
        param_space={"k": 1, "steps": 10, "sleep": 0.0, "suicide_at": 2,
                     "marker": str(tmp_path / "marker")},
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0, name="wk0"),
    ).fit()
    assert grid.num_errors == 1
    assert "WorkerLostError" in open(os.path.join(grid[0].path, "error.txt")).read()


def test_restore_of_a_finished_experiment_reruns_nothing(tmp_path, crashmod):
    grid = tune.Tuner(crashmod.train, param_space={"k": 2, "steps": 4, "sleep": 0.0},
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0, name="done")).fit()
    before = open(os.path.join(grid[0].path, "result.json")).read()
    again = Tuner.restore(str(tmp_path / "done"), trainable=crashmod.train).fit()
    assert len(again) == 1 and again[0].metrics["training_iteration"] == 4
    assert open(os.path.join(grid[0].path, "result.json")).read() == before


def test_restore_removes_checkpoint_dirs_the_journal_deleted_or_never_recorded(tmp_path,
                                                                            crashmod):
    """A driver that dies after committing a checkpoint's deletion but before removing it (or
    before committing a checkpoint it was sent) leaves a directory no restore would use: the
    next restore removes it, keeps the live checkpoint and anything else in the trial dir."""
    grid = tune.Tuner(
        crashmod.train, param_space={"k": 1, "steps": 9, "sleep": 0.0},
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0, name="stale",
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),
    ).fit()
    trial_dir = grid[0].path
    assert sorted(n for n in os.listdir(trial_dir) if n.startswith("checkpoint_")) == [
        "checkpoint_000002"]
    for name in ("checkpoint_000000", "checkpoint_000007", "checkpoint_notes"):
        os.makedirs(os.path.join(trial_dir, name))
    again = Tuner.restore(str(tmp_path / "stale"), trainable=crashmod.train).fit()
    assert sorted(n for n in os.listdir(trial_dir) if n.startswith("checkpoint_")) == [
        "checkpoint_000002", "checkpoint_notes"]
    with again[0].checkpoint.as_directory() as d:
        assert open(os.path.join(d, "step")).read() == "9"


def test_restore_removes_trial_dirs_no_committed_record_names(tmp_path, crashmod):
    """A driver killed between sending a trial's launch and committing its creation leaves
    the directory the trial's worker made (with, say, a checkpoint) that the journal does
    not know: restore removes it. Other trials' and the user's directories stay."""
    grid = tune.Tuner(crashmod.train, param_space={"k": 1, "steps": 3, "sleep": 0.0},
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                                name="orphan")).fit()
    exp_dir = tmp_path / "orphan"
    kept = os.path.basename(grid[0].path)
    trial_id = grid[0].metrics["trial_id"]
    exp_hex, index = trial_id.rsplit("_", 1)
    orphan = exp_dir / kept.replace(f"{exp_hex}_{index}_", f"{exp_hex}_00007_", 1)
    os.makedirs(orphan / "checkpoint_000000")
    other_run = exp_dir / kept.replace(exp_hex, "fffff", 1)  # not this experiment's name
    os.makedirs(other_run)
    (exp_dir / "notes").mkdir()
    Tuner.restore(str(exp_dir), trainable=crashmod.train).fit()
    assert not orphan.exists()
    assert sorted(os.listdir(exp_dir)) == sorted(
        n for n in os.listdir(exp_dir) if n != orphan.name)
    assert (exp_dir / kept).is_dir() and other_run.is_dir() and (exp_dir / "notes").is_dir()


def test_restore_rejects_a_non_experiment(tmp_path):
    from poptune.exceptions import RestoreError

    with pytest.raises(RestoreError, match="not a restorable"):
        Tuner.restore(str(tmp_path), trainable=lambda c: None)


SYNCH_DRIVER = textwrap.dedent('''
    import sys
    sys.path.insert(0, {moddir!r})
    import poptune as tune
    from poptune.schedulers import PopulationBasedTraining
    import crashmod
    pbt = PopulationBasedTraining(time_attr="training_iteration", perturbation_interval=3,
                                  hyperparam_mutations={{"k": tune.uniform(1, 4)}},
                                  synch=True, seed=3)
    tune.Tuner(
        crashmod.train,
        param_space={{"k": tune.grid_search([1.0, 2.0, 3.0, 4.0]), "steps": 24, "sleep": 0.02}},
        tune_config=tune.TuneConfig(scheduler=pbt, metric="value", mode="max"),
        run_config=tune.RunConfig(name="crash", storage_path={storage!r}, verbose=0),
    ).fit()
''')


def test_synch_pbt_restored_after_driver_sigkill_continues_without_hanging(tmp_path, crashmod):
    script = tmp_path / "driver.py"
    script.write_text(SYNCH_DRIVER.format(moddir=str(tmp_path), storage=str(tmp_path / "results")))
    exp_dir = str(tmp_path / "results" / "crash")
    proc = _popen([sys.executable, str(script)], env=dict(os.environ, PYTHONPATH=ROOT))
    _wait_for_results(proc, os.path.join(exp_dir, "journal.jsonl"), 40)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    with open(os.path.join(exp_dir, "journal.jsonl")) as f:  # PBT's state is journaled
        assert '"e":"sched"' in f.read()
    grid = Tuner.restore(exp_dir, trainable=crashmod.train).fit()
    assert grid.num_errors == 0 and len(grid) == 4
    assert all(r.metrics["training_iteration"] == 24 for r in grid)
    assert os.path.getsize(os.path.join(exp_dir, "pbt_global.txt")) > 0
