"""``BayesOptSearch(analysis=...)`` / ``register_analysis``: an earlier experiment's results
teach the Gaussian process before its first suggestion, as in Ray."""

from __future__ import annotations

import importlib.util

import pytest

import poptune as tune
from poptune.analysis import ExperimentAnalysis
from poptune.backends.simulated import SimulatedBackend

pytestmark = pytest.mark.skipif(importlib.util.find_spec("bayes_opt") is None,
                                reason="bayes_opt is not installed")


def _loss(config):
    tune.report({"loss": (config["x"] - 0.3) ** 2})


@pytest.fixture
def earlier(tmp_path):
    grid = tune.Tuner(
        _loss, param_space={"x": tune.grid_search([0.0, 0.25, 0.5, 1.0])},
        tune_config=tune.TuneConfig(backend=SimulatedBackend(), metric="loss", mode="min"),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="earlier", verbose=0),
    ).fit()
    assert not grid.errors
    return ExperimentAnalysis(str(tmp_path / "earlier"))


def test_an_earlier_experiment_is_learnt_before_the_first_suggestion(earlier):
    from poptune.search.bayesopt import BayesOptSearch

    searcher = BayesOptSearch({"x": (0.0, 1.0)}, metric="loss", mode="min",
                              random_search_steps=0, analysis=earlier)
    assert searcher.suggest("t0") is not None
    learnt = sorted(zip(searcher.optimizer.space.params[:, 0], searcher.optimizer.space.target))
    expected = sorted((x, -((x - 0.3) ** 2)) for x in (0.0, 0.25, 0.5, 1.0))
    assert [x for x, _ in learnt] == pytest.approx([x for x, _ in expected])
    assert [t for _, t in learnt] == pytest.approx([t for _, t in expected])


def test_register_analysis_skips_rows_without_the_metric(earlier):
    from poptune.search.bayesopt import BayesOptSearch

    searcher = BayesOptSearch({"x": (0.0, 1.0)}, metric="other", mode="max",
                              random_search_steps=0)
    searcher.register_analysis(earlier)  # no row has "other": nothing to learn
    assert len(searcher.optimizer.space) == 0


@pytest.mark.parametrize("value", [-1, 1.5, True])
def test_repeat_float_precision_is_a_whole_number_at_least_0(value):
    from poptune.search.bayesopt import BayesOptSearch

    with pytest.raises(ValueError, match="`repeat_float_precision` must be an integer >= 0"):
        BayesOptSearch({"x": (0.0, 1.0)}, metric="loss", mode="min",
                       repeat_float_precision=value)
