"""``ray.tune.suggest.ax``: Ray 1.x's path of ``ray.tune.search.ax`` (see
:mod:`poptune.suggest`)."""

from __future__ import annotations

from poptune.search.ax import AxSearch

__all__ = ["AxSearch"]
