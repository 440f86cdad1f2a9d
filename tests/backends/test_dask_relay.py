"""What a trial prints on Dask reaches the driver, prefixed as the local relay and Ray prefix
it: ``(train_fn pid=1234) hello``, where the pid is the trial's agent process (a child of its
Dask task). What the trial's threads print is captured above the file descriptors and sent
over the agent's connection (see the second half of ``poptune/backends/_relay.py``). The
cluster: a scheduler and one worker process with two threads, on loopback, started and
stopped by this module."""

from __future__ import annotations

import io
import os
import re
import sys
import threading
import time
from multiprocessing import Pipe

import pytest

import poptune as tune
from poptune.backends import _relay
from poptune.backends._relay import OUTPUT, RelayedConnection, _ThreadStream
from tests._trainables import PrintingTrainable
from tests.backends._dask import DaskCluster


@pytest.fixture(scope="module")
def dask_worker_log(tmp_path_factory):
    """The address of a scheduler with one two-thread worker process, and the worker's log."""
    pytest.importorskip("distributed", reason="the Dask backend needs `pip install 'poptune[dask]'`")
    with DaskCluster(tmp_path_factory.mktemp("dask_relay")) as cluster:
        worker_log = cluster.add_worker(nthreads=2, log="worker.log")
        cluster.wait_for_workers(1)
        yield cluster.address, worker_log


@pytest.fixture
def on_dask(dask_worker_log, monkeypatch):
    address, log = dask_worker_log
    monkeypatch.setenv("POPTUNE_BACKEND", "dask")
    monkeypatch.setenv("POPTUNE_ADDRESS", address)
    for name in ("RAY_DISABLE_WORKER_LOG_PREFIX", "RAY_COLOR_PREFIX", "RAY_LOG_TO_DRIVER"):
        monkeypatch.delenv(name, raising=False)
    return log


def _fit(tmp_path, trainable, name, config=None, **run):
    grid = tune.Tuner(
        trainable, param_space=config or {},
        tune_config=tune.TuneConfig(max_concurrent_trials=2),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0,
                                  **run)).fit()
    for result in grid:
        assert result.error is None, result.error
    return grid


def _wait_in_file(path, line, timeout=60.0):
    """Wait until ``line`` is a line of ``path`` (a log the Dask worker writes)."""
    deadline = time.monotonic() + timeout
    while True:
        with open(path, errors="replace") as f:
            if line in f.read().splitlines():
                return
        if time.monotonic() > deadline:
            pytest.fail(f"{line!r} did not reach {path}")
        time.sleep(0.1)


# --- trainables (module level: the agents import them) -------------------------------------
def _meet(rendezvous: str, tag: str, n: int = 2) -> None:
    """Wait until ``n`` trials have arrived (each in its own agent process): they run at
    once from here on."""
    open(os.path.join(rendezvous, tag), "w").close()
    deadline = time.monotonic() + 60
    while len(os.listdir(rendezvous)) < n:
        assert time.monotonic() < deadline, os.listdir(rendezvous)
        time.sleep(0.01)


def many_lines(config):
    tag, n = config["tag"], config["lines"]
    _meet(config["rendezvous"], tag)
    for i in range(n):  # each line in small pieces: one shared sys.stdout would mix them
        line = f"{tag}-{i}-" + tag * (i % 50) + "\n"
        for j in range(0, len(line), 7):
            sys.stdout.write(line[j:j + 7])
    sys.stderr.write(f"{tag}-ON-STDERR\n")
    tune.report({"pid": os.getpid(), "thread": threading.get_ident()})


def partial_lines(config):
    sys.stdout.write("HALF-A ")
    sys.stdout.flush()
    time.sleep(0.3)  # the flusher runs meanwhile: the half line is held
    sys.stdout.write("HALF-B\n")
    sys.stdout.write("NO-NEWLINE-AT-END")
    sys.stderr.write("ERR-NO-NEWLINE")
    tune.report({"pid": os.getpid()})


