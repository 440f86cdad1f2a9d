"""AxSearch: space conversion, the Ax experiment it drives (constraints, abandoned trials,
initial points, user clients, saved state), a real ``Tuner.fit()`` and ``Tuner.restore``."""

from __future__ import annotations

import importlib.util
import logging
import math
import sys
import warnings

import cloudpickle
import pytest

import poptune as tune
from poptune._imports import MissingDependencyError
from poptune.exceptions import TuneConfigError
from poptune.search import ConcurrencyLimiter, Searcher
from poptune.search.ax import AxSearch
from tests.search._helpers import ENABLED, StopAfterResults

# Trial workers import this module to unpickle `train`: keep its import light (Ax is imported
# by the tests that need it, never at module level).

needs_ax = pytest.mark.skipif(importlib.util.find_spec("ax") is None,
                              reason="ax-platform is not installed")

XY = {"x": tune.uniform(0, 1), "y": tune.uniform(0, 1)}


def quadratic(config):
    return (config["x"] - 0.2) ** 2 + (config["y"] - 0.7) ** 2


def make(space=XY, **kwargs):
    """A seeded AxSearch on metric "m" that took ``space`` as the Tuner's param_space."""
    kwargs.setdefault("random_seed", 0)
    searcher = AxSearch(metric="m", mode="min", **kwargs)
    assert searcher.set_search_properties(None, None, space) is True
    return searcher


def drive(searcher, n, start=0, objective=quadratic):
    """Suggest and complete ``n`` trials in turn; the configs."""
    configs = []
    for i in range(start, start + n):
        config = searcher.suggest(f"t{i}")
        assert isinstance(config, dict), config
        searcher.on_trial_complete(f"t{i}", {"m": objective(config)})
        configs.append(config)
    return configs


def statuses(searcher):
    return [t.status.name for t in experiment(searcher).trials.values()]


def experiment(searcher):
    client = searcher.ax_client
    return getattr(client, "_maybe_experiment", None) or client.experiment


def ax_data(searcher):
    """{(trial index, metric): value} of what Ax was told."""
    df = experiment(searcher).lookup_data().df
    return {(int(r.trial_index), r.metric_name): float(r["mean"]) for _, r in df.iterrows()}


# ------------------------------------------------------------------------ space conversion
def test_each_domain_type_is_converted_as_in_ray(caplog):
    space = {
        "u": tune.uniform(-2, 3), "lu": tune.loguniform(1e-4, 1e-1),
        "ri": tune.randint(0, 5), "lri": tune.lograndint(1, 100),
        "qu": tune.quniform(0, 1, 0.25), "qri": tune.qrandint(0, 20, 5),
        "qri1": tune.qrandint(0, 4, 1), "c": tune.choice(["a", "b"]), "one": tune.choice([7]),
        "nested": {"lr": tune.uniform(0, 1), "const": "k"}, "const": 7,
        "drawn": tune.sample_from(lambda spec: 1),
    }
    with caplog.at_level(logging.WARNING, logger="poptune.search.ax"):
        params = {p["name"]: p for p in AxSearch.convert_search_space(space)}

    def rng(bounds, value_type, log):
        return {"type": "range", "bounds": bounds, "value_type": value_type, "log_scale": log}

    expected = {
        "u": rng([-2.0, 3.0], "float", False), "lu": rng([1e-4, 1e-1], "float", True),
        "ri": rng([0, 4], "int", False), "lri": rng([1, 99], "int", True),
        "qu": rng([0.0, 1.0], "float", False), "qri": rng([0, 20], "int", False),
        "qri1": rng([0, 3], "int", False),
        "c": {"type": "choice", "values": ["a", "b"]},
        "one": {"type": "fixed", "value": 7},
        "nested/lr": rng([0.0, 1.0], "float", False),
        "nested/const": {"type": "fixed", "value": "k"}, "const": {"type": "fixed", "value": 7},
    }
    assert {n: {k: v for k, v in p.items() if k != "name"} for n, p in params.items()} == expected
    assert all(type(b) is int for b in params["ri"]["bounds"] + params["qri"]["bounds"])
    # quantization is dropped with a warning naming the parameter (not for q=1 integers)
    assert "`qu` is quantized" in caplog.text and "`qri` is quantized" in caplog.text
    assert "qri1" not in caplog.text


