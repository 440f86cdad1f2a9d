"""``ray.tune.tune_config``: ``TuneConfig`` and ``ResumeConfig``, at Ray's module path for scripts
that import from it.

Example:
    >>> from poptune.tune_config import ResumeConfig
    >>> from poptune.config import ResumeConfig as same
    >>> ResumeConfig is same
    True
"""

from __future__ import annotations

from poptune.config import ResumeConfig, TuneConfig

__all__ = ["ResumeConfig", "TuneConfig"]
