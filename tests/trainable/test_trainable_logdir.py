"""A Trainable made outside a trial (a user calling ``train()``/``save()`` directly) leaves
no directory behind unless it reads ``logdir``."""

from __future__ import annotations

import os
import tempfile

import poptune as tune


class _Counter(tune.Trainable):
    def step(self):
        return {"n": self.iteration}

    def save_checkpoint(self, checkpoint_dir):
        return {"n": self.iteration}

    def load_checkpoint(self, checkpoint):
        pass


def _trainable_dirs() -> set[str]:
    return {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("trainable_")}


def test_a_trainable_outside_a_trial_makes_its_logdir_only_when_it_is_read():
    before = _trainable_dirs()
    t = _Counter({"lr": 0.1})
    assert t.train()["training_iteration"] == 1
    t.stop()
    assert _trainable_dirs() == before  # never read: nothing made

    t = _Counter({})
    logdir = t.logdir
    assert os.path.isdir(logdir) and os.path.basename(logdir).startswith("trainable_")
    assert t.logdir == logdir  # made once
    assert _trainable_dirs() == before | {os.path.basename(logdir)}
    os.rmdir(logdir)