def with_other_threads(config):
    import _thread

    token = config["token"]
    done = threading.Event()

    def outsider():  # a thread not started through threading.Thread: not the trial's
        print(f"OUTSIDER-{token}", flush=True)
        done.set()

    _thread.start_new_thread(outsider, ())
    assert done.wait(60)
    helper = threading.Thread(target=lambda: print(f"TRIAL-THREAD-{token}"))
    helper.start()  # a thread the trial starts is the trial's
    helper.join()
    print(f"INSIDER-{token}")
    tune.report({"pid": os.getpid()})


def chatty(config):
    for i in range(config["lines"]):
        print(f"LINE-{i}")
    tune.report({"pid": os.getpid()})


def printer(config):
    print(f"OUT-{config['token']}")
    print(f"ERR-{config['token']}", file=sys.stderr)
    tune.report({"pid": os.getpid()})


# --- on a Dask cluster -----------------------------------------------------------------------
def test_two_trials_printing_at_once_on_one_worker_each_get_their_own_lines(
        on_dask, tmp_path, capsys):
    """Two trials at once on one two-thread Dask worker: each in its own agent process (a
    child of its Dask task), each line whole and named after its process."""
    n = 3000
    rendezvous = tmp_path / "rendezvous"
    rendezvous.mkdir()
    grid = _fit(tmp_path, many_lines, "many", {"tag": tune.grid_search(["A", "B"]), "lines": n,
                                               "rendezvous": str(rendezvous)})
    pids = {r.config["tag"]: r.metrics["pid"] for r in grid}
    assert len(set(pids.values())) == 2  # two agent processes
    out, err = capsys.readouterr()
    seen: dict[str, list[int]] = {"A": [], "B": []}
    pattern = re.compile(r"\(many_lines pid=(\d+)\) ([AB])-(\d+)-([AB]*)")
    for line in out.splitlines():
        if "many_lines" not in line:
            continue
        m = pattern.fullmatch(line)
        assert m is not None, line
        assert int(m[1]) == pids[m[2]] and m[4] == m[2] * (int(m[3]) % 50), line
        seen[m[2]].append(int(m[3]))
    assert seen == {"A": list(range(n)), "B": list(range(n))}
    assert {line for line in err.splitlines() if "ON-STDERR" in line} == {
        f"(many_lines pid={pids['A']}) A-ON-STDERR", f"(many_lines pid={pids['B']}) B-ON-STDERR"}


def test_a_partial_line_waits_for_its_newline_and_a_last_one_arrives_at_the_end(
        on_dask, tmp_path, capsys):
    grid = _fit(tmp_path, partial_lines, "partial")
    pid = grid[0].metrics["pid"]
    out, err = capsys.readouterr()
    assert [line for line in out.splitlines() if "pid=" in line] == [
        f"(partial_lines pid={pid}) HALF-A HALF-B",
        f"(partial_lines pid={pid}) NO-NEWLINE-AT-END"]
    assert f"(partial_lines pid={pid}) ERR-NO-NEWLINE\n" in err


def test_a_class_trainable_is_prefixed_with_its_class_name(on_dask, tmp_path, capsys):
    grid = _fit(tmp_path, PrintingTrainable, "cls")
    pid = grid[0].metrics["pid"]
    out, err = capsys.readouterr()
    assert f"(PrintingTrainable pid={pid}) IN-SETUP\n" in out
    assert f"(PrintingTrainable pid={pid}) IN-STEP\n" in err


def test_other_threads_are_not_captured_but_threads_the_trial_starts_are(
        on_dask, tmp_path, capsys):
    token = os.urandom(4).hex()
    grid = _fit(tmp_path, with_other_threads, "threads", {"token": token})
    pid = grid[0].metrics["pid"]
    out, _ = capsys.readouterr()
    assert [line for line in out.splitlines() if token in line] == [
        f"(with_other_threads pid={pid}) TRIAL-THREAD-{token}",
        f"(with_other_threads pid={pid}) INSIDER-{token}"]
    _wait_in_file(on_dask, f"OUTSIDER-{token}")  # untouched: in the worker's own log


