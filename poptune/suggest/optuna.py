"""``ray.tune.suggest.optuna``: Ray 1.x's path of ``ray.tune.search.optuna`` (see
:mod:`poptune.suggest`)."""

from __future__ import annotations

from poptune.search.optuna import OptunaSearch

__all__ = ["OptunaSearch"]
