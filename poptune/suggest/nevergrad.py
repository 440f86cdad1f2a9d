"""``ray.tune.suggest.nevergrad``: Ray 1.x's path of ``ray.tune.search.nevergrad`` (see
:mod:`poptune.suggest`)."""

from __future__ import annotations

from poptune.search.nevergrad import NevergradSearch

__all__ = ["NevergradSearch"]
