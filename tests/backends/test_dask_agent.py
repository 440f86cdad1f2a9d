"""What a Dask agent's end says (no cluster needed: the future is a stand-in)."""

from __future__ import annotations

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
