"""The dashboard in a real headless Chromium (Debian's chromium + chromium-driver, Selenium).

Opens the dashboard served by uvicorn on a free loopback port against a real PBT experiment,
checks the trial table, the curves, the family tree's exploit panel, the schedule and error
views and the live update, and saves screenshots in ``test-artifacts/``. Skips only when
``/usr/bin/chromium`` is missing and ``.ci/install-browser.sh`` cannot install it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dashboard import append_result, journal_records, make_experiment

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-quic", "--window-size=1400,1700"]


def _browser_missing() -> str | None:
    """None if Chromium and its driver are there (installing them if needed), else why not."""
    if os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER):
        return None
    try:
        proc = subprocess.run(["bash", str(ROOT / ".ci" / "install-browser.sh")],
                              capture_output=True, text=True, timeout=900, check=False)
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
    except (OSError, subprocess.TimeoutExpired) as exc:
        detail = [str(exc)]
    if os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER):
        return None
    return f"{CHROMIUM} is missing and .ci/install-browser.sh could not install it: {detail[0]}"


webdriver = pytest.importorskip("selenium.webdriver",
                                reason="selenium is not installed (pip install selenium)")
uvicorn = pytest.importorskip("uvicorn", reason="the dashboard needs the `dashboard` extra")
_MISSING = _browser_missing()
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from poptune.dashboard import create_app


class Server:
    """uvicorn serving the dashboard app in a background thread on a free loopback port."""

    def __init__(self, storage: Path, token: str | None = None,
                 log: list[tuple[str, str, str, int]] | None = None) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        app = create_app(str(storage), token)
        config = uvicorn.Config(app if log is None else _Recorder(app, log), host="127.0.0.1",
                                port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.time() < deadline, "server did not start"
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class _Recorder:
    """ASGI wrapper logging ``(path, query, If-None-Match, status)`` of every request."""

    def __init__(self, app: Any, log: list[tuple[str, str, str, int]]) -> None:
        self.app, self.log = app, log

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])

        async def send_logged(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.log.append((scope["path"], scope["query_string"].decode(),
                                 headers.get(b"if-none-match", b"").decode(),
                                 message["status"]))
            await send(message)

        await self.app(scope, receive, send_logged)


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    make_experiment(root, "pbt_exp", fail=True)
    return root


@pytest.fixture(scope="module")
def server(storage: Path) -> Iterator[Server]:
    srv = Server(storage)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    ARTIFACTS.mkdir(exist_ok=True)
    yield driver
    driver.quit()


def wait(driver: Any, cond: Any, timeout: float = 10.0) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(cond)


def css(driver: Any, selector: str) -> list[Any]:
    return driver.find_elements(By.CSS_SELECTOR, selector)


def settle(driver: Any, polls: int = 2) -> None:
    """Wait for ``polls`` more completed poll cycles (the page stamps body[data-updated])."""
    for _ in range(polls):
        stamp = driver.find_element(By.TAG_NAME, "body").get_attribute("data-updated")
        wait(driver, lambda d, old=stamp: d.find_element(By.TAG_NAME, "body")
             .get_attribute("data-updated") != old)


def open_experiment(driver: Any, url: str, name: str = "pbt_exp", rows: int = 4) -> None:
    driver.get(f"{url}#/exp/{name}")
    wait(driver, lambda d: len(css(d, "#trials tbody tr")) == rows)
    wait(driver, lambda d: css(d, "#curves path.series") and css(d, "circle.exploit"))
    settle(driver)


def severe_console_errors(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


# -- views --------------------------------------------------------------------------------------
def test_experiment_list_links_to_the_experiment(browser: Any, server: Server) -> None:
    browser.get(server.url)
    row = wait(browser, lambda d: css(d, 'tr[data-experiment="pbt_exp"]'))[0]
    assert "finished" in row.text and "1 error" in row.text and "3 terminated" in row.text
    browser.save_screenshot(str(ARTIFACTS / "dashboard-list.png"))
    row.find_element(By.TAG_NAME, "a").click()
    wait(browser, lambda d: len(css(d, "#trials tbody tr")) == 4)
    assert browser.find_element(By.ID, "list-view").get_attribute("hidden") is not None
    assert severe_console_errors(browser) == []


def test_trial_table_rows_match_the_trials_and_sort_by_header(browser: Any, server: Server,
                                                               storage: Path) -> None:
    open_experiment(browser, server.url)
    ids = {r["id"] for r in journal_records(storage / "pbt_exp", "trial")}
    rows = css(browser, "#trials tbody tr")
    assert {r.get_attribute("data-trial") for r in rows} == ids
    bad = [r for r in rows if "ERROR" in r.text]
    assert len(bad) == 1 and "ValueError: injected failure at step 1" in bad[0].text

    def metric_column() -> list[float]:
        cells = [r.find_elements(By.TAG_NAME, "td")[4].text
                 for r in css(browser, "#trials tbody tr")]
        return [float(c) for c in cells if c not in ("–", "")]

    first = metric_column()
    assert first == sorted(first, reverse=True)  # best first (mode=max)
    header = next(th for th in css(browser, "#trials thead th") if th.text.startswith("score"))
    header.click()
    wait(browser, lambda d: metric_column() == sorted(first))
    next(th for th in css(browser, "#trials thead th") if th.text.startswith("score")).click()
    wait(browser, lambda d: metric_column() == first)


def test_learning_curves_are_drawn_for_checked_trials(browser: Any, server: Server) -> None:
    open_experiment(browser, server.url)
    paths = css(browser, "#curves path.series")
    checked = [b for b in css(browser, "#trials tbody input[type=checkbox]") if b.is_selected()]
    with_results = [b for b in checked if "ERROR" not in
                    b.find_element(By.XPATH, "./ancestor::tr").text]
    ids = [b.get_attribute("data-trial") for b in with_results]
    assert len(paths) >= len(ids) >= 3
    assert all(p.get_attribute("d").count("L") >= 10 for p in paths
               if p.get_attribute("data-trial") in ids)
    browser.find_element(By.ID, "select-none").click()  # re-renders the table
    wait(browser, lambda d: not css(d, "#curves path.series"))
    box = ids[0]
    css(browser, f'#trials tbody input[data-trial="{box}"]')[0].click()
    wait(browser, lambda d: [p.get_attribute("data-trial")
                             for p in css(d, "#curves path.series")] == [box])
    browser.find_element(By.ID, "select-best").click()
    wait(browser, lambda d: len(css(d, "#curves path.series")) >= 3)


def test_wall_clock_card_draws_a_bar_per_trial_run_and_the_best_so_far(browser: Any,
                                                                       server: Server) -> None:
    open_experiment(browser, server.url)
    with urllib.request.urlopen(server.url + "api/experiments/pbt_exp/timeline") as r:
        data = json.load(r)
    runs = {t["trial_id"]: len(t["runs"]) for t in data["trials"] if t["runs"]}
    assert len(runs) >= 3 and data["best"]  # the 3 trials that reported; the failed one did not

    def drawn(d: Any) -> Any:  # read in one script: the card may re-render between calls
        return d.execute_script("""
            const bars = {};
            for (const r of document.querySelectorAll("#timeline-bars rect.run")) {
              const id = r.getAttribute("data-trial");
              bars[id] = (bars[id] || 0) + 1;
              if (!(r.width.baseVal.value > 0 && r.height.baseVal.value > 0)) return null;
            }
            const best = document.querySelector("#timeline-best path.series");
            return best ? [bars, best.getAttribute("d")] : null;""")

    bars, best = wait(browser, drawn)
    assert bars == runs
    assert best.count("V") == len(data["best"])  # a step per improvement, then on to the end
    x_ticks = """return Array.from(document.querySelectorAll(arguments[0] + " text"))
        .filter(t => t.getAttribute("text-anchor") === "middle" && !t.classList.contains("label"))
        .map(t => [t.textContent, Math.round(Number(t.getAttribute("x")))]);"""
    assert (browser.execute_script(x_ticks, "#timeline-bars")  # one time axis for both charts
            == browser.execute_script(x_ticks, "#timeline-best"))
    assert severe_console_errors(browser) == []
    card = browser.find_element(By.ID, "timeline-card")
    browser.execute_script("arguments[0].scrollIntoView()", card)
    card.screenshot(str(ARTIFACTS / "dashboard-timeline.png"))


def test_clicking_an_exploit_shows_the_old_and_new_config(browser: Any, server: Server,
                                                          storage: Path) -> None:
    open_experiment(browser, server.url)
    log = (storage / "pbt_exp" / "pbt_global.txt").read_text()
    lines = [json.loads(line) for line in log.splitlines()]
    dots = css(browser, "circle.exploit")
    assert len(dots) == len(lines)
    index = browser.execute_script("""  // the latest exploit dot that no other dot covers
        const dots = Array.from(document.querySelectorAll("circle.exploit")).reverse();
        for (const c of dots) {
          c.scrollIntoView({block: "center"});
          const r = c.getBoundingClientRect();
          if (document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) === c)
            return Number(c.getAttribute("data-exploit"));
        }
        return null;""")
    assert index is not None
    dot = css(browser, f'circle.exploit[data-exploit="{index}"]')[0]
    ActionChains(browser).move_to_element(dot).click().perform()  # a real mouse click
    panel = wait(browser, lambda d: css(d, "#exploit-panel table.config-diff"))[0]
    heading = browser.find_element(By.CSS_SELECTOR, "#exploit-panel h4").text
    assert heading.startswith(f"Exploit #{index}:") and "cloned" in heading
    lr_row = panel.find_element(By.CSS_SELECTOR, 'tr[data-key="lr"]')
    new_lr = lr_row.find_element(By.CSS_SELECTOR, "td.new").text
    donor_lr = lr_row.find_elements(By.TAG_NAME, "td")[1].text
    old_lr = lr_row.find_element(By.CSS_SELECTOR, "td.old").text
    assert float(new_lr) == pytest.approx(lines[index][5]["lr"], rel=1e-3, abs=1e-3)
    assert float(donor_lr) == pytest.approx(lines[index][4]["lr"], rel=1e-3, abs=1e-3)
    assert old_lr not in ("", "–")
    assert "selected" in (browser.find_element(
        By.CSS_SELECTOR, f'circle.exploit[data-exploit="{index}"]').get_attribute("class"))
    browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))
    # the list of latest exploits beside the panel selects exploits too
    other = next(li for li in css(browser, "li.exploit-item")
                 if li.get_attribute("data-exploit") != str(index))
    other_index = other.get_attribute("data-exploit")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", other)
    other.click()
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#exploit-panel h4").text
         .startswith(f"Exploit #{other_index}:"))


def test_schedule_and_error_views(browser: Any, server: Server) -> None:
    open_experiment(browser, server.url)
    exploited = next(r for r in css(browser, "#trials tbody tr")
                     if r.find_elements(By.TAG_NAME, "td")[-2].text not in ("0", ""))
    tid = exploited.get_attribute("data-trial")
    exploited.find_elements(By.TAG_NAME, "td")[1].click()
    wait(browser, lambda d: tid in d.find_element(By.ID, "schedule-trial").text)
    wait(browser, lambda d: len(css(d, "#schedule-table tbody tr")) >= 2)
    assert css(browser, '#schedule-charts svg[data-key="lr"] path.series')
    item = wait(browser, lambda d: css(d, "#errors .error-item"))[0]
    assert "injected failure at step 1" in item.text
    item.find_element(By.TAG_NAME, "button").click()
    pre = wait(browser, lambda d: [p for p in css(d, "#errors pre.traceback") if p.is_displayed()
                                   and "Traceback" in p.text])[0]
    assert "ValueError: injected failure at step 1" in pre.text


def test_a_new_result_appears_within_2s_without_reload(browser: Any, server: Server,
                                                       storage: Path) -> None:
    shutil.copytree(storage / "pbt_exp", storage / "live_exp")  # trial dirs are relative
    open_experiment(browser, server.url, "live_exp")
    browser.execute_script("window.__sameDocument = true")
    row = next(r for r in css(browser, "#trials tbody tr") if "TERMINATED" in r.text)
    tid = row.get_attribute("data-trial")
    box = css(browser, f'#trials tbody input[data-trial="{tid}"]')[0]
    if not box.is_selected():
        box.click()
    path = wait(browser, lambda d: css(d, f'#curves path.series[data-trial="{tid}"]'))[0]
    before = path.get_attribute("d")
    last = [r["r"] for r in journal_records(storage / "live_exp", "result") if r["t"] == tid][-1]
    start = time.monotonic()
    append_result(storage / "live_exp", tid, {"score": 4321.0,
                                             "training_iteration": last["training_iteration"] + 1})

    def shown(d: Any) -> bool:  # read in one script: the page may re-render between calls
        row, curve = d.execute_script(
            "const id = arguments[0];"
            "const r = document.querySelector(`#trials tr[data-trial='${id}']`);"
            "const p = document.querySelector(`#curves path.series[data-trial='${id}']`);"
            "return [r ? r.textContent : '', p ? p.getAttribute('d') : ''];", tid)
        return "4321" in row and curve not in ("", before)

    wait(browser, shown, timeout=5)
    elapsed = time.monotonic() - start
    print(f"new result shown {elapsed:.2f} s after it was written")
    assert elapsed < 2.0, f"the new result took {elapsed:.2f} s to appear"
    assert browser.execute_script("return window.__sameDocument") is True  # no reload
    browser.save_screenshot(str(ARTIFACTS / "dashboard-live.png"))
    assert severe_console_errors(browser) == []


def test_polls_of_an_unchanged_experiment_are_answered_304_and_fetch_only_what_is_drawn(
        browser: Any, storage: Path) -> None:
    log: list[tuple[str, str, str, int]] = []
    srv = Server(storage, log=log)
    try:
        open_experiment(browser, srv.url)
        base = "/api/experiments/pbt_exp/"

        def answers(path: str) -> list[tuple[str, str, int]]:
            return [(q, inm, st) for p, q, inm, st in list(log) if p == base + path]

        # the timeline polls every 3 s: wait for its second poll
        wait(browser, lambda d: len(answers("timeline")) >= 2, timeout=15)
        settle(browser)
        for path in ("trials", "tree", "timeline"):
            got = answers(path)
            assert got[0][1] == "" and got[0][2] == 200, (path, got)
            assert got[-1][1].startswith('"') and got[-1][2] == 304, (path, got)
        trials = answers("trials")
        assert all("last=0" in q for q, _, _ in trials)
        assert "since=" not in trials[0][0] and all("since=" in q for q, _, _ in trials[-2:])
        assert all("points=0" in q for q, _, _ in answers("timeline"))
        # what the page shows is unchanged by answers it did not have to download
        assert len(css(browser, "#trials tbody tr")) == 4
        assert css(browser, "#timeline-bars rect.run") and css(browser, "circle.exploit")
        assert severe_console_errors(browser) == []
    finally:
        srv.stop()


def test_token_protected_dashboard_works_with_the_printed_url(browser: Any,
                                                              storage: Path) -> None:
    srv = Server(storage, token="browser-token-123")
    try:
        browser.get(srv.url + "api/experiments")
        assert "a valid token is required" in browser.find_element(By.TAG_NAME, "body").text
        browser.get(srv.url + "?token=browser-token-123#/exp/pbt_exp")
        wait(browser, lambda d: len(css(d, "#trials tbody tr")) == 4)
    finally:
        srv.stop()
