"""PopulationBasedTraining driven by hand-made trials and a simulated runner (no processes)."""

from __future__ import annotations

import copy
import logging
import pickle
import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from poptune.engine.trial import Trial, TrialStatus
from poptune.engine.trial_view import TrialView
from poptune.exceptions import TuneConfigError
from poptune.schedulers import Exploit, Outcome, PopulationBasedTraining, SchedulerDecision
from poptune.schedulers.pbt import explore
from poptune.search import sample
from poptune.storage.pbt_log import write_exploit_logs
from tests.schedulers.outcomes import actions, add, split, value

TI = "training_iteration"
CONTINUE, PAUSE = SchedulerDecision.CONTINUE, SchedulerDecision.PAUSE
PAUSED_ = TrialStatus.PAUSED


# --------------------------------------------------------------------------- helpers
def make_trial(i: int, **config: Any) -> Trial:
    return Trial(
        trial_id=f"abc_{i:05d}", trainable_name="train", config=dict(config),
        experiment_tag=f"{i}_lr={config.get('lr')}", status=TrialStatus.RUNNING,
    )


def pbt(**kwargs: Any) -> PopulationBasedTraining:
    args: dict[str, Any] = dict(
        time_attr=TI, metric="score", mode="max", perturbation_interval=5,
        hyperparam_mutations={"lr": sample.uniform(0.0, 1.0)}, resample_probability=0.0,
        seed=0,
    )
    args.update(kwargs)
    return PopulationBasedTraining(**args)


def population(sched: PopulationBasedTraining, n: int, **config: Any) -> list[Trial]:
    trials = [make_trial(i, lr=0.1 * (i + 1), **config) for i in range(n)]
    for t in trials:
        assert add(sched, t) == ()
    return trials


def report(
    sched: PopulationBasedTraining, trial: Trial, it: int, score: float, ckpt: bool = True
) -> Any:
    """What the runner does: persist the checkpoint first, then ask the scheduler (its
    answer is returned as is: a Decision, or an Outcome)."""
    if ckpt:
        trial.checkpoint_path = f"/exp/{trial.trial_id}/checkpoint_{it:06d}"
    result = {TI: it, "time_total_s": float(it), "score": score}
    decision = sched.on_trial_result(trial, result)
    trial.last_result = result
    return decision


def reward(config: dict[str, Any]) -> float:
    return 1.0 - abs(config["lr"] - 0.3)


