"""``ray.tune.suggest.bohb``: Ray 1.x's path of ``ray.tune.search.bohb`` (see
:mod:`poptune.suggest`)."""

from __future__ import annotations

from poptune.search.bohb import TuneBOHB

__all__ = ["TuneBOHB"]
