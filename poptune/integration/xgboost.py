"""XGBoost callbacks that report to poptune and checkpoint the booster (Ray's
``ray.tune.integration.xgboost`` names, with ``ray.train.xgboost.RayTrainReportCallback``'s
semantics).

Metrics are XGBoost's evaluation log flattened with ``-``: ``evals=[(dtest, "test")]`` with
``eval_metric=["logloss", "error"]`` reports ``test-logloss`` and ``test-error`` after every
boosting round (one ``training_iteration`` per round). XGBoost is imported the first time a
class is used.

Example (inside a trainable)::

    import xgboost as xgb
    from poptune.integration.xgboost import TuneReportCheckpointCallback

    def train(config):
        xgb.train(config, dtrain, evals=[(dtest, "test")], verbose_eval=False,
                  callbacks=[TuneReportCheckpointCallback(frequency=1)])

    # later: booster = TuneReportCheckpointCallback.get_model(result.checkpoint)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable

from poptune._imports import require
from poptune.checkpoint import Checkpoint
from poptune.exceptions import TuneConfigError
from poptune.integration import (
    MetricsSpec,
    _normalize_metrics,
    _select_metrics,
    report_with_booster,
)
from poptune.storage.trial_logs import flatten

__all__ = ["TuneReportCheckpointCallback", "TuneReportCallback"]

PostprocessFn = Callable[[dict[str, Any]], dict[str, Any]]
CHECKPOINT_NAME = "model.ubj"


def _last_values(evals_log: Any) -> dict[str, Any]:
    """``{"test": {"logloss": [.., 0.3]}}`` → ``{"test-logloss": 0.3}``."""
    flat = flatten(dict(evals_log or {}), delimiter="-")
    return {k: (v[-1] if isinstance(v, (list, tuple)) and v else v) for k, v in flat.items()}


class _XGBoostReportCallback:
    """Report XGBoost's evaluation results each round; save the booster as configured.

    Args:
        metrics: what to report. ``None``: every evaluation result. A str or list: those
            flattened keys (``"test-logloss"``). A dict: ``{reported_name: xgboost_key}``.
        filename: the booster file in the checkpoint (``model.ubj``; ``.json`` also works).
        frequency: save a checkpoint every ``frequency`` rounds (0: only at the end).
        checkpoint_at_end: also save after the last round (one extra result carries it,
            as in Ray, unless the last round was already checkpointed).
        results_postprocessing_fn: called with the flattened dict before it is reported,
            e.g. to average the ``(mean, std)`` pairs of ``xgboost.cv``.

    Example::

        cb = TuneReportCheckpointCallback(metrics={"loss": "test-logloss"}, frequency=5)
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
        super().__init__()  # xgboost.callback.TrainingCallback
        if isinstance(frequency, bool) or not isinstance(frequency, int) or frequency < 0:
            raise TuneConfigError(f"`frequency` must be an int >= 0, got {frequency!r}")
        if not isinstance(filename, str) or not filename or os.path.isabs(filename):
            raise TuneConfigError(f"`filename` must be a relative file name, got {filename!r}")
        self._metrics = _normalize_metrics(metrics)
        self._filename = filename
        self._frequency = frequency
        self._checkpoint_at_end = bool(checkpoint_at_end)
        self._results_postprocessing_fn = results_postprocessing_fn
        self._evals_log: Any = None
        self._last_checkpoint_iteration: int | None = None

    @classmethod
    def get_model(cls, checkpoint: Checkpoint, filename: str = CHECKPOINT_NAME) -> Any:
        """Load the ``xgboost.Booster`` a callback saved into ``checkpoint``."""
        xgb = require("xgboost", "loading an XGBoost checkpoint")
        with checkpoint.as_directory() as path:
            booster = xgb.Booster()
            booster.load_model(os.path.join(path, filename))
            return booster

    def _report_dict(self, evals_log: Any) -> dict[str, Any]:
        out = _select_metrics(self._metrics, _last_values(evals_log))
        if self._results_postprocessing_fn is not None:
            out = dict(self._results_postprocessing_fn(out))
        return out

    def _save_and_report(self, metrics: dict[str, Any], model: Any) -> None:
        report_with_booster(metrics, model, self._filename, "xgboost")

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        """Called by XGBoost after each round; returns False (never stops training)."""
        from poptune.session import report

        self._evals_log = evals_log
        metrics = self._report_dict(evals_log)
        if self._frequency and (epoch + 1) % self._frequency == 0:
            self._last_checkpoint_iteration = epoch
            self._save_and_report(metrics, model)
        else:
            report(metrics)
        return False

    def after_training(self, model: Any) -> Any:
        """Called by XGBoost at the end; saves the final booster when asked to."""
        if not self._checkpoint_at_end:
            return model
        rounds = model.num_boosted_rounds() if hasattr(model, "num_boosted_rounds") else None
        if self._last_checkpoint_iteration is not None and rounds is not None \
                and rounds - 1 == self._last_checkpoint_iteration:
            return model  # the last round is already checkpointed
        metrics = self._report_dict(self._evals_log) if self._evals_log else {}
        self._save_and_report(metrics, model)
        return model


class _XGBoostTuneReportCallback(_XGBoostReportCallback):
    """Report XGBoost's evaluation results each round, without checkpoints (Ray's older
    ``TuneReportCallback``; works with ``xgboost.cv``).

    Example::

        xgb.cv(config, dtrain, callbacks=[TuneReportCallback(
            results_postprocessing_fn=lambda d: {k: v[0] for k, v in d.items()})])
    """

    def __init__(self, metrics: MetricsSpec = None,
                 results_postprocessing_fn: PostprocessFn | None = None) -> None:
        super().__init__(metrics=metrics, frequency=0, checkpoint_at_end=False,
                         results_postprocessing_fn=results_postprocessing_fn)


_MIXINS: dict[str, type] = {
    "TuneReportCheckpointCallback": _XGBoostReportCallback,
    "TuneReportCallback": _XGBoostTuneReportCallback,
}

if TYPE_CHECKING:  # the real classes also derive from xgboost.callback.TrainingCallback
    TuneReportCheckpointCallback = _XGBoostReportCallback
    TuneReportCallback = _XGBoostTuneReportCallback


def __getattr__(name: str) -> type:
    """Build the public classes on first use, deriving from XGBoost's ``TrainingCallback``."""
    mixin = _MIXINS.get(name)
    if mixin is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    callback = require("xgboost.callback", name)
    cls = type(name, (mixin, callback.TrainingCallback),
               {"__module__": __name__, "__qualname__": name, "__doc__": mixin.__doc__})
    globals()[name] = cls
    return cls


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
