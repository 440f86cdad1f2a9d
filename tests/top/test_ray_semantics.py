"""Semantics behind existing names that issue 15 found differing from Ray Tune 2.60.

Runs use the simulated backend (trainables in the driver); an interrupted experiment is made
by a callback raising ``KeyboardInterrupt``, as Ctrl-C would."""

from __future__ import annotations

import json
import os
import tempfile

import pytest

import poptune as tune
from poptune import simulation


@pytest.fixture(autouse=True)
def _simulated(monkeypatch):
    monkeypatch.setenv("POPTUNE_BACKEND", "simulated")


class Steps(tune.Trainable):
    """One simulated 10-second step per iteration; checkpoints its counter."""

    def setup(self, config):
        self.v = 0

    def step(self):
        simulation.advance(10)
        self.v += 1
        return {"v": self.v}

    def save_checkpoint(self, checkpoint_dir):
        return {"v": self.v}

    def load_checkpoint(self, checkpoint):
        self.v = checkpoint["v"]


class InterruptAt(tune.Callback):
    def __init__(self, iteration):
        self.iteration = iteration

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result["training_iteration"] == self.iteration:
            raise KeyboardInterrupt


def _interrupted(tmp_path, trainable, at, **run):
    callbacks = [InterruptAt(at)]
    tune.Tuner(trainable, param_space=run.pop("param_space", {}),
               tune_config=run.pop("tune_config", None),
               run_config=tune.RunConfig(storage_path=str(tmp_path), name="e", verbose=0,
                                         callbacks=callbacks, **run)).fit()
    return str(tmp_path / "e")


def _checkpoints(exp_dir):
    (trial_dir,) = [d for d in os.listdir(exp_dir) if os.path.isdir(os.path.join(exp_dir, d))
                    and not d.startswith(".")]
    return sorted(c for c in os.listdir(os.path.join(exp_dir, trial_dir))
                  if c.startswith("checkpoint_"))


def function_with_checkpoints(config):
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as path, open(os.path.join(path, "s.json")) as f:
            start = json.load(f)["i"] + 1
    for i in range(start, 4):
        d = tempfile.mkdtemp()
        with open(os.path.join(d, "s.json"), "w") as f:
            json.dump({"i": i}, f)
        tune.report({"i": i}, checkpoint=tune.Checkpoint.from_directory(d))


def test_checkpoint_numbering_continues_after_restore(tmp_path):
    exp = _interrupted(tmp_path, function_with_checkpoints, at=1)
    assert _checkpoints(exp) == ["checkpoint_000000"]
    tune.Tuner.restore(exp, function_with_checkpoints).fit()
    assert _checkpoints(exp) == [f"checkpoint_{i:06d}" for i in range(4)]


def test_num_to_keep_after_resume_keeps_the_newest(tmp_path):
    keep2 = tune.CheckpointConfig(checkpoint_frequency=1, num_to_keep=2)
    exp = _interrupted(tmp_path, Steps, at=3, checkpoint_config=keep2,
                       stop={"training_iteration": 6})
    assert _checkpoints(exp) == ["checkpoint_000001", "checkpoint_000002"]
    grid = tune.Tuner.restore(exp, Steps).fit()
    assert _checkpoints(exp) == ["checkpoint_000004", "checkpoint_000005"]
    assert grid[0].checkpoint.path.endswith("checkpoint_000005")


def test_time_budget_after_restore_continues_with_what_is_left(tmp_path):
    exp = _interrupted(tmp_path, Steps, at=6, tune_config=tune.TuneConfig(time_budget_s=100),
                       checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=1))
    grid = tune.Tuner.restore(exp, Steps).fit()
    # 60 of the 100 simulated seconds were spent before the interrupt: about 4 more steps
    # (a fresh budget would allow 10 more)
    assert 9 <= grid[0].metrics["training_iteration"] <= 12


def test_restore_refuses_another_trainable_or_another_space(tmp_path):
    def objective(config):
        tune.report({"score": config["x"]})

    def other(config):
        tune.report({"score": 0})

    tune.Tuner(objective, param_space={"x": 1}, run_config=tune.RunConfig(
        storage_path=str(tmp_path), name="e", verbose=0)).fit()
    exp = str(tmp_path / "e")
    with pytest.raises(ValueError, match="named 'other' but the experiment ran 'objective'"):
        tune.Tuner.restore(exp, other)
    with pytest.raises(ValueError, match=r"has the keys \['y'\] but the experiment's has \['x'\]"):
        tune.Tuner.restore(exp, objective, param_space={"y": 1})
    assert tune.Tuner.restore(exp, objective, param_space={"x": 2}) is not None


