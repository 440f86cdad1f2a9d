"""One driver per experiment: the local lock, the remote lease, and Tuner.fit() holding them."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, Iterator

import fsspec
import pandas as pd
import pytest

import poptune as tune
from poptune.exceptions import ExperimentLockedError, TuneError
from poptune.storage.lock import (
    HOLDER_FILE,
    LEASE_FILE,
    LocalLock,
    RemoteLease,
    acquire_experiment,
)
from poptune.storage.remote import RemoteStorage
from poptune.tuner import Tuner
from tests._modules import source_module

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SLOW_MODULE = textwrap.dedent('''
    import time
    import poptune as tune

    def train(config):
        for step in range(config["steps"]):
            time.sleep(config["sleep"])
            tune.report({"step": step})
''')

DRIVER = textwrap.dedent('''
    import sys
    sys.path.insert(0, {moddir!r})
    import poptune as tune
    import slowmod
    tune.Tuner(
        slowmod.train,
        param_space={{"steps": {steps}, "sleep": {sleep}}},
        run_config=tune.RunConfig(name="exp", storage_path={storage!r}, verbose=0),
    ).fit()
''')


# -- helpers -------------------------------------------------------------------------------
@pytest.fixture
def slowmod(tmp_path: Any) -> Iterator[Any]:
    with source_module(tmp_path, "slowmod", SLOW_MODULE) as mod:
        yield mod


@pytest.fixture
def drivers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Driver subprocesses, each in its own process group: teardown kills the group, so
    neither a driver nor its worker processes survive the test."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def _start_driver(tmp_path: Any, procs: list[Any], steps: int, sleep: float) -> Any:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(moddir=str(tmp_path), storage=str(tmp_path / "results"),
                                    steps=steps, sleep=sleep))
    proc = subprocess.Popen([sys.executable, str(script)],
                            env=dict(os.environ, PYTHONPATH=ROOT), start_new_session=True)
    procs.append(proc)
    return proc


def _wait_for_results(proc: Any, journal: str, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(journal, "rb") as f:
                if sum(1 for line in f if line.startswith(b'{"e":"result"')) >= n:
                    return
        except FileNotFoundError:
            pass
        assert proc.poll() is None, "the driver ended before the test could reach it"
        assert time.monotonic() < deadline, "the driver reported nothing"
        time.sleep(0.01)


def _only_trial_dir(exp_dir: str) -> str:
    dirs = [d for d in os.listdir(exp_dir) if os.path.isdir(os.path.join(exp_dir, d))]
    assert len(dirs) == 1, dirs
    return os.path.join(exp_dir, dirs[0])


# -- local lock ----------------------------------------------------------------------------
def test_a_second_local_lock_fails_naming_the_holder(tmp_path: Any) -> None:
    with LocalLock(str(tmp_path)) as first:
        with pytest.raises(ExperimentLockedError) as info:
            LocalLock(str(tmp_path))
    err = info.value
    assert isinstance(err, TuneError)
    assert err.holder == first.holder and err.path == str(tmp_path)
    msg = str(err)
    for part in (str(tmp_path), f"pid {os.getpid()}", socket.gethostname(),
                 first.holder.since, "Tuner.restore"):
        assert part in msg


def test_local_lock_writes_its_holder_and_removes_it_on_release(tmp_path: Any) -> None:
    lock = LocalLock(str(tmp_path))
    holder = json.loads((tmp_path / HOLDER_FILE).read_text())
    assert holder["pid"] == os.getpid() and holder["since"].endswith("Z")
    lock.release()
    lock.release()  # idempotent
    assert not (tmp_path / HOLDER_FILE).exists()
    LocalLock(str(tmp_path)).release()  # free again


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path: Any, caplog: Any) -> None:
    code = ("import sys, time; from poptune.storage.lock import LocalLock; "
            "LocalLock(sys.argv[1]); print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)],
                            env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"locked\n"
        with pytest.raises(ExperimentLockedError, match=f"pid {proc.pid} "):
            LocalLock(str(tmp_path))
    finally:
        proc.kill()
        proc.wait(timeout=10)
    with caplog.at_level(logging.WARNING, logger="poptune"):
        lock = LocalLock(str(tmp_path))
    assert f"pid {proc.pid}" in caplog.text and "takes it over" in caplog.text
    assert json.loads((tmp_path / HOLDER_FILE).read_text())["pid"] == os.getpid()
    lock.release()


# -- remote lease --------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def memfs() -> Iterator[tuple[Any, str]]:
    fs = fsspec.filesystem("memory")
    root = f"/lease-{time.time_ns()}"
    fs.mkdir(root)
    yield fs, root
    fs.rm(root, recursive=True)


def _lease(fs: Any, root: str, clock: Any, **kw: Any) -> RemoteLease:
    kw.setdefault("renew_every_s", 3600.0)  # no heartbeat unless a test wants one
    return RemoteLease(fs, f"{root}/{LEASE_FILE}", f"memory:/{root}", ttl_s=30.0, settle_s=0,
                       clock=clock, **kw)


def test_a_live_lease_blocks_a_second_holder(memfs: Any) -> None:
    fs, root = memfs
    clock = FakeClock()
    first = _lease(fs, root, clock)
    clock.now += 29
    with pytest.raises(ExperimentLockedError, match=f"pid {os.getpid()} .*lease valid until"):
        _lease(fs, root, clock)
    first.check()  # the failed attempt did not disturb the holder
    first.release()


def test_an_expired_lease_is_taken_over_and_the_old_holder_learns_it(memfs: Any,
                                                                       caplog: Any) -> None:
    fs, root = memfs
    clock = FakeClock()
    old = _lease(fs, root, clock)
    clock.now += 31  # the old holder stalled past its ttl
    with caplog.at_level(logging.WARNING, logger="poptune"):
        new = _lease(fs, root, clock)
    assert "expired" in caplog.text and "takes it over" in caplog.text
    assert json.loads(fs.cat_file(f"{root}/{LEASE_FILE}"))["token"] == new.token
    old.renew()  # its next heartbeat finds another token and does not overwrite it
    with pytest.raises(ExperimentLockedError, match="taken over by"):
        old.check()
    assert json.loads(fs.cat_file(f"{root}/{LEASE_FILE}"))["token"] == new.token
    old.release()  # a lost lease is not deleted on release
    assert fs.exists(f"{root}/{LEASE_FILE}")
    new.check()
    new.release()
    assert not fs.exists(f"{root}/{LEASE_FILE}")


def test_the_heartbeat_renews_the_lease_until_release(memfs: Any) -> None:
    fs, root = memfs
    clock = FakeClock()
    lease = _lease(fs, root, clock, renew_every_s=0.01)
    path = f"{root}/{LEASE_FILE}"
    first = json.loads(fs.cat_file(path))["expires_at"]
    clock.now += 20
    deadline = time.monotonic() + 30
    while json.loads(fs.cat_file(path))["expires_at"] == first:
        assert time.monotonic() < deadline, "the heartbeat never renewed the lease"
        time.sleep(0.01)
    assert json.loads(fs.cat_file(path))["expires_at"] == clock.now + 30
    clock.now += 25  # 45 s after acquiring: alive only thanks to the renewal
    with pytest.raises(ExperimentLockedError):
        _lease(fs, root, clock)
    lease.release()
    assert lease._thread is not None and not lease._thread.is_alive()
    assert not fs.exists(path)


def test_a_deleted_lease_and_an_unrenewable_one_are_reported_by_check(memfs: Any) -> None:
    fs, root = memfs
    clock = FakeClock()
    lease = _lease(fs, root, clock)
    fs.rm(f"{root}/{LEASE_FILE}")
    lease.renew()
    with pytest.raises(ExperimentLockedError, match="no longer owns it"):
        lease.check()
    lease.release()

    other = _lease(fs, root, clock)
    broken = fs.cat_file

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise OSError("storage down")

    fs.cat_file = failing
    try:
        other.renew()
        other.check()  # a failed renewal within the ttl is only logged
        clock.now += 31
        other.renew()
        with pytest.raises(ExperimentLockedError, match="could not be renewed"):
            other.check()
    finally:
        fs.cat_file = broken
    other.release()


def test_two_drivers_racing_for_a_free_lease_do_not_both_win(memfs: Any) -> None:
    fs, root = memfs
    clock = FakeClock()
    real_pipe = fs.pipe_file
    rival: dict[str, Any] = {}

    def pipe_then_rival_writes(path: str, data: bytes, **kw: Any) -> None:
        real_pipe(path, data, **kw)
        if not rival:  # another driver's write lands between our write and our read-back
            rival["data"] = json.dumps({"holder": {"host": "other", "pid": 7, "since": "x",
                                                  "version": "0"},
                                        "token": "rival", "expires_at": clock.now + 30})
            real_pipe(path, rival["data"].encode())

    fs.pipe_file = pipe_then_rival_writes
    try:
        with pytest.raises(ExperimentLockedError, match="pid 7 on host 'other'"):
            _lease(fs, root, clock)
    finally:
        fs.pipe_file = real_pipe
    assert json.loads(fs.cat_file(f"{root}/{LEASE_FILE}"))["token"] == "rival"


def test_acquire_experiment_picks_a_lease_for_remote_storage(tmp_path: Any, memfs: Any,
                                                            monkeypatch: Any) -> None:
    fs, root = memfs
    monkeypatch.setenv("POPTUNE_LEASE_TTL_S", "12")
    remote = RemoteStorage(f"memory://{root}/exp", fs)
    owner = acquire_experiment(str(tmp_path), remote, settle_s=0)
    assert isinstance(owner, RemoteLease) and owner.ttl_s == 12
    assert fs.exists(f"{root}/exp/{LEASE_FILE}")
    owner.release()
    assert isinstance(acquire_experiment(str(tmp_path)), LocalLock)


# -- Tuner.fit() ---------------------------------------------------------------------------
def test_a_running_experiment_refuses_a_second_fit_and_a_restore(tmp_path: Any, slowmod: Any,
                                                                 drivers: Any) -> None:
    exp_dir = str(tmp_path / "results" / "exp")
    proc = _start_driver(tmp_path, drivers, steps=50, sleep=0.1)
    _wait_for_results(proc, os.path.join(exp_dir, "journal.jsonl"), 3)
    run_config = tune.RunConfig(name="exp", storage_path=str(tmp_path / "results"), verbose=0)
    second = Tuner(slowmod.train, param_space={"steps": 5, "sleep": 0.0}, run_config=run_config)
    for attempt in (second.fit, Tuner.restore(exp_dir, trainable=slowmod.train).fit):
        with pytest.raises(ExperimentLockedError) as info:
            attempt()
        assert f"pid {proc.pid} " in str(info.value)
        assert socket.gethostname() in str(info.value) and exp_dir in str(info.value)
        assert info.value.holder is not None and info.value.holder.pid == proc.pid
    assert not [n for n in os.listdir(exp_dir) if n.startswith("journal-")]
    assert proc.wait(timeout=120) == 0
    df = pd.read_csv(os.path.join(_only_trial_dir(exp_dir), "progress.csv"))
    assert list(df["training_iteration"]) == list(range(1, 51))
    assert list(df["step"]) == list(range(50))
    assert not os.path.exists(os.path.join(exp_dir, HOLDER_FILE))


def test_restore_after_a_sigkilled_driver_takes_the_lock_over(tmp_path: Any, slowmod: Any,
                                                              drivers: Any, caplog: Any) -> None:
    exp_dir = str(tmp_path / "results" / "exp")
    proc = _start_driver(tmp_path, drivers, steps=20, sleep=0.05)
    _wait_for_results(proc, os.path.join(exp_dir, "journal.jsonl"), 3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert json.loads(open(os.path.join(exp_dir, HOLDER_FILE)).read())["pid"] == proc.pid
    with caplog.at_level(logging.WARNING, logger="poptune"):
        grid = Tuner.restore(exp_dir, trainable=slowmod.train).fit()
    assert f"pid {proc.pid}" in caplog.text and "takes it over" in caplog.text
    assert grid.num_errors == 0 and grid[0].metrics["training_iteration"] == 20
    df = pd.read_csv(os.path.join(_only_trial_dir(exp_dir), "progress.csv"))
    assert list(df["training_iteration"]) == list(range(1, 21))
    assert not os.path.exists(os.path.join(exp_dir, HOLDER_FILE))


def test_the_lock_is_released_after_fit_and_after_a_failing_trial(tmp_path: Any) -> None:
    def ok(config: dict[str, Any]) -> None:
        tune.report({"x": 1})

    def boom(config: dict[str, Any]) -> None:
        raise ValueError("boom")

    def run(trainable: Any, **failure: Any) -> Any:
        return Tuner(trainable, run_config=tune.RunConfig(
            name="same", storage_path=str(tmp_path), verbose=0,
            failure_config=tune.FailureConfig(**failure))).fit()

    assert run(ok)[0].metrics["x"] == 1
    with pytest.raises(Exception, match="boom"):
        run(boom, fail_fast="raise")
    assert not (tmp_path / "same" / HOLDER_FILE).exists()
    assert run(ok)[0].metrics["x"] == 1  # the name is free again
    LocalLock(str(tmp_path / "same")).release()


def test_a_new_run_under_a_finished_name_is_what_restore_sees(tmp_path: Any) -> None:
    """As in Ray: the directory is reused, the earlier run's files stay, the newest run is the
    experiment (its journal is ``journal.jsonl``; the earlier one is kept aside)."""
    def first(config: dict[str, Any]) -> None:
        tune.report({"run": 1})

    def second(config: dict[str, Any]) -> None:
        tune.report({"run": 2})

    rc = tune.RunConfig(name="again", storage_path=str(tmp_path), verbose=0)
    one = Tuner(first, run_config=rc).fit()
    Tuner(second, run_config=rc).fit()
    exp_dir = tmp_path / "again"
    assert os.path.isdir(one[0].path)  # the earlier run's trial is still on disk
    assert len(list(exp_dir.glob("journal-*.jsonl"))) == 1
    restored = Tuner.restore(str(exp_dir), trainable=second).fit()
    assert [r.metrics["run"] for r in restored] == [2]
    analysis = tune.ExperimentAnalysis(str(exp_dir))
    assert [t.last_result["run"] for t in analysis.trials] == [2]
    grid = tune.ResultGrid.from_path(str(exp_dir))
    assert [r.metrics["run"] for r in grid] == [2]


def test_a_tuner_on_fsspec_storage_holds_a_lease(tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("POPTUNE_STAGING_DIR", str(tmp_path / "staging"))
    fs = fsspec.filesystem("memory")
    root = f"/tuner-lease-{time.time_ns()}"
    uri = f"memory://{root}"

    def ok(config: dict[str, Any]) -> None:
        tune.report({"x": 1})

    rc = tune.RunConfig(name="exp", storage_path=uri, verbose=0)
    other = RemoteLease(fs, f"{root}/exp/{LEASE_FILE}", f"{uri}/exp", settle_s=0)
    try:
        with pytest.raises(ExperimentLockedError, match="lease valid until"):
            Tuner(ok, run_config=rc).fit()
    finally:
        other.release()
    try:
        assert Tuner(ok, run_config=rc).fit()[0].metrics["x"] == 1
        assert not fs.exists(f"{root}/exp/{LEASE_FILE}")  # released
        Tuner(ok, run_config=rc).fit()  # a second run: the first one's segments go aside
        assert len([p for p in fs.ls(f"{root}/exp", detail=False)
                    if os.path.basename(p).startswith("journal-")]) == 1
    finally:
        fs.rm(root, recursive=True)


def test_restore_of_a_held_remote_experiment_fails_before_downloading(
        tmp_path: Any, monkeypatch: Any) -> None:
    """The staging directory of a restore is the live driver's own on this machine: a restore
    must refuse before its download overwrites that driver's files."""
    monkeypatch.setenv("POPTUNE_STAGING_DIR", str(tmp_path / "staging"))
    fs = fsspec.filesystem("memory")
    root = f"/restore-held-{time.time_ns()}"
    uri = f"memory://{root}"

    def ok(config: dict[str, Any]) -> None:
        tune.report({"x": 1})

    try:
        Tuner(ok, run_config=tune.RunConfig(name="exp", storage_path=uri, verbose=0)).fit()
        staged = {p: os.path.getmtime(p) for p in
                  (str(q) for q in (tmp_path / "staging").rglob("*")) if os.path.isfile(p)}
        assert staged
        other = RemoteLease(fs, f"{root}/exp/{LEASE_FILE}", f"{uri}/exp", settle_s=0)
        try:
            with pytest.raises(ExperimentLockedError, match="lease valid until"):
                Tuner.restore(f"{uri}/exp", trainable=ok)
            assert {p: os.path.getmtime(p) for p in staged} == staged  # untouched
        finally:
            other.release()
        assert Tuner.restore(f"{uri}/exp", trainable=ok).fit()[0].metrics["x"] == 1
    finally:
        fs.rm(root, recursive=True)


