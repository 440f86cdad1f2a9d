"""Attacks on the dashboard and the read-only CLI views: planted symlinks and FIFOs, path
traversal, wrong methods, missing tokens on any route or scope, and pickles that run code."""

from __future__ import annotations

import asyncio
import os
import pickle
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.routing import Mount, Route
    from starlette.websockets import WebSocketDisconnect

from poptune.dashboard import create_app
from poptune.dashboard.app import _Guard
from poptune.dashboard.data import ExperimentView
from poptune.storage.confined import OutsideRootError, open_under
from tests.dashboard import journal_records, make_experiment
from tests.dashboard._client import LOCAL, TestClient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SECRET = "TOP-SECRET-CONTENT-1234"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faults")
    make_experiment(root, "pbt_exp", fail=True)
    return root / "pbt_exp"


@pytest.fixture
def world(source: Path, tmp_path: Path) -> dict[str, Path]:
    """A fresh copy of the experiment under ``root/`` and a secret file outside the root."""
    root = tmp_path / "root"
    root.mkdir()
    exp = root / "pbt_exp"
    shutil.copytree(source, exp, symlinks=True)
    secret = tmp_path / "secret.txt"
    secret.write_text(f'{{"lr": "{SECRET}"}}\n')
    return {"root": root, "exp": exp, "secret": secret}


def trials_by_status(exp: Path) -> dict[str, dict[str, Any]]:
    status = {r["t"]: r["s"] for r in journal_records(exp, "status")}
    return {status[r["id"]]: r for r in journal_records(exp, "trial")}


def plant(path: Path, target: Path) -> None:
    if path.exists() or path.is_symlink():
        path.unlink()
    os.symlink(target, path)


# -- files symlinked out of the experiment ------------------------------------------------------
def test_error_txt_symlinked_outside_is_refused_with_403_and_no_content(
        world: dict[str, Path]) -> None:
    errored = trials_by_status(world["exp"])["ERROR"]
    plant(world["exp"] / errored["dirname"] / "error.txt", world["secret"])
    client = TestClient(create_app(str(world["root"])), base_url=LOCAL)
    r = client.get(f"/api/experiments/pbt_exp/trials/{errored['id']}/error")
    assert r.status_code == 403 and SECRET not in r.text


def test_error_txt_symlinked_inside_the_experiment_is_still_served(
        world: dict[str, Path]) -> None:
    errored = trials_by_status(world["exp"])["ERROR"]
    (world["exp"] / "note.txt").write_text("an inside note")
    plant(world["exp"] / errored["dirname"] / "error.txt", world["exp"] / "note.txt")
    client = TestClient(create_app(str(world["root"])), base_url=LOCAL)
    r = client.get(f"/api/experiments/pbt_exp/trials/{errored['id']}/error")
    assert r.status_code == 200 and r.json()["text"] == "an inside note"


