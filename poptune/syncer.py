"""``ray.tune.syncer``: :class:`~poptune.SyncConfig`, at Ray's module path for scripts that import
from it.

Example:
    >>> from poptune.syncer import SyncConfig
    >>> from poptune.config import SyncConfig as same
    >>> SyncConfig is same
    True
"""

from __future__ import annotations

from poptune.config import SyncConfig

__all__ = ["SyncConfig"]
