"""``ExperimentAnalysis`` on a real experiment (from ``tune.run`` and from disk) and on
hand-written experiment directories."""

from __future__ import annotations

import json
import math
import os
import tempfile

import pandas as pd
import pytest

import poptune as tune
from poptune.analysis import AnalysisTrial, ExperimentAnalysis
from poptune.engine.trial import Trial


def train(config):
    """loss falls with every step; x=1 is best, then x=0, then x=2."""
    for step in range(4):
        loss = (config["x"] - 1) ** 2 + 1.0 / (step + 1) + (0.0 if config["x"] == 0 else 0.5)
        d = tempfile.mkdtemp()
        with open(os.path.join(d, "step"), "w") as f:
            f.write(str(step))
        tune.report({"loss": loss, "info": {"acc": step / 4}}, checkpoint=tune.Checkpoint(d))


class Counter(tune.Trainable):
    def step(self):
        return {"n": self.iteration + 1, "done": self.iteration + 1 >= 2}

    def save_checkpoint(self, checkpoint_dir):
        return {"n": self.iteration}

    def load_checkpoint(self, checkpoint):
        pass


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    storage = tmp_path_factory.mktemp("ea")
    analysis = tune.run(train, config={"x": tune.grid_search([0, 1, 2])}, metric="loss",
                        mode="min", name="exp", storage_path=str(storage), verbose=0)
    return analysis


