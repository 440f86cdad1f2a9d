"""One place and one message shape for validating user input.

Every message names the parameter, the value received and what is accepted::

    >>> check_in_range("quantile_fraction", 0.7, 0, 0.5)
    Traceback (most recent call last):
    ...
    poptune.exceptions.TuneConfigError: `quantile_fraction` must be in [0, 0.5], got 0.7
"""

from __future__ import annotations

from typing import Any, Collection

from poptune.exceptions import TuneConfigError


def bad_value(name: str, value: Any, accepted: str) -> TuneConfigError:
    """Build the standard error: `name` must be <accepted>, got <value>."""
    return TuneConfigError(f"`{name}` must be {accepted}, got {value!r}")


def bad_type(name: str, value: Any, accepted: str) -> TypeError:
    """Build the standard type error naming the received type."""
    return TypeError(f"`{name}` must be {accepted}, got {value!r} of type {type(value).__name__}")


def check_in_range(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise ``TuneConfigError`` unless ``low <= value <= high`` (bounds optional)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_type(name, value, "a number")
    ok = True
    if low is not None:
        ok = ok and (value > low if low_open else value >= low)
    if high is not None:
        ok = ok and (value < high if high_open else value <= high)
    if not ok:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        if low is not None and high is not None:
            accepted = f"in {lo}{low}, {high}{hi}"
        elif low is not None:
            accepted = f"{'>' if low_open else '>='} {low}"
        else:
            accepted = f"{'<' if high_open else '<='} {high}"
        raise bad_value(name, value, accepted)


def check_one_of(name: str, value: Any, options: Collection[Any]) -> None:
    """Raise ``TuneConfigError`` unless ``value`` is one of ``options``."""
    if value not in options:
        accepted = "one of " + ", ".join(repr(o) for o in options)
        raise bad_value(name, value, accepted)


def check_mode(mode: Any, name: str = "mode") -> None:
    """`mode` must be None, 'min' or 'max'."""
    if mode is not None:
        check_one_of(name, mode, ("min", "max"))


def no_metric_mode(owner: object, metric: Any, mode: Any, pass_to: str) -> TuneConfigError:
    """The error for a scheduler or searcher asked to work without a usable metric or mode.

    ``owner`` is the object (its class names it) and ``pass_to`` where it takes them
    (``"scheduler"``, ``"searcher"``).

    >>> error = no_metric_mode(object(), None, "min", "searcher")
    >>> print(str(error).replace("; ", ";\\n"))
    object has no valid `metric` (None) or `mode` ('min');
    pass them to the searcher or to `tune.TuneConfig()`
    """
    return TuneConfigError(
        f"{type(owner).__name__} has no valid `metric` ({metric!r}) or `mode` ({mode!r}); "
        f"pass them to the {pass_to} or to `tune.TuneConfig()`"
    )
