"""poptune.syne_tune's Tuner on the simulated backend: the stopping criterion, the results
table, load_experiment and the baselines, on deterministic simulated time."""

from __future__ import annotations

import json
import math
import os

import pytest

from poptune.syne_tune import Reporter, StoppingCriterion, Tuner
from poptune.syne_tune.backend import PythonBackend
from poptune.syne_tune.config_space import choice, uniform
from poptune.syne_tune.experiments import load_experiment
from poptune.syne_tune.optimizer.baselines import (
    ASHA,
    BOTorch,
    PopulationBasedTraining,
    RandomSearch,
)

from tests.syne_tune._toy import SPACE, objective


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
    last = df.groupby("trial_id").tail(1)
    cut = last[last.epoch < 5]
    assert len(cut) >= 1 and (cut.st_decision == "STOP").all()
    # Syne Tune records the status the trial had when that result arrived: still running
    assert (cut.st_status == "InProgress").all()
    # ASHA also decides STOP on a result at max_t (Syne Tune: ``result[time_attr] >= max_t``)
    full = last[last.epoch == 5]
    assert len(full) >= 1 and (full.st_decision == "STOP").all()
    assert (full.st_status == "Completed").all()
    assert (df.drop(last.index).st_decision == "CONTINUE").all()


def pbt_trainable(lr, steps, st_checkpoint_dir):
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


def test_pbt_restarts_a_trial_from_its_donors_checkpoint(tmp_path):
    trainable = pbt_trainable

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


def test_pbt_keeps_starting_trials_until_the_criterion_holds():
    # Syne Tune's PBT starts a new configuration whenever no exploit is pending:
    # population_size limits nothing, the stopping criterion ends tuning
    space = {"lr": uniform(0.0, 1.0), "steps": 4}
    sched = PopulationBasedTraining(space, metric="score", mode="max", resource_attr="step",
                                    max_t=4, population_size=2, perturbation_interval=2,
                                    random_seed=0,
                                    searcher_kwargs={"points_to_evaluate": [{"lr": 0.125}]})
    tuner, exp = run(StoppingCriterion(max_wallclock_time=20), sched, space, pbt_trainable)
    df = exp.results
    assert tuner.status.num_trials_started >= 8 and tuner.status.num_trials_completed >= 6
    assert df.groupby("st_tuner_time").trial_id.nunique().max() <= 2  # n_workers at once
    assert df[df.trial_id == 0].config_lr.iloc[0] == 0.125  # searcher_kwargs' points first
    ends = df.groupby("trial_id").tail(1)
    assert (ends[ends.step == 4].st_decision == "STOP").all()  # PBT stops at max_t


def silent(x, epochs):
    return None


def test_a_trial_that_reports_nothing_raises_syne_tunes_error(capsys):
    with pytest.raises(ValueError, match=r"^trial (\d+) completed and no metrics got observed$"):
        run(StoppingCriterion(max_num_trials_started=3), fn=silent,
            space={"x": uniform(0, 1), "epochs": 1})
    out = capsys.readouterr().out
    assert "completed and no metrics got observed; its directory is" in out
    assert "output is not captured" in out  # where a function's stdout/stderr went


def failing(x):
    raise RuntimeError(f"boom at x={x:.3f}")


def test_too_many_failures_raise_a_value_error_that_is_a_tune_error(capsys):
    from poptune.exceptions import TuneError
    from poptune.syne_tune.tuner import TrialFailedError

    with pytest.raises(TrialFailedError) as info:
        run(StoppingCriterion(max_num_trials_started=10), fn=failing,
            space={"x": uniform(0, 1)})
    assert isinstance(info.value, ValueError) and isinstance(info.value, TuneError)
    message = str(info.value)
    assert message.startswith("Trial - 0 failed: 2 trials failed (more than max_failures=1)")
    assert "RuntimeError: boom at x=" in message
    out = capsys.readouterr().out
    assert "trial 0 failed; its directory is" in out
    assert "error.txt:" in out and "RuntimeError: boom at x=" in out  # its error's tail


def test_positional_arguments_of_the_latest_release():
    from poptune.syne_tune.optimizer.baselines import TPE

    point = [{"lr": 0.5}]
    s = RandomSearch(SPACE, ["loss"], False, 3, point)
    assert (s.mode, s.random_seed, s.points_to_evaluate) == ("max", 3, point)
    s = TPE(SPACE, "loss", True, 4, point)
    assert (s.mode, s.random_seed, s.points_to_evaluate) == ("min", 4, point)
    s = BOTorch(SPACE, "loss", False, 5, point)
    assert (s.mode, s.random_seed, s.points_to_evaluate) == ("max", 5, point)
    s = ASHA(SPACE, "loss", "epoch", 10, False, 7, point)
    assert (s.time_attr, s.max_t, s.mode, s.random_seed, s.points_to_evaluate) == (
        "epoch", 10, "max", 7, point)
    s = PopulationBasedTraining(SPACE, "loss", "epoch", 10, None, False, 8, 3)
    assert (s.mode, s.random_seed, s.population_size) == ("max", 8, 3)
    with pytest.raises(ValueError, match="`do_minimize`"):
        RandomSearch(SPACE, "loss", True, do_minimize=False)


