"""How long a running trial may stay silent before the driver warns, or fails it.

A trial is *silent* from the driver's last message from it (its launch, a result, a saved
checkpoint) until now, on the experiment's clock. A worker that hangs (stopped with SIGSTOP,
a deadlock in user code) is silent for ever; without ``time_budget_s`` nothing else ends it.
The controller checks its running trials on every :class:`~poptune.engine.events.Tick`:

* it warns once per silent stretch when a trial has been silent longer than
  :func:`warn_after` its usual step time: ``max(10 x`` the median of the trial's last
  :data:`INTERVALS_KEPT` intervals between messages ``, 60 s)``; before the trial has one
  interval, the median over the other trials' intervals; with none known, 300 s;
* with ``FailureConfig(silence_timeout_s=N)`` it kills a trial silent for more than ``N``
  seconds and fails it (retried from its latest checkpoint within ``max_failures``).

On the simulated backend these are simulated seconds (a trial is silent while its declared
step lasts): the decisions are those a real run with equally long steps makes, and the
messages say the time is simulated.

Example:
    >>> warn_after([1.0, 2.0, 30.0]), warn_after([]), warn_after([0.01])
    (60.0, 300.0, 60.0)
    >>> warn_after([12.0])
    120.0
"""

from __future__ import annotations

from statistics import median
from typing import Iterable

#: a silent stretch longer than this many times the usual step interval is warned about
WARN_FACTOR = 10.0
#: ... but never before this many seconds
WARN_FLOOR_S = 60.0
#: the threshold while no interval between a trial's messages is known yet
WARN_UNKNOWN_S = 300.0
#: intervals between messages kept per trial for its median
INTERVALS_KEPT = 16


def warn_after(intervals: Iterable[float]) -> float:
    """Seconds of silence after which a trial with these recent step intervals is warned
    about: ``max(WARN_FACTOR * median, WARN_FLOOR_S)``, or ``WARN_UNKNOWN_S`` with none."""
    known = list(intervals)
    if not known:
        return WARN_UNKNOWN_S
    return max(WARN_FACTOR * median(known), WARN_FLOOR_S)


def fmt_seconds(s: float) -> str:
    """``"45s"``, ``"12m05s"``, ``"3h07m"``: a silence as the live table and CLI show it.

    Example:
        >>> fmt_seconds(4.2), fmt_seconds(725), fmt_seconds(11220)
        ('4s', '12m05s', '3h07m')
    """
    s = max(0, int(s))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _simulated() -> bool:
    """Whether the experiment runs on simulated time (its trials cannot hang in it)."""
    from poptune.clock import SimulatedClock, current

    return isinstance(current(), SimulatedClock)


def warning_text(trial: object, silent: float, threshold: float, known: bool) -> str:
    usual = (f"over {WARN_FACTOR:g}x its usual step time" if known
             else "and no step time of it is known yet")
    if _simulated():  # a step declared that long, not a hang (a real run warns alike)
        return (f"poptune: trial {trial} has sent nothing for {fmt_seconds(silent)} of "
                f"simulated time ({usual}; warned after {threshold:.0f} simulated s): on "
                "real workers this warns of a hung worker; here a step simply takes that "
                "long. FailureConfig(silence_timeout_s=...) counts simulated seconds too.")
    return (f"poptune: trial {trial} has sent nothing for {fmt_seconds(silent)} ({usual}; "
            f"warned after {threshold:.0f} s): its worker may hang (a deadlock, a stopped "
            "process). FailureConfig(silence_timeout_s=...) fails such a trial and retries it.")


def timeout_text(trial: object, silent: float, timeout: float) -> str:
    """The error a trial failed for silence gets (its ``error.txt``)."""
    if _simulated():
        return (f"SilenceTimeout: trial {trial} sent nothing for {silent:.1f} simulated "
                f"seconds, longer than FailureConfig(silence_timeout_s={timeout:g}), which "
                "counts simulated seconds on the simulated backend; the trial was ended as "
                "a hung worker would be\n")
    return (f"SilenceTimeout: trial {trial} sent nothing for "
            f"{silent:.1f} s, longer than FailureConfig(silence_timeout_s={timeout:g}); its "
            "worker was killed\n")
