"""poptune.syne_tune's Tuner on the simulated backend: the stopping criterion, the results
table, load_experiment and the baselines, on deterministic simulated time."""

from __future__ import annotations

import json
import os

import pytest

from poptune.syne_tune import Reporter, StoppingCriterion, Tuner
from poptune.syne_tune.backend import PythonBackend
from poptune.syne_tune.config_space import choice, loguniform, randint, uniform
from poptune.syne_tune.experiments import load_experiment
from poptune.syne_tune.optimizer.baselines import (
    ASHA,
    BOTorch,
    PopulationBasedTraining,
    RandomSearch,
)

SPACE = {"lr": loguniform(1e-3, 1.0), "width": randint(1, 4), "epochs": 5}


def objective(lr, width, epochs):
    from poptune import simulation

    report = Reporter()
    for epoch in range(1, epochs + 1):
        simulation.advance(10.0)
        report(epoch=epoch, loss=lr / epoch + width * 0.01)


@pytest.fixture(autouse=True)
def simulated(monkeypatch):
    monkeypatch.setenv("POPTUNE_BACKEND", "simulated")


def run(stop, scheduler=None, space=SPACE, fn=objective, n_workers=2):
    tuner = Tuner(PythonBackend(fn, space),
                  scheduler or RandomSearch(space, metric="loss", mode="min", random_seed=0),
                  stop, n_workers=n_workers)
    tuner.run()
    return tuner, load_experiment(tuner.name)


def test_wallclock_budget_stops_running_trials_once_exceeded():
    tuner, exp = run(StoppingCriterion(max_wallclock_time=120))
    df = exp.results
    # two at a time, 50 simulated seconds each: trials 0-3 complete, 4 and 5 are cut short
    finished = df.groupby("trial_id").epoch.max()
    assert list(finished[finished == 5].index) == [0, 1, 2, 3]
    assert df.st_tuner_time.max() <= 130 and tuner.status.wallclock_time > 120
    assert set(df.trial_id) == {0, 1, 2, 3, 4, 5}


def test_trials_started_and_completed_bounds():
    # trials 0 and 1 end together at t=50 and both free slots are filled at once (as in
    # Syne Tune's loop): 4 > 2 started, so tuning stops and trials 2 and 3 are cut short
    tuner, exp = run(StoppingCriterion(max_num_trials_started=2))
    assert tuner.status.num_trials_started == 4 and tuner.status.num_trials_completed == 2
    assert exp.results.groupby("trial_id").epoch.max().to_dict() == {0: 5, 1: 5, 2: 1, 3: 1}
    assert tuner.status.num_trials_stopped == 2
    # completed: stop once more than 2 ran to their end (0 and 1 at t=50, 2 and 3 at t=100)
    tuner, exp = run(StoppingCriterion(max_num_trials_completed=2))
    assert tuner.status.num_trials_completed == 4
    assert exp.results.st_tuner_time.max() <= 110


def test_results_table_has_syne_tune_columns_and_best_config(tmp_path):
    tuner, exp = run(StoppingCriterion(max_num_evaluations=12))
    df = exp.results
    for col in ("trial_id", "st_tuner_time", "st_worker_time", "st_worker_timestamp",
                "st_worker_iter", "st_decision", "st_status", "epoch", "loss",
                "config_lr", "config_width", "config_epochs"):
        assert col in df.columns, col
    assert "training_iteration" not in df.columns  # poptune's own keys stay in its layout
    assert len(df) >= 13 and df.st_tuner_time.is_monotonic_increasing
    best = exp.best_config()
    assert best["loss"] == df.loss.min() and not any(k.startswith("st_") for k in best)
    meta = json.loads((exp.path / "metadata.json").read_text())
    assert meta["metric_names"] == ["loss"] and meta["metric_mode"] == "min"
    assert meta["entrypoint"] == "python_entrypoint"
    assert exp.path.parent == tmp_path / "syne-tune"  # SYNETUNE_FOLDER, as Syne Tune
    assert (exp.path / "journal.jsonl").exists()  # and poptune's own layout beside it
    exp.plot(figure_path=str(tmp_path / "best.png"))
    exp.plot_trials_over_time(figure_path=str(tmp_path / "trials.png"))
    assert os.path.getsize(tmp_path / "best.png") > 2000
    assert os.path.getsize(tmp_path / "trials.png") > 2000


