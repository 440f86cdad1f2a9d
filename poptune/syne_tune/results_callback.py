"""Syne Tune's ``StoreResultsCallback`` (``syne_tune.results_callback`` from 0.5 on;
``syne_tune.tuner_callback`` in the d2l era) and ``ExtraResultsComposer``.

poptune's :class:`~poptune.syne_tune.Tuner` always writes ``results.csv.zip`` (Syne Tune
writes it only when a ``StoreResultsCallback`` is among the callbacks, which its ``Tuner``
adds by default). Passed to a poptune ``Tuner``, the callback is that table: its
``results`` are the rows the tuner writes (with the STOP decisions and the final
``Completed`` / ``Failed`` statuses), ``dataframe()`` is the same table as
``load_experiment(name).results``, an ``extra_results_composer``'s columns go into
``results.csv.zip``, and ``store_results()`` rewrites ``results.csv.zip`` (nothing else
writes the file). Used without a poptune tuner (its hooks called by hand), it records and
stores what its hooks get, as Syne Tune's.

Example:
    >>> from datetime import datetime
    >>> from poptune.syne_tune.tuner_callback import Trial
    >>> cb = StoreResultsCallback(add_wallclock_time=False)
    >>> cb.save_results_at_frequency = lambda: None  # set by on_tuning_start
    >>> cb.on_trial_result(Trial(0, {"lr": 0.1}, datetime.now()), "InProgress",
    ...                    {"loss": 0.5}, "CONTINUE")
    >>> cb.dataframe().to_dict("records")
    [{'loss': 0.5, 'st_decision': 'CONTINUE', 'st_status': 'InProgress', 'trial_id': 0, 'config_lr': 0.1}]
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from time import perf_counter
from typing import Any

from poptune.syne_tune.constants import (
    ST_DECISION,
    ST_RESULTS_DATAFRAME_FILENAME,
    ST_STATUS,
    ST_TRIAL_ID,
    ST_TUNER_TIME,
)
from poptune.syne_tune.tuner_callback import Trial, TunerCallback

__all__ = ["ExtraResultsComposer", "StoreResultsCallback"]


class ExtraResultsComposer:
    """Extra columns for the results table: called with the tuner on each result, its dict
    (or None) is added to that result's row."""

    def __call__(self, tuner: Any) -> dict[str, Any] | None:
        raise NotImplementedError

    def keys(self) -> list[str]:
        """The names of the columns :meth:`__call__` returns (``[]`` if none)."""
        return []


class _Every:
    """Syne Tune's ``RegularCallback``: call ``fn`` at most every ``seconds``."""

    def __init__(self, fn: Callable[[], None], seconds: float) -> None:
        self.fn, self.seconds, self.last = fn, seconds, perf_counter()

    def __call__(self) -> None:
        now = perf_counter()
        if now - self.last > self.seconds:
            self.fn()
            self.last = now


class StoreResultsCallback(TunerCallback):
    """Records every reported result (``results``, ``dataframe()``) and stores them as
    ``{tuner_path}/results.csv.zip``.

    Args:
        add_wallclock_time: add ``st_tuner_time`` (seconds since ``on_tuning_start``) to
            results that lack it (a poptune tuner's rows always carry it).
        extra_results_composer: its dict is added to each result's row.
    """

    def __init__(self, add_wallclock_time: bool = True,
                 extra_results_composer: ExtraResultsComposer | None = None) -> None:
        self.results: list[dict[str, Any]] = []
        self.csv_file: str | None = None
        self.save_results_at_frequency: Callable[[], None] | None = None
        self.add_wallclock_time = add_wallclock_time
        self._extra_results_composer = extra_results_composer
        self._start_time_stamp: float | None = None
        self._tuner: Any = None
        #: the poptune tuner's results table (its rows are :attr:`results`), once attached
        self._bridge: Any = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with its tuner (``Tuner.save``): its rows, not the live engine link
        (``on_tuning_start`` attaches it again when the loaded tuner runs)."""
        state = dict(self.__dict__)
        state["results"] = list(self.results)
        state["_bridge"] = None
        return state

    def on_tuning_start(self, tuner: Any) -> None:
        self.csv_file = str(tuner.tuner_path / ST_RESULTS_DATAFRAME_FILENAME)
        self._bridge = getattr(tuner, "_bridge", None)
        if self._bridge is not None:  # the rows the tuner writes into results.csv.zip
            self.results = self._bridge.rows
            self.save_results_at_frequency = lambda: None  # the tuner writes them
        else:
            self.save_results_at_frequency = _Every(self.store_results,
                                                    tuner.results_update_interval)
        if self.add_wallclock_time:
            self._start_time_stamp = perf_counter()
        if self._extra_results_composer is not None:
            self._tuner = tuner

    def _set_time_fields(self, result: dict[str, Any]) -> None:
        if self._start_time_stamp is not None and ST_TUNER_TIME not in result:
            result[ST_TUNER_TIME] = perf_counter() - self._start_time_stamp

    def _append_extra_results(self, result: dict[str, Any]) -> None:
        if self._extra_results_composer is not None:
            extra = self._extra_results_composer(self._tuner)
            if extra is not None:
                result.update(extra)

    def on_trial_result(self, trial: Trial, status: str, result: dict[str, Any],
                        decision: str) -> None:
        assert self.save_results_at_frequency is not None, (
            "on_tuning_start must always be called before on_trial_result.")
        if self._bridge is not None:
            # the tuner has just added this result's row (with its time, decision, status)
            row = next((r for r in reversed(self.results)
                        if r.get(ST_TRIAL_ID) == trial.trial_id), None)
            if row is not None:
                self._append_extra_results(row)
            return
        row = copy.copy(result)
        row[ST_DECISION] = decision
        row[ST_STATUS] = status
        row[ST_TRIAL_ID] = trial.trial_id
        for key in trial.config:
            row[f"config_{key}"] = trial.config[key]
        self._set_time_fields(row)
        self._append_extra_results(row)
        self.results.append(row)
        if self.csv_file is not None:
            self.save_results_at_frequency()

    def store_results(self) -> None:
        """Write the results to ``{tuner_path}/results.csv.zip``."""
        if self._bridge is not None:
            self._bridge.write_results()
        elif self.csv_file is not None:
            self.dataframe().to_csv(self.csv_file, index=False)

    def dataframe(self) -> Any:
        """The results as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.results)

    def on_tuning_end(self) -> None:
        self.store_results()
