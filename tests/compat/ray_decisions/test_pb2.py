"""PB2: Ray 2.60's and poptune's decisions on the same results, async and ``synch=True``, and
the rules their explored configs follow.

The same: the quantiles, who exploits whom and when (each donor drawn with the same random
state, see :class:`Both`), the synch barrier, a clone of the donor's config while the donor
has no measured interval, explored values inside ``hyperparam_bounds`` with an int kept an
int, and Ray's recipe for a reproducible run (``random.seed`` and ``np.random.seed``; README
row "A reproducible run").

Differences, asserted below: the first round's exploits (README row "PBT's first round of
exploits": PB2 is PBT there); the explored values themselves: other generators, and another
GP (pb2.py docstring: the latest ``WINDOW`` intervals, poptune's kernel with a white-noise
term and a lengthscale bounded by 1, and GP-UCB, ``mean + kappa * std``, where Ray's ``UCB``
is ``mean + kappa * variance``); Ray's float32 cast of the explored values, which can put
them just outside the bounds (a Ray bug, not copied; README row "PB2's explored values").
"""

from __future__ import annotations

import random
from typing import Any, Callable, cast

import numpy as np
import pytest

pytest.importorskip("ray")
pytest.importorskip("sklearn")

import ray.tune.schedulers.pb2 as ray_pb2  # noqa: E402
from ray.train._internal.session import _TrainingResult  # noqa: E402
from ray.tune.schedulers.pb2 import PB2 as RayPB2  # noqa: E402

import poptune.schedulers.pb2 as pb2_module  # noqa: E402
from poptune.experiment.trial import TrialStatus  # noqa: E402
from poptune.schedulers import Exploit, Outcome  # noqa: E402
from poptune.schedulers.pb2 import PB2  # noqa: E402
from tests.compat.ray_decisions._ray import (  # noqa: E402
    SKIPPED,
    Row,
    SavingController,
    assert_same,
    global_random_state,
    ptrial,
    ray_skips,
    rtrial,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    # Ray's pb2_utils passes `disp` to scipy's L-BFGS-B
    pytest.mark.filterwarnings("ignore:scipy.optimize. The `disp`:DeprecationWarning"),
]

Score = Callable[[int, int], float]
BOUNDS = {"lr": [1e-4, 0.1], "h": [1, 8]}
def start_config(i: int) -> dict[str, Any]:
    return {"lr": 0.01 * (i + 1), "h": 1 + i % 8}


