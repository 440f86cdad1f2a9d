"""``poptune.session`` as Ray Tune 2.60's session: the automatic result keys (step counts,
reported times and iterations), ``get_checkpoint`` after a report, a moved checkpoint's source
left in place, ``get_storage``, the getters outside a trial and what ``report`` rejects."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import warnings

import pytest

import poptune as tune
from poptune import session
from poptune.session import StorageContext, TuneContext, _Session


def _session(tmp_path, **kw):
    sent: list[dict] = []
    ctx = TuneContext("t1", "t_1", str(tmp_path / "t_1"), "exp", str(tmp_path))
    os.makedirs(ctx.trial_dir, exist_ok=True)
    return _Session(ctx, sent.append, None, **kw), sent


def _run(trainable, tmp_path, name, **run):
    return tune.Tuner(trainable, run_config=tune.RunConfig(
        name=name, storage_path=str(tmp_path), verbose=0, **run)).fit()


# -- item 1: Ray's Trainable.train() keys ---------------------------------------------------
def test_reported_steps_add_up_and_reported_keys_are_kept(tmp_path):
    sess, sent = _session(tmp_path)
    for i in range(2):
        sess.report({"timesteps_this_iter": 10, "episodes_this_iter": 2, "time_this_iter_s": 5.0,
                     "timestamp": 123, "training_iteration": 100 + i})
    last = sent[-1]
    assert (last["timesteps_total"], last["timesteps_since_restore"], last["episodes_total"]) == (
        20, 20, 4)
    assert (last["time_this_iter_s"], last["time_total_s"], last["time_since_restore"]) == (
        5.0, 10.0, 10.0)
    assert (last["training_iteration"], last["timestamp"]) == (101, 123)
    assert sess.iteration == 2  # the session's own count goes on


def test_no_step_keys_unless_steps_are_reported(tmp_path):
    sess, sent = _session(tmp_path)
    sess.report({"a": 1})
    assert not {"timesteps_total", "episodes_total", "timesteps_since_restore"} & set(sent[0])
    assert sent[0]["training_iteration"] == 1
    sess.report({"episodes_this_iter": 1})
    sess.report({"a": 2})  # a total once counted stays in every result, as Ray's
    assert [r.get("episodes_total") for r in sent] == [None, 1, 1]
    assert "timesteps_total" not in sent[-1]
    assert "timesteps_since_restore" not in sent[-1]  # only when steps were counted


def test_a_restored_session_carries_the_totals_on(tmp_path):
    sess, sent = _session(tmp_path, start_iteration=3, time_total_offset=7.0,
                          timesteps_total=30, episodes_total=None)
    sess.report({"time_this_iter_s": 1.0})
    assert (sent[0]["timesteps_total"], sent[0]["time_total_s"]) == (30, 8.0)
    assert "timesteps_since_restore" not in sent[0]
    sess.report({"timesteps_this_iter": 5})
    assert (sent[1]["timesteps_total"], sent[1]["timesteps_since_restore"]) == (35, 5)
    assert sent[1]["training_iteration"] == 5


def steps_fn(config):
    for i in range(10):
        tune.report({"timesteps_this_iter": 10, "score": i})


def test_a_stop_on_timesteps_total_works(tmp_path):
    grid = _run(steps_fn, tmp_path, "stop", stop={"timesteps_total": 30})
    assert grid[0].error is None
    assert (grid[0].metrics["training_iteration"], grid[0].metrics["timesteps_total"]) == (3, 30)


def failing_once(config):
    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt:
        with open(os.path.join(ckpt.path, "i")) as f:
            start = int(f.read())
    for i in range(start, 5):
        d = tempfile.mkdtemp(dir=config["tmp"])
        with open(os.path.join(d, "i"), "w") as f:
            f.write(str(i + 1))
        tune.report({"timesteps_this_iter": 10, "episodes_this_iter": 1},
                    checkpoint=tune.Checkpoint.from_directory(d))
        os.rmdir(d)
        marker = os.path.join(config["tmp"], "failed")
        if i == 2 and not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("fails once, after its third checkpoint")


def test_the_totals_continue_after_a_restore_from_a_checkpoint(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    grid = tune.Tuner(failing_once, param_space={"tmp": str(scratch)}, run_config=tune.RunConfig(
        name="retry", storage_path=str(tmp_path), verbose=0,
        failure_config=tune.FailureConfig(max_failures=1))).fit()
    result = grid[0]
    assert result.error is None
    df = result.metrics_dataframe
    assert list(df["timesteps_total"]) == [10, 20, 30, 40, 50]
    assert list(df["episodes_total"]) == [1, 2, 3, 4, 5]
    assert list(df["timesteps_since_restore"]) == [10, 20, 30, 10, 20]


# -- item 2: get_checkpoint ---------------------------------------------------------------
def reports_checkpoints(config):
    seen = [tune.get_checkpoint()]
    d = tempfile.mkdtemp(dir=config["tmp"])
    tune.report({"i": 0}, checkpoint=tune.Checkpoint.from_directory(d))
    seen.append(tune.get_checkpoint())
    tune.report({"i": 1})
    seen.append(tune.get_checkpoint())
    trial_dir = tune.get_context().get_trial_dir()
    left = os.listdir(d)
    shutil.rmtree(d)  # Ray-doc style clean-up of the reported directory works
    tune.report({"seen": [None if c is None else os.path.relpath(c.path, trial_dir)
                          for c in seen], "source_left": left})


def test_get_checkpoint_is_the_last_reported_checkpoint(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    grid = tune.Tuner(reports_checkpoints, param_space={"tmp": str(scratch)},
                      run_config=tune.RunConfig(name="ck", storage_path=str(tmp_path),
                                                verbose=0)).fit()
    result = grid[0]
    assert result.error is None
    assert result.metrics["seen"] == [None, "checkpoint_000000", "checkpoint_000000"]
    # the moved source directory is left in place, empty
    assert result.metrics["source_left"] == []
    assert os.listdir(scratch) == []


def test_get_checkpoint_falls_back_to_the_restored_one(tmp_path):
    sent: list[dict] = []
    ctx = TuneContext("t1", "t_1", str(tmp_path / "t_1"), "exp", str(tmp_path))
    os.makedirs(ctx.trial_dir)
    sess = _Session(ctx, sent.append, str(tmp_path / "from"))
    assert sess.latest_checkpoint() == sess.restore_checkpoint
    src = tmp_path / "src"
    src.mkdir()
    sess.report({}, tune.Checkpoint.from_directory(str(src)))
    assert sess.latest_checkpoint().path == os.path.join(ctx.trial_dir, "checkpoint_000000")
    assert sess.restore_checkpoint.path == str(tmp_path / "from")  # still "started from"
    assert src.is_dir() and not os.listdir(src)


# -- item 5: tune.report inside a class Trainable ----------------------------------------------
class ReportsInStep(tune.Trainable):
    def setup(self, config):
        self.n = 0
        tune.report({"from_setup": 1})

    def step(self):
        self.n += 1
        tune.report({"from_report": self.n})  # e.g. a framework callback inside step
        return {"from_step": self.n, "trial": tune.get_context().get_trial_name(),
                "done": self.n >= 3}


def test_report_inside_a_class_trainable_warns_and_does_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("POPTUNE_BACKEND", "simulated")  # the trial's warning, in this process
    monkeypatch.setattr(session, "_warned_outside", set())
    with pytest.warns(UserWarning, match="`report` is meant to only be called inside"):
        grid = _run(ReportsInStep, tmp_path, "cls")
    df = grid[0].metrics_dataframe
    assert list(df["training_iteration"]) == [1, 2, 3]
    assert not {"from_report", "from_setup"} & set(df.columns)
    assert grid[0].metrics["trial"].startswith("ReportsInStep_")  # get_context() works there


# -- item 7: get_storage ------------------------------------------------------------------
def test_get_storage_has_rays_attribute_names_and_is_the_old_path():
    ctx = TuneContext("t1", "f_t1", "/r/exp/f_t1", "exp", "/r/exp")
    storage = ctx.get_storage()
    assert isinstance(storage, StorageContext)
    assert str(storage) == os.fspath(storage) == "/r/exp"
    assert os.path.join(storage, "x") == "/r/exp/x"
    assert (storage.storage_path, storage.experiment_dir_name, storage.trial_dir_name) == (
        "/r", "exp", "f_t1")
    assert (storage.experiment_fs_path, storage.trial_fs_path) == ("/r/exp", "/r/exp/f_t1")
    assert storage.trial_working_directory == "/r/exp/f_t1"
    assert storage.storage_filesystem.protocol == ("file", "local")
    remote = TuneContext("t1", "f_t1", "/tmp/stage/exp/f_t1", "exp", "/tmp/stage/exp",
                         storage_trial_dir="s3://bucket/runs/exp/f_t1").get_storage()
    assert (remote.storage_path, remote.trial_fs_path) == ("s3://bucket/runs",
                                                           "bucket/runs/exp/f_t1")


# -- item 9: rank getters outside a trial --------------------------------------------------
def test_rank_getters_outside_a_trial_return_rays_defaults(monkeypatch):
    monkeypatch.setattr(session, "_warned_outside", set())
    ctx = tune.get_context()
    with pytest.warns(UserWarning, match="meant to only be called inside"):
        got = (ctx.get_world_size(), ctx.get_world_rank(), ctx.get_local_rank(),
               ctx.get_local_world_size(), ctx.get_node_rank())
    assert got == (1, 0, 0, 0, 0)
    with pytest.warns(UserWarning):
        assert ctx.get_trial_id() is None


# -- item 10: what report rejects -----------------------------------------------------------
def test_report_without_metrics_raises_type_error_inside_a_trial(tmp_path, monkeypatch):
    sess, sent = _session(tmp_path)
    monkeypatch.setattr(session, "_session", sess)
    with pytest.raises(TypeError, match="`metrics` must be a dict"):
        tune.report()
    with pytest.raises(TypeError, match="got None"):
        tune.report(None)
    tune.report(loss=0.5)  # the legacy keyword form still works
    assert [r["loss"] for r in sent] == [0.5]


def test_report_outside_a_trial_accepts_anything_and_warns(monkeypatch):
    monkeypatch.setattr(session, "_warned_outside", set())
    with pytest.warns(UserWarning):
        tune.report()


def test_report_rejects_torch_tensors_as_ray(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    sess, sent = _session(tmp_path)
    monkeypatch.setattr(session, "_session", sess)
    with pytest.raises(ValueError, match="containg Torch tensors"):
        tune.report({"t": torch.tensor(1.0)})
    with pytest.raises(ValueError, match="containg Torch tensors"):
        tune.report({"nested": {"l": [1, torch.tensor(1.0)]}})
    tune.report({"t": torch.tensor(1.0).item()})
    assert sent[-1]["t"] == 1.0


def test_no_torch_check_unless_torch_is_imported(tmp_path, monkeypatch):
    sess, sent = _session(tmp_path)
    monkeypatch.setattr(session, "_session", sess)
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tune.report({"a": 1})
    assert "torch" not in sys.modules
