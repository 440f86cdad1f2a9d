"""Remote storage against a real S3-compatible server (moto's server mode) on loopback."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.storage._s3 import fresh_bucket, free_port, import_source, s3_env, s3_server  # noqa: F401

pytest.importorskip("s3fs", reason="remote storage tests need `pip install s3fs moto[server]`")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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


# -- poptune ls / show / plot on s3 -----------------------------------------------------------
def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    from poptune import cli

    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _table(out: str) -> list[str]:
    """The lines of a command's output from its table's first border on."""
    lines = out.splitlines()
    return lines[next(i for i, line in enumerate(lines) if line.startswith("┏")):]


def test_show_and_ls_on_s3_print_what_they_print_for_a_local_copy(s3, tmp_path, monkeypatch,
                                                                  capsys):
    """``show``/``ls`` read a remote experiment through the same replay as a local one (same
    trials, metrics, configs, status), by URI, ``--storage URI`` or ``$POPTUNE_STORAGE_PATH``,
    and leave nothing in the temporary directory."""
    import tempfile

    import poptune as tune
    from poptune.storage.remote import RemoteStorage

    fs, bucket, mod, _ = s3
    monkeypatch.setenv("COLUMNS", "200")
    from poptune.schedulers import PopulationBasedTraining

    pbt = PopulationBasedTraining(perturbation_interval=2, synch=True, seed=1,
                                  hyperparam_mutations={"k": [1, 2, 3]})
    tune.Tuner(mod.train, param_space={"k": tune.grid_search([1, 2, 3]), "steps": 6},
               tune_config=tune.TuneConfig(metric="value", mode="max", backend="simulated",
                                           scheduler=pbt),
               run_config=tune.RunConfig(name="exp", storage_path=f"s3://{bucket}/runs",
                                         verbose=0)).fit()
    uri = f"s3://{bucket}/runs/exp"
    local_root = tmp_path / "copy"
    RemoteStorage(uri).download_experiment(str(local_root / "exp"))  # as Tuner.restore does
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))

    code, out, err = _cli(capsys, "show", uri)
    assert code == 0, err
    code_local, out_local, _ = _cli(capsys, "show", str(local_root / "exp"))
    assert code_local == 0
    assert out.splitlines()[0].split() == ["exp", "finished", uri]
    assert out.splitlines()[1:] == out_local.splitlines()[1:]  # counts, best, the trial table
    table = "\n".join(_table(out))
    assert "value (max)" in table and table.count("TERMINATED") == 3 and "exploits" in table
    assert "exploits; started" in out and " 0 exploits" not in out
    assert _cli(capsys, "show", "exp", "--storage", f"s3://{bucket}/runs/")[1] == out

    code, out, err = _cli(capsys, "ls", f"s3://{bucket}/runs")
    assert code == 0, err
    assert out.splitlines()[0] == f"Experiments in s3://{bucket}/runs"
    assert _table(out) == _table(_cli(capsys, "ls", str(local_root))[1])
    assert "exp" in out and "finished" in out and "3: 3 terminated" in out
    monkeypatch.setenv("POPTUNE_STORAGE_PATH", f"s3://{bucket}/runs")
    assert _cli(capsys, "ls")[1] == out
    assert _cli(capsys, "show", "exp")[1].splitlines()[1:] == out_local.splitlines()[1:]
    if importlib.util.find_spec("matplotlib"):
        code, out, err = _cli(capsys, "plot", uri, "--out", str(tmp_path / "plots"))
        assert code == 0, err
        assert [os.path.basename(p) for p in out.split()] == [
            "metric.png", "schedules.png", "family_tree.png", "scatter_k.png"]
        assert all(os.path.getsize(p) for p in out.split())
    assert os.listdir(tmp) == []  # every download removed


def test_show_of_a_live_experiment_on_s3_says_running(s3, capsys):
    """The driver's lease comes with the copy: ``running`` while a live driver holds it,
    ``interrupted`` (not "recently modified") once no driver does."""
    import poptune as tune
    from poptune.storage.lock import LEASE_FILE, RemoteLease
    from poptune.storage.remote import RemoteStorage

    fs, bucket, mod, _ = s3
    uri = f"s3://{bucket}/runs/live"
    tune.Tuner(mod.train, param_space={"k": 1, "steps": 2},
               tune_config=tune.TuneConfig(backend="simulated"),
               run_config=tune.RunConfig(name="live", storage_path=f"s3://{bucket}/runs",
                                         verbose=0)).fit()
    remote = RemoteStorage(uri)
    segments = remote.journal_segments()
    last, _ = segments[-1]
    assert b'"e":"end"' in fs.cat_file(last)
    fs.rm(last)  # the run never ended
    assert _cli(capsys, "show", uri)[1].split()[1] == "interrupted"
    lease = RemoteLease(remote.fs, remote.path_of(LEASE_FILE), uri, settle_s=0)
    try:
        assert _cli(capsys, "show", uri)[1].split()[1] == "running"
    finally:
        lease.release()


def test_missing_experiment_on_s3_exits_2_naming_the_uri(s3, tmp_path, capsys):
    fs, bucket, _, _ = s3
    fs.pipe_file(f"{bucket}/runs/not_exp/params.json", b"{}")  # a directory, no journal
    for argv in (["show", f"s3://{bucket}/runs/nope"], ["show", "nope", "--storage",
                                                         f"s3://{bucket}/runs"],
                 ["plot", f"s3://{bucket}/runs/nope", "--out", str(tmp_path)],
                 ["show", f"s3://{bucket}/runs/not_exp"]):
        code, out, err = _cli(capsys, *argv)
        uri = argv[1] if "://" in argv[1] else f"{argv[3]}/{argv[1]}"
        assert code == 2 and out == ""
        assert err == (f"poptune {argv[0]}: error: no experiment at {uri} (looked for its "
                       f"journal segments {uri}/journal/*.jsonl)\n")
    code, out, err = _cli(capsys, "ls", f"s3://{bucket}/runs")
    assert code == 0 and out.strip() == f"No experiments in s3://{bucket}/runs"
    code, _, err = _cli(capsys, "ls", f"s3://{bucket}/missing")
    assert (code, err) == (2, f"poptune ls: error: storage s3://{bucket}/missing does not exist\n")
    code, _, err = _cli(capsys, "plot", f"s3://{bucket}/runs/nope")
    assert code == 2 and "--out DIR is required" in err and f"s3://{bucket}/runs/nope" in err


def test_unreachable_s3_is_one_line_and_exit_1(s3, monkeypatch, capsys):
    import s3fs

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # no retries: fail fast
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        for argv in (["show", "s3://b/runs/exp"], ["ls", "s3://b/runs"]):
            code, out, err = _cli(capsys, *argv)
            assert code == 1 and out == ""
            assert err.count("\n") == 1 and "s3://b/runs" in err and "failed" in err
    finally:
        s3fs.S3FileSystem.clear_instance_cache()


def test_download_never_writes_outside_the_local_directory(s3, tmp_path):
    """A key such as ``exp/a/../../../x`` (S3 keys are plain strings) is not fetched: it
    would land outside the copy (Tuner.restore's staging directory, the CLI's temporary one)."""
    from poptune.storage.remote import RemoteStorage

    fs, bucket, _, _ = s3
    fs.pipe_file(f"{bucket}/runs/e/journal/0000000001.jsonl", b"x\n")
    fs.pipe_file(f"{bucket}/runs/e/a/../../../escaped.txt", b"bad")
    fs.pipe_file(f"{bucket}/runs/e/t/params.json", b"{}")
    RemoteStorage(f"s3://{bucket}/runs/e").download_experiment(str(tmp_path / "dl" / "sub" / "e"))
    files = sorted(str(p.relative_to(tmp_path / "dl")) for p in (tmp_path / "dl").rglob("*")
                   if p.is_file())
    assert files == ["sub/e/journal.jsonl", "sub/e/t/params.json"]


def test_resume_on_s3_by_uri_finishes_an_interrupted_experiment(s3, tmp_path, capsys):
    """``poptune resume s3://...`` restores through the URI (as Tuner.restore does): the
    interrupted trials finish, the finished one is not run again."""
    import poptune as tune
    from poptune.callbacks import Callback

    fs, bucket, mod, _ = s3

    class Interrupt(Callback):
        results = 0

        def on_trial_result(self, iteration, trials, trial, result, **info):
            Interrupt.results += 1
            if Interrupt.results == 7:
                raise KeyboardInterrupt

    tune.Tuner(mod.train, param_space={"k": tune.grid_search([1, 2]), "steps": 6},
               tune_config=tune.TuneConfig(backend="simulated", max_concurrent_trials=1),
               run_config=tune.RunConfig(name="exp", storage_path=f"s3://{bucket}/runs",
                                         verbose=0, callbacks=[Interrupt()])).fit()
    uri = f"s3://{bucket}/runs/exp"
    code, out, err = _cli(capsys, "resume", uri, "--trainable", "s3mod:train")
    assert code == 0, err
    assert "2 trials, 2 terminated, 0 errored" in out
    grid = tune.Tuner.restore(uri, mod.train).get_results()
    assert sorted(r.metrics["value"] for r in grid) == [6, 12]
    code, _, err = _cli(capsys, "resume", f"s3://{bucket}/runs/nope", "--trainable",
                        "s3mod:train")
    assert code == 2 and "cannot be resumed" in err
