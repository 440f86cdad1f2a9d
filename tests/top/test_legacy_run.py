"""The legacy ``tune.run`` API: its arguments, resume, failures and Ray-1.x style trainables."""

from __future__ import annotations

import json
import os

import pytest

import poptune as tune
from poptune.analysis import ExperimentAnalysis
from poptune.exceptions import TuneError
from poptune.legacy import _parse_resume
from poptune.schedulers import PopulationBasedTraining, TrialScheduler


# -- trainables (module level, so worker processes can import them) ------------------------
def quadratic(config):
    for step in range(config.get("steps", 3)):
        tune.report(loss=(config["x"] - 1) ** 2 + 1.0 / (step + 1), step=step)


def counter(config):
    for i in range(50):
        tune.report(i=i, acc=i / 50)


def resources_probe(config):
    tune.report(cpus=tune.get_context().get_trial_resources().required_resources["CPU"])


def checkpoint_every_step(config):
    losses = config["losses"]
    for step, loss in enumerate(losses):
        with tune.checkpoint_dir(step=step) as d, open(os.path.join(d, "loss"), "w") as f:
            f.write(str(loss))
        tune.report(loss=loss)


def legacy_train(config, checkpoint_dir=None):
    """The Ray 1.x shape of the Japanese PBT article's ``train_mnist``."""
    start, weight = 0, 0.0
    if checkpoint_dir:
        with open(os.path.join(checkpoint_dir, "state.json")) as f:
            state = json.load(f)
        start, weight = state["step"] + 1, state["weight"]
    for step in range(start, config.get("steps", 5)):
        weight += config["lr"]
        with tune.checkpoint_dir(step=step) as d:
            with open(os.path.join(d, "state.json"), "w") as f:
                json.dump({"step": step, "weight": weight}, f)
        tune.report(mean_accuracy=min(weight, 1.0), started_at=start,
                    restored=checkpoint_dir is not None)


def checkpoint_after_last_report(config):
    tune.report(loss=1.0)
    tune.report(loss=0.5)
    with tune.checkpoint_dir(step=2) as d, open(os.path.join(d, "final"), "w") as f:
        f.write("yes")


def fails_until_marker(config, checkpoint_dir=None):
    start = 0
    if checkpoint_dir:
        with open(os.path.join(checkpoint_dir, "step")) as f:
            start = int(f.read()) + 1
    for step in range(start, 4):
        if step == 2 and not os.path.exists(config["marker"]):
            open(config["marker"], "w").close()
            raise ValueError("boom at step 2")
        with tune.checkpoint_dir(step=step) as d, open(os.path.join(d, "step"), "w") as f:
            f.write(str(step))
        tune.report(step=step, started_at=start, restored=checkpoint_dir is not None)


def always_fails(config):
    tune.report(x=1)
    raise RuntimeError("this trial always fails")


class Adder(tune.Trainable):
    def setup(self, config):
        self.total = 0

    def step(self):
        self.total += self.config["inc"]
        return {"total": self.total, "done": self.total >= 3 * self.config["inc"]}

    def save_checkpoint(self, checkpoint_dir):
        return {"total": self.total}

    def load_checkpoint(self, checkpoint):
        self.total = checkpoint["total"]


class PauseOnceAt(TrialScheduler):
    """Pause every trial once, at ``iteration``, so it restarts from its checkpoint."""

    def __init__(self, iteration):
        self.iteration, self.paused = iteration, set()

    def on_trial_result(self, trial, result):
        if result["training_iteration"] == self.iteration and trial.trial_id not in self.paused:
            self.paused.add(trial.trial_id)
            return self.PAUSE
        return self.CONTINUE


class StopAllOnce(tune.Stopper):
    """Ends the experiment after ``n`` results, unless ``marker`` says it already did."""

    def __init__(self, marker, n):
        self.marker, self.n, self.seen, self.fired = marker, n, 0, False

    def __call__(self, trial_id, result):
        self.seen += 1
        if self.seen >= self.n and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            self.fired = True
        return False

    def stop_all(self):
        return self.fired


class CtrlCAfter(tune.Stopper):
    """Interrupts the driver (as Ctrl-C does) at the ``n``-th result."""

    def __init__(self, n):
        self.n, self.seen = n, 0

    def __call__(self, trial_id, result):
        self.seen += 1
        if self.seen == self.n:
            raise KeyboardInterrupt
        return False


