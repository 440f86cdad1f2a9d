"""Launch ahead: a running trial's worker is sent the next pending trial, to start when the
running one returns, so it does not wait for the driver between trials.

Event level: the controller's decisions (who is sent ahead, when it becomes RUNNING, what
happens to it when the trial before it fails, is killed or the experiment stops).
"""

from __future__ import annotations

import pytest

from poptune.engine.controller import STOP_GRACE_S
from poptune.engine.events import Abort, DoneEvent, ErrorEvent, StoppedEvent, TakenBack, Tick
from poptune.engine.instructions import Answer, Kill, Launch, Notify, Record, Reply, TakeBack
from poptune.engine.testing import make_controller, of, result
from poptune.engine.trial import TrialStatus
from poptune.schedulers import TrialScheduler
from poptune.search.searcher import Searcher
from poptune.stopper import Stopper

A, B, C, D, E, F = (f"t_{i:05d}" for i in range(6))


def tick(ctl, now=0.0):
    return ctl.handle(Tick(now=now, wall=1000.0 + now))


def launches(out):
    return [(i.trial.trial_id, i.after) for i in of(out, Launch)]


def statuses(out):
    return [(r.record.trial_id, r.record.status) for r in of(out, Record)
            if type(r.record).__name__ == "StatusChanged"]


def ahead_controller(num_samples=6, **kwargs):
    kwargs.setdefault("max_concurrent", 2)
    ctl = make_controller(num_samples=num_samples, unanswered_results=True, **kwargs)
    ctl.allow_launch_ahead()
    assert ctl.launch_ahead
    return ctl


def test_each_running_trial_is_sent_the_next_pending_one_which_stays_pending():
    ctl = ahead_controller()
    out = tick(ctl)
    assert launches(out) == [(A, None), (B, None), (C, A), (D, B)]
    assert statuses(out) == [(A, "RUNNING"), (B, "RUNNING")]  # C and D only wait
    assert ctl.by_id[C].status == ctl.by_id[D].status == TrialStatus.PENDING
    assert C not in ctl.pending and D not in ctl.pending  # no other slot takes them
    assert [n.kwargs["trial"].trial_id for n in of(out, Notify)
            if n.hook == "on_trial_start"] == [A, B]
    assert ctl.pool.cpu_free == 0  # they hold no resources until they start
    assert launches(tick(ctl, 1.0)) == []  # sent once


def test_a_trial_that_returned_hands_over_to_the_one_sent_ahead_in_the_same_decision():
    ctl = ahead_controller()
    tick(ctl)
    ctl.handle(result(A, score=1.0))
    out = ctl.handle(DoneEvent(A, continued=C))
    assert statuses(out) == [(A, "TERMINATED"), (C, "RUNNING")]
    assert launches(out) == [(E, C)]  # C runs already: the next one is sent after it
    hooks = [(n.hook, n.kwargs["trial"].trial_id) for n in of(out, Notify)
             if n.hook in ("on_trial_complete", "on_trial_start")]
    assert hooks == [("on_trial_complete", A), ("on_trial_start", C)]  # Ray's order
    assert ctl.by_id[C].status == TrialStatus.RUNNING
    assert ctl.pool.cpu_free == 0  # C took A's CPU


def test_a_trial_the_worker_did_not_start_waits_again_first_in_line():
    ctl = ahead_controller()
    tick(ctl)
    ctl.handle(result(A, score=1.0))
    out = ctl.handle(DoneEvent(A))  # the driver saw A end before the send reached it
    assert statuses(out) == [(A, "TERMINATED")]
    assert launches(out) == []
    assert next(iter(ctl.pending)) == C
    assert launches(tick(ctl, 1.0))[0] == (C, None)  # launched as usual, FIFO order kept


def test_after_a_failure_the_worker_drops_it_and_it_runs_next_elsewhere():
    ctl = ahead_controller(max_failures=0)
    tick(ctl)
    out = ctl.handle(ErrorEvent(A, "Traceback ...\nValueError: boom\n"))
    assert statuses(out) == [(A, "ERROR")]
    assert [k.trial_id for k in of(out, Kill)] == [C]  # harmless if it never started
    assert next(iter(ctl.pending)) == C and ctl.by_id[C].status == TrialStatus.PENDING
    assert launches(tick(ctl, 1.0))[0] == (C, None)


