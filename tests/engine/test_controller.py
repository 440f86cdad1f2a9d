"""The Controller: feed it trial events, compare the instructions and statuses it returns."""

from __future__ import annotations

import pytest

from poptune.engine.controller import Controller, ErrorOutcome, Reply, StopOutcome, Told
from poptune.engine.trial import Trial, TrialStatus
from poptune.schedulers import Exploit, SchedulerDecision

CONTINUE, PAUSE, STOP = SchedulerDecision.CONTINUE, SchedulerDecision.PAUSE, SchedulerDecision.STOP
EXPLOIT = Exploit(trial_id="a", donor_trial_id="b", checkpoint_path="/b/ckpt", config={"lr": 1})


def running(ctl=None, tid="a"):
    ctl = ctl or Controller(max_failures=0, fail_fast=False)
    t = Trial(trial_id=tid, trainable_name="f", config={})
    ctl.add(t, TrialStatus.PENDING)
    ctl.on_launch(t)
    return ctl, t


@pytest.mark.parametrize("decision, can_pause, reply, told", [
    (CONTINUE, True, Reply.CONTINUE, None),
    (STOP, True, Reply.STOP, Told.STOP),
    (PAUSE, True, Reply.PAUSE, Told.PAUSE),
    (PAUSE, False, Reply.CONTINUE, None),  # no checkpoint to resume from: keep running
    (EXPLOIT, True, Reply.STOP, Told.EXPLOIT),
])
def test_decisions_become_replies(decision, can_pause, reply, told):
    ctl, t = running()
    assert ctl.on_decision(t, decision, can_pause=can_pause) == reply
    assert ctl.told_to("a") == told


def test_an_exploit_waiting_for_a_trial_stops_it_whatever_the_scheduler_says():
    ctl, t = running()
    ctl.tell("a", Told.EXPLOIT)  # decided while another trial reported (synch PBT)
    assert ctl.on_decision(t, CONTINUE, can_pause=True) == Reply.STOP
    assert ctl.told_to("a") == Told.EXPLOIT
    # ... but the stopper's stop wins: the trial ends instead of restarting from the donor
    assert ctl.on_decision(t, CONTINUE, can_pause=True, by_stopper=True) == Reply.STOP
    assert ctl.told_to("a") == Told.STOP


def test_a_trial_told_something_gets_the_same_answer_to_later_results():
    ctl, _ = running()
    assert ctl.reply_while_told("a") is None
    ctl.tell("a", Told.PAUSE)
    assert ctl.reply_while_told("a") == Reply.PAUSE
    ctl.tell("a", Told.STOP, keep=True)  # keep: an earlier instruction stands
    assert ctl.told_to("a") == Told.PAUSE
    ctl.tell("a", Told.EXPLOIT)
    assert ctl.reply_while_told("a") == Reply.STOP


@pytest.mark.parametrize("told, stopping_all, has_exploit, outcome, status", [
    (Told.EXPLOIT, False, True, StopOutcome.EXPLOITED, TrialStatus.PAUSED),
    (Told.EXPLOIT, False, False, StopOutcome.DONE, TrialStatus.RUNNING),  # runner calls on_done
    (Told.PAUSE, False, True, StopOutcome.PAUSED, TrialStatus.PAUSED),
    (Told.PAUSE, True, True, StopOutcome.DONE, TrialStatus.RUNNING),
    (Told.KILL, False, True, StopOutcome.INTERRUPTED, TrialStatus.PAUSED),
    (Told.STOP, False, True, StopOutcome.DONE, TrialStatus.RUNNING),
    (None, False, True, StopOutcome.DONE, TrialStatus.RUNNING),
])
def test_what_a_stopped_trial_becomes(told, stopping_all, has_exploit, outcome, status):
    ctl, t = running()
    if told is not None:
        ctl.tell("a", told)
    assert ctl.on_stopped(t, stopping_all=stopping_all, has_exploit=has_exploit) == outcome
    assert t.status == status and ctl.told_to("a") is None
    if outcome == StopOutcome.DONE:
        ctl.on_done(t)
        assert t.status == TrialStatus.TERMINATED and not ctl.running


def test_failures_retry_up_to_max_failures_then_fail():
    ctl, t = running(Controller(max_failures=2, fail_fast=False))
    outcomes = []
    for _ in range(3):
        outcomes.append(ctl.on_error(t, lost=False))
        if t.status == TrialStatus.PENDING:
            assert "a" in ctl.pending
            ctl.on_launch(t)
    assert outcomes == [ErrorOutcome.RETRY, ErrorOutcome.RETRY, ErrorOutcome.FAILED]
    assert t.status == TrialStatus.ERROR and t.num_failures == 3


def test_unlimited_retries_fail_fast_and_a_worker_lost_while_stopping():
    ctl, t = running(Controller(max_failures=-1, fail_fast=False))
    assert [ctl.on_error(t, lost=True) for _ in range(5)] == [ErrorOutcome.RETRY] * 5
    ctl, t = running(Controller(max_failures=3, fail_fast=True))
    assert ctl.on_error(t, lost=False) == ErrorOutcome.FAILED
    ctl, t = running()
    ctl.tell("a", Told.STOP)
    assert ctl.on_error(t, lost=True) == ErrorOutcome.STOPPED
    assert t.num_failures == 0 and t.status == TrialStatus.RUNNING


def test_the_experiment_is_finished_when_nothing_runs_or_waits():
    ctl = Controller(max_failures=0, fail_fast=False)
    assert ctl.is_finished(searcher_done=True, stopping_all=False)
    assert not ctl.is_finished(searcher_done=False, stopping_all=False)
    ctl, t = running(ctl)
    assert not ctl.is_finished(searcher_done=True, stopping_all=True)  # wait for it to stop
    ctl.on_stopped(t, stopping_all=False)
    ctl.on_done(t)
    waiting = Trial(trial_id="b", trainable_name="f", config={})
    ctl.add(waiting, TrialStatus.PAUSED)
    assert not ctl.is_finished(searcher_done=True, stopping_all=False)
    assert ctl.is_finished(searcher_done=True, stopping_all=True)
    assert list(ctl.paused) == ["b"] and not ctl.pending and not ctl.running
