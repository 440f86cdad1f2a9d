"""PopulationBasedTraining: Ray 2.60's and poptune's quantiles and decisions on the same
results, async and ``synch=True``.

The donor choice and the explore step draw from different generators (Ray: ``random``;
poptune: its ``seed``), so only the deterministic parts are compared: the quantile sets, who
is exploited, each decision and the synch barrier. Documented differences, asserted below:
the first round's exploits (README row "PBT's first round of exploits") and the pause Ray
makes before the synch barrier (pbt.py: "not at the barrier yet: no pointless pause").
"""

from __future__ import annotations

import random
from typing import Any, Callable

import pytest

pytest.importorskip("ray")

from ray.tune.schedulers import PopulationBasedTraining as RayPBT  # noqa: E402

from poptune.experiment.trial import TrialStatus  # noqa: E402
from poptune.schedulers import Exploit, Outcome, PopulationBasedTraining  # noqa: E402
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

Score = Callable[[int, int], float]


class Both:
    """Ray's and poptune's PBT with the same arguments over trials t0..t(n-1), lr 0.1."""

    def __init__(self, n: int, synch: bool, interval: float = 2, quantile: float = 0.25,
                 mode: str = "min", time_attr: str = "training_iteration") -> None:
        kw: dict[str, Any] = dict(
            time_attr=time_attr, metric="loss", mode=mode, perturbation_interval=interval,
            quantile_fraction=quantile, hyperparam_mutations={"lr": [0.1, 0.2, 0.3]},
            synch=synch, log_config=False)
        self.ray, self.pop = RayPBT(**kw), PopulationBasedTraining(**kw, seed=0)
        self.ray_trials = [rtrial(f"t{i}", {"lr": 0.1}) for i in range(n)]
        self.pop_trials = [ptrial(f"t{i}", {"lr": 0.1}) for i in range(n)]
        self.ctl = SavingController(self.ray_trials)
        for ray_trial, pop_trial in zip(self.ray_trials, self.pop_trials):
            self.ray.on_trial_add(self.ctl, ray_trial)
            self.pop.on_trial_add(pop_trial)

    def quantiles(self) -> tuple[Any, Any]:
        """(Ray's, poptune's) ``(lower ids, upper ids)``."""
        return tuple(tuple([t.trial_id for t in q] for q in s._quantiles())
                     for s in (self.ray, self.pop))

    def ray_result(self, i: int, result: dict[str, Any]) -> Any:
        out = self.ray.on_trial_result(self.ctl, self.ray_trials[i], dict(result))
        self.ray_trials[i].run_metadata.last_result = result
        return out

    def pop_result(self, i: int, result: dict[str, Any], k: int) -> tuple[Any, tuple]:
        """poptune's decision (``"EXPLOITED"`` for an :class:`Exploit`) and the trials its
        :class:`Outcome` exploits."""
        self.pop_trials[i].checkpoint_path = f"/ck/t{i}/{k}"
        out = self.pop.on_trial_result(self.pop_trials[i], dict(result))
        self.pop_trials[i].last_result = result
        actions: tuple[Any, ...] = ()
        if isinstance(out, Outcome):
            actions, out = out.actions, out.value
        exploited = tuple(sorted(a.trial_id for a in actions if isinstance(a, Exploit)))
        return ("EXPLOITED" if isinstance(out, Exploit) else getattr(out, "value", out),
                exploited)


def run_async(n: int, score: Score, rounds: int = 6, **kw: Any) -> list[Row]:
    """Each trial in turn reports ``score(i, k)`` for k = 1..rounds; the rows, up to the
    first one where Ray and poptune differ. A Ray trial it exploits goes on running (the
    exploited config does not matter here)."""
    rows: list[Row] = []
    with global_random_state(0), ray_skips() as skips:
        both = Both(n, synch=False, **kw)
        for k in range(1, rounds + 1):
            for i in range(n):
                result = {"training_iteration": k, "loss": score(i, k)}
                both.ctl.paused.clear()
                skips.clear()
                ray_d = both.ray_result(i, result)
                if both.ray_trials[i].trial_id in both.ctl.paused:
                    ray_d = "EXPLOITED"
                elif skips:
                    ray_d = SKIPPED
                both.ray_trials[i].status = "RUNNING"
                pop_d, _ = both.pop_result(i, result, k)
                ray_q, pop_q = both.quantiles()
                rows.append((f"t{i} k={k} loss={result['loss']}", (ray_d, ray_q),
                             (pop_d, pop_q)))
                if rows[-1][1] != rows[-1][2]:
                    return rows
    return rows


