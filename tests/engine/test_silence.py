"""A running trial that goes silent (a hung worker): warned about once, failed after
``FailureConfig(silence_timeout_s=...)``. At event level: ticks carry the time, no processes.
"""

from __future__ import annotations

import logging

import pytest

from poptune.config import FailureConfig
from poptune.engine.events import ErrorEvent, SavedEvent, Tick
from poptune.engine.instructions import Kill, Launch, Record, WriteError
from poptune.engine.testing import make_controller, of, result
from poptune.engine.trial import TrialStatus
from poptune.exceptions import TuneConfigError

A = "t_00000"


def tick(ctl, now):
    return ctl.handle(Tick(now=now, wall=1000.0 + now))


def reports(ctl, *times):
    """``A`` reports once at each of ``times`` (each time a loop pass)."""
    for t in times:
        tick(ctl, t)
        ctl.handle(result(A, score=t))


def warnings_in(caplog):
    return [r.getMessage() for r in caplog.records if "has sent nothing" in r.getMessage()]


def test_a_trial_silent_ten_times_its_step_time_and_a_minute_is_warned_about_once(caplog):
    ctl = make_controller(num_samples=1)
    reports(ctl, 0.0, 1.0, 2.0, 3.0)  # one result a second: warned after 60 s of silence
    with caplog.at_level(logging.WARNING, logger="poptune"):
        tick(ctl, 3.0 + 59.0)
        assert warnings_in(caplog) == []
        tick(ctl, 3.0 + 61.0)
        assert len(warnings_in(caplog)) == 1
        out = tick(ctl, 3.0 + 500.0)
    (message,) = warnings_in(caplog)  # once per silent stretch
    assert f"trial f_{A} has sent nothing for 1m01s" in message
    assert "silence_timeout_s" in message  # what to do about it
    assert not of(out, Kill) and ctl.by_id[A].status == TrialStatus.RUNNING


def test_a_new_silent_stretch_after_a_result_is_warned_about_again(caplog):
    ctl = make_controller(num_samples=1)
    reports(ctl, 0.0, 1.0, 2.0)
    with caplog.at_level(logging.WARNING, logger="poptune"):
        tick(ctl, 100.0)
        ctl.handle(result(A))
        tick(ctl, 150.0)
        assert len(warnings_in(caplog)) == 1
        tick(ctl, 170.0)
    assert len(warnings_in(caplog)) == 2


def test_the_threshold_follows_the_trials_median_step_time(caplog):
    ctl = make_controller(num_samples=1)
    reports(ctl, 0.0, 30.0, 60.0, 90.0)  # 30 s steps: warned after 300 s
    with caplog.at_level(logging.WARNING, logger="poptune"):
        tick(ctl, 90.0 + 290.0)
        assert warnings_in(caplog) == []
        tick(ctl, 90.0 + 310.0)
    assert len(warnings_in(caplog)) == 1


def test_a_trial_that_never_reported_is_warned_about_after_five_minutes(caplog):
    ctl = make_controller(num_samples=1)
    tick(ctl, 0.0)
    with caplog.at_level(logging.WARNING, logger="poptune"):
        tick(ctl, 299.0)
        assert warnings_in(caplog) == []
        tick(ctl, 301.0)
    (message,) = warnings_in(caplog)
    assert "no step time of it is known yet" in message


def test_a_checkpoint_counts_as_hearing_from_the_trial(caplog):
    ctl = make_controller(num_samples=1, is_class=True, silence_timeout_s=10.0)
    reports(ctl, 0.0)
    tick(ctl, 8.0)
    ctl.handle(SavedEvent(A, "checkpoint_000000"))
    out = tick(ctl, 17.0)
    assert not of(out, Kill) and ctl.by_id[A].status == TrialStatus.RUNNING