def write_trial(exp, name, rows=None, config=None, error=None, csv=False, checkpoints=()):
    d = os.path.join(exp, name)
    os.makedirs(d)
    if config is not None:
        with open(os.path.join(d, "params.json"), "w") as f:
            json.dump(config, f)
    if rows is not None and not csv:
        with open(os.path.join(d, "result.json"), "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    if rows is not None and csv:
        pd.DataFrame(rows).to_csv(os.path.join(d, "progress.csv"), index=False)
    if error is not None:
        with open(os.path.join(d, "error.txt"), "w") as f:
            f.write(error)
    for ckpt in checkpoints:
        os.makedirs(os.path.join(d, ckpt))
    return d


# -- a real experiment ----------------------------------------------------------------------
def test_best_properties(experiment):
    a = experiment
    assert a.best_config == {"x": 1}
    assert isinstance(a.best_trial, AnalysisTrial) and a.best_trial.config == {"x": 1}
    assert a.best_result["loss"] == pytest.approx(0.75)
    assert a.best_logdir == a.best_trial.local_path
    assert list(a.best_dataframe["loss"]) == pytest.approx([1.5, 1.0, 5 / 6, 0.75])
    assert a.best_result_df.index.tolist() == [a.best_trial.trial_id]
    assert a.best_result_df["info/acc"].iloc[0] == 0.75
    with a.best_checkpoint.as_directory() as d:  # best of the best trial by loss: the last
        with open(os.path.join(d, "step")) as f:
            assert f.read() == "3"


def test_trials_expose_rays_attributes(experiment):
    trials = experiment.trials
    assert [t.config["x"] for t in trials] == [0, 1, 2]
    for t in trials:
        assert isinstance(t, Trial)
        assert t.status == "TERMINATED" and t.status.is_finished()
        assert t.path == t.local_path == t.logdir and os.path.isdir(t.path)
        assert t.last_result["training_iteration"] == 4 and t.last_result["done"] is True
        assert t.last_result["trial_id"] == t.trial_id
        assert os.path.basename(t.checkpoint.path) == "checkpoint_000003"
        assert str(t) == f"train_{t.trial_id}"
        assert t.error is None
        assert t.metric_analysis["loss"]["last"] == pytest.approx(t.last_result["loss"])
        assert t.metric_analysis["info/acc"]["max"] == 0.75


def test_results_and_results_df(experiment):
    a = experiment
    assert set(a.results) == {t.trial_id for t in a.trials}
    assert a.results[a.trials[1].trial_id]["loss"] == pytest.approx(0.75)
    df = a.results_df
    assert df.index.name == "trial_id" and len(df) == 3
    assert {"loss", "info/acc", "config/x", "training_iteration"} <= set(df.columns)


def test_trial_dataframes_by_trial_id_and_by_path(experiment):
    a = experiment
    frames = a.trial_dataframes
    assert set(frames) == {t.trial_id for t in a.trials}  # Ray 2.60's keys
    t = a.trials[2]
    assert frames[t.local_path] is frames[t.trial_id]  # Ray <= 2.6 scripts: by directory
    assert t.local_path in frames and frames.get(t.local_path) is frames[t.trial_id]
    assert list(frames[t.trial_id]["training_iteration"]) == [1, 2, 3, 4]
    assert "info/acc" in frames[t.trial_id].columns
    assert set(a.fetch_trial_dataframes()) == set(frames)
    with pytest.raises(KeyError):
        frames["no-such-trial"]


def test_dataframe_last_and_best_rows(experiment):
    a = experiment
    last = a.dataframe()
    assert len(last) == 3 and {"logdir", "config/x", "loss"} <= set(last.columns)
    assert list(last["training_iteration"]) == [4, 4, 4]
    best_max = a.dataframe(metric="loss", mode="max")
    assert list(best_max["training_iteration"]) == [1, 1, 1]
    with pytest.raises(ValueError, match="you'll also have to pass a `metric`"):
        a.dataframe(mode="min")
    with pytest.raises(ValueError, match="`mode` must be one of 'min', 'max', got 'low'"):
        a.dataframe(metric="loss", mode="low")


@pytest.mark.parametrize("scope", ["last", "all", "avg", "last-5-avg", "last-10-avg"])
def test_get_best_trial_scopes_on_the_run(experiment, scope):
    assert experiment.get_best_trial("loss", "min", scope=scope).config == {"x": 1}


@pytest.mark.parametrize("scope, mode, expected", [
    ("last", "min", "p"), ("all", "min", "p"), ("avg", "min", "q"), ("last-5-avg", "min", "q"),
    ("last-10-avg", "max", "p"), ("last", "max", "r"), ("all", "max", "p")])
def test_get_best_trial_scopes(tmp_path, scope, mode, expected):
    for name, losses in {"p": [10, 0], "q": [1, 1], "r": [3, 2]}.items():
        write_trial(str(tmp_path), name, rows=[{"loss": v, "trial_id": name,
                                                "training_iteration": i + 1}
                                               for i, v in enumerate(losses)],
                    config={"name": name})
    a = ExperimentAnalysis(str(tmp_path))
    assert a.get_best_trial("loss", mode, scope=scope).trial_id == expected


def test_get_best_trial_and_config_options(experiment):
    a = experiment
    assert a.get_best_trial("loss", "max").config == {"x": 2}
    assert a.get_best_config("info/acc", "max") == {"x": 0}  # tie: the earlier trial
    assert a.get_best_trial("no_such_metric", "min") is None
    assert a.get_best_config("no_such_metric", "min") is None
    assert a.get_best_logdir("loss", "max") == a.trials[2].local_path
    with pytest.raises(ValueError, match="`scope` must be one of 'all', 'last'"):
        a.get_best_trial("loss", "min", scope="first")


def test_checkpoint_methods(experiment):
    a = experiment
    trial = a.trials[0]
    paths = a.get_trial_checkpoints_paths(trial)  # default metric: loss
    assert [os.path.basename(p) for p, _ in paths] == [f"checkpoint_00000{i}" for i in range(4)]
    assert [v for _, v in paths] == pytest.approx([2.0, 1.5, 4 / 3, 1.25])
    best_max = a.get_best_checkpoint(trial, "loss", "max")
    assert os.path.basename(best_max.path) == "checkpoint_000000"
    assert a.get_best_checkpoint(trial.local_path, mode="min", return_path=True) == paths[-1][0]
    by_iter = a.get_trial_checkpoints_paths(trial, "training_iteration")
    assert [v for _, v in by_iter] == [1, 2, 3, 4]
    assert a.get_last_checkpoint(trial).path == paths[-1][0]
    assert a.get_last_checkpoint().path.startswith(a.trials[0].local_path)  # by iteration
    last_of_best = a.get_last_checkpoint(metric="loss", mode="min")
    assert os.path.dirname(last_of_best.path) == a.best_trial.local_path
    assert a.get_best_checkpoint(trial, "no_such_metric", "min") is None


def test_configs_stats_and_path(experiment):
    a = experiment
    configs = a.get_all_configs()
    assert set(configs) == {t.trial_id for t in a.trials}  # Ray 2.60's keys
    assert sorted(c["x"] for c in configs.values()) == [0, 1, 2]
    t = a.trials[1]
    assert configs[t.local_path] is configs[t.trial_id]  # Ray <= 2.6 scripts: by directory
    assert a.get_all_configs(prefix=True)[t.local_path] == {"config/x": t.config["x"]}
    assert all(set(c) == {"config/x"} for c in a.get_all_configs(prefix=True).values())
    stats = a.stats()
    assert stats["start_time"] <= stats["timestamp"]
    assert os.path.basename(a.experiment_path) == "exp"
    assert "trials=3" in repr(a)


def test_reloaded_from_disk_is_the_same(experiment):
    again = ExperimentAnalysis(experiment.experiment_path, default_metric="loss",
                               default_mode="min")
    assert [t.trial_id for t in again.trials] == [t.trial_id for t in experiment.trials]
    assert [t.status for t in again.trials] == [t.status for t in experiment.trials]
    assert again.best_config == experiment.best_config
    assert again.best_checkpoint == experiment.best_checkpoint
    journal = os.path.join(experiment.experiment_path, "journal.jsonl")
    assert len(ExperimentAnalysis(journal).trials) == 3  # a file inside the dir works too


@pytest.mark.parametrize("attribute", [
    "best_trial", "best_config", "best_checkpoint", "best_logdir", "best_result",
    "best_dataframe", "best_result_df"])
def test_best_properties_need_metric_and_mode(experiment, attribute):
    a = ExperimentAnalysis(experiment.experiment_path)
    with pytest.raises(ValueError, match=f"To fetch the `{attribute}`, pass a `metric` and "
                                         "`mode` parameter to `tune.run\\(\\)`"):
        getattr(a, attribute)


def test_methods_need_metric_and_mode(experiment):
    a = ExperimentAnalysis(experiment.experiment_path)
    with pytest.raises(ValueError, match="No `metric` has been passed and `default_metric`"):
        a.get_best_trial(mode="min")
    with pytest.raises(ValueError, match="No `mode` has been passed and `default_mode`"):
        a.get_best_config("loss")
    with pytest.raises(ValueError, match="No `mode` has been passed"):
        a.get_best_checkpoint(a.trials[0], "loss")
    only_mode = ExperimentAnalysis(experiment.experiment_path, default_mode="max")
    assert only_mode.default_metric == "_metric"
    with pytest.raises(ValueError, match="`default_mode` must be one of 'min', 'max'"):
        ExperimentAnalysis(experiment.experiment_path, default_mode="up")


def test_checkpoints_saved_after_a_result_get_the_journals_metrics(tmp_path):
    a = tune.run(Counter, checkpoint_at_end=True, verbose=0, storage_path=str(tmp_path))
    trial = a.trials[0]
    [(path, iteration)] = a.get_trial_checkpoints_paths(trial, "training_iteration")
    assert iteration == 2 and os.path.isdir(path)
    assert a.get_best_checkpoint(trial, "n", "max").path == path


def test_a_new_experiment_in_the_same_directory_replaces_the_old_one(tmp_path):
    kw = {"name": "same", "storage_path": str(tmp_path), "verbose": 0}
    tune.run(train, config={"x": tune.grid_search([0, 1])}, **kw)
    second = tune.run(train, config={"x": 2}, **kw)
    assert [t.config for t in second.trials] == [{"x": 2}]
    assert len(ExperimentAnalysis(second.experiment_path).trials) == 1


# -- hand-written experiment directories ----------------------------------------------------
def test_hand_written_directories(tmp_path):
    exp = str(tmp_path)
    write_trial(exp, "a", rows=[{"score": 1, "trial_id": "a"}, {"score": 3, "trial_id": "a"}],
                config={"lr": 0.1}, checkpoints=["checkpoint_000000"])
    write_trial(exp, "b", rows=[{"score": 2, "nested/v": 5}, {"score": 2.5, "nested/v": 6}],
                config={"lr": 0.2}, csv=True)
    write_trial(exp, "c", rows=[{"score": 9}], config={"lr": 0.3}, error="ValueError: boom")
    write_trial(exp, "d", config={"lr": 0.4})  # never reported
    a = ExperimentAnalysis(exp, default_metric="score", default_mode="max")
    by_id = {t.trial_id: t for t in a.trials}
    assert sorted(by_id) == ["a", "b", "c", "d"]
    assert by_id["c"].status == "ERROR" and "boom" in str(by_id["c"].error)
    assert by_id["d"].status == "PENDING" and by_id["d"].last_result == {}
    assert by_id["a"].status == "TERMINATED"
    assert a.best_trial.trial_id == "c"
    assert a.get_best_trial("score", "max", scope="avg").trial_id == "c"
    assert a.get_best_config("score", "min", scope="all") == {"lr": 0.1}
    assert a.get_best_trial("nested/v", "max").trial_id == "b"
    assert a.trial_dataframes[by_id["d"].local_path].empty
    assert len(a.dataframe()) == 3  # the trial that never reported has no row
    assert a.results_df.loc["b", "score"] == 2.5
    assert os.path.basename(by_id["a"].checkpoint.path) == "checkpoint_000000"
    assert a.get_best_checkpoint("a") is None  # no result names that checkpoint


def test_nan_and_inf_are_filtered_unless_asked(tmp_path):
    exp = str(tmp_path)
    write_trial(exp, "a", rows=[{"loss": float("nan"), "trial_id": "a"}], config={"k": 1})
    write_trial(exp, "b", rows=[{"loss": 5.0, "trial_id": "b"}], config={"k": 2})
    write_trial(exp, "c", rows=[{"loss": float("-inf"), "trial_id": "c"}], config={"k": 3})
    a = ExperimentAnalysis(exp)
    assert a.get_best_trial("loss", "min").trial_id == "b"
    assert a.get_best_trial("loss", "min", filter_nan_and_inf=False).trial_id == "c"
    assert a.get_best_trial("loss", "max", filter_nan_and_inf=False).trial_id == "b"
    assert math.isnan(a.trials[0].metric_analysis.get("loss", {}).get("last", math.nan))


def test_one_trial_is_the_best_without_a_metric(tmp_path):
    write_trial(str(tmp_path), "only", rows=[{"x": 1}], config={"k": 1})
    a = ExperimentAnalysis(str(tmp_path))
    assert a.get_best_trial().trial_id == "only"  # as Ray: no comparison with one trial


def test_missing_or_empty_directories_are_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        ExperimentAnalysis(str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="does not contain a poptune experiment"):
        ExperimentAnalysis(str(tmp_path))
    with pytest.raises(TypeError, match="`experiment_checkpoint_path` must be a str path"):
        ExperimentAnalysis(42)


def test_given_trials_select_and_set_status(experiment):
    stub = Trial(trial_id="x", trainable_name="train", config={},
                 local_path=experiment.trials[1].local_path, status="ERROR")
    a = ExperimentAnalysis(experiment.experiment_path, trials=[stub])
    assert len(a.trials) == 1 and a.trials[0].status == "ERROR"
    assert a.trials[0].trial_id == experiment.trials[1].trial_id


# -- remote storage -------------------------------------------------------------------------
@pytest.fixture
def s3_storage(monkeypatch, tmp_path):
    """An S3 bucket on a moto server on loopback (skipped without ``s3fs``/``moto[server]``)."""
    import subprocess
    import sys

    from tests._net import free_port, wait_for_port

    s3fs = pytest.importorskip("s3fs")
    server = os.path.join(os.path.dirname(sys.executable), "moto_server")
    if not os.path.exists(server):
        pytest.skip("needs `pip install 'moto[server]'`")
    port = free_port()
    proc = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, 30, poll=0.1)
        for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                     "AWS_DEFAULT_REGION": "us-east-1",
                     "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
                     "POPTUNE_STAGING_DIR": str(tmp_path / "staging")}.items():
            monkeypatch.setenv(k, v)
        s3fs.S3FileSystem.clear_instance_cache()
        s3fs.S3FileSystem().mkdir("bucket")
        yield "s3://bucket/runs"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_an_experiment_on_s3(s3_storage):
    a = tune.run(train, config={"x": tune.grid_search([0, 1])}, metric="loss", mode="min",
                 name="exp", storage_path=s3_storage, verbose=0)
    assert a.experiment_path == f"{s3_storage}/exp"
    assert a.best_config == {"x": 1}
    assert a.best_checkpoint.path.startswith("bucket/runs/exp/")  # the path within the fs
    assert a.get_best_checkpoint(a.best_trial, return_path=True).startswith(f"{s3_storage}/exp/")
    with a.best_checkpoint.as_directory() as d:
        with open(os.path.join(d, "step")) as f:
            assert f.read() == "3"
    assert [len(df) for df in a.trial_dataframes.values()] == [4, 4]
    again = ExperimentAnalysis(f"{s3_storage}/exp", default_metric="loss", default_mode="min")
    assert again.best_config == {"x": 1} and again.best_checkpoint == a.best_checkpoint
    resumed = tune.run(train, config={"x": tune.grid_search([0, 1])}, name="exp",
                       storage_path=s3_storage, verbose=0, resume=True)
    assert [t.status for t in resumed.trials] == ["TERMINATED", "TERMINATED"]


