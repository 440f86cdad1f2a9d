"""poptune.logger: LoggerCallback hook mapping, CSV/JSON loggers in the engine's format, and
TensorBoard event files written by TBXLoggerCallback."""

from __future__ import annotations

import glob
import json
import os
import struct

import pytest

import poptune as tune
from poptune.engine.trial import Trial, TrialStatus
from poptune.logger import CSVLoggerCallback, JsonLoggerCallback, LoggerCallback
from poptune.storage.trial_logs import TrialLogWriter

VOLATILE = {"time_this_iter_s", "time_total_s", "timestamp", "date", "pid", "hostname",
            "trial_id", "time_since_restore", "experiment_tag", "checkpoint_dir_name"}


def scored(config):
    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt:
        start = json.load(open(os.path.join(ckpt.path, "s.json")))["i"]
    for i in range(start, 4):
        if config.get("fail") and i == 1:
            raise ValueError("bad trial")
        metrics = {"score": config["x"] * (i + 1), "nested": {"a": i, "b": 0.5},
                   "hist": [1.0, 2.0, 3.0], "name": "text", "nan": float("nan")}
        if i % 2 == 1:
            d = os.path.join(tune.get_context().get_trial_dir(), f"tmp{i}")
            os.makedirs(d)
            json.dump({"i": i + 1}, open(os.path.join(d, "s.json"), "w"))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))
        else:
            tune.report(metrics)


def _fit(tmp_path, name, callbacks, param_space=None, **tc):
    return tune.Tuner(
        scored, param_space=param_space or {"x": tune.grid_search([1, 2])},
        tune_config=tune.TuneConfig(**tc),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0,
                                  callbacks=callbacks),
    ).fit()


# -- LoggerCallback -----------------------------------------------------------------------
class Recorder(LoggerCallback):
    def __init__(self):
        self.calls = []

    def log_trial_start(self, trial):
        self.calls.append(("start", trial.trial_id))

    def log_trial_restore(self, trial):
        self.calls.append(("restore", trial.trial_id))

    def log_trial_save(self, trial):
        self.calls.append(("save", trial.trial_id, os.path.basename(trial.checkpoint_path)))

    def log_trial_result(self, iteration, trial, result):
        assert isinstance(iteration, int) and "config" in result
        self.calls.append(("result", trial.trial_id, result["training_iteration"]))

    def log_trial_end(self, trial, failed=False):
        self.calls.append(("end", trial.trial_id, failed))


def test_logger_callback_maps_hooks_to_log_methods_in_order(tmp_path):
    rec = Recorder()
    grid = _fit(tmp_path, "rec", [rec], {"x": 1, "fail": tune.grid_search([False, True])})
    ok, bad = sorted(grid, key=lambda r: r.config["fail"])
    calls_ok = [c[:1] + c[2:] for c in rec.calls if c[1] == ok.metrics["trial_id"]]
    # as in Ray: the result that carries a checkpoint, then the checkpoint's log_trial_save
    assert calls_ok == [("start",), ("result", 1), ("result", 2), ("save", "checkpoint_000000"),
                        ("result", 3), ("result", 4), ("save", "checkpoint_000001"),
                        ("end", False)]
    bad_id = next(c[1] for c in rec.calls if c[0] == "end" and c[2])
    assert [c[:1] + c[2:] for c in rec.calls if c[1] == bad_id] == [
        ("start",), ("result", 1), ("end", True)]
    assert bad.error is not None


def test_logger_callback_restore_hook_on_retry(tmp_path):
    rec = Recorder()
    tune.Tuner(
        flaky, param_space={"marker": str(tmp_path / "failed-once")},
        run_config=tune.RunConfig(name="retry", storage_path=str(tmp_path), verbose=0,
                                  callbacks=[rec],
                                  failure_config=tune.FailureConfig(max_failures=1)),
    ).fit()
    kinds = [c[0] for c in rec.calls]
    # the failure that is retried is Ray's on_trial_recover: no log_trial_end for it
    assert kinds == ["start", "result", "save", "start", "restore", "result", "end"]
    assert [c[2] for c in rec.calls if c[0] == "end"] == [False]


def flaky(config):
    ckpt = tune.get_checkpoint()
    d = os.path.join(tune.get_context().get_trial_dir(), "tmp")
    os.makedirs(d, exist_ok=True)
    if ckpt is None:
        tune.report({"v": 1}, checkpoint=tune.Checkpoint.from_directory(d))
    if not os.path.exists(config["marker"]):
        open(config["marker"], "w").close()
        raise RuntimeError("first attempt fails")
    tune.report({"v": 2})


# -- CSV / JSON ---------------------------------------------------------------------------
def _fake_trial(path, trial_id="t_00000"):
    return Trial(trial_id=trial_id, trainable_name="f", config={"x": 1, "o": {"p": [1, 2]}},
                 local_path=str(path))


