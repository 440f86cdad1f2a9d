"""Syne Tune's ``TunerCallback`` (and the ``Trial`` it is given), for callbacks passed to
:class:`poptune.syne_tune.Tuner`.

The tuner calls ``on_tuning_start(tuner)`` before the first trial, ``on_start_trial(trial)``
/ ``on_resume_trial(trial)``, ``on_trial_result(trial, status, result, decision)`` for each
result, ``on_trial_complete(trial, result)`` when a trial ran to its end (with its last
result), ``on_loop_start()`` / ``on_loop_end()`` around each engine tick and
``on_tuning_end()`` at the end. ``decision`` is always ``"CONTINUE"`` and ``status``
``"InProgress"`` (poptune's scheduler decides after the callbacks ran; the results table
records a STOP afterwards). ``on_fetch_status_results`` and ``on_tuning_sleep`` are never
called: poptune does not poll.

Example:
    >>> class Count(TunerCallback):
    ...     def __init__(self):
    ...         self.results = 0
    ...     def on_trial_result(self, trial, status, result, decision):
    ...         self.results += 1
    >>> Count().results
    0
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["StoreResultsCallback", "Trial", "TunerCallback"]


def __getattr__(name: str) -> Any:
    """``StoreResultsCallback`` lived here in the d2l era (now in
    :mod:`poptune.syne_tune.results_callback`)."""
    if name == "StoreResultsCallback":
        from poptune.syne_tune.results_callback import StoreResultsCallback

        return StoreResultsCallback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class Trial:
    """A trial as Syne Tune's callbacks see it: its id (0, 1, ...), config and start time."""

    trial_id: int
    config: dict[str, Any]
    creation_time: datetime


class TunerCallback:
    """Base class of Syne Tune tuner callbacks: override the hooks you need."""

    def on_tuning_start(self, tuner: Any) -> None:
        """Before the first trial starts."""

    def on_tuning_end(self) -> None:
        """After tuning ended (the results are written)."""

    def on_loop_start(self) -> None:
        """At the start of each engine tick."""

    def on_loop_end(self) -> None:
        """At the end of each engine tick."""

    def on_fetch_status_results(self, trial_status_dict: Any, new_results: Any) -> None:
        """Never called by poptune (it does not poll)."""

    def on_trial_complete(self, trial: Trial, result: dict[str, Any]) -> None:
        """A trial ran to its end; ``result`` is its last result."""

    def on_trial_result(self, trial: Trial, status: str, result: dict[str, Any],
                        decision: str) -> None:
        """A trial reported ``result``."""

    def on_tuning_sleep(self, sleep_time: float) -> None:
        """Never called by poptune (it does not sleep)."""

    def on_start_trial(self, trial: Trial) -> None:
        """A new trial started."""

    def on_resume_trial(self, trial: Trial) -> None:
        """A trial resumed (or restarted from a checkpoint with a new config, PBT)."""


#: the hooks that make an object a Syne Tune callback rather than a poptune one
SYNE_HOOKS = ("on_tuning_start", "on_tuning_end", "on_loop_start", "on_loop_end",
              "on_start_trial")


def is_syne_callback(obj: Any) -> bool:
    """A ``TunerCallback`` (or an object with Syne Tune's hooks and not poptune's)."""
    from poptune.callbacks import Callback

    return isinstance(obj, TunerCallback) or (
        not isinstance(obj, Callback) and any(callable(getattr(obj, h, None))
                                              for h in SYNE_HOOKS))
