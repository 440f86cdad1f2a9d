"""A class trainable's checkpoints are saved into a temporary directory first, then moved into
the trial dir; when the two are on different filesystems (``/tmp`` on tmpfs, results on disk)
the move is a copy, and the temporary directory must not stay behind, one per checkpoint."""

from __future__ import annotations

import errno
import os
import tempfile

import pytest

import poptune as tune


class _Saver(tune.Trainable):
    def setup(self, config):
        self.v = 0

    def step(self):
        self.v += 1
        return {"v": self.v, "done": self.v >= 3}

    def save_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "weights"), "w") as f:
            f.write(str(self.v))

    def load_checkpoint(self, checkpoint_dir):
        pass


def _leftovers() -> list[str]:
    return [n for n in os.listdir(tempfile.gettempdir()) if n.startswith("poptune_ckpt_")]


def test_checkpoints_copied_across_filesystems_leave_no_temporary_directory(tmp_path,
                                                                           monkeypatch):
    real_rename = os.rename

    def rename(src, dst, *args, **kwargs):  # as between tmpfs and a disk
        if os.path.basename(src).startswith("poptune_ckpt_"):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", rename)
    before = _leftovers()
    grid = tune.Tuner(
        _Saver,
        tune_config=tune.TuneConfig(num_samples=2, backend="simulated"),
        run_config=tune.RunConfig(
            verbose=0, storage_path=str(tmp_path), name="e",
            checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=1,
                                                    checkpoint_at_end=True)),
    ).fit()
    assert _leftovers() == before
    for result in grid:  # the copies are complete: checkpoints of iterations 1, 2 and 3
        assert result.error is None and result.metrics["v"] == 3
        names = sorted(n for n in os.listdir(result.path) if n.startswith("checkpoint_"))
        assert len(names) == 3, names
        with result.checkpoint.as_directory() as d, open(os.path.join(d, "weights")) as f:
            assert f.read() == "3"


class _Four(_Saver):
    def step(self):
        self.v += 1
        return {"v": self.v, "done": self.v >= 4}


def _checkpoints(result) -> list[str]:
    return sorted(n for n in os.listdir(result.path) if n.startswith("checkpoint_"))


@pytest.mark.parametrize("backend", ["simulated", None])
def test_a_class_trainable_is_checkpointed_at_the_end_by_default_under_a_tuner(tmp_path,
                                                                               backend):
    """Ray's Tuner turns an unset ``checkpoint_at_end`` on for class trainables;
    ``tune.run`` leaves it off."""
    grid = tune.Tuner(_Four, tune_config=tune.TuneConfig(backend=backend),
                      run_config=tune.RunConfig(verbose=0, storage_path=str(tmp_path),
                                                name="tuner")).fit()
    assert _checkpoints(grid[0]) == ["checkpoint_000000"]
    with grid[0].checkpoint.as_directory() as d, open(os.path.join(d, "weights")) as f:
        assert f.read() == "4"
    analysis = tune.run(_Four, storage_path=str(tmp_path), name="run", verbose=0)
    assert not [n for n in os.listdir(analysis.trials[0].local_path)
                if n.startswith("checkpoint_")]


    class Unsaved(tune.Trainable):  # cannot save: no checkpoint (Ray fails the trial here)
        def step(self):
            return {"done": True}

    grid = tune.Tuner(Unsaved, tune_config=tune.TuneConfig(backend=backend),
                      run_config=tune.RunConfig(verbose=0, storage_path=str(tmp_path),
                                                name="unsaved")).fit()
    assert grid.num_errors == 0 and grid[0].checkpoint is None


@pytest.mark.parametrize("backend", ["simulated", None])
def test_a_done_result_on_a_checkpoint_iteration_is_checkpointed_once(tmp_path, backend):
    """As Ray's ``should_checkpoint``: every ``checkpoint_frequency``-th iteration, the last
    (``done``) one included; with ``checkpoint_at_end`` too, still one checkpoint of it."""
    for at_end in (False, True):
        grid = tune.Tuner(_Four, tune_config=tune.TuneConfig(backend=backend),
                          run_config=tune.RunConfig(
                              verbose=0, storage_path=str(tmp_path), name=f"f{at_end}",
                              checkpoint_config=tune.CheckpointConfig(
                                  checkpoint_frequency=2, checkpoint_at_end=at_end))).fit()
        assert _checkpoints(grid[0]) == ["checkpoint_000000", "checkpoint_000001"], at_end
        with grid[0].checkpoint.as_directory() as d, open(os.path.join(d, "weights")) as f:
            assert f.read() == "4"
