"""The local backend's socket directory: a driver killed with ``kill -9`` leaves it behind; the
next driver on the machine removes it, and nothing that belongs to a live driver."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from poptune.backends.local import LocalBackend, remove_stale_socket_dirs

_DRIVER = """
import sys, time
from poptune.backends.local import LocalBackend
b = LocalBackend(num_cpus=1)
b._ensure_listener()
print(b._tmpdir, flush=True)
time.sleep(60)
"""


def _driver(parent) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "TMPDIR": str(parent)}
    proc = subprocess.Popen([sys.executable, "-c", _DRIVER], env=env, stdout=subprocess.PIPE,
                            text=True)
    path = proc.stdout.readline().strip()
    assert os.listdir(path) == ["driver.sock"]
    assert os.path.basename(path).startswith(f"poptune-{proc.pid}-")
    return proc, path


def _end(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()


def test_a_killed_drivers_socket_directory_is_removed_by_the_next_driver(monkeypatch):
    # a short parent (not tmp_path): the sockets' paths must stay under 108 bytes
    tmp_path = Path(tempfile.mkdtemp(prefix="s"))
    try:
        _sweep(tmp_path, monkeypatch)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _sweep(tmp_path: Path, monkeypatch) -> None:
    killed, stale = _driver(tmp_path)
    _end(killed)
    live, alive = _driver(tmp_path)
    try:
        _sweep_beside(live, alive, stale, tmp_path, monkeypatch)
    finally:
        if live.poll() is None:
            _end(live)


def _sweep_beside(live: subprocess.Popen, alive: str, stale: str, tmp_path: Path,
                  monkeypatch) -> None:
    # a driver in another PID namespace sharing the directory: its pid means nothing here,
    # but it holds the lock
    foreign = tmp_path / "poptune-999999999-ns"
    foreign.mkdir()
    (foreign / "driver.sock").touch()
    fd = os.open(foreign, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    extra = tmp_path / "poptune-999999998-x"  # unlocked, but more than a socket: not ours
    extra.mkdir()
    (extra / "driver.sock").touch()
    (extra / "notes.txt").touch()
    unrelated = tmp_path / "poptune_results"
    unrelated.mkdir()
    old = tmp_path / "poptune_k2j4x9q1"  # an older version's (it held no lock): left alone
    old.mkdir()
    (old / "driver.sock").touch()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    backend = LocalBackend(num_cpus=1)
    try:
        backend._ensure_listener()
        assert not os.path.exists(stale)
        assert os.listdir(alive) == ["driver.sock"]
        assert foreign.is_dir() and extra.is_dir() and unrelated.is_dir() and old.is_dir()
        own = backend._tmpdir
        assert own is not None and os.listdir(own) == ["driver.sock"]
        assert os.path.basename(own).startswith(f"poptune-{os.getpid()}-")
        assert own not in remove_stale_socket_dirs(str(tmp_path))  # it holds its own lock
    finally:
        backend.shutdown()
        _end(live)
        os.close(fd)
    assert not os.path.exists(own)
    # now both are gone without shutting down: the next sweep takes theirs
    assert sorted(remove_stale_socket_dirs(str(tmp_path))) == sorted([alive, str(foreign)])
    assert extra.is_dir() and unrelated.is_dir() and old.is_dir()


def test_an_empty_socket_directory_is_removed_once_it_is_old_and_unlocked(tmp_path):
    # a driver that exited without shutting its backend down: its listener unlinked the
    # socket at exit and the directory stayed, empty
    old = tmp_path / "poptune-999999997-old"
    old.mkdir()
    os.utime(old, (os.path.getmtime(old) - 120,) * 2)
    new = tmp_path / "poptune-999999996-new"  # made just now: its driver may not hold the
    new.mkdir()                               # lock yet
    held = tmp_path / "poptune-999999995-held"  # old, but a live driver holds it
    held.mkdir()
    os.utime(held, (os.path.getmtime(held) - 120,) * 2)
    fd = os.open(held, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert remove_stale_socket_dirs(str(tmp_path)) == [str(old)]
    finally:
        os.close(fd)
    assert not old.exists() and new.is_dir() and held.is_dir()


def test_a_dead_drivers_directory_with_launch_ahead_slots_is_removed_too(tmp_path):
    """Its workers' launch-ahead slots (``ahead-*``) are the driver's own files: a killed
    driver's directory holding them is removed like one holding only its socket; without
    the socket (unlinked at exit) it is removed once a minute old, as an empty one."""
    killed = tmp_path / "poptune-999999994-k"
    killed.mkdir()
    for name in ("driver.sock", "ahead-7f01", "ahead-7f02"):
        (killed / name).touch()
    exited = tmp_path / "poptune-999999993-e"  # socket unlinked at exit, slots left
    exited.mkdir()
    (exited / "ahead-7f03").touch()
    os.utime(exited, (os.path.getmtime(exited) - 120,) * 2)
    young = tmp_path / "poptune-999999992-y"  # the same, just made: its driver may be live
    young.mkdir()
    (young / "ahead-7f04").touch()
    foreign = tmp_path / "poptune-999999991-f"  # a file not ours: left alone
    foreign.mkdir()
    for name in ("driver.sock", "ahead-7f05", "ahead.txt.bak"):
        (foreign / name).touch()
    assert sorted(remove_stale_socket_dirs(str(tmp_path))) == sorted([str(killed), str(exited)])
    assert not killed.exists() and not exited.exists() and young.is_dir() and foreign.is_dir()


def test_shutdown_never_leaves_an_empty_socket_directory_a_kill_could_strand(monkeypatch):
    """A driver killed during ``shutdown`` leaves its socket directory either gone or holding
    its socket (the next driver removes that at once), never empty (removed only once it is
    a minute old): at every call and return of the shutdown (a kill lands between two), the
    directory is gone, or holds the socket and is locked. The one exception is inside the
    ``rmtree`` removing it, between its unlink of the socket and its ``rmdir``."""
    tmp_path = Path(tempfile.mkdtemp(prefix="s"))  # short: see above
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    backend = LocalBackend(num_cpus=1)
    try:
        backend.prestart(1)  # a worker, and the output relay that shutdown closes
        path = backend._tmpdir
        assert path is not None and os.listdir(path) == ["driver.sock"]
        assert backend._relay is not None
        seen, bad = _watch_shutdown(backend, path)
    finally:
        backend.shutdown()
        shutil.rmtree(tmp_path, ignore_errors=True)
    assert not bad, f"at these points the directory was {bad[0][1]}: {bad[:5]}"
    assert {"socket, locked", "gone"} <= seen
    assert backend._listener is None and backend._tmpdir is None


def _watch_shutdown(backend: LocalBackend, path: str) -> tuple[set[str], list[tuple[str, str]]]:
    """Shut ``backend`` down, checking ``path`` at every call and return in this thread;
    return the states seen and the points where it was neither gone nor a locked socket."""
    seen: set[str] = set()
    bad: list[tuple[str, str]] = []
    depth = [0]  # inside shutil.rmtree(path)

    def state() -> str:
        try:
            listed = os.listdir(path)
        except FileNotFoundError:
            return "gone"
        if listed != ["driver.sock"]:
            return f"holding {listed}"
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another description: refused
        except BlockingIOError:                          # while the backend holds it
            return "socket, locked"
        finally:
            os.close(fd)
        return "socket, unlocked"

    def profile(frame, event, arg) -> None:
        code = frame.f_code
        if code is shutil.rmtree.__code__ and event in ("call", "return"):
            depth[0] += 1 if event == "call" else -1
        if depth[0]:
            return
        now = state()
        seen.add(now)
        if now not in ("gone", "socket, locked"):
            where = getattr(arg, "__qualname__", None) if event.startswith("c_") else None
            bad.append((f"{event} {where or code.co_qualname}", now))

    sys.setprofile(profile)
    try:
        backend.shutdown()
    finally:
        sys.setprofile(None)
    return seen, bad
