"""PB2 on mixed spaces (PB2-Mix): integer and categorical hyperparameters."""

from __future__ import annotations

import json
import tempfile

import pytest

pytest.importorskip("sklearn")

import poptune as tune  # noqa: E402
from poptune import simulation  # noqa: E402
from poptune.backends.simulated import SimulatedBackend  # noqa: E402
from poptune.engine.trial import Trial, TrialStatus  # noqa: E402
from poptune.engine.trial_view import TrialView  # noqa: E402
from poptune.exceptions import TuneConfigError  # noqa: E402
from poptune.schedulers import Exploit  # noqa: E402
from poptune.schedulers.pb2 import PB2  # noqa: E402
from poptune.schedulers.pb2_mix import category_probabilities  # noqa: E402
from tests.schedulers.outcomes import add, fill  # noqa: E402

TI = "training_iteration"
OPTS = ["sgd", "adam", "rmsprop"]
BOUNDS = {"lr": tune.loguniform(1e-3, 1.0), "opt": tune.choice(OPTS),
          "net": {"layers": tune.randint(1, 9), "width": tune.qrandint(16, 128, 16)}}


def mix(**kwargs):
    args = dict(time_attr=TI, metric="score", mode="max", perturbation_interval=2,
                hyperparam_bounds=BOUNDS, quantile_fraction=0.25, seed=0)
    args.update(kwargs)
    return PB2(**args)


def gain(config) -> float:
    """Reward per iteration: "adam" is far better than the others, lr best near 0.1."""
    bonus = {"sgd": 0.0, "adam": 1.0, "rmsprop": 0.3}[config["opt"]]
    return bonus + 0.2 - abs(config["lr"] - 0.1) + 0.01 * config["net"]["layers"]


def run(sched: PB2, n: int = 6, iters: int = 16):
    """Lockstep population; every member starts on "sgd"; returns the exploits in order."""
    trials = [Trial(trial_id=f"p_{i:05d}", trainable_name="t", experiment_tag=str(i),
                    config={"lr": 0.002 * (i + 1), "opt": "sgd",
                            "net": {"layers": 1 + i, "width": 32}},
                    status=TrialStatus.RUNNING) for i in range(n)]
    for t in trials:
        assert add(sched, t) == ()
    weights = {t.trial_id: 0.0 for t in trials}
    ckpts: dict[str, float] = {}
    exploits = []
    for it in range(1, iters + 1):
        for t in trials:
            weights[t.trial_id] += gain(t.config)
            t.checkpoint_path = f"/exp/{t.trial_id}/checkpoint_{it:06d}"
            ckpts[t.checkpoint_path] = weights[t.trial_id]
            decision = sched.on_trial_result(t, {TI: it, "score": weights[t.trial_id] / it})
            if isinstance(decision, Exploit):
                exploits.append(decision)
                t.config = decision.config
                weights[t.trial_id] = ckpts[decision.checkpoint_path]
    return exploits, trials


def test_a_categorical_changes_at_an_exploit_and_the_better_category_spreads():
    exploits, trials = run(mix())
    assert len(exploits) >= 8
    assert any(e.config["opt"] != e.donor_config["opt"] for e in exploits)
    assert {e.config["opt"] for e in exploits} <= set(OPTS)
    # nobody started on "adam"; the bandit found it and exploits copied it
    assert sum(t.config["opt"] == "adam" for t in trials) >= len(trials) // 2


def test_integer_and_continuous_values_stay_inside_their_domains():
    exploits, _ = run(mix(seed=2))
    for e in exploits:
        assert 1e-3 <= e.config["lr"] <= 1.0 and type(e.config["lr"]) is float
        layers, width = e.config["net"]["layers"], e.config["net"]["width"]
        assert type(layers) is int and 1 <= layers <= 8  # randint: upper bound exclusive
        assert type(width) is int and 16 <= width <= 128 and width % 16 == 0


def test_same_seed_same_mixed_suggestions_different_seed_different_ones():
    first = [e.config for e in run(mix(seed=3))[0]]
    assert first == [e.config for e in run(mix(seed=3))[0]]
    assert first != [e.config for e in run(mix(seed=4))[0]]


