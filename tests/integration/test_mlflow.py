"""poptune.integration.mlflow against a real local MLflow file store."""

from __future__ import annotations

import os

import pytest

mlflow = pytest.importorskip("mlflow")

from mlflow.tracking import MlflowClient  # noqa: E402

import poptune as tune  # noqa: E402
from poptune.integration.mlflow import MLflowLoggerCallback, setup_mlflow  # noqa: E402


@pytest.fixture
def uri(tmp_path, monkeypatch):
    # MLflow 3 refuses the file store unless asked; trial workers inherit the variable
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    for var in ("MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID", "MLFLOW_TRACKING_URI",
                "MLFLOW_RUN_ID"):
        monkeypatch.delenv(var, raising=False)
    return f"file://{tmp_path}/mlruns"


def objective(config):
    for i in range(3):
        if config.get("fail") and i == 2:
            raise RuntimeError("boom")
        tune.report({"score": config["x"] * (i + 1), "nested": {"m": i}, "label": "text"})


def _fit(tmp_path, trainable, param_space, callbacks=(), name="mlf"):
    return tune.Tuner(
        trainable, param_space=param_space,
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path / "results"),
                                  verbose=0, callbacks=list(callbacks)),
    ).fit()


def _runs(client, experiment_name):
    exp = client.get_experiment_by_name(experiment_name)
    assert exp is not None, experiment_name
    return client.search_runs([exp.experiment_id])


def test_logger_callback_one_run_per_trial_with_params_metrics_and_status(tmp_path, uri):
    cb = MLflowLoggerCallback(tracking_uri=uri, experiment_name="pbt-exp",
                              tags={"owner": "me"})
    grid = _fit(tmp_path, objective, {"x": tune.grid_search([1, 2]), "fail": False,
                                      "opt": {"lr": 0.1}}, [cb])
    grid_fail = _fit(tmp_path, objective, {"x": 3, "fail": True}, [cb], name="mlf2")
    assert grid.num_errors == 0 and grid_fail.num_errors == 1
    client = MlflowClient(tracking_uri=uri)
    runs = {r.info.run_name: r for r in _runs(client, "pbt-exp")}
    assert len(runs) == 3
    for result in grid:
        trial_name = next(n for n in runs if result.metrics["trial_id"] in n)
        run = runs[trial_name]
        assert run.info.status == "FINISHED"
        assert run.data.tags["trial_name"] == trial_name and run.data.tags["owner"] == "me"
        assert run.data.params["x"] == str(result.config["x"])
        assert run.data.params["opt/lr"] == "0.1" and run.data.params["fail"] == "False"
        history = client.get_metric_history(run.info.run_id, "score")
        assert [(m.step, m.value) for m in history] == [
            (i + 1, float(result.config["x"] * (i + 1))) for i in range(3)]
        assert client.get_metric_history(run.info.run_id, "nested/m")[-1].value == 2.0
        assert "label" not in run.data.metrics  # strings are not metrics
        assert run.data.metrics["config/x"] == result.config["x"]
    failed = [r for r in runs.values() if r.info.status == "FAILED"]
    assert len(failed) == 1 and failed[0].data.params["x"] == "3"
    assert [m.step for m in client.get_metric_history(failed[0].info.run_id, "score")] == [1, 2]


def checkpointing_objective(config):
    import tempfile

    for i in range(3):
        d = tempfile.mkdtemp()
        with open(os.path.join(d, "w.txt"), "w") as f:
            f.write(str(i))
        os.makedirs("own_dir", exist_ok=True)  # the trial's working dir is its directory
        with open(os.path.join("own_dir", "notes.txt"), "w") as f:
            f.write("kept")
        if config.get("fail") and i == 1:
            raise RuntimeError("boom")
        tune.report({"score": i}, checkpoint=tune.Checkpoint.from_directory(d))


def test_logger_callback_saves_the_trial_dir_as_artifacts(tmp_path, uri):
    cb = MLflowLoggerCallback(tracking_uri=uri, save_artifact=True)  # default experiment name
    _fit(tmp_path, checkpointing_objective, {"x": 1}, [cb], name="named-by-tune")
    client = MlflowClient(tracking_uri=uri)
    (run,) = _runs(client, "named-by-tune")
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"params.json", "result.json", "progress.csv", "own_dir"} <= names
    assert not [n for n in names if n.startswith("checkpoint_")]  # not the model weights
    # a failed trial's run gets its result files too (they were still being written)
    cb = MLflowLoggerCallback(tracking_uri=uri, save_artifact=True)
    _fit(tmp_path, checkpointing_objective, {"x": 1, "fail": True}, [cb], name="failing")
    (failed,) = _runs(client, "failing")
    names = {a.path for a in client.list_artifacts(failed.info.run_id)}
    assert failed.info.status == "FAILED"
    assert {"params.json", "result.json", "progress.csv", "error.txt"} <= names
    # uploaded once the trial files were complete (the runner waits for them: it reads them)
    assert not cb._reads_no_files and MLflowLoggerCallback(tracking_uri=uri)._reads_no_files
    local = client.download_artifacts(run.info.run_id, "progress.csv", str(tmp_path / "dl"))
    with open(local) as f:
        assert len(f.read().splitlines()) == 1 + 3


