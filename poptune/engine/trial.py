"""Re-export: :class:`Trial` and :class:`TrialStatus` live in :mod:`poptune.experiment.trial`
(Ray's ``ray.tune.experiment.Trial``), below the deciders and the faces that read them."""

from poptune.experiment.trial import Trial, TrialStatus

__all__ = ["Trial", "TrialStatus"]