def run(trainable, tmp_path, **kw):
    kw.setdefault("verbose", 0)
    kw.setdefault("storage_path", str(tmp_path))
    return tune.run(trainable, **kw)


# -- the basic arguments -------------------------------------------------------------------
def test_config_num_samples_metric_mode_return_an_analysis(tmp_path):
    analysis = run(quadratic, tmp_path, config={"x": tune.grid_search([0, 1, 3]),
                                                "y": tune.uniform(0, 1)},
                   num_samples=2, metric="loss", mode="min", name="basic")
    assert isinstance(analysis, ExperimentAnalysis)
    assert len(analysis.trials) == 6  # a grid of 3, repeated num_samples=2 times
    assert analysis.best_config["x"] == 1
    assert analysis.best_result["loss"] == pytest.approx(1 / 3)
    assert analysis.experiment_path == os.path.join(str(tmp_path), "basic")
    assert all(t.status == "TERMINATED" for t in analysis.trials)


def test_metric_without_mode_is_the_analysis_default_only(tmp_path):
    analysis = run(quadratic, tmp_path, config={"x": tune.grid_search([0, 1])}, metric="loss")
    assert analysis.default_metric == "loss" and analysis.default_mode is None
    assert analysis.get_best_config(mode="min") == {"x": 1}


def test_stop_dict_and_callable(tmp_path):
    analysis = run(counter, tmp_path, stop={"i": 4})
    assert analysis.trials[0].last_result["i"] == 4
    analysis = run(counter, tmp_path, stop=lambda trial_id, result: result["acc"] >= 0.1)
    assert analysis.trials[0].last_result["i"] == 5


def test_resources_per_trial_reach_the_trial(tmp_path):
    analysis = run(resources_probe, tmp_path, resources_per_trial={"cpu": 2},
                   config={"k": tune.grid_search([1, 2])})
    assert [t.last_result["cpus"] for t in analysis.trials] == [2.0, 2.0]


def test_keep_checkpoints_num_with_min_prefix_keeps_the_lowest(tmp_path):
    losses = [0.5, 0.2, 0.9, 0.1, 0.7]
    analysis = run(checkpoint_every_step, tmp_path, config={"losses": losses},
                   keep_checkpoints_num=2, checkpoint_score_attr="min-loss")
    kept = analysis.get_trial_checkpoints_paths(analysis.trials[0], "loss")
    # the two lowest, plus the latest, which poptune keeps while the trial may restore from it
    assert sorted(value for _, value in kept) == [0.1, 0.2, 0.7]
    assert all(os.path.isdir(path) for path, _ in kept)
    best = analysis.get_best_checkpoint(analysis.trials[0], "loss", "min")
    with open(os.path.join(best.path, "loss")) as f:
        assert f.read() == "0.1"


def test_checkpoint_score_attr_without_prefix_keeps_the_highest(tmp_path):
    analysis = run(checkpoint_every_step, tmp_path, config={"losses": [0.5, 0.2, 0.9, 0.1]},
                   keep_checkpoints_num=1, checkpoint_score_attr="loss")
    kept = analysis.get_trial_checkpoints_paths(analysis.trials[0], "loss")
    assert sorted(value for _, value in kept) == [0.1, 0.9]  # the highest, plus the latest
    path = analysis.get_best_checkpoint(analysis.trials[0], "loss", "max", return_path=True)
    with open(os.path.join(path, "loss")) as f:
        assert f.read() == "0.9"


def test_class_trainable_with_checkpoint_freq_and_at_end(tmp_path):
    analysis = run(Adder, tmp_path, config={"inc": 2}, checkpoint_freq=1,
                   checkpoint_at_end=True)
    trial = analysis.trials[0]
    assert trial.last_result["total"] == 6
    assert analysis.get_last_checkpoint(trial) is not None


# -- failures ------------------------------------------------------------------------------
def test_max_failures_retries_from_the_latest_checkpoint(tmp_path):
    analysis = run(fails_until_marker, tmp_path, max_failures=1,
                   config={"marker": str(tmp_path / "failed-once")})
    trial = analysis.trials[0]
    assert trial.status == "TERMINATED" and trial.num_failures == 1
    df = analysis.trial_dataframes[trial.local_path]
    assert list(df["step"]) == [0, 1, 2, 3]  # no result repeated after the retry
    assert list(df["restored"]) == [False, False, True, True]


