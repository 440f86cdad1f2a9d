"""``ray.tune.suggest.suggestion``: Ray 1.x's path of ``ray.tune.search`` (see
:mod:`poptune.suggest`)."""

from __future__ import annotations

from poptune.search import ConcurrencyLimiter, Searcher

__all__ = ["ConcurrencyLimiter", "Searcher"]
