"""``Trainable`` as Ray Tune 2.60's: ``log_result`` called per iteration in the worker, the
other public methods, ``train()``'s automatic keys outside Tune, ``save``/``restore``
checks, and checkpoint directories holding only what ``save_checkpoint`` wrote."""

from __future__ import annotations

import json
import os

import pytest

import poptune as tune
from poptune.trainable._trainable import CheckpointNotFoundError

_RAY_AUTO_KEYS = {"config", "date", "done", "hostname", "iterations_since_restore", "node_ip",
                  "pid", "time_since_restore", "time_this_iter_s", "time_total_s", "timestamp",
                  "training_iteration", "trial_id"}


class Logs(tune.Trainable):
    def setup(self, config):
        self.n = 0

    def step(self):
        self.n += 1
        return {"n": self.n, "done": self.n >= 2}

    def save_checkpoint(self, checkpoint_dir):
        return {"n": self.n}

    def load_checkpoint(self, checkpoint):
        self.n = checkpoint["n"]

    def log_result(self, result):
        with open(os.path.join(self.logdir, "logged.jsonl"), "a") as f:
            f.write(json.dumps({"keys": sorted(result), "pid": os.getpid(),
                                "it": result["training_iteration"],
                                "state_it": self.get_state()["iteration"]}) + "\n")


def test_log_result_is_called_once_per_iteration_in_the_worker(tmp_path):
    grid = tune.Tuner(Logs, run_config=tune.RunConfig(
        name="log", storage_path=str(tmp_path), verbose=0,
        checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=1))).fit()
    result = grid[0]
    assert result.error is None
    with open(os.path.join(result.path, "logged.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    assert [r["it"] for r in rows] == [1, 2]
    assert [r["state_it"] for r in rows] == [1, 2]
    assert {r["pid"] for r in rows} == {result.metrics["pid"]} != {os.getpid()}
    for r in rows:
        assert set(r["keys"]) >= _RAY_AUTO_KEYS | {"n"}
    # class results carry no checkpoint_dir_name (Ray's); the checkpoints are still known
    assert "checkpoint_dir_name" not in result.metrics
    assert "checkpoint_dir_name" not in result.metrics_dataframe.columns
    assert result.checkpoint is not None
    assert [os.path.basename(c.path) for c, _ in result.best_checkpoints] == [
        "checkpoint_000000", "checkpoint_000001"]
    assert not any("checkpoint_dir_name" in m for _, m in result.best_checkpoints)
    # only what save_checkpoint wrote (item 8: no .trainable_state.pkl under Tune)
    assert sorted(os.listdir(result.checkpoint.path)) == ["_dict_checkpoint.pkl"]


def test_a_restored_class_trial_goes_on_from_its_checkpoints_counters(tmp_path):
    class Resumes(Logs):
        def step(self):
            self.n += 1
            if self.n == 2 and not os.path.exists(self.config["marker"]):
                open(self.config["marker"], "w").close()
                raise RuntimeError("fails once")
            return {"n": self.n, "timesteps_this_iter": 5, "done": self.n >= 3}

    grid = tune.Tuner(Resumes, param_space={"marker": str(tmp_path / "failed")},
                      run_config=tune.RunConfig(
                          name="resume", storage_path=str(tmp_path), verbose=0,
                          failure_config=tune.FailureConfig(max_failures=1),
                          checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=1))).fit()
    result = grid[0]
    assert result.error is None
    df = result.metrics_dataframe
    assert list(df["n"]) == [1, 2, 3]
    assert list(df["training_iteration"]) == [1, 2, 3]
    assert list(df["timesteps_total"]) == [5, 10, 15]
    assert list(df["iterations_since_restore"]) == [1, 1, 2]


class Plain(tune.Trainable):
    def setup(self, config):
        self.x = config.get("x", 0)

    def step(self):
        self.x += 1
        return {"x": self.x}

    def save_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "x"), "w") as f:
            f.write(str(self.x))

    def load_checkpoint(self, checkpoint):
        with open(os.path.join(checkpoint, "x")) as f:
            self.x = int(f.read())


def test_train_outside_tune_returns_rays_automatic_keys():
    t = Plain({"x": 5})
    result = t.train()
    assert set(result) == _RAY_AUTO_KEYS | {"x"}
    assert (result["trial_id"], result["config"], result["iterations_since_restore"]) == (
        "default", {"x": 5}, 1)
    assert t.get_state()["iteration"] == 1 and t.get_state()["last_result"] is result
    assert t.get_auto_filled_metrics(debug_metrics_only=True).keys() == {
        "trial_id", "date", "timestamp", "pid", "hostname", "node_ip", "config"}


def test_the_other_public_methods_of_rays_trainable():
    t = Plain({})
    assert t.export_model("h5", "/nonexistent") == {}
    assert tune.Trainable.resource_help({}) == ""
    assert t.is_actor() is False
    from poptune.backends._probe import driver_ip

    assert t.get_current_ip_pid() == (driver_ip(), os.getpid())  # Ray: the node's address
    assert [r["x"] for r in t.train_buffered(0.0)] == [1]
    assert [r["x"] for r in t.train_buffered(60.0, max_buffer_length=3)] == [2, 3, 4]

    class Exports(Plain):
        def _export_model(self, export_formats, export_dir):
            return {f: os.path.join(export_dir, f) for f in export_formats}

    assert Exports({}).export_model(["a", "b"], "/d") == {"a": "/d/a", "b": "/d/b"}


def test_restore_takes_a_checkpoint_and_rejects_a_missing_one(tmp_path):
    t = Plain({"x": 1})
    t.train()
    path = t.save(str(tmp_path / "c"))
    other = Plain({})
    other.restore(tune.Checkpoint.from_directory(path))
    assert (other.x, other.iteration) == (2, 1)  # a bare save() keeps the counters
    with pytest.raises(ValueError, match="does not exist on storage anymore") as err:
        Plain({}).restore(str(tmp_path / "missing"))
    assert isinstance(err.value, (CheckpointNotFoundError, FileNotFoundError))


def test_save_checkpoint_returning_another_path_is_an_error(tmp_path):
    class Elsewhere(Plain):
        def save_checkpoint(self, checkpoint_dir):
            return str(tmp_path)

    with pytest.raises(ValueError, match="must be None or the same as the provided path"):
        Elsewhere({}).save(str(tmp_path / "c"))

    class Same(Plain):
        def save_checkpoint(self, checkpoint_dir):
            super().save_checkpoint(checkpoint_dir)
            return checkpoint_dir

    assert Same({}).save(str(tmp_path / "d")) == str(tmp_path / "d")
