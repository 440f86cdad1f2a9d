"""The experiment's clock: real time by default, simulated time on the ``simulated`` backend.

Everything outside the runner that needs "now" (stoppers, schedulers, progress output) reads
:func:`current` at call time, so a fit on simulated time sees simulated seconds and a test
that moves ``time.time``/``time.monotonic`` sees them move. ``Tuner.fit`` installs the
backend's clock for the duration of the fit.

Example:
    >>> clock = SimulatedClock(start=10.0)
    >>> clock.advance(2.5)
    >>> clock.monotonic(), clock.time()
    (12.5, 12.5)
    >>> with use(clock):
    ...     current().monotonic()
    12.5
    >>> isinstance(current(), RealClock)
    True
"""

from __future__ import annotations

import abc
import contextlib
import datetime
import math
import threading
import time
from typing import Iterator

from poptune._validation import bad_type, bad_value

__all__ = ["Clock", "RealClock", "SimulatedClock", "current", "local_date", "set_current", "use"]

_DATE: tuple[int, str] = (-1, "")


def local_date(seconds: float) -> str:
    """Epoch ``seconds`` as Ray writes dates (local time, ``%Y-%m-%d_%H-%M-%S``), formatted
    once per second: a result's ``date``, a trial directory's suffix.

    Example:
        >>> local_date(0.0) == local_date(0.9)
        True
    """
    global _DATE
    second = math.floor(seconds)
    if _DATE[0] != second:
        _DATE = (second, datetime.datetime.fromtimestamp(second).strftime("%Y-%m-%d_%H-%M-%S"))
    return _DATE[1]


class Clock(abc.ABC):
    """Where time comes from."""

    @abc.abstractmethod
    def time(self) -> float:
        """Epoch-like seconds (what the ``timestamp`` result key holds)."""

    @abc.abstractmethod
    def monotonic(self) -> float:
        """Seconds that never go backwards (for durations and deadlines)."""


class RealClock(Clock):
    """The machine's clock, read at call time (so a test that patches ``time`` sees it)."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def __repr__(self) -> str:
        return "RealClock()"


class SimulatedClock(Clock):
    """A clock that moves only when told to.

    Args:
        start: the initial reading of :meth:`monotonic`.
        epoch: added to the reading for :meth:`time` (0: simulated runs date from 1970).
    """

    def __init__(self, start: float = 0.0, *, epoch: float = 0.0) -> None:
        _check_finite("start", start)
        _check_finite("epoch", epoch)
        self._now = float(start)
        self._epoch = float(epoch)

    def time(self) -> float:
        return self._epoch + self._now

    def monotonic(self) -> float:
        return self._now

    def advance(self, dt: float) -> None:
        """Move the clock ``dt >= 0`` seconds forward."""
        _check_finite("dt", dt)
        if dt < 0:
            raise bad_value("dt", dt, "a number of seconds >= 0 (time does not go backwards)")
        self._now += dt

    def advance_to(self, t: float) -> None:
        """Move the clock forward to ``t`` (at least the current reading)."""
        _check_finite("t", t)
        if t < self._now:
            raise bad_value("t", t, f"a time >= the clock's reading {self._now!r}")
        self._now = float(t)

    def __repr__(self) -> str:
        return f"SimulatedClock(now={self._now!r})"


def _check_finite(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_type(name, value, "a number of seconds")
    if not math.isfinite(value):
        raise bad_value(name, value, "a finite number of seconds")


_REAL = RealClock()
_current: Clock = _REAL
_local = threading.local()  # a per-thread override (trial threads of the simulated backend)


def current() -> Clock:
    """The clock of the running experiment (:class:`RealClock` outside a fit)."""
    return getattr(_local, "clock", None) or _current


def set_current(clock: Clock | None) -> Clock:
    """Make ``clock`` (None: the real clock) the process's clock; return the previous one."""
    global _current
    if clock is not None and not isinstance(clock, Clock):
        raise bad_type("clock", clock, "a poptune.clock.Clock or None")
    previous, _current = _current, clock or _REAL
    return previous


def set_thread_clock(clock: Clock | None) -> None:
    """Make ``clock`` this thread's clock (None: follow the process's clock)."""
    _local.clock = clock


@contextlib.contextmanager
def use(clock: Clock | None) -> Iterator[Clock]:
    """Use ``clock`` as the process's clock inside the ``with`` block."""
    previous = set_current(clock)
    try:
        yield current()
    finally:
        set_current(previous)
