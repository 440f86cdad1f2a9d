"""The link between Syne Tune's tuner loop and poptune's engine: one object that is both
the experiment's :class:`~poptune.stopper.Stopper` (it evaluates the stopping criterion on
each tick) and a :class:`~poptune.callbacks.Callback` (it keeps the ``TuningStatus`` and
Syne Tune's results table, ``results.csv.zip``, and calls Syne Tune ``TunerCallback``s)."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

from poptune.callbacks import Callback
from poptune.clock import current as current_clock
from poptune.result import AUTO_RESULT_KEYS
from poptune.stopper import Stopper
from poptune.syne_tune.stopping_criterion import TuningStatus
from poptune.syne_tune.tuner_callback import Trial as SyneTrial

RESULTS_FILE = "results.csv.zip"
#: the CSV's name inside ``results.csv.zip`` (as pandas names it for Syne Tune)
RESULTS_MEMBER = "results.csv"
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
                 resource: tuple[str, float] | None = None,
                 syne_callbacks: list[Any] | None = None, *,
                 status: TuningStatus | None = None, rows: list[dict[str, Any]] | None = None,
                 trials: dict[int, SyneTrial] | None = None,
                 scheduler_stops: Callable[[str], bool] | None = None,
                 scheduler_pauses: Callable[[str], bool] | None = None,
                 on_write: Callable[[], None] | None = None) -> None:
        """``status``, ``rows`` and ``trials`` continue an earlier run (a loaded or re-run
        tuner): its results stay in the table, its counts in the status, and the tuner time
        goes on from ``status.wallclock_time``. ``scheduler_stops(trial_id)`` tells whether a
        scheduler with no ``max_t`` (the median stopping rule) stopped that trial;
        ``scheduler_pauses(trial_id)`` whether the promotion variant of ASHA paused it at its
        latest result (that row's ``st_decision`` is ``"PAUSE"``); ``on_write`` is called
        after each write of ``results.csv.zip``."""
        #: ``(time_attr, max_t)`` of a stopping scheduler: a trial that ends below ``max_t``
        #: while tuning goes on was stopped by the scheduler (poptune's callbacks see both
        #: ends as ``on_trial_complete``)
        self.resource = resource
        self.stop_criterion = stop_criterion
        self.status = status if status is not None else TuningStatus(metric_names)
        #: tuner time spent by earlier runs (st_tuner_time goes on from it)
        self.elapsed = self.status.wallclock_time if status is not None else 0.0
        self.scheduler_stops = scheduler_stops
        self.scheduler_pauses = scheduler_pauses
        self.on_write = on_write
        self.max_failures = max_failures
        self.path = path
        self.trial_stop = dict(trial_stop or {})
        #: a trial whose ``time_attr`` reaches this ends with Syne Tune's STOP decision
        self.max_t = resource or next(iter(self.trial_stop.items()), None)
        self.update_interval = results_update_interval
        self.syne_callbacks = list(syne_callbacks or [])
        self.rows: list[dict[str, Any]] = rows if rows is not None else []
        self.start: float | None = None
        self.stopping = False
        #: Syne Tune's view of each trial, by trial number
        self.trials: dict[int, SyneTrial] = trials if trials is not None else {}
        #: poptune's trial objects that failed, in order (their logs are shown at the end)
        self.failed: list[Any] = []
        #: a trial that completed without reporting (Syne Tune's tuner raises on it)
        self.silent: Any = None
        self._reported: set[int] = set()
        self._last: dict[int, dict[str, Any]] = {}
        self._last_write = self.elapsed

    def __getstate__(self) -> dict[str, Any]:
        """poptune pickles its stopper and callbacks with the experiment: not the Syne Tune
        tuner that saves itself after each write, nor the scheduler's view of its stops."""
        state = dict(self.__dict__)
        state["on_write"] = state["scheduler_stops"] = state["scheduler_pauses"] = None
        return state

    # -- time --------------------------------------------------------------------------
    def _now(self) -> float:
        now = current_clock().time()
        if self.start is None:
            self.start = now
        return self.elapsed + now - self.start

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

    def _syne(self, hook: str, *args: Any, **kwargs: Any) -> None:
        for cb in self.syne_callbacks:
            method = getattr(cb, hook, None)
            if callable(method):
                method(*args, **kwargs)

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self._syne("on_loop_start")

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any,
                       **info: Any) -> None:
        number = trial_number(trial.trial_id)
        syne = SyneTrial(number, dict(trial.config or {}), datetime.now())
        if number not in self.trials:
            self.status.num_trials_started += 1
            self.trials[number] = syne
            self.status.set_status(number, "InProgress")
            self._syne("on_start_trial", syne)
        else:  # resumed (or restarted with a new config by PBT)
            self.trials[number].config = syne.config
            self._syne("on_resume_trial", self.trials[number])

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any,
                        result: dict[str, Any], **info: Any) -> None:
        number = trial_number(trial.trial_id)
        metrics = {k: v for k, v in result.items() if k not in _DROP}
        self._reported.add(number)
        self._last[number] = metrics
        self.status.on_result(number, metrics, dict(trial.config or {}))
        pauses = getattr(self, "scheduler_pauses", None)  # None in a bridge pickled before
        decision = "PAUSE" if pauses is not None and pauses(trial.trial_id) else "CONTINUE"
        row = dict(metrics, trial_id=number, st_tuner_time=self._now(), st_decision=decision,
                   st_status="InProgress")
        for key, value in (trial.config or {}).items():
            row[f"config_{key}"] = value
        self.rows.append(row)
        if number in self.trials:
            self.trials[number].config = dict(trial.config or {})
            self._syne("on_trial_result", trial=self.trials[number], status="InProgress",
                       result=dict(metrics), decision=decision)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any,
                          **info: Any) -> None:
        number = trial_number(trial.trial_id)
        last = trial.last_result or {}
        attr, max_t = self.max_t if self.max_t is not None else ("", float("inf"))
        reached = last.get(attr)
        at_max = isinstance(reached, (int, float)) and reached >= max_t
        if self.stopping:  # ended by the criterion: its rows stay as they were (Syne Tune)
            self.status.num_trials_stopped += 1
            self.status.set_status(number, "Stopped")
        elif (self.scheduler_stops is not None and self.scheduler_stops(trial.trial_id)) or (
                self.resource is not None and isinstance(reached, (int, float)) and not at_max):
            # stopped by the scheduler: Syne Tune records STOP on that result, and the
            # status it had when it was fetched
            self.status.num_trials_stopped += 1
            self.status.set_status(number, "Stopped")
            self._mark(number, "STOP", None)
        else:
            self.status.num_trials_completed += 1
            self.status.set_status(number, "Completed")
            # a scheduler stops a trial reaching max_t (Syne Tune: STOP on its last result)
            self._mark(number, "STOP" if at_max else None, "Completed")
            if number not in self._reported and self.silent is None:
                self.silent = trial
                self.stopping = True
            if number in self.trials and number in self._last:
                self._syne("on_trial_complete", self.trials[number], dict(self._last[number]))

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any,
                       **info: Any) -> None:
        number = trial_number(trial.trial_id)
        self.status.num_trials_failed += 1
        self.status.set_status(number, "Failed")
        self.failed.append(trial)
        self._mark(number, None, "Failed")

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if self.rows and self._now() - self._last_write >= self.update_interval:
            self.write_results()
        self._syne("on_loop_end")

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self.write_results()

    def _mark(self, number: int, decision: str | None, status: str | None) -> None:
        """Set the decision / status of trial ``number``'s last row (None: keep)."""
        for row in reversed(self.rows):
            if row["trial_id"] == number:
                if decision is not None:
                    row["st_decision"] = decision
                if status is not None:
                    row["st_status"] = status
                return

    def write_results(self) -> None:
        import pandas as pd

        self._last_write = self._now()
        os.makedirs(self.path, exist_ok=True)
        tmp = os.path.join(self.path, ".results.tmp.csv.zip")
        pd.DataFrame(self.rows).to_csv(
            tmp, index=False, compression={"method": "zip", "archive_name": RESULTS_MEMBER})
        os.replace(tmp, os.path.join(self.path, RESULTS_FILE))
        if self.on_write is not None:
            self.on_write()
