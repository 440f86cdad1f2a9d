"""Behaviour of the Ray Tune names issue 15 added: the registry and string trainables,
``Experiment``/``run_experiments``, the scheduler and searcher registries, ``ResumeConfig``,
``SyncConfig``, the top-level reporters, the search constants, ``pretty_print``, ``Trial``'s
status constants, ``poptune.callback`` and stoppers given as Ray gives them.

Runs use the simulated backend (trainables in the driver, no worker processes)."""

from __future__ import annotations

import pytest

import poptune as tune
from poptune import registry
from poptune.exceptions import TuneError


@pytest.fixture(autouse=True)
def _simulated(monkeypatch):
    monkeypatch.setenv("POPTUNE_BACKEND", "simulated")
    yield
    registry._unregister_all()


def objective(config):
    for i in range(3):
        tune.report({"score": config["x"] * (i + 1)})


class Counter(tune.Trainable):
    def setup(self, config):
        self.x = config["x"]

    def step(self):
        return {"score": self.x * (self.iteration + 1)}

    def save_checkpoint(self, checkpoint_dir):
        return {"x": self.x}

    def load_checkpoint(self, checkpoint):
        self.x = checkpoint["x"]


# -- register_trainable / register_env and string trainables -------------------------------
def test_tune_run_runs_a_registered_function_by_name(tmp_path):
    tune.register_trainable("my_objective", objective)
    analysis = tune.run("my_objective", config={"x": tune.grid_search([1, 2])}, verbose=0,
                        storage_path=str(tmp_path), metric="score", mode="max")
    assert analysis.best_config == {"x": 2}
    assert all(str(t).startswith("my_objective_") for t in analysis.trials)


def test_tuner_runs_a_registered_class_by_name_and_restores_by_name(tmp_path):
    tune.register_trainable("counter", Counter)
    grid = tune.Tuner("counter", param_space={"x": 3},
                      run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp",
                                                stop={"training_iteration": 2},
                                                verbose=0)).fit()
    assert grid[0].metrics["score"] == 6
    assert tune.Tuner.restore(str(tmp_path / "exp"), "counter") is not None
    analysis = tune.run("counter", config={"x": 2}, stop={"training_iteration": 2}, verbose=0,
                        storage_path=str(tmp_path))
    assert [str(t).split("_")[0] for t in analysis.trials] == ["counter"]
    assert analysis.trials[0].last_result["score"] == 4


def test_unknown_trainable_name_is_a_tune_error(tmp_path):
    with pytest.raises(TuneError, match="Unknown trainable: 'nope'"):
        tune.Tuner("nope")


def test_register_rejects_what_cannot_be_trained():
    with pytest.raises(TypeError, match="`trainable` must be"):
        tune.register_trainable("x", 3)
    with pytest.raises(TypeError, match="`env_creator` must be"):
        tune.register_env("x", "not callable")


def test_register_env_keeps_the_creator():
    tune.register_env("corridor", lambda cfg: ("env", cfg["n"]))
    assert registry.get_env_creator("corridor")({"n": 4}) == ("env", 4)


# -- Experiment / run_experiments ----------------------------------------------------------
def test_run_experiments_runs_each_spec_and_returns_all_trials(tmp_path):
    from poptune.experiment import Experiment

    tune.register_trainable("obj", objective)
    trials = tune.run_experiments([
        Experiment("a", objective, config={"x": 1}, storage_path=str(tmp_path)),
        {"b": {"run": "obj", "config": {"x": tune.grid_search([2, 3])},
               "stop": {"training_iteration": 2}, "storage_path": str(tmp_path)}},
    ], verbose=0)
    assert sorted(t.last_result["score"] for t in trials) == [3, 4, 6]
    assert (tmp_path / "a").is_dir() and (tmp_path / "b").is_dir()
    assert all(t.status == tune.experiment.Trial.TERMINATED for t in trials)


def test_tune_run_takes_an_experiment(tmp_path):
    exp = tune.Experiment("one", objective, config={"x": 2}, storage_path=str(tmp_path),
                          stop={"training_iteration": 1})
    analysis = tune.run(exp, verbose=0)
    assert [t.last_result["score"] for t in analysis.trials] == [2]
    assert exp.path == str(tmp_path / "one")