def test_raise_on_failed_trial_names_the_failed_trials(tmp_path):
    with pytest.raises(TuneError, match="Trials did not complete: .*this trial always fails") as info:
        run(always_fails, tmp_path, config={"k": tune.grid_search([1, 2])})
    assert len(info.value.trials) == 2
    assert info.value.args == ("Trials did not complete", info.value.trials)  # Ray's args
    analysis = run(always_fails, tmp_path, raise_on_failed_trial=False)
    assert analysis.trials[0].status == "ERROR"
    assert isinstance(analysis.trials[0].error, RuntimeError)


def test_fail_fast_with_retries_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="`max_failures` must be 0 when `fail_fast` is set"):
        run(quadratic, tmp_path, config={"x": 1}, fail_fast=True, max_failures=2)


# -- resume --------------------------------------------------------------------------------
def test_resume_true_continues_after_stop_all(tmp_path):
    kw = {"config": {"x": tune.grid_search([1, 2, 3, 4]), "lr": 0.1, "steps": 4},
              "metric": "mean_accuracy", "mode": "max", "name": "exp", "max_concurrent_trials": 1}
    first = run(legacy_train, tmp_path, stop=StopAllOnce(str(tmp_path / "fired"), 6), **kw)
    assert len(first.trials) < 4  # the stopper ended the experiment early
    resumed = run(legacy_train, tmp_path, resume=True, **kw)
    assert len(resumed.trials) == 4
    assert all(t.status == "TERMINATED" for t in resumed.trials)
    done_before = {t.trial_id: t.last_result["training_iteration"] for t in first.trials}
    for t in resumed.trials:  # finished trials were not run again
        if t.trial_id in done_before:
            assert t.last_result["training_iteration"] == done_before[t.trial_id]


def test_resume_true_restarts_interrupted_trials_from_their_checkpoints(tmp_path):
    kw = {"config": {"lr": tune.grid_search([0.1, 0.2]), "steps": 4}, "name": "exp"}
    first = run(legacy_train, tmp_path, stop=CtrlCAfter(3), **kw)  # does not raise
    assert any(not t.status.is_finished() for t in first.trials)
    resumed = run(legacy_train, tmp_path, resume=True, **kw)
    for t in resumed.trials:
        df = resumed.trial_dataframes[t.local_path]
        assert t.status == "TERMINATED"
        assert list(df["training_iteration"]) == [1, 2, 3, 4]
    assert any(resumed.trial_dataframes[t.local_path]["restored"].any() for t in resumed.trials)


def test_resume_errored_resumes_and_restart_errored_restarts(tmp_path):
    marker = str(tmp_path / "marker")
    kw = {"config": {"marker": marker}, "raise_on_failed_trial": False}
    assert run(fails_until_marker, tmp_path, name="a", **kw).trials[0].status == "ERROR"
    only_unfinished = run(fails_until_marker, tmp_path, name="a", resume=True, **kw)
    assert only_unfinished.trials[0].status == "ERROR"  # plain resume skips errored trials
    resumed = run(fails_until_marker, tmp_path, name="a", resume="LOCAL+ERRORED", **kw)
    df = resumed.trial_dataframes[resumed.trials[0].local_path]
    assert resumed.trials[0].status == "TERMINATED"
    assert list(df["started_at"]) == [0, 0, 2, 2]  # continued from checkpoint of step 1

    os.remove(marker)
    assert run(fails_until_marker, tmp_path, name="b", **kw).trials[0].status == "ERROR"
    restarted = run(fails_until_marker, tmp_path, name="b", resume="RESTART_ERRORED", **kw)
    df = restarted.trial_dataframes[restarted.trials[0].local_path]
    assert list(df["started_at"]) == [0, 0, 0, 0] and not df["restored"].any()


def test_resume_without_an_experiment(tmp_path):
    with pytest.raises(ValueError, match="no experiment exists at .*nothing-here"):
        run(quadratic, tmp_path, config={"x": 1}, name="nothing-here", resume="LOCAL")
    # Ray 2.60: True is ResumeConfig(), which starts a new experiment when none exists
    analysis = run(quadratic, tmp_path, config={"x": 1}, name="first-time", resume=True)
    assert analysis.trials[0].status == "TERMINATED"
    with pytest.raises(ValueError, match="no `name` given"):
        run(quadratic, tmp_path, config={"x": 1}, resume="LOCAL")
    analysis = run(quadratic, tmp_path, config={"x": 1}, name="fresh", resume="AUTO")
    assert analysis.trials[0].status == "TERMINATED"


