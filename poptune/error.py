"""``ray.tune.error``: :class:`~poptune.TuneError`, at Ray's module path for scripts that import
from it.

Example:
    >>> from poptune.error import TuneError
    >>> from poptune.exceptions import TuneError as same
    >>> TuneError is same
    True
"""

from __future__ import annotations

from poptune.exceptions import TuneError

__all__ = ["TuneError"]
