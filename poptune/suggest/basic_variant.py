"""``ray.tune.suggest.basic_variant``: Ray 1.x's path of ``ray.tune.search.basic_variant`` (see
:mod:`poptune.suggest`)."""

from __future__ import annotations

from poptune.search.basic_variant import BasicVariantGenerator

__all__ = ["BasicVariantGenerator"]
