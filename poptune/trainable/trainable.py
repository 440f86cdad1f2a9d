"""``ray.tune.trainable.trainable``: :class:`~poptune.Trainable`, at Ray's module path for scripts
that import from it.

Example:
    >>> from poptune.trainable.trainable import Trainable
    >>> from poptune.trainable import Trainable as same
    >>> Trainable is same
    True
"""

from __future__ import annotations

from poptune.trainable import Trainable

__all__ = ["Trainable"]
