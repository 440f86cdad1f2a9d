"""What the searchers' end-to-end tests share."""

from __future__ import annotations

from poptune.stopper import Stopper

#: while ``ENABLED[0]``, :class:`StopAfterResults` ends the experiment (tests set it False
#: before restoring, so that the restored run goes on)
ENABLED = [True]


class StopAfterResults(Stopper):
    """Ends the experiment after ``n`` results while ``ENABLED[0]`` (so a restore runs on)."""

    def __init__(self, n):
        self.n, self.seen = n, 0

    def __call__(self, trial_id, result):
        self.seen += 1
        return False

    def stop_all(self):
        return ENABLED[0] and self.seen >= self.n
