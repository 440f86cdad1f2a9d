"""poptune.logger.aim: Aim runs of real trials, read back with Aim's own API (aim.Repo, the
runs' attributes and metric sequences)."""

from __future__ import annotations

import gc
import json
import logging
import os
import pickle
import sys
import tempfile
import threading

import numpy as np
import pytest

aim = pytest.importorskip("aim")
psutil = pytest.importorskip("psutil")  # one of aim's own dependencies

import poptune as tune  # noqa: E402
from poptune.exceptions import TuneConfigError  # noqa: E402
from poptune.experiment.trial import Trial, TrialStatus  # noqa: E402
from poptune.logger.aim import AimLoggerCallback  # noqa: E402
from tests.integration._helpers import result_rows  # noqa: E402

#: the numeric keys of every poptune result (Ray's too), tracked like the reported ones
AUTO_METRICS = {"done", "iterations_since_restore", "time_since_restore", "time_this_iter_s"}


@pytest.fixture(scope="module")
def shared_repo(tmp_path_factory):
    """One repository for the tests whose runs need not be alone in one (a new repository
    costs Aim a second or two); each test has its own Aim experiment in it."""
    return tmp_path_factory.mktemp("aim") / "shared repo"


def _runs(root, experiment=None):
    """What Aim holds about the runs in the repository at ``root`` (those of ``experiment``
    if given), by trial id: the runs' attributes, read with Aim's API, and their metrics.

    Aim 3.29 lists a run once the repository's index holds it, which ``aim up`` (or ``aim
    storage reindex``) brings up to date: the same step here, without the file watchers
    those start."""
    # the database handles of the callback's closed runs and of an earlier reading (which
    # opens the index for writing) are released
    gc.collect()
    repo = aim.Repo(str(root))
    index = repo._get_index_tree("meta", 0).view(())
    # the runs' own databases (Aim's `_all_run_hashes()` may answer from a list it keeps
    # for 0.5 s, older than the runs of a quick test)
    for run_hash in os.listdir(os.path.join(root, ".aim", "meta", "chunks")):
        meta = repo.request_tree("meta", run_hash, read_only=True)
        meta.subtree(("meta", "chunks", run_hash)).finalize(index=index)
    runs = {}
    for run in repo.iter_runs():
        if experiment is None or run.experiment == experiment:
            runs[run["trial_id"]] = {
                "hash": run.hash, "experiment": run.experiment, "repo": run.repo.path,
                "active": run.active, "end_time": run.end_time, "metrics": _metrics(run),
                **{key: run.get(key) for key in ("trial_log_dir", "trial_ip", "hparams")}}
    return runs


def _metrics(run):
    """``{(name, context): (steps, values, epochs)}`` of a run's metric sequences."""
    out = {}
    for found in run.metrics():
        metric = run.get_metric(found.name, found.context)
        steps, (values, epochs, _) = metric.data.items_list()
        key = (metric.name, json.dumps(metric.context.to_dict(), sort_keys=True))
        out[key] = (steps, values, epochs)
    return out


def reporting(config):
    for step in range(3):
        tune.report({"loss": config["lr"] / (step + 1), "nested": {"a": step},
                     "np": np.float32(0.5), "word": "text", "vec": [1, 2],
                     "nan": float("nan")})


def _fit(tmp_path, trainable, callbacks, name="aimexp", param_space=None, **run_config):
    return tune.Tuner(
        trainable,
        param_space=param_space or {"lr": tune.grid_search([0.1, 0.2]), "layers": 2,
                                    "opt": {"momentum": tune.grid_search([0.9])}},
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0,
                                  callbacks=callbacks, **run_config),
    ).fit()


