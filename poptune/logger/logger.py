"""``ray.tune.logger.logger``: the base class and ``pretty_print``, at Ray's module path.

Example:
    >>> from poptune.logger.logger import LoggerCallback, pretty_print
    >>> print(pretty_print({"loss": 0.5}).strip())
    loss: 0.5
"""

from __future__ import annotations

from poptune.logger._base import LoggerCallback
from poptune.logger._pretty import pretty_print

__all__ = ["LoggerCallback", "pretty_print"]