def test_logger_callback_relaunch_with_a_new_config_keeps_the_run(tmp_path, uri):
    from poptune.engine.trial import Trial, TrialStatus

    cb = MLflowLoggerCallback(tracking_uri=uri, experiment_name="pbt")
    cb.setup()
    trial = Trial(trial_id="abc_00000", trainable_name="f", config={"lr": 0.1},
                  local_path=str(tmp_path / "exp" / "t0"), status=TrialStatus.RUNNING)
    cb.on_trial_start(0, [trial], trial)
    cb.on_trial_result(0, [trial], trial, {"training_iteration": 1, "loss": 1.0,
                                           "config": dict(trial.config)})
    trial.config = {"lr": 0.2, "new": 1}  # a PBT exploit: MLflow params cannot change value
    trial.status = TrialStatus.PAUSED
    cb.on_trial_start(0, [trial], trial)
    cb.on_trial_result(0, [trial], trial, {"training_iteration": 2, "loss": 0.5,
                                           "config": dict(trial.config)})
    trial.status = TrialStatus.TERMINATED
    cb.on_trial_complete(0, [trial], trial)
    client = MlflowClient(tracking_uri=uri)
    (run,) = _runs(client, "pbt")
    assert run.data.params == {"lr": "0.1", "new": "1"} and run.info.status == "FINISHED"
    assert [m.value for m in client.get_metric_history(run.info.run_id, "config/lr")] == [
        0.1, 0.2]
    assert cb._trial_runs == {}  # forgotten once finished


def mlflow_trainable(config):
    mlf = setup_mlflow(config, tracking_uri=config["uri"], experiment_name="inside",
                       create_experiment_if_not_exists=True, tags={"kind": "setup"})
    for i in range(2):
        mlf.log_metric("loss", 1.0 / (config["x"] + i), step=i)
        tune.report({"loss": 1.0 / (config["x"] + i)})


def test_setup_mlflow_inside_trainables(tmp_path, uri):
    grid = tune.Tuner(
        mlflow_trainable, param_space={"x": tune.grid_search([1, 2, 3]), "uri": uri},
        tune_config=tune.TuneConfig(max_concurrent_trials=1),
        run_config=tune.RunConfig(name="inside-tune", storage_path=str(tmp_path / "r"),
                                  verbose=0),
    ).fit()
    assert grid.num_errors == 0
    client = MlflowClient(tracking_uri=uri)
    runs = _runs(client, "inside")
    assert len(runs) == 3  # one run per trial, even in a reused worker process
    assert {r.data.tags["trial_id"] for r in runs} == {r.metrics["trial_id"] for r in grid}
    for run in runs:
        assert run.info.run_name == "inside" and run.data.tags["kind"] == "setup"
        x = int(run.data.params["x"])
        history = client.get_metric_history(run.info.run_id, "loss")
        assert [m.value for m in history] == [1.0 / x, 1.0 / (x + 1)]
        assert run.info.status == "FINISHED"


def test_setup_mlflow_outside_a_trial_and_missing_experiment(tmp_path, uri):
    with pytest.raises(ValueError, match="does not exist"):
        setup_mlflow({"a": 1}, tracking_uri=uri, experiment_name="nope")
    try:
        mlf = setup_mlflow({"a": {"b": 1}}, tracking_uri=uri, experiment_name="here",
                           create_experiment_if_not_exists=True)
        run = mlf.active_run()
        assert run is not None and run.info.run_name == "here"
        assert MlflowClient(tracking_uri=uri).get_run(run.info.run_id).data.params == {"a/b": "1"}
    finally:
        mlflow.end_run()
        mlflow.set_tracking_uri(None)
    assert os.path.isdir(tmp_path / "mlruns")


def mlflow_trainable_that_may_fail(config):
    setup_mlflow(config, tracking_uri=config["uri"], experiment_name="ends",
                 create_experiment_if_not_exists=True)
    tune.report({"loss": 1.0})
    if config["fail"]:
        raise RuntimeError("boom")


def test_setup_mlflows_run_ends_with_its_trial_failed_or_not(tmp_path, uri):
    """The worker process runs the next trial (or sits idle): the run does not stay RUNNING."""
    grid = tune.Tuner(
        mlflow_trainable_that_may_fail,
        param_space={"fail": tune.grid_search([True, False]), "uri": uri},
        tune_config=tune.TuneConfig(max_concurrent_trials=1),
        run_config=tune.RunConfig(name="ends", storage_path=str(tmp_path / "r"), verbose=0),
    ).fit()
    assert grid.num_errors == 1
    runs = _runs(MlflowClient(tracking_uri=uri), "ends")
    assert sorted((r.data.params["fail"], r.info.status) for r in runs) == [
        ("False", "FINISHED"), ("True", "FAILED")]
