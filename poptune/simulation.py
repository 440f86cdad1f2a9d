"""Say how long a step takes, for trainables run on simulated time.

On the ``simulated`` backend (``TuneConfig(backend="simulated")``) trials run in the driver
process and time is simulated: a trial's step takes exactly the simulated seconds it declares
with :func:`advance` before it reports, and nothing else (its real computation is free). A
step that declares nothing takes the backend's ``step_time`` (1 simulated second by default).
Results reach the scheduler in simulated-time order, so a slow configuration really is slow.

On any other backend, and outside a trial, :func:`advance` does nothing: the same trainable
runs unchanged on real workers.

Example:
    >>> import poptune as tune
    >>> from poptune import simulation
    >>> def train(config):
    ...     for step in range(1, 4):
    ...         simulation.advance(config["seconds_per_step"])  # this step's simulated cost
    ...         tune.report({"loss": 1.0 / step})
    >>> simulation.advance(5.0)  # outside a simulated trial: nothing happens
    >>> simulation.is_simulated()
    False
"""

from __future__ import annotations

import math
import threading
from typing import Any

from poptune._validation import bad_type, bad_value

__all__ = ["advance", "is_simulated", "now"]

#: ``trial`` is set in the threads of the simulated backend's trials (an object with
#: ``advance(seconds)``)
_local = threading.local()


def advance(seconds: float) -> None:
    """Spend ``seconds`` of simulated time in the current trial (its next report comes that
    much later). Call it before ``tune.report``; several calls add up. A no-op outside a
    simulated trial.

    Raises:
        TuneConfigError: ``seconds`` is negative, NaN or infinite.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise bad_type("seconds", seconds, "a number of simulated seconds >= 0")
    if not (math.isfinite(seconds) and seconds >= 0):
        raise bad_value("seconds", seconds, "a finite number of simulated seconds >= 0")
    trial: Any = getattr(_local, "trial", None)
    if trial is not None:
        trial.advance(float(seconds))


def is_simulated() -> bool:
    """Whether the calling code runs as a trial of the simulated backend."""
    return getattr(_local, "trial", None) is not None


def now() -> float:
    """The experiment clock's monotonic reading (simulated seconds in a simulated trial)."""
    from poptune.clock import current

    return current().monotonic()
