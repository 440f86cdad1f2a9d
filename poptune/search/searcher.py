"""``ray.tune.search.searcher``: the searcher base class (and ``ConcurrencyLimiter``, which Ray
keeps there too), at Ray's module path for scripts that import from it.

Example:
    >>> from poptune.search.searcher import ConcurrencyLimiter
    >>> from poptune.search import ConcurrencyLimiter as same
    >>> ConcurrencyLimiter is same
    True
"""

from __future__ import annotations

from poptune.search import ConcurrencyLimiter, Searcher

__all__ = ["ConcurrencyLimiter", "Searcher"]