@pytest.mark.timeout(180)
def test_a_trial_printing_20000_lines_finishes_and_all_arrive_in_order(
        on_dask, tmp_path, capsys):
    n = 20_000
    grid = _fit(tmp_path, chatty, "chatty", {"lines": n})
    pid = grid[0].metrics["pid"]
    out, _ = capsys.readouterr()
    prefix = f"(chatty pid={pid}) "
    assert [line for line in out.splitlines() if line.startswith(prefix)] == [
        f"{prefix}LINE-{i}" for i in range(n)]


def test_log_to_file_writes_the_files_and_the_driver_still_gets_the_lines(
        on_dask, tmp_path, capsys):
    token = os.urandom(4).hex()
    grid = _fit(tmp_path, printer, "files", {"token": token}, log_to_file=True)
    pid = grid[0].metrics["pid"]
    with open(os.path.join(grid[0].path, "stdout")) as f:
        assert f.read() == f"OUT-{token}\n"  # not prefixed
    with open(os.path.join(grid[0].path, "stderr")) as f:
        assert f.read() == f"ERR-{token}\n"
    out, err = capsys.readouterr()  # as Ray, whose log_to_file tees into the actor's stdout
    assert f"(printer pid={pid}) OUT-{token}\n" in out
    assert f"(printer pid={pid}) ERR-{token}\n" in err


