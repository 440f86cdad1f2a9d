"""poptune.integration.wandb: W&B runs of real trials, in W&B's offline mode (no account, no
network), read back from the run files W&B writes."""

from __future__ import annotations

import glob
import json
import os

import numpy as np
import pytest

pytest.importorskip("wandb")

import poptune as tune  # noqa: E402
from poptune.air.integrations.wandb import WandbLoggerCallback, setup_wandb  # noqa: E402
from poptune.integration import wandb as integration  # noqa: E402
from tests.integration._helpers import result_rows, wandb_history, wandb_records  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def wandb_service_stops():
    """The wandb-core service the driver starts (and the WANDB_SERVICE variable it sets, which
    later trial workers would inherit) ends with this module."""
    yield
    import wandb

    wandb.teardown()
    os.environ.pop("WANDB_SERVICE", None)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """W&B offline (workers inherit the environment), no project or group from outside."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    for name in ("WANDB_PROJECT", "WANDB_PROJECT_NAME", "WANDB_GROUP_NAME", "WANDB_DIR"):
        monkeypatch.delenv(name, raising=False)
    # empty, i.e. no key, and restored after the test (the callback sets it, as Ray's does)
    monkeypatch.setenv("WANDB_API_KEY", "")


def reporting(config):
    for step in range(3):
        tune.report({"loss": config["lr"] / (step + 1), "nested": {"a": step},
                     "np": np.float32(0.5), "word": "text", "vec": [1, 2]})


def with_setup_wandb(config):
    run = setup_wandb(config, project="inside")
    for step in range(2):
        run.log({"inner": step * config["lr"]})
        tune.report({"loss": config["lr"]})


def _runs(trial_dir):
    """The W&B run files under a trial directory, by run id."""
    files = glob.glob(os.path.join(trial_dir, "wandb", "offline-run-*", "run-*.wandb"))
    return {os.path.basename(f)[4:-6]: f for f in files}


def _run_record(path):
    (run,) = [m for kind, m in wandb_records(path) if kind == "run"]
    return run


def _fit(tmp_path, trainable, callbacks, name="wb", grid=(0.1, 0.2), fail_fast=True):
    return tune.Tuner(
        trainable, param_space={"lr": tune.grid_search(list(grid))},
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0,
                                  callbacks=callbacks,
                                  failure_config=tune.FailureConfig(fail_fast=fail_fast))).fit()


def test_one_run_per_trial_with_its_results(tmp_path):
    grid = _fit(tmp_path, reporting, [WandbLoggerCallback(project="pbt", excludes=["np"])])
    assert grid.num_errors == 0
    for result in grid:
        trial_id = result.metrics["trial_id"]
        runs = _runs(result.path)
        assert list(runs) == [trial_id]  # the run's files live in the trial's directory
        run = _run_record(runs[trial_id])
        assert (run.run_id, run.project, run.run_group) == (trial_id, "pbt", "wb")
        assert os.path.basename(result.path).startswith(run.display_name)
        config = {c.key: c.value_json for c in run.config.update}
        assert config["lr"] == str(result.config["lr"])
        assert json.loads(config["trial_log_path"]) == result.path  # as Ray's logging actor
        history = wandb_history(runs[trial_id])
        rows = result_rows(result.path)
        assert [h["loss"] for h in history] == [r["loss"] for r in rows]
        assert [h["training_iteration"] for h in history] == [1, 2, 3]
        assert [h["nested/a"] for h in history] == [0, 1, 2]  # flattened with "/"
        logged = set().union(*history)
        # numbers only; Ray's excluded and config keys go elsewhere; `excludes` honoured
        assert not logged & {"done", "word", "vec", "np", "trial_id", "hostname", "pid",
                             "config/lr"}
        auto = {c.key for kind, m in wandb_records(runs[trial_id]) if kind == "config"
                for c in m.update}
        assert {"trial_id", "hostname", "pid", "date", "experiment_tag"} <= auto


def test_numpy_values_are_logged_as_numbers_and_log_config_adds_the_config(tmp_path):
    grid = _fit(tmp_path, reporting, [WandbLoggerCallback(project="p", log_config=True)],
                grid=(0.1,))
    (path,) = _runs(grid[0].path).values()
    history = wandb_history(path)
    assert [h["np"] for h in history] == [0.5] * 3
    assert [h["config/lr"] for h in history] == [0.1] * 3


def test_setup_wandb_starts_the_trials_run_inside_the_trainable(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_GROUP_NAME", "from-env")  # as in Ray: not read by setup_wandb
    grid = _fit(tmp_path, with_setup_wandb, [])
    assert grid.num_errors == 0
    for result in grid:
        trial_id = result.metrics["trial_id"]
        runs = _runs(result.path)  # the worker runs in the trial directory
        run = _run_record(runs[trial_id])
        assert (run.run_id, run.project, run.run_group) == (trial_id, "inside", "wb")
        lr = result.config["lr"]
        assert [h["inner"] for h in wandb_history(runs[trial_id])] == [0, lr]


def test_project_and_key_errors_are_named(monkeypatch):
    with pytest.raises(ValueError, match="WANDB_PROJECT_NAME"):
        WandbLoggerCallback().setup()
    monkeypatch.setenv("WANDB_PROJECT_NAME", "from-env")
    callback = WandbLoggerCallback()
    callback.setup()
    assert callback.project == "from-env"
    monkeypatch.delenv("WANDB_MODE")  # online: a key is needed
    with pytest.raises(ValueError, match="Both WandB `api_key_file` and `api_key` set"):
        WandbLoggerCallback(project="p", api_key="k", api_key_file="f").setup()
    with pytest.raises(ValueError, match="No WandB API key found.*WANDB_MODE=offline"):
        WandbLoggerCallback(project="p").setup()


def test_the_api_key_file_sets_the_key(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE")
    key_file = tmp_path / "key"
    key_file.write_text("0123456789abcdef\n")
    WandbLoggerCallback(project="p", api_key_file=str(key_file)).setup()
    assert os.environ["WANDB_API_KEY"] == "0123456789abcdef"


def test_config_values_that_cannot_travel_become_strings():
    import threading

    lock = threading.Lock()
    plain = integration._plain_config({"lr": 0.1, "callbacks": [1], "lock": lock,
                                       "nested": {"x": lock}, "skip": 1}, excludes=["skip"])
    assert plain == {"lr": 0.1, "lock": str(lock), "nested": {"x": str(lock)}}


def test_save_checkpoints_is_rays_deprecated_name():
    with pytest.warns(DeprecationWarning, match="Use `upload_checkpoints` instead"):
        callback = WandbLoggerCallback(project="p", save_checkpoints=True)
    assert callback.upload_checkpoints


def checkpointing(config):
    import tempfile

    for step in range(2):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "weights"), "w") as f:
                f.write(str(step))
            tune.report({"loss": 1.0 / (step + 1)}, checkpoint=tune.Checkpoint.from_directory(d))


def test_upload_checkpoints_logs_each_checkpoint_as_an_artifact(tmp_path):
    grid = _fit(tmp_path, checkpointing, [WandbLoggerCallback(project="p",
                                                              upload_checkpoints=True)],
                grid=(0.1,))
    assert grid.num_errors == 0
    (path,) = _runs(grid[0].path).values()
    artifacts = [m for kind, m in wandb_records(path) if kind == "artifact"]
    assert [(a.type, a.name) for a in artifacts] == [
        ("model", f"checkpoint_checkpointing_{grid[0].metrics['trial_id']}")] * 2
    # each artifact holds that checkpoint's file
    assert all([e.path for e in a.manifest.contents] == ["weights"] for a in artifacts)


def test_the_callback_pickles_while_its_runs_are_open(tmp_path):
    """``tuner.pkl`` keeps the callbacks for ``Tuner.restore``: the copy holds the arguments,
    not the open runs or the thread that makes their calls."""
    import cloudpickle

    callback = WandbLoggerCallback(project="p", excludes=["pid"])
    runs = callback._calls()  # the thread, started as at a trial's start
    try:
        copy = cloudpickle.loads(cloudpickle.dumps(callback))
    finally:
        callback.on_experiment_end([])
    assert not runs.is_alive()
    assert (copy.project, copy.excludes, copy._runs, copy._started, copy._ready) == (
        "p", ["pid"], None, set(), False)
    grid = _fit(tmp_path, reporting, [copy], grid=(0.1,))  # and it works again
    assert len(_runs(grid[0].path)) == 1


def reports_an_image(config):
    tune.report({"loss": 1.0, "picture": np.zeros((8, 8, 3), dtype=np.uint8)})


def test_numpy_images_in_results_are_logged_as_wandb_images(tmp_path):
    grid = _fit(tmp_path, reports_an_image, [WandbLoggerCallback(project="p")], grid=(0.1,))
    assert grid.num_errors == 0
    (path,) = _runs(grid[0].path).values()
    (row,) = wandb_history(path)  # W&B keeps a media object's fields as nested keys
    assert row["loss"] == 1.0 and row["picture/_type"] == "image-file"
    assert (row["picture/width"], row["picture/height"]) == (8, 8)
    assert os.path.isfile(os.path.join(os.path.dirname(path), "files", row["picture/path"]))


def setup_wandb_then_maybe_fail(config):
    setup_wandb(config, project="inside").log({"x": 1})
    tune.report({"loss": 1.0})
    if config["lr"] > 0.15:
        raise RuntimeError("boom")


def test_setup_wandbs_run_ends_with_its_trial_failed_or_not(tmp_path):
    # without fail_fast: the failure must not stop the other trial before its run ends
    grid = _fit(tmp_path, setup_wandb_then_maybe_fail, [], fail_fast=False)
    assert grid.num_errors == 1
    for result in grid:
        (path,) = _runs(result.path).values()
        (exit_record,) = [m for kind, m in wandb_records(path) if kind == "exit"]
        assert exit_record.exit_code == (1 if result.config["lr"] > 0.15 else 0)
