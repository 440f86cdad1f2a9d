"""``poptune.suggest``: Ray 1.x's ``ray.tune.suggest`` paths, for tutorials of that time."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import poptune as tune
from poptune import search

#: Ray 1.x module -> (name, the poptune object it must be)
PATHS = [
    ("poptune.suggest", "ConcurrencyLimiter", search.ConcurrencyLimiter),
    ("poptune.suggest", "BasicVariantGenerator", search.BasicVariantGenerator),
    ("poptune.suggest", "Searcher", search.Searcher),
    ("poptune.suggest", "SearchAlgorithm", search.SearchAlgorithm),
    ("poptune.suggest", "create_searcher", search.create_searcher),
    ("poptune.suggest.suggestion", "Searcher", search.Searcher),
    ("poptune.suggest.suggestion", "ConcurrencyLimiter", search.ConcurrencyLimiter),
    ("poptune.suggest.search", "SearchAlgorithm", search.SearchAlgorithm),
    ("poptune.suggest.basic_variant", "BasicVariantGenerator", search.BasicVariantGenerator),
    ("poptune.suggest.repeater", "Repeater", search.Repeater),
    ("poptune.suggest.variant_generator", "grid_search", tune.grid_search),
    ("poptune.suggest.hyperopt", "HyperOptSearch", "poptune.search.hyperopt"),
    ("poptune.suggest.optuna", "OptunaSearch", "poptune.search.optuna"),
    ("poptune.suggest.bayesopt", "BayesOptSearch", "poptune.search.bayesopt"),
    ("poptune.suggest.bohb", "TuneBOHB", "poptune.search.bohb"),
    ("poptune.suggest.ax", "AxSearch", "poptune.search.ax"),
    ("poptune.suggest.nevergrad", "NevergradSearch", "poptune.search.nevergrad"),
    ("poptune.suggest.zoopt", "ZOOptSearch", "poptune.search.zoopt"),
    ("poptune.suggest.hebo", "HEBOSearch", "poptune.search.hebo"),
    ("poptune.trial", "Trial", "poptune.experiment.trial"),
]


@pytest.mark.filterwarnings("ignore:`tune.suggest` has been renamed")
@pytest.mark.parametrize("module, name, expected", PATHS, ids=[f"{m}.{n}" for m, n, _ in PATHS])
def test_ray_1x_path_gives_poptunes_object(module, name, expected):
    if isinstance(expected, str):  # a module imported here only (some import their library)
        expected = getattr(importlib.import_module(expected), name)
    assert getattr(importlib.import_module(module), name) is expected


def test_the_old_path_warns_once_per_process():
    code = ("import warnings; warnings.simplefilter('always')\n"
            "from poptune.suggest.hyperopt import HyperOptSearch\n"
            "from poptune.suggest import ConcurrencyLimiter\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("FutureWarning: `tune.suggest` has been renamed to `tune.search` "
                             "(Ray 2.0)") == 1


def quadratic(config):
    tune.report({"loss": (config["x"] - 0.3) ** 2})


@pytest.mark.filterwarnings("ignore:`tune.suggest` has been renamed")
def test_a_ray_1x_script_with_hyperopt_runs(tmp_path):
    pytest.importorskip("hyperopt")
    from poptune.suggest import ConcurrencyLimiter
    from poptune.suggest.hyperopt import HyperOptSearch

    analysis = tune.run(quadratic, config={"x": tune.uniform(0, 1)}, num_samples=8,
                        search_alg=ConcurrencyLimiter(HyperOptSearch(random_state_seed=1),
                                                      max_concurrent=2),
                        metric="loss", mode="min", storage_path=str(tmp_path), verbose=0)
    assert len(analysis.trials) == 8
    assert analysis.best_result["loss"] < 0.05


@pytest.mark.filterwarnings("ignore:`tune.suggest` has been renamed")
def test_tune_dot_suggest_as_an_attribute():
    """``import ray.tune as tune`` then ``tune.suggest.ConcurrencyLimiter(...)``."""
    assert tune.suggest.ConcurrencyLimiter is search.ConcurrencyLimiter
