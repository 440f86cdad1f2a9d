"""The dashboard's JSON API on a real PBT experiment (Starlette TestClient)."""

from __future__ import annotations

import itertools
import json
import os
import pickle
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from poptune.dashboard import create_app
from poptune.dashboard.app import is_loopback, resolve_token
from poptune.dashboard.data import ExperimentView, PathError, resolve_inside, sniff_metric_mode
from poptune.storage.records import ResultReported, RolledBack
from tests.dashboard import (
    append_result,
    commit_bytes,
    copy_without_end,
    journal_records,
    make_experiment,
)
from tests.dashboard._client import LOCAL, TestClient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dash")
    make_experiment(root, "pbt_exp", fail=True)
    return root


@pytest.fixture
def client(storage: Path) -> TestClient:
    return TestClient(create_app(str(storage)), base_url=LOCAL)


def api(client: TestClient, path: str, **params: Any) -> Any:
    r = client.get("/api/experiments/pbt_exp" + path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def live_copy(storage: Path, name: str) -> Path:
    """A copy of the experiment's journal (no ``end`` record, no tuner.pkl) to append to."""
    src, dst = storage / "pbt_exp", storage / name
    dst.mkdir()
    copy_without_end(src / "journal.jsonl", dst / "journal.jsonl")
    return dst


def trial_ids(storage: Path) -> list[str]:
    return [r["id"] for r in journal_records(storage / "pbt_exp", "trial")]


# -- pages and listing --------------------------------------------------------------------------
def test_index_and_vendored_static_files_are_served_with_a_strict_csp(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "static/app.js" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("app.js", "chart.js", "style.css"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and len(r.content) > 500
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.\w+/[^\s\"']*", r.text))
        assert urls <= {"http://www.w3.org/2000/svg"}, urls  # no CDN: works offline
    assert 'src="static/chart.js"' in page.text and 'href="static/style.css"' in page.text


def test_experiment_list_has_status_counts_and_best_metric(client: TestClient,
                                                           storage: Path) -> None:
    data = client.get("/api/experiments").json()["experiments"]
    exp = next(e for e in data if e["name"] == "pbt_exp")
    assert exp["status"] == "finished"
    assert exp["counts"] == {"TERMINATED": 3, "ERROR": 1}
    assert (exp["metric"], exp["mode"]) == ("score", "max")  # read from tuner.pkl, not unpickled
    best_last = max(r["r"]["score"] for r in journal_records(storage / "pbt_exp", "result"))
    assert exp["best"]["value"] <= best_last and exp["best"]["trial"] in trial_ids(storage)
    log = (storage / "pbt_exp" / "pbt_global.txt").read_text()
    assert exp["num_exploits"] == len(log.splitlines())


def test_experiment_detail_lists_metrics_and_hyperparameters(client: TestClient) -> None:
    data = api(client, "")
    assert "score" in data["metrics"] and "lr_seen" in data["metrics"]
    assert "lr" in data["params"] and data["num_trials"] == 4


def config_at(lineage: list[dict[str, Any]], iteration: int) -> dict[str, Any]:
    """The config of the lineage segment that trained ``iteration``."""
    return next(seg["config"] for seg in lineage if seg["from"] < iteration <= seg["to"])


def test_trials_have_status_iteration_metric_config_and_error(client: TestClient,
                                                              storage: Path) -> None:
    data = api(client, "/trials")
    rows = {t["id"]: t for t in data["trials"]}
    assert sorted(rows) == sorted(trial_ids(storage))
    errored = [t for t in rows.values() if t["status"] == "ERROR"]
    assert len(errored) == 1 and errored[0]["error"] == "ValueError: injected failure at step 1"
    for t in rows.values():
        if t["status"] == "TERMINATED":
            lineage = api(client, f"/trials/{t['id']}/schedule")["lineage"]
            assert t["metric"] == t["last"]["score"] and lineage[-1]["to"] == 40
            assert t["iteration"] == 40 or t["num_exploits"]  # exploited at the end: no report
            assert t["config"] == lineage[-1]["config"]  # final hyperparameters


def test_series_returns_points_and_only_new_ones_since_an_offset(client: TestClient,
                                                                 storage: Path) -> None:
    tid = next(t["id"] for t in api(client, "/trials")["trials"] if t["status"] == "TERMINATED")
    s = api(client, "/series", trials=tid, metric="score")["series"][tid]
    rows = [r for r in journal_records(storage / "pbt_exp", "result") if r["t"] == tid]
    assert s["from"] == 0 and len(s["points"]) == s["next"] == len(rows)
    assert s["points"][-1] == [rows[-1]["r"]["training_iteration"], rows[-1]["r"]["score"]]
    assert all(isinstance(x, int) and isinstance(y, float) for x, y in s["points"])
    again = api(client, "/series", trials=tid, metric="score",
                since=f"{tid}:{s['epoch']}:{s['next']}")["series"][tid]
    assert again["points"] == [] and again["next"] == s["next"]
    exploited = {e["target"] for e in api(client, "/exploits")["exploits"]}
    for t in exploited:  # a new stroke starts where each exploit restored another model
        ser = api(client, "/series", trials=t, metric="score")["series"][t]
        configs = [r for r in journal_records(storage / "pbt_exp", "config") if r["t"] == t]
        assert len(ser["breaks"]) == len(configs) and all(0 <= b <= ser["next"]
                                                           for b in ser["breaks"])
    stale = api(client, "/series", trials=tid, metric="score",
                since=f"{tid}:{s['epoch'] + 7}:{s['next']}")["series"][tid]
    assert stale["from"] == 0 and len(stale["points"]) == s["next"]  # unknown epoch: resend


def test_live_update_new_result_and_rollback_show_on_next_poll(storage: Path) -> None:
    exp = live_copy(storage, "live_exp")
    client = TestClient(create_app(str(storage)), base_url=LOCAL)
    url = "/api/experiments/live_exp"
    assert client.get(url).json()["status"] == "running"  # no end record, journal just written
    tid = trial_ids(storage)[1]
    first = client.get(url + "/series", params={"trials": tid, "metric": "score"}).json()
    n, epoch = first["series"][tid]["next"], first["series"][tid]["epoch"]
    append_result(exp, tid, {"score": 1234.5, "training_iteration": n + 1})
    group = commit_bytes(exp, ResultReported(tid, {"score": 5.0, "training_iteration": n + 2}),
                         RolledBack(tid, 3))
    cut = group.index(b'"score":') + 8
    with open(exp / "journal.jsonl", "ab") as f:  # a half-written group is not parsed yet
        f.write(group[:cut])
    trials = client.get(url + "/trials", params={"metric": "score"}).json()["trials"]
    assert next(t for t in trials if t["id"] == tid)["metric"] == 1234.5
    new = client.get(url + "/series", params={"trials": tid, "metric": "score",
                                              "since": f"{tid}:{epoch}:{n}"}).json()
    assert new["series"][tid]["points"] == [[n + 1, 1234.5]]
    with open(exp / "journal.jsonl", "ab") as f:
        f.write(group[cut:])
    after = client.get(url + "/series", params={"trials": tid, "metric": "score",
                                                "since": f"{tid}:{epoch}:{n + 1}"}).json()
    assert after["series"][tid]["epoch"] == epoch + 1 and after["series"][tid]["from"] == 0
    assert len(after["series"][tid]["points"]) == 3
    old = time.time() - 3600
    os.utime(exp / "journal.jsonl", (old, old))
    assert client.get(url).json()["status"] == "interrupted"


def test_polling_parses_only_appended_bytes(storage: Path) -> None:
    exp = live_copy(storage, "tail_exp")
    view = ExperimentView(str(exp))
    view.refresh()
    size = os.path.getsize(exp / "journal.jsonl")
    assert view._journal.offset == size
    before = view.num_results
    append_result(exp, trial_ids(storage)[0], {"score": 1.0, "training_iteration": 99})
    view.refresh()
    assert view.num_results == before + 1 and view._journal.offset > size


# -- PBT views ---------------------------------------------------------------------------------
def test_exploits_carry_old_donor_and_new_config_and_page_with_since(client: TestClient,
                                                                     storage: Path) -> None:
    log = (storage / "pbt_exp" / "pbt_global.txt").read_text()
    lines = [json.loads(line) for line in log.splitlines()]
    data = api(client, "/exploits")
    events = data["exploits"]
    assert data["next"] == len(events) == len(lines) >= 1
    ids = set(trial_ids(storage))
    for ev, line in zip(events, lines, strict=True):
        assert ev["target"] in ids and ev["donor"] in ids and ev["target"] != ev["donor"]
        assert ev["donor_config"] == line[4] and ev["new_config"] == line[5]
        assert ev["old_config"] is not None
        assert ev["changed"] == (["lr"] if ev["old_config"]["lr"] != line[5]["lr"] else [])
    assert api(client, "/exploits", since=len(events))["exploits"] == []
    assert [e["id"] for e in api(client, "/exploits", since=1)["exploits"]] == \
        [e["id"] for e in events[1:]]


def test_family_tree_has_a_lane_per_trial_an_edge_per_exploit_and_the_best_lineage(
        client: TestClient) -> None:
    tree = api(client, "/tree")
    assert len(tree["trials"]) == 4 and len(tree["exploits"]) == api(client, "")["num_exploits"]
    segs = tree["best_lineage"]
    assert segs[0]["from"] == 0 and segs[-1]["trial"] == tree["best"]["trial"]
    assert all(a["to"] == b["from"] for a, b in itertools.pairwise(segs))  # contiguous history


def test_schedule_is_what_the_trial_reported_training_with(client: TestClient,
                                                          storage: Path) -> None:
    events = api(client, "/exploits")["exploits"]
    target = events[-1]["target"]
    sched = api(client, f"/trials/{target}/schedule")
    assert sched["changes"][0]["exploit"] is None and sched["changes"][0]["config"]["lr"] in (
        0.001, 0.002, 0.005, 0.01)
    assert sched["changes"][-1]["config"] == events[-1]["new_config"]
    assert sched["lineage"][-1]["exploit"] == events[-1]["id"]
    # replay the journal: every result ran with the config of the trial's latest exploit
    changes = {t["id"]: api(client, f"/trials/{t['id']}/schedule")["changes"]
               for t in api(client, "/trials")["trials"]}
    applied = dict.fromkeys(changes, 0)
    checked = 0
    with open(storage / "pbt_exp" / "journal.jsonl") as f:
        for rec in map(json.loads, f):
            if rec["e"] == "config":
                applied[rec["t"]] += 1
            elif rec["e"] == "result":
                config = changes[rec["t"]][applied[rec["t"]]]["config"]
                assert rec["r"]["lr_seen"] == pytest.approx(config["lr"])
                checked += 1
    assert checked > 100


def test_error_text_of_a_failed_trial(client: TestClient) -> None:
    trials = api(client, "/trials")["trials"]
    bad = next(t for t in trials if t["status"] == "ERROR")
    err = api(client, f"/trials/{bad['id']}/error")
    assert "Traceback" in err["text"] and "injected failure at step 1" in err["text"]
    good = next(t for t in trials if t["status"] == "TERMINATED")
    assert api(client, f"/trials/{good['id']}/error")["text"] is None


def test_metric_and_mode_can_be_overridden_per_request(client: TestClient) -> None:
    data = api(client, "/trials", metric="lr_seen", mode="min")
    assert (data["metric"], data["mode"]) == ("lr_seen", "min")
    assert data["best"]["value"] == min(t["metric"] for t in data["trials"] if t["metric"])
    assert client.get("/api/experiments/pbt_exp/trials?mode=sideways").status_code == 400


# -- safety --------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [
    "/api/experiments/../trials", "/api/experiments/%2e%2e/trials",
    "/api/experiments/..%2F..%2Fetc/trials", "/api/experiments/%2Fetc/trials",
    "/api/experiments/pbt_exp/trials/..%2F..%2Fjournal.jsonl/error",
    "/api/experiments/pbt_exp/trials/%2e%2e/error", "/api/experiments/nope/trials",
    "/static/..%2Fdata.py", "/static/../app.py",
])
def test_paths_outside_the_storage_root_are_rejected(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code in (400, 404), (path, r.status_code)
    assert "import" not in r.text and "journal" not in r.text.replace("journal.jsonl/", "")


def test_symlinked_experiment_leaving_the_root_is_hidden_and_rejected(
        storage: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    live_copy(storage, "to_link")  # a real experiment ...
    os.rename(storage / "to_link", outside)  # ... moved out of the root
    os.symlink(outside, storage / "sneaky")
    client = TestClient(create_app(str(storage)), base_url=LOCAL)
    names = [e["name"] for e in client.get("/api/experiments").json()["experiments"]]
    assert "sneaky" not in names
    assert client.get("/api/experiments/sneaky/trials").status_code == 400
    with pytest.raises(PathError):
        resolve_inside(str(storage), "sneaky")


def test_trial_dirnames_from_a_crafted_journal_cannot_escape(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "evil").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "error.txt").write_text("TOP SECRET")
    (root / "evil" / "journal.jsonl").write_text(json.dumps(  # schema version 1: no checksums
        {"e": "exp", "name": "evil", "trainable": "f"}) + "\n" + json.dumps(
        {"e": "trial", "id": "t1", "tag": "0", "dirname": "../../secret"}) + "\n" + json.dumps(
        {"e": "status", "t": "t1", "s": "ERROR", "msg": "boom"}) + "\n")
    client = TestClient(create_app(str(root)), base_url=LOCAL)
    r = client.get("/api/experiments/evil/trials/t1/error")
    assert r.status_code == 400 and "TOP SECRET" not in r.text


@pytest.mark.parametrize("name", ["..", ".", "", "/etc", "a/b", "a\\b", "x\x00y", ".hidden"])
def test_resolve_inside_rejects_non_component_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(PathError):
        resolve_inside(str(tmp_path), name)


def test_token_is_required_when_set(storage: Path) -> None:
    client = TestClient(create_app(str(storage), token="s3cret"), base_url="http://10.1.2.3")
    assert client.get("/api/experiments").status_code == 401
    assert client.get("/").status_code == 401
    assert client.get("/api/experiments?token=wrong").status_code == 401
    assert client.get("/api/experiments", headers={"X-Poptune-Token": "s3cret"}).status_code == 200
    assert client.get("/api/experiments",
                      headers={"Authorization": "Bearer s3cret"}).status_code == 200
    page = client.get("/?token=s3cret")
    assert page.status_code == 200 and "HttpOnly" in page.headers["set-cookie"]
    assert client.get("/static/app.js").status_code == 200  # the cookie now carries it


def test_off_loopback_binding_always_gets_a_token() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert is_loopback(host) and resolve_token(host, None) is None
    for host in ("0.0.0.0", "::", "192.168.1.5", "example.org"):
        token = resolve_token(host, None)
        assert not is_loopback(host) and token and len(token) >= 24
    assert resolve_token("0.0.0.0", None) != resolve_token("0.0.0.0", None)
    assert resolve_token("0.0.0.0", "mine") == "mine"


def test_without_token_only_loopback_host_headers_and_get_are_answered(client: TestClient) -> None:
    assert client.get("/api/experiments", headers={"host": "evil.example"}).status_code == 403
    assert client.get("/api/experiments", headers={"host": "localhost:8265"}).status_code == 200
    for host in ("[::1]:8265", "[::1]", "127.0.0.1"):
        assert client.get("/api/experiments", headers={"host": host}).status_code == 200
    # a crafted Host whose last ':' is followed by no port (a probe: it passed)
    for host in ("127.0.0.1:80@evil.com", "localhost:x"):
        assert client.get("/api/experiments", headers={"host": host}).status_code == 403
    assert client.post("/api/experiments").status_code == 405
    assert client.delete("/api/experiments/pbt_exp").status_code == 405


def test_no_endpoint_unpickles(storage: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cloudpickle

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the dashboard must not unpickle")

    for mod in (pickle, cloudpickle):
        monkeypatch.setattr(mod, "load", refuse)
        monkeypatch.setattr(mod, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    fresh = TestClient(create_app(str(storage)), base_url=LOCAL)  # parses from scratch
    tid = api(fresh, "/trials")["trials"][0]["id"]
    for path in ("", "/trials", "/exploits", "/tree", f"/trials/{tid}/schedule",
                 f"/trials/{tid}/error", f"/series?trials={tid}"):
        assert fresh.get("/api/experiments/pbt_exp" + path).status_code == 200, path
    assert fresh.get("/api/experiments").status_code == 200


def test_sniffing_tuner_pkl_reads_metric_without_running_code(storage: Path,
                                                              tmp_path: Path) -> None:
    assert sniff_metric_mode(str(storage / "pbt_exp" / "tuner.pkl")) == ("score", "max")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> Any:
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "tuner.pkl"
    bad.write_bytes(pickle.dumps({"tune_config": Evil(), "metric": "x"}))
    sniff_metric_mode(str(bad))
    assert not marker.exists()
    (tmp_path / "junk.pkl").write_bytes(b"\x80\x05garbage")
    assert sniff_metric_mode(str(tmp_path / "junk.pkl")) == (None, None)


def test_serve_on_a_port_in_use_raises_before_announcing_and_leaves_no_socket(
        tmp_path: Path) -> None:
    pytest.importorskip("uvicorn")
    import socket

    from poptune.dashboard import serve
    from poptune.dashboard.app import BindError

    def open_fds() -> set[str]:
        return set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else set()

    printed: list[str] = []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        before = open_fds()
        with pytest.raises(BindError, match=rf"^`port` must be a port free on 127.0.0.1, got "
                                            rf"{port}: it is already in use"):
            serve(str(tmp_path), port=port, print_fn=printed.append)
        assert open_fds() <= before  # the socket that failed to bind was closed
    assert printed == []  # no URL announced for a server that never served


def test_serving_leaves_the_processes_logging_handlers_alone(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """uvicorn's default log config (dictConfig) closes every handler of the process; the
    dashboard, run from a user's script (or a test runner), must not."""
    import logging

    uvicorn = pytest.importorskip("uvicorn")
    from poptune.dashboard import serve

    class Kept(logging.Handler):
        closed = False

        def emit(self, record: logging.LogRecord) -> None:
            pass

        def close(self) -> None:
            Kept.closed = True
            super().close()

    def run(server: Any, sockets: Any = None) -> None:  # instead of serving for ever
        server.started = True

    monkeypatch.setattr(uvicorn.Server, "run", run)
    mine = Kept()
    logging.getLogger().addHandler(mine)
    try:
        serve(str(tmp_path), port=0, print_fn=lambda line: None)
        assert mine in logging.getLogger().handlers and not Kept.closed
    finally:
        logging.getLogger().removeHandler(mine)


def test_an_experiment_named_with_a_leading_dot_is_listed_and_served(storage: Path,
                                                                      client: TestClient) -> None:
    """``RunConfig(name=".x")`` is accepted (as by Ray): the dashboard lists and serves it;
    ``.`` and ``..`` stay refused."""
    live_copy(storage, ".hidden_exp")
    try:
        names = [e["name"] for e in client.get("/api/experiments").json()["experiments"]]
        assert ".hidden_exp" in names
        r = client.get("/api/experiments/.hidden_exp/trials")
        assert r.status_code == 200 and r.json()["trials"]
        for bad in ("..", "%2e%2e"):
            assert client.get(f"/api/experiments/{bad}/trials").status_code in (400, 404)
    finally:
        shutil.rmtree(storage / ".hidden_exp")


def test_series_says_how_many_trials_it_left_out(storage: Path, client: TestClient,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """More trials asked for than one answer carries: the answer says so (it capped them
    silently at 500)."""
    import poptune.dashboard.app as dash_app

    monkeypatch.setattr(dash_app, "SERIES_TRIALS", 2)
    ids = trial_ids(storage)
    out = api(client, "/series", metric="score")
    assert len(out["series"]) == 2 and out["left_out"] == len(ids) - 2
    assert out["next_trials"] == [t for t in ids if t not in out["series"]][:2]
    assert "left_out" not in api(client, "/series", metric="score", trials=",".join(ids[:2]))
