"""Polling is cheap: answers are kept per view state and query, carry an ETag, and a request
naming it gets ``304 Not Modified``; a finished experiment is never rebuilt; the trial table
can be fetched incrementally and the big answers without what the page does not draw."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import poptune.dashboard.app as dash_app
import poptune.timeline
from poptune.dashboard import create_app
from poptune.dashboard.app import etag_matches
from poptune.dashboard.data import ExperimentView
from poptune.storage.journal import Journal
from poptune.storage.records import RolledBack
from tests.dashboard import append_result, copy_without_end, journal_records, make_experiment
from tests.dashboard._client import LOCAL, TestClient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
POLLED = ["/trials", "/tree", "/timeline", "/exploits", "", "/series?metric=score"]


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cache")
    make_experiment(root, "pbt_exp", steps=12)
    return root


@pytest.fixture
def client(storage: Path) -> TestClient:
    return TestClient(create_app(str(storage)), base_url=LOCAL)


def live_copy(storage: Path, name: str) -> Path:
    dst = storage / name
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir()
    copy_without_end(storage / "pbt_exp" / "journal.jsonl", dst / "journal.jsonl")
    return dst


def trial_ids(storage: Path) -> list[str]:
    return [r["id"] for r in journal_records(storage / "pbt_exp", "trial")]


class Counter:
    """Counts the calls of a function; :attr:`wrapper` is the function to patch in (a plain
    function, so it binds as a method too)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.calls = 0

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return fn(*args, **kwargs)

        self.wrapper = wrapper


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> dict[str, Counter]:
    """Counters of the expensive builders behind /trials, /tree and /timeline."""
    counters = {"trials": Counter(ExperimentView.trial_rows),
                "tree": Counter(dash_app.lineage_schedule),
                "timeline": Counter(poptune.timeline.timeline)}
    monkeypatch.setattr(ExperimentView, "trial_rows", counters["trials"].wrapper)
    monkeypatch.setattr(dash_app, "lineage_schedule", counters["tree"].wrapper)
    monkeypatch.setattr(poptune.timeline, "timeline", counters["timeline"].wrapper)
    return counters


# -- ETag and 304 ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", POLLED)
def test_every_polled_answer_has_an_etag_and_an_unchanged_one_is_a_bodyless_304(
        client: TestClient, path: str) -> None:
    url = "/api/experiments/pbt_exp" + path
    first = client.get(url)
    assert first.status_code == 200 and first.json()
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"] == "no-store"  # security headers stay on a 304
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    assert client.get(url, headers={"If-None-Match": f'"x", W/{etag}'}).status_code == 304


def test_the_etag_changes_with_the_query_and_with_new_data(storage: Path) -> None:
    exp = live_copy(storage, "etag_live")
    client = TestClient(create_app(str(storage)), base_url=LOCAL)
    url = "/api/experiments/etag_live/trials"
    first = client.get(url, params={"metric": "score"})
    other = client.get(url, params={"metric": "lr_seen"})
    assert first.headers["etag"] != other.headers["etag"]
    tid = trial_ids(storage)[0]
    append_result(exp, tid, {"score": 4321.0, "training_iteration": 99})
    after = client.get(url, params={"metric": "score"},
                       headers={"If-None-Match": first.headers["etag"]})
    assert after.status_code == 200 and after.headers["etag"] != first.headers["etag"]
    assert next(t for t in after.json()["trials"] if t["id"] == tid)["metric"] == 4321.0


def test_a_running_experiment_that_goes_quiet_is_answered_anew_as_interrupted(
        storage: Path) -> None:
    """The status changes without a write: the key holds it, so no stale 'running'."""
    exp = live_copy(storage, "quiet_live")
    client = TestClient(create_app(str(storage)), base_url=LOCAL)
    url = "/api/experiments/quiet_live/trials"
    running = client.get(url)
    assert running.json()["status"] == "running"
    old = time.time() - 3600
    os.utime(exp / "journal.jsonl", (old, old))
    later = client.get(url, headers={"If-None-Match": running.headers["etag"]})
    assert later.status_code == 200 and later.json()["status"] == "interrupted"


def test_if_none_match_parsing() -> None:
    assert etag_matches('"a"', '"a"') and etag_matches('W/"a"', '"a"')
    assert etag_matches('"b", "a"', '"a"') and etag_matches("*", '"a"')
    assert not etag_matches(None, '"a"') and not etag_matches("", '"a"')
    assert not etag_matches('"ab"', '"a"')


# -- nothing is rebuilt when nothing changed ----------------------------------------------------
def test_a_finished_experiment_is_built_once_however_often_it_is_polled(
        client: TestClient, builds: dict[str, Counter]) -> None:
    base = "/api/experiments/pbt_exp"
    assert client.get(base).json()["status"] == "finished"
    for _ in range(5):
        for path in ("/trials", "/tree", "/timeline"):
            assert client.get(base + path, params={"metric": "score"}).status_code == 200
    assert {k: c.calls for k, c in builds.items()} == {"trials": 1, "tree": 1, "timeline": 1}