def s_distinct(i: int, k: int) -> float:
    return (i * 37 % 11) + 0.01 * k


def s_ties(i: int, k: int) -> float:
    return float(i % 3)


def s_cross(i: int, k: int) -> float:
    return ((i * 31 + k * 17) % 23) / 23.0


def s_nan(i: int, k: int) -> float:
    return float("nan") if (i + k) % 4 == 0 else s_cross(i, k)


@pytest.mark.parametrize("score", [s_distinct, s_ties, s_cross, s_nan])
@pytest.mark.parametrize("n", [2, 3, 4, 5, 8])
def test_async_same_up_to_the_first_round_exploit(n, score):
    # README row "PBT's first round of exploits": Ray skips an exploit whose donor was not
    # in the upper quantile at its own perturbation step; poptune exploits from the donor's
    # latest saved checkpoint. The quantiles are the same (ties and NaN included).
    for quantile in (0.25, 0.5, 0.1):
        for mode in ("min", "max"):
            rows = run_async(n, score, quantile=quantile, mode=mode)
            label = f"q={quantile} {mode}"
            assert_same(rows[:-1], label)
            last, ray_last, pop_last = rows[-1]
            if ray_last == pop_last:
                assert mode == "max", f"{label}: Ray now exploits in the first round too"
                continue
            assert (ray_last[0], pop_last[0]) == (SKIPPED, "EXPLOITED"), (
                f"{label}, {last}: Ray {ray_last}, poptune {pop_last}")
            assert ray_last[1] == pop_last[1], f"{label}, {last}: other quantiles"


def test_first_round_exploit_two_trials():
    # README row "PBT's first round of exploits" (the report's example): t0 scores 0.02, t1
    # 4.02 (min mode); at t1's k=2 result, Ray skips the exploit, poptune exploits t1 <- t0
    with global_random_state(0), ray_skips() as skips:
        both = Both(2, synch=False)
        for k in (1, 2):
            for i in (0, 1):
                result = {"training_iteration": k, "loss": s_distinct(i, k)}
                ray_d = both.ray_result(i, result)
                both.pop_trials[i].checkpoint_path = f"/ck/t{i}/{k}"
                pop_out = both.pop.on_trial_result(both.pop_trials[i], dict(result))
                both.pop_trials[i].last_result = result
        assert both.quantiles() == ((["t1"], ["t0"]),) * 2
    assert (ray_d, both.ctl.paused, len(skips)) == ("CONTINUE", [], 1), skips
    assert isinstance(pop_out, Exploit) and (pop_out.trial_id, pop_out.donor_trial_id) == (
        "t1", "t0"), pop_out


def run_synch(both: Both, n: int, score: Score, rounds: int = 6,
              time: Callable[[int, int], float] | None = None) -> list[Row]:
    """Every trial reports ``score(i, k)`` at each k (and ``time(i, k)`` of ``time_attr``);
    rows of (decision, next sync point). Ray's NOOP and poptune's exploit of the reporting
    trial both mean it pauses."""
    rows: list[Row] = []
    for k in range(1, rounds + 1):
        for i in range(n):
            result = {"training_iteration": k, "loss": score(i, k)}
            if time is not None:
                result["time_total_s"] = time(i, k)
            both.ray_trials[i].status = "RUNNING"
            both.pop_trials[i].status = TrialStatus.RUNNING
            ray_d = both.ray_result(i, result)
            pop_d, _ = both.pop_result(i, result, k)
            if ray_d in ("PAUSE", "NOOP"):
                both.ray_trials[i].status = "PAUSED"
            if pop_d in ("PAUSE", "EXPLOITED"):
                both.pop_trials[i].status = TrialStatus.PAUSED
            ray_d = "PAUSE" if ray_d == "NOOP" else ray_d
            pop_d = "PAUSE" if pop_d == "EXPLOITED" else pop_d
            rows.append((f"t{i} k={k} {result}", (ray_d, both.ray._next_perturbation_sync),
                         (pop_d, both.pop._next_perturbation_sync)))
    return rows


