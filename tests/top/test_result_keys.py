"""poptune.result: the one definition of the automatic result keys, and who uses which set."""

from __future__ import annotations

import pytest

from poptune import result as keys
from poptune.exceptions import TuneError
from poptune.stopper import as_stopper


def test_the_sets_nest_as_their_purposes_say():
    assert keys.FILLED_RESULT_KEYS < keys.AUTO_RESULT_KEYS
    assert keys.NON_METRIC_KEYS < keys.AUTO_RESULT_KEYS
    # Ray's ray.tune.result.AUTO_RESULT_KEYS are all automatic here too
    ray_auto = {"training_iteration", "time_total_s", "episodes_total", "timesteps_total",
                "node_ip", "hostname", "pid", "time_this_iter_s", "timestamp", "date",
                "time_since_restore", "timesteps_since_restore", "iterations_since_restore",
                "config"}
    assert ray_auto <= keys.AUTO_RESULT_KEYS
    # counters and times are plotted by the dashboard
    assert not {"training_iteration", "time_total_s"} & keys.NON_METRIC_KEYS


def test_every_user_of_the_keys_imports_the_one_definition():
    from poptune.callbacks import _progress_format
    from poptune.dashboard import data

    assert _progress_format.AUTO_RESULT_KEYS is keys.AUTO_RESULT_KEYS
    assert data.NON_METRICS is keys.NON_METRIC_KEYS


def test_a_missing_stop_key_lists_the_keys_poptune_fills_in(caplog):
    stopper = as_stopper({"acc": 0.9})
    with caplog.at_level("WARNING", logger="poptune"):
        assert stopper("t1", {"loss": 1.0, "training_iteration": 1, "experiment_tag": "0"}) is False
    message = caplog.text
    assert "the trainable reported ['loss']" in message
    assert str(sorted(keys.FILLED_RESULT_KEYS)) in message


def test_rays_file_name_constants_name_the_files_a_trial_writes(tmp_path):
    """``from ray.tune.result import EXPR_PROGRESS_FILE`` etc.: the same values as Ray's, and
    the files are there."""
    import os

    import poptune as tune
    from poptune import result

    ray_result = pytest.importorskip("ray.tune.result")
    for name in ("EXPR_PARAM_FILE", "EXPR_PARAM_PICKLE_FILE", "EXPR_RESULT_FILE",
                 "EXPR_PROGRESS_FILE", "EXPR_ERROR_FILE", "EXPR_ERROR_PICKLE_FILE",
                 "CONFIG_PREFIX", "DEFAULT_EXPERIMENT_NAME", "DEFAULT_RESULT_KEYS",
                 "DEBUG_METRICS", "DEFAULT_EXPERIMENT_INFO_KEYS"):
        assert getattr(result, name) == getattr(ray_result, name), name

    def fails(config):
        tune.report({"x": 1})
        raise ValueError("boom")

    grid = tune.Tuner(fails, run_config=tune.RunConfig(storage_path=str(tmp_path),
                                                       verbose=0)).fit()
    files = set(os.listdir(grid[0].path))
    assert {result.EXPR_PARAM_FILE, result.EXPR_PARAM_PICKLE_FILE, result.EXPR_RESULT_FILE,
            result.EXPR_PROGRESS_FILE, result.EXPR_ERROR_FILE,
            result.EXPR_ERROR_PICKLE_FILE} <= files


def test_node_ip_is_the_address_of_the_machine_the_trial_ran_on(tmp_path):
    """As Ray's (``ray.util.get_node_ip_address()``): it was ``127.0.0.1`` on every node,
    so trials on a cluster could not be told apart by it."""
    import poptune as tune
    from poptune.backends._probe import driver_ip

    grid = tune.Tuner(lambda config: tune.report({"a": 1}),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    assert grid[0].metrics["node_ip"] == driver_ip()
