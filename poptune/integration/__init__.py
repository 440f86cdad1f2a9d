"""Framework integrations, at Ray Tune's module paths (``ray.tune.integration.X`` →
``poptune.integration.X``).

- :mod:`poptune.integration.keras`: ``TuneReportCallback``, ``TuneReportCheckpointCallback``
  (Keras 3, any backend; no TensorFlow needed).
- :mod:`poptune.integration.xgboost`: ``TuneReportCheckpointCallback``, ``TuneReportCallback``.
- :mod:`poptune.integration.lightgbm`: ``TuneReportCheckpointCallback``, ``TuneReportCallback``.
- :mod:`poptune.integration.pytorch_lightning`: ``TuneReportCheckpointCallback``,
  ``TuneReportCallback``, ``TuneCallback`` (``lightning.pytorch`` or ``pytorch_lightning``).
- :mod:`poptune.integration.mlflow`: ``MLflowLoggerCallback``, ``setup_mlflow``.
- :mod:`poptune.integration.wandb`: ``WandbLoggerCallback``, ``setup_wandb`` (Weights &
  Biases; also at Ray's path, :mod:`poptune.air.integrations.wandb`).
- :mod:`poptune.integration.comet`: ``CometLoggerCallback`` (also at Ray's paths,
  :mod:`poptune.air.integrations.comet` and :mod:`poptune.logger.comet`).

Each module imports its framework only when a class is used, and says which ``pip install``
provides it when it is missing.

Example:
    >>> from poptune.integration import _select_metrics
    >>> _select_metrics({"mean_accuracy": "accuracy"}, {"accuracy": 0.9, "loss": 0.3})
    {'mean_accuracy': 0.9}
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence, Union

from poptune.exceptions import TuneConfigError

#: ``metrics`` as Ray accepts it: None (everything), one name, names, or {reported: source}.
MetricsSpec = Union[None, str, Sequence[str], Mapping[str, str]]


class MetricNotFoundError(TuneConfigError, KeyError):
    """A name in ``metrics`` is not among the values the framework logged."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def _normalize_metrics(metrics: MetricsSpec) -> dict[str, str] | None:
    """``None``/empty → None (report all); str/list → identity mapping; dict → itself."""
    if not metrics:
        return None
    if isinstance(metrics, str):
        return {metrics: metrics}
    if isinstance(metrics, Mapping):
        return {str(k): str(v) for k, v in metrics.items()}
    if isinstance(metrics, (list, tuple)):
        return {str(m): str(m) for m in metrics}
    raise TypeError(
        f"`metrics` must be None, a str, a list of str or a dict of reported name to logged "
        f"name, got {metrics!r} of type {type(metrics).__name__}")


def _to_python(value: Any) -> Any:
    """numpy / torch scalars → Python numbers; anything else unchanged."""
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except (ValueError, TypeError, RuntimeError):
            return value
    return value


def _select_metrics(metrics: MetricsSpec | dict[str, str] | None,
                    logs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Pick and rename the logged values that ``metrics`` asks for (Ray's semantics)."""
    logs = dict(logs or {})
    mapping = metrics if isinstance(metrics, dict) else _normalize_metrics(metrics)
    if mapping is None:
        return {k: _to_python(v) for k, v in logs.items()}
    out: dict[str, Any] = {}
    for reported, source in mapping.items():
        if source not in logs:
            raise MetricNotFoundError(
                f"`metrics` asks for {source!r}, which is not among the logged values "
                f"{sorted(logs)}")
        out[reported] = _to_python(logs[source])
    return out


def report_with_booster(metrics: dict[str, Any], model: Any, filename: str, library: str) -> None:
    """Save a gradient-boosting ``model`` (anything with ``save_model``) as the checkpoint of
    this ``report``; shared by the XGBoost and LightGBM callbacks."""
    import os
    import shutil
    import tempfile

    from poptune.checkpoint import Checkpoint
    from poptune.session import report

    if not hasattr(model, "save_model"):
        raise TuneConfigError(
            f"checkpoints need one {library}.Booster; {library}.cv trains several boosters, so "
            "use TuneReportCallback (or frequency=0, checkpoint_at_end=False) with it")
    tmp = tempfile.mkdtemp(prefix=f"poptune_{library}_ckpt_")
    try:
        model.save_model(os.path.join(tmp, filename))
        report(metrics, checkpoint=Checkpoint.from_directory(tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