@pytest.mark.parametrize("score", [s_distinct, s_ties, s_cross])
@pytest.mark.parametrize("n", [3, 4, 8])
def test_synch_same_decisions_and_barrier(n, score):
    with global_random_state(0):
        rows = run_synch(Both(n, synch=True), n, score)
    assert_same(rows, f"synch, {n} trials")


def test_synch_ray_pauses_a_trial_below_the_barrier_poptune_continues():
    # pbt.py: "not at the barrier yet: no pointless pause". With uneven time_total_s steps
    # the barrier (12.0) is above t1's time 10.2 at its perturbation step: Ray pauses it
    # (and resumes it at once), poptune lets it run on; the barrier is the same
    with global_random_state(0):
        both = Both(3, synch=True, time_attr="time_total_s")
        rows = run_synch(both, 3, s_cross, time=lambda i, k: k * (1.0 + 0.7 * i))
    differing = [(label, r, p) for label, r, p in rows if r != p]
    assert len(differing) == 1, differing
    label, ray_row, pop_row = differing[0]
    assert label.startswith("t1 k=6 ") and "'time_total_s': 10.2" in label, label
    assert (ray_row, pop_row) == (("PAUSE", 12.0), ("CONTINUE", 12.0)), differing


def test_synch_barrier_pushed_by_a_jump():
    # t1 jumps to time 5.5 before t0 reaches 2: both move the next sync point alike
    rows: list[Row] = []
    with global_random_state(0):
        both = Both(2, synch=True, time_attr="time_total_s")
        for i, k, time, loss in [(0, 1, 2.0, 1.0), (1, 1, 5.5, 0.5), (0, 2, 4.2, 0.9),
                                 (0, 3, 6.3, 0.8)]:
            result = {"training_iteration": k, "time_total_s": time, "loss": loss}
            both.ray_trials[i].status = "RUNNING"
            both.pop_trials[i].status = TrialStatus.RUNNING
            ray_d = both.ray_result(i, result)
            pop_d, _ = both.pop_result(i, result, k)
            rows.append((f"t{i} time_total_s={time}", (ray_d, both.ray._next_perturbation_sync),
                         (pop_d, both.pop._next_perturbation_sync)))
            if ray_d in ("PAUSE", "NOOP"):
                both.ray_trials[i].status = "PAUSED"
            if pop_d in ("PAUSE", "EXPLOITED"):
                both.pop_trials[i].status = TrialStatus.PAUSED
    assert_same(rows, "synch barrier pushed by a jump")


def test_same_quantiles_on_the_same_scores():
    # random populations: ties, NaN and unscored members, quantile_fraction 0.1-0.5
    rng, rows = random.Random(1), []
    for case in range(300):
        n, quantile = rng.randint(2, 10), rng.choice([0.1, 0.25, 0.3, 0.5])
        mode = rng.choice(["min", "max"])
        with global_random_state():
            both = Both(n, synch=False, quantile=quantile, mode=mode)
        sign = 1.0 if mode == "max" else -1.0
        for ray_trial, pop_trial in zip(both.ray_trials, both.pop_trials):
            value = rng.choice([None, float("nan"), 1.0, 2.0, 2.0, 3.0, rng.random()])
            if value is not None:
                both.ray._trial_state[ray_trial].last_score = sign * value
                both.pop._states[pop_trial.trial_id].last_score = sign * value
        ray_q, pop_q = both.quantiles()
        rows.append((f"case {case}: {n} trials, q={quantile}, {mode}", ray_q, pop_q))
    assert_same(rows, "quantiles")
