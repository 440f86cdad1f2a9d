"""``poptune.session.at_trial_end``: a trial's clean-up runs in its worker, however it ends."""

from __future__ import annotations

import os

import pytest

import poptune as tune
from poptune import session


def registers(config):
    marker = os.path.join(tune.get_context().get_trial_dir(), "ended")
    assert session.at_trial_end(
        lambda failed: open(marker, "a").write(f"{os.getpid()} {failed}\n"))
    tune.report({"pid": os.getpid()})
    if config["fail"]:
        raise RuntimeError("the trial fails; its clean-up still runs")


def test_registered_functions_run_when_the_trial_ends_even_when_it_fails(tmp_path):
    grid = tune.Tuner(registers, param_space={"fail": tune.grid_search([False, True])},
                      run_config=tune.RunConfig(name="end", storage_path=str(tmp_path),
                                                verbose=0)).fit()
    assert grid.num_errors == 1
    for result in grid:
        with open(os.path.join(result.path, "ended")) as f:
            # once, in the trial's worker, told whether the trial failed
            assert f.read() == f"{result.metrics['pid']} {result.config['fail']}\n"


def test_outside_a_trial_nothing_is_registered():
    assert session.at_trial_end(lambda failed: pytest.fail("never called")) is False
