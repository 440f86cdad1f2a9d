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


def __getattr__(name: str) -> object:
    # TuneBOHB and AxSearch are imported only when asked for
    # (``from poptune.search import TuneBOHB``); AxSearch lives in ``poptune.search.ax``.
    if name == "TuneBOHB":
        from poptune.search.bohb import TuneBOHB

        return TuneBOHB
    if name == "AxSearch":
        from poptune.search.ax import AxSearch

        return AxSearch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
