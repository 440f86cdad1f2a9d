"""The legacy analysis API (``ray.tune.analysis`` → ``poptune.analysis``).

``tune.run`` returns an :class:`ExperimentAnalysis`; build one from any experiment directory
with ``ExperimentAnalysis(path)``.
"""

from poptune.analysis.experiment_analysis import AnalysisTrial, ExperimentAnalysis

__all__ = ["AnalysisTrial", "ExperimentAnalysis"]
