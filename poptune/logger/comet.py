"""``ray.tune.logger.comet``: :mod:`poptune.integration.comet`'s ``CometLoggerCallback``
(also at ``poptune.air.integrations.comet``).

Example:
    >>> from poptune.logger.comet import CometLoggerCallback
    >>> from poptune.integration import comet
    >>> CometLoggerCallback is comet.CometLoggerCallback
    True
"""

from __future__ import annotations

from poptune.integration.comet import CometLoggerCallback

__all__ = ["CometLoggerCallback"]
