"""The public surface: exported names, the import swap, cheap imports."""

import subprocess
import sys

import pytest

import poptune as tune
from poptune import config


def test_all_names_resolve():
    for name in tune.__all__:
        assert getattr(tune, name) is not None, name


def test_ray_tune_names_a_seed_script_uses_exist():
    for name in ("Tuner", "TuneConfig", "RunConfig", "CheckpointConfig", "FailureConfig",
                 "report", "get_checkpoint", "get_context", "Checkpoint", "uniform",
                 "loguniform", "choice", "grid_search", "sample_from", "randint",
                 "with_parameters", "with_resources", "Trainable", "ResultGrid", "Result"):
        assert name in tune.__all__
    from poptune.schedulers import FIFOScheduler, TrialScheduler  # noqa: F401


def test_import_poptune_does_not_import_heavy_modules():
    code = ("import sys, poptune; heavy = [m for m in ('pandas', 'numpy', 'rich', 'fsspec', "
            "'torch', 'cloudpickle') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError):
        tune.no_such_name  # noqa: B018


@pytest.mark.parametrize("kwargs, message", [
    ({"num_samples": -2}, "`num_samples` must be a positive int or -1"),
    ({"mode": "best"}, "`mode` must be one of 'min', 'max'"),
    ({"max_concurrent_trials": -1}, "`max_concurrent_trials`"),
    ({"time_budget_s": -1}, "`time_budget_s`"),
    ({"backend": "spark"}, "`backend` must be one of"),
])
def test_tune_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        config.TuneConfig(**kwargs)


@pytest.mark.parametrize("factory, message", [
    (lambda: config.CheckpointConfig(num_to_keep=0), "`num_to_keep` must be None or an int >= 1, got 0"),
    (lambda: config.CheckpointConfig(checkpoint_score_order="up"), "`checkpoint_score_order`"),
    (lambda: config.FailureConfig(max_failures=-3), "`max_failures`"),
    (lambda: config.FailureConfig(fail_fast="yes"), "`fail_fast`"),
    (lambda: config.RunConfig(verbose=7), "`verbose` must be an int in \\[0, 3\\], got 7"),
])
def test_other_config_validation(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_fail_fast_with_retries_is_rejected():
    with pytest.raises(ValueError, match="`max_failures` must be 0 when `fail_fast` is set"):
        tune.Tuner(lambda c: None, run_config=tune.RunConfig(
            failure_config=tune.FailureConfig(max_failures=2, fail_fast=True)))


def test_zero_budget_and_empty_name_mean_unset_as_in_ray():
    assert config.TuneConfig(time_budget_s=0).time_budget_s is None
    assert config.RunConfig(name="").name is None


@pytest.mark.parametrize("var", ["TUNE_RESULT_DIR", "RAY_AIR_LOCAL_CACHE_DIR"])
def test_rays_old_result_dir_variables_are_said_to_be_unread(monkeypatch, tmp_path, var):
    monkeypatch.setenv("POPTUNE_STORAGE_PATH", str(tmp_path))
    monkeypatch.setenv(var, "/somewhere/else")
    with pytest.warns(UserWarning, match=f"\\${var} is not read.*{tmp_path}"):
        assert config.default_storage_path() == str(tmp_path)
