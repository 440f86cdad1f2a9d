"""Remote storage that disappears while ``Tuner.fit()`` is running (a real moto S3 server on
loopback, SIGKILLed mid-run, then restarted on the same port with the same data).

The contract (``poptune/storage/remote.py``, docs/cluster.md "Failures"): a journal segment is
on storage before the trials whose records it holds are answered, and storage that cannot be
written is a ``StorageError`` naming the URI. So with the server gone ``fit()`` must end --
neither hang nor return a result grid as if nothing happened -- and every result a trial saw
acknowledged must be on storage, so that once storage is back ``Tuner.restore("s3://…")``
finishes the experiment with each iteration recorded exactly once.

moto's server keeps its state in memory; its recorder (``MOTO_ENABLE_RECORDING``) logs every
request to a file and replays it into a new server, which gives "restart with the same data".
"""

from __future__ import annotations

import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request

import pytest

from tests.storage._s3 import fresh_bucket, import_source, s3_env
from tests._net import free_port as _free_port

pytest.importorskip("s3fs", reason="remote storage tests need `pip install s3fs moto[server]`")

BIN = os.path.dirname(sys.executable)
STEPS = 40
KILL_AFTER_ACKS = 14  # total acknowledged reports (all trials) before the server is killed

TRAIN = textwrap.dedent('''
    import os, tempfile, time
    import poptune as tune

    def train(config):
        start = 0
        ckpt = tune.get_checkpoint()
        if ckpt:
            with ckpt.as_directory() as d:
                start = int(open(os.path.join(d, "step")).read())
        trial_id = tune.get_context().get_trial_id()
        for step in range(start + 1, config["steps"] + 1):
            time.sleep(0.02)
            ckpt = None
            if step % 5 == 0:  # most reports carry no checkpoint (none to upload)
                d = tempfile.mkdtemp()
                open(os.path.join(d, "step"), "w").write(str(step))
                ckpt = tune.Checkpoint.from_directory(d)
            tune.report({"value": step * config["k"]}, checkpoint=ckpt)
            # report returned: the driver acknowledged this result
            fd = os.open(config["acks"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            os.write(fd, f"{trial_id} {step}\\n".encode())
            os.close(fd)
''')


class RecordingS3Server:
    """``moto_server`` with its recorder on, so a restarted server can get the same data."""

    def __init__(self, recording: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.recording = recording
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ, MOTO_ENABLE_RECORDING="True",
                   MOTO_RECORDER_FILEPATH=self.recording)
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert self.proc.poll() is None, "moto_server exited"
                assert time.monotonic() < deadline, "moto_server did not start"
                time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def restart_with_same_data(self) -> None:
        # a request being logged when the server was SIGKILLed leaves a partial last line
        with open(self.recording, "rb") as f:
            data = f.read()
        with open(self.recording, "wb") as f:
            f.write(data[:data.rfind(b"\n") + 1])
        self.start()
        req = urllib.request.Request(f"{self.url}/moto-api/recorder/replay-recording",
                                     method="POST")
        with urllib.request.urlopen(req, timeout=120) as resp:
            assert resp.status == 200

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def s3_outage(monkeypatch, tmp_path):
    server = RecordingS3Server(str(tmp_path / "moto_recording.jsonl"))
    server.start()
    s3_env(monkeypatch, server.url, str(tmp_path / "machine-a"))
    _, bucket = fresh_bucket("outage")
    s3outagemod = import_source(tmp_path, "s3outagemod", TRAIN)
    try:
        yield server, bucket, s3outagemod
    finally:
        sys.path.remove(str(tmp_path))
        server.stop()
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()


def _acks(path: str) -> set[tuple[str, int]]:
    try:
        with open(path) as f:
            return {(t, int(s)) for t, s in (line.split() for line in f if line.endswith("\n"))}
    except FileNotFoundError:
        return set()


def _journaled_results(raw: bytes) -> set[tuple[str, int]]:
    out = set()
    for line in raw.splitlines():
        rec = json.loads(line)
        if rec.get("e") == "result":
            out.add((rec["t"], rec["r"]["training_iteration"]))
    return out


@pytest.mark.slow
@pytest.mark.timeout(240)  # fit() must end on its own; this only keeps a regression from hanging CI
def test_s3_killed_mid_run_is_a_storage_error_and_restore_finishes(s3_outage, tmp_path):
    import s3fs

    import poptune as tune
    from poptune.exceptions import StorageError

    server, bucket, mod = s3_outage
    uri = f"s3://{bucket}/runs/outage"
    acks = str(tmp_path / "acks.txt")

    def kill_when_trials_are_reporting() -> None:
        deadline = time.monotonic() + 180
        while len(_acks(acks)) < KILL_AFTER_ACKS and time.monotonic() < deadline:
            time.sleep(0.005)
        server.kill()

    killer = threading.Thread(target=kill_when_trials_are_reporting, daemon=True)
    killer.start()
    tuner = tune.Tuner(mod.train,
                       param_space={"k": tune.grid_search([1, 2]), "steps": STEPS, "acks": acks},
                       run_config=tune.RunConfig(name="outage", storage_path=f"s3://{bucket}/runs",
                                                 verbose=0))
    # not a hang, not a result grid: an error that says which storage failed
    with pytest.raises(StorageError, match=re.escape(repr(uri))) as raised:
        tuner.fit()
    # the error that stopped the run, not a later one from the final upload at close
    assert "writing the journal failed" in str(raised.value)
    killer.join(timeout=10)
    acked = _acks(acks)
    assert len(acked) >= KILL_AFTER_ACKS, "the server was killed before trials reported"
    assert max(step for _, step in acked) < STEPS, "the run finished before the server died"

    # the local working copy holds every acknowledged result
    (local_journal,) = glob.glob(str(tmp_path / "machine-a" / "outage-*" / "journal.jsonl"))
    with open(local_journal, "rb") as f:
        assert acked <= _journaled_results(f.read())

    # storage is back, with what it had stored: every acknowledged result is in its journal
    server.restart_with_same_data()
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    segments = sorted(fs.find(f"{bucket}/runs/outage/journal"))
    remote_results = _journaled_results(b"".join(fs.cat_file(s) for s in segments))
    missing = acked - remote_results
    assert not missing, f"acknowledged results not on storage: {sorted(missing)}"

    # ... and the experiment continues from any machine, each iteration recorded once
    os.environ["POPTUNE_STAGING_DIR"] = str(tmp_path / "machine-b")
    assert tune.Tuner.can_restore(uri)
    grid = tune.Tuner.restore(uri, trainable=mod.train).fit()
    assert grid.num_errors == 0 and len(grid) == 2
    fs.invalidate_cache()
    for r in grid:
        assert r.metrics["training_iteration"] == STEPS
        rows = [json.loads(line) for line in
                fs.cat_file(r.path.split("://", 1)[1] + "/result.json").decode().splitlines()]
        assert [row["training_iteration"] for row in rows] == list(range(1, STEPS + 1))
        assert [row["value"] for row in rows] == [s * r.config["k"] for s in range(1, STEPS + 1)]
        with r.checkpoint.as_directory() as d, open(os.path.join(d, "step")) as f:
            assert f.read() == str(STEPS)
