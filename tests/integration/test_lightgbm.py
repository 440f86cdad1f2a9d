"""poptune.integration.lightgbm: per-round reports and booster checkpoints, in real trials."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

lgb = pytest.importorskip("lightgbm")
pytest.importorskip("sklearn")

import numpy as np  # noqa: E402

import poptune as tune  # noqa: E402
from poptune.exceptions import TuneConfigError  # noqa: E402
from poptune.integration import MetricNotFoundError  # noqa: E402
from poptune.integration.lightgbm import TuneReportCallback, TuneReportCheckpointCallback  # noqa: E402
from tests.integration._helpers import fit_fail_fast, result_rows  # noqa: E402

PARAMS = {"objective": "binary", "metric": ["binary_logloss", "binary_error"], "verbose": -1,
          "num_leaves": 4, "learning_rate": 0.2, "num_threads": 1, "seed": 0}


def _data():
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    return x[:450], y[:450], x[450:], y[450:]


def train_breast_cancer(config):
    x, y, xt, yt = _data()
    train_set = lgb.Dataset(x, label=y)
    valid_set = lgb.Dataset(xt, label=yt, reference=train_set)
    lgb.train(PARAMS, train_set, num_boost_round=config.get("rounds", 5),
              valid_sets=[train_set, valid_set], valid_names=["train", "eval"],
              callbacks=[TuneReportCheckpointCallback(**config["cb"])])


def train_cv(config):
    x, y, _, _ = _data()
    lgb.cv(PARAMS, lgb.Dataset(x, label=y), num_boost_round=4, nfold=3, seed=0,
           callbacks=[TuneReportCallback({"loss": "valid-binary_logloss-mean"})])


def _fit(tmp_path, trainable, config, name="lgb"):
    return fit_fail_fast(tmp_path, trainable, config, name)


def test_checkpoint_callback_reports_every_round_and_checkpoints_the_last(tmp_path):
    grid = _fit(tmp_path, train_breast_cancer, {"cb": {}})
    assert grid.num_errors == 0
    rows = result_rows(grid[0].path)
    assert [r["training_iteration"] for r in rows] == [1, 2, 3, 4, 5]
    assert {"train-binary_logloss", "eval-binary_logloss", "eval-binary_error"} <= set(rows[0])
    assert [r["checkpoint_dir_name"] is not None for r in rows] == [False] * 4 + [True]
    booster = TuneReportCheckpointCallback.get_model(grid[0].checkpoint)
    assert isinstance(booster, lgb.Booster) and booster.current_iteration() == 5
    _, _, xt, yt = _data()
    pred = np.clip(booster.predict(xt), 1e-15, 1 - 1e-15)
    logloss = -np.mean(yt * np.log(pred) + (1 - yt) * np.log(1 - pred))
    assert logloss == pytest.approx(rows[-1]["eval-binary_logloss"], rel=1e-4)


def test_frequency_and_metric_mapping(tmp_path):
    cb = {"metrics": {"loss": "eval-binary_logloss"}, "frequency": 2,
          "checkpoint_at_end": False, "filename": "booster.txt"}
    grid = _fit(tmp_path, train_breast_cancer, {"cb": cb, "rounds": 5})
    rows = result_rows(grid[0].path)
    assert [r["checkpoint_dir_name"] is not None for r in rows] == [
        False, True, False, True, False]
    assert "loss" in rows[0] and "eval-binary_error" not in rows[0]
    booster = TuneReportCheckpointCallback.get_model(grid[0].checkpoint, filename="booster.txt")
    assert booster.current_iteration() == 4


def test_report_callback_works_with_cv_and_never_checkpoints(tmp_path):
    grid = _fit(tmp_path, train_cv, {}, name="cv")
    rows = result_rows(grid[0].path)
    assert [r["training_iteration"] for r in rows] == [1, 2, 3, 4]
    assert all(r["checkpoint_dir_name"] is None and 0 < r["loss"] < 1 for r in rows)


def test_results_postprocessing_fn_and_errors(monkeypatch):
    calls = []
    import poptune.session as s

    monkeypatch.setattr(s, "report", lambda m=None, checkpoint=None: calls.append(m))
    env = SimpleNamespace(iteration=0, end_iteration=3, model=None,
                          evaluation_result_list=[("valid", "auc", 0.8, True, 0.01)])
    TuneReportCallback(results_postprocessing_fn=lambda d: {"auc": d["valid-auc-mean"]})(env)
    assert calls == [{"auc": 0.8}]
    with pytest.raises(MetricNotFoundError, match="'valid-auc'.*'valid-auc-mean'"):
        TuneReportCallback("valid-auc")(env)
    with pytest.raises(TuneConfigError, match="`frequency`"):
        TuneReportCheckpointCallback(frequency=1.5)  # type: ignore[arg-type]


def test_missing_lightgbm_gives_the_install_command(monkeypatch, tmp_path):
    import sys

    from poptune._imports import MissingDependencyError

    monkeypatch.setitem(sys.modules, "lightgbm", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'poptune\[lightgbm\]'"):
        TuneReportCheckpointCallback.get_model(tune.Checkpoint.from_directory(str(tmp_path)))
