"""Each library adapter in a real ``Tuner.fit()``, and an Optuna search that is interrupted
and continued with ``Tuner.restore``."""

from __future__ import annotations

import importlib.util

import pytest

import poptune as tune
from tests.search._helpers import ENABLED, StopAfterResults

# Trial workers import this module to unpickle `train`: keep its import light (no libraries).


def _needs(lib):
    return pytest.mark.skipif(importlib.util.find_spec(lib) is None, reason=f"{lib} is not installed")


@pytest.fixture(autouse=True, scope="module")
def _quiet_optuna():
    try:
        import optuna
    except ImportError:
        yield
        return
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    yield
    optuna.logging.set_verbosity(level)


def train(config):
    for i in range(3):
        loss = (config["x"] - 0.3) ** 2 + (config.get("y", 0.7) - 0.7) ** 2
        tune.report({"loss": loss + 0.01 * (2 - i), "acc": 1 - loss, "const": config["const"]})


def fit(search_alg, tmp_path, param_space=None, num_samples=12, name="exp", stop=None, **kw):
    return tune.Tuner(
        train,
        param_space=param_space if param_space is not None else {
            "x": tune.uniform(0, 1), "y": tune.uniform(0, 1), "const": "c"},
        tune_config=tune.TuneConfig(search_alg=search_alg, num_samples=num_samples, **kw),
        run_config=tune.RunConfig(name=name, verbose=0, storage_path=str(tmp_path), stop=stop),
    ).fit()


def searchers():
    def optuna_():
        from poptune.search.optuna import OptunaSearch

        return OptunaSearch(seed=0)

    def hyperopt_():
        from poptune.search.hyperopt import HyperOptSearch

        return HyperOptSearch(n_initial_points=4, random_state_seed=0)

    def bayesopt_():
        from poptune.search.bayesopt import BayesOptSearch

        return BayesOptSearch(random_search_steps=4)

    def nevergrad_():
        from poptune.search.nevergrad import NevergradSearch

        return NevergradSearch(seed=0)

    return [pytest.param(f, id=f.__name__.rstrip("_"), marks=_needs(lib)) for f, lib in (
        (optuna_, "optuna"), (hyperopt_, "hyperopt"), (bayesopt_, "bayes_opt"),
        (nevergrad_, "nevergrad"))]  # fmt: skip


@pytest.mark.parametrize("make", searchers())
def test_adapter_runs_a_tuner_to_completion(make, tmp_path):
    grid = fit(make(), tmp_path, metric="loss", mode="min")
    assert len(grid) == 12 and grid.num_errors == 0 and grid.num_terminated == 12
    xs = [(r.config["x"], r.config["y"]) for r in grid]
    assert len(set(xs)) == 12  # no config is run twice
    for r in grid:
        assert 0 <= r.config["x"] <= 1 and 0 <= r.config["y"] <= 1
        assert r.config["const"] == "c" and r.metrics["training_iteration"] == 3
    assert grid.get_best_result().metrics["loss"] < 0.1


@_needs("optuna")
def test_optuna_define_by_run_and_multi_objective_in_a_tuner(tmp_path):
    from poptune.search.optuna import OptunaSearch

    def space(trial):
        trial.suggest_float("x", 0, 1)
        if trial.suggest_categorical("use_y", [True, False]):
            trial.suggest_float("y", 0, 1)
        return {"const": "c"}

    searcher = OptunaSearch(space, metric=["loss", "acc"], mode=["min", "max"], seed=0)
    grid = fit(searcher, tmp_path, param_space={}, num_samples=8)
    assert len(grid) == 8 and grid.num_errors == 0
    for r in grid:
        assert ("y" in r.config) == r.config["use_y"] and r.config["const"] == "c"
    study = searcher._study
    assert len(study.trials) == 8 and all(t.state.name == "COMPLETE" for t in study.trials)
    assert all(len(t.values) == 2 for t in study.trials)
    assert len(study.best_trials) >= 1  # a Pareto front over the two objectives




def _interrupted_then_restored(tmp_path):
    from poptune.search.optuna import OptunaSearch

    ENABLED[0] = True
    try:
        first = fit(OptunaSearch(seed=0), tmp_path, stop=StopAfterResults(12), metric="loss",
                    mode="min")
        ENABLED[0] = False
        tuner = tune.Tuner.restore(str(tmp_path / "exp"), trainable=train)
        return first, tuner, tuner.fit()
    finally:
        ENABLED[0] = True


@_needs("optuna")
def test_restored_optuna_search_continues_without_suggesting_finished_points(tmp_path):
    first, tuner, grid = _interrupted_then_restored(tmp_path)
    assert 0 < len(first) < 12
    before = {r.metrics["trial_id"]: r.config["x"] for r in first}
    assert len(grid) == 12 and grid.num_errors == 0
    after = {r.metrics["trial_id"]: r.config["x"] for r in grid}
    assert all(after[t] == x for t, x in before.items())  # the finished trials are kept
    assert len(set(after.values())) == 12  # and none of their points is suggested again
    searcher = tuner.tune_config.search_alg
    assert len(searcher._study.trials) == 12  # the study went on from its saved state


@_needs("optuna")
def test_restored_searcher_knows_every_trial_that_finished_before_the_interruption(tmp_path):
    _, tuner, _ = _interrupted_then_restored(tmp_path)
    searcher = tuner.tune_config.search_alg
    assert [t.state.name for t in searcher._study.trials].count("RUNNING") == 0


@_needs("optuna")
def test_restored_repeater_of_optuna_continues_its_groups_without_duplicates(tmp_path):
    from collections import Counter

    from poptune.search import Repeater
    from poptune.search.optuna import OptunaSearch

    ENABLED[0] = True
    try:
        first = fit(Repeater(OptunaSearch(seed=0), repeat=2), tmp_path,
                    stop=StopAfterResults(4), metric="loss", mode="min")
        ENABLED[0] = False
        tuner = tune.Tuner.restore(str(tmp_path / "exp"), trainable=train)
        grid = tuner.fit()
    finally:
        ENABLED[0] = True
    assert 0 < len([r for r in first if r.metrics]) < 12
    assert len(grid) == 12 and grid.num_errors == 0
    points = Counter((r.config["x"], r.config["y"]) for r in grid)
    assert sorted(points.values()) == [2] * 6  # each suggestion ran exactly `repeat` times
    indices = Counter(r.config["__trial_index__"] for r in grid)
    assert indices == {0: 6, 1: 6}
    study = tuner.tune_config.search_alg.searcher._study
    assert len(study.trials) == 6 and all(t.state.name == "COMPLETE" for t in study.trials)


@_needs("optuna")
def test_optuna_restore_from_dir_of_a_poptune_experiment_continues_its_study(tmp_path):
    from poptune.search import ConcurrencyLimiter
    from poptune.search.optuna import OptunaSearch

    grid = fit(ConcurrencyLimiter(OptunaSearch(seed=3), 1), tmp_path, num_samples=6,
               metric="loss", mode="min")
    searcher = OptunaSearch()
    searcher.restore_from_dir(str(tmp_path / "exp"))
    assert len(searcher._study.trials) == 6
    config = searcher.suggest("n0")
    assert len(searcher._study.trials) == 7 and 0 <= config["x"] <= 1
    assert config["x"] not in {r.config["x"] for r in grid}
