"""A seeded experiment interrupted and restored ends as the uninterrupted one does (simulated
backend, one slot: an interruption cannot change when anything happens, so any difference is
a restore bug). Found by a probe: the interrupted trial used to resume after every new trial,
a model-based searcher waited for ever for a trial the restore had ended, and a restore
deleted a committed checkpoint named as a stale one."""

from __future__ import annotations

import json
import logging
import os
import tempfile

import pytest

import poptune as tune
from poptune import simulation
from poptune.backends.simulated import SimulatedBackend
from poptune.callback import Callback
from poptune.schedulers import ASHAScheduler, MedianStoppingRule
from poptune.stopper import Stopper

#: results (counted over every fit of a test) at which the driver is interrupted
PLAN: dict[str, list[int]] = {"at": [], "seen": []}


class CtrlC(Callback):
    """Ctrl-C at the planned results (the driver's KeyboardInterrupt path)."""

    def on_trial_result(self, iteration, trials, trial, result, **info):
        PLAN["seen"].append(1)
        if len(PLAN["seen"]) in PLAN["at"]:
            raise KeyboardInterrupt


class MaxIter(Stopper):
    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, trial_id, result):
        return result["training_iteration"] >= self.n

    def stop_all(self):
        return False


def toy(config):
    """A deterministic curve; a checkpoint every step; steps take 10-43 simulated seconds."""
    loss, step = 1.0, 0
    ckpt = tune.get_checkpoint()
    if ckpt:
        with ckpt.as_directory() as d, open(os.path.join(d, "state.json")) as f:
            loss, step = json.load(f)
    while True:
        step += 1
        lr = config["lr"]
        loss -= lr * (loss - lr) + 0.001 * config["b"]
        simulation.advance(10.0 + 37.0 * lr)
        d = tempfile.mkdtemp(dir=config["scratch"])
        with open(os.path.join(d, "state.json"), "w") as f:
            json.dump([loss, step], f)
        tune.report({"loss": loss, "step": step}, checkpoint=tune.Checkpoint.from_directory(d))


def _space(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    return {"lr": tune.loguniform(1e-3, 0.9), "b": tune.randint(0, 10), "scratch": str(scratch)}


def _asha():
    return ASHAScheduler(max_t=27, grace_period=3, reduction_factor=3), None, 27, 10


def _median():
    return (MedianStoppingRule(time_attr="training_iteration", grace_period=3,
                               min_samples_required=2), None, 15, 8)


def _bayesopt():
    pytest.importorskip("bayes_opt")
    from poptune.search.bayesopt import BayesOptSearch

    return None, BayesOptSearch(random_state=3, random_search_steps=3), 5, 10


def _hyperopt():
    pytest.importorskip("hyperopt")
    from poptune.search.hyperopt import HyperOptSearch

    return None, HyperOptSearch(random_state_seed=3, n_initial_points=3), 5, 10


CASES = {"asha": _asha, "median": _median, "bayesopt": _bayesopt, "hyperopt": _hyperopt}


def _run(case, tmp_path, name, at=()):
    """Fit (interrupted at ``at``), then restore until it ends; each trial's config and
    iterations, and the best trial, by creation order."""
    PLAN["at"], PLAN["seen"] = list(at), []
    scheduler, searcher, max_iter, samples = CASES[case]()
    space = _space(tmp_path)
    if case == "bayesopt":
        space = {**space, "lr": tune.uniform(1e-3, 0.9), "b": tune.uniform(0, 10)}
    tuner = tune.Tuner(
        toy, param_space=space,
        tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=samples, seed=7,
                                    scheduler=scheduler, search_alg=searcher,
                                    backend=SimulatedBackend(num_cpus=1)),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0,
                                  stop=MaxIter(max_iter), callbacks=[CtrlC()]))
    grid = tuner.fit()
    for _ in range(len(at)):
        grid = tune.Tuner.restore(str(tmp_path / name), toy, resume_unfinished=True).fit()
    rows = sorted((r.metrics["trial_id"], r) for r in grid)
    trials = [({k: round(v, 9) for k, v in r.config.items() if k != "scratch"},
               list(r.metrics_dataframe["training_iteration"])) for _, r in rows]
    best = grid.get_best_result(scope="last").metrics["trial_id"]
    return trials, [tid for tid, _ in rows].index(best)


@pytest.mark.parametrize("case,at", [("asha", (5,)), ("asha", (7, 19, 30)),
                                     ("median", (7, 19, 30)), ("hyperopt", (7,)),
                                     ("bayesopt", (7, 19, 30))])
def test_a_seeded_run_interrupted_and_restored_ends_as_the_uninterrupted_one(tmp_path, case, at):
    whole = _run(case, tmp_path, "whole")
    assert _run(case, tmp_path, "cut", at) == whole


def test_a_restore_keeps_a_new_checkpoint_named_as_a_stale_one(tmp_path, caplog):
    """A driver killed after a worker wrote ``checkpoint_000002`` but before the journal took
    it leaves it on disk; the restored trial writes its own ``checkpoint_000002``: that one
    must survive the stale directory's removal (it was removed at the first commit)."""
    PLAN["at"], PLAN["seen"] = [2], []
    space = {**_space(tmp_path), "lr": 0.3, "b": 1}
    tune.Tuner(toy, param_space=space,
               tune_config=tune.TuneConfig(backend=SimulatedBackend(num_cpus=1)),
               run_config=tune.RunConfig(name="exp", storage_path=str(tmp_path), verbose=0,
                                         stop=MaxIter(4), callbacks=[CtrlC()])).fit()
    (trial_dir,) = [p for p in (tmp_path / "exp").iterdir() if p.name.startswith("toy_")]
    assert sorted(p.name for p in trial_dir.glob("checkpoint_*")) == [
        "checkpoint_000000", "checkpoint_000001"]
    stale = trial_dir / "checkpoint_000002"
    stale.mkdir()
    (stale / "state.json").write_text("[0.0, 99]")
    grid = tune.Tuner.restore(str(tmp_path / "exp"), toy, resume_unfinished=True).fit()
    assert list(grid[0].metrics_dataframe["training_iteration"]) == [1, 2, 3, 4]
    state = json.loads((trial_dir / "checkpoint_000002" / "state.json").read_text())
    assert state[1] == 3  # the restored run's own step 3, not the stale step 99
    with caplog.at_level(logging.WARNING, logger="poptune"):  # nothing the journal names
        tune.Tuner.restore(str(tmp_path / "exp"), toy).fit()    # is missing
    assert "is in the journal but not in" not in caplog.text
