"""Stoppers decide when a trial (or the whole experiment) stops.

``RunConfig(stop=...)`` accepts a dict (stop when ``result[key] >= value`` for any key), a
function ``(trial_id, result) -> bool``, a :class:`Stopper` or a list of stoppers. As in Ray,
the engine calls ``stopper(trial_id, result)`` with each result of a trial and
``stopper.stop_all()`` as the experiment runs.

Example:
    >>> s = as_stopper({"training_iteration": 3})
    >>> s("t1", {"training_iteration": 2}), s("t1", {"training_iteration": 3})
    (False, True)
"""

from __future__ import annotations

import abc
import logging
import math
import numbers
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from poptune._dicts import MISSING, nested_get
from poptune._validation import bad_type, bad_value, check_in_range, check_mode, check_one_of
from poptune.clock import Clock
from poptune.clock import current as current_clock
from poptune.exceptions import TuneConfigTypeError, TuneError
from poptune.result import FILLED_RESULT_KEYS

logger = logging.getLogger("poptune")


def lookup(result: dict[str, Any], key: str) -> tuple[bool, Any]:
    """Find ``key`` in ``result``, also as a nested path ``"a/b"``: ``(found, value)``."""
    value = nested_get(result, key, MISSING)
    return (False, None) if value is MISSING else (True, value)


class Stopper(abc.ABC):
    """Base class: ``__call__`` stops one trial, ``stop_all`` stops the experiment."""

    @abc.abstractmethod
    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        """Return True to stop the trial that reported ``result``."""

    def stop_all(self) -> bool:
        """Return True to stop every trial and end the experiment."""
        return False

    @property
    def stops_on_results(self) -> bool:
        """Whether :meth:`__call__` may stop a trial on a result (or reads results). False
        for no stopper and a time budget: then a trial need not wait for the engine's answer
        to each result before it goes on.

        Example:
            >>> NoopStopper().stops_on_results, MaximumIterationStopper(3).stops_on_results
            (False, True)
        """
        return type(self).__call__ not in _IGNORES_RESULTS


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
    """Stop when ``result[key] >= threshold`` for any key (Ray's dict semantics).

    A key missing from a result is skipped, as in Ray 2.60 (a metric reported only every few
    iterations, e.g. a validation score): the first miss of each key is logged as a warning
    naming the keys the trial did report.

    Example:
        >>> s = DictStopper({"val_acc": 0.6})
        >>> s("t1", {"loss": 0.5}), s("t1", {"loss": 0.4, "val_acc": 0.7})
        (False, True)
    """

    def __init__(self, criteria: Mapping[str, Any]) -> None:
        self.criteria = dict(criteria)
        for key, value in self.criteria.items():
            if not isinstance(value, (int, float)):  # bools count, as in Ray ({"done": True})
                raise bad_type(f"stop[{key!r}]", value, "a number")
        self._warned: set[str] = set()

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        for key, threshold in self.criteria.items():
            found, value = lookup(result, key)
            if not found:
                if key not in self._warned:
                    self._warned.add(key)
                    user_keys = sorted(k for k in result if k not in FILLED_RESULT_KEYS)
                    logger.warning(
                        "the `stop` criterion %r was not found in the result of trial %s; the "
                        "trainable reported %s (plus the automatic keys %s). If %r is never "
                        "reported, the trials run until they end by themselves (as in Ray)",
                        key, trial_id, user_keys, sorted(FILLED_RESULT_KEYS), key)
                continue
            try:
                if value >= threshold:
                    return True
            except TypeError as exc:
                raise TuneError(
                    f"`stop[{key!r}]` compares {value!r} (reported by trial {trial_id}) with "
                    f"{threshold!r}; the reported value must be a number"
                ) from exc
        return False

    def __setstate__(self, state: dict[str, Any]) -> None:  # pickled before `_warned` existed
        self.__dict__.update(state)
        self.__dict__.setdefault("_warned", set())


class MaximumIterationStopper(Stopper):
    """Stop each trial after ``max_iter`` iterations."""

    def __init__(self, max_iter: int) -> None:
        check_in_range("max_iter", max_iter, 1)
        self._max_iter = max_iter

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return result.get("training_iteration", 0) >= self._max_iter


