"""A trial's working directory, as in Ray 2.60: each trial runs in its own directory (its
trial directory in poptune), ``TUNE_ORIG_WORKING_DIR`` names the driver's, relative paths
resolve against it, and ``RAY_CHDIR_TO_TRIAL_DIR=0`` keeps the driver's directory."""

from __future__ import annotations

import os

import pytest

import poptune as tune


def _where() -> dict:
    with open("artifact.txt", "w") as f:  # a relative path
        f.write("x")
    return {"cwd": os.getcwd(), "trial_dir": tune.get_context().get_trial_dir(),
            "orig": os.environ.get("TUNE_ORIG_WORKING_DIR")}


def where_function(config):
    tune.report(_where())


class WhereClass(tune.Trainable):
    def setup(self, config):
        self.seen = _where()

    def step(self):
        return {**self.seen, "logdir": self.logdir, "done": True}


def _fit(trainable, tmp_path, **tune_config):
    grid = tune.Tuner(trainable, param_space={"i": tune.grid_search([0, 1])},
                      tune_config=tune.TuneConfig(**tune_config),
                      run_config=tune.RunConfig(storage_path=str(tmp_path / "results"),
                                                verbose=0)).fit()
    assert grid.num_errors == 0
    return [r.metrics for r in grid]


@pytest.mark.parametrize("trainable", [where_function, WhereClass])
def test_each_trial_runs_in_its_trial_directory_and_knows_the_drivers(tmp_path, monkeypatch,
                                                                      trainable):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAY_CHDIR_TO_TRIAL_DIR", raising=False)
    rows = _fit(trainable, tmp_path)
    assert len({m["cwd"] for m in rows}) == 2
    for m in rows:
        assert os.path.realpath(m["cwd"]) == os.path.realpath(m["trial_dir"])
        assert m.get("logdir", m["trial_dir"]) == m["trial_dir"]
        assert m["orig"] == str(tmp_path)
        assert os.path.exists(os.path.join(m["trial_dir"], "artifact.txt"))
    assert not (tmp_path / "artifact.txt").exists()


def test_ray_chdir_to_trial_dir_0_keeps_the_drivers_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAY_CHDIR_TO_TRIAL_DIR", "0")
    for m in _fit(where_function, tmp_path):
        assert m["cwd"] == str(tmp_path) and m["orig"] == str(tmp_path)
    assert (tmp_path / "artifact.txt").exists()


def test_the_deprecated_chdir_to_trial_dir_false_warns_and_keeps_the_drivers_directory(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAY_CHDIR_TO_TRIAL_DIR", raising=False)
    with pytest.warns(DeprecationWarning, match="RAY_CHDIR_TO_TRIAL_DIR"):
        rows = _fit(where_function, tmp_path, chdir_to_trial_dir=False)
    assert {m["cwd"] for m in rows} == {str(tmp_path)}