@pytest.mark.parametrize("space, message", [
    ({"x": tune.grid_search([1, 2])}, r"`param_space` entries \['x'\] are grid_search"),
    ({"x": tune.randn(0, 1)}, r"`x` has domain .* AxSearch cannot search"),
    ({"x": tune.qrandn(0, 1, 0.5)}, r"`x` has domain .* AxSearch cannot search"),
    ({"a": [tune.uniform(0, 1)]}, r"`param_space` entry 'a/0' must sit in nested dicts"),
])
def test_what_ax_cannot_search_is_refused_naming_the_parameter(space, message):
    with pytest.raises(TuneConfigError, match=message):
        AxSearch.convert_search_space(space)


def test_a_missing_library_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "ax", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'poptune\[ax\]'"):
        AxSearch()


@needs_ax
def test_lazy_export_from_poptune_search():
    from poptune.search import AxSearch as exported

    assert exported is AxSearch


# ------------------------------------------------------------------------ arguments
@needs_ax
def test_arguments_are_checked_naming_the_parameter():
    with pytest.raises(TuneConfigError, match="`mode` must be one of 'min', 'max'"):
        AxSearch(mode="avg")
    with pytest.raises(TuneConfigError, match=r"`ax_kwargs` must be keywords among .*"
                                              r"random_seed.*got \{'seeed': 1\}"):
        AxSearch(seeed=1)
    with pytest.raises(TypeError, match="`random_seed` must be an int or None"):
        AxSearch(random_seed="0")
    with pytest.raises(TypeError, match="`parameter_constraints` must be a list of str"):
        AxSearch(parameter_constraints="x <= 1")
    with pytest.raises(TypeError, match="`points_to_evaluate` must be a list of dicts"):
        AxSearch(points_to_evaluate={"x": 1})
    with pytest.raises(TypeError, match="`ax_client` must be an ax.api.Client"):
        AxSearch(ax_client=object())
    with pytest.raises(TuneConfigError, match=r"`space\[0\]` must be an Ax parameter dict"):
        AxSearch([{"name": "x", "type": "continuous", "bounds": [0, 1]}])
    with pytest.raises(TuneConfigError, match=r"`space\[0\]\['bounds'\]` must be \[lower, upper\]"):
        AxSearch([{"name": "x", "type": "range", "bounds": [1, 0]}])
    with pytest.raises(TuneConfigError, match=r"unknown: \['digits'\]"):
        AxSearch([{"name": "x", "type": "range", "bounds": [0, 1], "digits": 2}])
    with pytest.raises(TuneConfigError, match="`space` entry 'f' is sample_from"):
        AxSearch({"x": tune.uniform(0, 1), "f": tune.sample_from(lambda _: 1)})


@needs_ax
def test_metric_and_mode_follow_the_searcher_rules():
    # the Tuner's param_space: TuneConfig's metric and mode win
    searcher = AxSearch(metric="m", mode="min", random_seed=0)
    assert searcher.set_search_properties("acc", "max", XY) is True
    assert (searcher.metric, searcher.mode) == ("acc", "max")
    # a space of its own: the searcher's win, TuneConfig only fills what is missing
    own = AxSearch(XY, metric="m", random_seed=0)
    assert own.set_search_properties("acc", "max", {}) is False
    assert (own.metric, own.mode) == ("m", "max")
    own.suggest("t0")
    objective = experiment(own).optimization_config.objective
    assert objective.metric_names == ["m"] and objective.minimize is False
    # mode alone: the anonymous metric
    anonymous = AxSearch(XY, mode="min", random_seed=0)
    anonymous.suggest("t0")
    assert anonymous.metric == "_metric"
    with pytest.raises(TuneConfigError, match=r"no valid `metric` \(None\) or `mode` \(None\)"):
        AxSearch(XY).suggest("t0")
    with pytest.raises(TuneConfigError, match="AxSearch has no search space"):
        AxSearch(metric="m", mode="min").suggest("t0")
    with pytest.raises(TuneConfigError, match="AxSearch has no search space"):
        make({"const": 1, "f": tune.sample_from(lambda _: 1)}).suggest("t0")


