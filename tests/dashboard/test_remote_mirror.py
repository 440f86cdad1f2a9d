"""The dashboard on remote storage: a local mirror of experiments on a real S3-compatible
server (moto's server mode on loopback), served by the same app as local storage."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from tests.storage._s3 import fresh_bucket, import_source, s3_env, s3_server  # noqa: F401

pytest.importorskip("s3fs", reason="remote storage tests need `pip install s3fs moto[server]`")

from poptune.dashboard import create_app  # noqa: E402
from poptune.dashboard.mirror import QUIET_PASSES, RemoteMirror  # noqa: E402
from tests.dashboard._client import LOCAL, TestClient  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TRAIN = textwrap.dedent('''
    import json, os, tempfile, time
    import poptune as tune

    def pbt_train(config):
        start, w = 0, 0.0
        ckpt = tune.get_checkpoint()
        if ckpt:
            with ckpt.as_directory() as d:
                start, w = json.load(open(os.path.join(d, "s.json")))
        for step in range(start + 1, 13):
            w += config["lr"]
            d = tempfile.mkdtemp()
            json.dump([step, w], open(os.path.join(d, "s.json"), "w"))
            tune.report({"w": w}, checkpoint=tune.Checkpoint.from_directory(d))

    def train(config):
        for step in range(1, config["steps"] + 1):
            time.sleep(config.get("sleep", 0.0))
            if step == config.get("fail_at"):
                raise ValueError(f"planned failure at step {step}")
            tune.report({"value": step * config["k"]})
''')


@pytest.fixture
def s3(s3_server, monkeypatch, tmp_path):  # noqa: F811 - the module's server
    env = s3_env(monkeypatch, s3_server, str(tmp_path / "staging"))
    fs, bucket = fresh_bucket("m")
    mod = import_source(tmp_path, "mirrormod", TRAIN)
    yield fs, bucket, mod, env
    sys.path.remove(str(tmp_path))


def _fit(mod: Any, bucket: str, name: str, **space: Any) -> Any:
    import poptune as tune

    return tune.Tuner(mod.train, param_space={"steps": 3, "k": 1, **space},
                      tune_config=tune.TuneConfig(backend="simulated"),
                      run_config=tune.RunConfig(name=name, storage_path=f"s3://{bucket}/runs",
                                                verbose=0)).fit()


def _experiments(client: TestClient) -> dict[str, Any]:
    r = client.get("/api/experiments")
    assert r.status_code == 200, r.text
    return {e["name"]: e for e in r.json()["experiments"]}


def test_a_live_experiment_on_s3_is_followed_until_it_finishes(s3, tmp_path):
    """A driver in another process runs on S3; the mirror shows it ``running`` with results
    arriving, then ``finished`` with every result, as the local dashboard would."""
    fs, bucket, mod, env = s3
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(f'''
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import poptune as tune
        import mirrormod
        tune.Tuner(mirrormod.train,
                   param_space={{"k": tune.grid_search([1, 2]), "steps": 40, "sleep": 0.05}},
                   tune_config=tune.TuneConfig(metric="value", mode="max"),
                   run_config=tune.RunConfig(name="live", storage_path="s3://{bucket}/runs",
                                             verbose=0)).fit()
    '''))
    local = tmp_path / "mirror"
    mirror = RemoteMirror(f"s3://{bucket}/runs", str(local))
    client = TestClient(create_app(str(local)), base_url=LOCAL)
    driver = subprocess.Popen([sys.executable, str(script)], env={**os.environ, **env})
    seen_running: list[int] = []
    try:
        while driver.poll() is None:
            mirror.sync()
            live = _experiments(client).get("live")
            if live is not None and live["status"] == "running":
                seen_running.append(live["num_results"])
            time.sleep(0.3)
        assert driver.returncode == 0
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    mirror.sync()
    done = _experiments(client)["live"]
    assert len(set(seen_running)) >= 2, seen_running  # followed while results came in
    assert min(seen_running) < 80
    assert done["status"] == "finished" and done["modified"] >= done["start"]
    assert done["num_results"] == 80 and done["counts"] == {"TERMINATED": 2}
    assert done["metric"] == "value" and done["best"]["value"] == 80
    trials = client.get("/api/experiments/live/trials").json()["trials"]
    series = client.get("/api/experiments/live/series", params={"metric": "value"}).json()
    assert {tid: [p[0] for p in s["points"]] for tid, s in series["series"].items()} == {
        t["id"]: list(range(1, 41)) for t in trials}
    # nothing but what the dashboard reads: no checkpoint, result or params file
    copied = {f for _, _, files in os.walk(local) for f in files}
    assert copied <= {"journal.jsonl", "pbt_global.txt", ".driver_lease.json", "error.txt",
                      "tuner.pkl"}


def test_a_new_run_under_the_same_name_replaces_the_mirrored_one(s3, tmp_path):
    """A journal rewritten on storage (here set aside by a new run of the same name) is copied
    again whole, and the dashboard starts over from it instead of mixing the two runs; an
    experiment deleted on storage leaves the dashboard."""
    fs, bucket, mod, _ = s3
    _fit(mod, bucket, "exp", k=__import__("poptune").grid_search([1, 2]))
    local = tmp_path / "mirror"
    mirror = RemoteMirror(f"s3://{bucket}/runs", str(local))
    mirror.sync()
    client = TestClient(create_app(str(local)), base_url=LOCAL)
    first = _experiments(client)["exp"]
    assert first["num_trials"] == 2 and first["status"] == "finished"
    _fit(mod, bucket, "exp", k=__import__("poptune").grid_search([1, 2, 3]), steps=5)
    for _ in range(QUIET_PASSES + 1):  # a finished run is looked at again now and then
        mirror.sync()
    second = _experiments(client)["exp"]
    assert second["num_trials"] == 3 and second["num_results"] == 15
    assert second["runs"] == 1  # the earlier run is not mixed in
    fs.rm(f"{bucket}/runs/exp/journal", recursive=True)  # its journal left storage
    for _ in range(QUIET_PASSES + 1):
        mirror.sync()
    assert _experiments(client) == {} and not (local / "exp" / "journal.jsonl").exists()
    fs.rm(f"{bucket}/runs/exp", recursive=True)  # deleted on storage: gone at the next pass
    mirror.sync()
    assert os.listdir(local) == []


def test_a_failed_trials_error_text_comes_from_storage(s3, tmp_path):
    fs, bucket, mod, _ = s3
    grid = _fit(mod, bucket, "bad", fail_at=2)
    assert grid.num_errors == 1
    local = tmp_path / "mirror"
    RemoteMirror(f"s3://{bucket}/runs/bad", str(local)).sync()  # one experiment's URI
    client = TestClient(create_app(str(local)), base_url=LOCAL)
    assert _experiments(client)["bad"]["counts"] == {"ERROR": 1}
    trial = client.get("/api/experiments/bad/trials").json()["trials"][0]
    text = client.get(f"/api/experiments/bad/trials/{trial['id']}/error").json()["text"]
    assert "Traceback" in text and "planned failure at step 2" in text


def test_names_from_storage_never_lead_outside_the_mirror(s3, tmp_path):
    """A journal on storage naming a failed trial's directory ``../../outside`` gets nothing
    fetched for it, while its plainly named twin gets its error; experiment directories are
    plain names."""
    from poptune.storage.journal import Journal
    from poptune.storage.records import ExperimentStarted, StatusChanged, TrialCreated
    from poptune.storage.remote import RemoteStorage

    fs, bucket, mod, _ = s3
    _fit(mod, bucket, "exp")
    path = str(tmp_path / "evil.jsonl")
    journal = Journal(path)
    journal.append(ExperimentStarted("evil", "f"))
    for tid, dirname in (("x_1", "../../outside"), ("x_2", "ok")):
        journal.append(TrialCreated(tid, "f", "", "0", f"/x/{dirname}", dirname))
    journal.commit()
    for tid in ("x_1", "x_2"):
        journal.append(StatusChanged(tid, "ERROR", 1, "boom", None))
    journal.commit()
    journal.close()
    RemoteStorage(f"s3://{bucket}/runs/evil").put_journal_segment(open(path, "rb").read())
    for key in ("runs/outside/error.txt", "runs/evil/../../outside/error.txt"):  # S3 keys
        fs.pipe_file(f"{bucket}/{key}", b"not the mirror's")  # are literal: both can exist
    fs.pipe_file(f"{bucket}/runs/evil/ok/error.txt", b"the twin's error")
    local = tmp_path / "mirror" / "root"
    mirror = RemoteMirror(f"s3://{bucket}/runs", str(local))
    mirror.sync()
    assert sorted(os.listdir(local)) == ["evil", "exp"]  # "outside" holds no journal
    assert (local / "evil" / "ok" / "error.txt").read_bytes() == b"the twin's error"
    assert not (tmp_path / "mirror" / "outside").exists()
    written = [os.path.join(d, f) for d, _, files in os.walk(tmp_path / "mirror") for f in files]
    assert all(p.startswith(str(local) + os.sep) for p in written), written


def test_the_dashboard_command_serves_a_mirror_of_s3_and_removes_it(s3, monkeypatch, capsys):
    from poptune import cli
    from poptune.dashboard import app

    fs, bucket, mod, _ = s3
    _fit(mod, bucket, "exp")
    served: dict[str, Any] = {}

    def fake_serve(root: str, host: str, port: int, token: Any, print_fn: Any,
                   shown_as: Any = None) -> None:  # instead of blocking in uvicorn
        served.update(root=root, port=port, shown_as=shown_as, names=sorted(os.listdir(root)))
        client = TestClient(create_app(root), base_url=LOCAL)
        served["status"] = _experiments(client)["exp"]["status"]

    monkeypatch.setattr(app, "_serve", fake_serve)
    assert cli.main(["dashboard", f"s3://{bucket}/runs", "--port", "8299"]) == 0
    assert served["names"] == ["exp"] and served["status"] == "finished"
    assert served["shown_as"] == f"s3://{bucket}/runs" and served["port"] == 8299
    assert not os.path.exists(served["root"])  # the mirror is gone with the command
    assert cli.main(["dashboard", f"s3://{bucket}-missing/runs"]) == 1
    err = capsys.readouterr().err
    assert f"s3://{bucket}-missing/runs" in err and len(err.strip().splitlines()) == 1


def test_a_stopped_dashboard_removes_its_mirror_and_a_killed_ones_is_swept(s3, tmp_path):
    """``poptune dashboard s3://...`` stopped with SIGTERM removes its mirror directory; one
    left by a dashboard killed outright (its lock free) is removed by the next start, while
    one whose lock is held (a live dashboard, whatever its pid) stays."""
    import signal

    from poptune.dashboard.mirror import STALE_AFTER_S
    from poptune.storage.lock import lock_dir
    from tests.storage._s3 import free_port

    fs, bucket, mod, env = s3
    _fit(mod, bucket, "exp")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    old = time.time() - 2 * STALE_AFTER_S
    stale = tmp / "poptune_dashboard_999999_abc"  # killed: nothing holds its lock
    (stale / "exp").mkdir(parents=True)
    live = tmp / "poptune_dashboard_999998_def"  # another dashboard's, running
    live.mkdir()
    for d in (stale, live):
        os.utime(d, (old, old))
    other = tmp / "poptune_dashboard_notapid"
    other.mkdir()
    os.utime(other, (old, old))
    held = lock_dir(str(live))
    assert held is not None

    proc = subprocess.Popen(
        [sys.executable, "-m", "poptune", "dashboard", f"s3://{bucket}/runs",
         "--port", str(free_port())],
        env={**os.environ, **env, "TMPDIR": str(tmp)}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert f"poptune dashboard for s3://{bucket}/runs: http://127.0.0.1:" in line, line
        names = {p.name for p in tmp.iterdir()}
        assert not stale.exists() and "poptune_dashboard_notapid" in names
        (mirror,) = [n for n in names if n.startswith(f"poptune_dashboard_{proc.pid}_")]
        assert names == {"poptune_dashboard_notapid", live.name, mirror}
        assert (tmp / mirror / "exp" / "journal.jsonl").is_file()
        assert lock_dir(str(tmp / mirror)) is None  # the running dashboard holds its own
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        os.close(held)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert sorted(p.name for p in tmp.iterdir()) == [live.name, "poptune_dashboard_notapid"]


def test_a_pbt_experiment_on_s3_shows_its_exploits_and_family_tree(s3, tmp_path):
    """pbt_global.txt comes through the mirror: the exploits and the tree the local
    dashboard would show, matched to the journal's exploit records."""
    import poptune as tune
    from poptune.schedulers import PopulationBasedTraining

    fs, bucket, mod, _ = s3
    pbt = PopulationBasedTraining(time_attr="training_iteration", perturbation_interval=3,
                                  hyperparam_mutations={"lr": tune.uniform(0.01, 1.0)},
                                  seed=2)
    tune.Tuner(mod.pbt_train, param_space={"lr": tune.uniform(0.01, 1.0)},
               tune_config=tune.TuneConfig(num_samples=4, metric="w", mode="max",
                                           scheduler=pbt, backend="simulated", seed=3),
               run_config=tune.RunConfig(name="pbt", storage_path=f"s3://{bucket}/runs",
                                         verbose=0)).fit()
    stored = fs.cat_file(f"{bucket}/runs/pbt/pbt_global.txt").decode().splitlines()
    assert stored  # the run exploited
    local = tmp_path / "mirror"
    RemoteMirror(f"s3://{bucket}/runs", str(local)).sync()
    assert (local / "pbt" / "pbt_global.txt").read_text().splitlines() == stored
    client = TestClient(create_app(str(local)), base_url=LOCAL)
    assert _experiments(client)["pbt"]["num_exploits"] == len(stored)
    exploits = client.get("/api/experiments/pbt/exploits").json()["exploits"]
    assert len(exploits) == len(stored)
    assert all(e["donor"] != e["target"] and e["donor_config"] for e in exploits)
    tree = client.get("/api/experiments/pbt/tree").json()
    assert len(tree["trials"]) == 4 and len(tree["exploits"]) == len(stored)


def test_a_finished_experiment_is_looked_at_again_only_now_and_then(s3, tmp_path):
    """An ended run that no driver holds changes only when rewritten: the mirror looks at it
    every QUIET_PASSES passes, not on every pass (the root's listing is all a pass costs);
    a new run under its name is picked up at the next look."""
    fs, bucket, mod, _ = s3
    _fit(mod, bucket, "exp")
    mirror = RemoteMirror(f"s3://{bucket}/runs", str(tmp_path / "mirror"))
    mirror.sync()
    listed: list[str] = []
    ls = mirror.fs.ls
    mirror.fs.ls = lambda path, **kw: (listed.append(str(path)), ls(path, **kw))[1]
    for _ in range(QUIET_PASSES):
        mirror.sync()
    assert listed == [f"{bucket}/runs"] * QUIET_PASSES  # the root only
    _fit(mod, bucket, "exp", k=__import__("poptune").grid_search([1, 2]))
    mirror.sync()
    client = TestClient(create_app(str(tmp_path / "mirror")), base_url=LOCAL)
    assert _experiments(client)["exp"]["num_trials"] == 2
