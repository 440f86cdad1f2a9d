"""PB2: GP-bandit explore on a simulated population (no processes)."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

pytest.importorskip("sklearn")

from poptune.engine.trial import Trial, TrialStatus  # noqa: E402
from poptune.engine.trial_view import TrialView  # noqa: E402
from poptune.exceptions import TuneConfigError  # noqa: E402
from poptune.schedulers import Exploit  # noqa: E402
from poptune.schedulers.pb2 import PB2  # noqa: E402
from tests.schedulers.outcomes import add, fill  # noqa: E402

TI = "training_iteration"


def pb2(**kwargs):
    args = dict(time_attr=TI, metric="score", mode="max", perturbation_interval=2,
                hyperparam_bounds={"lr": [0.0, 1.0], "opt": {"layers": [1, 8]}},
                quantile_fraction=0.25, seed=0)
    args.update(kwargs)
    return PB2(**args)


def gain(config) -> float:
    """Reward per iteration: best at lr = 0.7, more layers help a little."""
    return 1.0 - (config["lr"] - 0.7) ** 2 + 0.01 * config["opt"]["layers"]


def run(sched: PB2, n: int = 6, iters: int = 12, until: int | None = None):
    """Lockstep population; returns the exploits in order (and the trials)."""
    trials = [Trial(trial_id=f"p_{i:05d}", trainable_name="t", experiment_tag=str(i),
                    config={"lr": 0.05 + 0.15 * i, "opt": {"layers": 1 + i}},
                    status=TrialStatus.RUNNING) for i in range(n)]
    for t in trials:
        assert add(sched, t) == ()
    weights = {t.trial_id: 0.0 for t in trials}
    ckpts: dict[str, float] = {}
    exploits = []
    for it in range(1, (until or iters) + 1):
        for t in trials:
            weights[t.trial_id] += gain(t.config)
            t.checkpoint_path = f"/exp/{t.trial_id}/checkpoint_{it:06d}"
            ckpts[t.checkpoint_path] = weights[t.trial_id]
            score = weights[t.trial_id] / it  # mean reward: comparable across trials
            decision = sched.on_trial_result(t, {TI: it, "score": score})
            if isinstance(decision, Exploit):
                exploits.append(decision)
                t.config = decision.config
                weights[t.trial_id] = ckpts[decision.checkpoint_path]
    return exploits, trials


def test_suggestions_stay_inside_the_bounds_and_ints_stay_ints():
    exploits, _ = run(pb2())
    assert len(exploits) >= 5
    for e in exploits:
        assert 0.0 <= e.config["lr"] <= 1.0
        assert type(e.config["opt"]["layers"]) is int and 1 <= e.config["opt"]["layers"] <= 8


def test_same_seed_same_suggestions_different_seed_different_ones():
    first = [e.config for e in run(pb2(seed=3))[0]]
    assert first == [e.config for e in run(pb2(seed=3))[0]]
    assert first != [e.config for e in run(pb2(seed=4))[0]]


def test_missing_hyperparameters_are_sampled_uniformly_within_bounds():
    sched = pb2(seed=1)
    trial = Trial(trial_id="p_00000", trainable_name="t", config={"other": 1})
    filled = sched.on_trial_add(TrialView(trial))  # a view: writing the trial would raise
    assert set(filled) == {"lr", "opt/layers"}
    assert trial.config == {"other": 1}
    fill(trial, filled)
    assert 0.0 <= trial.config["lr"] <= 1.0 and 1 <= trial.config["opt"]["layers"] <= 8
    assert trial.config["other"] == 1 and trial.evaluated_params == filled


def test_missing_hyperparameters_are_the_values_a_seed_always_gave():
    # what the in-place fill wrote into trial.config before (seed 1)
    sched = pb2(seed=1)
    filled = sched.on_trial_add(TrialView(Trial("p_00000", "t", {"opt": {}})))
    assert filled == {"lr": 0.13436424411240122, "opt/layers": 6.932036158560629}


def test_save_and_load_state_mid_run_continues_identically():
    sched = pb2(seed=5)
    run(sched, until=8)
    blob = pickle.dumps(sched.save_state())
    twin = pb2(seed=99)
    twin.load_state(pickle.loads(blob))
    state = sched.save_state()
    assert pickle.loads(blob)["pb2"]["data"] == state["pb2"]["data"]
    assert twin._data == sched._data and twin._rng.getstate() == sched._rng.getstate()


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        ({}, "`hyperparam_bounds` must be a non-empty dict"),
        ({"lr": [1.0]}, "`hyperparam_bounds['lr']` must be a [low, high]"),
        ({"lr": [1.0, 0.1]}, "`hyperparam_bounds['lr']` must be [low, high] with low <= high"),
        ({"o": {"m": "x"}}, "`hyperparam_bounds['o/m']` must be a [low, high]"),
    ],
)
def test_invalid_bounds_are_rejected(bounds, message):
    with pytest.raises(TuneConfigError) as info:
        pb2(hyperparam_bounds=bounds)
    assert message in str(info.value)


def test_importing_poptune_schedulers_does_not_import_sklearn():
    code = ("import sys, poptune.schedulers as s; assert 'sklearn' not in sys.modules; "
            "s.PB2; assert 'sklearn' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_gp_bandit_on_a_long_history_fits_the_window_and_stays_in_bounds():
    import numpy as np

    from poptune.schedulers import pb2 as pb2_module
    from poptune.schedulers.pb2 import WINDOW, _select_config

    rng = np.random.default_rng(0)
    n = WINDOW + 160  # a history longer than the window
    hparams = rng.uniform([0.0, 1.0], [1.0, 8.0], size=(n, 2))
    X = np.column_stack([np.sort(rng.uniform(0, 100, n)), rng.uniform(0, 50, n), hparams])
    y = 1.0 - (hparams[:, 0] - 0.7) ** 2 + rng.normal(0, 0.01, n)
    bounds = np.array([[0.0, 1.0], [1.0, 8.0]])
    fitted = []
    real_fit = pb2_module._fit_gp

    def spy(Xn, yn, seed):
        fitted.append(len(yn))
        return real_fit(Xn, yn, seed)

    pb2_module._fit_gp = spy
    try:
        picks = [
            _select_config(X, y, None, np.array([100.0, 25.0]), bounds, np.random.default_rng(1))
            for _ in range(2)
        ]
    finally:
        pb2_module._fit_gp = real_fit
    assert fitted == [WINDOW, WINDOW]  # one GP per decision, on the latest WINDOW points
    assert np.array_equal(picks[0], picks[1])
    assert np.all(picks[0] >= bounds[:, 0]) and np.all(picks[0] <= bounds[:, 1])
    assert abs(picks[0][0] - 0.7) < 0.25  # the GP found the better learning rates


def test_a_long_run_keeps_every_gp_within_the_window(monkeypatch):
    from poptune.schedulers import pb2 as pb2_module

    monkeypatch.setattr(pb2_module, "WINDOW", 12)
    sizes = []
    real_fit = pb2_module._fit_gp
    monkeypatch.setattr(pb2_module, "_fit_gp",
                        lambda X, y, seed: sizes.append(len(y)) or real_fit(X, y, seed))
    sched = pb2(seed=2)
    exploits, _ = run(sched, n=6, iters=24)
    assert len(sched._samples()) == 12 < len(sched._data) // 2  # the history outgrew it
    assert exploits and sizes and max(sizes) <= 12 + 6  # window, plus this round's picks
    assert 12 in sizes


def test_a_reward_change_is_measured_only_within_one_stretch_of_training():
    sched = pb2()
    # trial b is exploited at t=4 from a's checkpoint with the same lr it had: its rows at
    # t=2 (its own weights) and t=4 (a's) must not make an interval, nor the t=4 row of its
    # old stretch (Ray groups rows by trial and hyperparameters, and would)
    sched._data = [("a", 2.0, [0.5, 2.0], 1.0, 0), ("b", 2.0, [0.5, 2.0], 0.2, 0),
                   ("a", 4.0, [0.5, 2.0], 1.2, 0), ("b", 4.0, [0.5, 2.0], 0.3, 0),
                   ("b", 4.0, [0.5, 2.0], 1.2, 1), ("b", 6.0, [0.5, 2.0], 1.3, 1)]
    samples = [(t, start, round(r0, 6), round(rate, 6))
               for t, start, r0, _, rate in sched._samples()]
    assert samples == [("a", 4.0, 1.0, 0.1), ("b", 4.0, 0.2, 0.05), ("b", 6.0, 1.2, 0.05)]


def test_the_target_continues_from_the_donors_checkpoint_not_its_last_perturbation():
    sched = pb2(quantile_fraction=0.5)
    donor, target = (Trial(trial_id=f"p_{i}", trainable_name="t", experiment_tag=str(i),
                           config={"lr": 0.3 + 0.4 * i, "opt": {"layers": 2}},
                           status=TrialStatus.RUNNING) for i in (1, 0))
    add(sched, donor), add(sched, target)
    for it, score in ((2, 1.0), (4, 2.0)):  # perturbation points (interval 2)
        sched.on_trial_result(target, {TI: it, "score": 0.1 * it})
        donor.checkpoint_path = f"/exp/p_1/checkpoint_{it}"
        sched.on_trial_result(donor, {TI: it, "score": score})
    donor.checkpoint_path = "/exp/p_1/checkpoint_5"  # its last one, at no perturbation point
    sched.on_trial_result(donor, {TI: 5, "score": 2.6})
    decision = sched.on_trial_result(target, {TI: 6, "score": 0.6})
    assert isinstance(decision, Exploit) and decision.checkpoint_path.endswith("checkpoint_5")
    own, row = sched._data[-2:]  # the target's result at t=6, then where it restarts
    assert own[:2] == ("p_0", 6.0) and row[0] == "p_0" and (row[1], row[3]) == (5.0, 2.6)
    assert row[4] == own[4] + 1  # a new stretch


def test_a_trust_region_keeps_every_explored_value_near_the_donors():
    """``trust_region=r``: each continuous value PB2 explores lies within r times its bound's
    width of the donor's value; without it the same run strays further."""

    def moves(sched: PB2) -> list[tuple[list[float], list[float]]]:
        seen = []
        original = sched._choose

        def spy(donor, samples, gen):
            values = original(donor, samples, gen)
            seen.append((sched._coordinates(donor.config), values))
            return values

        sched._choose = spy  # type: ignore[method-assign]
        exploits, _ = run(sched, iters=16)
        assert exploits and seen
        for ex in exploits:
            assert 0.0 <= ex.config["lr"] <= 1.0 and 1 <= ex.config["opt"]["layers"] <= 8
        return seen

    widths = [1.0, 7.0]  # lr in [0, 1], layers in [1, 8]

    def farthest(seen) -> float:
        return max(abs(a - b) / w for before, after in seen
                   for b, a, w in zip(before, after, widths))

    assert farthest(moves(pb2(trust_region=0.1))) <= 0.1 + 1e-6
    assert farthest(moves(pb2())) > 0.1  # the whole box: further from the donors