@pytest.mark.parametrize("value, expected", [
    (True, ("AUTO", True, False, False)),
    ("AUTO+ERRORED", ("AUTO", True, True, False)),
    ("LOCAL+RESTART_ERRORED", ("LOCAL", True, False, True)),
    ("AUTO+ERRORED_ONLY", ("AUTO", False, True, False)),
    ("LOCAL+RESTART_ERRORED_ONLY", ("LOCAL", False, False, True)),
    ("ERRORED_ONLY", ("LOCAL", False, False, True)),  # Ray's deprecated alias
    ("RESTART_ERRORED", ("LOCAL", True, False, True)),
])
def test_resume_values(value, expected):
    spec = _parse_resume(value)
    assert (spec.kind, spec.resume_unfinished, spec.resume_errored, spec.restart_errored) == expected
    assert _parse_resume(False) is None and _parse_resume(None) is None


def test_bad_resume_value_is_named():
    with pytest.raises(ValueError, match="`resume` must be True, False, 'LOCAL'.*got 'SOMETIMES'"):
        _parse_resume("SOMETIMES")


# -- input errors --------------------------------------------------------------------------
def test_unknown_keyword_arguments_are_named(tmp_path):
    with pytest.raises(TypeError, match="'nmae' \\(did you mean 'name'\\?\\)"):
        run(quadratic, tmp_path, config={"x": 1}, nmae="typo")
    with pytest.raises(TypeError, match="'foo', 'nuM_smaples'"):
        run(quadratic, tmp_path, config={"x": 1}, foo=1, nuM_smaples=2)


def test_rays_other_arguments_are_accepted(tmp_path):
    analysis = run(quadratic, tmp_path, config={"x": 1}, sync_config=None,
                   chdir_to_trial_dir=False, export_formats=None, storage_filesystem=None)
    assert analysis.trials[0].status == "TERMINATED"


@pytest.mark.parametrize("kwargs, error, message", [
    ({"run_or_experiment": "PPO"}, TuneError, "Unknown trainable: 'PPO'"),
    ({"run_or_experiment": 3}, TypeError, "`run_or_experiment` must be a function"),
    ({"config": [1, 2]}, TypeError, "`config` must be a dict"),
    ({"mode": "best"}, ValueError, "`mode` must be one of 'min', 'max', got 'best'"),
    ({"scheduler": "nope"}, ValueError, "`scheduler` must be one of 'fifo'"),
    ({"checkpoint_score_attr": 3}, TypeError, "`checkpoint_score_attr` must be a metric name"),
    ({"keep_checkpoints_num": 0}, ValueError, "`num_to_keep` must be None or an int >= 1, got 0"),
    ({"restore": "/no/such/checkpoint"}, ValueError, "`restore` must be an existing checkpoint"),
])
def test_bad_arguments_are_named(tmp_path, kwargs, error, message):
    args = {"run_or_experiment": quadratic, "config": {"x": 1}, **kwargs}
    with pytest.raises(error, match=message):
        tune.run(args.pop("run_or_experiment"), storage_path=str(tmp_path), verbose=0, **args)


def test_scheduler_by_name(tmp_path):
    analysis = run(quadratic, tmp_path, config={"x": 1}, scheduler="fifo")
    assert analysis.trials[0].status == "TERMINATED"


@pytest.mark.parametrize("name", ["optuna", "hyperopt", "bayesopt", "random"])
def test_search_alg_by_name(tmp_path, name):
    """Ray's ``search_alg="optuna"`` shorthand builds the adapter (they live in submodules)."""
    analysis = run(quadratic, tmp_path, config={"x": tune.uniform(0, 2)}, num_samples=3,
                   search_alg=name, metric="loss", mode="min")
    assert len(analysis.trials) == 3
    assert all(t.status == "TERMINATED" for t in analysis.trials)


