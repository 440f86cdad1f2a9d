"""poptune.integration.xgboost: per-round reports and booster checkpoints, in real trials."""

from __future__ import annotations

import os

import pytest

xgb = pytest.importorskip("xgboost")
pytest.importorskip("sklearn")

import numpy as np  # noqa: E402

import poptune as tune  # noqa: E402
from poptune.exceptions import TuneConfigError  # noqa: E402
from poptune.integration import MetricNotFoundError  # noqa: E402
from poptune.integration.xgboost import TuneReportCallback, TuneReportCheckpointCallback  # noqa: E402
from tests.integration._helpers import fit_fail_fast, result_rows  # noqa: E402


def _data():
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    return x[:450], y[:450], x[450:], y[450:]


PARAMS = {"objective": "binary:logistic", "eval_metric": ["logloss", "error"], "max_depth": 2,
          "eta": 0.3, "nthread": 1}


def train_breast_cancer(config):
    x, y, xt, yt = _data()
    cb = TuneReportCheckpointCallback(**config["cb"])
    dtrain, dtest = xgb.DMatrix(x, label=y), xgb.DMatrix(xt, label=yt)
    xgb.train(PARAMS, dtrain, num_boost_round=config.get("rounds", 6),
              evals=[(dtrain, "train"), (dtest, "test")], verbose_eval=False, callbacks=[cb])


def train_cv(config):
    x, y, _, _ = _data()
    xgb.cv(PARAMS, xgb.DMatrix(x, label=y), num_boost_round=4, nfold=3, seed=0,
           callbacks=[TuneReportCallback(
               {"loss": "test-logloss"},
               results_postprocessing_fn=lambda d: {k: float(v[0]) for k, v in d.items()})])


def _fit(tmp_path, trainable, config, name="xgb"):
    return fit_fail_fast(tmp_path, trainable, config, name)


def test_checkpoint_callback_reports_every_round_and_the_final_model(tmp_path):
    grid = _fit(tmp_path, train_breast_cancer, {"cb": {}})
    assert grid.num_errors == 0
    rows = result_rows(grid[0].path)
    # six rounds, plus Ray's extra report that carries the checkpoint at the end
    assert [r["training_iteration"] for r in rows] == [1, 2, 3, 4, 5, 6, 7]
    assert {"train-logloss", "train-error", "test-logloss", "test-error"} <= set(rows[0])
    assert rows[-1]["test-logloss"] == rows[-2]["test-logloss"]
    assert [r["checkpoint_dir_name"] for r in rows].count(None) == 6
    booster = TuneReportCheckpointCallback.get_model(grid[0].checkpoint)
    assert isinstance(booster, xgb.Booster) and booster.num_boosted_rounds() == 6
    _, _, xt, yt = _data()
    pred = booster.predict(xgb.DMatrix(xt))
    logloss = -np.mean(yt * np.log(pred) + (1 - yt) * np.log(1 - pred))
    assert logloss == pytest.approx(rows[-1]["test-logloss"], rel=1e-3)


def test_frequency_checkpoints_and_no_duplicate_at_the_end(tmp_path):
    cb = {"metrics": {"loss": "test-logloss"}, "filename": "model.json", "frequency": 3}
    grid = _fit(tmp_path, train_breast_cancer, {"cb": cb, "rounds": 6})
    rows = result_rows(grid[0].path)
    assert [r["training_iteration"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r["checkpoint_dir_name"] is not None for r in rows] == [
        False, False, True, False, False, True]
    assert set(rows[0]) >= {"loss"} and "test-error" not in rows[0]
    first = os.path.join(grid[0].path, rows[2]["checkpoint_dir_name"])
    booster = TuneReportCheckpointCallback.get_model(tune.Checkpoint.from_directory(first),
                                                     filename="model.json")
    assert booster.num_boosted_rounds() == 3


def test_report_callback_never_checkpoints_and_works_with_cv(tmp_path):
    grid = _fit(tmp_path, train_cv, {}, name="cv")
    assert grid.num_errors == 0
    rows = result_rows(grid[0].path)
    assert [r["training_iteration"] for r in rows] == [1, 2, 3, 4]
    assert all(r["checkpoint_dir_name"] is None and 0 < r["loss"] < 1 for r in rows)
    assert grid[0].checkpoint is None


def test_unknown_metric_and_bad_frequency_are_named():
    with pytest.raises(TuneConfigError, match="`frequency`"):
        TuneReportCheckpointCallback(frequency=-1)
    cb = TuneReportCheckpointCallback({"loss": "valid-logloss"})
    with pytest.raises(MetricNotFoundError, match="'valid-logloss'.*'test-logloss'"):
        cb._report_dict({"test": {"logloss": [0.5]}})


def test_classes_are_xgboost_training_callbacks():
    assert issubclass(TuneReportCheckpointCallback, xgb.callback.TrainingCallback)
    assert issubclass(TuneReportCallback, xgb.callback.TrainingCallback)
