"""PromotionASHAScheduler: the promotion rule on hand-made results (no processes), then
end to end on simulated time and on real worker processes."""

from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
from typing import Any

import pytest

import poptune as tune
from poptune import simulation
from poptune.backends.simulated import SimulatedBackend
from poptune.engine.trial import Trial, TrialStatus
from poptune.exceptions import TuneConfigError
from poptune.schedulers import (
    Outcome,
    PromotionASHAScheduler,
    SchedulerDecision,
    StopTrial,
    create_scheduler,
)
from tests.schedulers.outcomes import split

TI = "training_iteration"
CONTINUE, PAUSE, STOP = SchedulerDecision.CONTINUE, SchedulerDecision.PAUSE, SchedulerDecision.STOP
PENDING, RUNNING, PAUSED = TrialStatus.PENDING, TrialStatus.RUNNING, TrialStatus.PAUSED
TERMINATED = TrialStatus.TERMINATED


def sched(**kw: Any) -> PromotionASHAScheduler:
    args: dict[str, Any] = dict(metric="loss", mode="min", max_t=9, grace_period=1,
                                reduction_factor=3)
    args.update(kw)
    return PromotionASHAScheduler(**args)


def trials(s: PromotionASHAScheduler, n: int) -> list[Trial]:
    out = [Trial(f"abc_{i:05d}", "train", {"i": i}, status=PENDING) for i in range(n)]
    for t in out:
        assert s.on_trial_add(t) is None
    return out


class Runner:
    """What the controller does with the scheduler's decisions, one slot, by hand: start the
    chosen trial, feed it results until it pauses or stops, end what the choice ends."""

    def __init__(self, s: PromotionASHAScheduler, losses: dict[str, float]) -> None:
        self.s, self.losses = s, losses
        self.it: dict[str, int] = {}
        self.ended: list[str] = []
        self.order: list[str] = []

    def step(self, ts: list[Trial]) -> bool:
        waiting = [t for t in ts if t.status in (PENDING, PAUSED)]
        value, acts = split(self.s.choose_trial_to_run(waiting))
        for a in acts:
            assert isinstance(a, StopTrial)
            t = next(t for t in ts if t.trial_id == a.trial_id)
            t.status = TERMINATED
            self.ended.append(t.trial_id)
            self.s.on_trial_remove(t)
        if value is None:
            return False
        t = value
        self.order.append(t.trial_id)
        t.status = RUNNING
        while True:
            self.it[t.trial_id] = self.it.get(t.trial_id, 0) + 1
            it = self.it[t.trial_id]
            result = {TI: it, "loss": self.losses[t.trial_id] / it}
            t.last_result = result
            decision = self.s.on_trial_result(t, result)
            if decision == PAUSE:
                t.status = PAUSED
                return True
            if decision == STOP:
                t.status = TERMINATED
                self.s.on_trial_complete(t, result)
                return True
            assert decision == CONTINUE

    def run(self, ts: list[Trial]) -> dict[int, int]:
        while self.step(ts):
            pass
        assert all(t.status == TERMINATED for t in ts)
        return {int(t.config["i"]): self.it.get(t.trial_id, 0) for t in ts}


# ------------------------------------------------------------------ the rule, by hand
def test_rungs_are_below_max_t_and_the_top_rung_promotes_its_share_of_max_t():
    assert sched().rung_levels == [1, 3]
    assert sched(max_t=10).rung_levels == [1, 3, 9]
    assert sched(max_t=10)._quantiles == [1 / 3, 1 / 3, 0.9]  # Syne Tune's r_k / r_(k+1)
    assert sched(grace_period=9).rung_levels == []
    assert PromotionASHAScheduler(metric="m", mode="max").rung_levels == [1, 4, 16, 64]


@pytest.mark.parametrize("kwargs,message", [
    ({"brackets": 2}, r"^`brackets` must be 1 \(the promotion variant .*got 2$"),
    ({"grace_period": 10}, r"^`grace_period` must be <= `max_t`=9, got 10$"),
    ({"reduction_factor": 1}, r"^`reduction_factor` must be > 1, got 1$"),
    ({"max_t": 0}, r"^`max_t` must be > 0, got 0$"),
    ({"mode": "best"}, r"`mode`"),
])
def test_invalid_parameters_are_refused_naming_them(kwargs, message):
    with pytest.raises(TuneConfigError, match=message):
        sched(**kwargs)
    with pytest.raises(TypeError, match=r"^`time_attr` must be a str, got 3 of type int$"):
        sched(time_attr=3)


def test_metric_and_mode_are_needed_when_trials_come():
    s = PromotionASHAScheduler(max_t=9)
    with pytest.raises(TuneConfigError):
        s.on_trial_add(Trial("abc_00000", "train", {}))
    s.set_search_properties("loss", "min")
    assert s.on_trial_add(Trial("abc_00000", "train", {})) is None
    assert create_scheduler("asha_promotion", metric="loss", mode="min").rung_levels == [
        1, 4, 16, 64]


