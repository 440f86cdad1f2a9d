"""A worker that may run on another machine (Ray, Dask) checks that it sees the driver's
local experiment directory before its trial writes checkpoints there: a probe found that with
an unshared local ``storage_path`` the checkpoints went to the workers' own disks, silently
(``result.checkpoint`` None; under PBT, ``FileNotFoundError`` in user code). Real worker
processes of the local backend stand in for remote ones here (``runs_elsewhere``)."""

from __future__ import annotations

import os
import tempfile

import pytest

import poptune as tune
from poptune.storage.dirs import STORAGE_MARKER
from poptune.backends.local import LocalBackend
from poptune.engine.runner import Runner


def _checkpointing(config):
    d = tempfile.mkdtemp(dir=config["scratch"])
    with open(os.path.join(d, "w"), "w") as f:
        f.write("1")
    tune.report({"score": 1}, checkpoint=tune.Checkpoint.from_directory(d))


def _fit(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    return tune.Tuner(_checkpointing, param_space={"scratch": str(scratch), "i": tune.grid_search([1, 2])},
                      tune_config=tune.TuneConfig(backend="local"),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), name="e",
                                                verbose=0)).fit()


def test_a_worker_that_shares_the_experiment_directory_runs_as_usual(tmp_path, monkeypatch):
    monkeypatch.setattr(LocalBackend, "runs_elsewhere", True)
    grid = _fit(tmp_path)
    assert grid.num_errors == 0 and all(r.checkpoint is not None for r in grid)
    assert not (tmp_path / "e" / STORAGE_MARKER).exists()  # removed when the run ends


@pytest.mark.parametrize("unshared", ["missing", "another run's"])
def test_a_worker_that_does_not_see_the_experiment_directory_fails_its_trials_saying_why(
        tmp_path, monkeypatch, unshared):
    monkeypatch.setattr(LocalBackend, "runs_elsewhere", True)
    real = Runner._write_storage_marker

    def seen_elsewhere(self):
        exp_dir, token = real(self)
        if unshared == "missing":  # the worker's machine has no such directory
            return str(tmp_path / "not-on-this-node"), token
        return exp_dir, "0" * 16  # a directory of the same name left by another run

    monkeypatch.setattr(Runner, "_write_storage_marker", seen_elsewhere)
    grid = tune.Tuner(_checkpointing,
                      param_space={"scratch": str(tmp_path), "i": tune.grid_search([1, 2])},
                      tune_config=tune.TuneConfig(backend="local"),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), name="e",
                                                verbose=0)).fit()
    assert grid.num_errors == 2
    for r in grid:
        text = str(r.error)
        assert "does not see the experiment directory" in text and "s3://" in text
        assert not [n for n in os.listdir(r.path) if n.startswith("checkpoint_")]
