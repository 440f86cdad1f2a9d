"""TuneBOHB: the native BOHB model on poptune search spaces (no ConfigSpace, no hpbandster)."""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import pytest

import poptune as tune
from poptune.exceptions import TuneConfigError
from poptune.search import ConcurrencyLimiter, SearchGenerator
from poptune.search.bohb import TuneBOHB

TI = "training_iteration"

MIXED = {
    "lr": tune.loguniform(1e-4, 1e-1),
    "x": tune.uniform(-5, 5),
    "q": tune.quniform(0, 1, 0.25),
    "layers": tune.randint(1, 4),
    "units": tune.qrandint(16, 128, 16),
    "batch": tune.lograndint(8, 512),
    "noise": tune.randn(0, 1),
    "act": tune.choice(["relu", "tanh", None, 3]),
    "nested": {"wd": tune.uniform(0, 0.1), "const": 7},
}


def feed(searcher: TuneBOHB, n: int, objective: Callable[[dict], float], prefix: str = "t",
         budget: int = 1, metric: str = "loss") -> list[tuple[dict, float]]:
    """Suggest ``n`` configs and report ``objective`` at ``budget``; return what was seen."""
    seen = []
    for i in range(n):
        tid = f"{prefix}{i}"
        config = searcher.suggest(tid)
        value = objective(config)
        searcher.on_trial_result(tid, {TI: budget, metric: value})
        searcher.on_trial_complete(tid, {TI: budget, metric: value})
        seen.append((config, value))
    return seen


def check_inside(config: dict[str, Any]) -> None:
    assert 1e-4 <= config["lr"] < 1e-1
    assert -5 <= config["x"] < 5
    assert config["q"] in (0.0, 0.25, 0.5, 0.75, 1.0)
    assert config["layers"] in (1, 2, 3) and isinstance(config["layers"], int)
    assert config["units"] in range(16, 129, 16)
    assert 8 <= config["batch"] <= 511 and isinstance(config["batch"], int)
    assert math.isfinite(config["noise"])
    assert config["act"] in ("relu", "tanh", None, 3)
    assert 0 <= config["nested"]["wd"] < 0.1


def quadratic(dims: int) -> Callable[[dict], float]:
    return lambda c: sum((c[f"x{i}"] - 1.0) ** 2 for i in range(dims))


# --------------------------------------------------------------------------- suggestions
def test_suggestions_stay_inside_bounds_with_and_without_a_model():
    searcher = TuneBOHB(MIXED, metric="loss", mode="min", seed=0,
                        bohb_config={"random_fraction": 0.0})
    seen = feed(searcher, 80, lambda c: (c["x"] - 1) ** 2 + (c["act"] != "tanh"))
    assert searcher._models  # the later suggestions came from the KDEs
    for config, _ in seen:
        check_inside(config)
        assert "const" not in config["nested"]  # constants are not the searcher's business


def test_categorical_choices_are_respected_and_learned():
    space = {"act": tune.choice(["relu", "tanh", "sigmoid"]), "x": tune.uniform(0, 1)}
    searcher = TuneBOHB(space, metric="acc", mode="max", seed=1)
    seen = feed(searcher, 60, lambda c: float(c["act"] == "tanh") + c["x"], metric="acc")
    assert {c["act"] for c, _ in seen} <= {"relu", "tanh", "sigmoid"}
    late = [c["act"] for c, _ in seen[30:]]
    assert late.count("tanh") > len(late) / 2  # mode="max": the model prefers tanh


def test_improves_over_random_search_on_a_toy_quadratic():
    dims = 4
    space = {f"x{i}": tune.uniform(-5, 5) for i in range(dims)}
    objective = quadratic(dims)

    def run(seed: int, random: bool) -> tuple[float, float]:
        searcher = TuneBOHB(space, metric="loss", mode="min", seed=seed,
                            bohb_config={"random_fraction": 1.0} if random else None)
        losses = [loss for _, loss in feed(searcher, 30, objective)]
        return min(losses), float(np.mean(losses[15:]))

    bohb = np.array([run(seed, random=False) for seed in range(5)])
    rand = np.array([run(seed, random=True) for seed in range(5)])
    assert bohb[:, 0].mean() < 0.8 * rand[:, 0].mean()  # mean best-of-30
    assert bohb[:, 1].mean() < 0.75 * rand[:, 1].mean()  # the model's proposals are better


def test_same_seed_same_suggestions_and_different_seed_different_ones():
    objective = lambda c: (c["x"] - 1) ** 2  # noqa: E731
    a = feed(TuneBOHB(MIXED, metric="loss", mode="min", seed=5), 30, objective)
    b = feed(TuneBOHB(MIXED, metric="loss", mode="min", seed=5), 30, objective)
    c = feed(TuneBOHB(MIXED, metric="loss", mode="min", seed=6), 30, objective)
    assert repr(a) == repr(b) and repr(a) != repr(c)


