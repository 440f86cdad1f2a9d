"""``poptune.train``: Ray 2.7–2.40's ``from ray import train, tune`` scripts after the swap."""

from __future__ import annotations

import os
import tempfile
import warnings

import pytest

import poptune
from poptune import session, train, tune
from poptune.exceptions import TuneError


# -- trainables (module level, so worker processes can import them) ------------------------
def ray_2_9_style(config):
    """The shape of Ray 2.7–2.40's Tune docs: ``train.get_checkpoint``/``train.report`` with a
    ``train.Checkpoint``. Fails once after its second checkpoint, to be resumed from it; each
    row carries the warnings the ``train.`` calls before it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        checkpoint = train.get_checkpoint()
        context = train.get_context()
    start = 0
    if checkpoint:
        with checkpoint.as_directory() as d, open(os.path.join(d, "step")) as f:
            start = int(f.read()) + 1
    crash_marker = os.path.join(context.get_trial_dir(), "crashed_once")
    for step in range(start, 4):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "step"), "w") as f:
                f.write(str(step))
            metrics = {"loss": config["lr"] / (step + 1), "step": step, "resumed_at": start,
                       "name": context.get_trial_name(),
                       "warned": " | ".join(f"{w.category.__name__}: {w.message}" for w in caught)}
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                train.report(metrics, checkpoint=train.Checkpoint.from_directory(d))
        if step == 1 and not os.path.exists(crash_marker):
            open(crash_marker, "w").close()
            raise RuntimeError("crash once, after the checkpoint of step 1")


def test_a_ray_2_9_script_runs_after_the_import_swap(tmp_path):
    tuner = tune.Tuner(
        ray_2_9_style,
        param_space={"lr": tune.grid_search([0.1, 0.2])},
        tune_config=tune.TuneConfig(metric="loss", mode="min"),
        run_config=train.RunConfig(
            name="ray29", storage_path=str(tmp_path), verbose=0,
            checkpoint_config=train.CheckpointConfig(num_to_keep=2),
            failure_config=train.FailureConfig(max_failures=1)))
    results = tuner.fit()
    assert results.num_errors == 0 and len(results) == 2
    for result in results:
        assert isinstance(result, train.Result)
        df = result.metrics_dataframe
        assert list(df["step"]) == [0, 1, 2, 3]  # each once, across the retry
        assert list(df["resumed_at"]) == [0, 0, 2, 2]  # the retry started from step 1's
        (name,) = set(df["name"])
        assert os.path.basename(result.path).startswith(name)
        with result.checkpoint.as_directory() as d, open(os.path.join(d, "step")) as f:
            assert f.read() == "3"
    # inside a trial, each `train.` call warns, with the advice Ray gave before 2.60
    warned = list(results[0].metrics_dataframe["warned"])
    advice = "FutureWarning: `train.{0}` should be switched to `tune.{0}` when running in a " \
             "function passed to Tune (Ray 2.60 raises here; poptune runs `tune.{0}`)"
    assert warned[0] == f"{advice.format('get_checkpoint')} | {advice.format('get_context')}"
    assert warned[1] == warned[3] == advice.format("report")
    assert warned[2] == warned[0]  # the retry's first row


def test_the_configuration_classes_are_poptunes():
    assert (train.RunConfig, train.CheckpointConfig, train.FailureConfig, train.SyncConfig,
            train.Checkpoint, train.Result, train.TrainContext) == (
        tune.RunConfig, tune.CheckpointConfig, tune.FailureConfig, tune.SyncConfig,
        tune.Checkpoint, tune.Result, tune.TuneContext)
    assert poptune.train is train  # `import poptune as ray; ray.train.report(...)`


def test_outside_a_trial_as_tune_no_future_warning(monkeypatch):
    monkeypatch.setattr(session, "_warned_outside", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert train.report({"loss": 1.0}) is None
        assert train.get_checkpoint() is None
        assert train.get_context().get_trial_name() is None
    assert [w.category for w in caught] == [UserWarning] * 3
    assert "`report` is meant to only be called inside" in str(caught[0].message)


@pytest.mark.parametrize("name", ["ScalingConfig", "get_dataset_shard", "DataConfig",
                                  "get_all_reported_checkpoints", "TRAIN_DATASET_KEY"])
def test_ray_train_names_import_and_say_why_they_do_nothing(name):
    stand_in = getattr(train, name)
    with pytest.raises(TuneError, match=rf"`train\.{name}` is Ray Train's .* poptune does not "
                                        "have; a Tune trainable needs none of it"):
        stand_in(num_workers=2)


def test_scaling_config_points_to_with_resources():
    from poptune.train import ScalingConfig  # an import Ray 2.x scripts have

    with pytest.raises(TuneError, match=r"tune\.with_resources\(trainable"):
        ScalingConfig(num_workers=2, use_gpu=True)


def test_an_unknown_name_is_a_plain_attribute_error():
    with pytest.raises(AttributeError, match="module 'poptune.train' has no attribute 'nope'"):
        train.nope  # noqa: B018


def test_ray_trains_errors_are_exception_classes_for_except_clauses():
    """``except train.TrainingFailedError:`` around a Tuner stays valid (nothing raises it)."""
    for name in ("TrainingFailedError", "ControllerError", "WorkerGroupError", "PreemptionError",
                 "NCCLHangError"):
        error = getattr(train, name)
        assert issubclass(error, TuneError)
        try:
            raise ValueError("not a Ray Train error")
        except error:  # noqa: PERF203 - the clause itself is what is tested
            pytest.fail(f"{name} caught a ValueError")
        except ValueError:
            pass
