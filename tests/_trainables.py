"""Trainables shared by several test modules (module level: the worker processes and agents
import them, as they would a user's module)."""

from __future__ import annotations

import os
import sys

import poptune as tune


class PrintingTrainable(tune.Trainable):
    """Prints ``IN-SETUP`` to stdout in ``setup`` and ``IN-STEP`` to stderr in its one step,
    which reports the process id (``pid``): the lines a relay must prefix with the class's
    name."""

    def setup(self, config):
        print("IN-SETUP")

    def step(self):
        print("IN-STEP", file=sys.stderr)
        return {"pid": os.getpid(), "done": True}