def test_experiment_from_json_needs_run():
    with pytest.raises(TuneError, match="no 'run'"):
        tune.Experiment.from_json("x", {"config": {}})
    with pytest.raises(TuneError, match="not valid"):
        tune.Experiment.from_json("x", {"run": objective, "bogus": 1})


# -- create_scheduler / create_searcher ----------------------------------------------------
def test_create_scheduler_pbt_runs_end_to_end(tmp_path):
    pbt = tune.create_scheduler("PBT", metric="score", mode="max", perturbation_interval=1,
                                hyperparam_mutations={"x": [1, 2, 3]}, not_a_pbt_arg=1)
    assert isinstance(pbt, tune.schedulers.PopulationBasedTraining)
    grid = tune.Tuner(Counter, param_space={"x": tune.grid_search([1, 2])},
                      tune_config=tune.TuneConfig(scheduler=pbt),
                      run_config=tune.RunConfig(storage_path=str(tmp_path),
                                                stop={"training_iteration": 3},
                                                verbose=0)).fit()
    assert len(grid) == 2 and not grid.errors


@pytest.mark.parametrize("name, cls", [
    ("fifo", "FIFOScheduler"), ("asha", "AsyncHyperBandScheduler"),
    ("async_hyperband", "AsyncHyperBandScheduler"), ("hyperband", "HyperBandScheduler"),
    ("median_stopping_rule", "MedianStoppingRule"), ("hb_bohb", "HyperBandForBOHB"),
    ("pb2", "PB2"),
])
def test_create_scheduler_names(name, cls):
    kwargs = {"metric": "m", "mode": "min", "hyperparam_bounds": {"lr": [0.1, 1.0]}}
    assert type(tune.create_scheduler(name, **kwargs)).__name__ == cls


@pytest.mark.parametrize("name, cls", [
    ("random", "BasicVariantGenerator"), ("variant_generator", "BasicVariantGenerator"),
    ("optuna", "OptunaSearch"), ("hyperopt", "HyperOptSearch"),
])
def test_create_searcher_names(name, cls):
    searcher = tune.create_searcher(name, metric="m", mode="min")
    assert type(searcher).__name__ == cls
    if cls != "BasicVariantGenerator":
        assert (searcher.metric, searcher.mode) == ("m", "min")


def test_registries_name_what_they_accept():
    with pytest.raises(ValueError, match="`scheduler` must be one of 'fifo'"):
        tune.create_scheduler("nope")
    with pytest.raises(ValueError, match="`search_alg` must be one of 'variant_generator'"):
        tune.create_searcher("sigopt")


# -- ResumeConfig / SyncConfig ---------------------------------------------------------------
def failing_once(config):
    import os

    marker = os.path.join(config["dir"], "failed")
    tune.report({"score": 1})
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("boom")
    tune.report({"score": 2})


def test_tune_run_resume_config_restarts_errored_trials(tmp_path):
    args = dict(config={"dir": str(tmp_path)}, storage_path=str(tmp_path), name="r",
                verbose=0, raise_on_failed_trial=False)
    first = tune.run(failing_once, **args)
    assert [t.status for t in first.trials] == ["ERROR"]
    again = tune.run(failing_once, resume_config=tune.ResumeConfig(
        errored=tune.ResumeConfig.ResumeType.RESTART), **args)
    assert [t.status for t in again.trials] == ["TERMINATED"]
    assert again.trials[0].last_result["score"] == 2


def test_resume_config_names_what_poptune_does_not_do():
    assert tune.ResumeConfig(errored="resume")._flags()["resume_errored"]
    with pytest.raises(ValueError, match="`finished` must be one of ResumeConfig.ResumeType.SKIP"):
        tune.ResumeConfig(finished=tune.ResumeConfig.ResumeType.RESUME)
    with pytest.raises(ValueError, match="`unfinished`"):
        tune.ResumeConfig(unfinished="restart")


def test_sync_config_is_accepted_and_validated(tmp_path):
    grid = tune.Tuner(objective, param_space={"x": 1}, run_config=tune.RunConfig(
        storage_path=str(tmp_path), verbose=0,
        sync_config=tune.SyncConfig(sync_period=1, sync_artifacts=True))).fit()
    assert grid[0].metrics["score"] == 3
    with pytest.raises(TypeError, match="`sync_artifacts` must be a bool"):
        tune.SyncConfig(sync_artifacts="yes")


