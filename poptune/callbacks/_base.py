"""The callback base class, with Ray Tune's hook names.

Every hook is optional and does nothing by default. Hooks run in the driver, in the order
events happen; they receive the :class:`~poptune.experiment.trial.Trial` list to read, never to
change. Keyword arguments are passed by name so that subclasses may accept ``**info``.

Example:
    >>> class CountResults(Callback):
    ...     def __init__(self):
    ...         self.n = 0
    ...     def on_trial_result(self, iteration, trials, trial, result, **info):
    ...         self.n += 1
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from poptune.experiment.trial import Trial


class Callback:
    """Base class for experiment callbacks (``RunConfig(callbacks=[...])``)."""

    def setup(self, stop: Any = None, num_samples: int | None = None, total_num_samples: int | None = None, **info: Any) -> None:
        """Called once before the first trial starts."""

    def on_step_begin(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        """Called at the start of each pass of the runner loop."""

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        """Called at the end of each pass of the runner loop."""

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        """Called when a trial is launched (also after a pause or a restore)."""

    def on_trial_restore(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        """Called when a trial is launched from a checkpoint."""

    def on_trial_save(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        """Called when a trial saved a checkpoint."""

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        """Called after a result is persisted."""

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        """Called when a trial finishes successfully."""

    def on_trial_recover(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        """A trial failed and will be retried (``FailureConfig.max_failures``): it is PENDING
        again, to resume from its latest checkpoint (from the start without one)."""

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        """Called when a trial ends in error (its retries used up); a retry is
        :meth:`on_trial_recover`, as in Ray."""

    def on_checkpoint(
        self, iteration: int, trials: list[Trial], trial: Trial, checkpoint: Any, **info: Any
    ) -> None:
        """Called when a trial's checkpoint has been persisted; ``checkpoint`` is a
        :class:`~poptune.Checkpoint` (its ``path`` in the trial directory), as in Ray."""

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        """Called once when the experiment ends (also on interrupt)."""

    def get_state(self) -> dict[str, Any] | None:
        """The callback's state to keep with the experiment (None: stateless)."""
        return None

    def set_state(self, state: dict[str, Any]) -> None:
        """Take back the state :meth:`get_state` returned."""
