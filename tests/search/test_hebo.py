"""HEBOSearch with the real HEBO: conversion, batches, seeding without global state, restore,
known rewards, and real Tuner runs."""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest

import poptune as tune
from poptune.exceptions import TuneConfigError

pytest.importorskip("hebo")
torch = pytest.importorskip("torch")

from poptune.search import create_searcher  # noqa: E402
from poptune.search.hebo import HEBOSearch  # noqa: E402


def quadratic(config):
    tune.report({"loss": (config["x"] - 3.0) ** 2})


def make(space=None, **kwargs):
    kwargs.setdefault("metric", "loss")
    kwargs.setdefault("mode", "min")
    kwargs.setdefault("rand_sample", 4)
    searcher = HEBOSearch(space, **kwargs)
    if space is None:
        searcher.set_search_properties(None, None, {"x": tune.uniform(-10, 10)})
    return searcher


def run_steps(searcher, n, start=0):
    """Suggest and complete ``n`` trials one at a time; the configs suggested."""
    configs = []
    for i in range(start, start + n):
        config = searcher.suggest(f"t{i}")
        configs.append(config)
        searcher.on_trial_complete(f"t{i}", {"loss": (config["x"] - 3.0) ** 2})
    return configs


def test_every_accepted_domain_is_converted_with_its_value_set():
    space = {
        "f": tune.uniform(-1, 1), "lf": tune.loguniform(1e-4, 1e-1), "i": tune.randint(0, 10),
        "li": tune.lograndint(1, 100), "c": tune.choice(["a", "b", 3]),
        "qf": tune.quniform(0, 1, 0.25), "qi": tune.qrandint(0, 20, 5),
        "qlf": tune.qloguniform(1e-3, 1, 1e-3), "nested": {"y": tune.uniform(0, 1)},
        "q1f": tune.quniform(0, 10, 1), "q1lf": tune.qloguniform(1, 100, 1),
        "const": 7, "drawn": tune.sample_from(lambda spec: 1),
    }
    design = HEBOSearch.convert_search_space(space)
    kinds = {name: type(design.paras[name]).__name__ for name in design.para_names}
    assert kinds == {
        "f": "NumericPara", "lf": "PowPara", "i": "IntegerPara", "li": "PowIntegerPara",
        "c": "CategoricalPara", "qf": "IntegerPara", "qi": "IntegerPara", "qlf": "PowPara",
        "nested/y": "NumericPara", "q1f": "IntegerPara", "q1lf": "PowPara"}
    searcher = HEBOSearch(space, metric="loss", mode="min", random_state_seed=0,
                          max_concurrent=16)
    seen = [searcher.suggest(f"t{i}") for i in range(16)]
    for config in seen:
        assert -1 <= config["f"] <= 1 and 1e-4 <= config["lf"] <= 1e-1
        assert config["i"] in range(10) and isinstance(config["i"], int)
        assert 1 <= config["li"] <= 99 and isinstance(config["li"], int)
        assert config["c"] in ("a", "b", 3)
        assert config["qf"] in (0, 0.25, 0.5, 0.75, 1.0) and type(config["qf"]) is float
        assert config["q1f"] in range(11) and type(config["q1f"]) is float  # not an int
        assert config["q1lf"] in range(1, 101) and type(config["q1lf"]) is float
        assert config["qi"] in (0, 5, 10, 15, 20) and isinstance(config["qi"], int)
        assert 1e-3 <= config["qlf"] <= 1 and round(config["qlf"] / 1e-3, 6).is_integer()
        assert 0 <= config["nested"]["y"] <= 1 and set(config) >= {"nested"}
        assert "const" not in config  # constants and sample_from stay the Tuner's
    assert len({c["f"] for c in seen}) == 16


@pytest.mark.parametrize("space, match", [
    ({"x": tune.randn(0, 1)}, "`x` has domain .*which HEBOSearch cannot search"),
    ({"x": tune.grid_search([1, 2])}, r"entries \['x'\] are grid_search"),
])
def test_domains_hebo_cannot_search_are_named(space, match):
    with pytest.raises(TuneConfigError, match=match):
        HEBOSearch(space, metric="loss", mode="min")


@pytest.mark.parametrize("kwargs, match", [
    ({"max_concurrent": 0}, "`max_concurrent` .*an int of at least 1"),
    ({"random_state_seed": 1.5}, "`random_state_seed` must be an int or None"),
    ({"space": 5}, "`space` must be a hebo DesignSpace, a dict of domains, or None"),
    ({"mode": "avg"}, "mode"),
    ({"points_to_evaluate": [{"x": 1}], "evaluated_rewards": [1, 2]},
     "`evaluated_rewards` .*as long as `points_to_evaluate` \\(1 points\\)"),
    ({"points_to_evaluate": [{"x": 1}], "evaluated_rewards": [float("nan")]},
     "`evaluated_rewards` .*finite numbers"),
])
def test_bad_input_names_the_argument(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        HEBOSearch(**kwargs)


def test_no_space_or_metric_is_a_clear_error():
    with pytest.raises(TuneConfigError, match="HEBOSearch has no search space"):
        HEBOSearch(metric="loss", mode="min").suggest("t0")
    searcher = HEBOSearch({"x": tune.uniform(0, 1)})
    with pytest.raises(ValueError, match="metric"):
        searcher.suggest("t0")


def test_a_seed_reproduces_the_search_and_leaves_global_generators_alone():
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    before = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state())
    first = run_steps(make(random_state_seed=3, max_concurrent=1), 6)
    second = run_steps(make(random_state_seed=3, max_concurrent=1), 6)
    assert first == second  # two model-based suggestions included (rand_sample=4)
    assert run_steps(make(random_state_seed=4, max_concurrent=1), 4) != first[:4]
    assert random.getstate() == before[0]
    assert (np.random.get_state()[1] == before[1]).all()
    assert torch.equal(torch.get_rng_state(), before[2])


