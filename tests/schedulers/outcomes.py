"""Test helpers: read a scheduler hook's return value as the controller does.

A hook returns its usual value, or an :class:`~poptune.schedulers.Outcome` of that value plus
actions on other trials; ``on_trial_add`` returns config values to fill in.
"""

from __future__ import annotations

from typing import Any

from poptune.engine.trial import Trial
from poptune.engine.trial_view import TrialView
from poptune.schedulers import Action, Outcome, ResizeTrial, StopTrial


def split(out: Any) -> tuple[Any, tuple[Action, ...]]:
    """``(value, actions)`` of a hook's return."""
    if isinstance(out, Outcome):
        return out.value, out.actions
    return out, ()


def value(out: Any) -> Any:
    return split(out)[0]


def actions(out: Any) -> tuple[Action, ...]:
    return split(out)[1]


def stops(out: Any) -> list[str]:
    """The trial ids of the :class:`StopTrial` actions of a hook's return."""
    return [a.trial_id for a in actions(out) if isinstance(a, StopTrial)]


def resizes(out: Any) -> list[tuple[str, Any]]:
    return [(a.trial_id, a.resources) for a in actions(out) if isinstance(a, ResizeTrial)]


def fill(trial: Trial, values: dict[str, Any] | None) -> None:
    """Write ``on_trial_add``'s ``{"a/b": value}`` into the trial, as the controller does."""
    for path, v in (values or {}).items():
        node = trial.config
        *parents, last = path.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = v
        trial.evaluated_params[path] = v


def add(sched: Any, trial: Trial) -> tuple[Action, ...]:
    """``sched.on_trial_add`` through a read-only view; fill the values it returns into
    ``trial``; return its actions."""
    filled, acts = split(sched.on_trial_add(TrialView(trial)))
    fill(trial, filled)
    return acts