def test_get_results_after_restore_keeps_metric_and_mode(tmp_path):
    def objective(config):
        tune.report({"score": config["x"]})

    tune.Tuner(objective, param_space={"x": tune.grid_search([3, 1, 2])},
               tune_config=tune.TuneConfig(metric="score", mode="min"),
               run_config=tune.RunConfig(storage_path=str(tmp_path), name="e", verbose=0)).fit()
    grid = tune.Tuner.restore(str(tmp_path / "e"), objective).get_results()
    assert grid.get_best_result().config == {"x": 1}


def test_can_restore_is_true_while_the_experiment_runs(tmp_path):
    seen = []

    class Probe(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            seen.append(tune.Tuner.can_restore(str(tmp_path / "e")))

    def objective(config):
        tune.report({"score": 1})

    tune.Tuner(objective, run_config=tune.RunConfig(storage_path=str(tmp_path), name="e",
                                                    verbose=0, callbacks=[Probe()])).fit()
    assert seen == [True]


def test_sample_from_reads_other_entries_through_spec_config(tmp_path):
    def objective(config):
        tune.report({"score": 1})

    space = {"a": tune.grid_search([1, 2]), "n": {"b": tune.choice([3])},
             "x": tune.sample_from(lambda spec: spec.config.a * 10 + spec.config.n.b)}
    grid = tune.Tuner(objective, param_space=space, run_config=tune.RunConfig(
        storage_path=str(tmp_path), verbose=0)).fit()
    assert sorted(r.config["x"] for r in grid) == [13, 23]


def test_result_grid_public_constructor_takes_an_experiment_analysis(tmp_path):
    def objective(config):
        tune.report({"score": config["x"]})

    analysis = tune.run(objective, config={"x": tune.grid_search([1, 3, 2])}, verbose=0,
                        storage_path=str(tmp_path), name="e", metric="score", mode="max")
    grid = tune.ResultGrid(analysis)
    assert len(grid) == 3
    assert grid.get_best_result().config == {"x": 3}
    assert grid.experiment_path == str(tmp_path / "e")


def test_optuna_define_by_run_takes_step_positionally(tmp_path):
    pytest.importorskip("optuna")
    from poptune.search.optuna import OptunaSearch

    def space(trial):
        trial.suggest_int("n", 1, 9, 4)  # Optuna < 4 spelling: step positional
        trial.suggest_float("lr", 0.1, 0.5, 0.1)

    def objective(config):
        tune.report({"score": config["n"]})

    grid = tune.Tuner(objective, tune_config=tune.TuneConfig(
        search_alg=OptunaSearch(space=space, metric="score", mode="max", seed=0),
        num_samples=4), run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    assert not grid.errors
    assert {r.config["n"] for r in grid} <= {1, 5, 9}
    assert all(round(r.config["lr"] * 10, 6) == round(r.config["lr"] * 10) for r in grid)


def _hints(caplog, text):
    return [r for r in caplog.records if text in r.getMessage()]


def test_an_interrupted_run_says_so_once_with_how_to_resume(tmp_path, capsys, caplog):
    """Ctrl-C: the summary says "interrupted" (not "finished"), and the resume hint comes
    once: ``Tuner.restore`` after ``fit()``, ``tune.run(..., resume=True)`` after ``tune.run``."""
    with caplog.at_level("WARNING", logger="poptune"):
        tune.Tuner(Steps, run_config=tune.RunConfig(
            storage_path=str(tmp_path), name="e", verbose=1, callbacks=[InterruptAt(2)])).fit()
    out = capsys.readouterr().out
    assert "Experiment interrupted after" in out and "Experiment finished" not in out
    assert len(_hints(caplog, "resume with Tuner.restore(")) == 1
    assert len(_hints(caplog, "Interrupted: stopping the trials")) == 1
    caplog.clear()
    with caplog.at_level("WARNING", logger="poptune"):
        tune.run(Steps, name="r", storage_path=str(tmp_path), verbose=1,
                 callbacks=[InterruptAt(2)])
    assert "Experiment interrupted after" in capsys.readouterr().out
    assert not _hints(caplog, "Tuner.restore(")
    assert len(_hints(caplog, "tune.run(..., name='r', resume=True)")) == 1
