"""``ray.tune.suggest.variant_generator``: Ray 1.x's path of ``ray.tune.search.variant_generator``
(see :mod:`poptune.suggest`)."""

from __future__ import annotations

from poptune.search.variant_generator import generate_variants, grid_search

__all__ = ["generate_variants", "grid_search"]
