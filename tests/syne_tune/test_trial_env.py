"""Trials see what they would see under Syne Tune's LocalBackend: the launcher's working
directory, and a GPU of their own when there are GPUs. These run in poptune's real worker
processes (the local backend); the GPUs are fake (``POPTUNE_NUM_GPUS``): only the
``CUDA_VISIBLE_DEVICES`` each trial is given is checked, no GPU is used."""

from __future__ import annotations

import textwrap

import pytest

from poptune.syne_tune import StoppingCriterion, Tuner
from poptune.syne_tune.backend import LocalBackend, PythonBackend
from poptune.syne_tune.config_space import uniform
from poptune.syne_tune.experiments import load_experiment
from poptune.syne_tune.optimizer.baselines import RandomSearch

SPACE = {"x": uniform(0, 1)}


def report_env(x):
    import os
    import time

    from poptune.syne_tune import Reporter

    time.sleep(0.5)  # trials 0 and 1 run at the same time
    Reporter()(loss=x, cwd="d=" + os.getcwd(),
               cvd="v=" + repr(os.environ.get("CUDA_VISIBLE_DEVICES")))


def run(backend, stop=None, n_workers=1):
    tuner = Tuner(backend, RandomSearch(SPACE, metric="loss"),
                  stop or StoppingCriterion(max_num_trials_completed=0), n_workers=n_workers)
    tuner.run()
    return load_experiment(tuner.name).results


def test_a_function_runs_in_the_launchers_working_directory(tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    df = run(PythonBackend(report_env, SPACE))
    assert set(df.cwd) == {f"d={project}"}  # not the trial directory


def test_a_script_runs_in_the_directory_the_backend_was_built_in(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    script = project / "scripts" / "train.py"
    script.write_text(textwrap.dedent('''
        import os
        from poptune.syne_tune import Reporter
        assert open("data.txt").read() == "relative to the launcher"
        Reporter()(loss=1.0, cwd="d=" + os.getcwd())
    '''))
    (project / "data.txt").write_text("relative to the launcher")
    monkeypatch.chdir(project)
    backend = LocalBackend(entry_point="scripts/train.py")
    monkeypatch.chdir(tmp_path)  # captured when the backend was built (as Syne Tune's Popen)
    df = run(backend)
    assert set(df.cwd) == {f"d={project}"}  # not scripts/, not the trial directory


def test_each_trial_gets_its_own_gpu_when_there_are_gpus(monkeypatch):
    """Two fake GPUs (POPTUNE_NUM_GPUS=2), two workers: trials 0 and 1 run at once on
    different GPUs, as Syne Tune's GPU rotation places them."""
    monkeypatch.setenv("POPTUNE_NUM_GPUS", "2")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    df = run(PythonBackend(report_env, SPACE), StoppingCriterion(max_num_trials_completed=1),
             n_workers=2)
    first = df[df.trial_id.isin([0, 1])].sort_values("trial_id")
    assert sorted(first.cvd) == ["v='0'", "v='1'"]


def test_gpus_are_shared_when_workers_outnumber_them():
    backend = PythonBackend(report_env, SPACE)
    assert backend.gpus_per_trial(2, 3) == 0.5 and backend.gpus_per_trial(1, 4) == 0.25
    assert backend.gpus_per_trial(4, 2) == 1.0 and backend.gpus_per_trial(0, 2) == 0.0
    assert PythonBackend(report_env, SPACE, rotate_gpus=False).gpus_per_trial(2, 2) == 0.0
    with pytest.raises(TypeError, match="`rotate_gpus`"):
        PythonBackend(report_env, SPACE, rotate_gpus="yes")


@pytest.mark.parametrize("rotate, gpus, driver", [(False, "2", "5,7"), (True, "0", None)])
def test_without_rotation_a_trial_keeps_the_drivers_cuda_devices(monkeypatch, rotate, gpus,
                                                                 driver):
    """Fake GPUs (POPTUNE_NUM_GPUS); without rotation (or without GPUs) a trial sees the
    driver's CUDA_VISIBLE_DEVICES, unset included, as Syne Tune's subprocess inherits it."""
    monkeypatch.setenv("POPTUNE_NUM_GPUS", gpus)
    if driver is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", driver)
    df = run(PythonBackend(report_env, SPACE, rotate_gpus=rotate))
    assert set(df.cvd) == {f"v={driver!r}"}
