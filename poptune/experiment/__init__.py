"""``ray.tune.experiment`` → ``poptune.experiment``: the :class:`Trial` record (for type hints
in scripts, e.g. a resource-allocation function's ``trial`` argument)."""

from poptune.engine.trial import Trial

__all__ = ["Trial"]
