"""Run each suggestion several times and report the mean (Ray's ``Repeater``)."""

from __future__ import annotations

import logging
import math
from typing import Any

import cloudpickle

from poptune._validation import bad_type, bad_value
from poptune.search._base import (
    Searcher,
    _file_bytes,
    _restore_bytes,
    _set_search_properties_compat,
    _WrappedFile,
)

__all__ = ["TRIAL_INDEX", "NotASearcherError", "Repeater"]

logger = logging.getLogger(__name__)

TRIAL_INDEX = "__trial_index__"
"""Config key holding a trial's index within its group of repeats (usable as a seed)."""


def _warn_num_samples(searcher: Searcher, num_samples: int) -> None:
    if isinstance(searcher, Repeater) and num_samples > 0 and num_samples % searcher.repeat:
        logger.warning(
            "`num_samples` (%d) counts every trial including repeats and is not a multiple "
            "of `repeat` (%d); the last, incomplete group is never reported to the searcher.",
            num_samples,
            searcher.repeat,
        )


class NotASearcherError(TypeError, AttributeError):
    """``Repeater`` given something that is not a Searcher: a ``TypeError``, and the
    ``AttributeError`` Ray raises."""


class _TrialGroup:
    """Trials sharing one suggestion; the first (primary) is the one the searcher knows."""

    def __init__(self, primary_trial_id: str, config: dict[str, Any], max_trials: int) -> None:
        self.primary_trial_id = primary_trial_id
        self.config = config
        self.max_trials = max_trials
        self.scores: dict[str, float | None] = {primary_trial_id: None}
        self.errors: dict[str, bool] = {}

    def add(self, trial_id: str) -> None:
        self.scores.setdefault(trial_id, None)

    def full(self) -> bool:
        return len(self.scores) >= self.max_trials

    def report(self, trial_id: str, score: float, error: bool) -> None:
        self.scores[trial_id] = score
        self.errors[trial_id] = error

    def finished_reporting(self) -> bool:
        return self.full() and len(self.errors) == len(self.scores)

    def mean(self) -> float:
        values = [s for s in self.scores.values() if s is not None and not math.isnan(s)]
        return sum(values) / len(values) if values else math.nan


class Repeater(Searcher):
    """Wraps ``searcher`` so that each of its suggestions runs ``repeat`` times.

    The searcher sees one trial per group (the first); when every trial of the group has
    completed it receives ``{metric: mean of the group's metric}`` (NaN-ignoring mean; a trial
    without the metric counts as NaN). Set ``num_samples`` to the total number of trials,
    e.g. 15 for 3 suggestions repeated 5 times.

    Args:
        searcher: the searcher whose suggestions are repeated.
        repeat: how many trials run each suggestion (>= 1).
        set_index: put the index within the group under ``config["__trial_index__"]``.

    Example:
        >>> class Fixed(Searcher):
        ...     def __init__(self):
        ...         super().__init__(metric="loss", mode="min")
        ...         self.completed = {}
        ...     def suggest(self, trial_id):
        ...         return {"x": 1}
        ...     def on_trial_complete(self, trial_id, result=None, error=False):
        ...         self.completed[trial_id] = result
        >>> inner = Fixed()
        >>> rep = Repeater(inner, repeat=2)
        >>> rep.suggest("a"), rep.suggest("b")
        ({'x': 1, '__trial_index__': 0}, {'x': 1, '__trial_index__': 1})
        >>> rep.on_trial_complete("a", {"loss": 1.0}); rep.on_trial_complete("b", {"loss": 3.0})
        >>> inner.completed
        {'a': {'loss': 2.0}}
    """

    def __init__(self, searcher: Searcher, repeat: int = 1, set_index: bool = True) -> None:
        if not isinstance(searcher, Searcher):
            raise NotASearcherError(*bad_type("searcher", searcher, "a Searcher").args)
        if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
            raise bad_value("repeat", repeat, "an integer >= 1")
        self.searcher = searcher
        self.repeat = repeat
        self._set_index = set_index
        self._groups: list[_TrialGroup] = []
        self._trial_id_to_group: dict[str, _TrialGroup] = {}
        self._current_group: _TrialGroup | None = None
        super().__init__(metric=searcher.metric, mode=searcher.mode)

    @property
    def metric(self) -> Any:
        return self.searcher.metric

    @property
    def mode(self) -> Any:
        return self.searcher.mode

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        return _set_search_properties_compat(
            self.searcher.set_search_properties, metric, mode, config, **spec
        )

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self._current_group is None or self._current_group.full():
            config = self.searcher.suggest(trial_id)
            if config is None or (isinstance(config, str) and config == Searcher.FINISHED):
                return config
            if not isinstance(config, dict):
                raise bad_type("suggestion", config, "a dict, None or Searcher.FINISHED")
            self._current_group = _TrialGroup(trial_id, config, max_trials=self.repeat)
            self._groups.append(self._current_group)
            index = 0
        else:
            index = len(self._current_group.scores)
            self._current_group.add(trial_id)
        self._trial_id_to_group[trial_id] = self._current_group
        config = dict(self._current_group.config)
        if self._set_index:
            config[TRIAL_INDEX] = index
        return config

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        """Record the trial's metric; once its group is complete, report the mean.

        The searcher gets the ``error`` flag of the trial that completed the group (Ray's).
        """
        group = self._trial_id_to_group.get(trial_id)
        if group is None:
            logger.error("Trial %s was not suggested by this Repeater; ignoring it", trial_id)
            return
        metric = self.searcher.metric
        score = result[metric] if result and metric in result else math.nan
        group.report(trial_id, score, error)
        if group.finished_reporting():
            self.searcher.on_trial_complete(
                group.primary_trial_id,
                result={metric: group.mean()},
                error=error,
            )

    def get_state(self) -> dict[str, Any]:
        """The repeater's own state (the wrapped searcher saves its own)."""
        return {k: v for k, v in self.__dict__.items() if k != "searcher"}

    def set_state(self, state: dict[str, Any]) -> None:
        self.__dict__.update({k: v for k, v in state.items() if k != "searcher"})

    def save(self, checkpoint_path: str) -> None:
        """Write the wrapped searcher's file with this repeater's groups alongside (any
        searcher's ``restore`` reads the wrapped file, as Ray's Repeater file is that file)."""
        wrapped = _WrappedFile("Repeater", self.get_state(), _file_bytes(self.searcher))
        with open(checkpoint_path, "wb") as f:
            cloudpickle.dump(wrapped, f)

    def restore(self, checkpoint_path: str) -> None:
        """Restore :meth:`save`'s file (the groups continue), or hand any other file (Ray's
        Repeater file, the wrapped searcher's own) to the wrapped searcher."""
        with open(checkpoint_path, "rb") as f:
            try:
                saved = cloudpickle.load(f)
            except Exception:  # noqa: BLE001 - not a pickle: the wrapped searcher's own format
                saved = None
        if not isinstance(saved, _WrappedFile):
            self.searcher.restore(checkpoint_path)
            return
        _restore_bytes(self.searcher, saved.inner)
        self.set_state(saved.state)