# ------------------------------------------------------------------------ the Ax experiment
@needs_ax
def test_every_suggestion_honours_the_parameter_constraints():
    # the optimum (0.8, 0.8) lies outside x + y <= 1: the model is pushed to the boundary
    def objective(c):
        return (c["x"] - 0.8) ** 2 + (c["y"] - 0.8) ** 2

    searcher = make(parameter_constraints=["x + y <= 1.0"])
    configs = drive(searcher, 8, objective=objective)
    assert all(c["x"] + c["y"] <= 1.0 + 1e-6 for c in configs)
    assert max(c["x"] + c["y"] for c in configs[5:]) > 0.9  # the model works at the boundary
    assert len(experiment(searcher).search_space.parameter_constraints) == 1


@needs_ax
def test_failed_nan_and_metricless_trials_are_abandoned_and_the_search_goes_on(caplog):
    searcher = make(outcome_constraints=["l2 <= 1.0"])
    for i in range(5):  # Ax's first five (initialisation) trials
        searcher.suggest(f"t{i}")
    with caplog.at_level(logging.WARNING, logger="poptune.search.ax"):
        searcher.on_trial_complete("t0", {"m": float("nan"), "l2": 0.1})
        searcher.on_trial_complete("t1", {"m": float("inf"), "l2": 0.1})
        searcher.on_trial_complete("t2", {"m": 0.5, "l2": 0.1}, error=True)
        searcher.on_trial_complete("t3", {"other": 1.0})
        searcher.on_trial_complete("t4", {"m": 0.5})  # no outcome-constraint metric
        searcher.suggest("t5")
        searcher.on_trial_complete("t5", {"m": 0.25, "l2": 0.5})
        searcher.on_trial_complete("t5", {"m": 9.0, "l2": 0.5})  # twice: ignored
    assert statuses(searcher) == ["ABANDONED"] * 5 + ["COMPLETED"]
    assert ax_data(searcher) == {(5, "m"): 0.25, (5, "l2"): 0.5}
    assert caplog.text.count("is abandoned") == 1  # warned once
    assert isinstance(searcher.suggest("t6"), dict)


@needs_ax
def test_points_to_evaluate_come_first_and_choices_of_any_value_come_back_as_given():
    space = {"x": tune.uniform(0, 1), "nested": {"y": tune.uniform(0, 1)},
             "c": tune.choice([None, [1, 2], "a"]), "n": tune.choice([16, 32, 64])}
    points = [{"x": 0.25, "nested": {"y": 0.5}, "c": [1, 2], "n": 32, "note": "hand-picked"}]
    searcher = make(space, points_to_evaluate=points)
    configs = drive(searcher, 6, objective=lambda c: c["x"])
    assert configs[0] == points[0]
    assert dict(experiment(searcher).trials[0].arm.parameters) == {
        "x": 0.25, "nested/y": 0.5, "c": 1, "n": 32}  # the choice of objects by index
    for config in configs:
        assert config["c"] in (None, [1, 2], "a") and config["n"] in (16, 32, 64)
        assert 0 <= config["nested"]["y"] <= 1
    assert len({str(c["c"]) for c in configs}) >= 2
    missing = make(space, points_to_evaluate=[{"x": 0.5}])
    with pytest.raises(TuneConfigError, match=r"missing \['c', 'n', 'nested/y'\]"):
        missing.suggest("t0")
    wrong = make(space, points_to_evaluate=[{**points[0], "n": "many"}])
    with pytest.raises(TuneConfigError, match="`points_to_evaluate` must be a point of the "
                                              "search space .*'many'"):
        wrong.suggest("t0")
    unknown = make(space, points_to_evaluate=[{**points[0], "c": "b"}])
    with pytest.raises(TuneConfigError, match=r"`points_to_evaluate\['c'\]` must be one of"):
        unknown.suggest("t0")


