"""The Controller: feed it events, compare the instructions that come back.

No backend, no files, no clock: every decision of the engine is checked here at event level.
"""

from __future__ import annotations

import logging

import pytest

from poptune.engine.controller import STOP_GRACE_S, InvalidTransition, Told
from poptune.engine.events import (
    Abort,
    DoneEvent,
    ErrorEvent,
    ResourcesOffered,
    SavedEvent,
    SaveRequested,
    StoppedEvent,
    Tick,
    WorkerLostEvent,
)
from poptune.engine.instructions import (
    Answer,
    CloseLog,
    DeleteCheckpoint,
    Kill,
    Launch,
    LogResult,
    Notify,
    PolicyLog,
    Raise,
    Record,
    Reply,
    RestoreLog,
    RewriteLog,
    WriteError,
)
from poptune.engine.testing import make_controller, of, result
from poptune.engine.trial import TrialStatus
from poptune.search.sample import grid_search
from poptune.exceptions import TrialError, TuneConfigError
from poptune.schedulers import (
    Exploit,
    Outcome,
    ResizeTrial,
    SchedulerDecision,
    StopTrial,
    TrialScheduler,
)
from poptune.stopper import CombinedStopper, NoopStopper, Stopper, TimeoutStopper

A, B = "t_00000", "t_00001"


def tick(ctl, now=0.0):
    return ctl.handle(Tick(now=now, wall=1000.0 + now))


def records(out, kind=None):
    """The journal records as they are written (a config object where the runner pickles)."""
    found = []
    for i in of(out, Record):
        rec = i.record.encode()
        if i.config is not None:
            rec["config"] = i.config
        if kind is None or rec["e"] == kind:
            found.append(rec)
    return found


def answers(out):
    return [(r.trial_id, r.answer) for r in of(out, Reply)]


class Decide(TrialScheduler):
    """Answers each result with the next decision from a script (CONTINUE when empty)."""

    def __init__(self, *decisions, save_at=None, log_config=False):
        self.decisions = list(decisions)
        self.save_at = save_at
        self.log_config = log_config
        self.others, self.seen, self.removed = [], [], []

    def on_trial_result(self, trial, result):
        self.seen.append((trial.trial_id, result["training_iteration"]))
        decision = self.decisions.pop(0) if self.decisions else SchedulerDecision.CONTINUE
        if self.others:  # decisions about other trials go out with this one
            actions, self.others = tuple(self.others), []
            return Outcome(decision, actions)
        return decision

    def on_trial_remove(self, trial):
        self.removed.append(trial.trial_id)

    def should_checkpoint(self, trial, result):
        return result["training_iteration"] == self.save_at


class RecordingSearcher:
    """Wraps a real generator and records what it is told."""

    def __init__(self, inner):
        self.inner, self.results, self.completed = inner, [], []
        self.metric = None

    def next_trial(self, trial_id):
        return self.inner.next_trial(trial_id)

    def is_finished(self):
        return self.inner.is_finished()

    def on_trial_result(self, trial_id, result):
        self.results.append((trial_id, result["training_iteration"]))

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.completed.append((trial_id, error))


def searcher(n):
    from poptune.search.basic_variant import BasicVariantGenerator

    gen = BasicVariantGenerator()
    gen.set_search_properties(None, None, {"x": 1})
    gen.setup_experiment({"x": 1}, n, 0)
    return RecordingSearcher(gen)


# --------------------------------------------------------------------------------------------
# creating and launching
def test_a_tick_creates_trials_and_launches_as_many_as_the_pool_holds():
    ctl = make_controller(num_samples=3, cpus=2)
    out = tick(ctl)
    assert [r["id"] for r in records(out, "trial")] == ["t_00000", "t_00001", "t_00002"]
    assert [i.trial.trial_id for i in of(out, Launch)] == [A, B]
    assert [r["s"] for r in records(out, "status")] == ["RUNNING", "RUNNING"]
    assert list(ctl.pending) == ["t_00002"] and list(ctl.running) == [A, B]
    assert ctl.searcher_done and not ctl.finished


def test_max_concurrent_trials_limits_creation_and_launches():
    ctl = make_controller(num_samples=5, cpus=4, max_concurrent=1)
    out = tick(ctl)
    assert len(of(out, Launch)) == 1 and len(records(out, "trial")) == 1


def test_the_experiment_finishes_when_nothing_runs_or_waits():
    ctl = make_controller(num_samples=1)
    tick(ctl)
    assert not ctl.finished
    out = ctl.handle(DoneEvent(A))
    assert records(out, "status") == [{"e": "status", "t": A, "s": "TERMINATED"}]
    assert ctl.finished


# --------------------------------------------------------------------------------------------
# a cluster's resources: nodes join while trials wait (as on Ray Tune, nothing fails at once)
def cluster(cpu=0.0, gpu=0):
    from poptune.engine.resources import ResourcePool

    return ResourcePool(cpu=cpu, gpu=gpu, where="the Ray cluster", growable=True)


def test_trials_wait_for_a_cluster_to_offer_cpus_and_run_as_nodes_join():
    ctl = make_controller(num_samples=4, pool=cluster(cpu=0))
    assert of(tick(ctl), Launch) == [] and len(ctl.pending) == 4
    ctl.handle(ResourcesOffered({"cpu": 1.0, "gpu": 0.0, "where": "the Ray cluster"}))
    assert [i.trial.trial_id for i in of(tick(ctl, 1.0), Launch)] == [A]
    ctl.handle(ResourcesOffered({"cpu": 3.0, "gpu": 0.0}))  # two more CPUs: two more slots
    assert [i.trial.trial_id for i in of(tick(ctl, 2.0), Launch)] == [B, "t_00002"]
    assert ctl.worker_count() == 3


def waits(caplog):
    """The warnings about trials waiting for resources."""
    return [r.getMessage() for r in caplog.records if "cluster is autoscaling" in r.getMessage()]


def test_a_warning_says_what_trials_wait_for_after_the_threshold_and_again_after_as_long(
        caplog, monkeypatch):
    monkeypatch.setenv("TUNE_WARN_INSUFFICENT_RESOURCE_THRESHOLD_S_AUTOSCALER", "30")
    ctl = make_controller(num_samples=2, pool=cluster(cpu=2),
                          resources=lambda config: {"cpu": 4.0, "gpu": 0.0})
    with caplog.at_level(logging.WARNING, logger="poptune"):
        tick(ctl, 0.0)
        assert ctl.next_deadline() == 30.0
        tick(ctl, 29.0)
        assert not caplog.records
        tick(ctl, 30.0)
        warned = waits(caplog)
        assert len(warned) == 1 and warned[0].startswith(
            "Ignore this message if the cluster is autoscaling. No trial is running and no new "
            "trial has been started within the last 30 seconds: 2 trial(s) wait")
        assert "You asked for {'cpu': 4.0} per trial, but the Ray cluster only " \
               "has 2 CPUs and 0 GPUs" in warned[0]
        assert ctl.next_deadline() == 60.0
        tick(ctl, 59.0)
        assert len(waits(caplog)) == 1
        tick(ctl, 60.0)
        assert len(waits(caplog)) == 2  # again after as long
        ctl.handle(ResourcesOffered({"cpu": 4.0, "gpu": 0.0}))
        assert [i.trial.trial_id for i in of(tick(ctl, 61.0), Launch)] == [A]
        tick(ctl, 200.0)
        assert len(waits(caplog)) == 2  # one runs: nothing to say