def _open_files_under(path):
    """This process's open files under ``path``."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(path)):
            found.append(target)
    return found


def test_one_run_per_trial_with_its_hparams_and_results_in_the_experiment_dir(tmp_path):
    home, tmp = os.environ["HOME"], tempfile.gettempdir()
    home_before, tmp_before = set(os.listdir(home)), set(os.listdir(tmp))
    threads_before = set(threading.enumerate())
    children_before = {p.pid for p in psutil.Process().children(recursive=True)}
    write_before = sys.stdout.write

    grid = _fit(tmp_path, reporting, [AimLoggerCallback()])

    assert grid.num_errors == 0
    # nothing left running or open, nothing written outside the experiment: the runs' and
    # the callback's threads have ended (no process was started), the console is not
    # captured
    assert set(threading.enumerate()) <= threads_before
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= children_before
    assert sys.stdout.write == write_before
    exp_dir = tmp_path / "aimexp"
    gc.collect()
    assert _open_files_under(exp_dir) == []
    assert set(os.listdir(home)) == home_before and set(os.listdir(tmp)) == tmp_before
    assert os.path.isdir(exp_dir / ".aim")  # the default repository: the experiment dir

    runs = _runs(exp_dir)
    assert sorted(runs) == sorted(r.metrics["trial_id"] for r in grid)
    for result in grid:
        run = runs[result.metrics["trial_id"]]
        assert run["repo"] == str(exp_dir / ".aim")
        assert run["experiment"] == "aimexp"  # the Tune experiment's name
        assert run["trial_log_dir"] == result.path
        assert run["trial_ip"] == result.metrics["node_ip"]
        # the sampled values, flattened (Ray's: a constant of param_space is not one)
        assert run["hparams"] == {"lr": result.config["lr"], "opt/momentum": 0.9}
        assert not run["active"] and run["end_time"] is not None  # closed with its trial
        metrics = run["metrics"]
        assert {name for name, _ in metrics} == {
            f"ray/tune/{n}" for n in {"loss", "nested/a", "np"} | AUTO_METRICS}
        assert {context for _, context in metrics} == {"{}"}
        rows = result_rows(result.path)
        steps, loss, _ = metrics["ray/tune/loss", "{}"]
        assert steps == [r["training_iteration"] for r in rows] == [1, 2, 3]
        assert loss == [r["loss"] for r in rows]
        assert metrics["ray/tune/nested/a", "{}"][1] == [0, 1, 2]
        assert metrics["ray/tune/np", "{}"][1] == [0.5] * 3
        assert metrics["ray/tune/done", "{}"][1] == [0, 0, 0]


def test_metrics_repo_and_experiment_name(tmp_path, shared_repo):
    callback = AimLoggerCallback(repo=shared_repo, experiment_name="custom",
                                 metrics=["loss", "nested/a"])
    grid = _fit(tmp_path, reporting, [callback], param_space={"lr": tune.grid_search([0.3])})
    assert not os.path.exists(tmp_path / "aimexp" / ".aim")
    (run,) = _runs(shared_repo, "custom").values()
    assert run["repo"] == str(shared_repo / ".aim")
    metrics = run["metrics"]
    assert sorted(metrics) == [("ray/tune/loss", "{}"), ("ray/tune/nested/a", "{}")]
    assert metrics["ray/tune/loss", "{}"][1] == [r["loss"] for r in result_rows(grid[0].path)]


def with_context(config):
    for step in range(1, 4):
        tune.report({"acc": step / 10, "context": {"subset": "val"}, "epoch": step * 2,
                     "timesteps_total": step * 100})


def test_context_epoch_and_timesteps_total(tmp_path, shared_repo):
    """A result's ``context`` and ``epoch`` keys are the values' Aim context and epoch, and the
    step is ``timesteps_total`` when a result has it (Ray's rules)."""
    _fit(tmp_path, with_context, [AimLoggerCallback(shared_repo, "context")],
         param_space={"x": 1})
    (run,) = _runs(shared_repo, "context").values()
    assert run["hparams"] is None  # nothing sampled: no hparams (Ray's rule)
    metrics = run["metrics"]
    assert metrics["ray/tune/acc", '{"subset": "val"}'] == ([100, 200, 300], [0.1, 0.2, 0.3],
                                                            [2, 4, 6])
    assert {name for name, _ in metrics} == {
        f"ray/tune/{n}" for n in {"acc", "timesteps_total"} | AUTO_METRICS}


def fails_once(config):
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with open(os.path.join(checkpoint.path, "step")) as f:
            start = int(f.read())
    marker = os.path.join(config["dir"], "failed")
    for step in range(start, 4):
        if step == 2 and not os.path.exists(marker):
            open(marker, "w").close()
            raise ValueError("once")
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "step"), "w") as f:
                f.write(str(step + 1))
            tune.report({"score": step * 1.0}, checkpoint=tune.Checkpoint.from_directory(d))


def test_a_retried_trial_logs_on_into_its_run(tmp_path, shared_repo):
    grid = _fit(tmp_path, fails_once, [AimLoggerCallback(shared_repo, "retried")],
                param_space={"dir": str(tmp_path)},
                failure_config=tune.FailureConfig(max_failures=1))
    assert grid.num_errors == 0 and os.path.exists(tmp_path / "failed")
    (run,) = _runs(shared_repo, "retried").values()
    steps, values, _ = run["metrics"]["ray/tune/score", "{}"]
    assert (steps, values) == ([1, 2, 3, 4], [0.0, 1.0, 2.0, 3.0])


def _trial(tmp_path, trial_id="abc_00000", **params):
    return Trial(trial_id, "train", dict(params), local_path=str(tmp_path / "exp" / trial_id),
                 evaluated_params=dict(params), status=TrialStatus.RUNNING)