@dataclass
class Population:
    """A tiny runner: trials train in lockstep on ``slots`` workers and honour decisions."""

    scheduler: Any
    trials: list[Trial]
    slots: int
    max_iter: int = 30
    ckpt_every: int = 1
    keep_only_latest: bool = False  # num_to_keep=1, but never delete pinned checkpoints
    fail_at: dict[str, int] = field(default_factory=dict)
    finish_at: dict[str, int] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    iters: dict[str, int] = field(default_factory=dict)
    ckpts: dict[str, tuple[int, float]] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)
    exploits: list[tuple] = field(default_factory=list)
    log_dir: str | None = None  # write the policy logs as the runner does
    counter: int = 0
    ticks: int = 0

    def __post_init__(self) -> None:
        for t in self.trials:
            t.status = TrialStatus.PENDING
            self.weights.setdefault(t.trial_id, 0.0)
            self.iters.setdefault(t.trial_id, 0)

    def by_id(self, trial_id: str) -> Trial:
        return next(t for t in self.trials if t.trial_id == trial_id)

    def live(self) -> list[Trial]:
        return [t for t in self.trials if not t.status.is_finished()]

    def carry_out(self, trial: Trial, out: Any) -> None:
        """Carry out a hook's decision about ``trial``, then its actions (as the controller
        does: at once, in order)."""
        decision, acts = split(out)
        if isinstance(decision, Exploit):
            self.exploits.append((decision.trial_id, decision.donor_trial_id,
                                  decision.checkpoint_path, repr(decision.config)))
            if self.log_dir is not None and self.scheduler.log_config:
                write_exploit_logs(self.log_dir, decision.trial_id, decision.donor_trial_id,
                                   decision.log_line)
            trial.config = copy.deepcopy(decision.config)
            trial.experiment_tag = decision.experiment_tag or trial.experiment_tag
            trial.checkpoint_path = trial.restore_path = decision.checkpoint_path
            trial.status = TrialStatus.PAUSED
        elif decision == PAUSE:
            trial.status = TrialStatus.PAUSED
            trial.restore_path = trial.checkpoint_path
        self.apply(acts)

    def apply(self, acts: tuple[Any, ...]) -> None:
        for exploit in acts:
            assert isinstance(exploit, Exploit), exploit
            target = self.by_id(exploit.trial_id)
            assert target.status == TrialStatus.PAUSED, "synch exploits target paused trials"
            self.carry_out(target, exploit)

    def launch(self) -> None:
        while sum(t.status == TrialStatus.RUNNING for t in self.trials) < self.slots:
            waiting = [t for t in self.trials if t.status in (TrialStatus.PENDING, PAUSED_)]
            if not waiting:
                return
            trial, acts = split(self.scheduler.choose_trial_to_run(waiting))
            self.apply(acts)
            if trial is None:
                return
            if trial.restore_path:
                if trial.restore_path not in self.ckpts:
                    raise FileNotFoundError(f"{trial.restore_path} was deleted")
                it, weights = self.ckpts[trial.restore_path]
                self.iters[trial.trial_id], self.weights[trial.trial_id] = it, weights
                trial.restore_path = None
            trial.status = TrialStatus.RUNNING

    def gc(self) -> None:
        """num_to_keep=1: each trial keeps the newest checkpoint it wrote, plus pinned ones."""
        pinned = self.scheduler.pinned_checkpoints()
        newest = {}
        for path, owner in self.owner.items():
            newest[owner] = path  # paths are created in order
        for path in list(self.ckpts):
            if path not in pinned and path != newest[self.owner[path]]:
                del self.ckpts[path]

    def step(self) -> None:
        for t in [t for t in self.trials if t.status == TrialStatus.RUNNING]:
            tid = t.trial_id
            self.iters[tid] += 1
            it = self.iters[tid]
            self.weights[tid] += reward(t.config)
            if self.fail_at.get(tid) == it:
                t.status = TrialStatus.ERROR
                self.apply(actions(self.scheduler.on_trial_error(t)))
                continue
            result = {TI: it, "time_total_s": float(it), "score": self.weights[tid] / it}
            if it % self.ckpt_every == 0:
                self.counter += 1
                t.checkpoint_path = f"/exp/{tid}/checkpoint_{self.counter:06d}"
                self.ckpts[t.checkpoint_path] = (it, self.weights[tid])
                self.owner[t.checkpoint_path] = tid
            if it >= self.finish_at.get(tid, self.max_iter):
                t.last_result = result
                t.status = TrialStatus.TERMINATED
                self.apply(actions(self.scheduler.on_trial_complete(t, result)))
                continue
            decision = self.scheduler.on_trial_result(t, result)
            t.last_result = result
            self.carry_out(t, decision)
            if self.keep_only_latest:
                self.gc()

    def run(self, max_ticks: int = 2000) -> Population:
        while self.live():
            self.launch()
            assert any(t.status == TrialStatus.RUNNING for t in self.trials), (
                f"hang: live trials {[(t.trial_id, t.status.value) for t in self.live()]} "
                "but nothing runs"
            )
            self.step()
            self.ticks += 1
            assert self.ticks < max_ticks
        return self


def sim(n: int = 8, slots: int = 8, seed: int = 0, synch: bool = False, **kw: Any) -> Population:
    sched = pbt(synch=synch, seed=seed, resample_probability=0.25,
                hyperparam_mutations={"lr": sample.uniform(0.0, 1.0), "bs": [16, 32, 64]})
    trials = [make_trial(i, lr=0.05 + 0.1 * i, bs=32) for i in range(n)]
    for t in trials:
        add(sched, t)
    return Population(sched, trials, slots, **kw)


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quantile_fraction": 0.7}, "`quantile_fraction` must be in [0, 0.5], got 0.7"),
        ({"perturbation_interval": 0}, "`perturbation_interval` must be > 0, got 0"),
        ({"resample_probability": 1.5}, "`resample_probability` must be in [0, 1], got 1.5"),
        ({"burn_in_period": -1}, "`burn_in_period` must be >= 0, got -1"),
        ({"mode": "maximize"}, "`mode` must be one of 'min', 'max', got 'maximize'"),
        ({"perturbation_factors": ()}, "`perturbation_factors` must be a non-empty tuple"),
        ({"hyperparam_mutations": {}}, "`hyperparam_mutations` must be a non-empty dict"),
        ({"hyperparam_mutations": {"lr": []}}, "`hyperparam_mutations['lr']` must be a non-empty"),
        (
            {"hyperparam_mutations": {"lr": sample.sample_from(lambda: 1)}},
            "tune.sample_from is not supported",
        ),
    ],
)
def test_invalid_parameters_are_rejected_with_the_standard_message(kwargs, message):
    with pytest.raises(TuneConfigError) as info:
        pbt(**kwargs)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_mutation_of_unsupported_type_is_a_type_error_naming_the_key():
    with pytest.raises(TypeError, match=r"hyperparam_mutations\['opt'\]\['lr'\]"):
        pbt(hyperparam_mutations={"opt": {"lr": 0.1}})