RESULTS = [
    {"score": 1.5, "nested": {"a": 1}, "lst": [1, 2], "training_iteration": 1,
     "config": {"x": 1, "o": {"p": [1, 2]}}, "done": False},
    {"score": 2.5, "nested": {"a": 2}, "lst": [3], "training_iteration": 2, "late_key": 7,
     "config": {"x": 1, "o": {"p": [1, 2]}}, "done": True},
]


@pytest.mark.parametrize("cls,name", [(CSVLoggerCallback, "progress.csv"),
                                      (JsonLoggerCallback, "result.json")])
def test_csv_and_json_callbacks_write_byte_for_byte_what_the_engine_writes(tmp_path, cls, name):
    engine_dir, cb_dir = tmp_path / "engine", tmp_path / "cb"
    engine_dir.mkdir()
    writer = TrialLogWriter(str(engine_dir))
    for r in RESULTS:
        writer.write(r)
    writer.close()
    cb, trial = cls(), _fake_trial(cb_dir)
    cb.on_trial_start(0, [trial], trial)
    for r in RESULTS:
        cb.on_trial_result(0, [trial], trial, r)
        assert os.path.getsize(cb_dir / name) > 0  # flushed with every result
    assert cb.open_files == 1
    cb.on_trial_complete(0, [trial], trial)
    assert cb.open_files == 0
    assert (cb_dir / name).read_bytes() == (engine_dir / name).read_bytes()
    other = "result.json" if name == "progress.csv" else "progress.csv"
    assert not (cb_dir / other).exists()


def test_csv_callback_continues_an_existing_file_with_its_header(tmp_path):
    cb, trial = CSVLoggerCallback(), _fake_trial(tmp_path)
    cb.on_trial_result(0, [trial], trial, RESULTS[0])
    cb.on_trial_error(0, [trial], trial)  # closed; a retry reopens and appends
    cb.on_trial_result(0, [trial], trial, RESULTS[1])
    cb.on_experiment_end([trial])
    lines = (tmp_path / "progress.csv").read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("score,nested/a,lst,training_iteration")
    assert "late_key" not in lines[0]


def _strip(rows):
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in rows]


def test_csv_and_json_callbacks_replace_the_engines_writers_end_to_end(tmp_path):
    plain = _fit(tmp_path, "plain", [])
    logged = _fit(tmp_path, "logged", [CSVLoggerCallback(), JsonLoggerCallback()])
    import pandas as pd

    for a, b in zip(sorted(plain, key=lambda r: r.config["x"]),
                    sorted(logged, key=lambda r: r.config["x"])):
        ja = [json.loads(x) for x in open(os.path.join(a.path, "result.json"))]
        jb = [json.loads(x) for x in open(os.path.join(b.path, "result.json"))]
        assert len(jb) == 4 and _strip(ja) == _strip(jb)  # written once, not twice
        ca, cb = (pd.read_csv(os.path.join(r.path, "progress.csv")) for r in (a, b))
        assert list(ca.columns) == list(cb.columns) and len(cb) == 4
        cols = [c for c in ca.columns if c not in VOLATILE]
        assert ca[cols].equals(cb[cols])


# -- TensorBoard --------------------------------------------------------------------------
tbx = pytest.importorskip("tensorboardX")


def read_events(path):
    """Parse a TFRecord event file (length, crc, payload, crc) with tensorboardX's protos."""
    from tensorboardX.proto import event_pb2

    data, i, events = open(path, "rb").read(), 0, []
    while i < len(data):
        (length,) = struct.unpack("<Q", data[i:i + 8])
        payload = data[i + 12:i + 12 + length]
        i += 12 + length + 4
        ev = event_pb2.Event()
        ev.ParseFromString(payload)
        events.append(ev)
    return events


def _scalars(events):
    out = {}
    for ev in events:
        for v in ev.summary.value:
            if v.HasField("simple_value"):
                out.setdefault(v.tag, []).append((ev.step, v.simple_value))
    return out


def _hparams(events):
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData

    for ev in events:
        for v in ev.summary.value:
            if v.tag == "_hparams_/session_start_info":
                data = HParamsPluginData()
                data.ParseFromString(v.metadata.plugin_data.content)
                return {k: getattr(h, h.WhichOneof("kind"))
                        for k, h in data.session_start_info.hparams.items()}
    return None


def test_tbx_scalars_histograms_and_hparams_per_trial(tmp_path):
    from poptune.logger import TBXLoggerCallback

    cb = TBXLoggerCallback()
    grid = _fit(tmp_path, "tbx", [cb], {"x": tune.grid_search([1, 2]), "opt": {"lr": 0.1},
                                        "layers": [8, 8], "act": "relu"})
    assert cb._writers == {} and cb._last == {}  # every writer closed at trial end
    for result in grid:
        files = glob.glob(os.path.join(result.path, "events.out.tfevents.*"))
        assert len(files) == 1
        events = read_events(files[0])
        scalars = _scalars(events)
        x = result.config["x"]
        assert scalars["ray/tune/score"] == [(i + 1, float(x * (i + 1))) for i in range(4)]
        assert [v for _, v in scalars["ray/tune/nested/a"]] == [0.0, 1.0, 2.0, 3.0]
        assert "ray/tune/nan" not in scalars and "ray/tune/name" not in scalars
        assert "ray/tune/training_iteration" not in scalars  # the step already says it
        assert "ray/tune/config/x" not in scalars
        histos = {v.tag for ev in events for v in ev.summary.value if v.HasField("histo")}
        assert histos == {"ray/tune/hist"}
        assert _hparams(events) == {"x": float(x)}  # the sampled values only, as in Ray


