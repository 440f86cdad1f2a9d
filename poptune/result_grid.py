"""``ray.tune.result_grid``: :class:`~poptune.ResultGrid`, at Ray's module path for scripts that
import from it.

Example:
    >>> from poptune.result_grid import ResultGrid
    >>> from poptune.results import ResultGrid as same
    >>> ResultGrid is same
    True
"""

from __future__ import annotations

from poptune.results import ResultGrid

__all__ = ["ResultGrid"]