def test_no_resource_warning_while_a_trial_runs_or_one_waiting_could_fit(caplog):
    ctl = make_controller(num_samples=3, pool=cluster(cpu=1))
    with caplog.at_level(logging.WARNING, logger="poptune"):
        tick(ctl, 0.0)  # one runs, two wait for its CPU: normal
        tick(ctl, 1000.0)
        ctl.handle(DoneEvent(A))
        ctl.handle(ResourcesOffered({"cpu": 0.0, "gpu": 0.0}))  # the node left
        tick(ctl, 1001.0)  # nothing runs, nothing fits: since now
        tick(ctl, 1060.0)
        assert not waits(caplog)
        tick(ctl, 1061.0)
    assert len(waits(caplog)) == 1


def test_a_machines_pool_never_waits_nor_warns():
    """The local backend's pool does not grow: trials that do not fit fail at once when
    they are made (the runner's check), and the controller never reads offers for it."""
    ctl = make_controller(num_samples=1, cpus=2, resources=lambda config: {"cpu": 4.0})
    assert not ctl.pool.growable
    tick(ctl, 0.0)
    tick(ctl, 1000.0)
    assert ctl.next_deadline() is None and ctl._starved_since is None


def node_offer(*cpus):
    """What the Ray backend offers for nodes of these CPUs (``n0``, ``n1``, ...)."""
    from poptune.engine.resources import cluster_offer

    return cluster_offer([{"name": f"n{i}", "cpu": c, "gpu": 0} for i, c in enumerate(cpus)],
                         "the Ray cluster")


def node_cluster(*cpus):
    from poptune.engine.resources import ResourcePool

    return ResourcePool(**node_offer(*cpus), growable=True)


def test_trials_launch_only_as_far_as_one_node_holds_each():
    """Two nodes of 3 CPUs, trials of 2: two run at once, not the three the total holds
    (the third's Ray actor stayed pending, and the run failed after 120 s)."""
    ctl = make_controller(num_samples=4, pool=node_cluster(3, 3),
                          resources=lambda config: {"cpu": 2.0, "gpu": 0.0})
    assert [i.trial.trial_id for i in of(tick(ctl), Launch)] == [A, B]
    assert len(ctl.pending) == 2 and ctl.pool.cpu_free == 2.0  # one CPU left on each node
    assert of(tick(ctl, 1.0), Launch) == []
    ctl.handle(DoneEvent(A))
    assert [i.trial.trial_id for i in of(tick(ctl, 2.0), Launch)] == ["t_00002"]
    ctl.handle(ResourcesOffered(node_offer(3, 3, 2)))  # a third node joins
    assert [i.trial.trial_id for i in of(tick(ctl, 3.0), Launch)] == ["t_00003"]


def test_a_request_no_node_holds_is_warned_about_naming_the_largest_node(caplog, monkeypatch):
    """3 CPUs on two nodes of 2: the cluster's total holds it, no node does. It waits, as
    one larger than the total does, with Ray's warning, which names the largest node; a
    node that holds it joins and it runs."""
    monkeypatch.setenv("TUNE_WARN_INSUFFICENT_RESOURCE_THRESHOLD_S_AUTOSCALER", "30")
    ctl = make_controller(num_samples=1, pool=node_cluster(2, 2),
                          resources=lambda config: {"cpu": 3.0, "gpu": 0.0})
    with caplog.at_level(logging.WARNING, logger="poptune"):
        tick(ctl, 0.0)
        assert ctl.next_deadline() == 30.0
        tick(ctl, 30.0)
        ctl.handle(ResourcesOffered(node_offer(2, 2)))  # nothing changed
        tick(ctl, 60.0)
    warned = waits(caplog)
    assert len(warned) == 2 and "1 trial(s) wait for resources no single node of the " \
        "Ray cluster offers. You asked for {'cpu': 3.0} per trial, but the Ray cluster only " \
        "has 4 CPUs and 0 GPUs on 2 node(s), the largest (n0: 2 CPUs, 0 GPUs). Stop" \
        in warned[0], warned
    ctl.handle(ResourcesOffered(node_offer(2, 2, 4)))
    assert [i.trial.trial_id for i in of(tick(ctl, 61.0), Launch)] == [A]


def test_a_request_larger_than_the_cluster_names_its_nodes_too(caplog, monkeypatch):
    monkeypatch.setenv("TUNE_WARN_INSUFFICENT_RESOURCE_THRESHOLD_S_AUTOSCALER", "1")
    ctl = make_controller(num_samples=1, pool=node_cluster(),
                          resources=lambda config: {"cpu": 8.0, "gpu": 0.0})
    with caplog.at_level(logging.WARNING, logger="poptune"):
        tick(ctl, 0.0)
        tick(ctl, 1.0)
        ctl.handle(ResourcesOffered(node_offer(2, 2)))
        tick(ctl, 2.0)
    warned = waits(caplog)
    assert "wait for resources the Ray cluster does not offer" in warned[0]
    assert "only has 0 CPUs and 0 GPUs on no node." in warned[0]  # no node yet
    assert "only has 4 CPUs and 0 GPUs on 2 node(s), the largest (n0: 2 CPUs" in warned[1]


# --------------------------------------------------------------------------------------------
# results: journal first, then the answer
def test_a_result_is_journaled_logged_and_told_before_the_answer():
    s = searcher(1)
    ctl = make_controller(searcher=s)
    tick(ctl)
    out = ctl.handle(result(A, score=1.0))
    assert [type(i) for i in out] == [Record, Notify, LogResult, Reply]
    assert records(out)[0]["r"]["score"] == 1.0 and "config" not in records(out)[0]["r"]
    assert answers(out) == [(A, Answer.CONTINUE)]
    assert s.results == [(A, 1)]


def test_the_result_that_stops_a_trial_says_done_and_is_hidden_from_the_searcher():
    s = searcher(1)
    ctl = make_controller(searcher=s, scheduler=Decide(SchedulerDecision.STOP))
    tick(ctl)
    out = ctl.handle(result(A, score=1.0))
    assert answers(out) == [(A, Answer.STOP)]
    assert records(out, "result")[0]["r"]["done"] is True
    assert s.results == []  # as in Ray: the searcher hears the completion, not this result
    ctl.handle(StoppedEvent(A))
    assert s.completed == [(A, False)] and ctl.by_id[A].status == TrialStatus.TERMINATED


