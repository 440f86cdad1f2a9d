"""``poptune.air``: Ray 2.0–2.6's ``from ray.air import session`` scripts after the swap."""

from __future__ import annotations

import os
import tempfile
import warnings

import pytest

import poptune
from poptune import air, session as tune_session, tune
from poptune.air import CheckpointConfig, RunConfig, session
from poptune.air.config import FailureConfig
from poptune.exceptions import TuneError
from poptune.train import Checkpoint


def air_style(config):
    """Ray 2.0–2.6's Tune docs: ``session.get_checkpoint``/``session.report``, the trial's facts
    from ``session``; fails once after its first checkpoint, to be resumed from it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        checkpoint = session.get_checkpoint()
    start = 0
    if checkpoint:
        with checkpoint.as_directory() as d, open(os.path.join(d, "step")) as f:
            start = int(f.read()) + 1
    facts = {"name": session.get_trial_name(), "id": session.get_trial_id(),
             "dir": session.get_trial_dir(), "experiment": session.get_experiment_name(),
             "cpus": session.get_trial_resources().required_resources["CPU"],
             "ranks": [session.get_world_rank(), session.get_world_size(),
                       session.get_local_rank(), session.get_local_world_size(),
                       session.get_node_rank()]}
    for step in range(start, 3):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "step"), "w") as f:
                f.write(str(step))
            metrics = {"score": step * config["a"], "step": step, "resumed_at": start,
                       "warned": " | ".join(f"{w.category.__name__}: {w.message}" for w in caught),
                       **facts}
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                session.report(metrics, checkpoint=Checkpoint.from_directory(d))
        marker = os.path.join(facts["dir"], "crashed_once")
        if not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("crash once, after the first checkpoint")


def test_an_air_script_runs_after_the_import_swap(tmp_path):
    results = tune.Tuner(
        tune.with_resources(air_style, {"cpu": 1}),
        param_space={"a": tune.grid_search([1, 2])},
        tune_config=tune.TuneConfig(metric="score", mode="max"),
        run_config=RunConfig(name="air", storage_path=str(tmp_path), verbose=0,
                             checkpoint_config=CheckpointConfig(num_to_keep=1),
                             failure_config=FailureConfig(max_failures=1))).fit()
    assert results.num_errors == 0 and len(results) == 2
    assert results.get_best_result().config == {"a": 2}
    for result in results:
        df = result.metrics_dataframe
        assert list(df["step"]) == [0, 1, 2] and list(df["resumed_at"]) == [0, 1, 1]
        last = result.metrics
        assert (last["id"], last["dir"], last["experiment"], last["cpus"]) == (
            last["trial_id"], result.path, "air", 1)
        assert os.path.basename(result.path).startswith(last["name"])
        assert list(last["ranks"]) == [0, 1, 0, 1, 0]  # a trial is one process
    # report and get_checkpoint warn as in Ray 2.60: use the tune names
    warned = list(results[0].metrics_dataframe["warned"])
    advice = "FutureWarning: `session.{0}` should be switched to `tune.{0}` when running in a " \
             "function passed to Tune (as Ray 2.60 warns too)"
    assert warned == [advice.format("get_checkpoint"),  # step 0, then the crash
                      advice.format("get_checkpoint"),  # step 1, the retry's first row
                      advice.format("report")]


def test_outside_a_trial_each_function_warns_once_and_returns_rays_default(monkeypatch):
    monkeypatch.setattr(tune_session, "_warned_outside", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert session.report({"score": 1}) is None
        assert session.get_checkpoint() is None
        assert session.get_trial_name() is None
        assert session.get_world_size() == 1 and session.get_world_rank() == 0
        assert session.get_world_size() == 1  # said once
    assert [w.category for w in caught] == [UserWarning] * 5  # no FutureWarning outside
    messages = [str(w.message) for w in caught]
    assert messages[2] == ("`get_trial_name` is meant to only be called inside a function that "
                           "is executed by a Tuner (or tune.run). Returning `None`.")
    assert messages[3].endswith("Returning `1`.")


def test_the_names_are_poptunes():
    from poptune.air.integrations.mlflow import MLflowLoggerCallback, setup_mlflow
    from poptune.air.result import Result
    from poptune.integration import mlflow

    assert (RunConfig, CheckpointConfig, FailureConfig, air.FailureConfig, air.Result, Result) \
        == (tune.RunConfig, tune.CheckpointConfig, tune.FailureConfig, tune.FailureConfig,
            tune.Result, tune.Result)
    assert (MLflowLoggerCallback, setup_mlflow) == (mlflow.MLflowLoggerCallback,
                                                    mlflow.setup_mlflow)
    assert poptune.air is air and air.session is session


@pytest.mark.parametrize("module, name", [(air, "ScalingConfig"), (air, "DataBatchType"),
                                          (air.config, "ScalingConfig"),
                                          (session, "get_dataset_shard")])
def test_ray_train_names_import_and_say_why_they_do_nothing(module, name):
    with pytest.raises(TuneError, match=rf"`\S*{name}` is Ray Train's"):
        getattr(module, name)()


def test_tune_context_has_ray_2_60s_getters():
    context = tune_session.TuneContext("t1", "trial_1", "/x", "exp", "/exp")
    assert (context.get_local_world_size(), context.get_node_rank()) == (1, 0)
    with pytest.raises(DeprecationWarning, match="`get_metadata` is deprecated for Ray Tune"):
        context.get_metadata()
