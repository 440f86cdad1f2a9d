"""Tuner options: names, stoppers, callbacks, unlimited samples, restore flags."""

from __future__ import annotations

import os
import re
import tempfile

import pytest

import poptune as tune
from poptune.exceptions import TuneConfigError
from poptune.stopper import MaximumIterationStopper, Stopper


def steps(config):
    for i in range(config.get("n", 5)):
        tune.report({"i": i, "x": config.get("x", 0)})


def rc(tmp_path, **kw):
    return tune.RunConfig(storage_path=str(tmp_path), verbose=0, **kw)


def test_trial_name_and_dirname_creators(tmp_path):
    grid = tune.Tuner(
        steps, param_space={"x": tune.grid_search([1, 2])},
        tune_config=tune.TuneConfig(
            trial_name_creator=lambda t: f"run-{t.config['x']}",
            trial_dirname_creator=lambda t: f"dir-{t.config['x']}"),
        run_config=rc(tmp_path, name="names"),
    ).fit()
    assert sorted(os.path.basename(r.path) for r in grid) == ["dir-1", "dir-2"]
    grid = tune.Tuner(  # a name alone starts the directory's name, as in Ray
        steps, param_space={"x": tune.grid_search([1, 2])},
        tune_config=tune.TuneConfig(trial_name_creator=lambda t: f"run-{t.config['x']}"),
        run_config=rc(tmp_path, name="names_only"),
    ).fit()
    assert sorted(os.path.basename(r.path).rsplit("_", 2)[0] for r in grid) == [
        "run-1_0_x=1", "run-2_1_x=2"]


def saves_who(config):
    d = tempfile.mkdtemp()
    with open(os.path.join(d, "who"), "w") as f:
        f.write(str(config["x"]))
    tune.report({"x": config["x"]}, checkpoint=tune.Checkpoint.from_directory(d))


def test_two_trials_given_one_directory_name_get_their_own_directories(tmp_path):
    """As Ray's ``_create_unique_logdir_name``: the second gets ``_`` and 4 hex digits."""
    grid = tune.Tuner(
        saves_who, param_space={"x": tune.grid_search([0, 1])},
        tune_config=tune.TuneConfig(trial_dirname_creator=lambda t: "same"),
        run_config=rc(tmp_path, name="clash"),
    ).fit()
    names = sorted(os.path.basename(r.path) for r in grid)
    assert names[0] == "same" and re.fullmatch(r"same_[0-9a-f]{4}", names[1]), names
    for r in grid:
        assert len(r.metrics_dataframe) == 1
        with open(os.path.join(r.checkpoint.path, "who")) as f:
            assert f.read() == str(r.config["x"])


def test_empty_or_none_names_mean_the_default_and_bad_ones_are_errors(tmp_path):
    grid = tune.Tuner(
        steps, param_space={"x": 1},
        tune_config=tune.TuneConfig(trial_name_creator=lambda t: None,
                                    trial_dirname_creator=lambda t: ""),
        run_config=rc(tmp_path, name="defaults"),
    ).fit()
    (result,) = grid
    assert os.path.basename(result.path).startswith("steps_")  # the default name
    assert os.path.dirname(result.path) == str(tmp_path / "defaults")
    with pytest.raises(TuneConfigError, match="trial_dirname_creator.*without '/', got 'a/b'"):
        tune.Tuner(steps, param_space={"x": 1},
                   tune_config=tune.TuneConfig(trial_dirname_creator=lambda t: "a/b"),
                   run_config=rc(tmp_path, name="slash")).fit()
    with pytest.raises(TypeError, match="trial_name_creator.*123"):
        tune.Tuner(steps, param_space={"x": 1},
                   tune_config=tune.TuneConfig(trial_name_creator=lambda t: 123),
                   run_config=rc(tmp_path, name="int")).fit()


def test_an_env_in_the_config_is_in_the_trial_name_as_in_ray(tmp_path):
    (result,) = tune.Tuner(steps, param_space={"env": "CartPole-v1"},
                           run_config=rc(tmp_path, name="env")).fit()
    assert re.match(r"steps_CartPole-v1_[0-9a-f]{5}_00000_", os.path.basename(result.path))