def test_a_trial_told_to_stop_gets_the_same_answer_again_without_asking_anyone():
    sched = Decide(SchedulerDecision.STOP)
    ctl = make_controller(scheduler=sched)
    tick(ctl)
    ctl.handle(result(A, score=1.0))
    out = ctl.handle(result(A, score=2.0))  # it reported once more before stopping
    assert answers(out) == [(A, Answer.STOP)] and len(sched.seen) == 1
    assert len(records(out, "result")) == 1


def test_the_strict_metric_check_ends_the_run_after_the_commit():
    ctl = make_controller(metric="loss", mode="min", strict_metrics=True)
    tick(ctl)
    out = ctl.handle(result(A, acc=0.5))
    err = of(out, Raise)[0]
    assert err.after_commit and isinstance(err.error, TuneConfigError)
    assert "`loss`" in str(err.error) and "acc" in str(err.error)
    assert answers(out) == [(A, Answer.STOP)]
    assert records(out, "result")  # the row itself is kept


def test_the_strict_metric_check_can_be_turned_off():
    ctl = make_controller(metric="loss", mode="min", strict_metrics=False)
    tick(ctl)
    assert not of(ctl.handle(result(A, acc=0.5)), Raise)


class StopAt(Stopper):
    def __init__(self, it=None, everything=False):
        self.it, self.everything = it, everything

    def __call__(self, trial_id, result):
        return result["training_iteration"] == self.it

    def stop_all(self):
        return self.everything


def test_the_stopper_stops_a_trial_before_the_scheduler_is_asked():
    sched = Decide()
    ctl = make_controller(scheduler=sched, stopper=StopAt(it=1))
    tick(ctl)
    assert answers(ctl.handle(result(A, score=1.0))) == [(A, Answer.STOP)]
    assert sched.seen == []


def test_an_exception_inside_a_decision_still_journals_the_row_and_its_checkpoint():
    class Boom(Stopper):
        def __call__(self, trial_id, result):
            raise KeyboardInterrupt

        def stop_all(self):
            return False

    ctl = make_controller(stopper=Boom())
    tick(ctl)
    out = ctl.handle(result(A, score=1.0, checkpoint="checkpoint_000000"))
    assert [r["e"] for r in records(out)] == ["ckpt", "result"]
    assert isinstance(out[-1], Raise) and not out[-1].after_commit
    assert isinstance(out[-1].error, KeyboardInterrupt)


# --------------------------------------------------------------------------------------------
# pause
def test_pause_needs_a_checkpoint_for_a_function_trainable(caplog):
    ctl = make_controller(scheduler=Decide(SchedulerDecision.PAUSE, SchedulerDecision.PAUSE))
    tick(ctl)
    with caplog.at_level(logging.WARNING, logger="poptune"):
        assert answers(ctl.handle(result(A, score=1.0))) == [(A, Answer.CONTINUE)]
    assert "pausing it would restart it from scratch" in caplog.text
    out = ctl.handle(result(A, score=2.0, checkpoint="checkpoint_000000"))
    assert answers(out) == [(A, Answer.PAUSE)]
    out = ctl.handle(StoppedEvent(A))
    assert ctl.by_id[A].status == TrialStatus.PAUSED
    assert records(out, "status") == [{"e": "status", "t": A, "s": "PAUSED"}]
    out = tick(ctl)  # relaunched from its checkpoint, where it left off
    launch = of(out, Launch)[0]
    assert launch.restore_path == "/exp/t_00000/checkpoint_000000"
    assert (launch.start_iteration, launch.next_checkpoint_index) == (2, 1)
    assert [n.hook for n in of(out, Notify)] == ["on_trial_start", "on_trial_restore"]


def test_a_class_trainable_can_always_pause():
    ctl = make_controller(scheduler=Decide(SchedulerDecision.PAUSE), is_class=True)
    tick(ctl)
    assert answers(ctl.handle(result(A, score=1.0))) == [(A, Answer.PAUSE)]


def test_a_pause_decision_is_journaled_with_the_result_it_was_made_on():
    """A restore of a driver that ended before the trial stopped pauses it too (the
    scheduler's journaled state counts it paused)."""
    ctl = make_controller(scheduler=Decide(SchedulerDecision.PAUSE), is_class=True)
    tick(ctl)
    out = ctl.handle(result(A, score=1.0))
    assert [r["e"] for r in records(out) if r["e"] in ("pause", "result")] == ["pause", "result"]
    assert records(out, "pause") == [{"e": "pause", "t": A}]


# --------------------------------------------------------------------------------------------
# save, then decide
def test_a_class_trainable_saves_before_the_scheduler_decides():
    sched = Decide(SchedulerDecision.STOP, save_at=1)
    ctl = make_controller(scheduler=sched, is_class=True)
    tick(ctl)
    out = ctl.handle(result(A, score=1.0))
    assert answers(out) == [(A, Answer.SAVE)] and sched.seen == []
    assert records(out, "result")  # logged now, decided once saved
    out = ctl.handle(SavedEvent(A, "checkpoint_000000"))
    assert [r["e"] for r in records(out)] == ["ckpt"]
    assert answers(out) == [(A, Answer.STOP)] and sched.seen == [(A, 1)]


def test_a_callback_may_ask_a_class_trainable_for_a_checkpoint():
    ctl = make_controller(is_class=True)
    tick(ctl)
    out = ctl.handle(result(A, score=1.0))
    reply = of(out, Reply)[0]
    assert reply.answer == Answer.CONTINUE and reply.watch is not None  # the runner watches
    assert answers(ctl.handle(SaveRequested(A))) == [(A, Answer.SAVE)]
    out = ctl.handle(SavedEvent(A, "checkpoint_000000"))
    assert answers(out) == [(A, Answer.CONTINUE)]  # the decision stands


# --------------------------------------------------------------------------------------------
# checkpoints
def test_old_checkpoints_are_deleted_after_their_record_but_a_pinned_one_is_kept():
    from poptune.config import CheckpointConfig

    ctl = make_controller(checkpoint_config=CheckpointConfig(num_to_keep=1))
    tick(ctl)
    ctl.handle(result(A, checkpoint="checkpoint_000000"))
    out = ctl.handle(result(A, checkpoint="checkpoint_000001"))
    assert records(out, "ckpt_del") == [{"e": "ckpt_del", "t": A, "name": "checkpoint_000000"}]
    assert of(out, DeleteCheckpoint) == [DeleteCheckpoint("/exp/t_00000/checkpoint_000000")]
    ctl._pin("/exp/t_00000/checkpoint_000001")  # a donor checkpoint some trial will restore
    ctl.handle(result(A, checkpoint="checkpoint_000002"))
    out = ctl.handle(result(A, checkpoint="checkpoint_000003"))
    assert "/exp/t_00000/checkpoint_000001" not in [d.path for d in of(out, DeleteCheckpoint)]