def test_custom_explore_fn_alone_is_enough():
    sched = PopulationBasedTraining(metric="m", mode="min", custom_explore_fn=lambda c: c)
    assert sched.log_config is True


def test_metric_and_mode_may_come_from_tune_config_and_are_required():
    sched = pbt(metric=None, mode=None)
    with pytest.raises(TuneConfigError, match="no valid `metric`"):
        sched.on_trial_add(make_trial(0, lr=0.1))
    sched.set_search_properties("score", "min")
    trials = population(sched, 2)
    report(sched, trials[0], 5, 1.0)  # higher is worse with mode="min"
    decision = report(sched, trials[1], 5, 0.0)
    assert decision == CONTINUE


# --------------------------------------------------------------------------- quantiles, exploit
def test_lowest_quantile_trial_is_exploited_from_an_upper_quantile_donor_checkpoint():
    sched = pbt(quantile_fraction=0.25)
    trials = population(sched, 8)
    scores = [5, 6, 7, 8, 9, 10, 11, 12]
    decisions = {t.trial_id: report(sched, t, 5, s) for t, s in zip(trials[1:], scores[1:])}
    assert all(d == CONTINUE for d in decisions.values())
    decision = report(sched, trials[0], 5, 0.0)  # now the worst of 8: lower quantile (2 trials)
    assert isinstance(decision, Exploit)
    assert decision.trial_id == trials[0].trial_id
    assert decision.donor_trial_id in {trials[6].trial_id, trials[7].trial_id}  # top 2
    donor = next(t for t in trials if t.trial_id == decision.donor_trial_id)
    assert decision.checkpoint_path == donor.checkpoint_path
    assert decision.donor_config == donor.config
    assert decision.config["lr"] in (pytest.approx(donor.config["lr"] * 1.2),
                                     pytest.approx(donor.config["lr"] * 0.8))
    # the second-lowest is in the lower quantile too; a middle trial is not
    assert isinstance(report(sched, trials[1], 10, 1.0), Exploit)
    assert report(sched, trials[3], 10, 8.5) == CONTINUE


def test_exploit_records_what_the_policy_log_needs():
    sched = pbt()
    a, b = population(sched, 2)
    report(sched, b, 5, 10.0)
    assert report(sched, a, 4, 0.5) == CONTINUE
    exploit = report(sched, a, 6, 1.0)
    # the target's iteration is the one the exploit was decided on (Ray's is the one before)
    assert exploit.log_line == [
        a.experiment_tag, b.experiment_tag, 6, 5, b.config, exploit.config,
    ]
    assert exploit.donor_result["score"] == 10.0
    assert exploit.experiment_tag.startswith(f"{a.experiment_tag}@perturbed[lr=")


def test_donor_iteration_is_that_of_the_checkpoint_restored():
    sched = pbt()
    a, b = population(sched, 2)
    report(sched, b, 5, 10.0)           # checkpoint at 5
    report(sched, b, 6, 11.0, ckpt=False)
    exploit = report(sched, a, 6, 1.0)
    assert exploit.checkpoint_path.endswith("checkpoint_000005")
    assert exploit.donor_iteration == 5


def test_quantile_fraction_zero_never_exploits():
    sched = pbt(quantile_fraction=0.0)
    trials = population(sched, 4)
    for t, s in zip(trials, [4, 3, 2, 1]):
        assert report(sched, t, 5, s) == CONTINUE


def test_exploited_trial_carries_the_donor_checkpoint_until_it_saves_again():
    sched = pbt()
    a, b, c = population(sched, 3)
    report(sched, b, 5, 10.0)
    report(sched, c, 5, 5.0)
    exploit = report(sched, a, 5, 0.0)
    assert exploit.donor_trial_id == b.trial_id
    a.config, a.checkpoint_path = exploit.config, exploit.checkpoint_path  # runner applies it
    # a is now strong and c weak: c must get b's weights via a, never a's own old checkpoint
    report(sched, a, 10, 20.0, ckpt=False)
    report(sched, b, 10, 15.0, ckpt=False)
    second = report(sched, c, 10, 1.0, ckpt=False)
    assert second.donor_trial_id == a.trial_id
    assert second.checkpoint_path == "/exp/abc_00001/checkpoint_000005"


def test_async_pauses_the_reporter_when_other_trials_wait_for_a_slot():
    sched = pbt()
    a, b = population(sched, 2)
    b.status = TrialStatus.PAUSED
    assert report(sched, a, 5, 1.0) == PAUSE
    assert report(sched, a, 7, 1.0) == CONTINUE  # not at a perturbation point