def test_a_paused_trials_run_is_closed_and_reopened_and_a_restore_resumes_it(
        tmp_path, shared_repo):
    callback, trial = AimLoggerCallback(shared_repo, "paused"), _trial(tmp_path, lr=0.1)
    callback.on_trial_start(0, [trial], trial)
    callback.on_trial_result(1, [trial], trial, {"loss": 1.0, "training_iteration": 1})
    trial.status = TrialStatus.PAUSED
    callback.on_step_end(1, [trial])
    assert callback._open == {}  # its run is closed: no thread or file held for it
    trial.status = TrialStatus.RUNNING
    callback.on_trial_start(2, [trial], trial)
    callback.on_trial_result(2, [trial], trial, {"loss": 2.0, "training_iteration": 2})
    callback.on_experiment_end([trial])  # interrupted: the open run is closed too
    assert "poptune-aim" not in {t.name for t in threading.enumerate()}
    state = callback.get_state()

    restored = pickle.loads(pickle.dumps(callback))  # as Tuner.restore brings it back
    restored.set_state(state)
    restored.on_trial_start(0, [trial], trial)
    restored.on_trial_result(3, [trial], trial, {"loss": 3.0, "training_iteration": 3})
    trial.status = TrialStatus.TERMINATED
    restored.on_trial_complete(3, [trial], trial)
    restored.on_experiment_end([trial])

    (run,) = _runs(shared_repo, "paused").values()
    assert run["hash"] == state["run_hashes"][trial.trial_id]
    assert run["metrics"]["ray/tune/loss", "{}"][:2] == ([1, 2, 3], [1.0, 2.0, 3.0])
    assert run["hparams"] == {"lr": 0.1} and not run["active"]


def test_the_callback_pickles_with_its_arguments_only(tmp_path, shared_repo):
    """``tuner.pkl`` keeps the callbacks for ``Tuner.restore``: the copy holds the arguments,
    not the open runs or their thread; an ``aim.Repo`` travels as its path."""
    import cloudpickle

    repo = aim.Repo.from_path(str(shared_repo), init=not os.path.isdir(shared_repo / ".aim"))
    callback = AimLoggerCallback(repo=repo, experiment_name="pickled", metrics=["loss"],
                                 log_system_params=False)
    trial = _trial(tmp_path)
    callback.on_trial_start(0, [trial], trial)  # a run is open, its thread running
    try:
        for dumps, loads in ((pickle.dumps, pickle.loads),
                             (cloudpickle.dumps, cloudpickle.loads)):
            copy = loads(dumps(callback))
            assert (copy._repo_path, copy._experiment_name, copy._metrics,
                    copy._aim_run_kwargs) == (str(shared_repo), "pickled", ["loss"],
                                              {"log_system_params": False})
            assert (copy._runs, copy._open, copy._hashes) == (None, {}, {})
    finally:
        callback.on_experiment_end([trial])
    del repo
    grid = _fit(tmp_path, reporting, [copy], param_space={"lr": 0.5})  # and it works again
    runs = _runs(shared_repo, "pickled")
    assert set(runs) == {trial.trial_id, grid[0].metrics["trial_id"]}
    assert list(runs[grid[0].metrics["trial_id"]]["metrics"]) == [("ray/tune/loss", "{}")]


def test_hparams_keep_rays_types_and_numpy_numbers(tmp_path, shared_repo, caplog):
    params = {"i": np.int64(2), "f": np.float32(0.5), "b": np.bool_(True), "lst": [1, "a"],
              "none": None, "nested": {"s": "x"}, "tuple": (1, 2), "obj": object,
              "odd_list": [object]}
    callback, trial = AimLoggerCallback(shared_repo, "hparams"), _trial(tmp_path, **params)
    with caplog.at_level(logging.INFO, logger="poptune.logger.aim"):
        callback.on_trial_start(0, [trial], trial)
        trial.status = TrialStatus.TERMINATED
        callback.on_trial_complete(0, [trial], trial)
        callback.on_experiment_end([trial])
    assert "Removed the following hyperparameter values" in caplog.text
    assert "'tuple'" in caplog.text and "'odd_list'" in caplog.text
    (run,) = _runs(shared_repo, "hparams").values()
    assert run["hparams"] == {"i": 2, "f": 0.5, "b": True, "lst": [1, "a"], "none": None,
                              "nested/s": "x"}


def test_errors_name_the_parameter():
    with pytest.raises(TuneConfigError, match=r"`metrics` must be a list of at least one .*"
                                              r"got \[\]"):
        AimLoggerCallback(metrics=[])
    with pytest.raises(TypeError, match="`metrics` must be a list of metric names.*'loss'"):
        AimLoggerCallback(metrics="loss")
    with pytest.raises(TypeError, match="`metrics` must be a list of metric names"):
        AimLoggerCallback(metrics=["loss", 1])
    with pytest.raises(TypeError, match="`repo` must be a directory.*got 3 of type int"):
        AimLoggerCallback(repo=3)
    with pytest.raises(TypeError, match="`experiment_name` must be a string.*got 1"):
        AimLoggerCallback(experiment_name=1)
    with pytest.raises(TypeError, match="aim.Run, one of .*capture_terminal_logs.*'colour'"):
        AimLoggerCallback(colour="red")
    with pytest.raises(TypeError, match="got 'run_hash'"):
        AimLoggerCallback(run_hash="abc")  # one hash cannot serve every trial
