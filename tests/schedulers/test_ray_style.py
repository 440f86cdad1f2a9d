"""Schedulers written against Ray's API: hooks with Ray's signatures (``tune_controller``
first), ``choose_trial_to_run(tune_controller)``, and ``super()`` calls into poptune's own
schedulers, as Ray's docs and users write them."""

from __future__ import annotations

import pickle

import pytest

import poptune as tune
from poptune.execution import TuneController
from poptune.experiment import Trial
from poptune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler


def count(config):
    for i in range(5):
        tune.report({"i": i, "score": config["x"] * i})


def fails(config):
    tune.report({"i": 0, "score": 0})
    raise RuntimeError("boom")


class RayStyle(TrialScheduler):
    """Every hook with Ray 2.60's signature; starts the newest pending trial."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def on_trial_add(self, tune_controller, trial):
        self.calls.append(("add", trial.trial_id, len(tune_controller.get_trials())))

    def on_trial_error(self, tune_controller, trial):
        self.calls.append(("error", trial.trial_id, type(tune_controller).__name__))

    def on_trial_result(self, tune_controller, trial, result):
        self.calls.append(("result", trial.trial_id, result["training_iteration"]))
        return TrialScheduler.STOP if result["training_iteration"] >= 2 else self.CONTINUE

    def on_trial_complete(self, tune_controller, trial, result):
        self.calls.append(("complete", trial.trial_id, result["training_iteration"]))

    def on_trial_remove(self, tune_controller, trial):
        self.calls.append(("remove", trial.trial_id))

    def choose_trial_to_run(self, tune_controller):
        for trial in reversed(tune_controller.get_trials()):
            if trial.status == Trial.PENDING:
                self.calls.append(("choose", trial.trial_id))
                return trial
        return None


def _fit(tmp_path, trainable, scheduler, n=3, concurrent=1):
    return tune.Tuner(trainable, param_space={"x": tune.grid_search(list(range(1, n + 1)))},
                      tune_config=tune.TuneConfig(scheduler=scheduler, metric="score",
                                                  mode="max", max_concurrent_trials=concurrent),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()


def test_a_scheduler_with_rays_signatures_gets_a_tune_controller(tmp_path):
    scheduler = RayStyle()
    grid = _fit(tmp_path, count, scheduler)
    ids = sorted(r.metrics["trial_id"] for r in grid)
    assert [r.metrics["training_iteration"] for r in grid] == [2, 2, 2]  # its STOP decisions
    adds = [c for c in scheduler.calls if c[0] == "add"]
    assert [c[1] for c in adds] == ids
    # one trial at a time is created: each start went through its choose_trial_to_run
    assert [c[1] for c in scheduler.calls if c[0] == "choose"] == ids
    assert [c[2] for c in adds] == [1, 2, 3]  # the controller's trials, the new one included
    for trial_id in ids:
        mine = [c for c in scheduler.calls if c[1] == trial_id and c[0] != "add"]
        assert mine == [("choose", trial_id), ("result", trial_id, 1), ("result", trial_id, 2),
                        ("complete", trial_id, 2)]


def test_rays_on_trial_error_gets_the_controller(tmp_path):
    scheduler = RayStyle()
    grid = _fit(tmp_path, fails, scheduler, n=1)
    assert grid.num_errors == 1
    assert ("error", grid[0].metrics["trial_id"], "TuneController") in scheduler.calls


class ASHAWithLog(ASHAScheduler):
    """A Ray user's ASHA subclass: Ray's signature, then ``super()`` with it."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = 0

    def on_trial_result(self, tune_controller, trial, result):
        self.seen += 1
        return super().on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial, result):
        super().on_trial_complete(tune_controller=tune_controller, trial=trial, result=result)


class FIFOWithChoice(FIFOScheduler):
    def choose_trial_to_run(self, tune_controller):
        assert isinstance(tune_controller.get_live_trials(), list)
        return super().choose_trial_to_run(tune_controller)


def test_ray_style_subclasses_of_poptunes_schedulers_call_super_with_the_controller(tmp_path):
    asha = ASHAWithLog(max_t=5, grace_period=1, reduction_factor=2)
    grid = _fit(tmp_path, count, asha, n=4, concurrent=2)
    assert grid.num_errors == 0 and asha.seen >= 4
    assert max(r.metrics["training_iteration"] for r in grid) == 5  # the best went on
    assert min(r.metrics["training_iteration"] for r in grid) < 5  # ASHA stopped some
    grid = _fit(tmp_path, count, FIFOWithChoice(), n=2)
    assert [r.metrics["training_iteration"] for r in grid] == [5, 5]


def test_poptunes_own_signatures_still_work():
    class Mine(TrialScheduler):
        def on_trial_result(self, trial, result):
            return self.STOP

    trial = Trial(trial_id="a_00000", trainable_name="f", config={})
    assert Mine().on_trial_result(trial, {}) is TrialScheduler.STOP
    assert RayStyle().on_trial_result(trial, {"training_iteration": 3}) is TrialScheduler.STOP


def test_the_experiment_view_is_not_part_of_the_schedulers_state():
    scheduler = RayStyle()
    scheduler.set_experiment_view(TuneController(lambda: [], num_cpus=2, num_gpus=0))
    assert "__experiment_view" not in scheduler.save_state()
    copy = pickle.loads(pickle.dumps(scheduler))
    assert "__experiment_view" not in copy.__dict__ and copy.calls == []


@pytest.mark.parametrize("hook", ["on_trial_add", "on_trial_result", "on_trial_complete",
                                  "on_trial_error", "on_trial_remove"])
def test_the_base_hooks_take_rays_leading_argument(hook):
    trial = Trial(trial_id="a_00000", trainable_name="f", config={})
    args = (trial, {}) if hook in ("on_trial_result", "on_trial_complete") else (trial,)
    base = TrialScheduler()
    assert getattr(base, hook)(None, *args) == getattr(base, hook)(*args)


def test_rays_parameter_name_tells_even_with_defaults():
    """``on_trial_complete(self, tune_controller, trial, result=None)`` has poptune's count
    of required arguments; its first parameter's name says it is Ray's."""
    seen = []

    class WithDefaults(TrialScheduler):
        def on_trial_complete(self, tune_controller, trial, result=None):
            seen.append((tune_controller, trial.trial_id, result))

    scheduler = WithDefaults()
    view = TuneController(lambda: [], num_cpus=1, num_gpus=0)
    scheduler.set_experiment_view(view)
    trial = Trial(trial_id="a_00000", trainable_name="f", config={})
    scheduler.on_trial_complete(trial, {"x": 1})
    assert seen == [(view, "a_00000", {"x": 1})]
