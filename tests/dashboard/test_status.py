"""``running`` vs ``interrupted`` comes from the driver's lock or lease, not the journal's age.

A live experiment whose trials all hang writes nothing to its journal for as long as they
hang; while its driver holds the lock it is ``running``. Experiments here are tiny journals
written in ``tmp_path`` (a header and one trial, no ``end`` record), aged with ``os.utime``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from poptune.dashboard.data import ExperimentView
from poptune.storage.journal import Journal
from poptune.storage.lock import HOLDER_FILE, LEASE_FILE, LOCK_FILE, acquire_experiment
from poptune.storage.records import ExperimentStarted, ResultReported

HOUR_AGO = time.time() - 3600


def unfinished(tmp_path: Path, name: str = "exp") -> Path:
    """An experiment directory whose journal has no ``end`` record, last written an hour ago."""
    exp = tmp_path / name
    exp.mkdir()
    journal = Journal(str(exp / "journal.jsonl"))
    journal.append(ExperimentStarted(name, "train", "score", "max", HOUR_AGO, "abcde"))
    journal.append(ResultReported("abcde_00000", {"score": 1.0, "training_iteration": 1}))
    journal.close()
    os.utime(exp / "journal.jsonl", (HOUR_AGO, HOUR_AGO))
    return exp


def status(exp: Path) -> str:
    view = ExperimentView(str(exp))
    view.refresh()
    return view.summary()["status"]


def test_an_old_journal_is_running_while_a_live_driver_holds_the_lock(tmp_path: Path) -> None:
    exp = unfinished(tmp_path)
    with acquire_experiment(str(exp)):  # this test process is the live driver
        assert status(exp) == "running"
    assert status(exp) == "interrupted"  # released: the lock file stays, nobody holds it


def test_a_killed_drivers_holder_file_does_not_count_as_running(tmp_path: Path) -> None:
    exp = unfinished(tmp_path)
    acquire_experiment(str(exp)).release()  # leaves the lock file, as every run does
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    holder = {"host": socket.gethostname(), "pid": int(dead.stdout), "since": "x", "version": "x"}
    (exp / HOLDER_FILE).write_text(json.dumps(holder))
    assert status(exp) == "interrupted"
    holder["pid"] = os.getpid()  # a live process that does not hold the lock (a reused pid)
    (exp / HOLDER_FILE).write_text(json.dumps(holder))
    assert status(exp) == "interrupted"


def test_without_a_lock_file_the_journal_age_decides(tmp_path: Path) -> None:
    exp = unfinished(tmp_path)  # e.g. a copy downloaded from remote storage
    assert not (exp / LOCK_FILE).exists()
    assert status(exp) == "interrupted"
    os.utime(exp / "journal.jsonl")  # written just now
    assert status(exp) == "running"


def test_a_lease_decides_by_its_expiry(tmp_path: Path) -> None:
    exp = unfinished(tmp_path)
    holder = {"host": "another-host", "pid": 1, "since": "x", "version": "x"}
    lease = {"holder": holder, "token": "t", "expires_at": time.time() + 3600}
    (exp / LEASE_FILE).write_text(json.dumps(lease))
    assert status(exp) == "running"
    lease["expires_at"] = time.time() - 60
    (exp / LEASE_FILE).write_text(json.dumps(lease))
    os.utime(exp / "journal.jsonl")  # fresh journal, but the driver's lease has expired
    assert status(exp) == "interrupted"
