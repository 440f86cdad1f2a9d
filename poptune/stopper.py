"""Stoppers decide when a trial (or the whole experiment) stops.

``RunConfig(stop=...)`` accepts a dict (stop when ``result[key] >= value`` for any key), a
function ``(trial_id, result) -> bool`` or a :class:`Stopper`.

Example:
    >>> s = as_stopper({"training_iteration": 3})
    >>> s("t1", {"training_iteration": 2}), s("t1", {"training_iteration": 3})
    (False, True)
"""

from __future__ import annotations

import abc
import time
from typing import Any, Callable, Mapping

from poptune._validation import bad_type, check_in_range
from poptune.exceptions import TuneError


def lookup(result: dict[str, Any], key: str) -> tuple[bool, Any]:
    """Find ``key`` in ``result``, also as a nested path ``"a/b"``."""
    if key in result:
        return True, result[key]
    cur: Any = result
    for part in key.split("/"):
        if not isinstance(cur, dict) or part not in cur:
            return False, None
        cur = cur[part]
    return True, cur


class Stopper(abc.ABC):
    """Base class: ``__call__`` stops one trial, ``stop_all`` stops the experiment."""

    @abc.abstractmethod
    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        """Return True to stop the trial that reported ``result``."""

    def stop_all(self) -> bool:
        """Return True to stop every trial and end the experiment."""
        return False


class NoopStopper(Stopper):
    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False


class FunctionStopper(Stopper):
    """Wraps ``fn(trial_id, result) -> bool``."""

    def __init__(self, function: Callable[[str, dict[str, Any]], bool]) -> None:
        if not callable(function):
            raise bad_type("function", function, "a callable(trial_id, result) -> bool")
        self._fn = function

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return bool(self._fn(trial_id, result))


class DictStopper(Stopper):
    """Stop when ``result[key] >= threshold`` for any key (Ray's dict semantics)."""

    def __init__(self, criteria: Mapping[str, Any]) -> None:
        self.criteria = dict(criteria)
        for key, value in self.criteria.items():
            if not isinstance(value, (int, float)):  # bools count, as in Ray ({"done": True})
                raise bad_type(f"stop[{key!r}]", value, "a number")

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        for key, threshold in self.criteria.items():
            found, value = lookup(result, key)
            if not found:
                user_keys = sorted(k for k in result if k not in _AUTO_KEYS)
                raise TuneError(
                    f"the `stop` criterion {key!r} was not found in the result of trial "
                    f"{trial_id}; the trainable reported {user_keys} (plus the automatic keys "
                    f"{sorted(_AUTO_KEYS)}). Report {key!r} or remove it from `stop`"
                )
            try:
                if value >= threshold:
                    return True
            except TypeError as exc:
                raise TuneError(
                    f"`stop[{key!r}]` compares {value!r} (reported by trial {trial_id}) with "
                    f"{threshold!r}; the reported value must be a number"
                ) from exc
        return False


class MaximumIterationStopper(Stopper):
    """Stop each trial after ``max_iter`` iterations."""

    def __init__(self, max_iter: int) -> None:
        check_in_range("max_iter", max_iter, 1)
        self._max_iter = max_iter

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return result.get("training_iteration", 0) >= self._max_iter


class TimeoutStopper(Stopper):
    """Stop the experiment after ``timeout`` seconds (``time_budget_s``)."""

    def __init__(self, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        timeout = getattr(timeout, "total_seconds", lambda: timeout)()
        check_in_range("timeout", timeout, 0, low_open=True)
        self._timeout = float(timeout)
        self._clock = clock
        self._start: float | None = None

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        now = self._clock()
        if self._start is None:
            self._start = now
        return now - self._start >= self._timeout


class CombinedStopper(Stopper):
    """Stop when any of the given stoppers says so."""

    def __init__(self, *stoppers: Stopper) -> None:
        self._stoppers = list(stoppers)

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return any(s(trial_id, result) for s in self._stoppers)

    def stop_all(self) -> bool:
        return any(s.stop_all() for s in self._stoppers)


_AUTO_KEYS = frozenset({
    "training_iteration", "time_this_iter_s", "time_total_s", "timestamp", "date", "pid",
    "hostname", "node_ip", "trial_id", "iterations_since_restore", "time_since_restore",
    "done", "checkpoint_dir_name", "config", "experiment_tag",
})


def as_stopper(stop: Any) -> Stopper:
    """Turn ``RunConfig.stop`` into a :class:`Stopper`."""
    if stop is None:
        return NoopStopper()
    if isinstance(stop, Stopper):
        return stop
    if isinstance(stop, Mapping):
        return DictStopper(stop)
    if callable(stop):
        return FunctionStopper(stop)
    raise bad_type("stop", stop, "a dict, a callable(trial_id, result) or a Stopper")


__all__ = [
    "CombinedStopper", "FunctionStopper", "MaximumIterationStopper", "Stopper", "TimeoutStopper",
]