def test_choose_trial_to_run_prefers_least_trained():
    sched = pbt()
    a, b, c = population(sched, 3)
    report(sched, a, 10, 1.0)
    report(sched, b, 5, 1.0)
    for t in (a, b, c):
        t.status = TrialStatus.PAUSED
    c.status = TrialStatus.PENDING
    assert sched.choose_trial_to_run([a, b, c]) is c
    assert sched.choose_trial_to_run([a, b]) is b


def test_burn_in_and_perturbation_interval_gate_perturbations():
    sched = pbt(burn_in_period=10)
    a, b = population(sched, 2)
    report(sched, b, 9, 10.0)
    assert report(sched, a, 9, 0.0) == CONTINUE  # still in burn-in
    report(sched, b, 10, 10.0)
    assert isinstance(report(sched, a, 10, 0.0), Exploit)
    # the exploited trial inherits the donor's perturbation time: next chance 5 units later
    report(sched, b, 14, 20.0)
    assert report(sched, a, 14, 0.0) == CONTINUE
    assert isinstance(report(sched, a, 15, 0.0), Exploit)


def test_missing_attributes_raise_or_warn_once(caplog):
    sched = pbt()
    (a,) = population(sched, 1)
    with pytest.raises(RuntimeError, match="Cannot find metric 'score'"):
        sched.on_trial_result(a, {TI: 1})
    with pytest.raises(RuntimeError, match="Cannot find time_attr 'training_iteration'"):
        sched.on_trial_result(a, {"score": 1})
    lenient = pbt(require_attrs=False)
    (b,) = population(lenient, 1)
    with caplog.at_level(logging.WARNING, logger="poptune.schedulers.pbt"):
        assert lenient.on_trial_result(b, {TI: 5}) == CONTINUE
        assert lenient.on_trial_result(b, {TI: 6}) == CONTINUE
    assert len([r for r in caplog.records if "Cannot find metric" in r.message]) == 1


def test_donor_without_checkpoint_is_reported_once_per_pair_and_trial_continues(caplog):
    sched = pbt()
    a, b = population(sched, 2)
    with caplog.at_level(logging.WARNING, logger="poptune.schedulers.pbt"):
        report(sched, b, 5, 10.0, ckpt=False)
        assert report(sched, a, 5, 0.0, ckpt=False) == CONTINUE
        report(sched, b, 10, 10.0, ckpt=False)
        assert report(sched, a, 10, 0.0, ckpt=False) == CONTINUE
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(a) in warnings[0] and str(b) in warnings[0] and "checkpoint" in warnings[0]
    report(sched, b, 15, 10.0)  # b checkpoints: the exploit now happens
    assert isinstance(report(sched, a, 15, 0.0), Exploit)


def test_on_trial_add_samples_missing_hyperparameters_reproducibly():
    def added(seed: int) -> dict:
        sched = pbt(seed=seed, hyperparam_mutations={
            "lr": sample.uniform(0, 1), "bs": [16, 32], "opt": {"mom": sample.uniform(0.8, 0.9)},
        })
        trial = make_trial(0)
        add(sched, trial)
        return trial.config

    config = added(3)
    assert set(config) == {"lr", "bs", "opt"} and 0.8 <= config["opt"]["mom"] < 0.9
    assert added(3) == config


def test_on_trial_add_returns_the_sampled_values_and_leaves_the_trial_alone():
    sched = pbt(seed=3, hyperparam_mutations={
        "lr": sample.uniform(0, 1), "bs": [16, 32], "opt": {"mom": sample.uniform(0.8, 0.9)},
    })
    trial = make_trial(0, bs=64)
    filled = sched.on_trial_add(TrialView(trial))  # a view: any write to the trial raises
    assert set(filled) == {"lr", "opt/mom"}
    assert 0.0 <= filled["lr"] < 1.0 and 0.8 <= filled["opt/mom"] < 0.9
    assert trial.config == {"bs": 64} and trial.evaluated_params == {}
    assert sched.on_trial_add(TrialView(trial)) is None  # known already (a restore)
    assert pbt().on_trial_add(TrialView(make_trial(1, lr=0.5))) is None  # nothing missing


def test_on_trial_add_draws_the_values_the_in_place_fill_drew():
    # seeded configs must not change: these are the values the old on_trial_add wrote into
    # trial.config (seed 3, an empty config)
    sched = pbt(seed=3, hyperparam_mutations={
        "lr": sample.uniform(0, 1), "bs": [16, 32], "opt": {"mom": sample.uniform(0.8, 0.9)},
    })
    assert sched.on_trial_add(TrialView(make_trial(0))) == {
        "lr": 0.08163509353835152, "bs": 16, "opt/mom": 0.8540089134593265}


