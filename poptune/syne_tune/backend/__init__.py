"""Syne Tune's trial backends on poptune's engine: :class:`PythonBackend` (a function) and
:class:`LocalBackend` (any training script)."""

from __future__ import annotations

from typing import Any

from poptune.syne_tune.backend._python import PythonBackend, TrialBackend

__all__ = ["LocalBackend", "PythonBackend", "TrialBackend"]


def __getattr__(name: str) -> Any:
    if name == "LocalBackend":
        from poptune.syne_tune.backend._local import LocalBackend

        return LocalBackend
    raise AttributeError(name)
