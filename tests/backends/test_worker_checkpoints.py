"""A class trainable's checkpoints are saved into a temporary directory first, then moved into
the trial dir; when the two are on different filesystems (``/tmp`` on tmpfs, results on disk)
the move is a copy, and the temporary directory must not stay behind, one per checkpoint."""

from __future__ import annotations

import errno
import os
import tempfile

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