def test_a_restored_searcher_continues_as_the_original(tmp_path):
    original = make(random_state_seed=5, max_concurrent=1)
    run_steps(original, 4)
    path = str(tmp_path / "searcher.pkl")
    original.save(path)
    restored = make(random_state_seed=5, max_concurrent=1)
    restored.restore(path)
    assert run_steps(restored, 2, start=4) == run_steps(original, 2, start=4)


def test_batches_wait_for_the_whole_batch_as_in_ray():
    searcher = make(max_concurrent=2, random_state_seed=0)
    a, b = searcher.suggest("a"), searcher.suggest("b")
    assert a and b and searcher.suggest("c") is None  # the batch is full
    searcher.on_trial_complete("a", {"loss": 1.0})
    assert searcher.suggest("c") is None  # still waiting for b
    searcher.on_trial_complete("b", {"loss": 2.0})
    assert searcher.suggest("c") is not None
    assert searcher.set_max_concurrency(3) is True and searcher._max_concurrent == 3


def test_points_run_first_and_known_rewards_are_told_not_run():
    searcher = make(points_to_evaluate=[{"x": 1.5}, {"x": -2.0}], random_state_seed=0)
    assert [searcher.suggest("p0")["x"], searcher.suggest("p1")["x"]] == [1.5, -2.0]
    told = make(points_to_evaluate=[{"x": 1.5}, {"x": -2.0}], evaluated_rewards=[2.25, 25.0],
                random_state_seed=0)
    assert told.suggest("t0")["x"] not in (1.5, -2.0)
    assert told._opt.X["x"].tolist() == [1.5, -2.0]
    assert told._opt.y.ravel().tolist() == [2.25, 25.0]
    told.add_evaluated_point({"x": 0.0}, 9.0)
    told.add_evaluated_point({"x": 5.0}, 4.0, error=True)  # skipped, as in Ray
    assert told._opt.y.ravel().tolist() == [2.25, 25.0, 9.0]


def test_failed_trials_and_missing_metrics_are_not_told():
    searcher = make(max_concurrent=4, random_state_seed=0)
    for i in range(4):
        searcher.suggest(f"t{i}")
    searcher.on_trial_complete("t0", {"loss": 1.0})
    searcher.on_trial_complete("t1", {"loss": 1.0}, error=True)
    searcher.on_trial_complete("t2", {"other": 1.0})
    searcher.on_trial_complete("t3", {"loss": float("nan")})
    assert searcher._opt.y.ravel().tolist() == [1.0]
    assert searcher.suggest("t4") is not None  # nothing left waiting


@pytest.mark.parametrize("mode", ["min", "max"])
def test_a_tuner_run_finds_the_optimum(tmp_path, mode):
    def score(config):
        loss = (config["x"] - 3.0) ** 2
        tune.report({"score": loss if mode == "min" else -loss})

    searcher = HEBOSearch(random_state_seed=0, max_concurrent=4, rand_sample=4)
    grid = tune.Tuner(
        score, param_space={"x": tune.uniform(-10, 10)},
        tune_config=tune.TuneConfig(search_alg=searcher, metric="score", mode=mode,
                                    num_samples=12),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    assert grid.num_errors == 0 and len(grid) == 12
    frame = grid.get_dataframe().sort_values("trial_id")
    errors = ((frame["config/x"] - 3.0) ** 2).tolist()
    warm_up, model = errors[:4], errors[4:]
    assert min(model) < min(warm_up)  # the GP improves on the quasi-random warm-up
    assert abs(grid.get_best_result().config["x"] - 3.0) < 1.0


def test_create_searcher_builds_it():
    searcher = create_searcher("hebo", metric="loss", mode="min", random_state_seed=0)
    assert isinstance(searcher, HEBOSearch) and searcher.metric == "loss"


def test_importing_hebo_keeps_the_drivers_torch_threads():
    """HEBO's import sets torch to one thread; the driver's setting is put back."""
    code = ("import torch; torch.set_num_threads(2)\n"
            "from poptune.search.hebo import HEBOSearch; HEBOSearch()\n"
            "import hebo.optimizers.hebo\n"
            "print(torch.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.strip() == "2"


def test_without_hebo_the_error_says_how_to_install_it():
    code = ("import sys; sys.modules['hebo'] = None\n"
            "from poptune.search.hebo import HEBOSearch\n"
            "try:\n    HEBOSearch()\nexcept Exception as exc:\n    print(type(exc).__name__, exc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.startswith("MissingDependencyError HEBOSearch needs HEBO")
    assert "pip install --no-deps HEBO==0.3.6" in out
