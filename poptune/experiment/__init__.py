"""``ray.tune.experiment`` → ``poptune.experiment``: the :class:`Trial` record (for type hints
in scripts, e.g. a resource-allocation function's ``trial`` argument) and the legacy
:class:`Experiment` specification (imported on first use)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from poptune.experiment.trial import Trial, TrialStatus

if TYPE_CHECKING:
    from poptune.experiment.experiment import Experiment

__all__ = ["Experiment", "Trial", "TrialStatus"]


def __getattr__(name: str) -> Any:
    if name == "Experiment":
        from poptune.experiment.experiment import Experiment

        return Experiment
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