def test_no_global_random_state_is_used():
    np.random.seed(0)
    before = np.random.random()
    np.random.seed(0)
    feed(TuneBOHB(MIXED, metric="loss", mode="min", seed=5), 20, lambda c: c["x"])
    assert np.random.random() == before


# --------------------------------------------------------------------------- budgets
def test_the_model_uses_the_largest_budget_with_enough_points():
    space = {"x": tune.uniform(0, 1)}  # one dimension: needs > 1 good and > 1 bad points
    searcher = TuneBOHB(space, metric="loss", mode="min", seed=0)
    for i in range(6):
        config = searcher.suggest(f"t{i}")
        for budget in (1, 2, 3):
            if budget == 3 and i >= 3:
                continue  # only half of the trials reach budget 3
            searcher.on_trial_result(f"t{i}", {TI: budget, "loss": config["x"] / budget})
    assert list(searcher._models) == [2.0]  # budget 3 has too few points; 1 is superseded
    assert sorted(searcher._obs) == [2.0, 3.0]  # budget 1 is never used again: dropped
    searcher.on_trial_result("t0", {TI: 1, "loss": 0.0})  # below the largest model: ignored
    assert sorted(searcher._obs) == [2.0, 3.0]


def test_rays_hyperband_info_budget_is_honoured():
    searcher = TuneBOHB({"x": tune.uniform(0, 1)}, metric="loss", mode="min", seed=0)
    searcher.suggest("a")
    searcher.on_trial_result("a", {TI: 5, "loss": 1.0, "hyperband_info": {"budget": 9}})
    searcher.on_trial_result("a", {TI: 6, "loss": 1.0, "hyperband_info": {}})
    assert list(searcher._obs) == [9.0]


def test_a_repeated_budget_replaces_the_trials_observation_and_nan_is_the_worst():
    searcher = TuneBOHB({"x": tune.uniform(0, 1)}, metric="loss", mode="max", seed=0)
    searcher.suggest("a")
    searcher.on_trial_result("a", {TI: 1, "loss": 2.0})
    searcher.on_trial_result("a", {TI: 1, "loss": math.nan})
    assert searcher._obs[1.0]["a"][1] == math.inf
    searcher.on_trial_result("unknown", {TI: 1, "loss": 1.0})
    searcher.on_trial_result("a", {TI: 1})  # no metric
    assert len(searcher._obs[1.0]) == 1


# --------------------------------------------------------------------------- search space
def test_takes_the_tuner_param_space_unless_it_has_its_own():
    own = TuneBOHB({"x": tune.uniform(0, 1)}, metric="loss", mode="min")
    assert own.set_search_properties("acc", "max", {"y": tune.uniform(0, 1)}) is False
    searcher = TuneBOHB(seed=0)
    gen = SearchGenerator(searcher)
    assert gen.set_search_properties("acc", "max", MIXED) is True  # what the Tuner does
    assert (searcher.metric, searcher.mode) == ("acc", "max")
    assert searcher.set_search_properties("acc", "max", MIXED) is False  # a space: keep it
    gen.setup_experiment(MIXED, num_samples=3, seed=0)
    suggestion = gen.next_trial("t0")
    check_inside(suggestion.config)
    assert suggestion.config["nested"]["const"] == 7
    assert "nested/const" not in suggestion.resolved_vars
    assert set(TuneBOHB.convert_search_space(MIXED)) == {
        "lr", "x", "q", "layers", "units", "batch", "noise", "act", "nested/wd"}


def test_unsupported_spaces_are_rejected():
    with pytest.raises(TuneConfigError, match="Grid search"):
        TuneBOHB({"x": tune.grid_search([1, 2])})
    with pytest.raises(TuneConfigError, match="does not support parameters of type `Function`"):
        TuneBOHB({"x": tune.sample_from(lambda spec: 1)})
    with pytest.raises(TypeError, match="`space` must be a dict search space"):
        TuneBOHB(object())


def test_domains_inside_lists_yield_the_whole_list():
    space = {"layers": [tune.choice([8, 16]), 4, {"u": tune.uniform(0, 1)}]}
    config = TuneBOHB(space, metric="loss", mode="min", seed=0).suggest("t0")
    assert config["layers"][0] in (8, 16) and config["layers"][1] == 4
    assert 0 <= config["layers"][2]["u"] < 1