# -- Ray 1.x trainables: train(config, checkpoint_dir=None), checkpoint_dir(step), report(**kw)
def test_legacy_trainable_is_restarted_with_its_checkpoint_dir(tmp_path):
    analysis = run(legacy_train, tmp_path, config={"lr": tune.grid_search([0.1, 0.15])},
                   scheduler=PauseOnceAt(2), metric="mean_accuracy", mode="max")
    for trial in analysis.trials:
        df = analysis.trial_dataframes[trial.local_path]
        assert list(df["training_iteration"]) == [1, 2, 3, 4, 5]
        assert list(df["started_at"]) == [0, 0, 2, 2, 2]  # resumed after step 1's checkpoint
        assert list(df["restored"]) == [False, False, True, True, True]
        assert trial.last_result["mean_accuracy"] == pytest.approx(5 * trial.config["lr"])
    assert analysis.best_config == {"lr": 0.15}
    with analysis.best_checkpoint.as_directory() as d:
        with open(os.path.join(d, "state.json")) as f:
            assert json.load(f)["step"] == 4


def test_checkpoint_dir_after_the_last_report_is_reported_at_the_end(tmp_path):
    analysis = run(checkpoint_after_last_report, tmp_path)
    trial = analysis.trials[0]
    df = analysis.trial_dataframes[trial.local_path]
    assert list(df["loss"]) == [1.0, 0.5, 0.5]  # a final result repeats the last metrics
    assert bool(df["done"].iloc[-1]) is True
    with open(os.path.join(trial.checkpoint.path, "final")) as f:
        assert f.read() == "yes"
    assert not [n for n in os.listdir(trial.local_path) if n.startswith(".checkpoint_dir_tmp")]


def test_restore_starts_every_trial_from_a_checkpoint(tmp_path):
    ckpt = tmp_path / "given"
    ckpt.mkdir()
    (ckpt / "state.json").write_text(json.dumps({"step": 2, "weight": 0.5}))
    analysis = run(legacy_train, tmp_path, config={"lr": 0.1}, restore=str(ckpt))
    df = analysis.trial_dataframes[analysis.trials[0].local_path]
    assert list(df["started_at"]) == [3, 3]
    assert df["mean_accuracy"].iloc[-1] == pytest.approx(0.7)


def test_the_japanese_pbt_article_script_shape_runs(tmp_path):
    """``003_*``: ``tune.run(train_mnist, name="exp", scheduler=pbt, metric=..., mode="max",
    stop={"training_iteration": ...}, num_samples=..., resources_per_trial=...)``."""
    search_space = {"lr": tune.uniform(0.01, 0.3), "steps": 8}
    sched = PopulationBasedTraining(time_attr="training_iteration", perturbation_interval=2,
                                    hyperparam_mutations={"lr": tune.uniform(0.01, 0.3)})
    analysis = tune.run(legacy_train, name="exp", scheduler=sched, metric="mean_accuracy",
                        mode="max", stop={"training_iteration": 6}, num_samples=4,
                        resources_per_trial={"cpu": 1}, config=search_space, verbose=0,
                        storage_path=str(tmp_path))
    assert set(analysis.best_config) == {"lr", "steps"}
    for t in analysis.trials:
        df = analysis.trial_dataframes[t.local_path]
        assert t.last_result["training_iteration"] == 6
        # a trial restarted by an exploit got the donor's checkpoint as `checkpoint_dir`
        assert ((df["started_at"] > 0) == df["restored"]).all()


def test_checkpoint_dir_outside_a_trial_yields_the_working_directory():
    with tune.checkpoint_dir(step=0) as d:
        assert d == os.path.abspath(".")
    with pytest.raises(ValueError, match="`step` must be the int iteration"):
        with tune.checkpoint_dir(step=None):
            pass


def test_class_trainable_restore_starts_from_a_saved_checkpoint(tmp_path):
    saved = Adder({"inc": 2})
    saved.train()
    saved.train()  # total 4 after 2 iterations
    path = saved.save(str(tmp_path / "saved"))
    analysis = run(Adder, tmp_path, config={"inc": 2}, restore=path)
    df = analysis.trial_dataframes[analysis.trials[0].local_path]
    # the model continues (total 4 + 2); as in Ray, `restore=` hands over the checkpoint
    # without its result: the trial counts its iterations from 1
    assert list(df["total"]) == [6] and list(df["training_iteration"]) == [1]


