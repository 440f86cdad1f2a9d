"""``ray.tune.search.search_algorithm``: ``SearchAlgorithm``, at Ray's module path for scripts
that import from it.

Example:
    >>> from poptune.search.search_algorithm import SearchAlgorithm
    >>> from poptune.search import SearchAlgorithm as same
    >>> SearchAlgorithm is same
    True
"""

from __future__ import annotations

from poptune.search import SearchAlgorithm

__all__ = ["SearchAlgorithm"]
