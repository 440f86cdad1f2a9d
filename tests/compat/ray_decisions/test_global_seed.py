"""Ray's recipe for a reproducible run (``random.seed(...)`` and ``np.random.seed(...)`` in
the driver, no seed arguments) repeats the random decisions in Ray 2.60 and in poptune:
ASHA's bracket draw and PBT's explore step (README row "A reproducible run"). The sampled
configs are in test_bvg.py and test_sampling.py.
"""

from __future__ import annotations

import random
from typing import Any, Callable

import numpy as np
import pytest

pytest.importorskip("ray")

from ray.tune.schedulers import AsyncHyperBandScheduler as RayASHA  # noqa: E402
from ray.tune.schedulers import PopulationBasedTraining as RayPBT  # noqa: E402
from ray.tune.schedulers.pbt import _explore as ray_explore  # noqa: E402

from poptune.schedulers import AsyncHyperBandScheduler, PopulationBasedTraining  # noqa: E402
from poptune.schedulers._pbt_explore import explore  # noqa: E402
from tests.compat.ray_decisions._ray import global_random_state, ptrial, rtrial  # noqa: E402

ASHA = dict(metric="loss", mode="min", max_t=81, grace_period=1, reduction_factor=3,
            brackets=3)
PBT = dict(metric="loss", mode="min", perturbation_interval=1,
           hyperparam_mutations={"lr": [0.01, 0.1, 0.5, 1.0], "m": lambda: random.random()})
START = {"lr": 0.1, "m": 0.5}


def ray_brackets() -> list[int]:
    scheduler = RayASHA(**ASHA)
    draws = []
    for i in range(15):
        trial = rtrial(f"t{i}")
        scheduler.on_trial_add(None, trial)
        draws.append(scheduler._brackets.index(scheduler._trial_info[trial.trial_id]))
    return draws


def poptune_brackets() -> list[int]:
    scheduler = AsyncHyperBandScheduler(**ASHA)
    draws = []
    for i in range(15):
        trial = ptrial(f"t{i}")
        scheduler.on_trial_add(trial)
        draws.append(scheduler._trial_info[trial.trial_id])
    return draws


def ray_explores() -> list[tuple[Any, float]]:
    """10 explores of START by Ray's PBT's own explore step."""
    s = RayPBT(**PBT)
    configs = [ray_explore(dict(START), s._hyperparam_mutations, s._resample_probability,
                           s._perturbation_factors, s._custom_explore_fn)[0]
               for _ in range(10)]
    return [(c["lr"], round(c["m"], 6)) for c in configs]


def poptune_explores() -> list[tuple[Any, float]]:
    s = PopulationBasedTraining(**PBT)
    configs = [explore(dict(START), s._hyperparam_mutations, s._resample_probability,
                       s._perturbation_factors, s._custom_explore_fn, rng=s._rng)[0]
               for _ in range(10)]
    return [(c["lr"], round(c["m"], 6)) for c in configs]


def seeded_twice(draw: Callable[[], Any]) -> tuple[Any, Any]:
    """``draw()`` twice, each after ``random.seed(1234); np.random.seed(5678)``."""
    runs = []
    for _ in range(2):
        with global_random_state():
            random.seed(1234)
            np.random.seed(5678)
            runs.append(draw())
    return runs[0], runs[1]


@pytest.mark.parametrize("ray_draw,poptune_draw", [(ray_brackets, poptune_brackets),
                                                     (ray_explores, poptune_explores)],
                         ids=["ASHA bracket draw", "PBT explore"])
def test_the_global_seeds_repeat_the_draws_as_in_ray(ray_draw, poptune_draw):
    ray_runs, poptune_runs = seeded_twice(ray_draw), seeded_twice(poptune_draw)
    repeats = (ray_runs[0] == ray_runs[1], poptune_runs[0] == poptune_runs[1])
    assert repeats == (True, True), f"(Ray, poptune) repeat: {repeats}; poptune {poptune_runs}"