class RecordingPB2(RayPB2):
    """Ray's PB2, recording each exploit: (target, donor, the target's new config)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.exploits: list[tuple[str, str, dict[str, Any]]] = []

    def _exploit(self, tune_controller: Any, trial: Any, trial_to_clone: Any) -> None:
        super()._exploit(tune_controller, trial, trial_to_clone)
        self.exploits.append((trial.trial_id, trial_to_clone.trial_id, dict(trial.config)))


class Both:
    """Ray's and poptune's PB2 with the same arguments over trials t0..t(n-1).

    ``same_draws``: before each result poptune's generator takes the state ``random`` had
    before Ray's PB2 decided on it, so both draw the same donor from the same upper quantile
    (Ray draws it from ``random``, poptune from its own generator); else poptune's
    generator is its own (``seed``)."""

    def __init__(self, n: int, synch: bool, quantile: float, mode: str,
                 seed: int | None = 0, same_draws: bool = True) -> None:
        kw: dict[str, Any] = dict(
            time_attr="training_iteration", metric="loss", mode=mode, perturbation_interval=2,
            hyperparam_bounds=BOUNDS, quantile_fraction=quantile, synch=synch,
            log_config=False)
        self.ray, self.pop = RecordingPB2(**kw), PB2(**kw, seed=seed)
        self.ray_trials = [rtrial(f"t{i}", start_config(i)) for i in range(n)]
        self.pop_trials = [ptrial(f"t{i}", start_config(i)) for i in range(n)]
        # Ray's hooks are typed for its TuneController
        self.ctl = cast(Any, SavingController(self.ray_trials))
        self.pop_exploits: list[tuple[str, str, dict[str, Any]]] = []
        self.same_draws = same_draws
        self._random_state = random.getstate()
        for ray_trial, pop_trial in zip(self.ray_trials, self.pop_trials):
            self.ray.on_trial_add(self.ctl, ray_trial)
            self.pop.on_trial_add(pop_trial)

    def quantiles(self) -> tuple[Any, ...]:
        """(Ray's, poptune's) ``(lower ids, upper ids)``."""
        return tuple(tuple([t.trial_id for t in q] for q in s._quantiles())
                     for s in (self.ray, self.pop))

    def ray_result(self, i: int, result: dict[str, Any]) -> tuple[Any, list[tuple]]:
        """Ray's decision and the (target, donor) of the exploits it made. Each result
        comes with a checkpoint, as poptune's: Ray's synch PB2 exploits a paused donor from
        ``trial.checkpoint`` (what its controller saved when pausing it)."""
        trial: Any = self.ray_trials[i]
        before = len(self.ray.exploits)
        self._random_state = random.getstate()
        out = self.ray.on_trial_result(self.ctl, trial, dict(result))
        trial.run_metadata.last_result = result
        if not self.ray.exploits[before:] or self.ray.exploits[-1][0] != trial.trial_id:
            token: Any = f"t{i}@{result['training_iteration']}"  # stands for a Checkpoint
            trial.run_metadata.checkpoint_manager._latest_checkpoint_result = (
                _TrainingResult(checkpoint=token, metrics=result))
        return out, [(t, d) for t, d, _ in self.ray.exploits[before:]]

    def pop_result(self, i: int, result: dict[str, Any]) -> tuple[Any, list[tuple]]:
        """poptune's decision (``"NOOP"`` when it exploits the reporting trial, as Ray's)
        and the (target, donor) of the exploits it made; an exploited trial takes its new
        config (and checkpoint) as the runner would."""
        k = result["training_iteration"]
        self.pop_trials[i].checkpoint_path = f"/ck/t{i}/{k}"
        if self.same_draws:
            self.pop._rng.setstate(self._random_state)
        out = self.pop.on_trial_result(self.pop_trials[i], dict(result))
        self.pop_trials[i].last_result = result
        actions: tuple[Any, ...] = ()
        if isinstance(out, Outcome):
            actions, out = out.actions, out.value
        exploits = [a for a in actions if isinstance(a, Exploit)]
        exploits += [out] if isinstance(out, Exploit) else []
        for e in exploits:
            target = self.pop_trials[int(e.trial_id[1:])]
            target.config = e.config
            self.pop_exploits.append((e.trial_id, e.donor_trial_id, dict(e.config)))
        value = "NOOP" if isinstance(out, Exploit) else getattr(out, "value", out)
        return value, [(e.trial_id, e.donor_trial_id) for e in exploits]


def run_async(both: Both, score: Score, rounds: int) -> list[Row]:
    """Each trial in turn reports ``score(i, k)`` for k = 1..rounds; rows of (decision,
    exploits, quantiles), up to the first one where Ray and poptune differ. An exploited
    trial goes on at once (the runner restarts it)."""
    rows: list[Row] = []
    n = len(both.ray_trials)
    with ray_skips("ray.tune.schedulers") as skips:
        for k in range(1, rounds + 1):
            for i in range(n):
                result = {"training_iteration": k, "loss": score(i, k)}
                skips.clear()
                ray_d = both.ray_result(i, result)
                both.ray_trials[i].status = "RUNNING"
                if skips:
                    ray_d = (SKIPPED, ray_d[1])
                pop_d = both.pop_result(i, result)
                ray_q, pop_q = both.quantiles()
                rows.append((f"t{i} k={k} loss={result['loss']}", (ray_d, ray_q),
                             (pop_d, pop_q)))
                if rows[-1][1] != rows[-1][2]:
                    return rows
    return rows


def run_synch(both: Both, score: Score, rounds: int) -> list[Row]:
    """Every trial reports ``score(i, k)`` at each k; rows of (decision, exploits, next sync
    point). Ray's NOOP and PAUSE both leave the trial paused, as poptune's PAUSE."""
    rows: list[Row] = []
    n = len(both.ray_trials)
    with ray_skips("ray.tune.schedulers"):
        for k in range(1, rounds + 1):
            for i in range(n):
                result = {"training_iteration": k, "loss": score(i, k)}
                both.ray_trials[i].status = "RUNNING"
                both.pop_trials[i].status = TrialStatus.RUNNING
                (ray_d, ray_x), (pop_d, pop_x) = both.ray_result(i, result), both.pop_result(
                    i, result)
                if ray_d in ("PAUSE", "NOOP"):
                    both.ray_trials[i].status = "PAUSED"
                if pop_d in ("PAUSE", "NOOP"):
                    both.pop_trials[i].status = TrialStatus.PAUSED
                ray_d, pop_d = ("PAUSE" if d == "NOOP" else d for d in (ray_d, pop_d))
                rows.append((f"t{i} k={k} {result}",
                             (ray_d, ray_x, both.ray._next_perturbation_sync),
                             (pop_d, pop_x, both.pop._next_perturbation_sync)))
    return rows


def best_last(sign: float) -> Score:
    """A score ranking trial i above trial i-1 (in the mode ``sign`` gives: -1 min, +1 max)
    at every k: the best trial reports last, so every donor was in the upper quantile at its
    own perturbation step and Ray never skips an exploit."""
    return lambda i, k: sign * (i * i + 0.1 * k * (i % 2))


def s_distinct(i: int, k: int) -> float:
    return (i * 37 % 11) + 0.01 * k


def s_cross(i: int, k: int) -> float:
    return ((i * 31 + k * 17) % 23) / 23.0


# --- decisions -----------------------------------------------------------------------------

def stable_run() -> tuple[Both, list[Row]]:
    """:func:`run_async` of 4 trials over 8 rounds with :func:`best_last` (quantile 0.25:
    an upper quantile of one, so Ray and poptune pick the same donor), under Ray's seeding
    recipe (``random.seed(0)``, ``np.random.seed(0)``) and poptune's ``seed=None``."""
    with global_random_state(0):
        both = Both(4, synch=False, quantile=0.25, mode="min", seed=None, same_draws=False)
        rows = run_async(both, best_last(-1.0), rounds=8)
    return both, rows


