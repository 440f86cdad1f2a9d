"""Syne Tune's ``TensorboardCallback``: the whole experiment in one TensorBoard log,
``<tuner_path>/tensorboard_output``, written with tensorboardX as Syne Tune writes it.

For each result, at the global step ``i`` (results counted over all trials) and with the
tuner time (``st_tuner_time``, seconds) as the event's wall time, as Syne Tune:

* every numeric reported value under its own name (but those in ``ignore_metrics``);
* with ``target_metric``: its best value so far under its name, and each hyperparameter
  of the best configuration so far as ``optimal_<name>`` (a scalar, or text);
* with ``log_hyperparameters``: the trial's hyperparameters (scalars, or text);
* ``runtime`` (the tuner time) and ``number_of_trials`` (trials seen so far).

poptune's own :class:`~poptune.logger.TBXLoggerCallback` (one log per trial, Ray's layout)
can be passed to the same tuner as well. Needs tensorboardX (``pip install tensorboardX``,
or ``pip install 'poptune[tensorboard]'``): without it the callback raises an ImportError
naming the package when tuning starts.

Example:
    >>> cb = TensorboardCallback(ignore_metrics=["st_worker_iter"], target_metric="acc",
    ...                          mode="max")
    >>> cb.metric_sign, cb.ignore_metrics
    (-1, ['st_worker_iter'])
"""

from __future__ import annotations

import logging
import os
from time import perf_counter
from typing import Any

from poptune._imports import require
from poptune._validation import bad_type, check_one_of
from poptune.logger.tensorboardx import _scalar
from poptune.syne_tune.constants import ST_TUNER_TIME
from poptune.syne_tune.tuner_callback import Trial, TunerCallback

__all__ = ["TensorboardCallback"]

logger = logging.getLogger("poptune.syne_tune")

#: the directory under the experiment's that the log goes to (as Syne Tune)
OUTPUT_DIR = "tensorboard_output"


class TensorboardCallback(TunerCallback):
    """Log every result of the experiment for TensorBoard (see the module docstring).

    Args:
        ignore_metrics: reported keys not to log (None: log all).
        target_metric: the metric whose best value so far (and the best configuration) is
            logged.
        mode: ``"min"`` (default) or ``"max"``: what best means for ``target_metric``.
        log_hyperparameters: also log each trial's hyperparameters.
    """

    def __init__(self, ignore_metrics: list[str] | None = None,
                 target_metric: str | None = None, mode: str | None = None,
                 log_hyperparameters: bool = True) -> None:
        if mode is None:
            mode = "min"
        check_one_of("mode", mode, ("min", "max"))
        if ignore_metrics is not None and (isinstance(ignore_metrics, str) or not all(
                isinstance(m, str) for m in ignore_metrics)):
            raise bad_type("ignore_metrics", ignore_metrics, "a list of metric names or None")
        if target_metric is not None and not isinstance(target_metric, str):
            raise bad_type("target_metric", target_metric, "a metric name (str) or None")
        self.ignore_metrics = list(ignore_metrics or [])
        self.target_metric = target_metric
        self.metric_sign = -1 if mode == "max" else 1
        self.log_hyperparameters = log_hyperparameters
        self.results: list[dict[str, Any]] = []
        self.curr_best_value: float | None = None
        self.curr_best_config: dict[str, Any] | None = None
        self.trial_ids: set[int] = set()
        self.iter = 0
        self.output_path: str | None = None
        self.writer: Any = None
        self.start_time_stamp: float | None = None
        self._tuner: Any = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with its tuner (``Tuner.save``): not the open writer nor the tuner."""
        state = dict(self.__dict__)
        state["writer"] = state["_tuner"] = None
        return state

    def on_tuning_start(self, tuner: Any) -> None:
        summary_writer = require("tensorboardX", "TensorboardCallback").SummaryWriter
        self.output_path = os.path.join(str(tuner.tuner_path), OUTPUT_DIR)
        self.writer = summary_writer(self.output_path)
        self.iter = 0
        self.start_time_stamp = perf_counter()
        self._tuner = tuner
        logger.info("Logging tensorboard information at %s, to visualize results, run\n"
                    "tensorboard --logdir %s", self.output_path, self.output_path)

    def _tuner_time(self, result: dict[str, Any]) -> float:
        """``st_tuner_time``: the result's, else the poptune tuner's clock (simulated time
        too), else the time since tuning started."""
        if isinstance(result.get(ST_TUNER_TIME), (int, float)):
            return float(result[ST_TUNER_TIME])
        bridge = getattr(self._tuner, "_bridge", None)
        if bridge is not None:
            return float(bridge._now())
        assert self.start_time_stamp is not None
        return perf_counter() - self.start_time_stamp

    def _add(self, tag: str, value: Any, walltime: float) -> None:
        number = _scalar(value)
        if number is not None:
            self.writer.add_scalar(tag, number, self.iter, walltime)
        else:
            self.writer.add_text(tag, str(value), self.iter, walltime)

    def on_trial_result(self, trial: Trial, status: str, result: dict[str, Any],
                        decision: str) -> None:
        if self.writer is None:
            raise RuntimeError("TensorboardCallback: on_tuning_start must be called before "
                               "on_trial_result")
        walltime = self._tuner_time(result)
        if self.target_metric is not None:
            if self.target_metric not in result:
                raise KeyError(f"TensorboardCallback(target_metric={self.target_metric!r}): "
                               f"trial {trial.trial_id} did not report it (it reported "
                               f"{sorted(result)})")
            new = self.metric_sign * float(result[self.target_metric])
            if self.curr_best_value is None or new < self.curr_best_value:
                self.curr_best_value, self.curr_best_config = new, dict(trial.config)
            self.writer.add_scalar(self.target_metric, self.metric_sign * self.curr_best_value,
                                   self.iter, walltime)
            for key, value in (self.curr_best_config or {}).items():
                self._add(f"optimal_{key}", value, walltime)
        for key, value in result.items():
            if key not in self.ignore_metrics and _scalar(value) is not None:
                self.writer.add_scalar(key, _scalar(value), self.iter, walltime)
        if self.log_hyperparameters:
            for key, value in trial.config.items():
                self._add(key, value, walltime)
        self.writer.add_scalar("runtime", walltime, self.iter, walltime)
        self.trial_ids.add(trial.trial_id)
        self.writer.add_scalar("number_of_trials", len(self.trial_ids), self.iter,
                               walltime=walltime, display_name="total number of trials")
        self.iter += 1

    def on_tuning_end(self) -> None:
        if self.writer is not None:
            self.writer.close()
        logger.info("Tensorboard information has been logged at %s, to visualize results, "
                    "run\ntensorboard --logdir %s", self.output_path, self.output_path)
