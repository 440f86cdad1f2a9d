"""fail_fast on real worker processes: the experiment ends at once, as in Ray 2.60."""

from __future__ import annotations

import glob
import os
import time

import poptune as tune


def fail_or_wait(config):
    if config["i"] == 0:
        raise ValueError("boom")
    # report only after the failure of trial 0 has been handled (its error.txt exists):
    # Ray has stopped this trial by then, so this report must never be recorded
    deadline = time.monotonic() + 120
    while not glob.glob(os.path.join(config["root"], "exp", "*", "error.txt")):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    tune.report({"score": 1.0})
    time.sleep(120)  # a trial that is not killed keeps the run going for a long time


def test_fail_fast_ends_a_trial_that_has_not_reported_yet_with_no_result(tmp_path):
    tuner = tune.Tuner(
        tune.with_resources(fail_or_wait, {"cpu": 0.5}),
        param_space={"i": tune.grid_search([0, 1]), "root": str(tmp_path)},
        run_config=tune.RunConfig(name="exp", storage_path=str(tmp_path), verbose=0,
                                  failure_config=tune.FailureConfig(fail_fast=True)),
    )
    grid = tuner.fit()
    by_i = {r.config["i"]: r for r in grid}
    assert isinstance(by_i[0].error, ValueError)
    assert by_i[1].error is None and not by_i[1].metrics.get("score")
    trial_dir = by_i[1].path
    with open(os.path.join(trial_dir, "result.json")) as f:
        assert f.read().strip() == ""
