"""The trial-file writer process: the files it writes, its failures, what it leaves behind."""

from __future__ import annotations

import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import cloudpickle
import pytest

import poptune as tune
from poptune._pickling import dump_config
from poptune.storage.trial_files import TrialFiles

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Blob:
    """A constant of the space: pickled once for the writer, referred to by each config."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:  # params.json shows it (the default repr has an address)
        return f"Blob({self.n})"


def _write_trials(files: TrialFiles, root, n: int = 3) -> None:
    blob_obj = Blob(7)
    files.constants(cloudpickle.dumps([blob_obj]))
    for i in range(n):
        config = {"lr": 0.1 * i, "model": blob_obj, "nested": {"a": i}}
        cblob = dump_config(config, {id(blob_obj): 0})
        d = str(root / f"t{i}")
        files.params(d, cblob)
        key = files.open(d, json=True, csv=True, fresh=True, config=config, config_blob=cblob)
        for step in range(3):
            files.write(key, {"loss": 1.0 / (step + 1), "training_iteration": step + 1,
                              "config": config})
            files.release()
        files.flush(key)
        files.close(key)


def _contents(root) -> dict[str, bytes]:
    return {os.path.relpath(os.path.join(dp, f), root): open(os.path.join(dp, f), "rb").read()
            for dp, _, fs in os.walk(root) for f in fs}


def test_the_writer_process_writes_what_the_driver_would(tmp_path):
    files = TrialFiles()
    try:
        _write_trials(files, tmp_path / "proc")
        files.drain()
        assert files._proc is not None and files._proc.poll() is None
    finally:
        files.shutdown()
    inline = TrialFiles(process=False)
    _write_trials(inline, tmp_path / "inline")
    inline.shutdown()
    proc, ref = _contents(tmp_path / "proc"), _contents(tmp_path / "inline")
    assert sorted(proc) == sorted(ref) and len(ref) == 12
    for name in ref:
        if not name.endswith(".pkl"):
            assert proc[name] == ref[name], name
    rows = [json.loads(ln) for ln in proc["t2/result.json"].decode().splitlines()]
    assert [r["training_iteration"] for r in rows] == [1, 2, 3]
    assert rows[0]["config"]["lr"] == 0.2 and rows[0]["config"]["nested"] == {"a": 2}
    params = pickle.loads(proc["t1/params.pkl"])
    assert isinstance(params["model"], Blob) and params["model"].n == 7


def test_shutdown_leaves_no_process(tmp_path):
    files = TrialFiles()
    proc = files._proc
    assert proc is not None
    files.shutdown()
    assert proc.poll() is not None


def _one_trial(files: TrialFiles, root) -> tuple[int, str, dict]:
    """A new trial's params and result-file writer: (its key, its directory, its config)."""
    config = {"x": 1}
    cblob = dump_config(config, {})
    d = str(root / "t")
    files.params(d, cblob)
    key = files.open(d, json=True, csv=True, fresh=True, config=config, config_blob=cblob)
    return key, d, config


def test_a_dead_writer_is_replaced_by_the_driver_and_open_writers_go_on(tmp_path, caplog):
    files = TrialFiles()
    key, d, config = _one_trial(files, tmp_path)
    files.write(key, {"it": 1, "config": config})
    files.flush(key)
    files.drain()
    assert files._proc is not None
    files._proc.kill()
    files._proc.wait()
    with caplog.at_level(logging.WARNING, logger="poptune"):
        files.write(key, {"it": 2, "config": config})
        files.flush(key)
        files.drain()
        files.write(key, {"it": 3, "config": config})
        files.close(key)
        files.shutdown()
    assert "trial-file writer failed" in caplog.text
    rows = [json.loads(ln) for ln in open(os.path.join(d, "result.json"))]
    assert [r["it"] for r in rows] == [1, 2, 3]
    assert open(os.path.join(d, "progress.csv")).read().splitlines() == ["it", "1", "2", "3"]