def test_a_live_lease_of_a_dead_process_on_this_host_is_taken_over(memfs: Any,
                                                                   caplog: Any) -> None:
    fs, root = memfs
    clock = FakeClock()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=30)  # reaped: its pid no longer exists
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    host = socket.gethostname()
    try:
        for pid, other_host, taken in ((dead.pid, host, True), (dead.pid, "elsewhere", False),
                                       (alive.pid, host, False)):
            fs.pipe_file(f"{root}/{LEASE_FILE}", json.dumps({
                "holder": {"host": other_host, "pid": pid, "since": "t", "version": "0"},
                "token": "old", "expires_at": clock.now + 25}).encode())
            if taken:
                with caplog.at_level(logging.WARNING, logger="poptune"):
                    _lease(fs, root, clock).release()
                assert "process is gone from this host" in caplog.text
            else:  # another host's driver, or a live process here, keeps its lease
                with pytest.raises(ExperimentLockedError,
                                   match=f"pid {pid} on host '{other_host}'"):
                    _lease(fs, root, clock)
    finally:
        alive.kill()
        alive.wait(timeout=30)


def test_a_lease_this_process_released_but_could_not_delete_is_taken_back(memfs: Any) -> None:
    """Storage down at release (the lease stays behind), back at the next fit in the same
    process: that fit is not blocked by this process's own stale lease."""
    fs, root = memfs
    clock = FakeClock()
    first = _lease(fs, root, clock)
    left = fs.cat_file(f"{root}/{LEASE_FILE}")
    first.release()
    fs.pipe_file(f"{root}/{LEASE_FILE}", left)  # as if deleting it had failed
    second = _lease(fs, root, clock)  # same host, same (live) pid, a token no longer held
    with pytest.raises(ExperimentLockedError, match=f"pid {os.getpid()}"):
        _lease(fs, root, clock)  # but a lease held here right now still blocks
    second.release()


