"""ResourceChangingScheduler and its allocation functions: decisions, then a real run."""

from __future__ import annotations

import os
import random
import tempfile
import types
import warnings

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
    # 9 CPUs in use on 8: a gives back the one CPU that is over
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


# ------------------------------------------------- Ray 2.60's decisions (a side-by-side probe)
def holding(tid, cpu, gpu=0.0, loss=None):
    """A running trial holding ``cpu``/``gpu`` (its last ``loss`` if given)."""
    t = Trial(trial_id=tid, trainable_name="f", config={}, resources={"cpu": cpu, "gpu": gpu})
    t.status = TrialStatus.RUNNING
    t.last_result = {"training_iteration": 3, **({} if loss is None else {"loss": loss})}
    return t


def decide(fn, trials, cpus, gpus, base, who=0):
    """``fn``'s new resources for ``trials[who]``, as ``{"CPU": .., "GPU": ..}``."""
    sched = types.SimpleNamespace(base_trial_resources=PlacementGroupFactory([base]))
    pgf = fn(TuneController(lambda: trials, cpus, gpus), trials[who], {"training_iteration": 3},
             sched)
    need = pgf.required_resources
    return {"CPU": need.get("CPU", 0.0), "GPU": need.get("GPU", 0.0)}


def test_a_trial_above_its_share_keeps_it_while_nothing_is_over_committed():
    # every free unit is taken: Ray keeps what t0 has (poptune used to cut it to its share)
    both = {"increase_by": {"CPU": 1, "GPU": 1}}
    for fn in (DistributeResources(**both), DistributeResources(add_bundles=True, **both),
               DistributeResourcesToTopJob(metric="loss", mode="max", **both)):
        trials = [holding("t0", 3, 2, loss=0.1), holding("t1", 1, loss=0.7)]
        assert decide(fn, trials, 4, 2, {"CPU": 1}) == {"CPU": 3.0, "GPU": 2.0}
    trials = [holding("t0", 3), holding("t1", 1)]  # add_bundles' unit is the base bundle
    assert decide(DistributeResources(add_bundles=True), trials, 4, 0, {"CPU": 1})["CPU"] == 3
    # two units above its base, with increase_by_times=1 and no free unit: kept too
    trials = [holding("t0", 4), holding("t1", 2), holding("t2", 2)]
    fn = DistributeResources(increase_by_times=1)
    assert decide(fn, trials, 8, 0, {"CPU": 2})["CPU"] == 4.0
    fn = DistributeResourcesToTopJob(increase_by={"CPU": 1}, increase_by_times=1,
                                     reserve_resources={"CPU": 1}, metric="loss", mode="max")
    assert decide(fn, [holding("t0", 3, loss=0.4)], 4, 0, {"CPU": 1})["CPU"] == 3.0


def test_growing_cuts_a_trial_above_its_share_down_to_it_and_over_commitment_shrinks():
    # 8 CPUs, bases of 1: 5 spare, dealt in turn: a share of 2. With 2 free CPUs t0 (3 extra)
    # is cut to base + 2, as Ray does; with none free it keeps its 3; 1 over: it gives 1 back
    fn = DistributeResources()
    grown = [holding("t0", 4), holding("t1", 1), holding("t2", 1)]
    assert decide(fn, grown, 8, 0, {"CPU": 1})["CPU"] == 3.0
    assert decide(fn, grown + [holding("t3", 2)], 8, 0, {"CPU": 1})["CPU"] == 4.0
    assert decide(fn, grown + [holding("t3", 3)], 8, 0, {"CPU": 1})["CPU"] == 3.0


def test_top_job_grows_the_best_trial_still_below_increase_by_times():
    # t1 is best but already at its one unit: t0, next best, takes the free CPUs (up to one
    # unit) and t1 keeps what it has
    fn = DistributeResourcesToTopJob(increase_by={"CPU": 2}, increase_by_times=1,
                                     metric="loss", mode="max")
    trials = [holding("t0", 2, loss=0.28), holding("t1", 6, loss=0.78),
              holding("t2", 2, loss=0.08)]
    assert decide(fn, trials, 16, 0, {"CPU": 2})["CPU"] == 4.0
    assert decide(fn, trials, 16, 0, {"CPU": 2}, who=1)["CPU"] == 6.0
    assert decide(fn, trials, 16, 0, {"CPU": 2}, who=2)["CPU"] == 2.0
    fn = DistributeResourcesToTopJob(increase_by={"CPU": 1}, increase_by_times=2,
                                     metric="loss", mode="min")
    trials = [holding("t0", 3, loss=0.2), holding("t1", 4, loss=0.1), holding("t2", 3, loss=0.3)]
    assert decide(fn, trials, 16, 0, {"CPU": 2})["CPU"] == 4.0


