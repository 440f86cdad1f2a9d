"""``ray.air.integrations.keras``: :mod:`poptune.integration.keras`'s
``ReportCheckpointCallback`` (built on first use, deriving from Keras's ``Callback``).

Example::

    from poptune.air.integrations.keras import ReportCheckpointCallback

    model.fit(x, y, epochs=3, callbacks=[ReportCheckpointCallback(metrics=["loss"])])
"""

from __future__ import annotations

from typing import Any

__all__ = ["ReportCheckpointCallback"]


def __getattr__(name: str) -> Any:
    if name != "ReportCheckpointCallback":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from poptune.integration import keras

    return keras.ReportCheckpointCallback


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
