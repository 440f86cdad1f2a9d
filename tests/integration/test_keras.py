"""poptune.integration.keras: Keras 3 on the torch backend, trained by ``model.fit`` inside real
trials; checkpoints reload and PBT exploits restore the donor's Keras model."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported anywhere
keras = pytest.importorskip("keras")
pytest.importorskip("sklearn")

import numpy as np  # noqa: E402

import poptune as tune  # noqa: E402
from poptune.exceptions import TuneConfigError  # noqa: E402
from poptune.integration import MetricNotFoundError  # noqa: E402
from poptune.integration.keras import (  # noqa: E402
    ReportCheckpointCallback,
    TuneReportCallback,
    TuneReportCheckpointCallback,
)
from poptune.schedulers import PopulationBasedTraining  # noqa: E402
from tests.integration._helpers import FakeReport, fit_fail_fast, result_rows  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytestmark = [
    pytest.mark.skipif(keras.backend.backend() != "torch",
                       reason="these tests run Keras on the torch backend"),
    # Keras' torch backend calls np.array(tensor) the NumPy-1 way; not ours to fix
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword"),
]


def _digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    return x[:1400], y[:1400], x[1400:], y[1400:]


def _model(lr: float, hidden: int = 32):
    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(hidden, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(loss="sparse_categorical_crossentropy",
                  optimizer=keras.optimizers.SGD(learning_rate=lr, momentum=0.9),
                  metrics=["accuracy"])
    return model


def train_digits(config):
    """A Ray-style Keras trainable: resume from tune.get_checkpoint() (own or a PBT donor's)."""
    import torch

    torch.set_num_threads(1)
    x, y, xv, yv = _digits()
    ckpt = tune.get_checkpoint()
    if ckpt:
        model = TuneReportCheckpointCallback.get_model(ckpt)
        model.optimizer.learning_rate = config["lr"]  # the explored value
        _, acc = model.evaluate(xv, yv, verbose=0)
        with open(os.path.join(tune.get_context().get_trial_dir(), "restores.jsonl"), "a") as f:
            f.write(json.dumps({"from": ckpt.path, "val_accuracy": acc}) + "\n")
    else:
        model = _model(config["lr"])
    model.fit(x, y, batch_size=64, epochs=config.get("epochs", 100), verbose=0,
              validation_data=(xv, yv),
              callbacks=[TuneReportCheckpointCallback(
                  metrics={"mean_accuracy": "val_accuracy", "loss": "loss"})])


# -- unit behaviour (no trial) ------------------------------------------------------------


def _fit(callback, epochs=4):
    x, y, xv, yv = _digits()
    _model(0.05).fit(x[:256], y[:256], epochs=epochs, batch_size=64, verbose=0,
                     validation_data=(xv, yv), callbacks=[callback])


def test_classes_are_keras_callbacks_built_on_first_use():
    assert issubclass(TuneReportCheckpointCallback, keras.callbacks.Callback)
    assert issubclass(TuneReportCallback, keras.callbacks.Callback)
    assert issubclass(ReportCheckpointCallback, keras.callbacks.Callback)
    assert TuneReportCheckpointCallback.__module__ == "poptune.integration.keras"


def test_report_callback_maps_metrics_on_each_epoch(monkeypatch):
    fake = FakeReport(monkeypatch)
    _fit(TuneReportCallback({"mean_accuracy": "accuracy"}), epochs=3)
    assert [files for _, files in fake.calls] == [None, None, None]
    assert all(set(m) == {"mean_accuracy"} and isinstance(m["mean_accuracy"], float)
               for m, _ in fake.calls)


def test_report_callback_without_metrics_reports_all_keras_logs(monkeypatch):
    fake = FakeReport(monkeypatch)
    _fit(TuneReportCallback("val_loss"), epochs=1)
    _fit(TuneReportCallback(), epochs=1)
    assert set(fake.calls[0][0]) == {"val_loss"}
    assert {"accuracy", "loss", "val_accuracy", "val_loss"} <= set(fake.calls[1][0])


def test_checkpoint_frequency_counts_events_and_always_reports_metrics(monkeypatch):
    fake = FakeReport(monkeypatch)
    _fit(TuneReportCheckpointCallback(["accuracy"], filename="model", frequency=2), epochs=4)
    assert [files for _, files in fake.calls] == [None, ["model"], None, ["model"]]
    # filename without extension: an unzipped Keras 3 model directory (older Ray scripts)
    assert all("accuracy" in m for m, _ in fake.calls)


def test_checkpoint_on_a_different_event_than_reporting(monkeypatch):
    fake = FakeReport(monkeypatch)
    cb = TuneReportCheckpointCallback(on="epoch_end", checkpoint_on="train_end")
    _fit(cb, epochs=2)
    assert [files for _, files in fake.calls] == [None, None, ["model.keras"]]


def test_air_report_checkpoint_callback_saves_model_keras(monkeypatch):
    fake = FakeReport(monkeypatch)
    _fit(ReportCheckpointCallback(metrics={"acc": "accuracy"}), epochs=1)
    assert fake.calls == [(fake.calls[0][0], ["model.keras"])] and "acc" in fake.calls[0][0]


def test_bad_arguments_are_named():
    with pytest.raises(TuneConfigError, match="`on` must be one or more of"):
        TuneReportCallback(on="validation_end")
    with pytest.raises(TuneConfigError, match="`frequency`"):
        TuneReportCheckpointCallback(frequency=[1, 2])
    with pytest.raises(TuneConfigError, match="`frequency`"):
        TuneReportCheckpointCallback(frequency=0)


def test_missing_metric_names_the_available_keys(monkeypatch):
    FakeReport(monkeypatch)
    with pytest.raises(MetricNotFoundError, match=r"'acc'.*'accuracy'"):
        _fit(TuneReportCallback({"a": "acc"}), epochs=1)


def test_reporting_outside_a_trial_warns_and_trains_on(monkeypatch):
    """Ray's callback calls ``tune.report``, which outside a trial warns and does nothing."""
    from poptune import session

    monkeypatch.setattr(session, "_warned_outside", set())
    with pytest.warns(UserWarning, match="`report` is meant to only be called inside"):
        _fit(TuneReportCallback(), epochs=2)


# -- real trials --------------------------------------------------------------------------
@pytest.mark.slow
def test_fit_in_a_trial_reports_metrics_and_checkpoints_that_reload(tmp_path):
    grid = fit_fail_fast(tmp_path, train_digits, {"lr": 0.05, "epochs": 3}, "keras",
                         metric="mean_accuracy", mode="max")
    assert grid.num_errors == 0
    result = grid[0]
    rows = result_rows(result.path)
    assert [r["training_iteration"] for r in rows] == [1, 2, 3]
    assert all(0.0 <= r["mean_accuracy"] <= 1.0 and r["loss"] > 0 for r in rows)
    assert [r["checkpoint_dir_name"] for r in rows] == [
        "checkpoint_000000", "checkpoint_000001", "checkpoint_000002"]
    assert result.metrics["mean_accuracy"] == rows[-1]["mean_accuracy"] > 0.5
    model = TuneReportCheckpointCallback.get_model(result.checkpoint)
    _, _, xv, yv = _digits()
    _, acc = model.evaluate(xv, yv, verbose=0)
    assert acc == pytest.approx(rows[-1]["mean_accuracy"], abs=1e-6)


@pytest.mark.slow
def test_pbt_exploits_restore_the_donors_keras_model(tmp_path):
    pbt = PopulationBasedTraining(
        time_attr="training_iteration", perturbation_interval=2, seed=1, quantile_fraction=0.5,
        hyperparam_mutations={"lr": tune.uniform(0.001, 0.3)})
    grid = tune.Tuner(
        train_digits,
        param_space={"lr": tune.grid_search([0.001, 0.003, 0.1, 0.2])},
        tune_config=tune.TuneConfig(scheduler=pbt, metric="mean_accuracy", mode="max"),
        run_config=tune.RunConfig(name="kpbt", storage_path=str(tmp_path), verbose=0,
                                  stop={"training_iteration": 6},
                                  failure_config=tune.FailureConfig(fail_fast=True)),
    ).fit()
    assert grid.num_errors == 0 and len(grid) == 4
    exploits = open(tmp_path / "kpbt" / "pbt_global.txt").read().splitlines()
    assert exploits
    restores, from_donor = [], 0
    for r in grid:
        path = os.path.join(r.path, "restores.jsonl")
        if os.path.exists(path):
            recs = [json.loads(line) for line in open(path)]
            from_donor += sum(os.path.dirname(rec["from"]) != r.path for rec in recs)
            restores += recs
        assert r.metrics["training_iteration"] == 6
    assert from_donor >= 1  # exploits, not only pauses and resumes of a trial's own model
    for rec in restores:  # the loaded model scores exactly what the donor reported with it
        donor_dir, name = os.path.split(rec["from"])
        donor_rows = [row for row in result_rows(donor_dir) if row["checkpoint_dir_name"] == name]
        assert donor_rows, rec
        assert rec["val_accuracy"] == pytest.approx(donor_rows[0]["mean_accuracy"], abs=1e-6)
    # the population learned: the slow learners were replaced by copies of fast ones
    assert min(r.metrics["mean_accuracy"] for r in grid) > 0.5


@pytest.mark.slow
def test_japanese_article_example_runs_in_smoke_test_mode(tmp_path):
    env = {**os.environ, "PYTHONPATH": ROOT, "POPTUNE_STORAGE_PATH": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "pbt_tune_mnist_keras.py"),
         "--smoke-test"], capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Best hyperparameters found were:" in proc.stdout
    best = proc.stdout.split("Best hyperparameters found were:")[1].strip().splitlines()[0]
    assert "lr" in best and "momentum" in best and "hidden" in best


def test_results_are_numpy_free_python_numbers():
    from poptune.integration import _select_metrics

    out = _select_metrics(None, {"a": np.float32(0.5), "b": np.int64(3)})
    assert out == {"a": 0.5, "b": 3} and type(out["a"]) is float and type(out["b"]) is int


def test_missing_keras_gives_the_install_command(monkeypatch):
    import poptune.integration.keras as mod
    from poptune._imports import MissingDependencyError

    monkeypatch.setitem(sys.modules, "keras", None)  # as if not installed
    monkeypatch.delitem(vars(mod), "TuneReportCallback")  # drop the class built earlier
    with pytest.raises(MissingDependencyError, match=r"pip install 'poptune\[keras\]'"):
        mod.TuneReportCallback  # noqa: B018


def test_ray_air_path_gives_the_same_callback():
    from poptune.air.integrations.keras import ReportCheckpointCallback as at_air_path

    assert at_air_path is ReportCheckpointCallback