# --------------------------------------------------------------------------- explore
def test_explore_perturbs_continuous_values_by_a_factor():
    seen = set()
    for seed in range(20):
        new, summary = explore({"lr": 0.5}, {"lr": sample.uniform(0, 1)}, 0.0, (1.2, 0.8),
                               rng=random.Random(seed))
        seen.add(round(new["lr"], 6))
        assert "lr : 0.5 --- (* " in summary
    assert seen == {0.6, 0.4}


def test_explore_shifts_list_values_to_a_neighbour_and_stays_put_at_the_ends():
    values = [1, 10, 100]
    def outcomes(value: int) -> set:
        return {explore({"f": value}, {"f": values}, 0.0, rng=random.Random(s))[0]["f"]
                for s in range(20)}

    middle, low, high = outcomes(10), outcomes(1), outcomes(100)
    assert middle == {1, 100}
    assert low == {1, 10} and high == {10, 100}
    summaries = {explore({"f": 1}, {"f": values}, 0.0, rng=random.Random(s))[1] for s in range(20)}
    assert "f : 1 --- (shift left (noop)) --> 1" in summaries


def test_explore_resamples_with_probability_one():
    mutations = {"lr": sample.loguniform(1e-4, 1e-2), "f": [1, 2, 3], "g": lambda: 42}
    for seed in range(10):
        config = {"lr": 5.0, "f": 2, "g": 7}
        new, summary = explore(config, mutations, 1.0, rng=random.Random(seed))
        assert 1e-4 <= new["lr"] < 1e-2 and new["f"] in (1, 2, 3) and new["g"] == 42
        assert summary.count("(resample)") == 3


def test_explore_value_outside_list_is_resampled_from_it():
    new, _ = explore({"f": 7}, {"f": [1, 2]}, 0.0, rng=random.Random(0))
    assert new["f"] in (1, 2)


def test_explore_keeps_ints_ints_and_recurses_into_nested_dicts():
    config = {"bs": 32, "opt": {"lr": 0.5, "kind": "sgd", "layers": 3}, "untouched": "x"}
    mutations = {"bs": sample.randint(8, 128), "opt": {"lr": lambda: 0.1, "layers": [2, 3, 4]}}
    new, summary = explore(config, mutations, 0.0, rng=random.Random(1))
    assert type(new["bs"]) is int and new["bs"] in (25, 38)  # int(32 * 0.8), int(32 * 1.2)
    assert new["opt"]["kind"] == "sgd" and new["untouched"] == "x"
    assert new["opt"]["layers"] in (2, 4)
    assert new["opt"]["lr"] in (pytest.approx(0.6), pytest.approx(0.4))
    assert "opt :\n    lr : 0.5" in summary
    assert config["opt"]["lr"] == 0.5  # the donor's config is never modified


def test_custom_explore_fn_runs_after_the_builtin_mutations():
    new, _ = explore({"lr": 0.5}, {"lr": [0.5, 0.6]}, 0.0,
                     custom_explore_fn=lambda c: {**c, "extra": c["lr"] * 2}, rng=random.Random(0))
    assert new["extra"] == new["lr"] * 2


def test_clip_to_bounds_keeps_values_in_their_domain():
    mutations = {
        "p": sample.uniform(0.0, 1.0), "n": sample.randint(1, 10), "q": sample.qrandint(0, 20, 5)
    }
    config = {"p": 0.95, "n": 9, "q": 20}
    clipped, unclipped = [], []
    for seed in range(20):
        rng = random.Random(seed)
        clipped.append(explore(config, mutations, 0.0, rng=rng, clip_to_bounds=True)[0])
        unclipped.append(explore(config, mutations, 0.0, rng=random.Random(seed))[0])
    assert all(0.0 <= c["p"] <= 1.0 and 1 <= c["n"] <= 9 and 0 <= c["q"] <= 20 for c in clipped)
    assert all(type(c["n"]) is int for c in clipped)
    assert any(c["p"] > 1.0 or c["n"] > 9 for c in unclipped)  # Ray's default does not clip


def test_scheduler_with_clip_to_bounds_explores_within_bounds():
    sched = pbt(clip_to_bounds=True, quantile_fraction=0.5)
    a, b = population(sched, 2)
    b.config["lr"] = 0.99
    for it in range(5, 200, 5):
        report(sched, b, it, 10.0 * it)
        exploit = report(sched, a, it, 0.0)
        assert 0.0 <= exploit.config["lr"] <= 1.0