@pytest.mark.parametrize("bad", [0, -0.1, 1.5, True, "0.2"])
def test_trust_region_rejects_what_is_not_a_fraction(bad):
    with pytest.raises(Exception, match="trust_region"):
        pb2(trust_region=bad)


def test_pruning_the_history_keeps_every_decision_and_bounds_the_state(monkeypatch):
    """A long run makes the same exploits with the history pruned as without, while the
    pruned history (and so the journaled state) stays bounded by the window and the
    population instead of growing with the run."""
    from poptune.schedulers import pb2 as pb2_module

    monkeypatch.setattr(pb2_module, "WINDOW", 12)
    unpruned, pruned = pb2(seed=4), pb2(seed=4)
    unpruned._prune_at = 10**9
    pruned._prune_at = 4 * 12
    sizes = []
    real = pruned._prune

    def prune():
        real()
        sizes.append(len(pruned._data))

    pruned._prune = prune
    full, _ = run(unpruned, n=6, iters=60)
    cut, _ = run(pruned, n=6, iters=60)
    assert [(e.trial_id, e.donor_trial_id, e.config) for e in full] == [
        (e.trial_id, e.donor_trial_id, e.config) for e in cut]
    assert len(full) > 10 and len(sizes) > 3
    assert len(unpruned._data) > 250 and max(sizes) <= 2 * 12 + 6
    assert len(pruned._data) <= 2 * 4 * 12
