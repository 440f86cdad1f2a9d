"""``ray.tune.experiment`` → ``poptune.experiment``: the :class:`Trial` record (for type hints
in scripts, e.g. a resource-allocation function's ``trial`` argument)."""

from poptune.experiment.trial import Trial, TrialStatus

__all__ = ["Trial", "TrialStatus"]