# --------------------------------------------------------------------------------------------
# exploits
def _exploit(target=A, donor=B, it=1):
    return Exploit(trial_id=target, donor_trial_id=donor,
                   checkpoint_path=f"/exp/{donor}/checkpoint_00000{it - 1}",
                   config={"x": 99}, donor_result={"training_iteration": it})


def test_an_exploit_of_the_reporting_trial_restarts_it_from_the_donor():
    from poptune.config import CheckpointConfig

    ex = _exploit()
    sched = Decide(SchedulerDecision.CONTINUE, ex, log_config=True)
    ctl = make_controller(num_samples=2, scheduler=sched,
                          checkpoint_config=CheckpointConfig(num_to_keep=1))
    tick(ctl)
    ctl.handle(result(B, checkpoint="checkpoint_000000"))
    out = ctl.handle(result(A, score=0.0))
    assert answers(out) == [(A, Answer.STOP)]
    assert of(out, PolicyLog)[0].donor_trial_id == B
    assert ctl.pinned == {ex.checkpoint_path: 1}
    # the donor moves on; its old checkpoint must survive: A restores from it
    out = ctl.handle(result(B, checkpoint="checkpoint_000001"))
    assert not of(out, DeleteCheckpoint)
    out = ctl.handle(StoppedEvent(A))
    cfg = records(out, "config")[0]
    assert cfg["donor"] == B and cfg["restore"] == {"path": ex.checkpoint_path, "it": 1,
                                                     "tt": 1.0}
    assert cfg["config"] == {"x": 99}
    assert ctl.by_id[A].status == TrialStatus.PAUSED and ctl.by_id[A].config == {"x": 99}
    launch = of(tick(ctl), Launch)[0]
    assert (launch.trial.trial_id, launch.restore_path, launch.start_iteration) == (
        A, ex.checkpoint_path, 1)


def test_an_exploit_decided_elsewhere_waits_for_the_running_trial_to_report():
    sched = Decide()
    ctl = make_controller(num_samples=2, scheduler=sched)
    tick(ctl)
    sched.others.append(_exploit())  # decided while B reported (synchronous PBT)
    ctl.handle(result(B, checkpoint="checkpoint_000000"))
    assert ctl.state[A].told == Told.EXPLOIT
    assert answers(ctl.handle(result(A, score=0.0))) == [(A, Answer.STOP)]
    out = ctl.handle(StoppedEvent(A))
    assert records(out, "config")[0]["donor"] == B


def test_the_stoppers_stop_wins_over_a_waiting_exploit_and_releases_its_pin():
    sched = Decide()
    ctl = make_controller(num_samples=2, scheduler=sched, stopper=StopAt(it=1))
    tick(ctl)
    sched.others.append(_exploit(it=1))
    ctl.handle(result(B, iteration=5, checkpoint="checkpoint_000000"))
    assert ctl.pinned
    assert answers(ctl.handle(result(A))) == [(A, Answer.STOP)]
    out = ctl.handle(StoppedEvent(A))
    assert not records(out, "config") and ctl.by_id[A].status == TrialStatus.TERMINATED
    assert ctl.pinned == {}


def test_an_exploit_of_a_paused_trial_is_carried_out_at_once():
    sched = Decide(SchedulerDecision.PAUSE)
    ctl = make_controller(num_samples=2, cpus=2, scheduler=sched, is_class=True)
    tick(ctl)
    ctl.handle(result(A))
    ctl.handle(StoppedEvent(A))
    sched.others.append(_exploit())
    out = ctl.handle(result(B, checkpoint="checkpoint_000000"))
    assert records(out, "config")[0]["t"] == A and ctl.by_id[A].restore_path


def test_the_scheduler_may_stop_a_waiting_trial():
    sched = Decide(SchedulerDecision.PAUSE)
    ctl = make_controller(num_samples=2, scheduler=sched, is_class=True)
    tick(ctl)
    ctl.handle(result(A))
    ctl.handle(StoppedEvent(A))
    sched.others.append(StopTrial(A))
    out = ctl.handle(result(B))
    assert records(out, "status") == [{"e": "status", "t": A, "s": "TERMINATED"}]
    assert sched.removed == [A]  # as in Ray: a waiting trial ended is removed, not completed


# --------------------------------------------------------------------------------------------
# failures
def test_a_failure_is_retried_from_the_latest_checkpoint_and_later_rows_rolled_back():
    ctl = make_controller(max_failures=1)
    tick(ctl)
    ctl.handle(result(A, checkpoint="checkpoint_000000"))
    ctl.handle(result(A))
    ctl.handle(result(A))
    out = ctl.handle(ErrorEvent(A, "Traceback\nValueError: boom\n"))
    assert of(out, WriteError)[0].traceback.endswith("boom\n")
    assert of(out, RewriteLog)[0].rows == 1
    assert records(out, "rollback") == [{"e": "rollback", "t": A, "rows": 1}]
    st = records(out, "status")[0]
    assert (st["s"], st["failures"], st["msg"]) == ("PENDING", 1, "ValueError: boom")
    launch = of(tick(ctl), Launch)[0]
    assert launch.restore_path == "/exp/t_00000/checkpoint_000000"
    out = ctl.handle(ErrorEvent(A, "ValueError: again\n"))
    assert records(out, "status")[0]["s"] == "ERROR" and of(out, CloseLog)
    assert ctl.by_id[A].status == TrialStatus.ERROR and ctl.by_id[A].num_failures == 2


def test_unlimited_retries():
    ctl = make_controller(max_failures=-1)
    for _ in range(5):
        tick(ctl)
        ctl.handle(WorkerLostEvent(A, "killed"))
        assert ctl.by_id[A].status == TrialStatus.PENDING


def test_a_worker_lost_while_stopping_is_not_a_failure():
    ctl = make_controller(scheduler=Decide(SchedulerDecision.STOP))
    tick(ctl)
    ctl.handle(result(A))
    out = ctl.handle(WorkerLostEvent(A, "killed"))
    assert not of(out, WriteError) and ctl.by_id[A].status == TrialStatus.TERMINATED
    assert ctl.by_id[A].num_failures == 0


def test_fail_fast_stops_everything_and_raise_ends_the_run_with_the_error():
    ctl = make_controller(num_samples=3, cpus=2, fail_fast=True)
    tick(ctl)
    ctl.handle(result(B))
    out = ctl.handle(ErrorEvent(A, "ValueError: boom\n"))
    assert ctl.stopping_all and of(out, Kill) == [Kill(B)]
    assert "t_00002" not in ctl.by_id or ctl.by_id["t_00002"] not in ctl.trials
    assert not of(out, Raise)
    ctl = make_controller(num_samples=1, fail_fast="raise")
    tick(ctl)
    out = ctl.handle(ErrorEvent(A, "ValueError: boom\n"))
    err = of(out, Raise)[0]
    assert err.after_commit and isinstance(err.error, TrialError)


