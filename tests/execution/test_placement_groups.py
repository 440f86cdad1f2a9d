"""PlacementGroupFactory: Ray's bundle API, summed into one trial's resources."""

from __future__ import annotations

import pickle

import pytest

import poptune as tune
from poptune.exceptions import ResourceError, TuneConfigError
from poptune.execution import PlacementGroupFactory, resource_dict_to_pg_factory


def test_bundles_sum_head_and_equality_follow_ray():
    pgf = PlacementGroupFactory([{"CPU": 1, "GPU": 0}, {"CPU": 2, "custom": 1}])
    assert pgf.bundles == [{"CPU": 1.0}, {"CPU": 2.0, "custom": 1.0}]  # zeros dropped
    assert pgf.required_resources == {"CPU": 3.0, "custom": 1.0}
    assert pgf.head_cpus == 1.0 and not pgf.head_bundle_is_empty
    assert pgf.strategy == "PACK"
    assert pgf == PlacementGroupFactory([{"CPU": 1}, {"CPU": 2, "custom": 1}])
    assert pgf != PlacementGroupFactory([{"CPU": 1}, {"CPU": 2, "custom": 1}], "SPREAD")
    assert len({pgf, pickle.loads(pickle.dumps(pgf))}) == 1


def test_an_empty_head_bundle_means_the_trainable_needs_nothing():
    pgf = PlacementGroupFactory([{}, {"CPU": 2}])
    assert pgf.head_bundle_is_empty and pgf.head_cpus == 0.0
    assert pgf.bundles == [{"CPU": 2.0}]


@pytest.mark.parametrize("bundles, strategy, message", [
    ([], "PACK", "`bundles` must be a non-empty list"),
    ([{"CPU": -1}], "PACK", r"`bundles\[0\]\['CPU'\]` must be a finite number >= 0, got -1"),
    ([{"CPU": float("nan")}], "PACK", r"`bundles\[0\]\['CPU'\]` must be a finite number >= 0, got nan"),
    ([{"GPU": float("inf")}], "PACK", r"`bundles\[0\]\['GPU'\]` must be a finite number >= 0, got inf"),
    ([{"CPU": 1}], "CLOSE", "`strategy` must be one of 'PACK'"),
    ([{}], "PACK", "at least one bundle with a non-zero resource"),
])
def test_bad_bundles_name_the_parameter(bundles, strategy, message):
    with pytest.raises(TuneConfigError, match=message):
        PlacementGroupFactory(bundles, strategy)


def test_resource_dict_to_pg_factory():
    assert resource_dict_to_pg_factory({"cpu": 2, "gpu": 1, "accel": 1}).bundles == [
        {"accel": 1.0, "CPU": 2.0, "GPU": 1.0}]
    assert resource_dict_to_pg_factory().required_resources == {"CPU": 1.0}


def _report_resources(config):
    tune.report({"cpu": tune.get_context().get_trial_resources().required_resources["CPU"]})


def test_a_trial_gets_the_sum_of_its_bundles(tmp_path):
    grid = tune.Tuner(
        tune.with_resources(_report_resources, PlacementGroupFactory([{"CPU": 1}, {"CPU": 1}])),
        param_space={"i": tune.grid_search([0, 1])},
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
    ).fit()
    assert [r.metrics["cpu"] for r in grid] == [2.0, 2.0]


def test_bundles_that_can_never_fit_fail_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("POPTUNE_NUM_GPUS", "0")
    with pytest.raises(ResourceError):
        tune.Tuner(
            tune.with_resources(_report_resources, PlacementGroupFactory([{"CPU": 1, "GPU": 1}])),
            run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
        ).fit()