def test_points_to_evaluate_go_first_and_constants_reach_the_function():
    space = {**SPACE, "width": choice([1, 2, 3])}
    sched = RandomSearch(space, metrics=["loss"], do_minimize=True,
                         points_to_evaluate=[{"lr": 0.5, "width": 3}])
    _, exp = run(StoppingCriterion(max_num_trials_started=1), sched, space)
    first = exp.results[exp.results.trial_id == 0].iloc[0]
    assert first.config_lr == 0.5 and first.config_width == 3 and first.config_epochs == 5


def test_asha_stops_poor_trials_with_a_stop_decision():
    sched = ASHA(SPACE, metric="loss", mode="min", resource_attr="epoch",
                 max_resource_attr="epochs", grace_period=1, reduction_factor=2, random_seed=1)
    _, exp = run(StoppingCriterion(max_num_trials_finished=8), sched)
    df = exp.results
    stopped = df[df.st_decision == "STOP"]
    assert len(stopped) >= 1 and (stopped.epoch < 5).all()


def test_pbt_restarts_a_trial_from_its_donors_checkpoint(tmp_path):
    def trainable(lr, steps, st_checkpoint_dir):
        from poptune import simulation

        path = os.path.join(st_checkpoint_dir, "state.json")
        step, value = 0, 0.0
        if os.path.exists(path):
            with open(path) as f:
                step, value = json.load(f)
        report = Reporter()
        while step < steps:
            step += 1
            value += lr
            simulation.advance(1.0)
            with open(path, "w") as f:
                json.dump([step, value], f)
            report(step=step, score=value)

    space = {"lr": uniform(0.0, 1.0), "steps": 12}
    sched = PopulationBasedTraining(space, metric="score", mode="max", resource_attr="step",
                                    max_t=12, population_size=4, perturbation_interval=3,
                                    random_seed=0)
    _, exp = run(StoppingCriterion(max_num_trials_finished=3), sched, space, trainable,
                 n_workers=4)
    df = exp.results
    # an exploited trial continues from its donor's state: its score jumps to the donor's
    lrs = df.groupby("trial_id").config_lr.nunique()
    assert (lrs > 1).any()


def test_gp_bayesian_optimisation_runs_through_optuna():
    pytest.importorskip("optuna")
    pytest.importorskip("scipy")
    space = {"lr": uniform(0.0, 1.0), "width": 1, "epochs": 1}
    sched = BOTorch(space, metric="loss", do_minimize=True, random_seed=0)
    tuner, exp = run(StoppingCriterion(max_num_trials_finished=4), sched, space)
    assert tuner.status.num_trials_completed >= 4
    assert exp.results.config_lr.nunique() >= 4


def test_keyword_forms_and_their_conflicts():
    assert RandomSearch({}, metric="a", mode="max").metric_mode() == "max"
    assert RandomSearch({}, metrics=["a"], do_minimize=False).metric_mode() == "max"
    assert RandomSearch({}, metric="a").metric_mode() == "min"
    with pytest.raises(ValueError, match="`do_minimize`"):
        RandomSearch({}, metric="a", mode="max", do_minimize=True)
    with pytest.raises(ValueError, match="`metrics`"):
        RandomSearch({}, metrics=["a", "b"])
    with pytest.raises(ValueError, match="`n_workers`"):
        Tuner(PythonBackend(objective, SPACE), RandomSearch(SPACE, metric="loss"),
              StoppingCriterion(), n_workers=0)


def test_reporter_outside_a_trial_prints_syne_tunes_line(capsys):
    Reporter()(epoch=1, loss=0.25)
    line = capsys.readouterr().out.strip()
    assert line.startswith("[tune-metric]: ")
    payload = json.loads(line.split(": ", 1)[1])
    assert payload["loss"] == 0.25 and payload["st_worker_iter"] == 0
    with pytest.raises(ValueError, match="st_"):
        Reporter()(st_loss=1.0)


def test_an_experiment_without_results_says_so_by_name(tmp_path):
    from poptune.exceptions import TuneConfigError

    exp = load_experiment("nonexistent-xyz", local_path=str(tmp_path))
    assert exp.results is None  # documented: no results written
    missing = (r"^experiment 'nonexistent-xyz' has no results: there is no experiment "
               rf"directory {tmp_path}/nonexistent-xyz \(check the name 'nonexistent-xyz' and "
               r"`local_path`\)$")
    for call in (exp.best_config, exp.plot, exp.plot_trials_over_time):
        with pytest.raises(TuneConfigError, match=missing):
            call()
    (tmp_path / "started").mkdir()  # stopped before any trial reported
    exp = load_experiment("started", local_path=str(tmp_path))
    with pytest.raises(TuneConfigError, match=r"^experiment 'started' has no results: .*"
                                              r"results.csv.zip does not exist"):
        exp.best_config()
