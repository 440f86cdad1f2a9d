"""The ``poptune`` command on real PBT experiments: every subcommand, exit codes, messages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import pytest

from poptune.cli import main
from poptune.dashboard.app import lineage_schedule
from poptune.dashboard.data import ExperimentView
from tests.dashboard import copy_without_end, journal_records, make_experiment
from tests._net import free_port

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ["ls", "show", "plot", "dashboard", "resume"]


def run(*args: str, cwd: Path | None = None, timeout: float = 120,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m poptune ARGS`` in a fresh process."""
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200", **(env or {}))
    return subprocess.run([sys.executable, "-m", "poptune", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    make_experiment(root, "pbt_exp", fail=True)
    return root


def output(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# -- help and usage ------------------------------------------------------------------------------
def test_top_level_help_lists_every_command() -> None:
    r = run("--help")
    assert r.returncode == 0
    for cmd in COMMANDS:
        assert cmd in r.stdout


@pytest.mark.parametrize("cmd", COMMANDS)
def test_each_command_has_help(cmd: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([cmd, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: poptune {cmd}") and len(out.splitlines()) > 4


def test_usage_errors_exit_2() -> None:
    assert run().returncode == 2  # no command
    assert run("frobnicate").returncode == 2
    r = run("resume", "x")  # --trainable missing
    assert r.returncode == 2 and "--trainable" in r.stderr


@pytest.mark.parametrize("argv", [["show", "nope"], ["plot", "nope"],
                                  ["resume", "nope", "--trainable", "m:f"]])
def test_missing_experiment_is_one_clear_line_and_exit_2(argv: list[str], tmp_path: Path) -> None:
    r = run(*argv, "--storage", str(tmp_path))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "no experiment 'nope'" in r.stderr and r.stdout == ""


def test_a_directory_that_is_not_an_experiment_is_a_usage_error(tmp_path: Path) -> None:
    r = run("show", str(tmp_path))
    assert r.returncode == 2 and "no journal.jsonl" in r.stderr and r.stderr.count("\n") == 1


# -- ls ------------------------------------------------------------------------------------------
def test_ls_shows_status_trial_counts_best_metric_and_start(storage: Path,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    code, out, _ = output(capsys, ["ls", str(storage)])
    assert code == 0
    row = next(line for line in out.splitlines() if "pbt_exp" in line)
    assert "finished" in row and "4: 1 error, 3 terminated" in row and "score=" in row
    start = journal_records(storage / "pbt_exp", "exp")[0]["start"]
    assert time.strftime("%Y-%m-%d %H:%M", time.localtime(start)) in row


def test_ls_tells_running_from_interrupted(storage: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    exp = tmp_path / "half"
    exp.mkdir()
    copy_without_end(storage / "pbt_exp" / "journal.jsonl", exp / "journal.jsonl")
    _, out, _ = output(capsys, ["ls", str(tmp_path)])
    assert "running" in next(line for line in out.splitlines() if "half" in line)
    old = time.time() - 600
    os.utime(exp / "journal.jsonl", (old, old))
    _, out, _ = output(capsys, ["ls", str(tmp_path)])
    assert "interrupted" in next(line for line in out.splitlines() if "half" in line)


def test_ls_uses_the_storage_environment_variable(storage: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("POPTUNE_STORAGE_PATH", str(storage))
    code, out, _ = output(capsys, ["ls"])
    assert code == 0 and "pbt_exp" in out


def test_ls_of_empty_or_missing_storage(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = output(capsys, ["ls", str(tmp_path)])
    assert code == 0 and "No experiments" in out
    code, _, err = output(capsys, ["ls", str(tmp_path / "missing")])
    assert code == 2 and "does not exist" in err


def test_ls_and_dashboard_take_storage_as_an_option_too(storage: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    """``--storage DIR`` as show/plot/resume/repair spell it; given twice it must agree."""
    code, out, _ = output(capsys, ["ls", "--storage", str(storage)])
    assert code == 0 and "pbt_exp" in out
    code, out, _ = output(capsys, ["ls", str(storage), "--storage", str(storage)])
    assert code == 0 and "pbt_exp" in out
    with pytest.raises(SystemExit) as exc:
        main(["ls", str(storage), "--storage", str(tmp_path)])
    assert exc.value.code == 2 and "STORAGE given twice" in capsys.readouterr().err
    code, _, err = output(capsys, ["dashboard", "--storage", str(tmp_path / "missing")])
    assert code == 2 and str(tmp_path / "missing") in err  # the option reached the command


# -- show ----------------------------------------------------------------------------------------
def test_show_lists_trials_with_metric_final_hyperparameters_and_error(
        storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = output(capsys, ["show", "pbt_exp", "--storage", str(storage)])
    assert code == 0
    trials = {r["id"]: r for r in journal_records(storage / "pbt_exp", "trial")}
    lines = out.splitlines()
    header = next(line for line in lines if "score (max)" in line)
    assert "lr" in header and "iter" in header and "exploits" in header
    for tid in trials:
        assert any(tid in line for line in lines)
    assert "ValueError: injected failure at step 1" in out
    bad = next(line for line in lines if "ERROR" in line and "│" in line)
    assert "0.001" in bad  # the errored trial's hyperparameter
    last = {r["t"]: r["r"] for r in journal_records(storage / "pbt_exp", "result")}
    best = max(last.values(), key=lambda r: r["score"])
    assert f"{best['score']:.4g}" in out


def test_show_by_path_and_metric_override(storage: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = output(capsys, ["show", str(storage / "pbt_exp"), "--metric", "lr_seen",
                                   "--mode", "min"])
    assert code == 0 and "lr_seen (min)" in out


def test_remote_storage_without_its_filesystem_package_names_the_pip_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import importlib

    registry = importlib.import_module("fsspec.registry")  # `fsspec.registry` is a mapping
    monkeypatch.delitem(registry._registry, "s3", raising=False)
    monkeypatch.setitem(sys.modules, "s3fs", None)  # import s3fs fails
    for argv in (["show", "s3://bucket/runs/exp"], ["ls", "s3://bucket/runs"],
                 ["show", "exp", "--storage", "s3://bucket/runs"]):
        code, out, err = output(capsys, argv)
        uri = "s3://bucket/runs" + ("" if argv[0] == "ls" else "/exp")
        assert (code, out) == (1, "")
        assert err == (f"poptune {argv[0]}: error: `s3fs` is required for storage at {uri} but "
                       "is not installed; run: pip install 'poptune[s3]'\n")


# -- plot ----------------------------------------------------------------------------------------
def test_plot_writes_pngs(storage: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    r = run("plot", "pbt_exp", "--storage", str(storage), "--out", str(tmp_path / "plots"))
    assert r.returncode == 0, r.stderr
    paths = r.stdout.split()
    assert str(tmp_path / "plots" / "metric.png") in paths
    assert any(p.endswith("family_tree.png") for p in paths)
    for p in paths:
        assert Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- dashboard -----------------------------------------------------------------------------------
def test_dashboard_command_serves_the_api_on_loopback(storage: Path) -> None:
    pytest.importorskip("uvicorn")
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "poptune", "dashboard", str(storage),
                             "--port", str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/experiments",
                                            timeout=2) as resp:
                    data = json.load(resp)
                break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, proc.stderr
                time.sleep(0.1)
        assert [e["name"] for e in data["experiments"]] == ["pbt_exp"]
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    assert f"http://127.0.0.1:{port}/" in out and "token" not in out


def test_dashboard_off_loopback_prints_and_requires_a_token(
        storage: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> None:
    uvicorn = pytest.importorskip("uvicorn")
    with warnings.catch_warnings():  # Starlette 1.x nudges towards httpx2; httpx works
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    served: dict[str, Any] = {}

    def run(server: Any, sockets: Any = None) -> None:  # instead of serving for ever
        served.update(app=server.config.app, host=server.config.host,
                      port=server.config.port, sockets=sockets,
                      bound=[sock.getsockname()[:2] for sock in sockets])
        server.started = True

    monkeypatch.setattr(uvicorn.Server, "run", run)
    port = free_port()
    code, out, _ = output(capsys, ["dashboard", str(storage), "--host", "0.0.0.0",
                                   "--port", str(port)])
    assert code == 0 and served["host"] == "0.0.0.0" and served["port"] == port
    assert served["bound"] == [("0.0.0.0", port)]  # the server got the socket bound first
    assert served["sockets"][0].fileno() == -1  # and closed when the server stopped
    from poptune.backends._probe import driver_ip

    # the URL names an address another machine can open (a probe: it printed 0.0.0.0)
    assert f"http://{driver_ip()}:{port}/?token=" in out and "0.0.0.0" not in out
    token = out.split("?token=")[1].split()[0]
    client = TestClient(served["app"], base_url="http://192.0.2.1")
    assert client.get("/api/experiments").status_code == 401
    assert client.get(f"/api/experiments?token={token}").status_code == 200


def test_dashboard_rejects_missing_storage_and_bad_port(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    assert output(capsys, ["dashboard", str(tmp_path / "missing")])[0] == 2
    assert output(capsys, ["dashboard", str(tmp_path), "--port", "70000"])[0] == 2


def test_dashboard_takes_a_storage_uri_and_names_one_it_cannot_read(
        tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A URI is mirrored, not looked for as ./s3:/...; one that does not exist is a one-line
    error naming it, whether given or from $POPTUNE_STORAGE_PATH (tests/dashboard/
    test_remote_mirror.py serves real ones from an S3 server)."""
    import tempfile

    monkeypatch.chdir(tmp_path)
    before = set(os.listdir(tempfile.gettempdir()))
    code, _, err = output(capsys, ["dashboard", "memory://no-such-bucket/runs"])
    assert code == 1 and "memory://no-such-bucket/runs" in err
    assert len(err.strip().splitlines()) == 1
    monkeypatch.setenv("POPTUNE_STORAGE_PATH", "memory://no-such-bucket/other")
    code, _, err = output(capsys, ["dashboard"])
    assert code == 1 and "memory://no-such-bucket/other" in err
    assert list(tmp_path.iterdir()) == []  # nothing made here: no ./memory:
    assert set(os.listdir(tempfile.gettempdir())) == before  # no mirror left behind
    code, _, err = output(capsys, ["dashboard", "memory://no-such-bucket/runs", "--port", "0"])
    assert code == 2 and "--port must be in [1, 65535], got 0" in err


def test_show_says_running_while_a_live_driver_holds_a_silent_experiment(
        storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from poptune.storage.lock import acquire_experiment

    exp = tmp_path / "hung"  # every trial hangs: the journal has not changed for 10 minutes
    exp.mkdir()
    copy_without_end(storage / "pbt_exp" / "journal.jsonl", exp / "journal.jsonl")
    old = time.time() - 600
    os.utime(exp / "journal.jsonl", (old, old))
    with acquire_experiment(str(exp)):  # this test process is its live driver
        code, out, _ = output(capsys, ["show", "hung", "--storage", str(tmp_path)])
        assert code == 0 and out.splitlines()[0].split()[:2] == ["hung", "running"]
    _, out, _ = output(capsys, ["show", "hung", "--storage", str(tmp_path)])
    assert out.splitlines()[0].split()[:2] == ["hung", "interrupted"]


# -- resume --------------------------------------------------------------------------------------
DRIVER = textwrap.dedent('''
    import sys, pathlib
    sys.path.insert(0, {root!r})
    from tests.dashboard import make_experiment
    make_experiment(pathlib.Path({storage!r}), "interrupted", steps=60, sleep=0.02)
''')


def test_resume_finishes_a_run_killed_mid_way(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    storage = tmp_path / "results"
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(root=str(ROOT), storage=str(storage)))
    driver = subprocess.Popen([sys.executable, str(script)], env=dict(os.environ,
                                                                     PYTHONPATH=str(ROOT)))
    journal = storage / "interrupted" / "journal.jsonl"
    deadline = time.time() + 60
    while not (journal.exists() and journal.read_text().count('"e":"result"') >= 30):
        assert driver.poll() is None and time.time() < deadline
        time.sleep(0.02)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    assert '"e":"end"' not in journal.read_text()
    old = time.time() - 600
    os.utime(journal, (old, old))
    _, out, _ = output(capsys, ["ls", str(storage)])
    assert "interrupted" in out

    r = run("resume", "interrupted", "--storage", str(storage), "--trainable", "trainmod:train",
            cwd=storage / "_code")
    assert r.returncode == 0, r.stderr
    assert "4 trials, 4 terminated, 0 errored" in r.stdout
    _, out, _ = output(capsys, ["ls", str(storage)])
    assert "finished" in out and "4: 4 terminated" in out
    view = ExperimentView(str(storage / "interrupted"))
    view.refresh()
    for tid in view.trials:  # every model trained to the end, through its donors if exploited
        assert lineage_schedule(view, tid)[-1]["to"] == 60


def test_resume_leaves_errored_trials_unless_told_and_exits_1(tmp_path: Path) -> None:
    storage = tmp_path / "results"
    make_experiment(storage, "errored", fail=True, steps=12, sleep=0.0, pbt=False)
    trainable = f"{storage / '_code' / 'trainmod.py'}:train"  # a file path works too
    r = run("resume", str(storage / "errored"), "--trainable", trainable)
    assert r.returncode == 1 and "1 errored" in r.stdout
    r = run("resume", str(storage / "errored"), "--trainable", trainable, "--restart-errored")
    assert r.returncode == 0, r.stderr
    assert "4 terminated, 0 errored" in r.stdout


def test_resume_restart_errored_under_pbt(tmp_path: Path) -> None:
    # was a hang: PBT's restored state kept the errored trial out of the population
    storage = tmp_path / "results"
    make_experiment(storage, "errored", fail=True, steps=12, sleep=0.0)
    r = run("resume", str(storage / "errored"), "--trainable",
            f"{storage / '_code' / 'trainmod.py'}:train", "--restart-errored", timeout=60)
    assert r.returncode == 0 and "4 terminated, 0 errored" in r.stdout


@pytest.mark.parametrize(("spec", "message"), [
    ("no_colon", "module:function"), ("no_such_module_xyz:f", "cannot import"),
    ("json:no_such_function", "has no attribute"),
])
def test_resume_bad_trainable_is_a_usage_error(storage: Path, spec: str, message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = output(capsys, ["resume", str(storage / "pbt_exp"), "--trainable", spec])
    assert code == 2 and message in err and err.count("\n") == 1


def test_resume_flags_exclude_each_other(storage: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = output(capsys, ["resume", str(storage / "pbt_exp"), "--trainable", "m:f",
                                   "--resume-errored", "--restart-errored"])
    assert code == 2 and "exclude each other" in err
    assert err.startswith("poptune resume: error: --resume-errored and --restart-errored")


def test_show_says_how_long_each_running_trial_has_sent_no_result(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from poptune.storage.journal import Journal
    from poptune.storage.records import (
        ExperimentStarted,
        ResultReported,
        StatusChanged,
        TrialCreated,
    )

    exp = tmp_path / "hung"
    exp.mkdir()
    journal = Journal(str(exp / "journal.jsonl"))
    journal.append(ExperimentStarted("hung", "train", "score", "max", start=time.time()))
    for tid in ("h_00000", "h_00001", "h_00002"):
        journal.append(TrialCreated(tid, "train", "", tid[-1], str(exp / tid), tid))
        journal.append(StatusChanged(tid, "RUNNING"))
    journal.append(ResultReported("h_00000", {"score": 1.0, "training_iteration": 3,
                                              "timestamp": int(time.time()) - 125}))
    journal.append(ResultReported("h_00002", {"score": 2.0, "training_iteration": 9,
                                              "timestamp": int(time.time())}))
    journal.append(StatusChanged("h_00002", "TERMINATED"))
    journal.commit()
    journal.close()
    code, out, _ = output(capsys, ["show", str(exp)])
    assert code == 0, out
    lines = out.splitlines()
    header = next(line for line in lines if "trial" in line and "status" in line)
    assert header.split()[1:7:2] == ["trial", "status", "silent"]
    rows = [line for line in lines if "│" in line]
    cells = {tid: [c.strip() for c in next(r for r in rows if tid in r).split("│")]
             for tid in ("h_00000", "h_00001", "h_00002")}
    minutes, seconds = cells["h_00000"][3].rstrip("s").split("m")
    assert cells["h_00000"][2] == "RUNNING" and 60 * int(minutes) + int(seconds) >= 125
    assert cells["h_00001"][2:4] == ["RUNNING", "-"]  # no result yet
    assert cells["h_00002"][2:4] == ["TERMINATED", ""]


def test_file_uris_name_local_storage_and_experiments(storage: Path, monkeypatch,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    """``storage_path="file:///..."`` works in a Tuner (as in Ray): the same spelling works
    for ``ls``, ``show`` and ``dashboard``."""
    from poptune.dashboard import app

    uri = f"file://{storage}"
    code, out, _ = output(capsys, ["ls", uri])
    assert code == 0 and "pbt_exp" in out
    code, out, _ = output(capsys, ["show", f"{uri}/pbt_exp"])
    assert code == 0 and "4 trials" in out
    code, out, _ = output(capsys, ["show", "pbt_exp", "--storage", uri])
    assert code == 0 and "4 trials" in out
    served: list[str] = []
    monkeypatch.setattr(app, "_serve", lambda root, *a, **k: served.append(root))
    assert output(capsys, ["dashboard", uri])[0] == 0 and served == [str(storage)]


# -- bad input: each names the option or argument, the value and what is accepted -------------
def test_dashboard_on_a_port_in_use_says_so_without_announcing_and_exits_1(
        storage: Path) -> None:
    pytest.importorskip("uvicorn")
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run("dashboard", str(storage), "--port", str(port), timeout=60)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stdout == ""  # no "serving at http://..." for a server that never served
    assert r.stderr == (f"poptune dashboard: error: --port {port} cannot be used on 127.0.0.1: "
                        "it is already in use (another program listens on it); choose "
                        "another --port\n")


def test_show_rejects_a_metric_no_trial_reported_as_plot_does(
        storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = output(capsys, ["show", str(storage / "pbt_exp"), "--metric", "nope"])
    assert (code, out) == (2, "")
    assert err.startswith("poptune show: error: --metric must be a numeric metric the trials "
                          f"reported, got 'nope'; reported in {storage / 'pbt_exp'}: [")
    assert "'score'" in err and "'lr_seen'" in err and err.count("\n") == 1
    assert "'pid'" not in err and "'timestamp'" not in err  # bookkeeping, not metrics
    if importlib_util_find_spec("matplotlib"):  # plot says the same (one implementation)
        code, _, plot_err = output(capsys, ["plot", str(storage / "pbt_exp"), "--metric", "nope",
                                            "--out", str(tmp_path / "plots")])
        assert code == 2 and plot_err.split(": error: ")[1] == err.split(": error: ")[1]
    code, out, _ = output(capsys, ["show", str(storage / "pbt_exp"), "--metric", "lr_seen"])
    assert code == 0 and "lr_seen (max)" in out


def importlib_util_find_spec(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _hand_made(exp: Path, metric: str) -> Path:
    """A finished one-trial experiment whose trial reported only ``metric``."""
    from poptune.storage.journal import Journal
    from poptune.storage.records import (
        ExperimentEnded,
        ExperimentStarted,
        ResultReported,
        StatusChanged,
        TrialCreated,
    )

    exp.mkdir(parents=True)
    journal = Journal(str(exp / "journal.jsonl"))
    journal.append(ExperimentStarted(exp.name, "train", metric, "max", start=time.time()))
    journal.append(TrialCreated("o_00000", "train", "", "0", str(exp / "o_00000"), "o_00000"))
    journal.append(ResultReported("o_00000", {metric: 1.0, "training_iteration": 1}))
    journal.append(StatusChanged("o_00000", "TERMINATED"))
    journal.append(ExperimentEnded())
    journal.commit()
    journal.close()
    return exp


def test_ls_rejects_a_metric_only_when_no_listed_experiment_reported_it(
        storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = output(capsys, ["ls", str(storage), "--metric", "nope"])
    assert (code, out) == (2, "")
    assert err.startswith("poptune ls: error: --metric must be a numeric metric the trials "
                          f"reported, got 'nope'; reported in {storage}: [")
    assert "'score'" in err
    root = tmp_path  # two experiments, each reporting a metric the other lacks
    _hand_made(root / "other", "accuracy")
    (root / "pbt_exp").mkdir()  # ls reads the journal only
    (root / "pbt_exp" / "journal.jsonl").write_bytes(
        (storage / "pbt_exp" / "journal.jsonl").read_bytes())
    code, out, _ = output(capsys, ["ls", str(root), "--metric", "accuracy"])
    assert code == 0
    assert "accuracy=1 (max)" in next(line for line in out.splitlines() if "other" in line)
    assert "│ -" in next(line for line in out.splitlines() if "pbt_exp" in line)
    code, _, err = output(capsys, ["ls", str(root), "--metric", "nope"])
    assert code == 2 and "'accuracy'" in err and "'score'" in err


@pytest.mark.parametrize("content", [b'{"nothing": 1}\n', b""], ids=["not-a-journal", "empty"])
def test_show_of_an_unreadable_journal_says_what_repair_says(
        tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    exp = tmp_path / "bad"
    exp.mkdir()
    (exp / "journal.jsonl").write_bytes(content)
    code, out, err = output(capsys, ["show", str(exp)])
    assert (code, out) == (1, "") and err.count("\n") == 1
    assert err.startswith(f"poptune show: error: journal {exp / 'journal.jsonl'} is ")
    _, _, repaired = output(capsys, ["repair", str(exp)])
    if content:
        assert err.split(": error: ")[1] == repaired.split(": error: ")[1]
        assert "is not a poptune journal: no committed record could be read" in err
    else:
        assert "is empty" in err and "is empty" in repaired


def test_ls_marks_unreadable_and_damaged_journals(storage: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "journal.jsonl").write_text('{"nothing": 1}\n')
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "journal.jsonl").write_text("")
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    lines = (storage / "pbt_exp" / "journal.jsonl").read_text().splitlines(keepends=True)
    lines[len(lines) // 2] = "not json\n"  # damage in the middle
    (damaged / "journal.jsonl").write_text("".join(lines))
    old = time.time() - 600
    for name in ("junk", "empty", "damaged"):
        os.utime(tmp_path / name / "journal.jsonl", (old, old))
    code, out, _ = output(capsys, ["ls", str(tmp_path)])
    assert code == 0
    lines = out.splitlines()
    rows = {name: next(line for line in lines if line.startswith(f"│ {name} "))
            for name in ("junk", "empty", "damaged")}
    assert "unreadable" in rows["junk"] and "unreadable" in rows["empty"]
    assert "damaged" in rows["damaged"] and "interrupted" not in rows["damaged"]
    notes = {name: next(line for line in lines if line.startswith(f"{name} is "))
             for name in ("junk", "empty", "damaged")}
    assert "is not a poptune journal" in notes["junk"] and "is empty" in notes["empty"]
    assert "is damaged at byte" in notes["damaged"]
    assert f"Run `poptune repair {damaged}`" in notes["damaged"]
    code, out, _ = output(capsys, ["show", str(damaged)])
    assert code == 0 and out.split()[1] == "damaged" and f"poptune repair {damaged}" in out


def test_path_arguments_that_are_files_are_named(storage: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    code, _, err = output(capsys, ["ls", str(afile)])
    assert code == 2 and "does not exist" not in err
    assert err == (f"poptune ls: error: STORAGE must be a directory of experiments, got "
                   f"{afile}: it is a file, not a directory\n")
    code, _, err = output(capsys, ["dashboard", str(afile)])
    assert code == 2 and "it is a file, not a directory" in err
    code, _, err = output(capsys, ["show", str(afile)])
    assert code == 2 and err == (f"poptune show: error: EXPERIMENT must be an experiment "
                                 f"directory, got {afile}: it is a file\n")
    for out, why in ((afile, "it is a file"), (afile / "plots", f"{afile} is a file")):
        code, stdout, err = output(capsys, ["plot", str(storage / "pbt_exp"), "--out", str(out)])
        assert (code, stdout) == (2, "") and "Errno" not in err
        assert err == (f"poptune plot: error: --out must be a directory (or a path where one "
                       f"can be made), got {out}: {why}\n")
    assert afile.read_text() == "x"


def test_show_lists_only_trials_in_error_now_and_earlier_errors_apart(tmp_path: Path) -> None:
    storage = tmp_path / "results"
    make_experiment(storage, "errored", fail=True, steps=6, sleep=0.0, pbt=False)
    before = run("show", str(storage / "errored"))
    assert before.returncode == 0
    assert "Errors\n" in before.stdout and "Earlier errors" not in before.stdout
    r = run("resume", str(storage / "errored"), "--trainable",
            f"{storage / '_code' / 'trainmod.py'}:train", "--restart-errored")
    assert r.returncode == 0, r.stderr
    after = run("show", str(storage / "errored"))
    assert after.returncode == 0
    assert "│ ERROR" not in after.stdout and "Errors\n" not in after.stdout
    lines = after.stdout.splitlines()
    at = lines.index("Earlier errors (trials no longer in ERROR)")
    assert "(now terminated, failed 1 time before): ValueError: injected failure at step 1" \
        in lines[at + 1]


def test_a_simulated_experiment_is_shown_on_its_own_clock(tmp_path, capsys):
    """Its start and results are simulated seconds (1970 dates): ``ls``/``show`` say
    "simulated" instead of a date, and a running trial's silence is measured against the
    latest simulated result, not the real clock."""
    import poptune as tune
    from poptune import simulation
    from poptune.cli import _silences

    def trainable(config):
        for _ in range(2):
            simulation.advance(30.0)
            tune.report({"loss": config["x"]})

    tune.Tuner(trainable, param_space={"x": tune.grid_search([1.0, 2.0])},
               tune_config=tune.TuneConfig(metric="loss", mode="min", backend="simulated"),
               run_config=tune.RunConfig(storage_path=str(tmp_path), name="sim",
                                         verbose=0)).fit()
    capsys.readouterr()
    assert main(["show", str(tmp_path / "sim")]) == 0
    assert "started simulated" in capsys.readouterr().out
    assert main(["ls", str(tmp_path)]) == 0
    assert "simulated" in capsys.readouterr().out
    trials = [{"id": "a", "status": "RUNNING", "last": {"timestamp": 60}},
              {"id": "b", "status": "RUNNING", "last": {"timestamp": 150}},
              {"id": "c", "status": "TERMINATED", "last": {"timestamp": 30}}]
    assert _silences(trials, "simulated") == {"a": "1m30s", "b": "0s", "c": ""}
