"""``poptune.callback``: the checkpoint hooks, with Ray's arguments."""

from __future__ import annotations

import os
import tempfile

import poptune as tune
from poptune.callback import Callback


def checkpointing(config):
    for step in range(3):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "step"), "w") as f:
                f.write(str(step))
            tune.report({"step": step}, checkpoint=tune.Checkpoint.from_directory(d))


class Saves(Callback):
    def __init__(self):
        self.seen = []

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        with checkpoint.as_directory() as d, open(os.path.join(d, "step")) as f:
            self.seen.append(("on_checkpoint", type(checkpoint).__name__, f.read()))

    def on_trial_save(self, iteration, trials, trial, **info):
        with open(os.path.join(trial.checkpoint.path, "step")) as f:
            self.seen.append(("on_trial_save", type(trial.checkpoint).__name__, f.read()))


def test_each_checkpoint_reaches_on_checkpoint_and_on_trial_save_as_a_checkpoint(tmp_path):
    saves = Saves()
    grid = tune.Tuner(checkpointing, run_config=tune.RunConfig(
        name="cb", storage_path=str(tmp_path), verbose=0, callbacks=[saves])).fit()
    assert grid.num_errors == 0
    assert saves.seen == [(hook, "Checkpoint", str(step)) for step in range(3)
                          for hook in ("on_checkpoint", "on_trial_save")]
