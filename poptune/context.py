"""``ray.tune.context``: ``TuneContext`` and ``get_context``, at Ray's module path for scripts
that import from it.

Example:
    >>> from poptune.context import TuneContext
    >>> from poptune.session import TuneContext as same
    >>> TuneContext is same
    True
"""

from __future__ import annotations

from poptune.session import TuneContext, get_context

__all__ = ["TuneContext", "get_context"]
