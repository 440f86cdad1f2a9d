"""``ray.tune.suggest.repeater``: Ray 1.x's path of ``ray.tune.search.repeater`` (see
:mod:`poptune.suggest`)."""

from __future__ import annotations

from poptune.search.repeater import Repeater

__all__ = ["Repeater"]
