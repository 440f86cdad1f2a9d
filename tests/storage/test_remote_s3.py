"""Remote storage against a real S3-compatible server (moto's server mode) on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from tests.storage._s3 import fresh_bucket, import_source, s3_env

pytest.importorskip("s3fs", reason="remote storage tests need `pip install s3fs moto[server]`")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)

TRAIN = textwrap.dedent('''
    import os, tempfile, time
    import poptune as tune

    def train(config):
        start = 0
        ckpt = tune.get_checkpoint()
        if ckpt:
            with ckpt.as_directory() as d:
                start = int(open(os.path.join(d, "step")).read())
        for step in range(start + 1, config["steps"] + 1):
            time.sleep(config.get("sleep", 0.0))
            ckpt = None
            if step % 2 == 0:
                d = tempfile.mkdtemp()
                open(os.path.join(d, "step"), "w").write(str(step))
                ckpt = tune.Checkpoint.from_directory(d)
            tune.report({"value": step * config["k"]}, checkpoint=ckpt)
''')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server():
    port = _free_port()
    proc = subprocess.Popen([os.path.join(BIN, "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def s3(s3_server, monkeypatch, tmp_path):
    env = s3_env(monkeypatch, s3_server, str(tmp_path / "staging"))
    fs, bucket = fresh_bucket("b")
    s3mod = import_source(tmp_path, "s3mod", TRAIN)
    yield fs, bucket, s3mod, env
    sys.path.remove(str(tmp_path))


def test_experiment_lives_on_s3(s3):
    import poptune as tune

    fs, bucket, mod, _ = s3
    grid = tune.Tuner(mod.train, param_space={"k": tune.grid_search([1, 2]), "steps": 6},
                      tune_config=tune.TuneConfig(metric="value", mode="max"),
                      run_config=tune.RunConfig(name="exp", storage_path=f"s3://{bucket}/runs",
                                                verbose=0)).fit()
    assert grid.num_errors == 0
    assert grid.experiment_path == f"s3://{bucket}/runs/exp"
    files = fs.find(f"{bucket}/runs/exp")
    assert any(f.endswith("tuner.pkl") for f in files)
    assert any("/journal/" in f for f in files)
    assert sum(f.endswith("result.json") for f in files) == 2
    ckpts = {f.rsplit("/", 2)[-2] for f in files if "/checkpoint_" in f}
    assert ckpts >= {"checkpoint_000000", "checkpoint_000002"}
    best = grid.get_best_result()
    assert best.checkpoint.path.startswith(f"{bucket}/runs/exp")
    with best.checkpoint.as_directory() as d:
        assert open(os.path.join(d, "step")).read() == "6"
    assert list(best.metrics_dataframe["value"]) == [2, 4, 6, 8, 10, 12]


DRIVER = textwrap.dedent('''
    import sys
    sys.path.insert(0, {moddir!r})
    import poptune as tune
    import s3mod
    tune.Tuner(s3mod.train, param_space={{"k": tune.grid_search([1, 2, 3]), "steps": 30,
                                         "sleep": 0.02}},
               run_config=tune.RunConfig(name="crash", storage_path={storage!r}, verbose=0)).fit()
''')


def test_restore_from_s3_on_a_fresh_machine_after_driver_sigkill(s3, tmp_path):
    import json

    import poptune as tune

    fs, bucket, mod, env = s3
    storage = f"s3://{bucket}/runs"
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(moddir=str(tmp_path), storage=storage))
    proc = subprocess.Popen([sys.executable, str(script)],
                            env={**os.environ, **env, "PYTHONPATH": ROOT,
                                 "POPTUNE_STAGING_DIR": str(tmp_path / "machine-a")})
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until results are on S3
        segs = fs.find(f"{bucket}/runs/crash/journal") if fs.exists(f"{bucket}/runs/crash/journal") else []
        fs.invalidate_cache()
        n = sum(fs.cat_file(s).count(b'"e":"result"') for s in segs)
        if n >= 20:
            break
        assert proc.poll() is None
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    # "a fresh machine": a new staging dir, nothing local from the first driver (the lease of
    # the killed driver is taken over at once as its pid is gone from this host)
    os.environ["POPTUNE_STAGING_DIR"] = str(tmp_path / "machine-b")
    exp = f"{storage}/crash"
    assert tune.Tuner.can_restore(exp)
    grid = tune.Tuner.restore(exp, trainable=mod.train).fit()
    assert grid.num_errors == 0 and len(grid) == 3
    fs.invalidate_cache()
    for r in grid:
        assert r.metrics["training_iteration"] == 30
        rows = [json.loads(line) for line in fs.cat_file(r.path.split("://", 1)[1] + "/result.json").decode().splitlines()]
        assert [row["training_iteration"] for row in rows] == list(range(1, 31))


def test_unwritable_bucket_is_a_clear_error(s3):
    import poptune as tune
    from poptune.exceptions import StorageError

    with pytest.raises(StorageError, match="remote storage"):
        tune.Tuner(lambda c: None, run_config=tune.RunConfig(
            storage_path="s3://no-such-bucket-poptune/x", verbose=0)).fit()


def test_repair_of_a_damaged_journal_on_s3_then_restore_finishes(s3, monkeypatch, capsys):
    """``poptune repair s3://...``: the damage is shown, nothing is cut unasked, the cut moves
    the segments past the last good commit aside, and restore then finishes the trial."""
    import poptune as tune
    from poptune import cli
    from poptune.exceptions import RestoreError
    from poptune.storage.lock import LEASE_FILE, RemoteLease
    from poptune.storage.remote import RemoteStorage

    fs, bucket, mod, _ = s3
    uri = f"s3://{bucket}/runs/rep"
    tune.Tuner(mod.train, param_space={"k": 1, "steps": 6},
               run_config=tune.RunConfig(name="rep", storage_path=f"s3://{bucket}/runs",
                                         verbose=0)).fit()
    remote = RemoteStorage(uri)
    segments = remote.journal_segments()
    # damage the segment holding the 4th result (bytes flipped inside it, size unchanged)
    hits = [(p, size) for p, size in segments if b'"e":"result"' in fs.cat_file(p)]
    path, _ = hits[3]
    data = fs.cat_file(path)
    at = data.index(b'"e":"result"')
    fs.pipe_file(path, data[:at] + b"#" * 12 + data[at + 12:])
    offset = sum(size for p, size in segments[:segments.index((path, len(data)))])
    with pytest.raises(RestoreError, match="damaged|unreadable|checksum"):
        tune.Tuner.restore(uri, trainable=mod.train)

    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert cli.main(["repair", uri]) == 1  # shown, not cut unasked
    out = capsys.readouterr().out
    assert f"{uri}/journal/" in out and "Not truncated" in out
    assert len(remote.journal_segments()) == len(segments)

    lease = RemoteLease(remote.fs, remote.path_of(LEASE_FILE), uri, settle_s=0)
    try:  # a live driver holds it: repair refuses, naming the holder
        assert cli.main(["repair", uri, "--yes"]) == 1
        assert "pid" in capsys.readouterr().err
    finally:
        lease.release()

    assert cli.main(["repair", uri, "--yes"]) == 0
    out = capsys.readouterr().out
    assert "Truncated" in out and f"byte {offset}" in out
    kept = remote.journal_segments()
    assert sum(size for _, size in kept) == offset
    aside = [f for f in fs.find(f"{bucket}/runs/rep") if "/journal-damaged-" in f]
    assert len(aside) == len(segments) - len(kept)
    assert cli.main(["repair", uri]) == 0 and "no damage" in capsys.readouterr().out

    grid = tune.Tuner.restore(uri, trainable=mod.train).fit()
    assert grid.num_errors == 0 and grid[0].metrics["training_iteration"] == 6
    assert list(grid[0].metrics_dataframe["value"]) == [1, 2, 3, 4, 5, 6]