def test_a_trial_pauses_at_each_rung_and_stops_at_max_t():
    s = sched()
    (t,) = trials(s, 1)
    assert [s.on_trial_result(t, {TI: 1, "loss": 1.0})] == [PAUSE]
    assert s._waiting == {t.trial_id: 0}
    assert s.on_trial_result(t, {TI: 2, "loss": 0.9}) == CONTINUE  # resumed: promoted
    assert s._waiting == {} and s._num_promoted == 1
    assert s.on_trial_result(t, {TI: 3, "loss": 0.8}) == PAUSE
    assert s.on_trial_result(t, {TI: 3, "loss": 0.8}) == CONTINUE  # the same level again
    assert s.on_trial_result(t, {TI: 8, "loss": 0.7}) == CONTINUE
    assert s.on_trial_result(t, {TI: 9, "loss": 0.6}) == STOP


def test_a_rung_promotes_the_best_waiting_trial_once_it_is_in_the_top_third():
    s = sched()
    a, b, c = trials(s, 3)
    for t, loss in ((a, 0.5), (b, 0.2)):
        assert s.on_trial_result(t, {TI: 1, "loss": loss}) == PAUSE
        t.status = PAUSED
    # two scores: the cutoff is the 1/3 quantile of [0.2, 0.5] = 0.3; b (0.2) qualifies
    assert s.cutoff(0) == pytest.approx(-0.3)
    assert s.choose_trial_to_run([c, a, b]) is b  # a promotion goes before a new trial
    b.status = RUNNING
    assert s.choose_trial_to_run([c, a]) is c  # a (0.5) does not qualify: a new trial
    assert s.on_trial_result(c, {TI: 1, "loss": 0.1}) == PAUSE
    c.status = PAUSED
    assert s.choose_trial_to_run([a, c]) is c  # the best waiting trial of the rung first
    c.status = RUNNING
    assert s.choose_trial_to_run([a]) is None  # b and c run: a waits, it is not ended


def test_the_top_rung_is_served_first_and_ties_go_to_the_earlier_trial():
    s = sched(max_t=27)
    ts = trials(s, 4)
    for t, loss in zip(ts, (0.4, 0.4, 0.9, 0.9)):
        s.on_trial_result(t, {TI: 1, "loss": loss})
        t.status = PAUSED
    for t, loss in zip(ts[2:], (0.3, 0.35)):  # promoted earlier, now waiting at rung 3
        t.status = RUNNING
        s.on_trial_result(t, {TI: 2, "loss": 0.5})
        assert s.on_trial_result(t, {TI: 3, "loss": loss}) == PAUSE
        t.status = PAUSED
    assert s.choose_trial_to_run(ts) is ts[2]  # rung 3 before rung 1's better scores
    ts[2].status = RUNNING
    # rung 3's other trial is not in its top third; rung 1: a tie, the earlier trial first
    assert s.choose_trial_to_run(ts) is ts[0]
    ts[0].status = RUNNING
    assert s.choose_trial_to_run(ts) is ts[1]


def test_a_single_score_promotes_nothing_and_nan_never_qualifies():
    s = sched()
    a, b, c = trials(s, 3)
    s.on_trial_result(a, {TI: 1, "loss": 0.1})
    a.status = PAUSED
    assert s.promotable([a]) is None  # one score: no cutoff (as Syne Tune)
    s.on_trial_result(b, {TI: 1, "loss": float("nan")})
    b.status = PAUSED
    assert s.promotable([a, b]) is None  # NaN is left out: still one score
    s.on_trial_result(c, {TI: 1, "loss": 0.2})
    c.status = PAUSED
    assert s.promotable([b, c, a]) is a
    assert s.on_trial_result(Trial("abc_00009", "train", {}), {TI: 1, "loss": None}) == CONTINUE


def test_at_the_end_the_paused_trials_that_cannot_be_promoted_are_ended():
    s = sched()
    a, b = trials(s, 2)
    for t, loss in ((a, 0.5), (b, 0.2)):
        s.on_trial_result(t, {TI: 1, "loss": loss})
        t.status = PAUSED
    b.status = RUNNING  # promoted
    assert s.choose_trial_to_run([a]) is None  # something runs: a may still qualify
    s.on_trial_result(b, {TI: 2, "loss": 0.1})
    assert s.on_trial_result(b, {TI: 3, "loss": 0.05}) == PAUSE
    b.status = PAUSED
    out = s.choose_trial_to_run([a, b])  # nothing runs, nothing pending, none qualifies
    assert isinstance(out, Outcome) and out.value is None
    assert [x.trial_id for x in out.actions] == [a.trial_id, b.trial_id]