def test_params_json_symlinked_outside_shows_in_neither_the_api_nor_poptune_show(
        world: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    from poptune.cli import main

    for t in journal_records(world["exp"], "trial"):
        plant(world["exp"] / t["dirname"] / "params.json", world["secret"])
    client = TestClient(create_app(str(world["root"])), base_url=LOCAL)
    for path in ("", "/trials", "/tree", "/exploits"):
        r = client.get("/api/experiments/pbt_exp" + path)
        assert r.status_code == 200 and SECRET not in r.text, path
    assert main(["show", str(world["exp"])]) == 0
    assert SECRET not in capsys.readouterr().out


@pytest.mark.parametrize("name", ["journal.jsonl", "pbt_global.txt", "tuner.pkl"])
def test_experiment_files_symlinked_outside_are_not_read(world: dict[str, Path],
                                                         name: str) -> None:
    target = world["exp"].parent.parent / f"moved_{name}"
    shutil.move(str(world["exp"] / name), target)
    plant(world["exp"] / name, target)
    client = TestClient(create_app(str(world["root"])), base_url=LOCAL)
    listing = client.get("/api/experiments").json()["experiments"]
    r = client.get("/api/experiments/pbt_exp/trials")
    if name == "journal.jsonl":  # no journal inside: not an experiment at all
        assert listing == [] and r.status_code == 404
        view = ExperimentView(str(world["exp"]))
        view.refresh()
        assert view.trials == {} and "outside" in (view.damage or "")
    elif name == "pbt_global.txt":  # exploits are seen in the journal, configs stay unknown
        assert r.status_code == 200
        events = client.get("/api/experiments/pbt_exp/exploits").json()["exploits"]
        assert events and all(e["new_config"] is None for e in events)
    else:  # metric/mode still come from the journal's header, not the linked pickle
        assert r.status_code == 200 and (r.json()["metric"], r.json()["mode"]) == ("score", "max")


def test_a_trial_directory_symlinked_outside_is_rejected(world: dict[str, Path],
                                                         tmp_path: Path) -> None:
    errored = trials_by_status(world["exp"])["ERROR"]
    outside = tmp_path / "outside_trial"
    shutil.move(str(world["exp"] / errored["dirname"]), outside)
    (outside / "error.txt").write_text(SECRET)
    plant(world["exp"] / errored["dirname"], outside)
    client = TestClient(create_app(str(world["root"])), base_url=LOCAL)
    r = client.get(f"/api/experiments/pbt_exp/trials/{errored['id']}/error")
    assert r.status_code == 400 and SECRET not in r.text


def test_a_fifo_planted_as_error_txt_does_not_hang_the_request(world: dict[str, Path]) -> None:
    errored = trials_by_status(world["exp"])["ERROR"]
    path = world["exp"] / errored["dirname"] / "error.txt"
    path.unlink()
    os.mkfifo(path)  # open() for reading would block until a writer came
    client = TestClient(create_app(str(world["root"])), base_url=LOCAL)
    r = client.get(f"/api/experiments/pbt_exp/trials/{errored['id']}/error")
    assert r.status_code == 403


def test_open_under_refuses_escapes_and_non_files(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("ok")
    os.symlink("/etc/passwd", tmp_path / "link")
    with open_under(tmp_path, tmp_path / "in.txt", "r") as f:
        assert f.read() == "ok"
    for bad in (tmp_path / "link", tmp_path / ".." / "x", tmp_path, "/etc/passwd"):
        with pytest.raises(OutsideRootError):
            open_under(tmp_path, bad)
    with pytest.raises(OutsideRootError, match="not a regular file"):
        (tmp_path / "d").mkdir()
        open_under(tmp_path, tmp_path / "d")


# -- traversal --------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [
    "/api/experiments/%2e%2e", "/api/experiments/%2E%2E/tree",
    "/api/experiments/pbt_exp/trials/%2e%2e%2f%2e%2e%2fsecret.txt/error",
    "/api/experiments/%2Ftmp/trials", "/api/experiments/%2Fetc%2Fpasswd",
    "/api/experiments/pbt_exp/trials/%2Fetc%2Fpasswd/error",
    "/api/experiments/pbt_exp/trials/%2Fetc%2Fpasswd/schedule",
    "/api/experiments/pbt_exp/series?trials=../../secret.txt",
    "/api/experiments/pbt_exp/series?trials=%2Fetc%2Fpasswd",
    "/api/experiments/.%2e/exploits", "/api/experiments/pbt_exp%00/trials",
    "/static/%2e%2e/data.py", "/static/%2e%2e%2fapp.py",
])
def test_encoded_and_absolute_traversal_is_rejected(world: dict[str, Path], path: str) -> None:
    client = TestClient(create_app(str(world["root"])), base_url=LOCAL)
    r = client.get(path)
    assert r.status_code in (400, 404), (path, r.status_code)
    assert SECRET not in r.text and "root:" not in r.text and "import" not in r.text


# -- every route: methods and token ---------------------------------------------------------------
def concrete_paths(app: Any, trial: str) -> list[str]:
    """One real URL per route of ``app`` (a route this cannot fill in fails the test)."""
    out = []
    for route in app.routes:
        if isinstance(route, Mount):
            out.append(route.path + "/app.js")
        else:
            assert isinstance(route, Route), route
            path = route.path.replace("{name}", "pbt_exp").replace("{trial}", trial)
            assert "{" not in path, f"a new path parameter in {route.path}: teach this test"
            out.append(path)
    return out


@pytest.fixture
def token_client(world: dict[str, Path]) -> tuple[TestClient, list[str]]:
    app = create_app(str(world["root"]), token="s3cret")
    trial = trials_by_status(world["exp"])["ERROR"]["id"]
    return TestClient(app, base_url="http://10.0.0.1"), concrete_paths(app, trial)