@needs_ax
def test_an_ax_parameter_list_with_fixed_and_nested_names():
    space = [
        {"name": "x", "type": "range", "bounds": [0.0, 1.0]},
        {"name": "units", "type": "range", "bounds": [1, 8]},
        {"name": "act", "type": "choice", "values": ["relu", "tanh"]},
        {"name": "opt/lr", "type": "fixed", "value": 0.1},
    ]
    searcher = AxSearch(space, metric="m", mode="max", random_seed=0)
    assert searcher.set_search_properties("other", "min", {"epochs": 3}) is False
    for config in drive(searcher, 3, objective=lambda c: c["x"]):
        assert set(config) == {"x", "units", "act", "opt"} and config["opt"] == {"lr": 0.1}
        assert type(config["units"]) is int and 1 <= config["units"] <= 8
        assert isinstance(config["x"], float) and config["act"] in ("relu", "tanh")
    assert set(experiment(searcher).search_space.parameters) == {"x", "units", "act"}


@needs_ax
def test_a_client_with_its_own_experiment_defines_space_metric_and_mode():
    from ax.api import Client, RangeParameterConfig

    client = Client(random_seed=0)
    client.configure_experiment(parameters=[
        RangeParameterConfig(name="x", bounds=(0.0, 1.0), parameter_type="float")])
    client.configure_optimization(objective="acc", outcome_constraints=["l2 <= 2.0"])
    with pytest.raises(TuneConfigError, match="got `space`, `metric` and an `ax_client`|"
                                              "got `space`, `metric`"):
        AxSearch(XY, metric="acc", ax_client=client)
    searcher = AxSearch(ax_client=client)
    assert (searcher.metric, searcher.mode) == ("acc", "max")
    assert searcher.set_search_properties("loss", "min", {"x": tune.uniform(0, 1)}) is False
    assert (searcher.metric, searcher.mode) == ("acc", "max")
    config = searcher.suggest("t0")
    searcher.on_trial_complete("t0", {"acc": config["x"], "l2": 1.0})
    assert [t.status.name for t in client._experiment.trials.values()] == ["COMPLETED"]
    # a client without an experiment gets one from the Tuner's param_space
    bare = AxSearch(metric="m", mode="min", ax_client=Client(random_seed=0))
    assert bare.set_search_properties(None, None, XY) is True
    drive(bare, 1)
    assert statuses(bare) == ["COMPLETED"]


@needs_ax
def test_a_legacy_ax_client_is_driven_and_saved_too():
    service = pytest.importorskip("ax.service.ax_client")
    if not hasattr(service, "AxClient"):
        pytest.skip("this Ax has no AxClient")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client = service.AxClient(random_seed=0, verbose_logging=False)
    client.create_experiment(
        parameters=[{"name": "x", "type": "range", "bounds": [0.0, 1.0]},
                    {"name": "y", "type": "range", "bounds": [0.0, 1.0]}],
        objectives={"m": service.ObjectiveProperties(minimize=True)})
    searcher = AxSearch(ax_client=client)
    drive(searcher, 2)
    copy = cloudpickle.loads(cloudpickle.dumps(searcher))
    assert type(copy.ax_client) is service.AxClient and copy.ax_client is not client
    for s in (searcher, copy):
        drive(s, 1, start=2)
        assert [t.status.name for t in s.ax_client.experiment.trials.values()] == ["COMPLETED"] * 3


@needs_ax
def test_state_round_trip_continues_identically_without_repeats(tmp_path):
    first = make()
    before = drive(first, 2)
    live = first.suggest("live")  # a trial still running at the snapshot
    path = str(tmp_path / "searcher.pkl")
    first.save(path)
    second = make(random_seed=123)  # the state, not the constructor, decides
    second.restore(path)
    pickled = cloudpickle.loads(cloudpickle.dumps(first))  # as in tuner.pkl
    for searcher in (first, second, pickled):
        searcher.on_trial_complete("live", {"m": quadratic(live)})
    after = [drive(s, 2, start=2) for s in (first, second, pickled)]
    assert after[0] == after[1] == after[2]
    assert not any(c in before + [live] for c in after[1])
    assert statuses(second) == ["COMPLETED"] * 5
    # Tuner.restore hands the same param_space again: the experiment goes on
    assert second.set_search_properties(None, None, XY) is True
    assert len(experiment(second).trials) == 5
    assert second.set_search_properties(None, None, {"z": tune.uniform(0, 1)}) is False