def test_a_trial_stopped_by_its_worker_does_not_hand_over():
    ctl = ahead_controller()
    tick(ctl)
    out = ctl.handle(StoppedEvent(A))
    assert (C, "RUNNING") not in statuses(out)
    assert next(iter(ctl.pending)) == C


def test_a_trial_killed_by_the_driver_takes_the_one_sent_ahead_down_with_it():
    ctl = ahead_controller(silence_timeout_s=5.0)
    tick(ctl)
    ctl.handle(result(A, score=1.0))
    ctl.handle(result(B, score=1.0))
    out = tick(ctl, 10.0)  # both silent past the timeout: killed, failed
    steps = [(type(i).__name__, i.trial_id if isinstance(i, Kill) else i.trial.trial_id)
             for i in out if isinstance(i, (Kill, Launch))]
    # its worker may have started it: killed too, then launched afresh as a pending trial
    assert steps.index(("Kill", A)) < steps.index(("Kill", C)) < steps.index(("Launch", C))
    assert steps.index(("Kill", B)) < steps.index(("Kill", D)) < steps.index(("Launch", D))
    assert (C, None) in launches(out) and ctl.by_id[C].status == TrialStatus.RUNNING


def test_stopping_everything_takes_back_what_was_sent_ahead():
    class StopAll(Stopper):
        stops_on_results = False  # a time budget, say: results need no answer
        go = False

        def __call__(self, trial_id, result):
            return False

        def stop_all(self):
            return self.go

    stopper = StopAll()
    ctl = ahead_controller(stopper=stopper)
    tick(ctl)
    stopper.go = True
    out = tick(ctl, 1.0)
    assert [t.trial_id for t in of(out, TakeBack)] == [C, D]
    assert sorted(r.trial_id for r in of(out, Reply) if r.answer == Answer.STOP) == [A, B]
    # D was still in its slot: taken back, it never runs and is no trial of the experiment
    assert ctl.handle(TakenBack(D)) == []
    assert D not in [t.trial_id for t in ctl.trials]
    # C's worker had claimed it (A had just returned): it starts, and is stopped at once
    out = ctl.handle(DoneEvent(A, continued=C))
    assert statuses(out) == [(A, "TERMINATED"), (C, "RUNNING")]
    assert (C, Answer.STOP) in [(r.trial_id, r.answer) for r in of(out, Reply)]
    assert launches(out) == []
    ctl.handle(DoneEvent(B))
    ctl.handle(StoppedEvent(C))
    assert ctl.finished
    assert {t.trial_id: t.status for t in ctl.trials} == {
        A: TrialStatus.TERMINATED, B: TrialStatus.TERMINATED, C: TrialStatus.TERMINATED}


def test_a_free_slot_with_nothing_else_to_run_takes_back_a_trial_sent_ahead():
    """A straggler must not hold back a trial sent ahead to its worker while another slot
    is free (Ray's asynchronous FIFO: a free slot takes the next trial at once)."""
    ctl = ahead_controller(num_samples=3)
    assert launches(tick(ctl)) == [(A, None), (B, None), (C, A)]
    ctl.handle(result(B, score=1.0))
    ctl.handle(DoneEvent(B))  # B's slot is free; only C, waiting behind A, is left
    out = tick(ctl, 1.0)
    assert [t.trial_id for t in of(out, TakeBack)] == [C]
    assert tick(ctl, 2.0) == []  # asked once
    out = ctl.handle(TakenBack(C))  # it was still in A's worker's slot
    assert launches(out) == [(C, None)] and statuses(out) == [(C, "RUNNING")]
    assert ctl._ahead == {}


def test_a_trial_claimed_before_it_could_be_taken_back_runs_where_it_was_sent():
    ctl = ahead_controller(num_samples=3)
    tick(ctl)
    ctl.handle(DoneEvent(B))
    assert [t.trial_id for t in of(tick(ctl, 1.0), TakeBack)] == [C]
    # the backend said no (A's worker had claimed C): A's end says C runs there
    out = ctl.handle(DoneEvent(A, continued=C))
    assert statuses(out) == [(A, "TERMINATED"), (C, "RUNNING")] and launches(out) == []
    ctl.handle(DoneEvent(C))
    assert ctl.finished