def test_a_failing_write_is_reported_once_and_the_writer_goes_on(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    files = TrialFiles()
    with caplog.at_level(logging.WARNING, logger="poptune"):
        for i in range(2):  # the same failure twice: said once
            files.params(str(blocker / f"t{i}"), dump_config({"x": i}, {}))
        files.params(str(tmp_path / "ok"), dump_config({"x": 9}, {}))
        files.shutdown()
    assert caplog.text.count("writing trial files failed") == 2  # two different paths
    assert json.load(open(tmp_path / "ok" / "params.json")) == {"x": 9}


def test_what_a_killed_driver_sent_is_still_written(tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {ROOT!r})
        from poptune._pickling import dump_config
        from poptune.storage.trial_files import TrialFiles
        files = TrialFiles()
        print(files._proc.pid, flush=True)
        for i in range(200):
            files.params(os.path.join({str(tmp_path)!r}, "t%d" % i), dump_config({{"i": i}}, {{}}))
        files.release()
        os.kill(os.getpid(), signal.SIGKILL)
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == -signal.SIGKILL
    writer_pid = int(proc.stdout.split()[0])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the writer finishes its input, then exits
        try:
            os.kill(writer_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(writer_pid, signal.SIGKILL)
        raise AssertionError("the trial-file writer outlived its driver")
    for i in range(200):
        assert json.load(open(tmp_path / f"t{i}" / "params.json")) == {"i": i}


def test_a_row_value_that_cannot_be_pickled_is_written_as_its_repr(tmp_path):
    """A trial on the simulated backend reports in the driver: its result is never pickled
    on the way, so it may hold a lock; the writer gets its repr, as result.json shows it."""
    import threading

    lock = threading.Lock()
    files = TrialFiles()
    key, d, config = _one_trial(files, tmp_path)
    files.write(key, {"it": 1, "lock": lock, "config": config})
    files.close(key)
    files.shutdown()
    (row,) = [json.loads(ln) for ln in open(os.path.join(d, "result.json"))]
    assert row == {"it": 1, "lock": str(lock), "config": {"x": 1}}


class FromTheScript:
    """A class of the user's script (``__main__``), which the writer process cannot import."""

    def __str__(self) -> str:
        return "FromTheScript()"


FromTheScript.__module__ = "__main__"


def test_a_row_value_of_a_class_from_the_users_script_is_written_as_its_str(tmp_path, caplog):
    """Pickled by reference it failed the writer's whole batch (other trials' rows lost);
    result.json and progress.csv show ``str(value)``, as Ray's do."""
    files = TrialFiles()
    key, d, config = _one_trial(files, tmp_path)
    with caplog.at_level(logging.WARNING, logger="poptune"):
        files.write(key, {"it": 1, "obj": FromTheScript(), "deep": [FromTheScript()],
                          "config": config})
        files.write(key, {"it": 2, "obj": 2, "deep": [], "config": config})
        files.close(key)
        files.drain()
        assert files._proc is not None and files._proc.poll() is None  # the writer lived
        files.shutdown()
    assert not [r for r in caplog.records if "writer failed" in r.getMessage()]
    rows = [json.loads(ln) for ln in open(os.path.join(d, "result.json"))]
    assert [r["obj"] for r in rows] == ["FromTheScript()", 2]
    assert rows[0]["deep"] == ["FromTheScript()"]
    csv_rows = open(os.path.join(d, "progress.csv")).read().splitlines()
    assert csv_rows[1].startswith("1,FromTheScript(),['FromTheScript()']"), csv_rows


# -- when the runner waits for the writer ---------------------------------------------------
def _rows(config):
    for i in range(config["n"]):
        tune.report({"i": i})


class ReadsAtCompletion(tune.Callback):
    """A user callback that reads a trial's progress.csv when it completes (as MLflow's
    artifact upload reads the trial directory)."""

    def __init__(self):
        self.seen = {}

    def on_trial_complete(self, iteration, trials, trial, **info):
        with open(os.path.join(trial.local_path, "progress.csv")) as f:
            self.seen[trial.trial_id] = len(f.read().splitlines()) - 1


def _fit_counting_drains(tmp_path, monkeypatch, callbacks, n_trials=6):
    drains = []
    real = TrialFiles.drain
    monkeypatch.setattr(TrialFiles, "drain", lambda self: (drains.append(1), real(self))[1])
    tune.Tuner(_rows, param_space={"n": 5},
               tune_config=tune.TuneConfig(num_samples=n_trials, max_concurrent_trials=2),
               run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                         callbacks=callbacks)).fit()
    return len(drains)


def test_a_callback_reading_files_at_completion_finds_every_row(tmp_path, monkeypatch):
    reader = ReadsAtCompletion()
    _fit_counting_drains(tmp_path, monkeypatch, [reader])
    assert list(reader.seen.values()) == [5] * 6


def test_callbacks_that_cannot_read_files_at_completion_cost_no_wait_per_trial(
        tmp_path, monkeypatch):
    """Waiting for the writer at every completion halves the throughput of short trials: it
    is only done for a callback that listens to ``on_trial_complete`` and may read files."""
    pytest.importorskip("tensorboardX")
    from poptune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback

    class OnResult(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            pass

    baseline = _fit_counting_drains(tmp_path / "none", monkeypatch, [])
    monkeypatch.undo()
    from poptune.syne_tune._bridge import Bridge

    bridge = Bridge(lambda status: False, ["i"], 0, str(tmp_path / "syne"))  # Syne Tune's table
    quiet = [OnResult(), JsonLoggerCallback(), CSVLoggerCallback(), TBXLoggerCallback(), bridge]
    assert _fit_counting_drains(tmp_path / "quiet", monkeypatch, quiet) == baseline
    monkeypatch.undo()
    assert _fit_counting_drains(tmp_path / "reader", monkeypatch,
                                [ReadsAtCompletion()]) >= baseline + 6