# --------------------------------------------------------------------------------------------
# stopping everything, the stop grace, interrupts
def test_stop_all_tells_running_trials_to_stop_and_ends_waiting_ones():
    stopper = StopAt()
    sched = Decide(SchedulerDecision.PAUSE)
    ctl = make_controller(num_samples=3, cpus=2, scheduler=sched, stopper=stopper,
                          is_class=True)
    tick(ctl)
    ctl.handle(result(A))
    ctl.handle(StoppedEvent(A))  # A is PAUSED with a row; t_00002 launches in its place
    tick(ctl)
    stopper.everything = True
    out = tick(ctl, now=1.0)
    assert records(out, "status") == [{"e": "status", "t": A, "s": "TERMINATED"}]
    assert not of(out, Launch) and ctl.state[B].told == Told.STOP
    assert answers(ctl.handle(result(B))) == [(B, Answer.STOP)]


def test_a_trial_that_ignores_a_stop_is_killed_after_the_grace_time():
    ctl = make_controller(num_samples=1, stopper=StopAt())
    tick(ctl)
    ctl.stopper.everything = True
    tick(ctl, now=1.0)
    assert not of(tick(ctl, now=1.0 + STOP_GRACE_S), Kill)
    out = tick(ctl, now=1.1 + STOP_GRACE_S)
    assert of(out, Kill) == [Kill(A)]
    assert ctl.by_id[A].status == TrialStatus.TERMINATED and ctl.finished


def test_abort_kills_running_trials_and_leaves_them_unfinished():
    ctl = make_controller(num_samples=2)
    tick(ctl)
    out = ctl.handle(Abort())
    assert of(out, Kill) == [Kill(A), Kill(B)] and not records(out)
    ctl.handle(StoppedEvent(A))
    assert ctl.by_id[A].status == TrialStatus.PAUSED  # resumed by a restore


# --------------------------------------------------------------------------------------------
# the life cycle itself
def test_an_illegal_transition_names_the_trial_and_its_story():
    ctl = make_controller()
    tick(ctl)
    ctl.handle(DoneEvent(A))
    with pytest.raises(InvalidTransition) as info:
        ctl._set(ctl.by_id[A], TrialStatus.RUNNING, "launched")
    msg = str(info.value)
    assert A in msg and "TERMINATED -> RUNNING" in msg
    assert "created -> PENDING; launched -> RUNNING; done -> TERMINATED" in msg


def test_events_for_unknown_trials_are_ignored():
    ctl = make_controller()
    assert ctl.handle(DoneEvent("nope")) == []


# --------------------------------------------------------------------------------------------
# the scheduler contract: values and Outcomes, read-only trials
def test_on_trial_add_returns_values_the_controller_writes_into_a_copy_of_the_config():
    class Fill(TrialScheduler):
        def on_trial_add(self, trial):
            return {"lr": 0.5, "model/width": 8}

    ctl = make_controller(scheduler=Fill(), param_space={"x": 1, "model": {"depth": 2}})
    out = tick(ctl)
    trial = ctl.by_id[A]
    assert trial.config == {"x": 1, "model": {"depth": 2, "width": 8}, "lr": 0.5}
    assert trial.evaluated_params["lr"] == 0.5
    assert records(out, "trial")[0]["config"] == trial.config  # journaled as filled


def test_a_scheduler_cannot_write_a_trial():
    class Writes(TrialScheduler):
        def on_trial_result(self, trial, result):
            trial.config = {"x": 2}
            return SchedulerDecision.CONTINUE

    ctl = make_controller(scheduler=Writes())
    tick(ctl)
    out = ctl.handle(result(A))
    assert isinstance(out[-1], Raise) and "read-only" in str(out[-1].error)
    assert ctl.by_id[A].config == {"x": 1}


def test_a_resize_of_a_running_trial_waits_until_it_has_paused():
    class Resize(TrialScheduler):
        def on_trial_result(self, trial, result):
            return Outcome(SchedulerDecision.PAUSE, (ResizeTrial(trial.trial_id, {"cpu": 2}),))

    ctl = make_controller(scheduler=Resize(), is_class=True)
    tick(ctl)
    out = ctl.handle(result(A))
    assert answers(out) == [(A, Answer.PAUSE)] and not records(out, "resources")
    out = ctl.handle(StoppedEvent(A))
    assert records(out, "resources") == [{"e": "resources", "t": A, "r": {"cpu": 2.0, "gpu": 0.0}}]
    assert ctl.by_id[A].resources["cpu"] == 2.0


def test_choose_trial_to_run_may_decide_about_other_trials():
    class Choose(TrialScheduler):
        def choose_trial_to_run(self, candidates):
            first = candidates[0]
            return Outcome(first, tuple(StopTrial(t.trial_id) for t in candidates[1:]
                                        if t.status == TrialStatus.PAUSED))

    sched = Choose()
    ctl = make_controller(num_samples=1, scheduler=sched)
    out = tick(ctl)
    assert [i.trial.trial_id for i in of(out, Launch)] == [A]


def test_choose_trial_to_run_is_not_asked_while_no_slot_is_free():
    """Every tick asked a scheduler with its own choice, also with the pool full (a PBT
    population's scan per loop pass); the choice was then dropped."""
    class Counting(TrialScheduler):
        asked = 0

        def choose_trial_to_run(self, candidates):
            self.asked += 1
            return super().choose_trial_to_run(candidates)

    sched = Counting()
    ctl = make_controller(num_samples=3, scheduler=sched, cpus=1)
    assert [i.trial.trial_id for i in of(tick(ctl), Launch)] == [A]
    assert sched.asked == 1
    for now in (1.0, 2.0, 3.0):
        tick(ctl, now)
    assert sched.asked == 1
    ctl.handle(DoneEvent(A))
    assert [i.trial.trial_id for i in of(tick(ctl, 4.0), Launch)] == [B]
    assert sched.asked == 2


def test_stop_all_removes_waiting_trials_from_the_scheduler_as_ray_does():
    stopper = StopAt()
    sched = Decide(SchedulerDecision.PAUSE)
    s = searcher(2)
    ctl = make_controller(scheduler=sched, stopper=stopper, searcher=s, is_class=True, cpus=1)
    tick(ctl)
    ctl.handle(result(A))
    ctl.handle(StoppedEvent(A))
    tick(ctl)  # B runs now, A waits
    stopper.everything = True
    out = tick(ctl, now=1.0)
    assert sched.removed == [A] and (A, False) in s.completed
    assert [n.kwargs["trial"].trial_id for n in of(out, Notify)
            if n.hook == "on_trial_complete"] == [A]