def test_a_live_experiment_is_rebuilt_only_when_its_journal_commits(
        storage: Path, builds: dict[str, Counter]) -> None:
    exp = live_copy(storage, "rebuild_live")
    client = TestClient(create_app(str(storage)), base_url=LOCAL)
    url = "/api/experiments/rebuild_live/timeline"
    for _ in range(3):
        client.get(url)
    assert builds["timeline"].calls == 1
    with open(exp / "journal.jsonl", "ab") as f:  # an uncommitted tail changes nothing
        f.write(b'{"e":"result"')
    old = os.path.getmtime(exp / "journal.jsonl")
    client.get(url)
    client.get(url)
    assert builds["timeline"].calls == 2  # the journal's mtime is part of the key, once
    with open(exp / "journal.jsonl", "rb+") as f:  # drop the partial line again
        f.truncate(os.path.getsize(exp / "journal.jsonl") - len(b'{"e":"result"'))
    os.utime(exp / "journal.jsonl", (old, old))
    append_result(exp, trial_ids(storage)[0], {"score": 1.0, "training_iteration": 99})
    client.get(url)
    client.get(url)
    assert builds["timeline"].calls == 3


def test_the_kept_answers_are_bounded_and_the_most_recently_used_stay(storage: Path) -> None:
    view = ExperimentView(str(storage / "pbt_exp"))
    view.refresh()
    built: list[int] = []

    def answer(i: int) -> tuple[bytes, str]:
        return dash_app.cached_answer(view, i, lambda: built.append(i) or {"i": i})

    for i in range(3 * dash_app.CACHE_ENTRIES):
        answer(0)  # used all the time: never evicted
        assert answer(i)[0] == f'{{"i":{i}}}'.encode()
    assert len(view.cache) == dash_app.CACHE_ENTRIES
    assert built.count(0) == 1 and len(built) == 3 * dash_app.CACHE_ENTRIES


# -- incremental trial table and smaller answers -----------------------------------------------
def test_trials_since_a_version_returns_only_the_trials_that_changed(storage: Path) -> None:
    exp = live_copy(storage, "since_live")
    client = TestClient(create_app(str(storage)), base_url=LOCAL)
    url = "/api/experiments/since_live/trials"
    full = client.get(url, params={"metric": "score"}).json()
    assert full["full"] and len(full["trials"]) == full["num_trials"] == 4
    same = client.get(url, params={"metric": "score", "since": full["version"]}).json()
    assert not same["full"] and same["trials"] == [] and same["version"] == full["version"]
    tid = trial_ids(storage)[2]
    append_result(exp, tid, {"score": 77.0, "training_iteration": 99})
    new = client.get(url, params={"metric": "score", "since": full["version"]}).json()
    assert not new["full"] and [t["id"] for t in new["trials"]] == [tid]
    assert new["trials"][0]["metric"] == 77.0 and new["version"] != full["version"]
    journal = Journal(str(exp / "journal.jsonl"))  # a rollback changes the row too
    journal.append(RolledBack(tid, 2))
    journal.close()
    rolled = client.get(url, params={"metric": "score", "since": new["version"]}).json()
    assert [t["id"] for t in rolled["trials"]] == [tid] and rolled["trials"][0]["epoch"] == 1
    for stale in ("nonsense", "0123:1", full["version"].split(":")[0] + ":999999"):
        again = client.get(url, params={"metric": "score", "since": stale}).json()
        assert again["full"] and len(again["trials"]) == 4


def test_trials_since_before_the_journal_was_rewritten_gets_everything(storage: Path) -> None:
    exp = live_copy(storage, "rewrite_live")
    client = TestClient(create_app(str(storage)), base_url=LOCAL)
    url = "/api/experiments/rewrite_live/trials"
    before = client.get(url).json()
    os.replace(exp / "journal.jsonl", exp / "old.jsonl")  # a repair or a re-run
    copy_without_end(storage / "pbt_exp" / "journal.jsonl", exp / "journal.jsonl")
    after = client.get(url, params={"since": before["version"]}).json()
    assert after["full"] and len(after["trials"]) == 4


def test_a_config_read_late_changes_the_version_and_the_row(storage: Path) -> None:
    exp = live_copy(storage, "late_cfg")
    client = TestClient(create_app(str(storage)), base_url=LOCAL)
    url = "/api/experiments/late_cfg/trials"
    first = client.get(url).json()  # no trial directories copied: no configs yet
    assert all(t["config"] is None for t in first["trials"])
    for rec in journal_records(storage / "pbt_exp", "trial"):
        src = storage / "pbt_exp" / rec["dirname"]
        (exp / rec["dirname"]).mkdir()
        shutil.copy(src / "params.json", exp / rec["dirname"] / "params.json")
    # once the journal commits (one trial's result), every row comes with its config
    append_result(exp, trial_ids(storage)[0], {"score": 1.0, "training_iteration": 99})
    later = client.get(url, params={"since": first["version"]}).json()
    assert len(later["trials"]) == 4 and all(t["config"] for t in later["trials"])


def test_last_and_points_can_be_left_out(client: TestClient) -> None:
    base = "/api/experiments/pbt_exp"
    rows = client.get(base + "/trials").json()["trials"]
    lean = client.get(base + "/trials", params={"last": 0}).json()["trials"]
    assert all("last" in t for t in rows) and not any("last" in t for t in lean)
    assert [{k: v for k, v in t.items() if k != "last"} for t in rows] == lean
    tl = client.get(base + "/timeline").json()
    short = client.get(base + "/timeline", params={"points": 0}).json()
    assert all(t["points"] for t in tl["trials"]) and not any("points" in t for t in short["trials"])
    assert short["best"] == tl["best"] and [t["runs"] for t in short["trials"]] == \
        [t["runs"] for t in tl["trials"]]
    assert client.get(base + "/trials", params={"last": "maybe"}).status_code == 400