class TimeoutStopper(Stopper):
    """Stop the experiment after ``timeout`` seconds (``time_budget_s``), as Ray does.

    The budget counts from the first :meth:`stop_all` call, which fixes the deadline it ends
    at, read from ``clock`` (default: the experiment's clock, :func:`poptune.clock.current`,
    read at call time; the simulated backend's clock in a simulated fit): it is spent when
    the clock reads the deadline. A pickled stopper keeps the budget it had left at its last
    check: the time between that check and the first one after unpickling is not charged.

    Example:
        >>> from poptune.clock import SimulatedClock
        >>> clock = SimulatedClock()
        >>> stopper = TimeoutStopper(60, clock=clock)
        >>> stopper.stop_all()
        False
        >>> clock.advance(60)
        >>> stopper.stop_all()
        True
    """

    def __init__(self, timeout: float, clock: Clock | None = None) -> None:
        timeout = getattr(timeout, "total_seconds", lambda: timeout)()
        check_in_range("timeout", timeout, 0, low_open=True)
        if clock is not None and not isinstance(clock, Clock):
            raise bad_type("clock", clock, "a poptune.clock.Clock or None")
        self._timeout = float(timeout)
        #: the budget left when no deadline is set (before the first check, once unpickled)
        self._budget = self._timeout
        self._clock = clock
        #: the clock's reading at which the budget is spent (set by the first check)
        self._deadline: float | None = None
        self._last_check: float | None = None

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        now = (self._clock or current_clock()).time()
        if self._deadline is None:
            self._deadline = now + self._budget
        elif self._last_check is not None and now < self._last_check:
            self._deadline -= self._last_check - now  # a clock set back gives no time back
        self._last_check = now
        return now >= self._deadline

    def _time_left(self) -> float:
        """Seconds of budget left at the clock's reading (the whole budget before the first
        check); at most 0 once spent. The simulated runner sleeps until then."""
        if self._deadline is None:
            return self._budget
        return self._deadline - (self._clock or current_clock()).time()

    def __getstate__(self) -> dict[str, Any]:
        # an unpickled stopper (a restored run's) reads the clock of the run it is in, and
        # keeps the budget left at the last check
        state = {**self.__dict__, "_clock": None, "_deadline": None}
        if self._deadline is not None and self._last_check is not None:
            state["_budget"] = max(0.0, self._deadline - self._last_check)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["_last_check"] = None  # the time a pickled stopper spent on disk is free
        state["_deadline"] = None  # set again by the first check (pickles before it existed)
        self.__dict__.update(state)


class CombinedStopper(Stopper):
    """Stop when any of the given stoppers says so."""

    def __init__(self, *stoppers: Stopper) -> None:
        self._stoppers = list(stoppers)

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return any(s(trial_id, result) for s in self._stoppers)

    def stop_all(self) -> bool:
        return any(s.stop_all() for s in self._stoppers)

    def _time_left(self) -> float | None:
        """The least time budget left among the stoppers that have one (None: none has)."""
        left = [f() for f in (getattr(s, "_time_left", None) for s in self._stoppers)
                if f is not None]
        known = [x for x in left if x is not None]
        return min(known) if known else None

    @property
    def stops_on_results(self) -> bool:
        return type(self).__call__ is not CombinedStopper.__call__ or any(
            getattr(s, "stops_on_results", True) for s in self._stoppers)


#: ``__call__`` methods that never look at a result (a subclass that overrides one does)
_IGNORES_RESULTS = frozenset({NoopStopper.__call__, TimeoutStopper.__call__})


def as_stopper(stop: Any) -> Stopper:
    """Turn ``RunConfig.stop`` into a :class:`Stopper`.

    Raises:
        TuneConfigTypeError: ``stop`` is none of the accepted kinds (a ``TypeError`` and, as
            in Ray, a ``ValueError``).
    """
    if stop is None:
        return NoopStopper()
    if isinstance(stop, Stopper):
        return stop
    if isinstance(stop, Mapping):
        return DictStopper(stop)
    if isinstance(stop, (list, tuple)):  # as in Ray: several stoppers, any of them stops
        bad = [s for s in stop if not isinstance(s, Stopper)]
        if bad:
            raise _bad_stop(bad[0], "a list of poptune.Stopper instances (in a list)")
        return CombinedStopper(*stop)
    if callable(stop):
        if hasattr(stop, "stop_all"):  # Ray's check: its stop_all would never be called
            raise _bad_stop(stop, "a poptune.Stopper subclass when it has a `stop_all` method")
        return FunctionStopper(stop)
    raise _bad_stop(stop, "a dict, a callable(trial_id, result), a Stopper or a list of Stoppers")


