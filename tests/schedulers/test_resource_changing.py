"""ResourceChangingScheduler and its allocation functions: decisions, then a real run."""

from __future__ import annotations

import os
import tempfile

import pytest

import poptune as tune
from poptune.engine.trial import Trial, TrialStatus
from poptune.engine.trial_view import TrialView
from poptune.exceptions import TuneConfigError
from poptune.execution import PlacementGroupFactory, TuneController
from poptune.schedulers import (
    ASHAScheduler,
    DistributeResources,
    DistributeResourcesToTopJob,
    Exploit,
    FIFOScheduler,
    Outcome,
    PopulationBasedTraining,
    ResizeTrial,
    ResourceChangingScheduler,
    SchedulerDecision,
    StopTrial,
    TrialScheduler,
)
from tests.schedulers.outcomes import resizes, split, value


def trial(tid, cpu=1.0, score=None, status=TrialStatus.RUNNING):
    t = Trial(trial_id=tid, trainable_name="f", config={}, resources={"cpu": cpu, "gpu": 0.0})
    t.status = status
    if score is not None:
        t.last_result = {"score": score, "training_iteration": 1}
    return t


def setup(trials, cpus, fn=None, base=None):
    """A scheduler that saw ``trials`` added with 1 CPU each, then their current resources."""
    sched = ResourceChangingScheduler(base, fn if fn is not None else DistributeResources())
    sched.set_experiment_view(TuneController(lambda: trials, cpus, 0))
    for t in trials:
        now, t.resources = t.resources, {"cpu": 1.0, "gpu": 0.0}
        assert sched.on_trial_add(TrialView(t)) is None
        t.resources = now
    return sched


def cpus_of(pgf):
    return pgf.required_resources.get("CPU")


# ------------------------------------------------------------------ DistributeResources
def test_free_cpus_are_shared_equally_and_nothing_changes_before_the_first_result():
    a, b = trial("a"), trial("b")
    sched = setup([a, b], cpus=8)
    fn = DistributeResources()
    assert fn(sched._view, a, {"training_iteration": 0}, sched) is None
    # 8 CPUs, 2 live trials with 1 each: 6 spare, an equal share is 3 more each
    assert cpus_of(fn(sched._view, a, {"training_iteration": 1}, sched)) == 4.0
    a.resources["cpu"] = 4.0
    assert cpus_of(fn(sched._view, b, {"training_iteration": 1}, sched)) == 4.0


def test_an_over_committed_trial_shrinks_but_never_below_its_base():
    a, b, c = trial("a", 4.0), trial("b", 4.0), trial("c", 1.0)
    sched = setup([a, b, c], cpus=8)
    fn = DistributeResources()
    # 9 CPUs in use on 8: a gives one back; its share is ceil((8 - 3) / 3) = 2 extra
    assert cpus_of(fn(sched._view, a, {"training_iteration": 3}, sched)) == 3.0
    small = trial("d", 1.0)
    sched2 = setup([small, trial("e", 8.0)], cpus=8)
    assert cpus_of(fn(sched2._view, small, {"training_iteration": 3}, sched2)) == 1.0


def test_increase_by_and_its_limit_and_reserved_resources():
    a = trial("a")
    sched = setup([a], cpus=16)
    fn = DistributeResources(increase_by={"CPU": 2}, increase_by_times=3)
    assert cpus_of(fn(sched._view, a, {"training_iteration": 1}, sched)) == 7.0  # 1 + 3 x 2
    fn = DistributeResources(reserve_resources={"CPU": 10})
    assert cpus_of(fn(sched._view, a, {"training_iteration": 1}, sched)) == 6.0
    fn = DistributeResources(add_bundles=True)
    assert fn(sched._view, a, {"training_iteration": 1}, sched).bundles == [{"CPU": 1.0}] * 16


