"""d2l's chapter 19.3 (asynchronous random search with Syne Tune) runs on poptune.syne_tune
with only its import lines changed (and its 12-minute budget cut for the test), on the
digits smoke data and simulated time (the d2l stand-in charges simulated seconds per
training step, so the wall-clock budget ends it deterministically); plus the same API in
real worker processes."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

CHAPTER = Path(__file__).with_name("d2l_chapter_19_3.py.txt")
ORIGINAL_IMPORTS = {  # the chapter's lines that changed, and what they became
    "from d2l import torch as d2l": "from poptune.examples import d2l_torch as d2l",
    "from syne_tune import StoppingCriterion, Tuner":
        "from poptune.syne_tune import StoppingCriterion, Tuner",
    "from syne_tune import Reporter": "from poptune.syne_tune import Reporter",
}


def test_the_chapter_runs_with_only_its_imports_changed(monkeypatch, _syne_folder):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.setenv("POPTUNE_D2L_SMOKE", "1")
    monkeypatch.setenv("POPTUNE_BACKEND", "simulated")
    monkeypatch.setenv("POPTUNE_SYNE_VERBOSE", "1")  # the chapter prints the tuner's summary
    code = CHAPTER.read_text()
    for new in ORIGINAL_IMPORTS.values():
        assert new in code
    budget = 2  # simulated seconds: 2 workers, a few trials
    code = code.replace("max_wallclock_time = 12 * 60", f"max_wallclock_time = {budget}")
    namespace: dict = {"__name__": "d2l_chapter_19_3"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Agg's "cannot show the figure"
        exec(compile(code, str(CHAPTER), "exec"), namespace)
    tuner, results = namespace["tuner"], namespace["results"]
    assert tuner.status.wallclock_time > budget  # the wall-clock budget ended it
    assert tuner.status.num_trials_completed >= 2
    first = results[results.trial_id == 0]
    assert first.config_learning_rate.iloc[0] == 0.1  # initial_config went first
    assert first.config_batch_size.iloc[0] == 128 and first.config_max_epochs.iloc[0] == 10
    assert list(first.epoch) == list(range(1, len(first) + 1))
    assert results.validation_error.between(0, 1).all()
    assert set(results.trial_id) <= set(range(tuner.status.num_trials_started))
    assert Path(os.environ["SYNETUNE_FOLDER"], tuner.name, "results.csv.zip").exists()


def objective(x, steps):
    from poptune.syne_tune import Reporter

    report = Reporter()
    for step in range(1, steps + 1):
        report(step=step, loss=(x - 0.3) ** 2 + 1 / step)


def test_python_backend_in_real_worker_processes(_syne_folder):
    from poptune.syne_tune import StoppingCriterion, Tuner
    from poptune.syne_tune.backend.python_backend import PythonBackend
    from poptune.syne_tune.config_space import uniform
    from poptune.syne_tune.experiments import load_experiment
    from poptune.syne_tune.optimizer.baselines import RandomSearch

    space = {"x": uniform(0, 1), "steps": 3}
    tuner = Tuner(PythonBackend(objective, space),
                  RandomSearch(space, metric="loss", random_seed=0,
                               points_to_evaluate=[{"x": 0.3}]),
                  StoppingCriterion(max_num_trials_completed=3), n_workers=2,
                  tuner_name="real-workers")
    tuner.run()
    exp = load_experiment(tuner.name)
    assert tuner.name.startswith("real-workers-")
    done = exp.results.groupby("trial_id").step.max()
    assert (done == 3).sum() >= 4  # stops once more than 3 completed
    assert exp.results[exp.results.trial_id == 0].config_x.iloc[0] == 0.3  # went first
    assert exp.best_config()["loss"] == exp.results.loss.min()
    assert (exp.results.st_worker_time >= 0).all()


def test_the_example_runs_in_smoke_mode(tmp_path, monkeypatch, capsys, _syne_folder):
    import runpy
    import sys

    # the example sets these itself; set them here first so they are restored afterwards
    for key, value in {"POPTUNE_D2L_SMOKE": "1", "POPTUNE_BACKEND": "simulated",
                       "POPTUNE_D2L_DATA": "digits"}.items():
        monkeypatch.setenv(key, value)
    example = Path(__file__).parents[2] / "examples" / "d2l_syne_tune.py"
    out = tmp_path / "figs"
    monkeypatch.setattr(sys, "argv", [str(example), "--smoke", "--budget", "1",
                                      "--out", str(out)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runpy.run_path(str(example), run_name="__main__")
    assert "best config:" in capsys.readouterr().out
    assert {"best_over_time.png", "trials_curves.png", "trials_over_time.png"} <= set(
        os.listdir(out))
