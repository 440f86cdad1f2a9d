"""Wall-clock views of any experiment: poptune.timeline, the two plots, `poptune plot
--over-time` and the dashboard's /timeline endpoint, on a simulated-time experiment."""

from __future__ import annotations

import os
import warnings

import pytest

import poptune as tune
from poptune import simulation
from poptune.timeline import timeline


def two_at_a_time(config):
    for _ in range(3):
        simulation.advance(10.0)
        tune.report({"loss": config["x"]})


@pytest.fixture(scope="module")
def exp_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("timeline")
    tune.Tuner(two_at_a_time, param_space={"x": tune.grid_search([4.0, 3.0, 2.0, 1.0])},
               tune_config=tune.TuneConfig(metric="loss", mode="min", backend="simulated",
                                           max_concurrent_trials=2),
               run_config=tune.RunConfig(storage_path=str(root), name="tl", verbose=0)).fit()
    return str(root / "tl")


def test_runs_follow_the_two_slots_of_the_machine(exp_dir):
    from poptune.lineage import load_experiment

    exp = load_experiment(exp_dir)
    tl = timeline([(t.trial_id, t.label, t.rows) for t in exp.trials], "loss", "min")
    runs = [t["runs"] for t in tl["trials"]]
    assert [len(r) for r in runs] == [1, 1, 1, 1]
    starts = [r[0][0] for r in runs]
    ends = [r[0][1] for r in runs]
    # whole-second timestamps pin each start to within a second
    assert starts == pytest.approx([0, 0, 30, 30], abs=1)
    assert [e - s for s, e in zip(starts, ends)] == pytest.approx([30] * 4, abs=0.01)
    assert [t["final"] for t in tl["trials"]] == [4.0, 3.0, 2.0, 1.0]
    assert [b[1] for b in tl["best"]] == [4.0, 3.0, 2.0, 1.0]


def test_a_resumed_run_is_a_second_bar():
    rows = [{"timestamp": 10, "time_since_restore": 1.0, "iterations_since_restore": 1},
            {"timestamp": 11, "time_since_restore": 2.0, "iterations_since_restore": 2},
            {"timestamp": 20, "time_since_restore": 1.0, "iterations_since_restore": 1}]
    tl = timeline([("t", "t", rows)], start=0.0)
    assert len(tl["trials"][0]["runs"]) == 2 and tl["best"] == []


def test_a_simulated_experiment_starts_on_its_own_clock(exp_dir):
    import json

    from poptune.lineage import load_experiment
    from poptune.plot import _timeline

    with open(os.path.join(exp_dir, "journal.jsonl")) as f:
        head = json.loads(f.readline())
    assert head["clock"] == "simulated" and head["start"] == 0.0
    tl = _timeline(load_experiment(exp_dir), "loss", "min")  # what the plots draw
    assert tl["start"] == 0.0
    assert [v for t in tl["trials"] for v in t["runs"][0]] == pytest.approx(
        [0, 30, 0, 30, 30, 60, 30, 60], abs=1)


def test_plots_over_time_are_written(exp_dir, tmp_path):
    pytest.importorskip("matplotlib")
    from poptune.cli import main

    assert main(["plot", exp_dir, "--over-time", "--out", str(tmp_path / "cli")]) == 0
    for name in ("trials_over_time.png", "best_over_time.png"):
        assert os.path.getsize(tmp_path / "cli" / name) > 2000


def test_dashboard_serves_the_timeline(exp_dir):
    pytest.importorskip("starlette")
    pytest.importorskip("httpx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    from poptune.dashboard import create_app

    client = TestClient(create_app(os.path.dirname(exp_dir)), base_url="http://127.0.0.1")
    r = client.get("/api/experiments/tl/timeline")
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["metric"] == "loss" and data["mode"] == "min"
    assert len(data["trials"]) == 4 and data["best"][-1][1] == 1.0
    # the experiment's start is read on its own (simulated) clock, like its results
    assert [t["runs"][0][0] for t in data["trials"]] == pytest.approx([0, 0, 30, 30], abs=1)
    assert client.get("/static/timeline.js").status_code == 200
    assert 'src="static/timeline.js"' in client.get("/").text
