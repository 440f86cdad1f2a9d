"""What a function trainable returns or yields becomes results, as in Ray."""

from __future__ import annotations

import os

import poptune as tune


def run(fn, tmp_path, **kw):
    return tune.Tuner(fn, param_space={"x": 3},
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0, **kw)).fit()


def yields(config):
    for i in range(4):
        yield {"score": config["x"] * i}


def returns_number(config):
    return config["x"] * 2


def returns_junk(config):
    return "not metrics"


def test_each_yielded_dict_is_a_result(tmp_path):
    result = run(yields, tmp_path)[0]
    assert list(result.metrics_dataframe["score"]) == [0, 3, 6, 9]
    assert result.metrics["training_iteration"] == 4 and result.metrics["done"]


def test_a_returned_number_is_reported_as_metric(tmp_path):
    result = run(returns_number, tmp_path)[0]
    assert result.metrics["_metric"] == 6 and result.metrics["done"]


def test_any_other_return_value_is_a_clear_trial_error(tmp_path):
    grid = run(returns_junk, tmp_path)
    assert grid.num_errors == 1
    assert "must return or yield a dict of metrics or a number" in str(grid[0].error)


def closes(config):
    marker = config["marker"]
    try:
        for i in range(1000):
            yield {"i": i}
    finally:
        open(marker, "w").close()


def test_a_stopped_generator_is_closed(tmp_path):
    marker = str(tmp_path / "closed")
    grid = tune.Tuner(closes, param_space={"marker": marker},
                      run_config=tune.RunConfig(storage_path=str(tmp_path / "r"), verbose=0,
                                                stop={"training_iteration": 3})).fit()
    assert grid[0].metrics["training_iteration"] == 3
    assert os.path.exists(marker)  # its finally block ran

