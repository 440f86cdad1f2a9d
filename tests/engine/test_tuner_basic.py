"""End-to-end behaviour of Tuner.fit on the local backend."""

from __future__ import annotations

import json
import os
import pickle
import tempfile
import warnings

import pandas as pd
import pytest

import poptune as tune
from poptune.exceptions import ResourceError, StorageError, TuneConfigError, TuneError
from poptune.schedulers import SchedulerDecision, TrialScheduler


def run(trainable, tmp_path, param_space=None, **kw):
    run_kw = {k: kw.pop(k) for k in list(kw) if k in ("stop", "checkpoint_config",
                                                        "failure_config", "callbacks", "name")}
    return tune.Tuner(
        trainable,
        param_space=param_space or {},
        tune_config=tune.TuneConfig(**kw),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0, **run_kw),
    ).fit()


def quadratic(config):
    for i in range(5):
        tune.report({"loss": (config["x"] - 0.3) ** 2 + 1.0 / (i + 1)})


def test_function_trainable_writes_ray_layout_and_auto_keys(tmp_path):
    grid = run(quadratic, tmp_path, {"x": tune.grid_search([0.1, 0.3]), "c": "const"},
               metric="loss", mode="min", name="exp")
    assert len(grid) == 2 and grid.num_errors == 0 and grid.num_terminated == 2
    best = grid.get_best_result()
    assert best.config == {"x": 0.3, "c": "const"}
    exp = tmp_path / "exp"
    assert grid.experiment_path == str(exp)
    trial_dirs = [p for p in exp.iterdir() if p.is_dir()]
    assert len(trial_dirs) == 2
    for d in trial_dirs:
        assert {"params.json", "params.pkl", "result.json", "progress.csv"} <= set(os.listdir(d))
        rows = [json.loads(line) for line in open(d / "result.json")]
        assert [r["training_iteration"] for r in rows] == [1, 2, 3, 4, 5]
        for key in ("training_iteration", "time_this_iter_s", "time_total_s", "timestamp", "date",
                    "pid", "hostname", "trial_id", "iterations_since_restore",
                    "time_since_restore", "done", "config", "checkpoint_dir_name"):
            assert key in rows[-1], key
        df = pd.read_csv(d / "progress.csv")
        assert list(df["training_iteration"]) == [1, 2, 3, 4, 5]
        assert "config" not in df.columns
    assert best.metrics["done"] is True
    assert list(best.metrics_dataframe["training_iteration"]) == [1, 2, 3, 4, 5]


def ckpt_trainable(config):
    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt:
        with ckpt.as_directory() as d:
            start = json.load(open(os.path.join(d, "state.json")))["step"]
    for step in range(start + 1, 7):
        tmp = tempfile.mkdtemp()
        json.dump({"step": step}, open(os.path.join(tmp, "state.json"), "w"))
        tune.report({"step": step}, checkpoint=tune.Checkpoint.from_directory(tmp))
        # persisted (moved) into the trial dir before report returned; the source is left
        # in place, empty (user code may remove or reuse it, as with Ray's copy)
        name = f"checkpoint_{step - 1:06d}"
        assert os.listdir(tmp) == []
        os.rmdir(tmp)
        assert os.path.exists(os.path.join(tune.get_context().get_trial_dir(), name, "state.json"))


def test_checkpoint_is_moved_into_trial_dir_before_report_returns(tmp_path):
    grid = run(ckpt_trainable, tmp_path)
    r = grid[0]
    assert r.error is None, r.error
    assert r.checkpoint is not None and os.path.basename(r.checkpoint.path) == "checkpoint_000005"
    assert len([c for c, _ in r.best_checkpoints]) == 6


def test_num_to_keep_keeps_best_by_score(tmp_path):
    grid = run(ckpt_trainable, tmp_path, checkpoint_config=tune.CheckpointConfig(
        num_to_keep=2, checkpoint_score_attribute="step", checkpoint_score_order="min"))
    names = sorted(os.listdir(grid[0].path))
    ckpts = [n for n in names if n.startswith("checkpoint_")]
    # the two best by score (lowest step) plus the latest, which the trial may restore from
    assert ckpts == ["checkpoint_000000", "checkpoint_000001", "checkpoint_000005"]


