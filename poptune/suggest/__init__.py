"""``ray.tune.suggest``: Ray 1.x's name of the search package (``ray.tune.search`` since Ray
2.0), so that tutorials of that time run after the import swap:
``from poptune.suggest.hyperopt import HyperOptSearch``.

Ray 2.0 kept the old path with a deprecation warning, and later releases removed it; poptune
keeps Ray 2.0's behaviour. It warns once per process (a ``FutureWarning``: use
``poptune.search``).

Example:
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     from poptune.suggest import ConcurrencyLimiter
    >>> from poptune.search import ConcurrencyLimiter as same
    >>> ConcurrencyLimiter is same
    True
"""

from __future__ import annotations

import warnings

from poptune.search import (
    BasicVariantGenerator, ConcurrencyLimiter, Repeater, SearchAlgorithm, SearchGenerator,
    Searcher, create_searcher, grid_search,
)

__all__ = ["BasicVariantGenerator", "ConcurrencyLimiter", "Repeater", "SearchAlgorithm",
           "SearchGenerator", "Searcher", "create_searcher", "grid_search"]

warnings.warn("`tune.suggest` has been renamed to `tune.search` (Ray 2.0); poptune keeps the old "
              "path working: import from `poptune.search` instead", FutureWarning, stacklevel=2)
