"""``ray.air.integrations.comet``: :mod:`poptune.integration.comet`'s ``CometLoggerCallback``.

Example:
    >>> from poptune.air.integrations.comet import CometLoggerCallback
    >>> from poptune.integration import comet
    >>> CometLoggerCallback is comet.CometLoggerCallback
    True
"""

from __future__ import annotations

from poptune.integration.comet import CometLoggerCallback

__all__ = ["CometLoggerCallback"]