def test_an_action_about_the_reporting_trial_itself_wins_over_the_value():
    """Synchronous PBT: the last member to reach the barrier may be in the bottom quantile;
    its exploit comes among the Outcome's actions while the value is PAUSE."""

    class Barrier(TrialScheduler):
        def on_trial_result(self, trial, result):
            return Outcome(SchedulerDecision.PAUSE, (_exploit(target=trial.trial_id),))

    ctl = make_controller(num_samples=2, scheduler=Barrier(), is_class=True)
    tick(ctl)
    ctl.handle(result(B, checkpoint="checkpoint_000000"))  # B exploits itself from itself
    out = ctl.handle(result(A))
    assert answers(out) == [(A, Answer.STOP)] and ctl.state[A].told == Told.EXPLOIT
    out = ctl.handle(StoppedEvent(A))
    assert records(out, "config")[0]["donor"] == B


# --------------------------------------------------------------------------------------------
# restore: what each journaled trial becomes
def _history(tid, status, rows, checkpoints=(), deleted=(), restore_meta=None, done=False):
    from poptune.engine.experiment import TrialHistory
    from poptune.engine.trial import Trial

    t = Trial(trial_id=tid, trainable_name="f", config={"x": 1}, local_path=f"/exp/{tid}",
              storage_dir=f"/exp/{tid}", status=status)
    rs = [{"training_iteration": i + 1} for i in range(rows)]
    if rs and done:
        rs[-1]["done"] = True
    t.last_result = rs[-1] if rs else {}
    return TrialHistory(t, rs, list(checkpoints), set(deleted), restore_meta,
                        len(checkpoints))


class _Exhausted:
    """A searcher with nothing more to suggest (a restored experiment's)."""

    metric = None

    def next_trial(self, trial_id):
        return None

    def is_finished(self):
        return True

    def on_trial_result(self, trial_id, result):
        pass

    def on_trial_complete(self, trial_id, result=None, error=False):
        pass


def _restored(histories, **flags):
    ctl = make_controller(searcher=_Exhausted())
    out = ctl.restore(histories, **flags)
    return ctl, out


def test_restore_rolls_an_unfinished_trial_back_to_its_latest_surviving_checkpoint():
    h = _history(A, TrialStatus.RUNNING, 5,
                 checkpoints=[("checkpoint_000000", {}, 2), ("checkpoint_000001", {}, 4)],
                 deleted={"checkpoint_000001"})
    ctl, out = _restored([h])
    assert records(out, "rollback") == [{"e": "rollback", "t": A, "rows": 2}]
    # interrupted while RUNNING: it waits PENDING, ahead of new trials (Ray requeues it so)
    assert records(out, "status") == [{"e": "status", "t": A, "s": "PENDING"}]
    assert [i.rows for i in of(out, RestoreLog)] == [h.rows] and len(h.rows) == 2
    assert ctl.by_id[A].checkpoint_path == "/exp/t_00000/checkpoint_000000"
    launch = of(tick(ctl), Launch)[0]
    assert launch.restore_path == "/exp/t_00000/checkpoint_000000"


def _waiting(ctl):
    return list(ctl.pending), list(ctl.paused)


def test_restore_queues_interrupted_trials_first_then_in_the_order_they_began_to_wait():
    """As in the run that was interrupted: the trials that were running go on first (in the
    order they were launched), then the others in the order they began to wait; a trial
    its scheduler paused, or was pausing, stays PAUSED (HyperBand, PBT, the median rule)."""
    ckpt = [("checkpoint_000000", {}, 1)]
    ids = [f"t_{i:05d}" for i in range(6)]
    hs = [_history(ids[0], TrialStatus.RUNNING, 2, checkpoints=ckpt),   # launched 2nd
          _history(ids[1], TrialStatus.PENDING, 0),                     # never started
          _history(ids[2], TrialStatus.PAUSED, 2, checkpoints=ckpt),    # paused 2nd
          _history(ids[3], TrialStatus.PAUSED, 2, checkpoints=ckpt),    # paused 1st
          _history(ids[4], TrialStatus.RUNNING, 2, checkpoints=ckpt),   # launched 1st
          _history(ids[5], TrialStatus.RUNNING, 2, checkpoints=ckpt)]   # being paused, 3rd
    for h, seq in zip(hs, [10, 2, 8, 5, 4, 12]):
        h.status_seq = seq
    hs[5].pausing = True
    ctl, out = _restored(hs)
    assert _waiting(ctl) == ([ids[4], ids[0], ids[1]], [ids[3], ids[2], ids[5]])
    assert {r["t"]: r["s"] for r in records(out, "status")} == {
        ids[0]: "PENDING", ids[1]: "PENDING", ids[2]: "PAUSED", ids[3]: "PAUSED",
        ids[4]: "PENDING", ids[5]: "PAUSED"}
    assert [i.trial.trial_id for i in of(tick(ctl), Launch)] == [ids[4], ids[0]]  # 2 slots


def test_a_restored_interrupted_trial_is_counted_before_the_searcher_is_asked():
    """A waiting interrupted trial fills the room for new trials: a model-based searcher is
    not asked for a new trial while it waits (its suggestions would miss its result)."""
    asked = []

    class Recording(_Exhausted):
        def next_trial(self, trial_id):
            asked.append(trial_id)
            return None

        def is_finished(self):
            return False

    h = _history(A, TrialStatus.RUNNING, 2, checkpoints=[("checkpoint_000000", {}, 2)])
    ctl = make_controller(searcher=Recording(), cpus=1)
    ctl.restore([h])
    launch = of(tick(ctl), Launch)
    assert [i.trial.trial_id for i in launch] == [A] and asked == []


def test_a_trial_a_restore_ends_is_completed_for_the_scheduler_and_searcher():
    """Its last row said done (the stop was decided) but the driver ended before the trial
    did: the searcher and scheduler hear of its end as in a run that ended it, once."""
    completed = []

    class Listening(_Exhausted):
        def on_trial_complete(self, trial_id, result=None, error=False):
            completed.append((trial_id, (result or {}).get("training_iteration"), error))

    done = _history(A, TrialStatus.RUNNING, 3, done=True)
    waiting = _history(B, TrialStatus.PENDING, 0)
    ctl = make_controller(searcher=Listening())
    out = ctl.restore([done, waiting], resume_unfinished=False)
    assert completed == [(A, 3, False), (B, None, False)]
    assert records(out, "status") == [{"e": "status", "t": A, "s": "TERMINATED"},
                                      {"e": "status", "t": B, "s": "TERMINATED"}]
    assert not of(out, Notify)  # the callbacks are not set up yet (Ray tells them nothing)
    assert not of(tick(ctl), Launch) and ctl.finished