def test_every_route_requires_the_token(token_client: tuple[TestClient, list[str]]) -> None:
    client, paths = token_client
    assert len(paths) >= 10
    for path in paths:
        assert client.get(path, headers={"X-Poptune-Token": "s3cret"}).status_code == 200, path
        for headers in ({}, {"X-Poptune-Token": "wrong"}, {"Authorization": "Bearer no"},
                        {"Cookie": "poptune_token=bad"}):
            r = client.get(path, headers=headers)
            assert r.status_code == 401 and "error" in r.json(), (path, headers)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"])
def test_every_route_answers_405_to_other_methods(
        token_client: tuple[TestClient, list[str]], method: str) -> None:
    client, paths = token_client
    for path in paths:
        r = client.request(method, path, headers={"X-Poptune-Token": "s3cret"})
        assert r.status_code == 405, (method, path)
        assert r.headers["x-frame-options"] == "DENY"


# -- non-HTTP scopes --------------------------------------------------------------------------
def run_guard(scope: dict[str, Any], token: str | None = "s3cret",
              hosts: frozenset[str] | None = None) -> tuple[bool, list[dict[str, Any]]]:
    """Send ``scope`` through the guard; (whether the inner app ran, messages sent)."""
    called: list[bool] = []
    sent: list[dict[str, Any]] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        called.append(True)

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(_Guard(inner, token, hosts)(scope, receive, send))
    return bool(called), sent


def ws_scope(headers: list[tuple[bytes, bytes]], query: bytes = b"") -> dict[str, Any]:
    return {"type": "websocket", "path": "/ws", "headers": headers, "query_string": query}


def test_websockets_without_the_token_or_from_a_foreign_host_are_closed_1008() -> None:
    ran, sent = run_guard(ws_scope([(b"host", b"10.0.0.1")]))
    assert not ran and sent[0]["type"] == "websocket.close" and sent[0]["code"] == 1008
    ran, sent = run_guard(ws_scope([(b"host", b"evil.example")]), token=None,
                          hosts=frozenset({"127.0.0.1"}))
    assert not ran and sent[0]["code"] == 1008
    assert run_guard(ws_scope([], b"token=s3cret"))[0]
    assert run_guard(ws_scope([(b"host", b"127.0.0.1")]), None, frozenset({"127.0.0.1"}))[0]


def test_websocket_to_the_app_is_refused_end_to_end(world: dict[str, Path]) -> None:
    client = TestClient(create_app(str(world["root"]), token="s3cret"), base_url=LOCAL)
    with pytest.raises(WebSocketDisconnect) as info:
        with client.websocket_connect("/ws"):
            pass
    assert info.value.code == 1008


def test_lifespan_passes_and_unknown_scope_types_are_refused() -> None:
    assert run_guard({"type": "lifespan"})[0]
    with pytest.raises(RuntimeError, match="unsupported ASGI scope"):
        run_guard({"type": "webtransport", "headers": []})


# -- no pickle from the experiment directory is ever loaded by a read-only view ------------------
class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (Path.touch, (self.marker,))


def test_plot_show_and_dashboard_never_unpickle_tuner_pkl(
        world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    from poptune.cli import main

    marker = tmp_path / "pwned"
    (world["exp"] / "tuner.pkl").write_bytes(pickle.dumps(
        {"tune_config": _Evil(marker), "metric": "score"}))
    pickle.loads(pickle.dumps(_Evil(tmp_path / "works")))  # the payload does run when loaded
    assert (tmp_path / "works").exists()
    assert main(["plot", str(world["exp"]), "--metric", "score", "--out",
                 str(tmp_path / "given")]) == 0
    assert not marker.exists()
    assert main(["plot", str(world["exp"]), "--out", str(tmp_path / "plots")]) == 0
    assert main(["show", str(world["exp"])]) == 0
    assert main(["ls", str(world["root"])]) == 0
    client = TestClient(create_app(str(world["root"])), base_url=LOCAL)
    for path in ("/api/experiments", "/api/experiments/pbt_exp/trials",
                 "/api/experiments/pbt_exp/tree"):
        assert client.get(path).status_code == 200
    assert not marker.exists()
    assert (tmp_path / "plots" / "metric.png").exists()  # metric came from the journal
    capsys.readouterr()