def test_stop_callable_and_stopper(tmp_path):
    grid = tune.Tuner(steps, param_space={"n": 50},
                      run_config=rc(tmp_path, stop=lambda tid, r: r["i"] >= 2)).fit()
    assert grid[0].metrics["i"] == 2
    grid = tune.Tuner(steps, param_space={"n": 50},
                      run_config=rc(tmp_path, stop=MaximumIterationStopper(4))).fit()
    assert grid[0].metrics["training_iteration"] == 4


class StopAllAfter(Stopper):
    def __init__(self, n):
        self.n, self.seen = n, 0

    def __call__(self, trial_id, result):
        self.seen += 1
        return False

    def stop_all(self):
        return self.seen >= self.n


def test_num_samples_unlimited_ends_by_stop_all(tmp_path):
    grid = tune.Tuner(steps, param_space={"n": 3, "x": tune.uniform(0, 1)},
                      tune_config=tune.TuneConfig(num_samples=-1),
                      run_config=rc(tmp_path, stop=StopAllAfter(30))).fit()
    assert len(grid) >= 8  # kept creating trials until the stopper ended the experiment


class Recorder(tune.Callback):
    def __init__(self):
        self.events = []

    def setup(self, **info):
        self.events.append("setup")

    def on_trial_start(self, iteration, trials, trial, **info):
        self.events.append("start")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.events.append("result")

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.events.append("complete")

    def on_experiment_end(self, trials, **info):
        self.events.append("end")


def test_user_callbacks_receive_hooks_in_order(tmp_path):
    cb = Recorder()
    tune.Tuner(steps, param_space={"n": 2}, run_config=rc(tmp_path, callbacks=[cb])).fit()
    assert cb.events == ["setup", "start", "result", "result", "complete", "end"]


def test_non_callback_in_callbacks_is_rejected(tmp_path):
    with pytest.raises(TypeError, match="`callbacks`"):
        tune.Tuner(steps, run_config=rc(tmp_path, callbacks=[object()])).fit()


def fails_first(config):
    tune.report({"a": 1})
    marker = os.path.join(config["dir"], "ok")
    if not os.path.exists(marker):
        raise RuntimeError("first run fails")
    tune.report({"a": 2})


def test_restore_flags_for_errored_trials(tmp_path):
    grid = tune.Tuner(fails_first, param_space={"dir": str(tmp_path)},
                      run_config=rc(tmp_path, name="err")).fit()
    assert grid.num_errors == 1
    path = str(tmp_path / "err")
    again = tune.Tuner.restore(path, trainable=fails_first).fit()
    assert again.num_errors == 1  # errored trials are left alone by default
    open(tmp_path / "ok", "w").close()
    fixed = tune.Tuner.restore(path, trainable=fails_first, restart_errored=True).fit()
    assert fixed.num_errors == 0
    assert list(fixed[0].metrics_dataframe["a"]) == [1, 2]


def fails_once(config):
    tune.report({"a": 1})
    marker = os.path.join(config["dir"], "failed-once")
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first run fails")
    tune.report({"a": 2})


def test_a_retried_trial_gets_on_trial_recover_not_on_trial_error(tmp_path):
    """As Ray: ``on_trial_recover`` for a failure that will be retried, ``on_trial_error``
    (and a LoggerCallback's ``log_trial_end(failed=True)``) only when the trial ends in
    error."""
    from poptune.logger import LoggerCallback

    calls = []

    class Hooks(tune.Callback):
        def on_trial_recover(self, iteration, trials, trial, **info):
            calls.append(("recover", str(trial.status), trial.num_failures))

        def on_trial_error(self, iteration, trials, trial, **info):
            calls.append(("error", str(trial.status), trial.num_failures))

        def on_trial_complete(self, iteration, trials, trial, **info):
            calls.append(("complete", str(trial.status), trial.num_failures))

    class Ends(LoggerCallback):
        def log_trial_end(self, trial, failed=False):
            calls.append(("log_trial_end", failed))

    grid = tune.Tuner(fails_once, param_space={"dir": str(tmp_path)},
                      run_config=rc(tmp_path, name="retry", callbacks=[Hooks(), Ends()],
                                    failure_config=tune.FailureConfig(max_failures=1))).fit()
    assert grid.num_errors == 0
    assert calls == [("recover", "PENDING", 1), ("complete", "TERMINATED", 1),
                     ("log_trial_end", False)]


