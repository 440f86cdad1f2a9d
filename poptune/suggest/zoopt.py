"""``ray.tune.suggest.zoopt``: Ray 1.x's path of ``ray.tune.search.zoopt`` (see
:mod:`poptune.suggest`)."""

from __future__ import annotations

from poptune.search.zoopt import ZOOptSearch

__all__ = ["ZOOptSearch"]
