"""The local backend's socket directory: a driver killed with ``kill -9`` leaves it behind; the
next driver on the machine removes it, and nothing that belongs to a live process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile

from poptune.backends.local import LocalBackend, remove_stale_socket_dirs

_DRIVER = """
import sys, time
from poptune.backends.local import LocalBackend
b = LocalBackend(num_cpus=1)
b._ensure_listener()
print(b._tmpdir, flush=True)
time.sleep(60)
"""


def _killed_driver_dir(parent) -> str:
    env = {**os.environ, "TMPDIR": str(parent)}
    proc = subprocess.Popen([sys.executable, "-c", _DRIVER], env=env, stdout=subprocess.PIPE,
                            text=True)
    try:
        path = proc.stdout.readline().strip()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert os.listdir(path) == ["driver.sock"]
    assert os.path.basename(path).startswith(f"poptune_{proc.pid}_")
    return path


def test_a_killed_drivers_socket_directory_is_removed_by_the_next_driver(tmp_path, monkeypatch):
    stale = _killed_driver_dir(tmp_path)
    mine = tmp_path / f"poptune_{os.getpid()}_live"  # a live process's: left alone
    mine.mkdir()
    (mine / "driver.sock").touch()
    other = tmp_path / "poptune_999999999_x"  # no such process, but more than a socket
    other.mkdir()
    (other / "driver.sock").touch()
    (other / "notes.txt").touch()
    unrelated = tmp_path / "poptune_results"
    unrelated.mkdir()

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    backend = LocalBackend(num_cpus=1)
    try:
        backend._ensure_listener()
        assert not os.path.exists(stale)
        assert mine.is_dir() and other.is_dir() and unrelated.is_dir()
        own = backend._tmpdir
        assert own is not None and os.path.isdir(own)  # its own, named by its pid
        assert os.path.basename(own).startswith(f"poptune_{os.getpid()}_")
    finally:
        backend.shutdown()
    assert not os.path.exists(own)
    assert remove_stale_socket_dirs(str(tmp_path)) == []