def test_where_ray_has_a_bug_the_trials_share_as_documented():
    # Ray: the CPUs left after the reserve (4 - 1 - 2 x 2) are negative, so it deals no share
    # of the GPUs and t0 takes both; poptune shares the GPUs: one each
    fn = DistributeResources(increase_by={"GPU": 1}, increase_by_times=2,
                             reserve_resources={"CPU": 1})
    trials = [holding("t0", 2), holding("t1", 2)]
    assert decide(fn, trials, 4, 2, {"CPU": 2}) == {"CPU": 2.0, "GPU": 1.0}
    trials[0].resources["gpu"] = 1.0
    assert decide(fn, trials, 4, 2, {"CPU": 2}, who=1) == {"CPU": 2.0, "GPU": 1.0}
    # the same with no reserve: 6 live trials of 1 CPU on 4 (two wait); Ray: t0 takes both GPUs
    fn = DistributeResources(increase_by={"GPU": 1})
    trials = [holding(f"t{i}", 1) for i in range(6)]
    assert decide(fn, trials, 4, 2, {"CPU": 1}) == {"CPU": 1.0, "GPU": 1.0}
    # Ray's TopJob counts t1 (one added bundle, its limit) as able to grow when add_bundles
    # adds a CPU-only unit, and no trial as able to when increase_by is unset: the free CPUs
    # then stay unused. poptune grows the best trial below increase_by_times, in both cases
    fn = DistributeResourcesToTopJob(add_bundles=True, increase_by={"CPU": 1},
                                     increase_by_times=1, metric="loss", mode="max")
    trials = [holding("t0", 2, loss=0.66), holding("t1", 3, loss=0.81)]
    assert decide(fn, trials, 8, 0, {"CPU": 2})["CPU"] == 3.0  # Ray: 2
    fn = DistributeResourcesToTopJob(increase_by_times=2, metric="loss", mode="max")
    trials = [holding("t0", 2, loss=0.24), holding("t1", 2, loss=0.21),
              holding("t2", 4, loss=0.96), holding("t3", 4, loss=0.2)]
    assert decide(fn, trials, 16, 2, {"CPU": 2})["CPU"] == 4.0  # Ray: 2


def probe_cases(k_max, n_cases=400, seed=0):
    """The side-by-side probe's cases (its generator, draw for draw): a cluster, the
    allocation function's arguments, and live trials each holding its base plus up to
    ``k_max`` units (those that fit), the first of which reports."""
    rng = random.Random(seed)
    for case in range(n_cases):
        cpus, gpus = rng.choice([4, 8, 16]), rng.choice([0, 0, 2, 4])
        base = rng.choice([{"CPU": 1}, {"CPU": 2}] + ([{"CPU": 1, "GPU": 1}] if gpus else []))
        add_bundles = rng.choice([False, True])
        inc = rng.choice([None, {"CPU": 1}, {"CPU": 2}]
                         + ([{"GPU": 1}, {"CPU": 1, "GPU": 1}] if gpus else []))
        kwargs = {"add_bundles": add_bundles, "increase_by": inc,
                  "increase_by_times": rng.choice([-1, -1, 1, 2]),
                  "reserve_resources": rng.choice([None, {"CPU": 1}])}
        top = rng.random() < 0.4
        unit = inc or ({"GPU": 1} if base.get("GPU") else base if add_bundles else {"CPU": 1})
        held, losses = [], []
        for _ in range(rng.randint(1, 5)):
            k = rng.randint(0, k_max)
            if add_bundles:
                held.append([dict(base)] + [dict(unit)] * k)
            else:
                held.append([{r: base.get(r, 0) + unit.get(r, 0) * k for r in {*base, *unit}}])
            losses.append(rng.random())
        if all(sum(sum(b.get(r, 0) for b in h) for h in held) <= have
               for r, have in (("CPU", cpus), ("GPU", gpus))):
            yield case, cpus, gpus, base, kwargs, top, unit, held, losses


