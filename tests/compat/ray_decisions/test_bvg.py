"""BasicVariantGenerator: the configs Ray 2.60 and poptune generate for the same param_space,
num_samples, points_to_evaluate, constant_grid_search and random_state.

The same config sequences. Without a random_state both repeat a run after
``np.random.seed(...)``, with other values: poptune seeds its own generator from the global
state (README row "A reproducible run"; sample.py docstring, "one draw").
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

pytest.importorskip("ray")

from ray import tune as ray_tune  # noqa: E402
from ray.tune.experiment import Experiment  # noqa: E402
from ray.tune.search import BasicVariantGenerator as RayBVG  # noqa: E402

import poptune  # noqa: E402
from poptune.search import BasicVariantGenerator  # noqa: E402
from tests.compat.ray_decisions._ray import (  # noqa: E402
    Row,
    assert_same,
    global_random_state,
    outcome,
)


def train_fn(config: dict[str, Any]) -> None:
    pass


def ray_configs(space: dict[str, Any], n: int, storage: str, **kw: Any) -> list[dict]:
    """Every config Ray's generator makes (its Experiment keeps a marker file in
    ``storage``)."""
    experiment = Experiment("e", train_fn, config=space, num_samples=n, storage_path=storage)
    generator = RayBVG(**kw)
    generator.add_configurations([experiment])
    configs = []
    for _ in range(500):
        trial = generator.next_trial()
        if trial is None:
            if generator.is_finished():
                break
            continue
        configs.append(trial.config)
    return configs


def poptune_configs(space: dict[str, Any], n: int, **kw: Any) -> list[dict]:
    generator = BasicVariantGenerator(**kw)
    generator.setup_experiment(space, n, None)
    configs = []
    for i in range(500):
        suggestion = generator.next_trial(f"t{i}")
        if suggestion is None:
            break
        configs.append(suggestion.config)
    return configs


def spaces(t: Any) -> dict[str, dict[str, Any]]:
    """The same param_spaces written with Ray's ``tune`` or with ``poptune``."""
    return {
        "grid": {"a": t.grid_search([1, 2, 3]), "b": t.grid_search(["x", "y"])},
        "grid+random": {"a": t.grid_search([1, 2]), "lr": t.loguniform(1e-4, 1e-1),
                        "k": t.randint(0, 100)},
        "nested grid": {"opt": {"name": t.grid_search(["sgd", "adam"]), "lr": t.uniform(0, 1)},
                        "layers": [t.grid_search([1, 2]), {"w": t.choice([8, 16, 32])}]},
        "random only": {"x": t.uniform(-1, 1), "c": t.choice(["a", "b", "c"]),
                        "q": t.qrandint(0, 20, 5), "n": t.randn(0, 1)},
        "sample_from": {"a": t.uniform(0, 1),
                        "b": t.sample_from(lambda spec: spec.config.a * 2)},
        "grid in grid values": {"a": t.grid_search([{"x": 1}, {"x": 2}]),
                                "r": t.uniform(0, 1)},
    }


RAY_SPACES, SPACES = spaces(ray_tune), spaces(poptune)


def random_states() -> list[tuple[str, Any, Any]]:
    """(label, Ray's random_state, poptune's): fresh, equal generators for each side."""
    return [("0", 0, 0), ("42", 42, 42),
            ("Generator(5)", np.random.default_rng(5), np.random.default_rng(5)),
            ("RandomState(5)", np.random.RandomState(5), np.random.RandomState(5))]


@pytest.mark.parametrize("name", list(SPACES))
def test_same_config_sequences(name, tmp_path):
    rows: list[Row] = []
    for n in (1, 3):
        for constant in (False, True):
            for label, ray_state, pop_state in random_states():
                ray_v = outcome(lambda: ray_configs(
                    RAY_SPACES[name], n, str(tmp_path), constant_grid_search=constant,
                    random_state=ray_state))
                pop_v = outcome(lambda: poptune_configs(
                    SPACES[name], n, constant_grid_search=constant, random_state=pop_state))
                rows.append((f"num_samples={n} constant_grid_search={constant} "
                             f"random_state={label}", ray_v, pop_v))
    assert_same(rows, name)


POINTS = [{"a": 2, "lr": 0.5}, {"a": 1}, {"k": 7}]


@pytest.mark.parametrize("n", [1, 2, 4, 6])
def test_same_configs_with_points_to_evaluate(n, tmp_path):
    cases = [("grid+random", POINTS[:1]), ("grid+random", POINTS),
             ("random only", [{"x": 0.5}]), ("random only", [{"x": 0.5, "c": "b"}, {"q": 10}])]
    rows: list[Row] = []
    for name, points in cases:
        ray_v = outcome(lambda: ray_configs(RAY_SPACES[name], n, str(tmp_path), random_state=1,
                                            points_to_evaluate=copy.deepcopy(points)))
        pop_v = outcome(lambda: poptune_configs(SPACES[name], n, random_state=1,
                                                points_to_evaluate=copy.deepcopy(points)))
        rows.append((f"{name}, points_to_evaluate={points}", ray_v, pop_v))
    assert_same(rows, f"num_samples={n}")


def test_global_numpy_seed_repeats_the_configs(tmp_path):
    # README row "A reproducible run": np.random.seed(...) and no random_state repeat the
    # run in both; poptune's generator is seeded from the global state (one draw), so its
    # values are not Ray's
    runs: dict[str, list[list[dict]]] = {"Ray": [], "poptune": []}
    for _ in range(2):
        with global_random_state(3):
            runs["Ray"].append(ray_configs(RAY_SPACES["random only"], 3, str(tmp_path)))
        with global_random_state(3):
            runs["poptune"].append(poptune_configs(SPACES["random only"], 3))
    for lib, (first, second) in runs.items():
        assert first == second, f"{lib}: another run after np.random.seed(3): {first} {second}"
    assert runs["Ray"][0] != runs["poptune"][0], "poptune now draws Ray's values"
