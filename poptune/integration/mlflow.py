"""MLflow tracking: ``MLflowLoggerCallback`` (driver side) and ``setup_mlflow`` (inside a
trainable), with Ray's names and semantics (``ray.air.integrations.mlflow``).

MLflow is imported when the callback is set up or ``setup_mlflow`` is called.

Example::

    from poptune.integration.mlflow import MLflowLoggerCallback, setup_mlflow

    # one MLflow run per trial, logged from the driver
    tune.RunConfig(callbacks=[MLflowLoggerCallback(tracking_uri="sqlite:///mlflow.db",
                                                   experiment_name="pbt")])

    # or MLflow's own API inside the trainable
    def train(config):
        mlflow = setup_mlflow(config, experiment_name="pbt", tracking_uri=uri,
                              create_experiment_if_not_exists=True)
        mlflow.log_metric("loss", 0.1, step=1)
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any, Iterable

from poptune._imports import require
from poptune.logger._base import LoggerCallback
from poptune.session import CHECKPOINT_DIR
from poptune.storage.trial_logs import flatten


if TYPE_CHECKING:
    from poptune.experiment.trial import Trial

__all__ = ["MLflowLoggerCallback", "setup_mlflow"]

logger = logging.getLogger(__name__)

_MAX_PARAMS_PER_BATCH = 100
_MAX_METRICS_PER_BATCH = 1000
_MAX_PARAM_LEN = 6000


class _NoopModule:
    """Returned to non-zero ranks: every attribute and call does nothing."""

    def __getattr__(self, item: str) -> "_NoopModule":
        return _NoopModule()

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        return None


def _param_str(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _MAX_PARAM_LEN else text[:_MAX_PARAM_LEN - 3] + "..."


def _metric_values(result: dict[str, Any]) -> dict[str, float]:
    """Flatten and keep what converts to float (strings and None are left out)."""
    out: dict[str, float] = {}
    for key, value in flatten(result).items():
        if value is None or isinstance(value, (str, bytes)):
            continue
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            continue
    return out


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _resolve_experiment(client: Any, experiment_id: str | None,
                        experiment_name: str | None, create: bool,
                        artifact_location: str | None = None) -> str:
    """Ray's order: id (argument, then ``MLFLOW_EXPERIMENT_ID``), then name (argument, then
    ``MLFLOW_EXPERIMENT_NAME``), then create by name when allowed."""
    from mlflow.exceptions import MlflowException

    experiment_id = experiment_id if experiment_id is not None else os.environ.get(
        "MLFLOW_EXPERIMENT_ID")
    if experiment_id is not None:
        try:
            if client.get_experiment(experiment_id) is not None:
                return str(experiment_id)
        except MlflowException:
            pass
    experiment_name = experiment_name if experiment_name is not None else os.environ.get(
        "MLFLOW_EXPERIMENT_NAME")
    if experiment_name:
        found = client.get_experiment_by_name(experiment_name)
        if found is not None:
            return str(found.experiment_id)
        if create:
            try:
                return str(client.create_experiment(experiment_name,
                                                    artifact_location=artifact_location))
            except MlflowException:  # another trial created it a moment ago
                found = client.get_experiment_by_name(experiment_name)
                if found is None:
                    raise
                return str(found.experiment_id)
    raise ValueError(
        f"MLflow experiment with id {experiment_id!r} or name {experiment_name!r} does not "
        "exist; create it first, or pass `experiment_name` with "
        "`create_experiment_if_not_exists=True`")


class MLflowLoggerCallback(LoggerCallback):
    """Log each trial as an MLflow run: config as params, every result as metrics.

    One run per trial (named after the trial, tagged ``trial_name`` plus ``tags``), created
    when the trial first starts. The flattened config is logged as params (MLflow params
    cannot change, so PBT's later values appear in the ``config/*`` metrics instead); every
    numeric result value is logged as a metric at step ``timesteps_total`` or
    ``training_iteration``; the run ends ``FINISHED`` or ``FAILED`` with the trial.

    Args:
        tracking_uri: where MLflow stores runs (``sqlite:///mlflow.db``, ``http://...``,
            ``file:///path/mlruns``). Default: MLflow's own default.
        registry_uri: the model registry URI.
        experiment_name: MLflow experiment to log into, created if missing. Default:
            ``MLFLOW_EXPERIMENT_NAME``/``MLFLOW_EXPERIMENT_ID``, else the poptune
            experiment's name (Ray raises instead).
        tags: extra tags for every run.
        tracking_token: sets ``MLFLOW_TRACKING_TOKEN`` for HTTP authentication.
        save_artifact: upload the trial directory as the run's artifacts when it ends.
        log_params_on_trial_end: log params when the trial ends (its final config) instead
            of when it starts.

    Example::

        tune.RunConfig(callbacks=[MLflowLoggerCallback(
            tracking_uri="sqlite:///mlflow.db", experiment_name="exp", save_artifact=True)])
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        registry_uri: str | None = None,
        experiment_name: str | None = None,
        tags: dict[str, Any] | None = None,
        tracking_token: str | None = None,
        save_artifact: bool = False,
        log_params_on_trial_end: bool = False,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri
        self.experiment_name = experiment_name
        self.tags = dict(tags or {})
        self.tracking_token = tracking_token
        self.should_save_artifact = save_artifact
        self.log_params_on_trial_end = log_params_on_trial_end
        self.experiment_id: str | None = None
        self._client: Any = None
        self._trial_runs: dict[str, str] = {}
        self._logged_params: dict[str, set[str]] = {}

    @property
    def _reads_no_files(self) -> bool:
        """Only an artifact upload reads the trial directory when a trial completes (the
        runner then waits for the trial files to be on disk)."""
        return not self.should_save_artifact

    # setup -------------------------------------------------------------------------------
    def setup(self, *args: Any, **kwargs: Any) -> None:
        require("mlflow", "MLflowLoggerCallback")
        from mlflow.tracking import MlflowClient

        if self.tracking_token:
            os.environ["MLFLOW_TRACKING_TOKEN"] = self.tracking_token
        self._client = MlflowClient(tracking_uri=self.tracking_uri,
                                    registry_uri=self.registry_uri)
        if self.experiment_name or os.environ.get("MLFLOW_EXPERIMENT_NAME") or os.environ.get(
                "MLFLOW_EXPERIMENT_ID"):
            self._set_experiment(self.experiment_name)

    def _set_experiment(self, name: str | None) -> None:
        self.experiment_id = _resolve_experiment(self._client, None, name, create=True)

    # LoggerCallback ----------------------------------------------------------------------
    def log_trial_start(self, trial: Trial) -> None:
        if self._client is None:
            self.setup()
        if self.experiment_id is None:  # default: the poptune experiment's name
            self._set_experiment(trial.experiment_dir_name or "poptune")
        run_id = self._trial_runs.get(trial.trial_id)
        if run_id is None:
            tags = {**{k: str(v) for k, v in self.tags.items()}, "trial_name": str(trial)}
            run = self._client.create_run(experiment_id=self.experiment_id, run_name=str(trial),
                                          tags=tags)
            run_id = self._trial_runs[trial.trial_id] = run.info.run_id
        if not self.log_params_on_trial_end:
            self._log_params(trial, run_id)

    def _log_params(self, trial: Trial, run_id: str) -> None:
        """Log config keys not logged yet (MLflow refuses to change a param's value)."""
        from mlflow.entities import Param

        done = self._logged_params.setdefault(trial.trial_id, set())
        params = [Param(k, _param_str(v)) for k, v in flatten(dict(trial.config)).items()
                  if k not in done]
        for chunk in _chunks(params, _MAX_PARAMS_PER_BATCH):
            self._client.log_batch(run_id, params=chunk)
        done.update(p.key for p in params)

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        run_id = self._trial_runs.get(trial.trial_id)
        if run_id is None:
            self.log_trial_start(trial)
            run_id = self._trial_runs[trial.trial_id]
        from mlflow.entities import Metric
        from mlflow.exceptions import MlflowException

        step = int(result.get("timesteps_total") or result.get("training_iteration") or 0)
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for k, v in _metric_values(result).items()]
        for chunk in _chunks(metrics, _MAX_METRICS_PER_BATCH):
            try:
                self._client.log_batch(run_id, metrics=chunk)
            except MlflowException:  # e.g. a key MLflow does not accept: log the rest
                for m in chunk:
                    try:
                        self._client.log_batch(run_id, metrics=[m])
                    except MlflowException as exc:
                        logger.debug("MLflow refused metric %r: %s", m.key, exc)

    def _save_trial_dir(self, run_id: str, path: str) -> None:
        """The trial directory's files as the run's artifacts, without its checkpoint
        directories (Ray's trial dir holds none: they go to the storage path), which can
        be gigabytes of model weights."""
        for entry in sorted(os.scandir(path), key=lambda e: e.name):
            if entry.is_dir():
                if not CHECKPOINT_DIR.fullmatch(entry.name):
                    self._client.log_artifacts(run_id, entry.path, artifact_path=entry.name)
            elif entry.is_file():
                self._client.log_artifact(run_id, entry.path)

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        run_id = self._trial_runs.get(trial.trial_id)
        if run_id is None:
            return
        if self.should_save_artifact and os.path.isdir(trial.local_path):
            self._save_trial_dir(run_id, trial.local_path)
        if self.log_params_on_trial_end:
            self._log_params(trial, run_id)
        self._client.set_terminated(run_id, status="FAILED" if failed else "FINISHED")
        if trial.status.is_finished():  # a retried trial keeps logging into the same run
            self._trial_runs.pop(trial.trial_id, None)
            self._logged_params.pop(trial.trial_id, None)


# ------------------------------------------------------------------------------------------
#: the run setup_mlflow started in this process, and the trial launch it belongs to
_OWNED_RUN: dict[str, Any] = {}


def _end_owned_run(mlflow: Any, run_id: str, failed: bool) -> None:
    """End ``run_id`` when its trial ends, if it is still the active run: ``FAILED`` when the
    trial failed (the worker process goes on to other trials)."""
    active = mlflow.active_run()
    if active is not None and active.info.run_id == run_id:
        mlflow.end_run(status="FAILED" if failed else "FINISHED")
    if _OWNED_RUN.get("run") == run_id:
        _OWNED_RUN.clear()


def setup_mlflow(
    config: dict[str, Any] | None = None,
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
    experiment_id: str | None = None,
    experiment_name: str | None = None,
    tracking_token: str | None = None,
    artifact_location: str | None = None,
    run_name: str | None = None,
    create_experiment_if_not_exists: bool = False,
    tags: dict[str, Any] | None = None,
    rank_zero_only: bool = True,
) -> Any:
    """Start an MLflow run for this trial and return the ``mlflow`` module (Ray's semantics).

    Call it inside a trainable. The experiment is found by ``experiment_id``, then
    ``experiment_name`` (defaults: the trial id, then the trial name, as in Ray; the
    ``MLFLOW_EXPERIMENT_ID``/``_NAME`` variables also count) and created only when
    ``create_experiment_if_not_exists``. The run (named ``run_name``, default the experiment
    name) becomes MLflow's active run, and ``config`` is logged as its params. Started in a
    trial, the run ends when the trial does (``FINISHED``, or ``FAILED`` if it raised).

    Args:
        config: logged as params (flattened).
        tracking_uri: MLflow tracking URI; ``registry_uri``: model registry URI.
        experiment_id: an existing experiment's id; ``experiment_name``: its name.
        tracking_token: sets ``MLFLOW_TRACKING_TOKEN``.
        artifact_location: for a newly created experiment.
        run_name: the run's name. ``tags``: the run's tags.
        create_experiment_if_not_exists: create ``experiment_name`` if it is missing.
        rank_zero_only: in distributed training, return a no-op module on other ranks.

    Example::

        def train(config):
            mlflow = setup_mlflow(config, experiment_name="exp", tracking_uri=uri,
                                  create_experiment_if_not_exists=True)
            for step in range(3):
                mlflow.log_metric("loss", 1 / (step + 1), step=step)
                tune.report({"loss": 1 / (step + 1)})
    """
    mlflow = require("mlflow", "setup_mlflow")
    from mlflow.tracking import MlflowClient

    from poptune import session as _session

    trial_id = trial_name = None
    launch: Any = None  # one trial launch = one session object = one run, as in Ray
    if _session._session is not None:
        launch = (id(_session._session), _session._session.context.trial_id)
        ctx = _session.get_context()
        if rank_zero_only and ctx.get_world_rank() != 0:
            return _NoopModule()
        trial_id, trial_name = ctx.get_trial_id(), ctx.get_trial_name()
    experiment_id = experiment_id or trial_id
    experiment_name = experiment_name or trial_name
    if tracking_token:
        os.environ["MLFLOW_TRACKING_TOKEN"] = tracking_token
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
    exp_id = _resolve_experiment(client, experiment_id, experiment_name,
                                 create_experiment_if_not_exists, artifact_location)

    active = mlflow.active_run()
    if active is not None and active.info.run_id == _OWNED_RUN.get("run") \
            and _OWNED_RUN.get("launch") != launch:
        mlflow.end_run()  # left over from an earlier trial launch in this reused worker
        active = None
    if active is None:
        run_tags = {k: str(v) for k, v in (tags or {}).items()}
        if trial_id is not None:
            run_tags.setdefault("trial_id", trial_id)
        active = mlflow.start_run(run_name=run_name or experiment_name, experiment_id=exp_id,
                                  tags=run_tags)
        _OWNED_RUN.update(launch=launch, run=active.info.run_id)
        _session.at_trial_end(lambda failed: _end_owned_run(mlflow, active.info.run_id, failed))
    if config:
        from mlflow.exceptions import MlflowException

        try:
            mlflow.log_params({k: _param_str(v) for k, v in flatten(dict(config)).items()})
        except MlflowException as exc:  # a param of this run logged before with another value
            logger.warning("setup_mlflow could not log the config as params: %s", exc)
    return mlflow
