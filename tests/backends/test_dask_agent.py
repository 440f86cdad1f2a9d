"""What a Dask agent's end says (no cluster needed: the future is a stand-in), and the
environment its child process (and a local worker) gets."""

from __future__ import annotations

import os
from types import SimpleNamespace

from poptune.backends.dask import _DaskTaskAgent


def _cancelled(client_status: str) -> _DaskTaskAgent:
    client = SimpleNamespace(status=client_status,
                             scheduler=SimpleNamespace(address="tcp://10.0.0.1:8786"))
    return _DaskTaskAgent(SimpleNamespace(done=lambda: True, status="cancelled", client=client))


def test_a_task_cancelled_because_the_scheduler_is_gone_says_so():
    """A probe: a killed scheduler ended the run with "worker failed to start (Dask task
    cancelled)", naming no scheduler."""
    status = _cancelled("closed").exit_status()
    assert status is not None
    assert "connection to the Dask scheduler at tcp://10.0.0.1:8786 was lost" in status
    assert "Tuner.restore" in status
    assert _cancelled("running").exit_status() == "Dask task cancelled"


_READ_BACK = """
import json, os
from poptune.backends._worker import start_child
key, agent_id = start_child()
print(json.dumps({"key": key, "agent_id": agent_id,
                  "left": [n for n in ("POPTUNE_AUTHKEY", "POPTUNE_AGENT_ID") if n in os.environ],
                  "relay_from": os.environ.get("POPTUNE_RELAY_FROM"),
                  "unbuffered": os.environ.get("PYTHONUNBUFFERED")}))
"""


def test_the_agent_environment_reaches_the_child_which_takes_the_key_out(monkeypatch):
    """``worker_env`` (what ``serve_in_child`` and the local backend give their child) and
    ``start_child`` (what the child reads) agree: the key and agent id arrive and are gone
    from the child's environment afterwards (a trial does not see them); an override of None
    removes an inherited variable; ``python_path`` passes this process's ``sys.path``."""
    import json
    import subprocess
    import sys

    from poptune.backends._agent import worker_env

    monkeypatch.setenv("POPTUNE_RELAY_FROM", "inherited")
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    env = worker_env("ab" * 16, "a7", {"POPTUNE_RELAY_FROM": None}, python_path=True)
    assert "POPTUNE_RELAY_FROM" not in env
    out = subprocess.run([sys.executable, "-c", _READ_BACK], env=env, cwd="/",
                         capture_output=True, text=True, check=True, timeout=60).stdout
    assert json.loads(out) == {"key": "ab" * 16, "agent_id": "a7", "left": [],
                               "relay_from": None, "unbuffered": "1"}
    assert env["PYTHONPATH"].split(os.pathsep) == [p for p in sys.path if p]
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    monkeypatch.delenv("POPTUNE_TEST_DEFAULT", raising=False)
    local = worker_env("ab" * 16, "a7", {"POPTUNE_RELAYED": "1"},
                       {"OMP_NUM_THREADS": "1", "POPTUNE_TEST_DEFAULT": "x"})
    assert (local["POPTUNE_RELAYED"], local["OMP_NUM_THREADS"], local["POPTUNE_TEST_DEFAULT"]) == (
        "1", "8", "x")  # a default never replaces what the user set
    assert "PYTHONPATH" not in local or local["PYTHONPATH"] == os.environ.get("PYTHONPATH")