class PauseOnce(TrialScheduler):
    """Pauses every trial once at iteration 3 (a decision returned as a value)."""

    def __init__(self):
        self.paused = set()

    def on_trial_result(self, trial, result):
        if result["training_iteration"] == 3 and trial.trial_id not in self.paused:
            self.paused.add(trial.trial_id)
            return SchedulerDecision.PAUSE
        return SchedulerDecision.CONTINUE


def test_pause_and_resume_from_checkpoint_continues_iterations(tmp_path):
    grid = run(ckpt_trainable, tmp_path, scheduler=PauseOnce())
    df = grid[0].metrics_dataframe
    assert list(df["step"]) == [1, 2, 3, 4, 5, 6]
    assert list(df["training_iteration"]) == [1, 2, 3, 4, 5, 6]
    assert list(df["iterations_since_restore"]) == [1, 2, 3, 1, 2, 3]


class Counter(tune.Trainable):
    def setup(self, config):
        self.x = config.get("start", 0)

    def step(self):
        self.x += 1
        return {"x": self.x, "done": self.x >= 6}

    def save_checkpoint(self, checkpoint_dir):
        return {"x": self.x}

    def load_checkpoint(self, checkpoint):
        self.x = checkpoint["x"]


def test_class_trainable_with_frequency_and_pause(tmp_path):
    grid = run(Counter, tmp_path, {"start": 0}, scheduler=PauseOnce(),
               checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=2, checkpoint_at_end=True))
    r = grid[0]
    assert r.error is None, r.error
    assert list(r.metrics_dataframe["x"]) == [1, 2, 3, 4, 5, 6]
    assert r.metrics["training_iteration"] == 6
    assert r.checkpoint is not None


def failing(config):
    tune.report({"a": 1})
    raise ValueError("boom at step 1")


def test_trial_error_is_recorded(tmp_path):
    grid = run(failing, tmp_path, num_samples=2)
    assert grid.num_errors == 2
    assert len(grid.errors) == 2
    assert isinstance(grid[0].error, ValueError)
    text = open(os.path.join(grid[0].path, "error.txt")).read()
    assert "boom at step 1" in text and "Traceback" in text


def test_fail_fast_raise_reraises_the_trial_error(tmp_path):
    with pytest.raises(ValueError, match="boom"):
        run(failing, tmp_path, failure_config=tune.FailureConfig(fail_fast="raise"))


def flaky(config):
    ckpt = tune.get_checkpoint()
    start = 0
    if ckpt:
        with ckpt.as_directory() as d:
            start = int(open(os.path.join(d, "s")).read())
    marker = os.path.join(config["dir"], "failed_once")
    for step in range(start + 1, 6):
        if step == 4 and not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("transient")
        tmp = tempfile.mkdtemp()
        open(os.path.join(tmp, "s"), "w").write(str(step))
        tune.report({"step": step},
                    checkpoint=tune.Checkpoint.from_directory(tmp) if step % 2 == 0 else None)


def test_max_failures_retries_from_checkpoint_without_duplicates(tmp_path):
    grid = run(flaky, tmp_path, {"dir": str(tmp_path)},
               failure_config=tune.FailureConfig(max_failures=1))
    r = grid[0]
    assert r.error is None
    assert list(r.metrics_dataframe["step"]) == [1, 2, 3, 4, 5]
    assert list(pd.read_csv(os.path.join(r.path, "progress.csv"))["training_iteration"]) == [1, 2, 3, 4, 5]


def test_missing_stop_key_warns_once_and_the_trial_runs_on(tmp_path, caplog):
    """Ray 2.60: a `stop` key missing from a result is skipped with one warning (a metric
    reported only every few iterations still stops the trial when it is there)."""
    with caplog.at_level("WARNING", logger="poptune"):
        grid = run(quadratic, tmp_path, {"x": 0.1}, stop={"mean_acc": 0.9})
    assert grid[0].error is None
    assert grid[0].metrics["training_iteration"] == 5  # ran to its own end
    warnings = [r for r in caplog.records if "'mean_acc' was not found" in r.getMessage()]
    assert len(warnings) == 1 and "reported ['loss']" in warnings[0].getMessage()


