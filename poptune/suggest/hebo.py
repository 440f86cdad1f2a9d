"""``ray.tune.suggest.hebo``: Ray 1.x's path of ``ray.tune.search.hebo`` (see
:mod:`poptune.suggest`)."""

from __future__ import annotations

from poptune.search.hebo import HEBOSearch

__all__ = ["HEBOSearch"]
