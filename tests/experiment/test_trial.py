"""``poptune.experiment.Trial``: what Ray's callbacks and reporters read from a trial."""

from __future__ import annotations

import os

import pytest

import poptune as tune
from poptune.callback import Callback
from poptune.experiment import Trial


def reports_then_maybe_fails(config):
    with open("weights", "w") as f:  # the trial directory is the working directory
        f.write("w")
    tune.report({"x": 1}, checkpoint=tune.Checkpoint.from_directory(os.getcwd()))
    if config["fail"]:
        raise ValueError("boom")


class Reads(Callback):
    """What a Ray user's callback reads from the trial, at its start and at its end."""

    def __init__(self):
        self.seen = {}

    def on_trial_start(self, iteration, trials, trial, **info):
        self.seen[trial.trial_id] = {"start": (trial.is_finished(), trial.has_checkpoint(),
                                               trial.has_reported_at_least_once)}

    def _end(self, trial):
        self.seen[trial.trial_id]["end"] = (
            trial.is_finished(), trial.has_checkpoint(), trial.has_reported_at_least_once,
            trial.experiment_dir_name, trial.local_experiment_path, trial.node_ip,
            trial.get_error())

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._end(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._end(trial)


def test_what_rays_callbacks_read_from_a_trial(tmp_path):
    reads = Reads()
    grid = tune.Tuner(reports_then_maybe_fails,
                      param_space={"fail": tune.grid_search([False, True])},
                      run_config=tune.RunConfig(name="reads", storage_path=str(tmp_path),
                                                verbose=0, callbacks=[reads])).fit()
    assert grid.num_errors == 1
    ends = {}
    for result in grid:
        seen = reads.seen[result.metrics["trial_id"]]
        assert seen["start"] == (False, False, False)
        ends[result.config["fail"]] = seen["end"]
    from poptune.backends._probe import driver_ip

    # node_ip: the machine the trial ran on, as Ray's (ray.util.get_node_ip_address())
    assert ends[False][:6] == (True, True, True, "reads", str(tmp_path / "reads"), driver_ip())
    assert ends[False][6] is None
    assert ends[True][:3] == (True, True, True)
    assert isinstance(ends[True][6], str) and "ValueError: boom" in ends[True][6]


def test_logdir_is_gone_as_in_ray():
    trial = Trial(trial_id="a_00000", trainable_name="f", config={})
    with pytest.raises(DeprecationWarning, match="Use `local_path` instead of `logdir`"):
        trial.logdir  # noqa: B018