def test_restore_never_reruns_a_finished_trial_and_leaves_errored_ones_by_default():
    done = _history(A, TrialStatus.RUNNING, 3, done=True)  # its last row said done
    failed = _history(B, TrialStatus.ERROR, 2)
    ctl, out = _restored([done, failed])
    assert ctl.by_id[A].status == TrialStatus.TERMINATED
    assert ctl.by_id[B].status == TrialStatus.ERROR
    assert records(out, "status") == [{"e": "status", "t": A, "s": "TERMINATED"}]
    assert not of(tick(ctl), Launch) and ctl.finished


def test_restore_resumes_or_restarts_errored_trials_when_asked():
    h = _history(A, TrialStatus.ERROR, 3, checkpoints=[("checkpoint_000000", {}, 1)])
    ctl, out = _restored([h], resume_errored=True)
    assert records(out, "rollback") == [{"e": "rollback", "t": A, "rows": 1}]
    assert ctl.by_id[A].status == TrialStatus.PENDING
    h = _history(A, TrialStatus.ERROR, 3, checkpoints=[("checkpoint_000000", {}, 1)])
    ctl, out = _restored([h], restart_errored=True)
    assert records(out, "rollback") == [{"e": "rollback", "t": A, "rows": 0}]
    assert ctl.by_id[A].checkpoint_path is None and not ctl.checkpoints_of(A)
    h = _history(A, TrialStatus.ERROR, 3, checkpoints=[("checkpoint_000000", {}, 1)])
    ctl, out = _restored([h], resume_errored=True, restart_errored=True)  # as Ray: resumed
    assert records(out, "rollback") == [{"e": "rollback", "t": A, "rows": 1}]


def test_restore_starts_a_pending_exploit_from_the_donors_checkpoint():
    meta = {"path": "/exp/t_00001/checkpoint_000003", "it": 4, "tt": 4.0}
    h = _history(A, TrialStatus.PAUSED, 5, checkpoints=[("checkpoint_000000", {}, 2)],
                 restore_meta=meta)
    ctl, out = _restored([h])
    assert not records(out, "rollback") and ctl.pinned == {meta["path"]: 1}
    launch = of(tick(ctl), Launch)[0]
    assert (launch.restore_path, launch.start_iteration) == (meta["path"], 4)


def test_fifo_starts_the_first_waiting_trial_that_fits_as_rays_fifo():
    """A probe: trials alternating {cpu 1, gpu 1} / {cpu 1} on 3 CPUs and 1 GPU ran 2 at a
    time (the second GPU trial held back the CPU one behind it); Ray starts 3."""
    ctl = make_controller(num_samples=1, cpus=3, gpus=1,
                          param_space={"i": grid_search(list(range(6)))},
                          resources=lambda c: {"cpu": 1.0, "gpu": float(c["i"] % 2 == 0)})
    launched = [i.trial.config["i"] for i in of(tick(ctl), Launch)]
    assert launched == [0, 1, 3]  # 2 (a GPU trial) waits; 3 (CPU only) goes past it
    ctl.handle(DoneEvent(ctl.trials[0].trial_id))  # the GPU is free again
    assert [i.trial.config["i"] for i in of(tick(ctl, now=1.0), Launch)] == [2]


def test_an_endless_search_creates_trials_only_for_free_slots():
    """num_samples=-1 with a time budget: no thousand trial directories written ahead."""
    ctl = make_controller(num_samples=-1, cpus=2, param_space={"x": 1})
    out = tick(ctl)
    assert len(records(out, "trial")) == 2 and len(of(out, Launch)) == 2
    assert not records(tick(ctl, now=1.0), "trial")  # both slots busy: nothing ahead
    ctl.handle(DoneEvent(A))
    assert len(records(tick(ctl, now=3.0), "trial")) == 1  # one slot freed, one new trial


# --------------------------------------------------------------------------------------------
# fail_fast ends the experiment at once (Ray 2.60's TuneController)
def test_fail_fast_kills_the_other_running_trials_at_once_and_ends_them_terminated():
    ctl = make_controller(num_samples=3, cpus=2, fail_fast=True)
    tick(ctl)
    out = ctl.handle(ErrorEvent(A, "ValueError: boom\n"))
    assert of(out, Kill) == [Kill(B)]  # no stop request, no grace
    assert ctl.by_id[A].status == TrialStatus.ERROR
    assert ctl.by_id[B].status == TrialStatus.TERMINATED
    assert {"e": "status", "t": B, "s": "TERMINATED"} in records(out, "status")
    assert ctl.finished and not of(tick(ctl, now=1.0), Launch)


def test_fail_fast_records_nothing_a_killed_trial_reports_afterwards():
    ctl = make_controller(num_samples=2, cpus=2, fail_fast=True)
    tick(ctl)
    ctl.handle(ErrorEvent(A, "ValueError: boom\n"))
    late = ctl.handle(result(B, score=1.0))  # was already on its way when B was killed
    assert late == [] and ctl.state[B].rows == 0
    assert ctl.handle(DoneEvent(B)) == [] and ctl.by_id[B].status == TrialStatus.TERMINATED


def test_fail_fast_raise_kills_the_others_too_and_raises_after_the_commit():
    ctl = make_controller(num_samples=2, cpus=2, fail_fast="raise")
    tick(ctl)
    out = ctl.handle(ErrorEvent(A, "ValueError: boom\n"))
    assert of(out, Kill) == [Kill(B)] and out[-1] is of(out, Raise)[0]
    assert of(out, Raise)[0].after_commit


# --------------------------------------------------------------------------------------------
# results nothing can answer but "continue" go unanswered (on a backend that allows it)
class EndAll(NoopStopper):
    """Reads no result; stops everything when told to (a time budget, say)."""

    everything = False

    def stop_all(self):
        return self.everything


def test_results_go_unanswered_when_nothing_can_answer_but_continue():
    s = searcher(1)
    ctl = make_controller(searcher=s, unanswered_results=True)
    assert not ctl.answers_results
    tick(ctl)
    out = ctl.handle(result(A, score=1.0))
    assert [type(i) for i in out] == [Record, Notify, LogResult]  # journaled, no answer
    assert s.results == [(A, 1)]
    assert records(ctl.handle(DoneEvent(A)), "status") == [
        {"e": "status", "t": A, "s": "TERMINATED"}]


@pytest.mark.parametrize("kwargs", [
    {},  # a backend whose trials wait for answers (the simulated one)
    {"unanswered_results": True, "scheduler": Decide()},
    {"unanswered_results": True, "stopper": StopAt(it=3)},
    {"unanswered_results": True, "stopper": CombinedStopper(NoopStopper(), StopAt(it=3))},
    {"unanswered_results": True, "is_class": True},  # it may be asked to save
], ids=["backend", "scheduler", "stopper", "combined-stopper", "class"])
def test_results_are_answered_when_something_may_decide_on_them(kwargs):
    ctl = make_controller(**kwargs)
    assert ctl.answers_results
    tick(ctl)
    assert answers(ctl.handle(result(A, score=1.0))) == [(A, Answer.CONTINUE)]