def test_silence_timeout_kills_and_fails_the_trial_which_is_retried_within_max_failures():
    ctl = make_controller(num_samples=1, max_failures=1, silence_timeout_s=5.0)
    reports(ctl, 0.0, 1.0)
    assert not of(tick(ctl, 6.0), Kill)  # silent 5 s: not more than the timeout
    out = tick(ctl, 6.5)
    assert of(out, Kill) == [Kill(A)]
    (error,) = of(out, WriteError)
    assert "sent nothing for 5.5 s" in error.traceback
    assert "FailureConfig(silence_timeout_s=5)" in error.traceback
    status = [i.record.encode() for i in of(out, Record) if i.record.encode()["e"] == "status"]
    assert [(s["s"], s.get("failures")) for s in status] == [("PENDING", 1), ("RUNNING", None)]
    assert [i.trial.trial_id for i in of(out, Launch)] == [A]  # relaunched in the same pass
    trial = ctl.by_id[A]
    assert trial.status == TrialStatus.RUNNING and trial.last_heard == 6.5
    out = tick(ctl, 12.0)  # silent again, retries used up
    assert of(out, Kill) == [Kill(A)]
    assert trial.status == TrialStatus.ERROR and trial.num_failures == 2
    assert trial.error_msg.startswith("SilenceTimeout: trial f_t_00000 sent nothing")


def test_a_trial_that_reports_in_time_is_never_failed_for_silence():
    ctl = make_controller(num_samples=1, silence_timeout_s=5.0)
    reports(ctl, *[4.0 * i for i in range(20)])
    ctl.handle(ErrorEvent(A, "ValueError: boom\n"))  # an ordinary failure, counted once
    assert ctl.by_id[A].num_failures == 1


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan"), "10", True])
def test_silence_timeout_s_must_be_a_positive_number_of_seconds(bad):
    with pytest.raises(TuneConfigError) as info:
        FailureConfig(silence_timeout_s=bad)
    assert "`silence_timeout_s` must be None or a number of seconds > 0" in str(info.value)
    assert repr(bad) in str(info.value) or str(bad) in str(info.value)


# --- a real worker process stopped with SIGSTOP ---------------------------------------------
def _stops_itself_once(config):
    """Reports, then (first attempt only) stops its own worker process with SIGSTOP."""
    import os
    import signal

    import poptune as tune

    tune.report({"step": 1})
    if not os.path.exists(config["pid_file"]):
        with open(config["pid_file"], "w") as f:
            f.write(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGSTOP)
    tune.report({"step": 2})


@pytest.fixture
def stopped_pid(tmp_path):
    """The pid file of the worker that stops itself; the process is continued and killed at
    teardown if poptune left it behind (the test then fails on its own assertion)."""
    import os
    import signal

    path = tmp_path / "stopped.pid"
    yield path
    if path.exists():
        pid = int(path.read_text())
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break


@pytest.mark.timeout(120)
def test_a_stopped_worker_is_failed_after_the_silence_timeout_and_the_trial_retried(
        tmp_path, stopped_pid):
    import os

    import poptune as tune

    grid = tune.Tuner(
        _stops_itself_once, param_space={"pid_file": str(stopped_pid)},
        tune_config=tune.TuneConfig(backend="local"),
        run_config=tune.RunConfig(
            storage_path=str(tmp_path), verbose=0,
            # worker start-up counts as silence: spare retries for a very slow machine
            failure_config=tune.FailureConfig(max_failures=5, silence_timeout_s=3.0)),
    ).fit()
    (result,) = list(grid)
    trial_dir = result.path
    assert result.error is None and result.metrics["step"] == 2  # the retry finished
    assert stopped_pid.exists()  # the first attempt did stop itself
    with open(os.path.join(trial_dir, "error.txt")) as f:
        assert "SilenceTimeout" in f.read()  # what the attempts before it failed of
    with pytest.raises(ProcessLookupError):  # the stopped worker was killed and reaped
        os.kill(int(stopped_pid.read_text()), 0)