@pytest.fixture(scope="module")
def stable_runs() -> tuple[Both, Both, list[Row]]:
    """:func:`stable_run` twice (Ray's GP fits cost about a second a run)."""
    first, rows = stable_run()
    second, _ = stable_run()
    return first, second, rows


def test_async_same_exploits_whenever_ray_has_the_donor_checkpoint(stable_runs):
    both, _, rows = stable_runs
    assert_same(rows, "async, best trial reporting last")
    exploits = [(t, d) for t, d, _ in both.ray.exploits]
    assert len(exploits) >= 4, exploits
    assert exploits == [(t, d) for t, d, _ in both.pop_exploits]


@pytest.mark.parametrize("score", [s_distinct, s_cross])
@pytest.mark.parametrize("n", [3, 4, 5, 8])
def test_async_same_up_to_the_first_round_exploit(n, score):
    # README row "PBT's first round of exploits" (PB2 is PBT there): Ray skips an exploit
    # whose donor was not in the upper quantile at its own perturbation step; poptune
    # exploits from the donor's latest checkpoint. The same quantiles up to there (in min
    # mode t1 exploits t0 at k=2 in every case)
    for quantile in (0.25, 0.5):
        with global_random_state(0):
            rows = run_async(Both(n, False, quantile, "min"), score, rounds=3)
        label = f"q={quantile}"
        assert_same(rows[:-1], label)
        last, ray_last, pop_last = rows[-1]
        assert (ray_last[0], pop_last[0]) == ((SKIPPED, []), ("NOOP", [("t1", "t0")])), (
            f"{label}, {last}: Ray {ray_last}, poptune {pop_last}")
        assert ray_last[1] == pop_last[1], f"{label}, {last}: other quantiles"


def test_async_same_decisions_as_the_ranking_changes():
    # max mode with s_cross: the ranking changes every round, and no exploit is skipped
    # in 6 rounds; an upper quantile of two trials (same_draws: the same donor drawn)
    with global_random_state(0):
        both = Both(5, synch=False, quantile=0.5, mode="max")
        rows = run_async(both, s_cross, rounds=6)
    assert_same(rows, "async, max, s_cross")
    assert len(rows) == 30 and len(both.ray.exploits) >= 3, both.ray.exploits


