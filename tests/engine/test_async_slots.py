"""Asynchronous scheduling: a free slot takes the next trial at once, whatever the others do."""

from __future__ import annotations

import os
import time

import poptune as tune


def test_a_straggler_never_holds_back_the_other_slot(tmp_path):
    """Trial 0 runs until every other trial has finished in the second slot.

    With synchronous batches (wait for the slowest trial before starting more) the short
    trials could not all run while trial 0 is still going: trial 0 would give up after its
    deadline having seen only one of them, and the assertion names how many it saw.
    """
    marks = str(tmp_path / "marks")
    os.mkdir(marks)
    n_short = 6

    def trainable(config):
        if config["i"] == 0:
            deadline = time.monotonic() + 60
            while len(os.listdir(marks)) < n_short and time.monotonic() < deadline:
                time.sleep(0.01)
            tune.report({"seen": len(os.listdir(marks))})
        else:
            open(os.path.join(marks, str(config["i"])), "w").close()
            tune.report({"seen": -1})

    grid = tune.Tuner(
        trainable, param_space={"i": tune.grid_search(list(range(n_short + 1)))},
        tune_config=tune.TuneConfig(max_concurrent_trials=2),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "res"), verbose=0),
    ).fit()
    assert grid.num_errors == 0
    straggler = next(r for r in grid if r.config["i"] == 0)
    assert straggler.metrics["seen"] == n_short


def test_time_budget_stops_the_straggler_after_the_other_slot_kept_working(tmp_path):
    """Under ``time_budget_s`` the short trials all complete while a straggler holds a slot;
    the straggler is stopped when the budget runs out, and nothing waits for it to finish."""
    marks = str(tmp_path / "marks")
    os.mkdir(marks)

    def trainable(config):
        if config["i"] == 0:
            for step in range(10_000):  # far longer than the budget
                time.sleep(0.05)
                tune.report({"step": step})
        else:
            open(os.path.join(marks, str(config["i"])), "w").close()
            tune.report({"step": 0})

    grid = tune.Tuner(
        trainable, param_space={"i": tune.grid_search(list(range(5)))},
        # a budget with room for worker start-up on a loaded machine; the straggler alone
        # would run for minutes
        tune_config=tune.TuneConfig(max_concurrent_trials=2, time_budget_s=8),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "res"), verbose=0),
    ).fit()
    assert sorted(os.listdir(marks)) == ["1", "2", "3", "4"]
    straggler = next(r for r in grid if r.config["i"] == 0)
    assert 0 < straggler.metrics["step"] < 10_000 - 1
