"""``ray.tune.logger.json``: :class:`~poptune.logger.JsonLoggerCallback`, at Ray's module path.

Example:
    >>> from poptune.logger.json import JsonLoggerCallback
    >>> from poptune.logger import JsonLoggerCallback as same
    >>> JsonLoggerCallback is same
    True
"""

from __future__ import annotations

from poptune.logger._base import JsonLoggerCallback

__all__ = ["JsonLoggerCallback"]
