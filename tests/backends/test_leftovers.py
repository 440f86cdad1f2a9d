"""The session-end check in ``tests/conftest.py``: a Ray or Dask process the suite started and
did not stop is found (and then fails the run); one that was stopped is not."""

from __future__ import annotations

import shutil
import subprocess


def test_a_ray_process_started_by_the_suite_is_found_until_it_is_stopped():
    from tests.conftest import leftovers

    # ``sleep`` named "raylet"; it inherits the marker (Popen returns once it has exec'd)
    fake = subprocess.Popen(["raylet", "60"], executable=shutil.which("sleep"))
    try:
        procs, _ = leftovers(wait=0)
        assert fake.pid in [pid for pid, _ in procs]
    finally:
        fake.kill()
        fake.wait()
    procs, _ = leftovers(wait=0)
    assert fake.pid not in [pid for pid, _ in procs]


def test_an_unrelated_process_is_not_counted():
    from tests.conftest import leftovers

    plain = subprocess.Popen(["sleep", "60"])
    try:
        procs, _ = leftovers(wait=0)
        assert plain.pid not in [pid for pid, _ in procs]
    finally:
        plain.kill()
        plain.wait()
