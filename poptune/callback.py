"""``ray.tune.callback`` → ``poptune.callback``: :class:`Callback` and :class:`CallbackList`.

``Callback`` is the same class as ``poptune.Callback`` and ``poptune.callbacks.Callback``.
``CallbackList`` is a callback that passes every hook on to the callbacks it holds, in order,
with the same keyword arguments.

Example:
    >>> class Count(Callback):
    ...     def __init__(self):
    ...         self.n = 0
    ...     def on_trial_result(self, iteration, trials, trial, result, **info):
    ...         self.n += 1
    >>> a, b = Count(), Count()
    >>> hooks = CallbackList([a, b])
    >>> hooks.on_trial_result(iteration=1, trials=[], trial=None, result={})
    >>> a.n, b.n
    (1, 1)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from poptune._validation import bad_type
from poptune.callbacks._base import Callback

__all__ = ["Callback", "CallbackList"]

class CallbackList(Callback):
    """Several callbacks as one, called in the order given."""

    def __init__(self, callbacks: Iterable[Callback]) -> None:
        self._callbacks = list(callbacks)
        for cb in self._callbacks:
            if not isinstance(cb, Callback):
                raise bad_type("callbacks", cb, "a list of poptune.Callback instances")

    def _each(self, hook: str, info: dict[str, Any]) -> None:
        for cb in self._callbacks:
            getattr(cb, hook)(**info)

    def setup(self, **info: Any) -> None:  # type: ignore[override]
        self._each("setup", info)

    def on_step_begin(self, **info: Any) -> None:  # type: ignore[override]
        self._each("on_step_begin", info)

    def on_step_end(self, **info: Any) -> None:  # type: ignore[override]
        self._each("on_step_end", info)

    def on_trial_start(self, **info: Any) -> None:  # type: ignore[override]
        self._each("on_trial_start", info)

    def on_trial_restore(self, **info: Any) -> None:  # type: ignore[override]
        self._each("on_trial_restore", info)

    def on_trial_save(self, **info: Any) -> None:  # type: ignore[override]
        self._each("on_trial_save", info)

    def on_trial_result(self, **info: Any) -> None:  # type: ignore[override]
        self._each("on_trial_result", info)

    def on_trial_complete(self, **info: Any) -> None:  # type: ignore[override]
        self._each("on_trial_complete", info)

    def on_trial_recover(self, **info: Any) -> None:  # type: ignore[override]
        self._each("on_trial_recover", info)

    def on_trial_error(self, **info: Any) -> None:  # type: ignore[override]
        self._each("on_trial_error", info)

    def on_checkpoint(self, **info: Any) -> None:  # type: ignore[override]
        self._each("on_checkpoint", info)

    def on_experiment_end(self, **info: Any) -> None:  # type: ignore[override]
        self._each("on_experiment_end", info)

    def get_state(self) -> dict[Any, Any] | None:
        """``{index: state}`` of the callbacks that have state; None when none has."""
        states = {i: cb.get_state() for i, cb in enumerate(self._callbacks)}
        return states if any(states.values()) else None

    def set_state(self, state: dict[Any, Any]) -> None:
        for i, cb in enumerate(self._callbacks):
            if state.get(i):
                cb.set_state(state[i])

    def __len__(self) -> int:
        return len(self._callbacks)

    def __getitem__(self, index: int) -> Callback:
        return self._callbacks[index]