def test_a_pending_trial_that_ran_before_goes_first():
    s = sched()
    a, b, c = trials(s, 3)
    for t, loss in ((a, 0.5), (b, 0.2)):
        s.on_trial_result(t, {TI: 1, "loss": loss})
        t.status = PAUSED
    c.last_result = {TI: 1, "loss": 0.9}  # interrupted (restore) or retried after an error
    assert s.choose_trial_to_run([c, a, b]) is c


def test_a_trial_that_could_not_pause_leaves_its_rung_as_promoted():
    s = sched()
    a, b = trials(s, 2)
    s.on_trial_result(b, {TI: 1, "loss": 0.1})
    assert s.on_trial_result(a, {TI: 1, "loss": 0.9}) == PAUSE  # no checkpoint: runs on
    assert s.on_trial_result(a, {TI: 2, "loss": 0.8}) == CONTINUE
    assert a.trial_id not in s._waiting
    assert s.on_trial_result(a, {TI: 3, "loss": 0.7}) == PAUSE


def test_class_trainables_are_asked_to_save_where_they_pause():
    s = sched()
    (t,) = trials(s, 1)
    assert [s.should_checkpoint(t, {TI: i}) for i in (1, 2, 3, 9)] == [True, True, True, False]
    s.on_trial_result(t, {TI: 1, "loss": 0.5})
    assert [s.should_checkpoint(t, {TI: i}) for i in (1, 2, 3, 9)] == [False, False, True, False]


def test_one_slot_by_hand_runs_the_promotion_schedule():
    """x = [5, 3, 6, 1, 4, 2], loss = x / iteration, one slot: worked out by hand."""
    s = sched()
    ts = trials(s, 6)
    runner = Runner(s, {t.trial_id: x for t, x in zip(ts, [5, 3, 6, 1, 4, 2])})
    assert runner.run(ts) == {0: 1, 1: 3, 2: 1, 3: 9, 4: 1, 5: 3}
    assert runner.order == [ts[i].trial_id for i in (0, 1, 1, 2, 3, 3, 3, 4, 5, 5)]
    assert sorted(runner.ended) == sorted(ts[i].trial_id for i in (0, 1, 2, 4, 5))


def test_state_saved_and_restored_mid_run_or_rebuilt_from_deltas_goes_on_identically():
    losses = [5, 3, 6, 1, 4, 2, 7, 0.5]
    full = sched()
    ts = trials(full, 8)
    expected = Runner(full, {t.trial_id: x for t, x in zip(ts, losses)}).run(ts)

    s = sched()
    ts = trials(s, 8)
    runner = Runner(s, {t.trial_id: x for t, x in zip(ts, losses)})
    replayed = sched()
    replayed.load_state(s.save_state())
    for _ in range(6):
        assert runner.step(ts)
        replayed.apply_state_delta(s.state_delta())
    for restored in (pickle.loads(pickle.dumps(s)), replayed):
        state = s.save_state()
        again = sched()
        again.load_state(pickle.loads(pickle.dumps(restored.save_state())))
        assert again.save_state() == state
    fresh = sched()
    fresh.load_state(replayed.save_state())
    for t in ts:  # restore re-adds every trial
        fresh.on_trial_add(t)
    runner.s = fresh
    assert runner.run(ts) == expected
    with pytest.raises(TuneConfigError, match="the saved rung levels"):
        sched(max_t=27).load_state(s.save_state())


# ------------------------------------------------------------------ simulated time
def curve(config):
    """loss = x / iteration, a checkpoint every iteration, 10 simulated seconds a step;
    reports the iteration it resumed from."""
    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt:
        with ckpt.as_directory() as d, open(os.path.join(d, "state.json")) as f:
            start = json.load(f)["it"]
    for it in range(start + 1, 100):
        simulation.advance(10.0)
        d = tempfile.mkdtemp(dir=config["scratch"])
        with open(os.path.join(d, "state.json"), "w") as f:
            json.dump({"it": it}, f)
        tune.report({"loss": config["x"] / it, "resumed_from": start, "pid": os.getpid()},
                    checkpoint=tune.Checkpoint.from_directory(d))


def _fit(tmp_path, name, xs, slots=1, callbacks=(), **sched_kw):
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    return tune.Tuner(
        curve, param_space={"x": tune.grid_search(xs), "scratch": str(scratch)},
        tune_config=tune.TuneConfig(metric="loss", mode="min",
                                    scheduler=PromotionASHAScheduler(**{
                                        "max_t": 9, "reduction_factor": 3, **sched_kw}),
                                    backend=SimulatedBackend(num_cpus=slots)),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0,
                                  callbacks=list(callbacks))).fit()


