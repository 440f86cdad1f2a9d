"""``Tuner.restore`` brings the experiment's callbacks back, as Ray's does (from its
``tuner.pkl``); one that cannot be pickled, or not loaded where the restore runs, is left
out with a warning instead of blocking the experiment or its restore."""

from __future__ import annotations

import logging
import os
import sys
import textwrap

import pytest

import poptune as tune
from tests._modules import source_module

MODULE = textwrap.dedent('''
    import os
    import poptune as tune

    class Recorder(tune.Callback):
        """Appends "<x> <iteration>" for each result to a file."""

        def __init__(self, path):
            self.path = path

        def on_trial_result(self, iteration, trials, trial, result, **info):
            with open(self.path, "a") as f:
                f.write(f"{trial.config['x']} {result['training_iteration']}\\n")

    class Counter(tune.Callback):
        """Counts results, its count kept with the experiment (``get_state``)."""

        def __init__(self, path):
            self.path, self.n = path, 0

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.n += 1
            with open(self.path, "a") as f:
                f.write(f"{self.n}\\n")

        def get_state(self):
            return {"n": self.n}

        def set_state(self, state):
            self.n = state["n"]

    def train(config):
        if config["x"] == 1 and not os.path.exists(config["flag"]):
            raise RuntimeError("not yet")
        for i in range(3):
            tune.report({"v": i})
''')


@pytest.fixture
def recmod(tmp_path):
    with source_module(tmp_path, "recmod", MODULE) as mod:
        yield mod


def _first_run(tmp_path, mod, callbacks) -> str:
    grid = tune.Tuner(mod.train,
                      param_space={"x": tune.grid_search([0, 1]),
                                   "flag": str(tmp_path / "flag")},
                      run_config=tune.RunConfig(name="exp", storage_path=str(tmp_path / "res"),
                                                verbose=0, callbacks=callbacks)).fit()
    assert grid.num_errors == 1  # x=1 failed: the restore restarts it
    (tmp_path / "flag").touch()
    return str(tmp_path / "res" / "exp")


def test_restore_brings_back_the_experiments_callbacks(tmp_path, recmod):
    log = tmp_path / "seen.txt"
    exp = _first_run(tmp_path, recmod, [recmod.Recorder(str(log))])
    assert log.read_text().split("\n")[:-1] == ["0 1", "0 2", "0 3"]
    restored = tune.Tuner.restore(exp, trainable=recmod.train, restart_errored=True)
    assert restored.run_config.progress_reporter is None  # none was given
    grid = restored.fit()
    assert grid.num_errors == 0
    # the restored run's results reached the callback (Ray restores callbacks too)
    assert log.read_text().split("\n")[:-1] == ["0 1", "0 2", "0 3", "1 1", "1 2", "1 3"]


def test_an_unpicklable_callback_is_left_out_of_the_restore_with_a_warning(tmp_path, recmod,
                                                                          caplog):
    import threading

    class Locked(tune.Callback):
        def __init__(self) -> None:
            self.lock = threading.Lock()

    log = tmp_path / "seen.txt"
    with caplog.at_level(logging.WARNING, logger="poptune"):
        exp = _first_run(tmp_path, recmod, [Locked(), recmod.Recorder(str(log))])
    assert "cannot be pickled" in caplog.text and "Locked" in caplog.text
    grid = tune.Tuner.restore(exp, trainable=recmod.train, restart_errored=True).fit()
    assert grid.num_errors == 0
    assert log.read_text().count("\n1 ") == 3  # the picklable one came back


def test_a_callback_that_cannot_be_loaded_at_restore_does_not_block_it(tmp_path, recmod,
                                                                     caplog):
    log = tmp_path / "seen.txt"
    exp = _first_run(tmp_path, recmod, [recmod.Recorder(str(log))])
    os.rename(tmp_path / "recmod.py", tmp_path / "elsewhere.py")  # not importable any more
    sys.modules.pop("recmod", None)
    train = recmod.train
    with caplog.at_level(logging.WARNING, logger="poptune"):
        tuner = tune.Tuner.restore(exp, trainable=train, restart_errored=True)
    assert "callbacks" in caplog.text and "cannot be loaded" in caplog.text
    assert tuner.fit().num_errors == 0
    assert log.read_text().split("\n")[:-1] == ["0 1", "0 2", "0 3"]  # it did not run


def test_a_restored_callback_gets_its_state_back(tmp_path, recmod):
    """``get_state()`` when the run ends, ``set_state()`` on restore (Ray's CallbackList
    does the same, by the callback's place in the list)."""
    log = tmp_path / "count.txt"
    exp = _first_run(tmp_path, recmod, [recmod.Recorder(str(tmp_path / "x")),
                                        recmod.Counter(str(log))])
    tune.Tuner.restore(exp, trainable=recmod.train, restart_errored=True).fit()
    assert log.read_text().split() == ["1", "2", "3", "4", "5", "6"]  # counting on, not anew


def test_the_progress_reporter_comes_back_with_its_columns(tmp_path, recmod):
    from poptune import CLIReporter

    grid = tune.Tuner(recmod.train, param_space={"x": 0, "flag": str(tmp_path / "flag")},
                      run_config=tune.RunConfig(
                          name="exp", storage_path=str(tmp_path / "res"), verbose=0,
                          progress_reporter=CLIReporter(metric_columns=["v"]))).fit()
    assert not grid.errors
    restored = tune.Tuner.restore(str(tmp_path / "res" / "exp"), trainable=recmod.train)
    reporter = restored.run_config.progress_reporter
    assert isinstance(reporter, CLIReporter) and list(reporter._metric_columns) == ["v"]