def test_top_job_gets_all_free_resources_and_the_others_keep_theirs():
    best, other = trial("best", score=0.9), trial("other", score=0.1)
    sched = setup([best, other], cpus=8)
    fn = DistributeResourcesToTopJob(metric="score", mode="max")
    assert cpus_of(fn(sched._view, best, {"training_iteration": 1}, sched)) == 7.0
    assert cpus_of(fn(sched._view, other, {"training_iteration": 1}, sched)) == 1.0
    with pytest.raises(TuneConfigError, match="metric`/`mode` of DistributeResourcesToTopJob"):
        DistributeResourcesToTopJob()(sched._view, best, {"training_iteration": 1}, sched)


@pytest.mark.parametrize("kwargs, message", [
    ({"increase_by": {"CPU": 0}}, "`increase_by` must be a dict with a positive 'CPU' or 'GPU'"),
    ({"increase_by": 2}, "`increase_by` must be a dict"),
])
def test_bad_allocation_parameters_are_named(kwargs, message):
    with pytest.raises((TuneConfigError, TypeError), match=message):
        DistributeResources(**kwargs)


# ------------------------------------------------------------ ResourceChangingScheduler
class Stopper(TrialScheduler):
    def on_trial_result(self, trial, result):
        return SchedulerDecision.STOP


def test_a_resize_pauses_the_trial_and_returns_its_new_resources_at_once():
    a, b = trial("a"), trial("b")
    sched = setup([a, b], cpus=4)
    out = sched.on_trial_result(a, {"training_iteration": 1})
    assert isinstance(out, Outcome) and out.value == SchedulerDecision.PAUSE
    [(tid, new)] = resizes(out)  # the controller applies it once the trial has paused
    assert tid == "a" and cpus_of(new) == 2.0
    a.status = TrialStatus.PAUSED
    assert sched.choose_trial_to_run([a]) is a  # nothing is left to hand out later


class Decider(TrialScheduler):
    """A base scheduler that returns Outcomes with actions on other trials."""

    def on_trial_add(self, trial):
        return Outcome({"lr": 0.1}, (StopTrial("x"),))

    def on_trial_result(self, trial, result):
        return Outcome(SchedulerDecision.CONTINUE, (StopTrial("other"),))

    def on_trial_complete(self, trial, result):
        return Outcome(None, (StopTrial("done-other"),))

    def choose_trial_to_run(self, candidates):
        return Outcome(candidates[0], (StopTrial("chosen-other"),))


def test_the_base_schedulers_outcomes_are_forwarded_with_the_resize_after_their_actions():
    a, b = trial("a"), trial("b")
    sched = ResourceChangingScheduler(Decider(), DistributeResources())
    sched.set_experiment_view(TuneController(lambda: [a, b], 4, 0))
    assert sched.on_trial_add(TrialView(a)) == Outcome({"lr": 0.1}, (StopTrial("x"),))
    out = sched.on_trial_result(a, {"training_iteration": 1})
    assert value(out) == SchedulerDecision.PAUSE
    stop, resize = out.actions
    assert stop == StopTrial("other") and isinstance(resize, ResizeTrial)
    assert resize.trial_id == "a" and cpus_of(resize.resources) == 2.0
    assert sched.on_trial_complete(b, {}) == Outcome(None, (StopTrial("done-other"),))
    assert split(sched.choose_trial_to_run([b])) == (b, (StopTrial("chosen-other"),))


def test_a_pbt_exploit_passes_through_unchanged():
    sched = ResourceChangingScheduler(
        PopulationBasedTraining(time_attr="training_iteration", metric="score", mode="max",
                                perturbation_interval=1, hyperparam_mutations={"lr": [1, 2]},
                                seed=0), DistributeResources())
    a, b = trial("a"), trial("b")
    sched.set_experiment_view(TuneController(lambda: [a, b], 4, 0))
    a.config = {"lr": 1}
    filled = sched.on_trial_add(TrialView(b))  # PBT's filled values come through
    assert set(filled) == {"lr"}
    assert sched.on_trial_add(TrialView(a)) is None
    b.config = {"lr": 2}
    b.checkpoint_path = "/exp/b/checkpoint_000001"
    sched.on_trial_result(b, {"training_iteration": 1, "score": 9.0})
    out = sched.on_trial_result(a, {"training_iteration": 1, "score": 1.0})
    assert isinstance(out, Exploit) and out.donor_trial_id == "b"  # no resize of an exploit