def test_a_tuner_whose_lease_is_stolen_stops_with_the_error(tmp_path: Any, slowmod: Any,
                                                            monkeypatch: Any) -> None:
    monkeypatch.setenv("POPTUNE_STAGING_DIR", str(tmp_path / "staging"))
    monkeypatch.setenv("POPTUNE_LEASE_TTL_S", "0.6")  # heartbeat every 0.2 s
    fs = fsspec.filesystem("memory")
    root = f"/stolen-{time.time_ns()}"
    lease = f"{root}/exp/{LEASE_FILE}"

    def thief() -> None:  # takes the lease over once the run has committed a few times
        deadline = time.monotonic() + 60
        while not fs.exists(f"{root}/exp/journal/0000000003.jsonl"):
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)
        fs.pipe_file(lease, json.dumps({
            "holder": {"host": "thief-host", "pid": 4242, "since": "t", "version": "0"},
            "token": "thief", "expires_at": time.time() + 3600}).encode())

    stealer = threading.Thread(target=thief, daemon=True)
    stealer.start()
    try:
        with pytest.raises(ExperimentLockedError, match="taken over by pid 4242"):
            Tuner(slowmod.train, param_space={"steps": 200, "sleep": 0.05},
                  run_config=tune.RunConfig(name="exp", storage_path=f"memory://{root}",
                                            verbose=0)).fit()
        stealer.join(timeout=10)
        assert json.loads(fs.cat_file(lease))["token"] == "thief"  # not deleted on release
    finally:
        fs.rm(root, recursive=True)