def test_tbx_writers_stay_bounded_by_the_running_trials(tmp_path):
    from poptune.logger import TBXLoggerCallback

    class Watch(TBXLoggerCallback):
        peak = 0

        def log_trial_start(self, trial):
            super().log_trial_start(trial)
            Watch.peak = max(Watch.peak, len(self._writers))

    cb = Watch()
    _fit(tmp_path, "many", [cb], {"x": tune.grid_search(list(range(8)))},
         max_concurrent_trials=2)
    assert cb._writers == {} and 1 <= Watch.peak <= 2
    assert len(glob.glob(str(tmp_path / "many" / "*" / "events.out.tfevents.*"))) == 8


def test_tbx_skips_hparams_until_a_retried_trial_is_done(tmp_path):
    from poptune.logger import TBXLoggerCallback

    cb, trial = TBXLoggerCallback(), _fake_trial(tmp_path)
    trial.evaluated_params = {"x": 1, "o/p": [1, 2]}  # what was sampled
    trial.status = TrialStatus.PENDING  # failed, about to be retried
    cb.on_trial_result(0, [trial], trial, {"score": 1, "training_iteration": 1})
    cb.on_trial_error(0, [trial], trial)
    trial.status = TrialStatus.TERMINATED
    cb.on_trial_start(0, [trial], trial)
    cb.on_trial_result(0, [trial], trial, {"score": 2, "training_iteration": 2})
    cb.on_trial_complete(0, [trial], trial)
    events = [e for f in sorted(glob.glob(str(tmp_path / "events.out.tfevents.*")))
              for e in read_events(f)]
    starts = [v for ev in events for v in ev.summary.value
              if v.tag == "_hparams_/session_start_info"]
    assert len(starts) == 1 and _hparams(events) == {"x": 1.0, "o/p": "[1, 2]"}
    assert _scalars(events)["ray/tune/score"] == [(1, 1.0), (2, 2.0)]


@pytest.mark.parametrize("env, given, files", [("1", False, 1), ("1", True, 1), ("0", False, 0)],
                         ids=["env", "env-and-callback", "off"])
def test_poptune_tensorboard_adds_the_tbx_logger_once(tmp_path, monkeypatch, env, given, files):
    """``POPTUNE_TENSORBOARD=1`` writes event files without changing the script (Ray's
    default); a ``TBXLoggerCallback`` the script passes is not doubled."""
    from poptune.logger import TBXLoggerCallback

    monkeypatch.setenv("POPTUNE_TENSORBOARD", env)
    grid = _fit(tmp_path, "env", [TBXLoggerCallback()] if given else None, {"x": 1})
    events = glob.glob(os.path.join(grid[0].path, "events.out.tfevents.*"))
    assert len(events) == files
    if files:
        assert [v for _, v in _scalars(read_events(events[0]))["ray/tune/score"]] == [1, 2, 3, 4]


def test_event_records_match_tensorboardxs_own_writer(tmp_path):
    """The callback writes its records itself (``SummaryWriter`` costs a thread and a queue
    per trial): histograms, images and scalars are the records ``SummaryWriter`` writes."""
    import numpy as np
    from tensorboardX import SummaryWriter

    from poptune.logger.tensorboardx import TBXLoggerCallback

    values = np.random.RandomState(0).randn(100)
    image, images = np.random.RandomState(1).rand(3, 8, 8), np.random.RandomState(2).rand(2, 3, 8, 8)
    ref = SummaryWriter(str(tmp_path / "ref"))
    ref.add_scalar("ray/tune/loss", 0.25, 3)
    ref.add_histogram("ray/tune/h", values, 3)
    ref.add_image("ray/tune/i", image, 3)
    ref.add_images("ray/tune/j", images, 3)
    ref.close()
    cb, trial = TBXLoggerCallback(), _fake_trial(tmp_path / "ours")
    cb.on_trial_result(0, [trial], trial, {"loss": 0.25, "h": values, "i": image, "j": images,
                                           "training_iteration": 3})
    cb.on_experiment_end([trial])

    def records(directory):
        (path,) = glob.glob(os.path.join(directory, "events.out.tfevents.*"))
        return sorted((ev.step, v.SerializeToString()) for ev in read_events(path)
                      for v in ev.summary.value)

    assert records(tmp_path / "ours") == records(tmp_path / "ref")