def test_a_trial_killed_after_the_stop_grace_drops_what_was_sent_ahead():
    class StopAll(Stopper):
        stops_on_results = False  # a time budget, say: results need no answer

        def __call__(self, trial_id, result):
            return False

        go = False

        def stop_all(self):
            return self.go

    stopper = StopAll()
    ctl = ahead_controller(stopper=stopper)
    tick(ctl)  # starts A, B, sends C, D ahead
    stopper.go = True
    tick(ctl, 1.0)  # told to stop; they do not
    out = tick(ctl, STOP_GRACE_S + 2.0)
    kills = [k.trial_id for k in of(out, Kill)]
    assert set(kills) == {A, B, C, D}
    assert ctl.finished
    assert sorted(t.trial_id for t in ctl.trials) == [A, B]


def test_an_abort_kills_what_was_sent_ahead_too():
    ctl = ahead_controller()
    tick(ctl)
    out = ctl.handle(Abort())
    assert {k.trial_id for k in of(out, Kill)} == {A, B, C, D}


def test_a_retried_trial_runs_before_the_fresh_ones_made_early_and_is_not_sent_ahead():
    ctl = ahead_controller(num_samples=3, max_failures=1, max_concurrent=1)
    assert launches(tick(ctl)) == [(A, None), (B, A)]  # C made too, to be sent next
    ctl.handle(ErrorEvent(A, "Traceback ...\nValueError: boom\n"))  # A will retry
    assert list(ctl.pending) == [A, B, C]  # the oldest first, as Ray's FIFO
    out = tick(ctl, 1.0)
    # A runs again; B, next, is sent ahead after it
    assert launches(out) == [(A, None), (B, A)]


def test_only_fresh_trials_are_sent_ahead():
    ctl = ahead_controller(num_samples=2, max_failures=1, max_concurrent=2)
    tick(ctl)  # A and B run
    ctl.handle(ErrorEvent(A, "Traceback ...\nValueError: boom\n"))  # A will retry
    ctl.handle(result(B, score=1.0))
    out = tick(ctl, 1.0)
    assert launches(out) == [(A, None)]  # launched again, not sent ahead after B
    ctl.handle(result(A, score=1.0))
    # a retried trial waiting first in line is never sent ahead (it may restore)
    ctl2 = ahead_controller(num_samples=3, max_failures=1, max_concurrent=1)
    tick(ctl2)
    ctl2.handle(ErrorEvent(A, "Traceback ...\nValueError: boom\n"))
    ctl2.pending = {B: ctl2.by_id[B], A: ctl2.by_id[A], C: ctl2.by_id[C]}
    assert launches(tick(ctl2, 1.0)) == [(B, None)]  # A, next, is a retry: none sent


class _Choosy(TrialScheduler):
    def choose_trial_to_run(self, tune_controller):
        return super().choose_trial_to_run(tune_controller)


class _Learner(Searcher):
    """A searcher that learns from results: asked early, it would suggest otherwise."""

    def suggest(self, trial_id):
        return {"x": 1}


def _learning_search():
    from poptune.search.search_generator import SearchGenerator

    algo = SearchGenerator(_Learner())
    algo.set_search_properties(None, None, {"x": 1})
    algo.setup_experiment({"x": 1}, 4, 0)
    return algo


@pytest.mark.parametrize("case", ["answered", "class", "scheduler", "searcher"])
def test_not_launched_ahead_where_it_could_be_told(case):
    kwargs = {"class": {"is_class": True}, "scheduler": {"scheduler": _Choosy()},
              "searcher": {"searcher": _learning_search()}}.get(case, {})
    ctl = make_controller(num_samples=4, unanswered_results=case != "answered",
                          max_concurrent=2, **kwargs)
    ctl.allow_launch_ahead()
    assert not ctl.launch_ahead
    assert all(after is None for _, after in launches(tick(ctl)))
