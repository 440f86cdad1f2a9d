"""LightGBM callbacks that report to poptune and checkpoint the booster (Ray's
``ray.tune.integration.lightgbm`` names, with ``ray.train.lightgbm.RayTrainReportCallback``'s
semantics).

Metrics are LightGBM's evaluation results as ``"<data name>-<metric>"`` (``valid_0-binary_logloss``;
``lightgbm.cv`` gives ``valid-binary_logloss-mean`` and ``-stdv``), reported once per boosting
round. LightGBM is imported only to load a checkpoint.

Example (inside a trainable)::

    import lightgbm as lgb
    from poptune.integration.lightgbm import TuneReportCheckpointCallback

    def train(config):
        lgb.train(config, train_set, valid_sets=[valid_set], valid_names=["eval"],
                  callbacks=[TuneReportCheckpointCallback({"loss": "eval-binary_logloss"})])

    # later: booster = TuneReportCheckpointCallback.get_model(result.checkpoint)
"""

from __future__ import annotations

import os
from typing import Any, Callable

from poptune._imports import require
from poptune.checkpoint import Checkpoint
from poptune.exceptions import TuneConfigError
from poptune.integration import (
    MetricsSpec,
    _normalize_metrics,
    _select_metrics,
    report_with_booster,
)

__all__ = ["TuneReportCheckpointCallback", "TuneReportCallback"]

PostprocessFn = Callable[[dict[str, Any]], dict[str, Any]]
CHECKPOINT_NAME = "model.txt"


def _eval_results(env: Any) -> dict[str, Any]:
    """LightGBM's ``evaluation_result_list`` as ``{"valid_0-auc": 0.9, ...}``."""
    out: dict[str, Any] = {}
    for entry in env.evaluation_result_list or ():
        data_name, eval_name, value = entry[0], entry[1], entry[2]
        if len(entry) > 4:  # lightgbm.cv: (data, metric, mean, higher_better, stdv)
            out[f"{data_name}-{eval_name}-mean"] = value
            out[f"{data_name}-{eval_name}-stdv"] = entry[4]
        else:
            out[f"{data_name}-{eval_name}"] = value
    return out


class TuneReportCheckpointCallback:
    """Report LightGBM's evaluation results each round; save the booster as configured.

    Args:
        metrics: what to report. ``None``: every evaluation result. A str or list: those
            keys (``"valid_0-binary_logloss"``). A dict: ``{reported_name: lightgbm_key}``.
        filename: the booster file in the checkpoint (``model.txt``).
        frequency: save a checkpoint every ``frequency`` rounds (0: only at the end).
        checkpoint_at_end: save with the report of the last round
            (``num_boost_round`` reached; not after an early stop).
        results_postprocessing_fn: called with the dict before it is reported.

    Example:
        >>> cb = TuneReportCheckpointCallback({"loss": "valid_0-binary_logloss"}, frequency=5)
        >>> cb._frequency
        5
    """

    CHECKPOINT_NAME = CHECKPOINT_NAME

    def __init__(
        self,
        metrics: MetricsSpec = None,
        filename: str = CHECKPOINT_NAME,
        frequency: int = 0,
        checkpoint_at_end: bool = True,
        results_postprocessing_fn: PostprocessFn | None = None,
    ) -> None:
        if isinstance(frequency, bool) or not isinstance(frequency, int) or frequency < 0:
            raise TuneConfigError(f"`frequency` must be an int >= 0, got {frequency!r}")
        if not isinstance(filename, str) or not filename or os.path.isabs(filename):
            raise TuneConfigError(f"`filename` must be a relative file name, got {filename!r}")
        self._metrics = _normalize_metrics(metrics)
        self._filename = filename
        self._frequency = frequency
        self._checkpoint_at_end = bool(checkpoint_at_end)
        self._results_postprocessing_fn = results_postprocessing_fn

    @classmethod
    def get_model(cls, checkpoint: Checkpoint, filename: str = CHECKPOINT_NAME) -> Any:
        """Load the ``lightgbm.Booster`` a callback saved into ``checkpoint``."""
        lgb = require("lightgbm", "loading a LightGBM checkpoint")
        with checkpoint.as_directory() as path:
            return lgb.Booster(model_file=os.path.join(path, filename))

    def _report_dict(self, env: Any) -> dict[str, Any]:
        out = _select_metrics(self._metrics, _eval_results(env))
        if self._results_postprocessing_fn is not None:
            out = dict(self._results_postprocessing_fn(out))
        return out

    def _save_and_report(self, metrics: dict[str, Any], model: Any) -> None:
        report_with_booster(metrics, model, self._filename, "lightgbm")

    def __call__(self, env: Any) -> None:
        """Called by LightGBM after each round with its ``CallbackEnv``."""
        from poptune.session import report

        metrics = self._report_dict(env)
        last = env.iteration == env.end_iteration - 1
        due = (self._checkpoint_at_end and last) or (
            self._frequency > 0 and (env.iteration + 1) % self._frequency == 0)
        if due:
            self._save_and_report(metrics, env.model)
        else:
            report(metrics)


class TuneReportCallback(TuneReportCheckpointCallback):
    """Report LightGBM's evaluation results each round, without checkpoints (Ray's older
    ``TuneReportCallback``; works with ``lightgbm.cv``).

    Example:
        >>> TuneReportCallback("valid_0-auc")._checkpoint_at_end
        False
    """

    def __init__(self, metrics: MetricsSpec = None,
                 results_postprocessing_fn: PostprocessFn | None = None) -> None:
        super().__init__(metrics=metrics, frequency=0, checkpoint_at_end=False,
                         results_postprocessing_fn=results_postprocessing_fn)
