"""``ray.air.result``: :class:`poptune.Result`.

Example:
    >>> from poptune.air.result import Result
    >>> import poptune as tune
    >>> Result is tune.Result
    True
"""

from __future__ import annotations

from poptune.results import Result

__all__ = ["Result"]
