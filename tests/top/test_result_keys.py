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


def test_a_missing_stop_key_lists_the_keys_poptune_fills_in():
    stopper = as_stopper({"acc": 0.9})
    with pytest.raises(TuneError) as info:
        stopper("t1", {"loss": 1.0, "training_iteration": 1, "experiment_tag": "0"})
    message = str(info.value)
    assert "the trainable reported ['loss']" in message
    assert str(sorted(keys.FILLED_RESULT_KEYS)) in message