@pytest.mark.parametrize("n,quantile,score", [(4, 0.25, s_cross), (5, 0.2, s_distinct)])
def test_synch_same_decisions_exploits_and_barrier(n, quantile, score):
    # synch: Ray saves the upper quantile before it exploits, so no exploit is skipped
    with global_random_state(0):
        both = Both(n, synch=True, quantile=quantile, mode="min")
        rows = run_synch(both, score, rounds=6)
    assert_same(rows, f"synch, {n} trials")
    assert len(both.ray.exploits) >= 3, both.ray.exploits


# --- the explored configs ------------------------------------------------------------------

def test_first_exploits_clone_the_donor_config(stable_runs):
    # while the donor has no measured interval (one perturbation point only) both copy its
    # config unchanged (Ray's _explore: "dfnewpoint.empty"; pb2.py: "cloning its config")
    both, _, _ = stable_runs
    (target, donor, ray_config), (_, _, pop_config) = both.ray.exploits[0], both.pop_exploits[0]
    assert ray_config == pop_config == start_config(int(donor[1:])), (target, donor)


def test_explored_configs_keep_the_bounds_and_types_but_differ(stable_runs):
    # pb2.py docstring: the GP sees the latest WINDOW intervals (Ray: at least 200 of its
    # 1,000) and poptune draws from its own generator; the values differ, the rules are
    # the same: inside the bounds (Ray's float32 cast aside, see the test below), an int
    # bound with an int value explored as an int
    both, _, _ = stable_runs
    ray_configs = [c for _, _, c in both.ray.exploits[1:]]
    pop_configs = [c for _, _, c in both.pop_exploits[1:]]
    for label, configs, slack in (("Ray", ray_configs, 1e-8), ("poptune", pop_configs, 0.0)):
        for config in configs:
            assert type(config["lr"]) is float and type(config["h"]) is int, (label, config)
            assert 1e-4 - slack <= config["lr"] <= 0.1 + slack, (label, config)
            assert 1 <= config["h"] <= 8, (label, config)
    assert all(float(np.float32(c["lr"])) == c["lr"] for c in ray_configs), ray_configs
    assert ray_configs != pop_configs


def test_the_global_seeds_repeat_the_explored_configs_as_in_ray(stable_runs):
    # README row "A reproducible run": Ray's PB2 draws its acquisition starts from
    # np.random (and the donor from random); poptune, unseeded, seeds its generator from
    # random: the same two seeds repeat both
    first, second, _ = stable_runs
    assert first.ray.exploits == second.ray.exploits
    assert first.pop_exploits == second.pop_exploits


def numpy_key() -> Any:
    """A copy of the key of numpy's global generator (its state)."""
    state: Any = np.random.get_state()
    return state[1].copy()


class FakePosterior:
    """A GP posterior over the one searched (normalised) column ``x``, the same stand-in for
    Ray's fitted ``GaussianProcessRegressor`` and poptune's ``_Posterior``."""

    def __init__(self, mean: Callable[[Any], Any], std: Callable[[Any], Any]) -> None:
        self.mean, self.std = mean, std

    def __call__(self, points: Any) -> tuple[Any, Any]:
        x = np.asarray(points, dtype=float)[:, -1]
        return self.mean(x), self.std(x)


def explore_both(monkeypatch: pytest.MonkeyPatch, posterior: FakePosterior,
                 low: float, high: float, draws: bool = False) -> tuple[Any, Any]:
    """The value Ray's and poptune's ``_select_config`` explore for one hyperparameter in
    ``[low, high]`` on the same 5 intervals, their GP replaced by ``posterior`` (``draws``:
    instead, whether each call drew from numpy's global generator)."""

    class RayGP:
        def __init__(self, **kw: Any) -> None:
            pass

        def fit(self, X: Any, y: Any) -> "RayGP":
            self.X_train_ = X
            return self

        def predict(self, x: Any, return_std: bool = False) -> Any:
            mean, std = posterior(x)
            return (mean, std) if return_std else mean

    class PoptunePosterior:
        def __init__(self, gp: Any) -> None:
            pass

        def mean_std(self, x: Any) -> tuple[Any, Any]:
            return posterior(x)

    monkeypatch.setattr(ray_pb2, "GaussianProcessRegressor", RayGP)
    monkeypatch.setattr(pb2_module, "_fit_gp", lambda *args: None)
    monkeypatch.setattr(pb2_module, "_Posterior", PoptunePosterior)
    X = np.array([[2.0, 1.0, 0.02], [2.0, 2.0, 0.05], [4.0, 1.5, 0.03], [4.0, 2.5, 0.07],
                  [6.0, 2.0, 0.04]])
    y, newpoint = np.array([0.1, 0.3, 0.2, 0.1, 0.0]), np.array([6.0, 2.0])
    with global_random_state(0):
        before = numpy_key()
        no_current: Any = None  # no trial already explored this round
        ray_x = ray_pb2._select_config(X, y, no_current, newpoint, {"lr": [low, high]}, 2)
        ray_drew = not (numpy_key() == before).all()
        before = numpy_key()
        pop_x = pb2_module._select_config(X, y, None, newpoint, np.array([[low, high]]),
                                          np.random.default_rng(0))
        pop_drew = not (numpy_key() == before).all()
    if draws:
        return ray_drew, pop_drew
    return float(ray_x[0]), float(pop_x[0])


