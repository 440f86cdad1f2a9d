"""ASHA, HyperBand, the median stopping rule and BOHB on real worker processes."""

from __future__ import annotations

import json
import os
import tempfile

import poptune as tune
from poptune.schedulers import (
    ASHAScheduler,
    HyperBandForBOHB,
    HyperBandScheduler,
    MedianStoppingRule,
)
from poptune.search.bohb import TuneBOHB


def curve(config):
    """score = x * iteration, checkpointing every iteration; reports where it resumed from."""
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as d:
            with open(os.path.join(d, "state.json")) as f:
                start = json.load(f)["it"]
    for it in range(start + 1, config.get("iters", 12) + 1):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "state.json"), "w") as f:
                json.dump({"it": it}, f)
            tune.report({"score": config["x"] * it, "resumed_from": start},
                        checkpoint=tune.Checkpoint.from_directory(d))


def fit(tmp_path, name, scheduler, xs=None, **tune_kw):
    space = {"x": tune.grid_search(xs)} if xs is not None else {"x": tune.uniform(0, 10)}
    grid = tune.Tuner(
        curve, param_space=space,
        tune_config=tune.TuneConfig(scheduler=scheduler, metric="score", mode="max", **tune_kw),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0),
    ).fit()
    assert grid.num_errors == 0
    return grid


def iterations(result):
    return list(result.metrics_dataframe["training_iteration"])


def test_asha_stops_the_bad_trials_at_the_first_rung(tmp_path):
    asha = ASHAScheduler(max_t=9, grace_period=1, reduction_factor=3)
    grid = fit(tmp_path, "asha", asha, xs=[8, 7, 6, 5, 4, 3, 2, 1], max_concurrent_trials=1)
    final = {r.config["x"]: r.metrics["training_iteration"] for r in grid}
    assert final == {8: 9, 7: 1, 6: 1, 5: 1, 4: 1, 3: 1, 2: 1, 1: 1}  # max_t stops the best


def test_hyperband_pauses_halves_and_resumes_survivors_to_max_t(tmp_path):
    hb = HyperBandScheduler(max_t=9, reduction_factor=3)  # brackets: 3 trials, then 5
    grid = fit(tmp_path, "hb", hb, xs=[1, 2, 3, 4, 5, 6, 7, 8])
    by_x = {r.config["x"]: r for r in grid}
    assert [by_x[x].metrics["training_iteration"] for x in range(1, 9)] == [
        9, 9, 9, 3, 3, 3, 9, 9]  # bracket s=1 keeps the best 2 of 5 at milestone 3
    for x in range(1, 9):  # each iteration reported exactly once despite pause/resume
        assert iterations(by_x[x]) == list(range(1, by_x[x].metrics["training_iteration"] + 1))
    resumed = [by_x[x].metrics["resumed_from"] for x in (7, 8)]
    assert 3 in resumed  # at least one survivor waited, paused, and resumed from its checkpoint


def test_median_stopping_rule_stops_trials_below_the_median(tmp_path):
    rule = MedianStoppingRule(time_attr="training_iteration", grace_period=2,
                              min_samples_required=1)
    grid = fit(tmp_path, "median", rule, xs=[6, 5, 4, 3, 2, 1], max_concurrent_trials=1)
    by_x = {r.config["x"]: r for r in grid}
    assert by_x[6].metrics["training_iteration"] == 12  # nothing to compare with: runs on
    # every later trial's best is below the first one's running mean at the grace period
    assert [by_x[x].metrics["training_iteration"] for x in (5, 4, 3, 2, 1)] == [2] * 5


def test_bohb_with_hyperband_for_bohb_halves_an_incomplete_bracket(tmp_path):
    searcher = TuneBOHB(seed=0)
    hb = HyperBandForBOHB(max_t=9, reduction_factor=3)  # first bracket: 9 trials at 1
    grid = fit(tmp_path, "bohb", hb, search_alg=searcher, num_samples=8)
    ranked = sorted(grid, key=lambda r: -r.config["x"])
    assert [r.metrics["training_iteration"] for r in ranked] == [9, 3, 3, 1, 1, 1, 1, 1]
    for r in ranked:
        assert 0 <= r.config["x"] < 10
        assert iterations(r) == list(range(1, r.metrics["training_iteration"] + 1))
    assert ranked[0].metrics["resumed_from"] in (1, 3)  # paused at 1 (and at 3 unless last)


def nested(config):
    for i in range(20):
        tune.report({"val": {"loss": config["x"] / (i + 1)}})


def test_schedulers_and_searchers_see_nested_metrics_flattened(tmp_path):
    """As in Ray, a metric reported as ``{"val": {"loss": ...}}`` is ``"val/loss"`` to the
    scheduler and the searcher (before, ASHA never found it and stopped nothing)."""
    from poptune.search import ConcurrencyLimiter, Searcher

    class Listen(Searcher):
        def __init__(self):
            super().__init__(metric="val/loss", mode="min")
            self.xs, self.seen, self.final = [1.0, 2.0, 3.0, 4.0], [], []

        def suggest(self, trial_id):
            return {"x": self.xs.pop(0)} if self.xs else Searcher.FINISHED

        def on_trial_result(self, trial_id, result):
            self.seen.append(result["val/loss"])

        def on_trial_complete(self, trial_id, result=None, error=False):
            self.final.append(result["val/loss"])

    listen = Listen()
    grid = tune.Tuner(
        nested,
        tune_config=tune.TuneConfig(
            search_alg=ConcurrencyLimiter(listen, max_concurrent=1), num_samples=4,
            scheduler=ASHAScheduler(metric="val/loss", mode="min", max_t=20, grace_period=2,
                                    reduction_factor=2)),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
    ).fit()
    iterations = {r.config["x"]: r.metrics["training_iteration"] for r in grid}
    assert iterations[1.0] == 20 and iterations[4.0] < 20  # the worse trials were stopped
    assert len(listen.final) == 4 and listen.seen
