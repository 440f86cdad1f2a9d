"""The session-end check in ``tests/conftest.py``: a Ray or Dask process the suite started and
did not stop is found (and then fails the run); one that was stopped is not."""

from __future__ import annotations

import shutil
import subprocess
import time


def _started(proc: subprocess.Popen) -> None:
    """Wait until the kernel shows the new program's command line (``Popen`` returns as soon
    as ``exec`` begins; ``/proc/<pid>/cmdline`` and ``environ`` are empty until it ends)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
            if f.read():
                return
        time.sleep(0.01)


def _pids(procs):
    return [pid for pid, _ in procs]


def test_a_ray_process_started_by_the_suite_is_found_until_it_is_stopped():
    from tests.conftest import leftovers

    # ``sleep`` named "raylet"; it inherits the session's marker
    fake = subprocess.Popen(["raylet", "60"], executable=shutil.which("sleep"))
    try:
        _started(fake)
        assert fake.pid in _pids(leftovers(wait=0)[0])
    finally:
        fake.kill()
        fake.wait()
    assert fake.pid not in _pids(leftovers(wait=0)[0])


def test_an_unrelated_process_is_not_counted():
    from tests.conftest import leftovers

    plain = subprocess.Popen(["sleep", "60"])
    try:
        _started(plain)
        assert plain.pid not in _pids(leftovers(wait=0)[0])
    finally:
        plain.kill()
        plain.wait()