@needs_ax
def test_waits_while_ax_needs_data_and_ends_when_no_trial_can_bring_it(monkeypatch, caplog):
    from ax.exceptions.core import DataRequiredError

    from poptune.search import ax as module

    searcher = make()
    searcher.suggest("t0")

    def needs_data(self):
        raise DataRequiredError("not enough data")

    monkeypatch.setattr(module._ApiClient, "next", needs_data)
    assert searcher.suggest("t1") is None  # t0 is running: wait for it
    searcher.on_trial_complete("t0", {"m": 1.0})
    with caplog.at_level(logging.WARNING, logger="poptune.search.ax"):
        assert searcher.suggest("t1") == Searcher.FINISHED
    assert "none of its trials is running" in caplog.text


# ------------------------------------------------------------------------ in a Tuner
def train(config):
    for i in range(2):
        tune.report({"loss": quadratic(config) + 0.01 * (1 - i), "const": config["const"]})


def fit(search_alg, tmp_path, num_samples=8, stop=None, name="exp"):
    return tune.Tuner(
        train,
        param_space={**XY, "const": "c"},
        tune_config=tune.TuneConfig(search_alg=search_alg, num_samples=num_samples,
                                    metric="loss", mode="min"),
        run_config=tune.RunConfig(name=name, verbose=0, storage_path=str(tmp_path), stop=stop),
    ).fit()


def check_ax_saw_every_trial(searcher, grid):
    """Every trial is a COMPLETED Ax trial with the trial's parameters and final loss."""
    exp = experiment(searcher)
    assert [t.status.name for t in exp.trials.values()] == ["COMPLETED"] * len(grid)
    told = {(round(t.arm.parameters["x"], 12), round(t.arm.parameters["y"], 12)): i
            for i, t in exp.trials.items()}
    data = ax_data(searcher)
    for r in grid:
        index = told[(round(r.config["x"], 12), round(r.config["y"], 12))]
        assert data[(index, "loss")] == pytest.approx(r.metrics["loss"])


@needs_ax
def test_a_tuner_run_finds_the_optimum_and_ax_sees_every_trial(tmp_path):
    searcher = AxSearch(random_seed=0)
    grid = fit(ConcurrencyLimiter(searcher, max_concurrent=2), tmp_path, num_samples=12)
    assert len(grid) == 12 and grid.num_errors == 0 and grid.num_terminated == 12
    for r in grid:
        assert r.config["const"] == "c" and r.metrics["training_iteration"] == 2
    assert len({(r.config["x"], r.config["y"]) for r in grid}) == 12
    check_ax_saw_every_trial(searcher, grid)
    losses = [r.metrics["loss"] for r in sorted(grid, key=lambda r: r.metrics["trial_id"])]
    # 12 random points get to about 0.025 on average; the model's 7 beat Ax's 5 initial ones
    assert min(losses) < 0.01
    assert min(losses[5:]) < min(losses[:5])




@needs_ax
def test_a_restored_tuner_continues_the_ax_experiment_without_suggesting_again(tmp_path):
    ENABLED[0] = True
    try:
        first = fit(ConcurrencyLimiter(AxSearch(random_seed=0), max_concurrent=2), tmp_path,
                    stop=StopAfterResults(7))
        ENABLED[0] = False
        tuner = tune.Tuner.restore(str(tmp_path / "exp"), trainable=train)
        grid = tuner.fit()
    finally:
        ENABLED[0] = True
    assert 0 < len(first) < 8
    before = {r.metrics["trial_id"]: (r.config["x"], r.config["y"]) for r in first}
    assert len(grid) == 8 and grid.num_errors == 0 and grid.num_terminated == 8
    after = {r.metrics["trial_id"]: (r.config["x"], r.config["y"]) for r in grid}
    assert all(after[t] == xy for t, xy in before.items())  # the first trials are kept
    assert len(set(after.values())) == 8  # and no point is suggested again
    searcher = tuner.tune_config.search_alg.searcher
    assert isinstance(searcher, AxSearch)
    check_ax_saw_every_trial(searcher, grid)  # trials live at the interruption included
    assert math.isfinite(grid.get_best_result().metrics["loss"])
