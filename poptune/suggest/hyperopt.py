"""``ray.tune.suggest.hyperopt``: Ray 1.x's path of ``ray.tune.search.hyperopt`` (see
:mod:`poptune.suggest`)."""

from __future__ import annotations

from poptune.search.hyperopt import HyperOptSearch

__all__ = ["HyperOptSearch"]