def _bad_stop(value: Any, accepted: str) -> TuneConfigTypeError:
    return TuneConfigTypeError(str(bad_type("stop", value, accepted)))


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise bad_value(name, value, f"an int >= {low}")


def _number(value: Any) -> float | None:
    """``value`` as a float, or None when it is missing or not a real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def _pstdev(values: list[float]) -> float:
    """Population standard deviation (NumPy's ``np.std`` default, ``ddof=0``)."""
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))


class TrialPlateauStopper(Stopper):
    """Stop a trial once ``metric`` has stopped moving (Ray Tune's semantics).

    After each result the stopper looks at the trial's last ``num_results`` values of
    ``metric``. It stops the trial when all of these hold:

    * the trial has reported at least ``grace_period`` results (and ``num_results`` of them);
    * with ``metric_threshold`` set, the current value is at least as good as the threshold
      (``<= metric_threshold`` for ``mode="min"``, ``>=`` for ``mode="max"``);
    * the population standard deviation of those values is below ``std``.

    A window holding a missing, non-numeric or non-finite value never counts as a plateau.

    Args:
        metric: the metric to watch (``"a/b"`` reaches nested metrics).
        std: the standard deviation below which the trial has plateaued.
        num_results: how many of the latest results form the window.
        grace_period: the minimum number of results before a trial can be stopped.
        metric_threshold: only stop trials whose current value is this good.
        mode: ``"min"`` or ``"max"``; required with ``metric_threshold``.

    Example:
        >>> stopper = TrialPlateauStopper("loss", std=0.01, num_results=3, grace_period=3)
        >>> [stopper("t1", {"loss": v}) for v in (0.9, 0.5, 0.5, 0.5)]
        [False, False, False, True]
    """

    def __init__(
        self,
        metric: str,
        std: float = 0.01,
        num_results: int = 4,
        grace_period: int = 4,
        metric_threshold: float | None = None,
        mode: str | None = None,
    ) -> None:
        if not isinstance(metric, str) or not metric:
            raise bad_type("metric", metric, "a non-empty str")
        check_in_range("std", std, 0)
        _check_int("num_results", num_results, 1)
        _check_int("grace_period", grace_period, 0)
        check_mode(mode)
        if metric_threshold is not None:
            check_in_range("metric_threshold", metric_threshold)
            if mode is None:
                raise bad_value("mode", mode, "'min' or 'max' when `metric_threshold` is set")
        self._metric = metric
        self._std = float(std)
        self._num_results = num_results
        self._grace_period = grace_period
        self._metric_threshold = metric_threshold
        self._mode = mode
        self._counts: dict[str, int] = {}
        self._windows: dict[str, deque[float | None]] = {}

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        value = _number(lookup(result, self._metric)[1])
        window = self._windows.get(trial_id)
        if window is None:
            window = self._windows[trial_id] = deque(maxlen=self._num_results)
        window.append(value)
        self._counts[trial_id] = self._counts.get(trial_id, 0) + 1
        if self._counts[trial_id] < self._grace_period or len(window) < self._num_results:
            return False
        if self._metric_threshold is not None and value is not None:
            if self._mode == "min" and value > self._metric_threshold:
                return False
            if self._mode == "max" and value < self._metric_threshold:
                return False
        values = [v for v in window if v is not None and math.isfinite(v)]
        if len(values) < len(window):
            return False
        return _pstdev(values) < self._std