# --------------------------------------------------------------------------- pinning
def test_pinned_checkpoints_hold_live_trials_latest_and_an_exploited_trials_donor():
    sched = pbt(synch=True)
    trials = population(sched, 4)
    outs = [report(sched, t, 5, s) for t, s in zip(trials, [1, 2, 3, 4])]
    pins = sched.pinned_checkpoints()
    assert trials[3].checkpoint_path in pins
    assert all(t.checkpoint_path in pins for t in trials)  # every live trial's latest
    donor_ckpt = trials[3].checkpoint_path
    # the barrier released: trial 0 will restore trial 3's checkpoint; trial 3 then leaves
    # (removed: a completed trial would stay a donor, see the next test)
    (exploit,) = actions(outs[-1])
    assert exploit.checkpoint_path == donor_ckpt
    trials[3].status = TrialStatus.TERMINATED
    assert sched.on_trial_remove(trials[3]) is None
    assert donor_ckpt in sched.pinned_checkpoints()  # trial 0's model state restores from it
    trials[0].config, trials[0].checkpoint_path = exploit.config, donor_ckpt  # runner applies
    assert donor_ckpt in sched.pinned_checkpoints()  # trial 0 carries it until it saves again
    report(sched, trials[0], 6, 5.0)
    assert donor_ckpt not in sched.pinned_checkpoints()


def test_a_completed_trial_stays_a_donor_and_its_latest_checkpoint_stays_pinned():
    sched = pbt()
    a, b = population(sched, 2)
    assert report(sched, a, 5, 1.0) == CONTINUE  # alone among the scored: nothing to do
    b.checkpoint_path = "/exp/abc_00001/checkpoint_000007"  # persisted with its last result
    b.status = TrialStatus.TERMINATED
    assert sched.on_trial_complete(b, {TI: 7, "score": 9.0}) is None
    assert b.checkpoint_path in sched.pinned_checkpoints()
    exploit = report(sched, a, 10, 2.0)  # a is the last one running, yet below b
    assert isinstance(exploit, Exploit)
    assert (exploit.donor_trial_id, exploit.checkpoint_path) == (b.trial_id, b.checkpoint_path)
    assert exploit.donor_iteration == 7


def test_a_completed_trial_donates_only_to_members_that_trained_as_long():
    """Restarting from a completed trial's end would carry a less-trained member past where
    the donor was stopped (``stop={"training_iteration": 6}`` gave a 7th iteration)."""
    sched = pbt()
    a, b = population(sched, 2)
    assert report(sched, a, 5, 1.0) == CONTINUE
    b.checkpoint_path = "/exp/abc_00001/checkpoint_000012"
    b.status = TrialStatus.TERMINATED
    assert sched.on_trial_complete(b, {TI: 12, "score": 9.0}) is None
    assert report(sched, a, 10, 2.0) == CONTINUE  # behind the donor's end: no exploit
    exploit = report(sched, a, 15, 2.0)  # trained longer than the donor did: exploits it
    assert isinstance(exploit, Exploit) and exploit.donor_trial_id == b.trial_id


def test_num_to_keep_one_never_loses_a_donor_checkpoint():
    # Ray Tune's pbt_function.py crashes here (FileNotFoundError); restores are checked in
    # Population.launch. Checkpoints every 3 iterations, perturbations every 5.
    pop = sim(n=8, slots=3, ckpt_every=3, keep_only_latest=True, max_iter=60).run()
    assert len(pop.exploits) > 10


def test_async_population_larger_than_the_slots_is_time_multiplexed():
    pop = sim(n=6, slots=2, max_iter=20).run()
    assert all(t.status == TrialStatus.TERMINATED for t in pop.trials)
    assert pop.exploits
    assert all(abs(t.config["lr"] - 0.3) < 0.45 for t in pop.trials)


# --------------------------------------------------------------------------- synch
def test_synch_barrier_pauses_until_all_arrive_then_exploits_paused_trials():
    sched = pbt(synch=True, quantile_fraction=0.25)
    trials = population(sched, 4)
    assert report(sched, trials[0], 5, 1.0) == PAUSE
    trials[0].status = TrialStatus.PAUSED
    assert report(sched, trials[1], 3, 9.0) == CONTINUE  # not a perturbation point yet
    assert report(sched, trials[1], 5, 2.0) == PAUSE
    trials[1].status = TrialStatus.PAUSED
    assert report(sched, trials[2], 5, 3.0) == PAUSE
    trials[2].status = TrialStatus.PAUSED
    assert sched.choose_trial_to_run(trials[:3]) is None  # all wait at the barrier
    out = report(sched, trials[3], 5, 4.0)  # last arrival releases the barrier
    assert value(out) == PAUSE
    (exploit,) = actions(out)
    assert exploit.trial_id == trials[0].trial_id and exploit.donor_trial_id == trials[3].trial_id
    assert sched.choose_trial_to_run(trials[:3]) is not None