def test_results_archive_statuses_and_metadata(tmp_path):
    import zipfile

    import numpy as np

    tuner = Tuner(PythonBackend(objective, SPACE),
                  RandomSearch(SPACE, metric="loss", random_seed=0),
                  StoppingCriterion(max_wallclock_time=120), n_workers=2,
                  metadata={"seed": np.int64(3), "weight": np.float32(0.5)})
    tuner.run()
    exp = load_experiment(tuner.name)
    with zipfile.ZipFile(exp.path / "results.csv.zip") as archive:
        assert archive.namelist() == ["results.csv"]
    df = exp.results
    # trials 4 and 5 were running when the criterion held: their rows keep the status they
    # had when recorded (Syne Tune never rewrites a row)
    assert set(df[df.trial_id.isin([4, 5])].st_status) == {"InProgress"}
    assert set(df.groupby("trial_id").tail(1).st_status) == {"Completed", "InProgress"}
    meta = json.loads((exp.path / "metadata.json").read_text())
    assert meta["seed"] == 3 and meta["weight"] == 0.5
    space = json.loads(meta["config_space"])
    assert space["lr"] == {"domain_cls": "Float", "domain_kwargs": {"lower": 1e-3, "upper": 1.0},
                           "sampler_cls": "LogUniform", "sampler_kwargs": {"base": math.e}}
    assert space["width"]["domain_kwargs"] == {"lower": 1, "upper": 4} and space["epochs"] == 5


def test_d2l_era_and_tpe_arguments_are_accepted_with_a_warning():
    from poptune.syne_tune.optimizer.baselines import TPE, BayesianOptimization

    with pytest.warns(UserWarning, match=r"random_fraction=0\.5.*ignored"):
        tpe = TPE(SPACE, "loss", num_min_data_points=3, top_n_percent=20,
                  random_fraction=0.5, num_candidates=32)
    kwargs = tpe._sampler_kwargs()
    assert kwargs["n_ei_candidates"] == 32 and kwargs["gamma"](100) == 20
    assert kwargs["gamma"](10) == 3  # at least num_min_data_points, as Syne Tune's KDE
    # random until Syne Tune's KDE can be fit: with 6 results both sets (3 good, 3 bad) hold
    # more points than the 2 hyperparameters
    assert kwargs["n_startup_trials"] == 6
    with pytest.warns(UserWarning, match=r"search_options=\{'debug_log': False\}"):
        RandomSearch(SPACE, metric="loss", search_options={"debug_log": False})
    with pytest.warns(UserWarning, match="max_resource_attr='epochs'"):
        BayesianOptimization(SPACE, metric="loss", max_resource_attr="epochs")
    with pytest.warns(UserWarning, match="type='rush_stopping'"):
        ASHA(SPACE, metric="loss", resource_attr="epoch", max_t=5, type="rush_stopping")
    with pytest.raises(ValueError, match="`type`"):
        ASHA(SPACE, metric="loss", resource_attr="epoch", max_t=5, type="eager")


def test_tuner_name_is_any_safe_path_component():
    make = lambda name: Tuner(PythonBackend(objective, SPACE),  # noqa: E731
                              RandomSearch(SPACE, metric="loss"), StoppingCriterion(),
                              n_workers=1, tuner_name=name, suffix_tuner_name=False)
    assert make("my_exp.v2-1").name == "my_exp.v2-1"
    for bad in ("a/b", "..", "x y"):
        with pytest.raises(ValueError, match="`tuner_name`"):
            make(bad)


def test_reporter_arrays_and_trailing_text(capsys):
    import numpy as np

    from poptune.syne_tune.report import retrieve

    Reporter(add_time=False)(arr=np.arange(2), one=np.array([3.0]), s=np.float32(0.5))
    line = capsys.readouterr().out.strip()
    payload = retrieve([line + " (epoch 1)"])[0]
    assert payload["arr"] == [0, 1] and payload["one"] == 3.0 and payload["s"] == 0.5


def test_syne_tune_callbacks_best_config_and_summary(monkeypatch, capsys):
    from poptune.syne_tune.tuner_callback import TunerCallback

    class Record(TunerCallback):
        def __init__(self):
            self.calls = []

        def on_tuning_start(self, tuner):
            self.calls.append(("start", tuner.name))

        def on_trial_result(self, trial, status, result, decision):
            self.calls.append(("result", trial.trial_id, result["loss"], status, decision))

        def on_trial_complete(self, trial, result):
            self.calls.append(("complete", trial.trial_id, result["epoch"]))

        def on_tuning_end(self):
            self.calls.append(("end",))

    monkeypatch.setenv("POPTUNE_SYNE_VERBOSE", "1")
    record = Record()
    tuner = Tuner(PythonBackend(objective, SPACE),
                  RandomSearch(SPACE, metric="loss", random_seed=0),
                  StoppingCriterion(max_num_trials_completed=2), n_workers=2,
                  callbacks=[record])
    tuner.run()
    df = load_experiment(tuner.name).results
    assert record.calls[0] == ("start", tuner.name) and record.calls[-1] == ("end",)
    results = [c for c in record.calls if c[0] == "result"]
    assert len(results) == len(df) and {c[3:] for c in results} == {("InProgress", "CONTINUE")}
    assert {c[1:] for c in record.calls if c[0] == "complete"} == {
        (t, 5) for t in df[df.st_status == "Completed"].trial_id}
    best = df.loc[df.loss.idxmin()]
    trial_id, config = tuner.best_config()
    assert trial_id == best.trial_id and config["lr"] == best.config_lr
    assert config["epochs"] == 5 and tuner.tuning_status is tuner.status
    out = capsys.readouterr().out
    assert "Resource summary (last result is reported):" in out
    assert f"loss: best {best.loss} for trial-id {best.trial_id}" in out