def test_get_results_after_fit_and_from_restored_tuner(tmp_path):
    tuner = tune.Tuner(steps, param_space={"n": 2}, run_config=rc(tmp_path, name="gr"))
    grid = tuner.fit()
    assert tuner.get_results() is grid
    restored = tune.Tuner.restore(str(tmp_path / "gr"), trainable=steps)
    assert len(restored.get_results()) == 1


def test_readme_example_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("POPTUNE_STORAGE_PATH", str(tmp_path))
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md")).read()
    code = readme.split("## Ten lines")[1].split("```python")[1].split("```")[0]
    code = code.replace("num_samples=20)", "num_samples=20), run_config=tune.RunConfig(verbose=0)")
    namespace: dict = {}
    exec(compile(code, "README", "exec"), namespace)


def test_log_sinks_switch_off_result_files_but_keep_results(tmp_path):
    grid = tune.Tuner(steps, param_space={"n": 3, "x": tune.grid_search([1, 2])},
                      tune_config=tune.TuneConfig(metric="x", mode="max"),
                      run_config=rc(tmp_path, name="quiet", log_sinks=())).fit()
    for r in grid:
        assert sorted(os.listdir(r.path)) == ["params.json"]
        assert r.metrics["training_iteration"] == 3
    assert grid.get_best_result().config["x"] == 2
    # the journal still has everything: a restore rebuilds nothing it should not
    again = tune.Tuner.restore(str(tmp_path / "quiet"), trainable=steps).fit()
    assert all(r.metrics["training_iteration"] == 3 for r in again)


def test_log_sinks_validation():
    with pytest.raises(ValueError, match="`log_sinks`"):
        tune.RunConfig(log_sinks=("json", "parquet"))


class _SeeResults(tune.Callback):
    def __init__(self):
        self.done_flags = []

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.done_flags.append(result["done"])


def test_the_row_that_stopped_a_trial_says_done_in_files_and_callbacks(tmp_path):
    """Ray's order: decide, then log; the result a stopper stops on is written with done."""
    import json

    import pandas as pd

    seen = _SeeResults()
    grid = tune.Tuner(steps, param_space={"n": 50},
                      run_config=rc(tmp_path, stop={"i": 2}, callbacks=[seen])).fit()
    path = grid[0].path
    with open(os.path.join(path, "result.json")) as f:
        rows = [json.loads(line) for line in f]
    assert [r["done"] for r in rows] == [False, False, True]
    assert list(pd.read_csv(os.path.join(path, "progress.csv"))["done"]) == [False, False, True]
    assert seen.done_flags == [False, False, True]


class _Counter(tune.Trainable):
    def setup(self, config):
        self.i = 0

    def step(self):
        self.i += 1
        return {"i": self.i, "done": self.i >= 4}

    def save_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "i"), "w") as f:
            f.write(str(self.i))

    def load_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "i")) as f:
            self.i = int(f.read())


class _AskForCheckpoint(tune.Callback):
    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result["i"] == 2:
            result["should_checkpoint"] = True


def test_a_callback_can_ask_a_class_trainable_for_a_checkpoint(tmp_path):
    grid = tune.Tuner(_Counter, run_config=rc(tmp_path, callbacks=[_AskForCheckpoint()])).fit()
    result = grid[0]
    assert result.metrics["i"] == 4  # the save did not stop or restart it
    names = sorted(n for n in os.listdir(result.path) if n.startswith("checkpoint_"))
    assert len(names) >= 1
    with open(os.path.join(result.path, names[0], "i")) as f:
        assert f.read() == "2"


def _reports_other(config):
    for i in range(3):
        tune.report({"other": i})