def test_a_time_budget_reads_no_result():
    budget = CombinedStopper(NoopStopper(), TimeoutStopper(60))
    assert not budget.stops_on_results
    assert not make_controller(stopper=budget, unanswered_results=True).answers_results


def test_stop_all_tells_an_unanswered_trial_at_once_and_not_again():
    stopper = EndAll()
    ctl = make_controller(num_samples=3, cpus=2, stopper=stopper, unanswered_results=True)
    tick(ctl)
    stopper.everything = True
    out = tick(ctl, now=1.0)
    assert answers(out) == [(A, Answer.STOP), (B, Answer.STOP)]  # sent now, not on a result
    out = ctl.handle(result(A))  # reported before it saw the stop: kept, not answered again
    assert answers(out) == [] and len(records(out, "result")) == 1
    ctl.handle(StoppedEvent(A))
    ctl.handle(DoneEvent(B))  # returned before it saw the stop
    assert {t.status for t in ctl.trials} == {TrialStatus.TERMINATED} and ctl.finished


def test_a_schedulers_stop_of_an_unanswered_trial_is_sent_at_once():
    class StopOthers(TrialScheduler):  # decides about running trials, never on results
        def choose_trial_to_run(self, candidates):
            running = [t for t in ctl.trials if t.status == TrialStatus.RUNNING]
            return Outcome(candidates[0], tuple(StopTrial(t.trial_id) for t in running))

    ctl = make_controller(num_samples=3, cpus=2, scheduler=StopOthers(),
                          unanswered_results=True)
    assert not ctl.answers_results
    tick(ctl)  # A and B launch; t_00002 waits
    out = ctl.handle(DoneEvent(A))
    out += tick(ctl, now=1.0)  # t_00002 takes A's slot; the scheduler stops B
    assert answers(out) == [(B, Answer.STOP)] and ctl.state[B].told == Told.STOP


def test_stop_all_is_decided_on_the_result_that_made_it_true():
    """Ray checks ``stop_all`` after every event: the trial whose result made it true is told
    to stop in the answer to that result, and the others at once (not at the next tick)."""

    class AfterTwoResults(Stopper):
        def __init__(self):
            self.seen = 0

        def __call__(self, trial_id, result):
            self.seen += 1
            return False

        def stop_all(self):
            return self.seen >= 2

    ctl = make_controller(num_samples=3, cpus=2, stopper=AfterTwoResults())
    tick(ctl)
    assert answers(ctl.handle(result(A))) == [(A, Answer.CONTINUE)]
    out = ctl.handle(result(B))
    assert answers(out) == [(B, Answer.STOP)]
    assert ctl.stopping_all and ctl.state[A].told == Told.STOP
    assert answers(ctl.handle(result(A))) == [(A, Answer.STOP)]
    assert "t_00002" not in ctl.by_id or ctl.by_id["t_00002"].status != TrialStatus.RUNNING


# -- next_deadline: when a tick would decide something without an event ---------------------
def test_next_deadline_is_none_without_any_time_based_decision():
    ctl = make_controller(num_samples=2)
    tick(ctl, 0.0)
    ctl.handle(result(A))
    assert ctl.next_deadline() == 0.0 + 60.0  # the silence floor: nothing is decided earlier
    ctl = make_controller(num_samples=1)
    assert ctl.next_deadline() is None  # nothing runs


def test_next_deadline_is_the_time_budgets_end_and_a_tick_then_stops_everything():
    from poptune.clock import SimulatedClock

    clock = SimulatedClock()
    ctl = make_controller(num_samples=1, stopper=CombinedStopper(NoopStopper(),
                                                                 TimeoutStopper(30, clock=clock)))
    tick(ctl, 0.0)
    assert ctl.next_deadline() == 30.0
    clock.advance_to(12.5)
    tick(ctl, 12.5)
    assert ctl.next_deadline() == 30.0
    clock.advance_to(30.0)
    tick(ctl, 30.0)
    assert ctl.stopping_all
    assert ctl.next_deadline() == 30.0 + STOP_GRACE_S  # the running trial's grace


def test_next_deadline_is_the_stop_grace_and_never_a_time_already_ticked():
    from poptune.clock import SimulatedClock

    clock = SimulatedClock()
    ctl = make_controller(num_samples=1, stopper=TimeoutStopper(5, clock=clock))
    tick(ctl, 0.0)
    clock.advance_to(5.0)
    tick(ctl, 5.0)
    assert ctl.next_deadline() == 15.0
    clock.advance_to(15.0)
    assert not [i for i in tick(ctl, 15.0) if isinstance(i, Kill)]  # grace is "more than 10 s"
    later = ctl.next_deadline()
    assert 15.0 < later < 15.0 + 1e-9
    assert [i.trial_id for i in tick(ctl, later) if isinstance(i, Kill)] == [A]
    assert ctl.next_deadline() is None


def test_next_deadline_follows_the_silence_warning_and_timeout(caplog):
    ctl = make_controller(num_samples=1, silence_timeout_s=500.0)
    tick(ctl, 0.0)
    assert ctl.next_deadline() == 60.0  # no warning can come before the floor
    tick(ctl, 60.0)
    assert ctl.next_deadline() == 300.0  # no step time known: warned after 300 s
    tick(ctl, 300.0)
    assert 300.0 < ctl.next_deadline() < 300.0 + 1e-9  # warned once silent *more* than that
    with caplog.at_level(logging.WARNING, logger="poptune"):
        tick(ctl, ctl.next_deadline())
    assert "has sent nothing for 5m00s" in caplog.text
    assert ctl.next_deadline() == 500.0  # warned for this stretch: the timeout is next
    ctl.handle(result(A))  # heard at 300+: intervals known, 10x the step time from now
    now = ctl.now
    assert ctl.next_deadline() == min(now + 500.0, now + max(10 * (now - 0.0), 60.0))


def test_a_result_that_stops_its_trial_and_all_stops_the_others_at_once():
    """ExperimentPlateauStopper's kind: the result that makes ``stop_all`` true also stops its
    own trial; the others are told at once too, not at the next tick."""

    class PlateauLike(Stopper):
        def __init__(self):
            self.seen = 0

        def __call__(self, trial_id, result):
            self.seen += 1
            return self.stop_all()

        def stop_all(self):
            return self.seen >= 2

    ctl = make_controller(num_samples=3, cpus=2, stopper=PlateauLike())
    tick(ctl)
    assert answers(ctl.handle(result(A))) == [(A, Answer.CONTINUE)]
    assert answers(ctl.handle(result(B))) == [(B, Answer.STOP)]
    assert ctl.stopping_all and ctl.state[A].told == Told.STOP