def test_synch_policy_lines_give_every_target_its_latest_iteration_whoever_came_last():
    """Ray names the previous iteration for the trial whose result released the barrier
    (which one depends on timing); poptune keeps synch runs' logs reproducible."""
    sched = pbt(synch=True, quantile_fraction=0.5)
    a, b, c, d = population(sched, 4)
    for t, s in ((a, 1.0), (b, 9.0), (c, 8.0)):
        assert report(sched, t, 5, s) == PAUSE
        t.status = TrialStatus.PAUSED
    assert report(sched, d, 4, 0.0) == CONTINUE
    out = report(sched, d, 5, 0.5)  # the last arrival, and the weakest
    assert {e.trial_id: e.target_iteration for e in actions(out)} == {
        d.trial_id: 5, a.trial_id: 5}


def test_perturbed_tags_clean_keys_and_values_as_rays_trial_tags():
    sched = pbt(hyperparam_mutations={"opt": {"lr": [0.5, 0.6]}, "v.x": ["v1.2", "v1.3"]})
    a, b = population(sched, 2, opt={"lr": 0.5}, **{"v.x": "v1.2"})
    report(sched, b, 5, 10.0)
    exploit = report(sched, a, 5, 1.0)
    lr, v = (str(x).replace(".", "_") for x in (exploit.config["opt"]["lr"],
                                                  exploit.config["v.x"]))
    assert exploit.experiment_tag == f"0_lr=0.1@perturbed[opt=lr_{lr},v_x={v}]"  # Ray's


@pytest.mark.parametrize("leave", ["complete", "error", "remove"])
def test_synch_barrier_releases_when_a_trial_leaves(leave):
    sched = pbt(synch=True)
    a, b, c = population(sched, 3)
    for t, s in ((a, 1.0), (b, 2.0)):
        assert report(sched, t, 5, s) == PAUSE
        t.status = TrialStatus.PAUSED
    assert sched.choose_trial_to_run([a, b]) is None
    c.status = TrialStatus.ERROR if leave == "error" else TrialStatus.TERMINATED
    out = {"complete": lambda: sched.on_trial_complete(c, {}),
           "error": lambda: sched.on_trial_error(c),
           "remove": lambda: sched.on_trial_remove(c)}[leave]()
    assert value(out) is None
    (exploit,) = actions(out)
    assert (exploit.trial_id, exploit.donor_trial_id) == (a.trial_id, b.trial_id)
    assert sched.choose_trial_to_run([a, b]) is not None


@pytest.mark.parametrize("fraction", [0.25, 0.5])
def test_synch_barrier_ranks_completed_trials_but_exploits_only_live_ones(fraction):
    sched = pbt(synch=True, quantile_fraction=fraction)
    a, b, c, d = population(sched, 4)
    c.status = d.status = TrialStatus.TERMINATED  # completed before the barrier
    c.checkpoint_path, d.checkpoint_path = "/exp/c/checkpoint_000004", "/exp/d/checkpoint_000004"
    sched.on_trial_complete(c, {TI: 4, "score": 0.5})  # below both live trials
    sched.on_trial_complete(d, {TI: 4, "score": 9.0})  # above both
    assert report(sched, a, 5, 1.0) == PAUSE
    a.status = TrialStatus.PAUSED
    out = report(sched, b, 5, 2.0)  # releases the barrier
    assert value(out) == PAUSE
    if fraction == 0.25:  # lower = [c], upper = [d]: a is not at the bottom, c never restarts
        assert actions(out) == ()
    else:  # lower = [c, a], upper = [b, d]: only a is exploited
        (exploit,) = actions(out)
        assert exploit.trial_id == a.trial_id
        assert exploit.donor_trial_id in (b.trial_id, d.trial_id)


def test_synch_run_with_a_crashing_and_an_early_finishing_trial_never_hangs():
    pop = sim(n=5, slots=5, synch=True, fail_at={"abc_00002": 7}, finish_at={"abc_00004": 12})
    pop.run()
    assert [t.status for t in pop.trials].count(TrialStatus.TERMINATED) == 4
    assert pop.exploits


def test_synch_with_the_same_seed_gives_identical_exploit_sequences():
    runs = [sim(n=6, slots=2, synch=True, seed=7).run().exploits for _ in range(2)]
    assert runs[0] == runs[1] and len(runs[0]) >= 5
    assert sim(n=6, slots=2, synch=True, seed=8).run().exploits != runs[0]


def test_synch_runs_with_the_same_seed_write_identical_global_logs(tmp_path):
    logs = []
    for run, slots in enumerate((6, 2)):
        log_dir = tmp_path / f"run{run}"
        sim(n=6, slots=slots, synch=True, seed=7, log_dir=str(log_dir)).run()
        logs.append((log_dir / "pbt_global.txt").read_bytes())
    assert logs[0] == logs[1] and logs[0].count(b"\n") >= 5