def every_other_iteration(config):
    for i in range(1, 11):
        tune.report({"loss": 1.0 / i, **({"val_acc": i / 10} if i % 2 == 0 else {})})


def test_stop_key_reported_only_on_some_iterations_stops_when_it_is_reached(tmp_path):
    grid = run(every_other_iteration, tmp_path, {}, stop={"val_acc": 0.6})
    assert grid[0].error is None
    assert grid[0].metrics["training_iteration"] == 6


def test_stop_dict_stops_at_threshold(tmp_path):
    grid = run(quadratic, tmp_path, {"x": 0.1}, stop={"training_iteration": 2})
    assert grid[0].metrics["training_iteration"] == 2


def test_gpu_request_that_can_never_fit_fails_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("POPTUNE_NUM_GPUS", "0")
    with pytest.raises(ResourceError, match="0.25 GPU"):
        run(tune.with_resources(quadratic, {"gpu": 0.25}), tmp_path, {"x": 0.1})
    with pytest.raises(ResourceError, match="CPUs"):
        run(tune.with_resources(quadratic, {"cpu": 64}), tmp_path, {"x": 0.1})


def gpu_env(config):
    tune.report({"cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
                 "res": tune.get_context().get_trial_resources().required_resources.get("GPU", 0.0)})


def test_fractional_gpus_are_counted_and_visible_devices_set(tmp_path, monkeypatch):
    monkeypatch.setenv("POPTUNE_NUM_GPUS", "2")
    grid = run(tune.with_resources(gpu_env, {"cpu": 0.5, "gpu": 0.5}), tmp_path,
               {"i": tune.grid_search([0, 1, 2, 3])})
    seen = sorted(r.metrics["cuda"] for r in grid)
    assert all(s in ("0", "1") for s in seen)
    assert all(r.metrics["res"] == 0.5 for r in grid)


def test_gpu_slots_are_the_drivers_visible_devices(tmp_path, monkeypatch):
    """Fake GPUs: with ``CUDA_VISIBLE_DEVICES=5,7`` in the driver, a trial on slot 0 sees
    device 5 and one on slot 1 device 7 (as Ray numbers a node's GPUs), not 0 and 1."""
    monkeypatch.setenv("POPTUNE_NUM_GPUS", "2")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    grid = run(tune.with_resources(gpu_env, {"cpu": 0.5, "gpu": 1}), tmp_path,
               {"i": tune.grid_search([0, 1, 2, 3])}, max_concurrent_trials=2)
    assert {r.metrics["cuda"] for r in grid} <= {"5", "7"}
    assert grid.num_errors == 0


def test_bad_input_is_rejected_before_any_trial(tmp_path):
    with pytest.raises(TuneConfigError, match="`num_samples` must be"):
        tune.TuneConfig(num_samples=0)
    with pytest.raises(TuneConfigError, match="`mode`"):
        tune.Tuner(quadratic, tune_config=tune.TuneConfig(metric="loss"))
    with pytest.raises(TypeError, match="`trainable`"):
        tune.Tuner(42)
    with pytest.raises(TuneError, match="Unknown trainable: 'my_registered_trainable'"):
        tune.Tuner("my_registered_trainable")  # never registered (tune.register_trainable)
    import threading

    lock = threading.Lock()

    def unpicklable(config):
        with lock:
            tune.report({"a": 1})

    with pytest.raises(TuneError, match="cannot be pickled"):
        run(unpicklable, tmp_path)
    # it failed before the first trial: the workers started early and the trial-file
    # writer are stopped all the same
    from tests.conftest import leftovers

    assert leftovers(wait=10)[0] == []
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    if os.access(ro, os.W_OK):  # running as root: use a path under a file instead
        blocker = tmp_path / "file"
        blocker.write_text("x")
        ro = blocker / "sub"
    with pytest.raises(StorageError, match="`storage_path`"):
        tune.Tuner(quadratic, run_config=tune.RunConfig(storage_path=str(ro), verbose=0)).fit()


