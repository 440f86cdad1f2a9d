"""``ray.tune.suggest.search``: Ray 1.x's path of ``ray.tune.search`` (see
:mod:`poptune.suggest`)."""

from __future__ import annotations

from poptune.search import SearchAlgorithm

__all__ = ["SearchAlgorithm"]