def data_user(config, checkpoint_dir=None, data=None):
    tune.report(n=len(data), had_dir=checkpoint_dir is not None)


def test_with_parameters_and_legacy_signature(tmp_path):
    analysis = run(tune.with_parameters(data_user, data=[1, 2, 3]), tmp_path)
    assert analysis.trials[0].last_result["n"] == 3
    assert analysis.trials[0].last_result["had_dir"] is False


# -- Ray 0.x trainables: tune.track.log(**kw), train(config, reporter) ---------------------
def track_user(config):
    for step in range(3):
        tune.track.log(mean_accuracy=config["x"] * step, step=step)
    tune.track.log(mean_accuracy=0, where=tune.track.trial_dir(),
                   name=tune.track.trial_name(), tid=tune.track.trial_id())


def reporter_user(config, reporter):
    reporter(mean_accuracy=config["x"], logdir=reporter.logdir, name=reporter.trial_name,
             tid=reporter.trial_id, cpus=reporter.trial_resources.required_resources["CPU"])
    reporter(0.5)  # a positional value is Ray's default metric, `_metric`


def reporter_and_checkpoint_dir(config, reporter, checkpoint_dir=None):
    start = 0
    if checkpoint_dir:
        with open(os.path.join(checkpoint_dir, "step")) as f:
            start = int(f.read()) + 1
    for step in range(start, 4):
        with tune.checkpoint_dir(step=step) as d, open(os.path.join(d, "step"), "w") as f:
            f.write(str(step))
        reporter(step=step, started_at=start)


def test_track_log_reports_like_report(tmp_path):
    """``002_*`` (the 2019 Ray Tune blog post): ``tune.track.log(mean_accuracy=acc)``."""
    analysis = run(track_user, tmp_path, config={"x": tune.grid_search([1, 2])},
                   metric="mean_accuracy", mode="max")
    assert analysis.get_best_config(scope="all") == {"x": 2}
    for trial in analysis.trials:
        df = analysis.trial_dataframes[trial.local_path]
        assert list(df["mean_accuracy"].iloc[:3]) == [0, trial.config["x"], 2 * trial.config["x"]]
        last = trial.last_result
        assert (last["where"], last["name"], last["tid"]) == (
            trial.local_path, str(trial), trial.trial_id)
        assert last["training_iteration"] == 4


def test_track_outside_a_trial_and_its_removed_calls(monkeypatch):
    from poptune import session

    monkeypatch.setattr(session, "_warned_outside", set())
    with pytest.warns(UserWarning, match="`report` is meant to only be called inside"):
        assert tune.track.log(loss=1.0) is None  # as tune.report outside a trial: nothing
    for call in (tune.track.init, tune.track.shutdown, tune.track.get_session):
        with pytest.raises(DeprecationWarning, match="use `tune.report` instead"):
            call()


def test_reporter_signature_reports_and_describes_the_trial(tmp_path):
    analysis = run(reporter_user, tmp_path, config={"x": 0.25}, resources_per_trial={"cpu": 1})
    trial = analysis.trials[0]
    df = analysis.trial_dataframes[trial.local_path]
    first = df.iloc[0]
    assert first["mean_accuracy"] == 0.25 and first["cpus"] == 1
    assert (first["logdir"], first["name"], first["tid"]) == (
        trial.local_path, str(trial), trial.trial_id)
    assert trial.last_result["_metric"] == 0.5
    assert list(df["training_iteration"]) == [1, 2]


def test_reporter_with_checkpoint_dir_is_restarted_from_its_checkpoint(tmp_path):
    analysis = run(reporter_and_checkpoint_dir, tmp_path, scheduler=PauseOnceAt(2),
                   metric="step", mode="max")
    df = analysis.trial_dataframes[analysis.trials[0].local_path]
    assert list(df["step"]) == [0, 1, 2, 3]
    assert list(df["started_at"]) == [0, 0, 2, 2]  # resumed after step 1's checkpoint


def test_local_dir_is_the_storage_path_with_rays_deprecation_said(tmp_path):
    with pytest.warns(DeprecationWarning, match="`local_dir` is deprecated.*storage_path"):
        analysis = tune.run(quadratic, config={"x": 1}, local_dir=str(tmp_path), verbose=0)
    assert analysis.experiment_path.startswith(str(tmp_path))