def _reached(grid) -> dict[float, tuple[int, list[int], list[int]]]:
    """x -> (last iteration, iterations reported, iterations it resumed from)."""
    out = {}
    for r in grid:
        df = r.metrics_dataframe
        if df is None or df.empty:  # never started (an interrupted run)
            out[r.config["x"]] = (0, [], [])
            continue
        out[r.config["x"]] = (int(df[TI].iloc[-1]), list(df[TI]),
                              sorted(set(df["resumed_from"]) - {0}))
    return out


def test_simulated_one_slot_run_matches_the_hand_worked_schedule(tmp_path):
    grid = _fit(tmp_path, "one", [5, 3, 6, 1, 4, 2])
    assert grid.num_errors == 0
    reached = _reached(grid)
    assert {x: v[0] for x, v in reached.items()} == {5: 1, 3: 3, 6: 1, 1: 9, 4: 1, 2: 3}
    for x, (last, its, resumed) in reached.items():
        assert its == list(range(1, last + 1))  # resumed where it paused, never restarted
    assert reached[1][2] == [1, 3] and reached[3][2] == [1] and reached[5][2] == []


def test_simulated_two_slots_promote_the_best_to_max_t_and_end(tmp_path):
    xs = [7, 2, 9, 4, 1, 8, 3, 6, 5, 0.5, 10, 1.5]
    grid = _fit(tmp_path, "two", xs, slots=2, max_t=27)
    reached = _reached(grid)
    assert all(its == list(range(1, last + 1)) for last, its, _ in reached.values())
    at = {x: last for x, (last, _, _) in reached.items()}
    assert set(at.values()) <= {1, 3, 9, 27}
    assert at[0.5] == 27 and at[10] == 1  # the best reaches max_t, the worst stops at rung 1
    counts = {level: sum(v >= level for v in at.values()) for level in (1, 3, 9, 27)}
    assert counts[1] == 12 and counts[3] <= 6 and counts[9] < counts[3]
    assert all(r.metrics.get("done") for r in grid)


#: results counted over every fit of a test (the restored run has the callback too)
PLAN: dict[str, int] = {"at": 0, "seen": 0}


class CtrlC(tune.Callback):
    """Ctrl-C at the ``PLAN["at"]``-th result (the driver's KeyboardInterrupt path)."""

    def on_trial_result(self, iteration, trials, trial, result, **info):
        PLAN["seen"] += 1
        if PLAN["seen"] == PLAN["at"]:
            raise KeyboardInterrupt


@pytest.mark.parametrize("at", [2, 3, 4, 6, 9, 11, 14, 17])
def test_simulated_run_interrupted_and_restored_ends_as_the_uninterrupted_one(tmp_path, at):
    xs = [5, 3, 6, 1, 4, 2, 7, 0.5]
    expected = _reached(_fit(tmp_path, "whole", xs))
    PLAN.update(at=at, seen=0)
    cut = _reached(_fit(tmp_path, "cut", xs, callbacks=[CtrlC()]))  # returns, interrupted
    assert cut != expected
    grid = tune.Tuner.restore(str(tmp_path / "cut"), curve, resume_unfinished=True).fit()
    got = _reached(grid)
    assert {x: v[:2] for x, v in got.items()} == {x: v[:2] for x, v in expected.items()}


# ------------------------------------------------------------------ real worker processes
def test_local_workers_pause_and_promote_from_checkpoints(tmp_path):
    """The one-slot schedule worked out by hand, on the local backend's worker processes."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    grid = tune.Tuner(
        curve, param_space={"x": tune.grid_search([5, 3, 6, 1, 4, 2]), "scratch": str(scratch)},
        tune_config=tune.TuneConfig(
            metric="loss", mode="min", max_concurrent_trials=1,
            scheduler=PromotionASHAScheduler(max_t=9, reduction_factor=3)),
        run_config=tune.RunConfig(name="local", storage_path=str(tmp_path), verbose=0)).fit()
    assert grid.num_errors == 0
    reached = _reached(grid)
    assert {x: v[0] for x, v in reached.items()} == {5: 1, 3: 3, 6: 1, 1: 9, 4: 1, 2: 3}
    for last, its, _ in reached.values():
        assert its == list(range(1, last + 1))
    assert reached[1][2] == [1, 3]  # paused twice, resumed from its checkpoint each time
    pids = {int(p) for r in grid for p in r.metrics_dataframe["pid"]}
    assert os.getpid() not in pids  # trials ran in worker processes


def test_the_documented_example_prints_what_the_docs_say(tmp_path, monkeypatch, capsys):
    doc = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs",
                            "schedulers.md")).read()
    code = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    printed = re.search(r"```text\n(.*?)```", doc, re.S).group(1)
    monkeypatch.setenv("POPTUNE_STORAGE_PATH", str(tmp_path))
    exec(compile(code, "docs/schedulers.md", "exec"), {"__name__": "__doc__"})
    assert capsys.readouterr().out == printed