def test_log_to_driver_false_leaves_the_lines_in_the_worker_s_log(
        on_dask, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RAY_LOG_TO_DRIVER", "0")
    token = os.urandom(4).hex()
    _fit(tmp_path, printer, "quiet", {"token": token})
    out, err = capsys.readouterr()
    assert token not in out and token not in err
    _wait_in_file(on_dask, f"OUT-{token}")


def test_the_prefix_switches_apply(on_dask, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RAY_DISABLE_WORKER_LOG_PREFIX", "1")
    token = os.urandom(4).hex()
    _fit(tmp_path, printer, "plain", {"token": token})
    out, _ = capsys.readouterr()
    assert [line for line in out.splitlines() if token in line] == [f"OUT-{token}"]
    monkeypatch.setenv("RAY_DISABLE_WORKER_LOG_PREFIX", "0")
    monkeypatch.setenv("RAY_COLOR_PREFIX", "1")
    grid = _fit(tmp_path, printer, "colour", {"token": token})
    pid = grid[0].metrics["pid"]
    out, _ = capsys.readouterr()
    colour = _relay._PALETTE[pid % len(_relay._PALETTE)]
    assert f"{colour}(printer pid={pid}){_relay._RESET} OUT-{token}\n" in out


# --- the capture alone (a pipe for the connection, StringIO for the process's stream) ------
class _Driver:
    """A relayed connection over a pipe whose other end a thread reads (as the driver does),
    until the relay closes it."""

    def __init__(self):
        self.end, agent = Pipe()
        self.relay = RelayedConnection(agent)
        self.received = []
        self._reader = threading.Thread(target=self._read)
        self._reader.start()

    def _read(self):
        try:
            while True:
                self.received.append(self.end.recv())
        except (EOFError, OSError):
            pass

    def close(self):
        """Close the relay and return what the driver got."""
        self.relay.close()
        self._reader.join(timeout=60)
        self.end.close()
        return self.received


def _lines(messages, is_err=False):
    return "".join(text for m in messages if m[0] == OUTPUT for e, text in m[4] if e == is_err)


def test_only_the_trial_s_thread_is_captured():
    driver = _Driver()
    relay = driver.relay
    real = io.StringIO()
    out = _ThreadStream(real, is_err=False)
    try:
        relay.begin("t1", "fn")
        other = threading.Thread(target=lambda: out.write("OTHER\n"))
        _relay._thread_start(other)  # not started by the trial (as a Dask thread)
        other.join()
        out.write("MINE\n")
        relay.end()
        out.write("AFTER-THE-END\n")  # the trial's thread between trials
        relay.send(("done", "t1"))
        relay.detach()
    finally:
        messages = driver.close()
    assert real.getvalue() == "OTHER\nAFTER-THE-END\n"
    assert messages[-1] == ("done", "t1")
    assert _lines(messages) == "MINE\n"
    assert {(m[1], m[2], m[3]) for m in messages[:-1]} == {("t1", os.getpid(), "fn")}


def test_many_lines_go_in_few_messages_and_a_result_comes_after_the_lines_before_it():
    driver = _Driver()
    relay = driver.relay
    out = _ThreadStream(io.StringIO(), is_err=False)
    n = 20_000
    try:
        relay.begin("t1", "fn")
        for i in range(n):
            out.write(f"line {i}\n")
        relay.send(("result", "t1"))
        out.write("after the result\n")
        relay.end()
        relay.send(("done", "t1"))
        relay.detach()
    finally:
        received = driver.close()
    kinds = [m[0] for m in received]
    assert kinds.count(OUTPUT) < n / 10  # batched: not a message per line
    at = kinds.index("result")
    assert _lines(received[:at]) == "".join(f"line {i}\n" for i in range(n))
    assert _lines(received[at:]) == "after the result\n"
    assert kinds[-1] == "done"


def test_a_line_without_newline_is_sent_in_bounded_pieces():
    driver = _Driver()
    relay = driver.relay
    out = _ThreadStream(io.StringIO(), is_err=True)
    try:
        relay.begin("t1", "fn")
        for _ in range(40):
            out.write("y" * 10_000)
        out.write("\nend\n")
        relay.end()
        relay.send(("done", "t1"))
        relay.detach()
    finally:
        messages = driver.close()
    pieces = _lines(messages, is_err=True).splitlines()
    assert pieces[-1] == "end" and "".join(pieces[:-1]) == "y" * 400_000
    assert max(len(p) for p in pieces) <= _relay._MAX_LINE + 10_000  # bounded by one write


def test_a_write_of_bytes_says_what_is_accepted():
    driver = _Driver()
    out = _ThreadStream(io.StringIO(), is_err=False)
    try:
        driver.relay.begin("t1", "fn")
        with pytest.raises(TypeError, match="write\\(\\) argument must be str, not bytes"):
            out.write(b"raw")  # type: ignore[arg-type]
        driver.relay.detach()
    finally:
        driver.close()


def _serve_once(relay_from):
    """Run a Dask agent's ``serve`` in a thread against a listener here; shut it down once it
    said it is ready; return the worker it served with."""
    from multiprocessing.connection import Listener

    from poptune.backends import _agent, _worker

    made = []

    class Recorded(_worker.Worker):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    key = os.urandom(16)
    with Listener(("127.0.0.1", 0), family="AF_INET", authkey=key) as listener:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(_worker, "Worker", Recorded)
            agent = threading.Thread(target=_agent.serve, args=(listener.address, key.hex(), "a1"),
                                     kwargs={"relay_from": relay_from})
            agent.start()
            with listener.accept() as conn:
                assert conn.recv() == ("ready", "a1")
                conn.send(("shutdown",))
                agent.join(timeout=30)
    return made[0]


def test_an_agent_relays_unless_it_runs_in_the_driver_s_own_process(monkeypatch):
    installs = []
    monkeypatch.setattr(_relay, "install_thread_capture", lambda: installs.append(1))
    assert _serve_once(_relay.PROCESS_TOKEN).relay is None  # an in-process cluster
    assert _serve_once(None).relay is None  # log_to_driver=False
    assert installs == []
    assert isinstance(_serve_once("another-process").relay, RelayedConnection)
    assert installs == [1]


def test_the_line_writer_is_the_local_relay_s(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    _relay.LineWriter().write("fn", 7, False, "a\r\nb\n")
    assert out.getvalue() == "(fn pid=7) a\n(fn pid=7) b\n"


def test_once_the_driver_is_gone_a_trial_s_prints_go_to_the_process_s_stream():
    driver, agent = Pipe()
    relay = RelayedConnection(agent)
    real = io.StringIO()
    out = _ThreadStream(real, is_err=False)
    try:
        relay.begin("t1", "fn")
        driver.close()  # the driver killed the trial (or exited)
        out.write("x" * (_relay._MAX_PENDING + 1) + "\n")  # sent at once: fails, quietly
        out.write("LATER\n")
        relay.detach()
    finally:
        relay.close()
    assert real.getvalue() == "LATER\n"