def test_missing_mixed_hyperparameters_are_sampled_from_their_domains():
    sched = mix(seed=1)
    trial = Trial(trial_id="p_00000", trainable_name="t", config={"net": {}})
    filled = sched.on_trial_add(TrialView(trial))
    assert set(filled) == {"lr", "opt", "net/layers", "net/width"}
    fill(trial, filled)
    assert trial.config["opt"] in OPTS and 1 <= trial.config["net"]["layers"] <= 8
    assert 1e-3 <= trial.config["lr"] <= 1.0 and trial.config["net"]["width"] % 16 == 0


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        ({"x": tune.randn(0, 1)}, "`hyperparam_bounds['x']` must be a [low, high] list"),
        ({"x": tune.sample_from(lambda _: 1)}, "(tune.sample_from is not supported)"),
        ({"x": tune.grid_search([1, 2])}, "(tune.grid_search is not supported)"),
        ({"o": {"x": ["a", "b", "c"]}}, "(for a list of categories use tune.choice)"),
        ({"x": "adam"}, "tune.choice([...]) (categorical), got 'adam'"),
    ],
)
def test_unsupported_domains_are_rejected_with_what_is_accepted(bounds, message):
    with pytest.raises(TuneConfigError) as info:
        mix(hyperparam_bounds=bounds)
    assert message in str(info.value)
    assert "tune.randint" in str(info.value) and "tune.choice" in str(info.value)


def test_the_bandit_prefers_the_better_category_and_spreads_one_round():
    samples = [(t, arm, gain) for t in (2.0, 4.0, 6.0) for arm, gain in ((0, 0.0), (1, 1.0))]
    probs = category_probabilities(samples, 3, now=6.0, interval=2.0, picked=[])
    assert probs[1] > probs[2] > probs[0] and abs(sum(probs) - 1) < 1e-9
    again = category_probabilities(samples, 3, now=6.0, interval=2.0, picked=[1])
    assert again[1] < probs[1]
    assert category_probabilities([], 3, 0.0, 2.0, []) == [1 / 3] * 3


def _trainable(config):
    """A deterministic toy: the reward rate depends on the optimizer and on lr."""
    score, step = 0.0, 0
    ckpt = tune.get_checkpoint()
    if ckpt:
        with ckpt.as_directory() as d, open(f"{d}/s.json") as f:
            score, step = json.load(f)
    while step < 40:
        step += 1
        score += gain({**config, "net": {"layers": config["layers"]}})
        simulation.advance(10.0)
        d = tempfile.mkdtemp()
        with open(f"{d}/s.json", "w") as f:
            json.dump([score, step], f)
        tune.report({"score": score / step}, checkpoint=tune.Checkpoint.from_directory(d))


def test_mixed_pb2_end_to_end_on_the_simulated_backend(tmp_path):
    def fit(seed, where):
        sched = PB2(time_attr=TI, perturbation_interval=4, seed=seed,
                    hyperparam_bounds={"lr": [0.001, 0.3], "opt": tune.choice(OPTS),
                                       "layers": tune.randint(1, 5)})
        return tune.Tuner(
            _trainable, param_space={"opt": "sgd"},
            tune_config=tune.TuneConfig(metric="score", mode="max", num_samples=4, seed=seed,
                                        scheduler=sched, backend=SimulatedBackend(num_cpus=4)),
            run_config=tune.RunConfig(name="mix", storage_path=str(tmp_path / where), verbose=0),
        ).fit()

    grid = fit(0, "a")
    assert grid.num_errors == 0 and len(grid) == 4
    configs = [r.config for r in grid]
    assert all(c["opt"] in OPTS and type(c["layers"]) is int and 1 <= c["layers"] <= 4
               and 0.001 <= c["lr"] <= 0.3 for c in configs)
    log = (tmp_path / "a" / "mix" / "pbt_global.txt").read_text()
    lines = [json.loads(line) for line in log.splitlines()]
    assert any(new["opt"] != old["opt"] for *_, old, new in lines)  # changed at an exploit
    again = fit(0, "b")
    assert [r.config for r in again] == configs
    assert log == (tmp_path / "b" / "mix" / "pbt_global.txt").read_text()
