"""Cap how many suggestions of a searcher run at once (Ray's ``ConcurrencyLimiter``)."""

from __future__ import annotations

import logging
from typing import Any

from poptune._validation import bad_type, bad_value
from poptune.exceptions import TuneConfigError
from poptune.search._base import Searcher, _set_search_properties_compat

__all__ = ["ConcurrencyLimiter", "DuplicateTrialIdError", "NotASearcherError"]

logger = logging.getLogger(__name__)


class NotASearcherError(TypeError, RuntimeError):
    """``ConcurrencyLimiter`` given something that is not a Searcher: a ``TypeError``, and
    the ``RuntimeError`` Ray raises."""


class DuplicateTrialIdError(TuneConfigError, AssertionError):
    """``suggest`` called again for a trial id that is still live: a ``TuneConfigError`` (a
    ``ValueError``) naming the id, and the ``AssertionError`` Ray's ``assert`` raises."""


class ConcurrencyLimiter(Searcher):
    """Wraps ``searcher`` so that at most ``max_concurrent`` of its trials are live.

    While the limit is reached, ``suggest`` returns None ("not now"). If the wrapped searcher
    handles concurrency itself (its ``set_max_concurrency`` returns True), the limiter only
    forwards calls.

    Args:
        searcher: the searcher to limit.
        max_concurrent: maximum number of live trials (>= 1).
        batch: hold back completions until the whole batch of live trials has completed,
            then report them all to the searcher.

    Example:
        >>> class Counter(Searcher):
        ...     def suggest(self, trial_id):
        ...         return {"x": 1}
        >>> limited = ConcurrencyLimiter(Counter(), max_concurrent=2)
        >>> [limited.suggest(t) is not None for t in ("a", "b", "c")]
        [True, True, False]
        >>> limited.on_trial_complete("a", {"loss": 1.0})
        >>> limited.suggest("c") is not None
        True
    """

    def __init__(self, searcher: Searcher, max_concurrent: int, batch: bool = False) -> None:
        if not isinstance(searcher, Searcher):
            raise NotASearcherError(*bad_type(
                "searcher", searcher,
                "a Searcher (pass `max_concurrent` to a BasicVariantGenerator directly)").args)
        if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or (
            max_concurrent < 1
        ):
            raise bad_value("max_concurrent", max_concurrent, "an integer >= 1")
        self.searcher = searcher
        self.max_concurrent = max_concurrent
        self.batch = batch
        self.live_trials: set[str] = set()
        self.num_unfinished_live_trials = 0
        self.cached_results: dict[str, tuple[dict[str, Any] | None, bool]] = {}
        self._limit_concurrency = True
        self._set_searcher_max_concurrency()
        super().__init__(metric=searcher.metric, mode=searcher.mode)

    def _set_searcher_max_concurrency(self) -> None:
        self._limit_concurrency = not self.searcher.set_max_concurrency(self.max_concurrent)

    @property
    def metric(self) -> Any:
        return self.searcher.metric

    @property
    def mode(self) -> Any:
        return self.searcher.mode

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        self.max_concurrent = max_concurrent
        return True

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        self._set_searcher_max_concurrency()
        return _set_search_properties_compat(
            self.searcher.set_search_properties, metric, mode, config, **spec
        )

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if not self._limit_concurrency:
            return self.searcher.suggest(trial_id)
        if trial_id in self.live_trials:
            raise DuplicateTrialIdError(*bad_value(
                "trial_id", trial_id, "unique (it is already live)").args)
        if len(self.live_trials) >= self.max_concurrent:
            logger.debug("Not suggesting %s: %d/%d trials live", trial_id,
                         len(self.live_trials), self.max_concurrent)  # fmt: skip
            return None
        suggestion = self.searcher.suggest(trial_id)
        if suggestion is not None and not (
            isinstance(suggestion, str) and suggestion == Searcher.FINISHED
        ):
            self.live_trials.add(trial_id)
            self.num_unfinished_live_trials += 1
        return suggestion

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if not self._limit_concurrency:
            self.searcher.on_trial_complete(trial_id, result=result, error=error)
            return
        if trial_id not in self.live_trials:
            return
        if not self.batch:
            self.searcher.on_trial_complete(trial_id, result=result, error=error)
            self.live_trials.remove(trial_id)
            self.num_unfinished_live_trials -= 1
            return
        self.cached_results[trial_id] = (result, error)
        self.num_unfinished_live_trials -= 1
        if self.num_unfinished_live_trials <= 0:
            # the whole batch is done: report it, then free all its slots
            for done_id, (done_result, done_error) in self.cached_results.items():
                self.searcher.on_trial_complete(done_id, result=done_result, error=done_error)
                self.live_trials.discard(done_id)
            self.cached_results = {}
            self.num_unfinished_live_trials = 0

    def add_evaluated_point(
        self,
        parameters: dict[str, Any],
        value: float,
        error: bool = False,
        pruned: bool = False,
        intermediate_values: list[float] | None = None,
    ) -> None:
        self.searcher.add_evaluated_point(parameters, value, error, pruned, intermediate_values)

    def get_state(self) -> dict[str, Any]:
        """The limiter's own state (the wrapped searcher saves its own)."""
        return {k: v for k, v in self.__dict__.items() if k != "searcher"}

    def set_state(self, state: dict[str, Any]) -> None:
        self.__dict__.update({k: v for k, v in state.items() if k != "searcher"})

    def save(self, checkpoint_path: str) -> None:
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.searcher.restore(checkpoint_path)

    def on_pause(self, trial_id: str) -> None:
        """Ray's BOHB hook: passed to the wrapped searcher if it has one."""
        hook = getattr(self.searcher, "on_pause", None)
        if hook is not None:
            hook(trial_id)

    def on_unpause(self, trial_id: str) -> None:
        """Ray's BOHB hook: passed to the wrapped searcher if it has one."""
        hook = getattr(self.searcher, "on_unpause", None)
        if hook is not None:
            hook(trial_id)