def test_metric_analysis_is_rays_running_statistics(tmp_path):
    rows = [{"loss": 4, "ok": True, "training_iteration": 1, "trial_id": "a"},
            {"ok": False, "training_iteration": 2, "trial_id": "a"},
            {"loss": 2, "ok": True, "training_iteration": 3, "trial_id": "a"}]
    write_trial(str(tmp_path), "a", rows=rows, config={"k": 1})
    write_trial(str(tmp_path), "b", rows=[{"loss": 3, "training_iteration": 1,
                                           "trial_id": "b"}], config={"k": 2})
    a = ExperimentAnalysis(str(tmp_path))
    stats = a.trials[0].metric_analysis
    assert set(stats) == {"loss", "ok", "training_iteration"}  # no trial_id, no config
    loss = stats["loss"]
    assert (loss["max"], loss["min"], loss["last"]) == (4, 2, 2)
    assert type(loss["max"]) is int and type(loss["last-5-avg"]) is float
    assert loss["avg"] == pytest.approx((2 + 2 * 4) / 3)  # Ray's running mean by iteration
    assert loss["last-5-avg"] == 3.0  # the mean of the reported values
    assert stats["ok"]["max"] is True and stats["ok"]["min"] is False
    # the missing iteration is not a NaN: trial a has an average, and it is the best
    assert a.get_best_config("loss", "max", scope="avg") == {"k": 1}
    assert a.trials[1].metric_analysis["loss"] == dict.fromkeys(
        ["max", "min", "avg", "last", "last-5-avg", "last-10-avg"], 3)


