"""``ray.tune.suggest.search_generator``: Ray 1.x's path of ``ray.tune.search.search_generator``
(see :mod:`poptune.suggest`)."""

from __future__ import annotations

from poptune.search.search_generator import SearchGenerator

__all__ = ["SearchGenerator"]
