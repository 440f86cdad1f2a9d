"""``ray.tune.suggest.bayesopt``: Ray 1.x's path of ``ray.tune.search.bayesopt`` (see
:mod:`poptune.suggest`)."""

from __future__ import annotations

from poptune.search.bayesopt import BayesOptSearch

__all__ = ["BayesOptSearch"]
