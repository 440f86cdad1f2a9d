"""A trial in a Dask worker's thread keeps running after the driver killed it (a Dask task
cannot be stopped): a probe saw such a trial wake up and replace on S3 a checkpoint the
driver's journal credits to the trial's retry. Such a trial now checks, before writing a
checkpoint, that the driver still holds its connection, and ends instead."""

from __future__ import annotations

import os
import socket
from multiprocessing.connection import Connection

import pytest

from poptune.backends._worker import Worker
from poptune.checkpoint import Checkpoint
from poptune.exceptions import TrialStopped
from poptune.session import TuneContext, _Session


def _agent_and_driver():
    a, b = socket.socketpair()
    worker = Worker(Connection(a.detach()), "agent", manage_process=False)
    worker.guards_checkpoints = True  # as _agent.serve sets it for a Dask task
    return worker, Connection(b.detach())


def _session(worker, tmp_path):
    ctx = TuneContext(trial_id="t", trial_name="t", trial_dir=str(tmp_path / "trial"),
                      experiment_name="e", experiment_dir=str(tmp_path))
    os.makedirs(ctx.trial_dir)

    class Spec:  # the LaunchSpec fields a session reads
        restore_path, start_iteration, time_total_offset, next_checkpoint_index = None, 0, 0.0, 0
        storage_trial_dir, timesteps_total, episodes_total = None, None, None

    return worker._new_session(ctx, lambda result: None, Spec())


def _checkpoint(tmp_path, name):
    d = tmp_path / name
    d.mkdir()
    (d / "w").write_text(name)
    return Checkpoint.from_directory(str(d))


def test_a_killed_trial_in_a_dask_thread_writes_no_checkpoint(tmp_path):
    worker, driver = _agent_and_driver()
    sess = _session(worker, tmp_path)
    assert sess.persist_checkpoint(_checkpoint(tmp_path, "a")) == "checkpoint_000000"
    driver.send("stop")  # a decision waiting for the trial is not taken as the driver's end
    assert sess.persist_checkpoint(_checkpoint(tmp_path, "b")) == "checkpoint_000001"
    assert worker.conn.recv() == "stop"  # and is left for the trial to read
    driver.close()  # the driver killed the trial: it closed the connection
    with pytest.raises(TrialStopped, match="the driver ended this trial"):
        sess.persist_checkpoint(_checkpoint(tmp_path, "c"))
    assert sorted(os.listdir(tmp_path / "trial")) == ["checkpoint_000000", "checkpoint_000001"]
    worker.conn.close()


def test_a_worker_process_of_its_own_does_not_check(tmp_path):
    """The local and Ray backends kill the whole process: nothing to check per checkpoint."""
    a, b = socket.socketpair()
    worker = Worker(Connection(a.detach()), "agent")
    assert _session(worker, tmp_path).driver_alive is None
    worker.conn.close()
    b.close()