def test_ray_scores_by_variance_poptune_by_std(monkeypatch):
    # Ray's pb2_utils.UCB is "mean + kappa * var" (var = std ** 2); poptune's acquisition
    # is GP-UCB, mean + kappa * std (same kappa, 0.95 for 5 intervals). Where the std is
    # below 1 and the mean falls as the std grows, they explore opposite bounds: Ray the
    # certain low end, poptune the uncertain high end
    posterior = FakePosterior(mean=lambda x: -0.3 * x, std=lambda x: 0.5 * x)
    assert explore_both(monkeypatch, posterior, 0.0, 1.0) == (0.0, 1.0)


def test_the_gp_kernels_differ():
    # Ray's TV_SquaredExp alone (lengthscale up to 1e5, alpha 1e-10); poptune's kernel
    # bounds the lengthscale by 1 (inputs are normalised to [0, 1]) and adds a WhiteKernel
    from ray.tune.schedulers.pb2_utils import TV_SquaredExp
    from sklearn.gaussian_process.kernels import WhiteKernel

    assert TV_SquaredExp().lengthscale_bounds == (1e-5, 1e5)
    assert pb2_module._tv_kernel_class()().lengthscale_bounds == (1e-5, 1.0)
    X, y = np.array([[0.0, 0.0, 0.2], [0.5, 1.0, 0.4], [1.0, 0.5, 0.9]]), np.ones(3)
    assert isinstance(pb2_module._fit_gp(X, y, 0).kernel_.k2, WhiteKernel)


def test_ray_casts_to_float32_and_leaves_the_bounds(monkeypatch):
    # Ray's _select_config ends with xt.astype(np.float32): at the upper bound 0.1 it
    # explores 0.10000000149011612 (and 9.9999997e-05 at a lower bound 1e-4); poptune
    # explores the bound itself
    rising = FakePosterior(mean=lambda x: x, std=lambda x: 0.0 * x)
    ray_value, pop_value = explore_both(monkeypatch, rising, 1e-4, 0.1)
    assert (ray_value, pop_value) == (float(np.float32(0.1)), 0.1)
    assert ray_value > 0.1
    falling = FakePosterior(mean=lambda x: -x, std=lambda x: 0.0 * x)
    ray_value, pop_value = explore_both(monkeypatch, falling, 1e-4, 0.1)
    assert (ray_value, pop_value) == (float(np.float32(1e-4)), 1e-4)
    assert ray_value < 1e-4


def test_ray_explores_with_numpy_global_generator_poptune_with_its_own(monkeypatch):
    # README row "A reproducible run": Ray's acquisition starts are np.random draws; poptune's
    # PB2 draws from its own generator (seeded once, from random, when unseeded), so a whole
    # poptune run leaves both global generators as they were
    with global_random_state(1):
        both = Both(4, synch=False, quantile=0.25, mode="min", seed=None, same_draws=False)
        saved = random.getstate(), numpy_key()
        for k in range(1, 7):
            for i in range(4):
                both.pop_result(i, {"training_iteration": k, "loss": best_last(-1.0)(i, k)})
        assert len(both.pop_exploits) >= 2, both.pop_exploits
        assert random.getstate() == saved[0]
        assert (numpy_key() == saved[1]).all()
    rising = FakePosterior(mean=lambda x: x, std=lambda x: 0.0 * x)
    assert explore_both(monkeypatch, rising, 0.0, 1.0, draws=True) == (True, False)
