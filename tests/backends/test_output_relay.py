"""What a trial prints in a local worker process reaches the driver's ``sys.stdout`` /
``sys.stderr`` through one relay thread, each line prefixed as Ray prefixes it:
``(train_fn pid=1234) hello`` (see ``poptune/backends/_relay.py``)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
import time

import pytest

import poptune as tune
from poptune.backends._relay import MARKER, OutputRelay
from tests._trainables import PrintingTrainable


def _fit(tmp_path, trainable, name, config=None, **run):
    run.setdefault("verbose", 0)
    grid = tune.Tuner(
        trainable, param_space=config or {},
        tune_config=tune.TuneConfig(max_concurrent_trials=2),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), **run)).fit()
    return grid


def _pids(grid):
    return {r.metrics["pid"] for r in grid}


# --- trainables (module level: the workers import them) ------------------------------------
def printer(config):
    print("PRINTED-OUT")
    print("PRINTED-ERR", file=sys.stderr)
    os.write(1, b"OS-WRITE-OUT\n")
    os.write(2, b"OS-WRITE-ERR\n")
    subprocess.run([sys.executable, "-c", "import os; os.write(1, b'FROM-CHILD\\n')"],
                   check=True)
    tune.report({"pid": os.getpid()})


def partial_lines(config):
    sys.stdout.write("HALF-A ")
    sys.stdout.flush()
    time.sleep(0.3)  # the first half reaches the driver alone
    sys.stdout.write("HALF-B\n")
    sys.stdout.write("NO-NEWLINE-AT-END")
    sys.stdout.flush()
    tune.report({"pid": os.getpid()})


def many_lines(config):
    # each line written in small pieces, as two workers sharing one terminal would mix them
    tag = config["tag"]
    for i in range(config["lines"]):
        line = f"{tag}-{i}-" + tag * (i % 50) + "\n"
        for j in range(0, len(line), 7):
            os.write(1, line[j:j + 7].encode())
    tune.report({"pid": os.getpid()})


def floods(config):
    chunk = ("x" * 99 + "\n") * 10_000  # 1 MB
    for _ in range(20):
        sys.stdout.write(chunk)
    print("FLOOD-END")
    tune.report({"pid": os.getpid()})


def fails(config):
    print("BEFORE-THE-ERROR")
    print("ERR-BEFORE-THE-ERROR", file=sys.stderr)
    raise ValueError("boom")


def numbered(config):
    print(f"TRIAL-{config['i']} in {os.getpid()}")
    tune.report({"pid": os.getpid(), "i": config["i"]})


# --- end to end ----------------------------------------------------------------------------
def test_print_os_write_a_child_and_stderr_are_relayed_prefixed(tmp_path, capfd):
    grid = _fit(tmp_path, printer, "printer")
    (pid,) = _pids(grid)
    out, err = capfd.readouterr()
    prefix = f"(printer pid={pid}) "
    assert [line for line in out.splitlines() if "pid=" in line] == [
        prefix + "PRINTED-OUT", prefix + "OS-WRITE-OUT", prefix + "FROM-CHILD"]
    assert [line for line in err.splitlines() if "pid=" in line] == [
        prefix + "PRINTED-ERR", prefix + "OS-WRITE-ERR"]
    assert "\x1b[" not in out  # not a terminal: no colour


def test_a_class_trainable_is_prefixed_with_its_class_name(tmp_path, capfd):
    grid = _fit(tmp_path, PrintingTrainable, "cls")
    (pid,) = _pids(grid)
    out, err = capfd.readouterr()
    assert f"(PrintingTrainable pid={pid}) IN-SETUP\n" in out
    assert f"(PrintingTrainable pid={pid}) IN-STEP\n" in err


def test_a_partial_line_waits_for_its_newline_and_a_last_one_is_written_at_the_end(
        tmp_path, capfd):
    grid = _fit(tmp_path, partial_lines, "partial")
    (pid,) = _pids(grid)
    out, _ = capfd.readouterr()
    lines = [line for line in out.splitlines() if "pid=" in line]
    assert lines == [f"(partial_lines pid={pid}) HALF-A HALF-B",
                     f"(partial_lines pid={pid}) NO-NEWLINE-AT-END"]


def test_two_workers_printing_at_once_never_mix_within_a_line(tmp_path, capfd):
    n = 3000
    grid = _fit(tmp_path, many_lines, "many",
                {"tag": tune.grid_search(["A", "B"]), "lines": n})
    pids = {r.config["tag"]: r.metrics["pid"] for r in grid}
    assert len(set(pids.values())) == 2  # two processes, at once
    out, _ = capfd.readouterr()
    seen = {"A": [], "B": []}
    pattern = re.compile(r"\(many_lines pid=(\d+)\) ([AB])-(\d+)-([AB]*)")
    for line in out.splitlines():
        if "many_lines" not in line:
            continue
        m = pattern.fullmatch(line)
        assert m is not None, line
        pid, tag, i, tail = int(m[1]), m[2], int(m[3]), m[4]
        assert pid == pids[tag] and tail == tag * (i % 50), line
        seen[tag].append(i)
    assert seen == {"A": list(range(n)), "B": list(range(n))}


@pytest.mark.timeout(120)
def test_a_trial_printing_20_mb_finishes(tmp_path, capfd):
    grid = _fit(tmp_path, floods, "flood")
    assert grid[0].error is None
    (pid,) = _pids(grid)
    out, _ = capfd.readouterr()
    prefix = f"(floods pid={pid}) "
    assert out.count(prefix + "x" * 99 + "\n") == 200_000
    assert prefix + "FLOOD-END\n" in out


def test_what_a_failing_trial_printed_is_relayed(tmp_path, capfd):
    grid = _fit(tmp_path, fails, "fails")
    assert isinstance(grid[0].error, Exception)
    out, err = capfd.readouterr()
    assert re.search(r"^\(fails pid=\d+\) BEFORE-THE-ERROR$", out, re.M)
    assert re.search(r"^\(fails pid=\d+\) ERR-BEFORE-THE-ERROR$", err, re.M)


def test_reused_workers_keep_their_prefix_for_every_trial(tmp_path, capfd):
    grid = _fit(tmp_path, numbered, "reuse", {"i": tune.grid_search(list(range(6)))})
    out, _ = capfd.readouterr()
    assert len(_pids(grid)) < 6  # workers ran several trials each
    for r in grid:
        pid, i = r.metrics["pid"], r.metrics["i"]
        assert f"(numbered pid={pid}) TRIAL-{i} in {pid}\n" in out


def test_log_to_file_files_are_not_prefixed(tmp_path, capfd):
    grid = _fit(tmp_path, printer, "files", log_to_file=True)
    (pid,) = _pids(grid)
    with open(os.path.join(grid[0].path, "stdout")) as f:
        assert f.read() == "PRINTED-OUT\nOS-WRITE-OUT\nFROM-CHILD\n"
    with open(os.path.join(grid[0].path, "stderr")) as f:
        assert f.read() == "PRINTED-ERR\nOS-WRITE-ERR\n"
    out, _ = capfd.readouterr()
    assert f"(printer pid={pid}) PRINTED-OUT\n" in out


@pytest.mark.parametrize("how", ["init", "env"])
def test_log_to_driver_false_shows_nothing_a_trial_prints(tmp_path, capfd, monkeypatch, how):
    if how == "init":
        tune.init(log_to_driver=False)
    else:
        monkeypatch.setenv("RAY_LOG_TO_DRIVER", "0")
    try:
        grid = _fit(tmp_path, printer, "quiet", log_to_file=True)
    finally:
        tune.shutdown()
    out, err = capfd.readouterr()
    for text in ("PRINTED-", "OS-WRITE-", "FROM-CHILD"):
        assert text not in out and text not in err
    with open(os.path.join(grid[0].path, "stdout")) as f:  # the trial's files still get it
        assert f.read() == "PRINTED-OUT\nOS-WRITE-OUT\nFROM-CHILD\n"
    # shutdown() forgets it: the next run relays again
    monkeypatch.delenv("RAY_LOG_TO_DRIVER", raising=False)
    _fit(tmp_path, printer, "loud")
    assert "PRINTED-OUT" in capfd.readouterr().out


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_no_thread_or_descriptor_is_left_behind(tmp_path, capfd):
    _fit(tmp_path, printer, "warm")  # imports and caches
    before = _fds()
    _fit(tmp_path, printer, "again")
    assert not [t for t in threading.enumerate() if t.name == "poptune-output-relay"]
    assert _fds() <= before


# --- the relay alone -----------------------------------------------------------------------
def _relayed(chunks, monkeypatch, is_err=False, env=None):
    """What an OutputRelay writes to sys.stdout/sys.stderr for bytes written in ``chunks``."""
    for k, v in (env or {}).items():
        monkeypatch.setenv(k, v)
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    relay = OutputRelay()
    r, w = os.pipe()
    relay.add(42, None if is_err else r, r if is_err else None)
    for chunk in chunks:
        os.write(w, chunk)
    os.close(w)
    relay.close()
    return (err if is_err else out).getvalue()


def test_a_marker_names_the_lines_after_it_also_after_a_partial_line(monkeypatch):
    text = _relayed([b"early\n", MARKER + b"fn_a\n", b"one\npart", MARKER + b"fn_b\n",
                     b"two\n"], monkeypatch)
    assert text == ("(pid=42) early\n(fn_a pid=42) one\n(fn_a pid=42) part\n"
                    "(fn_b pid=42) two\n")


def test_stderr_lines_go_to_the_current_sys_stderr_and_crlf_is_one_line_end(monkeypatch):
    assert _relayed([MARKER + b"f\n", b"a\r\nb\n"], monkeypatch, is_err=True) == (
        "(f pid=42) a\n(f pid=42) b\n")


def test_a_very_long_line_is_written_in_pieces(monkeypatch):
    text = _relayed([b"y" * 200_000 + b"\nend\n"], monkeypatch)
    lines = text.splitlines()
    assert lines[-1] == "(pid=42) end"
    assert "".join(line.removeprefix("(pid=42) ") for line in lines[:-1]) == "y" * 200_000
    assert len(lines) > 2


def test_ray_s_prefix_switches(monkeypatch):
    assert _relayed([b"a\n"], monkeypatch, env={"RAY_DISABLE_WORKER_LOG_PREFIX": "1"}) == "a\n"
    assert _relayed([b"a\n"], monkeypatch, env={"RAY_DISABLE_WORKER_LOG_PREFIX": "0",
                                                "RAY_COLOR_PREFIX": "1"}) == (
        "\x1b[35m(pid=42)\x1b[0m a\n")  # 42 % 6 == 0: the first of Ray's colours


def test_the_prefix_is_cyan_in_a_terminal_only(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    monkeypatch.setattr(sys, "stdout", out)
    relay = OutputRelay()
    r, w = os.pipe()
    relay.add(7, r, None)
    os.write(w, MARKER + b"fn\nhi\n")
    os.close(w)
    relay.close()
    assert out.getvalue() == "\x1b[36m(fn pid=7)\x1b[0m hi\n"


def test_lines_go_to_the_stream_sys_stdout_is_when_they_arrive(monkeypatch):
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", first)
    relay = OutputRelay()
    r, w = os.pipe()
    relay.add(1, r, None)
    os.write(w, b"to-first\n")
    deadline = time.monotonic() + 10
    while not first.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    monkeypatch.setattr(sys, "stdout", second)  # e.g. rich's Live redirecting it
    os.write(w, b"to-second\n")
    os.close(w)
    relay.close()
    assert (first.getvalue(), second.getvalue()) == ("(pid=1) to-first\n",
                                                     "(pid=1) to-second\n")