def ray_bug(cpus, gpus, base, kwargs, top, unit, n_live):
    """Which documented Ray bug a case meets, if any (see the allocation functions' docs)."""
    if top:
        single = not (unit.get("CPU") and unit.get("GPU"))
        limited = kwargs["increase_by_times"] >= 1
        return "TopJob's limit" if limited and (kwargs["increase_by"] is None or (
            kwargs["add_bundles"] and single)) else None
    left = {"CPU": cpus, "GPU": gpus}
    for r, v in (kwargs["reserve_resources"] or {}).items():
        left[r] -= v
    short = any(left[r] - base.get(r, 0) * n_live < 0 for r in left if not unit.get(r))
    return "no equal share" if short else None


@pytest.fixture
def ray_in_process():
    """Ray's allocation classes, built in this process; what importing Ray changes here (the
    global random states, an environment variable, warning filters) is put back after."""
    import numpy as np

    env, state, np_state = dict(os.environ), random.getstate(), np.random.get_state()
    with warnings.catch_warnings():
        rcs = pytest.importorskip("ray.tune.schedulers.resource_changing_scheduler")
        from ray.tune.execution.placement_groups import PlacementGroupFactory as RayPGF
        from ray.tune.experiment import Trial as RayTrial

        yield rcs, RayPGF, RayTrial
    random.setstate(state)
    np.random.set_state(np_state)
    os.environ.clear()
    os.environ.update(env)


def test_every_decision_of_the_probe_grid_is_ray_2_60s_but_where_ray_has_a_bug(ray_in_process):
    rcs, RayPGF, RayTrial = ray_in_process

    def ray_trial(i, bundles, loss):
        t = RayTrial("f", trial_id=f"t{i}", stub=True)
        t.placement_group_factory, t.status = RayPGF(bundles), "RUNNING"
        t.run_metadata.last_result = {"loss": loss, "training_iteration": 3}
        return t

    def decide_with(classes, trials, pgf, case):
        _, cpus, gpus, base, kwargs, top, *_ = case
        fn = classes[1](metric="loss", mode="max", **kwargs) if top else classes[0](**kwargs)
        sched = types.SimpleNamespace(base_trial_resources=pgf([dict(base)]))
        need = fn(TuneController(lambda: trials, cpus, gpus), trials[0],
                  {"training_iteration": 3, "loss": trials[0].last_result["loss"]},
                  sched).required_resources
        return {r: float(need.get(r, 0)) for r in ("CPU", "GPU")}

    counts, differ = [], {}
    for k_max in (0, 2):  # every live trial at its base; then holding up to 2 units more
        cases = list(probe_cases(k_max))
        counts.append(len(cases))
        for case in cases:
            _, cpus, gpus, base, kwargs, top, unit, held, losses = case
            theirs = [ray_trial(i, h, loss) for i, (h, loss) in enumerate(zip(held, losses))]
            ours = [holding(f"t{i}", sum(b.get("CPU", 0) for b in h),
                            sum(b.get("GPU", 0) for b in h), loss)
                    for i, (h, loss) in enumerate(zip(held, losses))]
            ray = decide_with((rcs.DistributeResources, rcs.DistributeResourcesToTopJob),
                              theirs, RayPGF, case)
            mine = decide_with((DistributeResources, DistributeResourcesToTopJob), ours,
                               PlacementGroupFactory, case)
            if mine != ray:
                differ[(k_max, case[0])] = ray_bug(cpus, gpus, base, kwargs, top, unit,
                                                   len(held))
    assert counts == [321, 187]  # the probe's grid, case for case
    # 9 decisions differed before poptune followed Ray; now only these four, each a Ray bug
    assert differ == {(0, 394): "no equal share", (2, 45): "TopJob's limit",
                      (2, 209): "TopJob's limit", (2, 366): "TopJob's limit"}


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
