"""What a resource request means (``with_resources`` / ``resources_per_trial``), as in Ray:
a CPU count left out is no CPU; no request at all is one CPU."""

from __future__ import annotations

import pytest

import poptune as tune
from poptune.backends.simulated import SimulatedBackend
from poptune.callbacks import Callback
from poptune.simulation import advance
from poptune.trainable._util import normalize_resources


@pytest.mark.parametrize("request_, expected", [
    (None, {"cpu": 1.0, "gpu": 0.0}),
    ({}, {"cpu": 1.0, "gpu": 0.0}),
    ({"gpu": 1}, {"cpu": 0.0, "gpu": 1.0}),
    ({"memory": 1e8}, {"cpu": 0.0, "gpu": 0.0, "memory": 1e8}),
    ({"CPU": 2, "GPU": 0.5}, {"cpu": 2.0, "gpu": 0.5}),
    (tune.PlacementGroupFactory([{"GPU": 1}]), {"cpu": 0.0, "gpu": 1.0}),
])
def test_a_left_out_cpu_count_is_no_cpu(request_, expected):
    assert normalize_resources(request_) == expected


class MostRunning(Callback):
    def __init__(self):
        self.most = 0

    def on_step_end(self, iteration, trials, **info):
        self.most = max(self.most, sum(t.status == "RUNNING" for t in trials))


def one_step(config):
    advance(1.0)
    tune.report({"x": config["x"]})


def test_gpu_only_trials_are_limited_by_gpus_not_cpus(tmp_path):
    """4 GPUs and 2 CPUs: ``{"gpu": 1}`` trials run 4 at once (Ray's default engine too)."""
    most = MostRunning()
    grid = tune.Tuner(
        tune.with_resources(one_step, {"gpu": 1}), param_space={"x": tune.grid_search(list(range(8)))},
        tune_config=tune.TuneConfig(backend=SimulatedBackend(num_cpus=2, num_gpus=4)),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0, callbacks=[most]),
    ).fit()
    assert grid.num_errors == 0 and len(grid) == 8
    assert most.most == 4


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1])
def test_a_resource_amount_must_be_a_finite_number(value):
    # NaN compares false with everything: it used to pass the `< 0` check and reach the pool
    with pytest.raises(ValueError, match=rf"`resources_per_trial\['cpu'\]` must be a finite "
                                         rf"number >= 0, got {value}"):
        normalize_resources({"cpu": value})
