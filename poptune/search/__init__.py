"""Search spaces and search algorithms (``ray.tune.search`` counterpart).

Example:
    >>> from poptune.search import BasicVariantGenerator, grid_search, loguniform
    >>> gen = BasicVariantGenerator(random_state=0)
    >>> gen.setup_experiment({"lr": loguniform(1e-4, 1e-1), "bs": grid_search([32, 64])}, 3, None)
    >>> gen.total_samples
    6
"""

from __future__ import annotations

from typing import Any

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
    "UNRESOLVED_SEARCH_SPACE", "UNDEFINED_SEARCH_SPACE", "UNDEFINED_METRIC_MODE",
    "SEARCH_ALG_IMPORT", "create_searcher",
]  # fmt: skip


#: Ray's message templates, for searchers that check their arguments the way Ray's do
UNRESOLVED_SEARCH_SPACE = (
    "You passed a `{par}` parameter to {cls} that contained unresolved search space "
    "definitions. {cls} should however be instantiated with fully configured search spaces "
    "only. To have the search space converted for you, pass it as the `param_space` argument "
    "of `tune.Tuner()` instead."
)
UNDEFINED_SEARCH_SPACE = (
    "Trying to sample a configuration from {cls}, but no search space has been defined. "
    "Either pass the `{space}` argument when instantiating the search algorithm, or pass a "
    "`param_space` to `tune.Tuner()`."
)
UNDEFINED_METRIC_MODE = (
    "Trying to sample a configuration from {cls}, but the `metric` ({metric}) or `mode` "
    "({mode}) parameters have not been set. Either pass these arguments when instantiating "
    "the search algorithm, or pass them to `tune.TuneConfig()`."
)

#: ``create_searcher`` names (Ray's) -> class name
SEARCH_ALG_IMPORT: dict[str, str] = {
    "variant_generator": "BasicVariantGenerator", "random": "BasicVariantGenerator",
    "ax": "AxSearch", "hyperopt": "HyperOptSearch", "bayesopt": "BayesOptSearch",
    "bohb": "TuneBOHB", "nevergrad": "NevergradSearch", "optuna": "OptunaSearch",
    "zoopt": "ZOOptSearch", "hebo": "HEBOSearch",
}


def create_searcher(search_alg: str, **kwargs: Any) -> Any:
    """A search algorithm by name, as Ray Tune's ``tune.create_searcher``.

    ``kwargs`` (e.g. ``metric``, ``mode``) are passed to the class's constructor, keeping only
    the ones it accepts, as Ray does.

    Example:
        >>> create_searcher("random").__class__.__name__
        'BasicVariantGenerator'

    Raises:
        TuneConfigError (a ``ValueError``): an unknown name.
    """
    from poptune._validation import bad_value
    from poptune.registry import construct_accepting

    name = search_alg.lower() if isinstance(search_alg, str) else search_alg
    if name not in SEARCH_ALG_IMPORT:
        raise bad_value("search_alg", search_alg,
                        "one of " + ", ".join(repr(k) for k in SEARCH_ALG_IMPORT))
    cls_name = SEARCH_ALG_IMPORT[name]
    cls = globals().get(cls_name) or __getattr__(cls_name)
    return construct_accepting(cls, kwargs)


#: adapters imported only when asked for (``poptune.search.OptunaSearch``), each needing its
#: library; they also live in their own modules, as in Ray (``poptune.search.optuna``).
_ADAPTERS = {
    "OptunaSearch": "optuna", "HyperOptSearch": "hyperopt", "BayesOptSearch": "bayesopt",
    "NevergradSearch": "nevergrad", "TuneBOHB": "bohb", "AxSearch": "ax",
    "ZOOptSearch": "zoopt", "HEBOSearch": "hebo",
}


def __getattr__(name: str) -> object:
    module = _ADAPTERS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