def test_synch_exploits_do_not_depend_on_how_many_trials_run_at_once():
    runs = [sim(n=6, slots=slots, synch=True, seed=7).run().exploits for slots in (6, 3, 2)]
    sequences = [[(target, donor, config) for target, donor, _, config in run] for run in runs]
    assert sequences[0] == sequences[1] == sequences[2]


@pytest.mark.parametrize("synch", [False, True])
def test_save_and_load_state_mid_run_continues_identically(synch):
    pop = sim(n=6, slots=3, synch=synch, seed=11)
    while pop.ticks < 13:
        pop.launch()
        pop.step()
        pop.ticks += 1
    blob = pickle.dumps(pop.scheduler.save_state())
    sched = pop.scheduler
    pop.scheduler = None
    twin = copy.deepcopy(pop)
    pop.scheduler = sched
    done = len(pop.exploits)
    pop.run()

    restored = pbt(synch=synch, seed=999, resample_probability=0.25,  # seed comes from the state
                   hyperparam_mutations={"lr": sample.uniform(0.0, 1.0), "bs": [16, 32, 64]})
    for t in twin.trials:
        assert add(restored, t) == ()
    restored.load_state(pickle.loads(blob))
    twin.scheduler = restored
    twin.run()
    assert twin.exploits[done:] == pop.exploits[done:] and len(pop.exploits) > done


def test_synch_returns_all_the_exploits_of_a_release_in_one_outcome_weakest_first():
    sched = pbt(synch=True, quantile_fraction=0.5)
    trials = population(sched, 6)
    outs = []
    for t, s in zip(trials, [3.0, 1.0, 2.0, 6.0, 5.0, 4.0]):
        outs.append(report(sched, t, 5, s))
        t.status = TrialStatus.PAUSED
    assert [split(o) for o in outs[:-1]] == [(PAUSE, ())] * 5  # nothing decided before
    last = outs[-1]
    assert isinstance(last, Outcome) and last.value == PAUSE
    # the bottom half, weakest first (the reporter itself is not in it here)
    assert [e.trial_id for e in last.actions] == [trials[i].trial_id for i in (1, 2, 0)]
    assert all(isinstance(e, Exploit) for e in last.actions)
    assert {e.donor_trial_id for e in last.actions} <= {trials[i].trial_id for i in (3, 4, 5)}
    # nothing is left for later: the next hooks decide nothing about other trials
    assert actions(sched.choose_trial_to_run(trials)) == ()


def test_synch_reporters_own_exploit_is_among_the_actions_in_order():
    sched = pbt(synch=True, quantile_fraction=0.5)
    trials = population(sched, 4)
    for t, s in zip(trials[1:], [1.0, 4.0, 3.0]):
        report(sched, t, 5, s)
        t.status = TrialStatus.PAUSED
    out = report(sched, trials[0], 5, 0.0)  # the weakest arrives last
    assert value(out) == PAUSE
    assert [e.trial_id for e in actions(out)] == [trials[0].trial_id, trials[1].trial_id]


def test_choose_trial_to_run_releasing_the_barrier_returns_its_exploits():
    sched = pbt(synch=True)
    a, b = population(sched, 2)
    for t, s in ((a, 1.0), (b, 2.0)):
        report(sched, t, 5, s)
    # a state where both wait at the barrier without the release (e.g. a restore)
    sched._next_perturbation_sync = 5.0
    for t in (a, b):
        sched._states[t.trial_id].last_perturbation_time = 0.0
        t.status = TrialStatus.PAUSED
    out = sched.choose_trial_to_run([a, b])
    assert isinstance(out, Outcome) and out.value in (a, b)
    (exploit,) = out.actions
    assert (exploit.trial_id, exploit.donor_trial_id) == (a.trial_id, b.trial_id)


def test_load_state_accepts_a_state_saved_with_pending_exploits():
    sched = pbt()
    population(sched, 2)
    state = sched.save_state()
    assert "pending" not in state
    state["pending"] = []  # what the old code saved
    twin = pbt(seed=5)
    twin.load_state(state)
    assert twin.save_state() == sched.save_state()


def test_explore_rounds_ints_and_keeps_bools_as_ray_2_60():
    """Ray 2.60 rounds a perturbed int (``int(round(...))``) and keeps a bool a bool; a
    truncation let small ints drift down to 0 and turned bools into 0/1."""
    mutations = {"n": lambda: 1, "one": lambda: 1, "flag": lambda: True}
    config = {"n": 7, "one": 1, "flag": True}
    for factor, expected in ((0.8, {"n": 6, "one": 1, "flag": True}),
                             (1.2, {"n": 8, "one": 1, "flag": True})):
        new, _ = explore(config, mutations, resample_probability=0.0,
                         perturbation_factors=(factor,), rng=random.Random(0))
        assert new == expected and type(new["flag"]) is bool and type(new["n"]) is int
