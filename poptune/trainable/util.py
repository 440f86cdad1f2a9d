"""``ray.tune.trainable.util``: ``with_parameters`` and ``with_resources``, at Ray's module path
for scripts that import from it.

Example:
    >>> from poptune.trainable.util import with_parameters
    >>> from poptune.trainable import with_parameters as same
    >>> with_parameters is same
    True
"""

from __future__ import annotations

from poptune.trainable import with_parameters, with_resources

__all__ = ["with_parameters", "with_resources"]
