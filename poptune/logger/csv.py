"""``ray.tune.logger.csv``: :class:`~poptune.logger.CSVLoggerCallback`, at Ray's module path.

Example:
    >>> from poptune.logger.csv import CSVLoggerCallback
    >>> from poptune.logger import CSVLoggerCallback as same
    >>> CSVLoggerCallback is same
    True
"""

from __future__ import annotations

from poptune.logger._base import CSVLoggerCallback

__all__ = ["CSVLoggerCallback"]
