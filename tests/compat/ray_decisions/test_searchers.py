"""OptunaSearch and HyperOptSearch: Ray 2.60's and poptune's suggestions for the same seed,
driven through suggest / on_trial_complete with the same objective.

The same suggestions: Optuna's TPE and random samplers, ``seed=``, mode max, an errored
trial, ``points_to_evaluate`` with and without ``evaluated_rewards``; HyperOpt's TPE with
``random_state_seed`` (each suggestion's hyperopt seed is drawn as Ray draws it, hyperopt.py),
``n_initial_points``, mode max, ``points_to_evaluate`` and an errored trial.
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import pytest

pytest.importorskip("ray")
optuna = pytest.importorskip("optuna")
pytest.importorskip("hyperopt")

from ray import tune as ray_tune  # noqa: E402
from ray.tune.search.hyperopt import HyperOptSearch as RayHyperOpt  # noqa: E402
from ray.tune.search.optuna import OptunaSearch as RayOptuna  # noqa: E402

import poptune  # noqa: E402
from poptune.search.hyperopt import HyperOptSearch  # noqa: E402
from poptune.search.optuna import OptunaSearch  # noqa: E402
from tests.compat.ray_decisions._ray import Row, assert_same  # noqa: E402

POINTS = [{"x": 0.5, "lr": 0.01, "k": 3, "c": "b", "q": 0.5},
          {"x": -2.0, "lr": 0.001, "k": 8, "c": "a", "q": 0.0}]


@pytest.fixture(autouse=True)
def quiet_optuna() -> Iterator[None]:
    """Optuna's per-trial INFO lines off for the test (its verbosity is process-wide)."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    yield
    optuna.logging.set_verbosity(verbosity)


def space(t: Any) -> dict[str, Any]:
    """The same search space written with Ray's ``tune`` or with ``poptune``."""
    return {"x": t.uniform(-5, 5), "lr": t.loguniform(1e-4, 1e-1), "k": t.randint(1, 10),
            "c": t.choice(["a", "b", "c"]), "q": t.quniform(0, 1, 0.25)}


def objective(config: dict[str, Any]) -> float:
    return ((config["x"] - 1) ** 2 + math.log10(config["lr"]) ** 2 * 0.1 + config["k"] * 0.05
            + {"a": 0, "b": 1, "c": 2}[config["c"]] + config["q"])


def rounded(config: Any) -> Any:
    """A suggestion with its floats rounded to 10 digits, keys sorted."""
    if not isinstance(config, dict):
        return config
    return {k: round(v, 10) if isinstance(v, float) else v for k, v in sorted(config.items())}


def drive(ray_searcher: Any, searcher: Any, n: int = 12, errors: tuple[int, ...] = ()
          ) -> list[Row]:
    """n suggestions from each, each completed at once with its objective value (trials in
    ``errors`` end with an error, no result)."""
    rows: list[Row] = []
    for i in range(n):
        trial_id = f"t{i}"
        ray_config, config = ray_searcher.suggest(trial_id), searcher.suggest(trial_id)
        rows.append((f"suggestion for {trial_id}", rounded(ray_config), rounded(config)))
        if not (isinstance(ray_config, dict) and isinstance(config, dict)):
            continue
        error = i in errors
        for each, suggested in ((ray_searcher, ray_config), (searcher, config)):
            each.on_trial_complete(trial_id, None if error else {"loss": objective(suggested)},
                                   error=error)
    return rows


def fresh(kw: dict[str, Any]) -> dict[str, Any]:
    """``kw`` with its own copy of the points to evaluate (searchers may change them)."""
    if "points_to_evaluate" not in kw:
        return dict(kw)
    return {**kw, "points_to_evaluate": [dict(p) for p in kw["points_to_evaluate"]]}


def optuna_kwargs(kw: dict[str, Any], seed: int) -> dict[str, Any]:
    """One OptunaSearch's arguments: ``seed=seed``, or a new sampler of the kind
    ``kw["sampler"]`` names, seeded with it."""
    kw = fresh(kw)
    kind = kw.pop("sampler", None)
    if kind == "tpe":
        kw["sampler"] = optuna.samplers.TPESampler(seed=seed, n_startup_trials=4)
    elif kind == "random":
        kw["sampler"] = optuna.samplers.RandomSampler(seed=seed)
    else:
        kw["seed"] = seed
    return kw


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("kw,errors", [
    pytest.param(dict(mode="min", sampler="tpe"), (), id="TPE sampler"),
    pytest.param(dict(mode="min", sampler="random"), (), id="random sampler"),
    pytest.param(dict(mode="min"), (), id="seed=, default sampler"),
    pytest.param(dict(mode="max"), (3,), id="mode max, errored trial"),
    pytest.param(dict(mode="min", points_to_evaluate=POINTS, evaluated_rewards=[1.5, 3.0]), (),
                 id="points_to_evaluate and evaluated_rewards"),
    pytest.param(dict(mode="min", points_to_evaluate=POINTS), (), id="points_to_evaluate"),
])
def test_optuna_same_suggestions(kw, errors, seed):
    ray_searcher = RayOptuna(space(ray_tune), metric="loss", **optuna_kwargs(kw, seed))
    searcher = OptunaSearch(space(poptune), metric="loss", **optuna_kwargs(kw, seed))
    assert_same(drive(ray_searcher, searcher, errors=errors), f"OptunaSearch {kw}, seed {seed}")


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("kw,errors", [
    pytest.param(dict(mode="min", n_initial_points=3), (), id="n_initial_points=3"),
    pytest.param(dict(mode="min", n_initial_points=20), (), id="n_initial_points=20"),
    pytest.param(dict(mode="max", n_initial_points=3, points_to_evaluate=POINTS[:1]), (2,),
                 id="mode max, points_to_evaluate, errored trial"),
])
def test_hyperopt_same_suggestions_for_the_same_seed(kw, errors, seed):
    # fixed after Ray's comparison: each suggestion's seed is RandomState(seed).randint, as
    # in Ray (hyperopt.py); they differed from the first suggestion before
    ray_searcher = RayHyperOpt(space(ray_tune), metric="loss", random_state_seed=seed,
                               **fresh(kw))
    searcher = HyperOptSearch(space(poptune), metric="loss", random_state_seed=seed, **fresh(kw))
    assert_same(drive(ray_searcher, searcher, errors=errors),
                f"HyperOptSearch {kw}, seed {seed}")