def test_a_configspace_like_space_is_converted_without_configspace():
    class UniformFloatHyperparameter:
        def __init__(self, name, lower, upper, log=False, q=None):
            self.name, self.lower, self.upper, self.log, self.q = name, lower, upper, log, q

    class UniformIntegerHyperparameter(UniformFloatHyperparameter):
        pass

    class CategoricalHyperparameter:
        def __init__(self, name, choices):
            self.name, self.choices = name, choices

    class ConfigurationSpace:
        def get_hyperparameters(self):
            return [UniformFloatHyperparameter("width", 0, 20),
                    UniformFloatHyperparameter("lr", 1e-3, 1, log=True),
                    UniformIntegerHyperparameter("n", 1, 3),
                    CategoricalHyperparameter("act", ["relu", "tanh"])]

    searcher = TuneBOHB(ConfigurationSpace(), metric="loss", mode="min", seed=0)
    seen = feed(searcher, 40, lambda c: c["width"])
    for c, _ in seen:
        assert 0 <= c["width"] < 20 and 1e-3 <= c["lr"] < 1 and c["n"] in (1, 2, 3)
        assert c["act"] in ("relu", "tanh")
    assert {c["n"] for c, _ in seen} == {1, 2, 3}  # ConfigSpace's upper bound is inclusive


# --------------------------------------------------------------------------- protocol
def test_points_to_evaluate_come_first_nested_or_flattened():
    points = [{"x": 0.5, "nested": {"wd": 0.01}}, {"x": 1.5, "nested/wd": 0.02, "extra": 1}]
    space = {"x": tune.uniform(0, 2), "nested": {"wd": tune.uniform(0, 0.1)}}
    searcher = TuneBOHB(space, metric="loss", mode="min", points_to_evaluate=points, seed=0)
    assert searcher.suggest("a") == {"x": 0.5, "nested": {"wd": 0.01}}
    assert searcher.suggest("b") == {"x": 1.5, "nested": {"wd": 0.02}, "extra": 1}
    assert searcher._vectors["a"].tolist() == pytest.approx([0.25, 0.1])
    assert points[0] == {"x": 0.5, "nested": {"wd": 0.01}}  # the caller's list is untouched


def test_max_concurrent_counts_suggested_and_unfinished_trials():
    searcher = TuneBOHB({"x": tune.uniform(0, 1)}, metric="loss", mode="min",
                        max_concurrent=2, seed=0)
    assert searcher.suggest("a") and searcher.suggest("b")
    assert searcher.suggest("c") is None
    searcher.on_pause("a")  # Ray's hook: a paused trial frees its place
    assert searcher.suggest("c") is not None
    searcher.on_unpause("a")
    searcher.on_trial_complete("b")
    assert searcher.suggest("d") is None
    searcher.on_trial_complete("a")
    assert searcher.suggest("d") is not None
    limited = ConcurrencyLimiter(TuneBOHB({"x": tune.uniform(0, 1)}, metric="loss",
                                          mode="min"), max_concurrent=1)
    assert limited.searcher._max_concurrent == 1  # the searcher limits itself


def test_metric_mode_and_space_must_be_known_before_suggesting():
    with pytest.raises(TuneConfigError, match="no search space"):
        TuneBOHB(metric="loss", mode="min").suggest("t0")
    with pytest.raises(TuneConfigError, match="no valid `metric`"):
        TuneBOHB({"x": tune.uniform(0, 1)}).suggest("t0")
    only_mode = TuneBOHB({"x": tune.uniform(0, 1)}, mode="max")
    assert only_mode.metric == "_metric" and only_mode.suggest("t0")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bohb_config": {"top_n_percent": 0}}, "`top_n_percent` must be in (0, 100)"),
        ({"bohb_config": {"random_fraction": 2}}, "`random_fraction` must be in [0, 1]"),
        ({"bohb_config": {"num_samples": 0}}, "`num_samples` must be an integer >= 1"),
        ({"bohb_config": {"min_points_in_model": 0}}, "`min_points_in_model` must be"),
        ({"bohb_config": {"bandwidth_factor": 0}}, "`bandwidth_factor` must be > 0"),
        ({"bohb_config": {"eta": 3}}, "`bohb_config` must be a dict with keys among"),
        ({"mode": "low"}, "`mode` must be one of 'min', 'max', got 'low'"),
    ],
)
def test_invalid_arguments_are_rejected_with_the_standard_message(kwargs, message):
    with pytest.raises(TuneConfigError) as info:
        TuneBOHB({"x": tune.uniform(0, 1)}, **kwargs)
    assert message in str(info.value)


def test_min_points_in_model_below_dimensions_plus_one_is_raised_with_a_warning(caplog):
    searcher = TuneBOHB(MIXED, metric="loss", mode="min", bohb_config={"min_points_in_model": 2})
    assert searcher._min_points == len(TuneBOHB.convert_search_space(MIXED)) + 1
    assert "min_points_in_model" in caplog.text


def test_save_and_restore_continue_identically(tmp_path):
    objective = lambda c: (c["x"] - 1) ** 2  # noqa: E731
    searcher = TuneBOHB(MIXED, metric="loss", mode="min", seed=3)
    feed(searcher, 15, objective)
    searcher.save(str(tmp_path / "bohb.pkl"))
    rest = feed(searcher, 15, objective, prefix="u")
    restored = TuneBOHB(metric="loss", mode="min")
    restored.restore(str(tmp_path / "bohb.pkl"))
    assert repr(feed(restored, 15, objective, prefix="u")) == repr(rest)
