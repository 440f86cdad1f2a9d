"""Search spaces and search algorithms (``ray.tune.search`` counterpart).

Example:
    >>> from poptune.search import BasicVariantGenerator, grid_search, loguniform
    >>> gen = BasicVariantGenerator(random_state=0)
    >>> gen.setup_experiment({"lr": loguniform(1e-4, 1e-1), "bs": grid_search([32, 64])}, 3, None)
    >>> gen.total_samples
    6
"""

from __future__ import annotations

from poptune.search._base import SearchAlgorithm, Searcher, TrialSuggestion
from poptune.search.basic_variant import BasicVariantGenerator
from poptune.search.concurrency_limiter import ConcurrencyLimiter
from poptune.search.repeater import TRIAL_INDEX, Repeater
from poptune.search.sample import (
    Categorical,
    Domain,
    Float,
    Function,
    Integer,
    choice,
    grid_search,
    lograndint,
    loguniform,
    qlograndint,
    qloguniform,
    qrandint,
    qrandn,
    quniform,
    randint,
    randn,
    sample_from,
    uniform,
)
from poptune.search.search_generator import SearchGenerator
from poptune.search.variant_generator import (
    flatten_dict,
    format_vars,
    generate_variants,
    unflatten_dict,
)

__all__ = [
    "TRIAL_INDEX", "BasicVariantGenerator", "Categorical", "ConcurrencyLimiter", "Domain", "Float",
    "Function", "Integer", "Repeater", "SearchAlgorithm", "SearchGenerator", "Searcher",
    "TrialSuggestion", "choice", "flatten_dict", "format_vars", "generate_variants", "grid_search",
    "lograndint", "loguniform", "qlograndint", "qloguniform", "qrandint", "qrandn", "quniform",
    "randint", "randn", "sample_from", "unflatten_dict", "uniform",
]  # fmt: skip


#: adapters imported only when asked for (``poptune.search.OptunaSearch``), each needing its
#: library; they also live in their own modules, as in Ray (``poptune.search.optuna``).
_ADAPTERS = {
    "OptunaSearch": "optuna", "HyperOptSearch": "hyperopt", "BayesOptSearch": "bayesopt",
    "NevergradSearch": "nevergrad", "TuneBOHB": "bohb", "AxSearch": "ax",
}


def __getattr__(name: str) -> object:
    module = _ADAPTERS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