def test_seed_makes_sampled_configs_identical(tmp_path):
    space = {"x": tune.uniform(0, 1), "y": tune.choice([1, 2, 3])}
    a = run(quadratic, tmp_path, space, num_samples=4, seed=7)
    b = run(quadratic, tmp_path, space, num_samples=4, seed=7)
    key = lambda g: sorted((r.config["x"], r.config["y"]) for r in g)  # noqa: E731
    assert key(a) == key(b)


class Big:
    pickles = 0

    def __reduce__(self):
        Big.pickles += 1
        return (Big, ())


def uses_big(config):
    tune.report({"ok": isinstance(config["model"], Big)})


def test_constants_in_param_space_are_shipped_once(tmp_path):
    Big.pickles = 0
    grid = run(uses_big, tmp_path, {"model": Big(), "i": tune.grid_search(list(range(6)))})
    assert all(r.metrics["ok"] for r in grid)
    # in the driver: once for the workers and the trial-file writer, once for tuner.pkl;
    # never per trial or per report (params.pkl is pickled by the trial-file writer)
    assert Big.pickles == 1 + 1
    for r in grid:
        with open(os.path.join(r.path, "params.pkl"), "rb") as f:
            assert isinstance(pickle.load(f)["model"], Big)


def with_data(config, data=None):
    tune.report({"n": len(data)})


def test_with_parameters_passes_objects(tmp_path):
    grid = run(tune.with_parameters(with_data, data=list(range(100))), tmp_path)
    assert grid[0].metrics["n"] == 100


def test_max_concurrent_trials_and_context(tmp_path):
    def ctx(config):
        c = tune.get_context()
        tune.report({"name": c.get_trial_name(), "exp": c.get_experiment_name(),
                     "dir_ok": os.path.isdir(c.get_trial_dir())})

    grid = run(ctx, tmp_path, num_samples=3, max_concurrent_trials=1, name="ctxexp")
    assert all(r.metrics["exp"] == "ctxexp" and r.metrics["dir_ok"] for r in grid)


def test_the_session_api_outside_a_trial_warns_and_returns_none(monkeypatch):
    """As Ray Tune's: a trainable called directly (to try it) runs; ``report`` reports nothing,
    ``get_checkpoint()`` is None, the context's getters return None; one warning each."""
    from poptune import session

    monkeypatch.setattr(session, "_warned_outside", set())
    with pytest.warns(UserWarning, match="`report` is meant to only be called inside"):
        assert tune.report({"a": 1}) is None
    with pytest.warns(UserWarning, match="`get_checkpoint` is meant"):
        assert tune.get_checkpoint() is None
    ctx = tune.get_context()
    assert isinstance(ctx, tune.TuneContext)
    with pytest.warns(UserWarning, match="`get_trial_dir` is meant"):
        assert ctx.get_trial_dir() is None
    assert ctx.get_trial_id() is None and ctx.get_trial_resources() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once per function
        assert tune.report({"a": 2}) is None and ctx.get_trial_dir() is None


def test_time_budget_stops_the_experiment(tmp_path):
    def forever(config):
        import time

        while True:
            time.sleep(0.01)
            tune.report({"a": 1})

    grid = run(forever, tmp_path, num_samples=2, time_budget_s=1.0)
    # both ran and were stopped (how many steps fit in the budget depends on the machine)
    assert len(grid) == 2 and all(r.metrics["training_iteration"] >= 1 for r in grid)


def test_an_experiment_ended_before_any_trial_started_returns_an_empty_grid(tmp_path):
    """A stopper (or time budget) ending the experiment before a trial could start (e.g.
    trials waiting for a cluster's resources) gives an empty grid; building it failed with
    an UnboundLocalError."""
    from poptune.stopper import Stopper

    class AtOnce(Stopper):
        def __call__(self, trial_id, result):
            return False

        def stop_all(self):
            return True

    grid = run(quadratic, tmp_path, {"x": 0.2}, stop=AtOnce())
    assert len(grid) == 0 and grid.experiment_path.startswith(str(tmp_path))


def test_results_pickle_free_of_driver_state(tmp_path):
    grid = run(quadratic, tmp_path, {"x": 0.2})
    pickle.dumps(grid[0].metrics)

