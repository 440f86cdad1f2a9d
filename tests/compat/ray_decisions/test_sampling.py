"""Search-space sampling: Ray 2.60's ``tune.*`` domains and poptune's draw the same values
for the same seed (an int, a ``RandomState`` or a ``Generator``), one value or several, and
return them as the same type (``size > 1``: a numpy array or a list, as sample.py's docstring
says).

Documented difference, asserted below: with no random_state both repeat after
``np.random.seed``, with other values (README row "A reproducible run"; sample.py docstring,
"one draw").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("ray")

from ray import tune as ray_tune  # noqa: E402

import poptune  # noqa: E402
from tests.compat.ray_decisions._ray import Row, assert_same, global_random_state  # noqa: E402


def domains(t: Any) -> dict[str, Any]:
    """The same domains built by Ray's ``tune`` or by ``poptune``."""
    return {
        "uniform(-1,3)": t.uniform(-1, 3),
        "quniform(0,10,0.5)": t.quniform(0, 10, 0.5),
        "quniform(0,10,1)": t.quniform(0, 10, 1),
        "quniform(-3,3,3)": t.quniform(-3, 3, 3),
        "loguniform(1e-4,1e-1)": t.loguniform(1e-4, 1e-1),
        "qloguniform(1e-4,1e-1,5e-5)": t.qloguniform(1e-4, 1e-1, 5e-5),
        "qloguniform(10,1000,10)": t.qloguniform(10, 1000, 10),
        "randint(0,10)": t.randint(0, 10),
        "randint(-5,5)": t.randint(-5, 5),
        "qrandint(0,10,2)": t.qrandint(0, 10, 2),
        "qrandint(1,5)": t.qrandint(1, 5),
        "qrandint(3,20,4)": t.qrandint(3, 20, 4),
        "lograndint(1,1000)": t.lograndint(1, 1000),
        "qlograndint(1,1000,5)": t.qlograndint(1, 1000, 5),
        "choice(mixed)": t.choice(["a", 3, 2.5, None, (1, 2)]),
        "choice(range)": t.choice([1, 2, 3, 4, 5]),
        "randn()": t.randn(),
        "randn(2,0.5)": t.randn(2, 0.5),
        "qrandn(0,3,0.5)": t.qrandn(0, 3, 0.5),
    }


RAY_DOMAINS, DOMAINS = domains(ray_tune), domains(poptune)
SEEDS = {"int": lambda: 7, "RandomState": lambda: np.random.RandomState(7),
         "Generator": lambda: np.random.default_rng(7)}


def typed(value: Any) -> tuple[str, Any]:
    """(type name, value), a numpy array's value as a list (arrays do not compare with
    ``==``)."""
    plain = value.tolist() if isinstance(value, np.ndarray) else value
    return type(value).__name__, plain


@pytest.mark.parametrize("size", [1, 6])
@pytest.mark.parametrize("seed_kind", list(SEEDS))
def test_same_values_and_types_for_the_same_seed(seed_kind, size):
    make_seed = SEEDS[seed_kind]
    rows: list[Row] = [
        (name, typed(ray_domain.sample(size=size, random_state=make_seed())),
         typed(DOMAINS[name].sample(size=size, random_state=make_seed())))
        for name, ray_domain in RAY_DOMAINS.items()]
    assert_same(rows, f"random_state={seed_kind}, size={size}")


@pytest.mark.parametrize("size", [1, 6])
def test_global_numpy_seed_repeats_unseeded_samples(size):
    # README row "A reproducible run": with no random_state, np.random.seed(...) repeats the
    # draws in both; poptune's generator is seeded from the global state (one draw), so its
    # values are not Ray's
    runs: dict[str, list[list[Any]]] = {"Ray": [], "poptune": []}
    for _ in range(2):
        for lib, lib_domains in (("Ray", RAY_DOMAINS), ("poptune", DOMAINS)):
            with global_random_state(7):
                runs[lib].append([repr(d.sample(size=size)) for d in lib_domains.values()])
    for lib, (first, second) in runs.items():
        assert first == second, f"{lib}: another draw after np.random.seed(7)"
    assert runs["Ray"][0] != runs["poptune"][0], "poptune now draws Ray's values"


def test_sample_from_a_function_without_arguments():
    ray_value = ray_tune.sample_from(lambda: 5).sample(config=None)
    assert (ray_value, poptune.sample_from(lambda: 5).sample(config=None)) == (5, 5)