def test_a_result_without_the_metric_is_a_clear_error(tmp_path, monkeypatch):
    """Ray's strict metric check: a typo in `metric` fails the run, naming what was reported."""
    from poptune.exceptions import TuneConfigError

    tc = tune.TuneConfig(metric="score", mode="max")
    with pytest.raises(TuneConfigError, match=r"without the metric `score` that "
                       r"TuneConfig\(metric=...\) ranks by; it reported other"):
        tune.Tuner(_reports_other, tune_config=tc, run_config=rc(tmp_path)).fit()
    monkeypatch.setenv("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    grid = tune.Tuner(_reports_other, tune_config=tc, run_config=rc(tmp_path)).fit()
    assert grid.num_errors == 0 and grid[0].metrics["other"] == 2


def test_the_metric_error_names_the_scheduler_that_wants_it(tmp_path):
    from poptune.exceptions import TuneConfigError
    from poptune.schedulers import ASHAScheduler

    tc = tune.TuneConfig(scheduler=ASHAScheduler(metric="score", mode="max"))
    with pytest.raises(TuneConfigError, match="`score` that AsyncHyperBandScheduler ranks by"):
        tune.Tuner(_reports_other, tune_config=tc, run_config=rc(tmp_path)).fit()


class _RayStyleHooks(tune.Callback):
    """Written against Ray's CallbackList, which passes every argument by keyword."""

    def __init__(self):
        self.seen, self.ends = [], 0

    def on_trial_result(self, trial, result, **info):
        self.seen.append((trial.trial_id, result["i"], info["iteration"] > 0,
                          isinstance(info["trials"], list)))

    def on_experiment_end(self, trials):  # Ray passes trials= only
        self.ends += 1
        assert len(trials) == 1


def test_callbacks_are_called_with_keywords_as_ray_does(tmp_path):
    cb = _RayStyleHooks()
    grid = tune.Tuner(steps, param_space={"n": 3}, run_config=rc(tmp_path, callbacks=[cb])).fit()
    tid = grid[0].metrics["trial_id"]
    assert cb.seen == [(tid, i, True, True) for i in range(3)] and cb.ends == 1


class _BrokenEnd(tune.Callback):
    calls = 0

    def on_experiment_end(self, trials, **info):
        type(self).calls += 1
        raise TypeError("a bug in the user's callback")


def test_a_failing_on_experiment_end_is_called_once_and_its_error_surfaces(tmp_path):
    with pytest.raises(TypeError, match="a bug in the user's callback"):
        tune.Tuner(steps, param_space={"n": 1},
                   run_config=rc(tmp_path, callbacks=[_BrokenEnd()])).fit()
    assert _BrokenEnd.calls == 1


def _one_report(config):
    tune.report({"x": config["x"]})


def test_random_search_state_journaled_now_and_then_restores_the_same_trials(
        tmp_path, monkeypatch):
    """Random search's state is journaled with the first trial and then every
    SEARCH_STATE_EVERY trials; a restore replays the creations after it. The experiment is
    copied as it is on disk mid-run (what a driver killed then leaves): the restored copy
    ends with exactly the trials of an uninterrupted seeded run, none twice."""
    import shutil

    import poptune.engine.runner as runner_mod
    from poptune.callbacks import Callback
    from poptune.storage.replay import load_state

    monkeypatch.setattr(runner_mod, "SEARCH_STATE_EVERY", 3)
    snapshot = tmp_path / "snap" / "cut"

    class CopyMidRun(Callback):
        done = 0

        def on_trial_complete(self, iteration, trials, trial, **info):
            CopyMidRun.done += 1
            if CopyMidRun.done == 8 and not snapshot.exists():  # it comes back with restore
                shutil.copytree(tmp_path / "cut", snapshot)

    def tuner(name, callbacks=()):
        return tune.Tuner(
            _one_report, param_space={"x": tune.uniform(0, 1), "k": tune.randint(0, 9)},
            tune_config=tune.TuneConfig(num_samples=20, seed=11, backend="simulated",
                                        max_concurrent_trials=2),
            run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0,
                                      callbacks=list(callbacks)))

    whole = sorted((r.config["x"], r.config["k"]) for r in tuner("whole").fit())
    tuner("cut", [CopyMidRun()]).fit()
    state = load_state(str(snapshot / "journal.jsonl"))
    assert state.searcher_state is not None and state.created_after_search_state > 0
    grid = tune.Tuner.restore(str(snapshot), _one_report).fit()
    assert not grid.errors
    assert sorted((r.config["x"], r.config["k"]) for r in grid) == whole