def test_dataframe_logdir_and_keys_are_trial_ids(experiment):
    a = experiment
    df = a.dataframe()
    assert df["logdir"].tolist() == [t.trial_id for t in a.trials]
    assert a.best_dataframe is a.trial_dataframes[a.best_trial.trial_id]


def fails_for_x1(config):
    tune.report({"loss": config["x"]})
    if config["x"] == 1:
        raise RuntimeError(f"boom x={config['x']}")


def test_errored_trials_name_their_error_file_and_text(tmp_path):
    """Ray's ``Trial.error_file`` and ``get_error()`` (the traceback as text), from
    ``tune.run`` and from disk; trials that did not fail have neither."""
    analysis = tune.run(fails_for_x1, config={"x": tune.grid_search([0, 1])},
                        storage_path=str(tmp_path), name="errs", verbose=0,
                        raise_on_failed_trial=False)
    for a in (analysis, ExperimentAnalysis(str(tmp_path / "errs"))):
        by_x = {t.config["x"]: t for t in a.trials}
        assert by_x[0].error_file is None and by_x[0].get_error() is None
        failed = by_x[1]
        assert failed.error_file == os.path.join(failed.local_path, "error.txt")
        assert isinstance(failed.get_error(), str)
        assert "RuntimeError: boom x=1" in failed.get_error()
