"""A read-only view of a :class:`~poptune.engine.trial.Trial`, for the deciders.

Schedulers see trials through views: every attribute reads the live trial (its status,
config, last result, checkpoint), but setting one raises, so only the controller changes
trials. A view equals, and hashes like, the trial it shows.

Example:
    >>> from poptune.engine.trial import Trial
    >>> t = Trial(trial_id="a_00000", trainable_name="f", config={"lr": 0.1})
    >>> v = TrialView(t)
    >>> v.config["lr"], v == t, v.status.value
    (0.1, True, 'PENDING')
    >>> v.config = {}
    Traceback (most recent call last):
    ...
    AttributeError: trial f_a_00000 is read-only for schedulers: return a value (a config to fill in, a Decision, an Outcome) instead of setting `config`
"""

from __future__ import annotations

from typing import Any

from poptune.engine.trial import Trial


class TrialView:
    """Read-only access to one trial (see the module docstring)."""

    __slots__ = ("_trial",)

    def __init__(self, trial: Trial) -> None:
        object.__setattr__(self, "_trial", trial)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._trial, name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(
            f"trial {self._trial} is read-only for schedulers: return a value (a config to "
            f"fill in, a Decision, an Outcome) instead of setting `{name}`")

    def __delattr__(self, name: str) -> None:
        self.__setattr__(name, None)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance(view, Trial) holds, as schedulers expect
        return Trial

    def __eq__(self, other: object) -> bool:
        return getattr(other, "trial_id", None) == self._trial.trial_id and isinstance(
            other, Trial)

    def __hash__(self) -> int:
        return hash(self._trial.trial_id)

    def __str__(self) -> str:
        return str(self._trial)

    def __repr__(self) -> str:
        return repr(self._trial)

    def __reduce__(self) -> tuple[Any, ...]:  # a scheduler's saved state may hold views
        return (TrialView, (self._trial,))


def unwrap(trial: Any) -> Any:
    """The trial behind a view (a trial passes through)."""
    if type(trial) is TrialView:
        return object.__getattribute__(trial, "_trial")
    return trial