def test_a_file_uri_names_a_local_experiment_everywhere(tmp_path):
    """``storage_path="file:///..."`` (Ray accepts it) is a local directory for fit, and the
    experiment's ``file://`` URI works for can_restore, restore and the analysis too."""
    uri = f"file://{tmp_path}"
    grid = tune.Tuner(steps, param_space={"n": 2}, tune_config=tune.TuneConfig(backend="simulated"),
                      run_config=tune.RunConfig(name="exp", storage_path=uri, verbose=0)).fit()
    assert grid.experiment_path == str(tmp_path / "exp")
    assert tune.Tuner.can_restore(f"{uri}/exp")
    restored = tune.Tuner.restore(f"{uri}/exp", trainable=steps)
    assert len(restored.fit()) == 1
    assert len(tune.ExperimentAnalysis(f"{uri}/exp").trials) == 1


def test_what_a_callback_changes_in_a_result_reaches_the_trial_files(tmp_path):
    """Ray's file loggers are callbacks that come after the user's: a key a callback adds
    (or a value it changes) in ``on_trial_result`` is in result.json and progress.csv."""
    import json

    class Adds(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            result["doubled"] = result["i"] * 2

    grid = tune.Tuner(steps, param_space={"n": 2},
                      run_config=rc(tmp_path, name="adds", callbacks=[Adds()])).fit()
    rows = [json.loads(line) for line in open(os.path.join(grid[0].path, "result.json"))]
    assert [r["doubled"] for r in rows] == [0, 2]
    assert list(grid.get_dataframe()["doubled"]) == [2]
    header = open(os.path.join(grid[0].path, "progress.csv")).readline().strip().split(",")
    assert "doubled" in header


def test_callback_setup_gets_rays_public_spec(tmp_path):
    seen = {}

    class Spec(tune.Callback):
        def setup(self, stop=None, num_samples=None, total_num_samples=None, **info):
            seen.update(stop=stop, num_samples=num_samples, total=total_num_samples, **info)

    class Old(tune.Callback):
        def setup(self):  # as some older callbacks do: called without arguments
            seen["old"] = True

    with pytest.warns(FutureWarning, match="update `setup`"):
        tune.Tuner(steps, param_space={"n": 1},
                   tune_config=tune.TuneConfig(num_samples=2, time_budget_s=100),
                   run_config=rc(tmp_path, callbacks=[Spec(), Old()])).fit()
    assert seen == {"stop": {}, "num_samples": 2, "total": 2, "time_budget_s": 100,
                    "old": True}


def _one_step(config):
    tune.report({"score": config["x"]})


def test_a_backend_object_that_cannot_be_pickled_is_kept_as_its_kind(tmp_path, monkeypatch):
    """``TuneConfig(backend=DaskBackend(client=...))`` (its client cannot be pickled) ran
    into "the experiment configuration cannot be pickled for restore"; tuner.pkl keeps the
    backend's kind, and a restore builds that kind anew."""
    import pickle
    import threading

    from poptune.backends.local import LocalBackend

    class Connected(LocalBackend):
        def __init__(self) -> None:
            super().__init__()
            self.connection = threading.Lock()  # as a live client: not picklable

    monkeypatch.delenv("POPTUNE_BACKEND", raising=False)
    grid = tune.Tuner(_one_step, param_space={"x": tune.grid_search([1, 2])},
                      tune_config=tune.TuneConfig(backend=Connected()),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), name="e",
                                                verbose=0)).fit()
    assert grid.num_errors == 0 and len(grid) == 2
    with open(tmp_path / "e" / "tuner.pkl", "rb") as f:
        assert pickle.load(f)["tune_config"].backend == "local"
    again = tune.Tuner.restore(str(tmp_path / "e"), _one_step).fit()
    assert sorted(r.metrics["score"] for r in again) == [1, 2]
