"""The link between Syne Tune's tuner loop and poptune's engine: one object that is both
the experiment's :class:`~poptune.stopper.Stopper` (it evaluates the stopping criterion on
each tick) and a :class:`~poptune.callbacks.Callback` (it keeps the ``TuningStatus`` and
Syne Tune's results table, ``results.csv.zip``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from poptune.callbacks import Callback
from poptune.clock import current as current_clock
from poptune.result import AUTO_RESULT_KEYS
from poptune.stopper import Stopper
from poptune.syne_tune.stopping_criterion import TuningStatus

RESULTS_FILE = "results.csv.zip"
METADATA_FILE = "metadata.json"
_DROP = AUTO_RESULT_KEYS | {"config"}


def trial_number(trial_id: str) -> int:
    """poptune's ``"3f2a1_00007"`` -> Syne Tune's ``7``."""
    try:
        return int(str(trial_id).rsplit("_", 1)[-1])
    except ValueError:
        return abs(hash(trial_id)) % 10**9


class Bridge(Stopper, Callback):
    #: it keeps Syne Tune's table from the results and reads no trial file: the runner need
    #: not wait for the trial files before its ``on_trial_complete``
    _reads_no_files = True

    def __init__(self, stop_criterion: Callable[[TuningStatus], bool], metric_names: list[str],
                 max_failures: int, path: str, trial_stop: dict[str, float] | None = None,
                 results_update_interval: float = 10.0,
                 resource: tuple[str, float] | None = None) -> None:
        #: ``(time_attr, max_t)`` of a stopping scheduler: a trial that ends below ``max_t``
        #: while tuning goes on was stopped by the scheduler (poptune's callbacks see both
        #: ends as ``on_trial_complete``)
        self.resource = resource
        self.stop_criterion = stop_criterion
        self.status = TuningStatus(metric_names)
        self.max_failures = max_failures
        self.path = path
        self.trial_stop = dict(trial_stop or {})
        self.update_interval = results_update_interval
        self.rows: list[dict[str, Any]] = []
        self.start: float | None = None
        self.stopping = False
        self._started: set[str] = set()
        self._last_write = 0.0

    # -- time --------------------------------------------------------------------------
    def _now(self) -> float:
        now = current_clock().time()
        if self.start is None:
            self.start = now
        return now - self.start

    # -- Stopper -----------------------------------------------------------------------
    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return any(isinstance(result.get(k), (int, float)) and result[k] >= v
                   for k, v in self.trial_stop.items())

    def stop_all(self) -> bool:
        if self.stopping:
            return True
        self.status.wallclock_time = self._now()
        self.stopping = bool(self.stop_criterion(self.status)) or (
            self.status.num_trials_failed > self.max_failures)
        return self.stopping

    # -- Callback ----------------------------------------------------------------------
    def setup(self, stop: Any = None, num_samples: int | None = None,
              total_num_samples: int | None = None, **info: Any) -> None:
        self._now()

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any,
                       **info: Any) -> None:
        if trial.trial_id not in self._started:
            self._started.add(trial.trial_id)
            self.status.num_trials_started += 1

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any,
                        result: dict[str, Any], **info: Any) -> None:
        number = trial_number(trial.trial_id)
        row = {k: v for k, v in result.items() if k not in _DROP}
        self.status.on_result(number, row)
        row.update(trial_id=number, st_tuner_time=self._now(), st_decision="CONTINUE",
                   st_status="InProgress")
        for key, value in (trial.config or {}).items():
            row[f"config_{key}"] = value
        self.rows.append(row)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any,
                          **info: Any) -> None:
        last = trial.last_result or {}
        by_scheduler = False
        if self.resource is not None:
            reached = last.get(self.resource[0])
            by_scheduler = isinstance(reached, (int, float)) and reached < self.resource[1]
        if self.stopping:
            self.status.num_trials_stopped += 1
            self._mark(trial.trial_id, "CONTINUE", "Stopped")
        elif by_scheduler:
            self.status.num_trials_stopped += 1
            self._mark(trial.trial_id, "STOP", "Stopped")
        else:
            self.status.num_trials_completed += 1
            self._mark(trial.trial_id, "CONTINUE", "Completed")

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any,
                       **info: Any) -> None:
        self.status.num_trials_failed += 1
        self._mark(trial.trial_id, "CONTINUE", "Failed")

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if self.rows and self._now() - self._last_write >= self.update_interval:
            self.write_results()

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self.write_results()

    def _mark(self, trial_id: str, decision: str, status: str) -> None:
        number = trial_number(trial_id)
        for row in reversed(self.rows):
            if row["trial_id"] == number:
                row["st_decision"], row["st_status"] = decision, status
                return

    def write_results(self) -> None:
        import pandas as pd

        self._last_write = self._now()
        os.makedirs(self.path, exist_ok=True)
        tmp = os.path.join(self.path, ".results.tmp.csv.zip")
        pd.DataFrame(self.rows).to_csv(tmp, index=False)
        os.replace(tmp, os.path.join(self.path, RESULTS_FILE))