def test_a_restored_pending_resize_comes_back_from_on_trial_add():
    a, b = trial("a"), trial("b")
    sched = setup([a, b], cpus=4)
    [(_, new)] = resizes(sched.on_trial_result(a, {"training_iteration": 1}))
    state = sched.save_state()  # the experiment stops before the resize was carried out
    fresh = ResourceChangingScheduler(None, DistributeResources())
    fresh.load_state(state)
    a.status = TrialStatus.PAUSED
    out = fresh.on_trial_add(TrialView(a))
    assert out == Outcome(None, (ResizeTrial("a", new),))
    assert fresh.on_trial_add(TrialView(b)) is None
    # once the trial reports again the resize is done: a later restore does not repeat it
    fresh.set_experiment_view(TuneController(lambda: [a, b], 4, 0))
    a.status = TrialStatus.RUNNING
    fresh.on_trial_result(a, {"training_iteration": 0})
    assert fresh.save_state()["to_reallocate"] == {}


def test_the_wrapped_schedulers_decision_comes_first_and_same_resources_continue():
    a = trial("a")
    sched = setup([a], cpus=4, base=Stopper())
    assert sched.on_trial_result(a, {"training_iteration": 1}) == SchedulerDecision.STOP
    same = setup([a], cpus=4, fn=lambda *_: PlacementGroupFactory([{"CPU": 1}]))
    assert same.on_trial_result(a, {"training_iteration": 1}) == SchedulerDecision.CONTINUE
    assert isinstance(ResourceChangingScheduler().base_scheduler, FIFOScheduler)


def test_trials_must_start_with_the_same_resources():
    sched = setup([trial("a", 1.0)], cpus=4)
    with pytest.raises(TuneConfigError, match="same resources: the first trial had"):
        sched.on_trial_add(trial("b", 2.0))


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="`base_scheduler` must be a TrialScheduler"):
        ResourceChangingScheduler(base_scheduler="asha")
    with pytest.raises(TypeError, match="`resources_allocation_function` must be a callable"):
        ResourceChangingScheduler(resources_allocation_function=3)
    with pytest.warns(UserWarning, match="no trial will be resized"):
        ResourceChangingScheduler(resources_allocation_function=None)


# ------------------------------------------------------------------------------ a real run
def train(config):
    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt:
        with ckpt.as_directory() as d, open(os.path.join(d, "it")) as f:
            start = int(f.read())
    for it in range(start, 6):
        cpus = tune.get_context().get_trial_resources().required_resources["CPU"]
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "it"), "w") as f:
                f.write(str(it + 1))
            tune.report({"score": it, "cpus": cpus, "it": it + 1},
                        checkpoint=tune.Checkpoint.from_directory(d))


def test_trials_are_resized_and_resume_from_their_checkpoints(tmp_path, monkeypatch):
    monkeypatch.setenv("POPTUNE_NUM_CPUS", "4")
    grid = tune.Tuner(
        tune.with_resources(train, PlacementGroupFactory([{"CPU": 1}])),
        param_space={"i": tune.grid_search([0, 1])},
        tune_config=tune.TuneConfig(
            metric="score", mode="max",
            scheduler=ResourceChangingScheduler(ASHAScheduler(max_t=100), DistributeResources())),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
    ).fit()
    assert grid.num_errors == 0
    for result in grid:
        df = result.metrics_dataframe
        assert list(df["it"]) == [1, 2, 3, 4, 5, 6]  # resumed, never restarted from scratch
        assert df["cpus"].iloc[0] == 1.0
        assert df["cpus"].max() >= 2.0  # 4 CPUs shared by two trials: at least 2 each
        assert list(df["training_iteration"]) == [1, 2, 3, 4, 5, 6]