# -- reporters, constants, pretty_print, Trial, callbacks, stoppers --------------------------
def test_top_level_reporters_are_the_ones_poptune_uses():
    from poptune.callbacks.progress import CLIReporter, ProgressReporter

    reporter = tune.CLIReporter(metric_columns=["score"])
    assert tune.CLIReporter is CLIReporter and isinstance(reporter, tune.ProgressReporter)
    assert tune.ProgressReporter is ProgressReporter
    assert issubclass(tune.JupyterNotebookReporter, tune.ProgressReporter)


def test_search_constants_format_like_rays():
    from poptune.search import UNDEFINED_METRIC_MODE, UNDEFINED_SEARCH_SPACE, UNRESOLVED_SEARCH_SPACE

    assert "(None) or `mode` (min)" in UNDEFINED_METRIC_MODE.format(cls="S", metric=None, mode="min")
    assert "`space` argument" in UNDEFINED_SEARCH_SPACE.format(cls="S", space="space")
    assert "`points` parameter to S" in UNRESOLVED_SEARCH_SPACE.format(cls="S", par="points")


def test_pretty_print_is_yaml_without_config():
    from poptune.logger import pretty_print

    text = pretty_print({"score": 1.5, "config": {"x": 1}, "nested": {"a": [1, 2]},
                         "skip": None, "long": [1, 2, 3, 4]}, exclude={"score"})
    assert text == "long: [1, 2, 3, 4]\nnested:\n  a:\n  - 1\n  - 2\n"


def test_trial_status_constants_compare_as_rays_strings():
    from poptune.experiment import Trial

    assert (Trial.PENDING, Trial.RUNNING, Trial.PAUSED, Trial.TERMINATED, Trial.ERROR) == (
        "PENDING", "RUNNING", "PAUSED", "TERMINATED", "ERROR")
    trial = Trial("t_00000", "f", {})
    assert trial.status == Trial.PENDING


def test_callback_list_calls_each_callback_in_a_run(tmp_path):
    from poptune.callback import Callback, CallbackList

    seen: list[tuple[str, int]] = []

    class Record(Callback):
        def __init__(self, tag):
            self.tag = tag

        def on_trial_result(self, iteration, trials, trial, result, **info):
            seen.append((self.tag, result["score"]))

    class Forward(Callback):  # a user's callback holding a CallbackList, as in Ray
        def __init__(self):
            self.inner = CallbackList([Record("a"), Record("b")])

        def on_trial_result(self, **info):
            self.inner.on_trial_result(**info)

    tune.Tuner(objective, param_space={"x": 1}, run_config=tune.RunConfig(
        storage_path=str(tmp_path), verbose=0, callbacks=[Forward()])).fit()
    assert seen == [("a", 1), ("b", 1), ("a", 2), ("b", 2), ("a", 3), ("b", 3)]
    assert tune.callback.Callback is tune.Callback


class StopAtTwo(tune.Stopper):
    """A stopper written against Ray's interface."""

    def __init__(self):
        self.calls: list[tuple[str, int]] = []

    def __call__(self, trial_id, result):
        self.calls.append((trial_id, result["training_iteration"]))
        return result["training_iteration"] >= 2

    def stop_all(self):
        return False


def test_a_list_of_stoppers_stops_when_any_does(tmp_path):
    stopper = StopAtTwo()
    grid = tune.Tuner(Counter, param_space={"x": 1}, run_config=tune.RunConfig(
        storage_path=str(tmp_path), verbose=0,
        stop=[stopper, tune.MaximumIterationStopper(5)])).fit()
    assert grid[0].metrics["training_iteration"] == 2
    trial_id = grid[0].metrics["trial_id"]
    assert stopper.calls == [(trial_id, 1), (trial_id, 2)]


def test_stop_objects_rejected_as_ray_rejects_them():
    class DuckStopper:  # has stop_all but is no Stopper: Ray refuses it
        def __call__(self, trial_id, result):
            return False

        def stop_all(self):
            return True

    with pytest.raises(TypeError, match="a poptune.Stopper subclass"):
        tune.Tuner(objective, run_config=tune.RunConfig(stop=DuckStopper())).fit()
    with pytest.raises(TypeError, match="a list of poptune.Stopper"):
        tune.Tuner(objective, run_config=tune.RunConfig(stop=[{"a": 1}])).fit()
