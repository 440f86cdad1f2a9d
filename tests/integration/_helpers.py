"""What the framework-callback tests share: a trial's ``result.json`` rows, and a stand-in for
``poptune.session.report`` that records what a callback reported outside a trial."""

from __future__ import annotations

import json
import os


def result_rows(trial_dir):
    """The rows of a trial's ``result.json``."""
    with open(os.path.join(trial_dir, "result.json")) as f:
        return [json.loads(line) for line in f]


class FakeReport:
    """Replaces ``poptune.session.report`` for one test; ``calls`` holds (metrics, sorted file
    names of the checkpoint directory or None) per report."""

    def __init__(self, monkeypatch):
        self.calls = []
        import poptune.session as s

        monkeypatch.setattr(s, "report", self)

    def __call__(self, metrics=None, checkpoint=None):
        files = sorted(os.listdir(checkpoint.path)) if checkpoint else None
        self.calls.append((metrics, files))