class ExperimentPlateauStopper(Stopper):
    """Stop the whole experiment once the best ``top`` values of ``metric`` agree.

    Every result of every trial is offered to a leaderboard of the ``top`` best values seen so
    far (smallest for ``mode="min"``, largest for ``mode="max"``). The leaderboard has
    plateaued when it is full and its population standard deviation is ``<= std``. The stopper
    counts consecutive results after which the leaderboard has plateaued (a result after which
    it has not resets the count); once the count reaches ``patience`` (at least 1, so
    ``patience=0`` and ``patience=1`` both act on the first plateaued result) it stops the
    trial that reported and, through ``stop_all``, the whole experiment. Every result must
    report ``metric``.

    Args:
        metric: the metric to watch (``"a/b"`` reaches nested metrics).
        std: the standard deviation at or below which the leaderboard has plateaued.
        top: how many of the best values form the leaderboard (an int > 1).
        mode: ``"min"`` or ``"max"``: which values are the best.
        patience: how many consecutive plateaued results to wait for.

    Raises:
        TuneError: (from ``__call__``) a result does not report ``metric``.

    Example:
        >>> stopper = ExperimentPlateauStopper("loss", std=0.001, top=3, mode="min")
        >>> [stopper(t, {"loss": 0.5}) for t in ("a", "b", "c")]
        [False, False, True]
        >>> stopper.stop_all()
        True
    """

    def __init__(
        self,
        metric: str,
        std: float = 0.001,
        top: int = 10,
        mode: str = "min",
        patience: int = 0,
    ) -> None:
        if not isinstance(metric, str) or not metric:
            raise bad_type("metric", metric, "a non-empty str")
        check_one_of("mode", mode, ("min", "max"))
        if isinstance(top, bool) or not isinstance(top, int) or top <= 1:
            raise bad_value("top", top, "an int > 1")
        _check_int("patience", patience, 0)
        check_in_range("std", std, 0, low_open=True)
        self._metric = metric
        self._std = float(std)
        self._top = top
        self._mode = mode
        self._patience = patience
        self._iterations = 0
        self._top_values: list[float] = []

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        found, raw = lookup(result, self._metric)
        value = _number(raw)
        if not found or value is None:
            raise TuneError(
                f"ExperimentPlateauStopper watches {self._metric!r}, but trial {trial_id} "
                f"reported {'no such metric' if not found else repr(raw)}; report it as a "
                "number with every result"
            )
        values = sorted([*self._top_values, value])
        self._top_values = values[: self._top] if self._mode == "min" else values[-self._top:]
        if self.has_plateaued():
            self._iterations += 1
        else:
            self._iterations = 0
        return self.stop_all()

    def has_plateaued(self) -> bool:
        """True when the leaderboard is full and its standard deviation is ``<= std``."""
        return len(self._top_values) == self._top and _pstdev(self._top_values) <= self._std

    def stop_all(self) -> bool:
        return self.has_plateaued() and self._iterations >= self._patience


__all__ = [
    "CombinedStopper", "ExperimentPlateauStopper", "FunctionStopper", "MaximumIterationStopper",
    "Stopper", "TimeoutStopper", "TrialPlateauStopper",
]


#: the stoppers as a run left them, in the experiment directory (``Tuner.restore`` reads it)
STOPPER_STATE_FILE = "stopper_state.pkl"


def save_stopper_state(stoppers: dict[str, Any], experiment_dir: str,
                       remote: Any = None) -> None:
    """Keep ``stoppers`` (by role) as the run leaves them, so a restored run continues with
    their state (a :class:`TimeoutStopper`'s remaining budget, a plateau stopper's history),
    as Ray's experiment state does; the role ``callbacks`` keeps the callbacks' ``get_state()``.
    One that cannot be pickled is skipped: a restored run then starts it afresh.

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> save_stopper_state({"stop": MaximumIterationStopper(3), "budget": None}, d)
        >>> load_stopper_state(d)["stop"]("t", {"training_iteration": 3})
        True
    """
    import logging
    import os

    import cloudpickle

    kept: dict[str, Any] = {}
    for role, stopper in stoppers.items():
        if stopper is None:
            continue
        try:
            cloudpickle.dumps(stopper)
        except Exception as exc:  # noqa: BLE001 - e.g. a user's stopper holding a lock
            logging.getLogger("poptune").debug("the %s stopper is not kept: %s", role, exc)
            continue
        kept[role] = stopper
    path = os.path.join(experiment_dir, STOPPER_STATE_FILE)
    try:
        with open(path + ".tmp", "wb") as f:
            f.write(cloudpickle.dumps(kept))
        os.replace(path + ".tmp", path)
        if remote is not None:  # a RemoteStorage: the experiment's authoritative copy
            remote.upload_file(path, STOPPER_STATE_FILE)
    except (OSError, TuneError) as exc:  # the experiment's own error matters more
        logging.getLogger("poptune").warning("poptune: %s not written: %s", path, exc)


def load_stopper_state(experiment_dir: str) -> dict[str, Any] | None:
    """The stoppers :func:`save_stopper_state` kept in ``experiment_dir``, or None."""
    import os

    import cloudpickle

    path = os.path.join(experiment_dir, STOPPER_STATE_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as f:
            kept = cloudpickle.load(f)
    except Exception:  # noqa: BLE001 - unreadable (e.g. its class is gone): start afresh
        return None
    return kept if isinstance(kept, dict) else None
