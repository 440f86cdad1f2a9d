"""Syne Tune's API on poptune's engine.

Change ``syne_tune`` to ``poptune.syne_tune`` in the imports and keep the script::

    from poptune.syne_tune import StoppingCriterion, Tuner, Reporter
    from poptune.syne_tune.backend.python_backend import PythonBackend
    from poptune.syne_tune.config_space import loguniform, randint
    from poptune.syne_tune.experiments import load_experiment
    from poptune.syne_tune.optimizer.baselines import RandomSearch

See docs/syne_tune.md for what maps to what.
"""

from __future__ import annotations

from poptune.syne_tune.report import Reporter
from poptune.syne_tune.stopping_criterion import StoppingCriterion, TuningStatus
from poptune.syne_tune.tuner import Tuner

__all__ = ["Reporter", "StoppingCriterion", "Tuner", "TuningStatus"]
