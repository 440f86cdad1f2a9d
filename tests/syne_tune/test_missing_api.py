"""The Syne Tune API that poptune.syne_tune once lacked, end to end on the simulated backend:
GridSearch, FIFOScheduler / HyperbandScheduler, StoreResultsCallback, PlateauStopper,
list_experiments / load_experiments_df / get_metadata and syne_tune.constants."""

from __future__ import annotations

import json
import warnings
from itertools import product

import pandas as pd
import pytest

from poptune.exceptions import TuneConfigError
from poptune.syne_tune import Reporter, StoppingCriterion, Tuner
from poptune.syne_tune.backend import PythonBackend
from poptune.syne_tune.config_space import choice, finrange, loguniform, randint, uniform
from poptune.syne_tune.experiments import (
    get_metadata,
    list_experiments,
    load_experiment,
    load_experiments_df,
)
from poptune.syne_tune.optimizer.baselines import GridSearch, RandomSearch
from poptune.syne_tune.optimizer.schedulers import FIFOScheduler, HyperbandScheduler
from poptune.syne_tune.stopping_criterion import PlateauStopper, TuningStatus

GRID_SPACE = {"x": uniform(0, 1), "act": choice(["relu", "tanh"]), "n": randint(1, 2),
              "epochs": 3}


def grid_objective(x, act, n, epochs):
    from poptune import simulation

    report = Reporter()
    for epoch in range(1, epochs + 1):
        simulation.advance(1.0)
        report(epoch=epoch, loss=x + n + (act == "tanh"))


def curve(lr, width, epochs):
    from poptune import simulation

    report = Reporter()
    for epoch in range(1, epochs + 1):
        simulation.advance(10.0)
        report(epoch=epoch, loss=lr / epoch + width * 0.01)


CURVE_SPACE = {"lr": loguniform(1e-3, 1.0), "width": randint(1, 4), "epochs": 5}


@pytest.fixture(autouse=True)
def simulated(monkeypatch):
    monkeypatch.setenv("POPTUNE_BACKEND", "simulated")


def run(scheduler, stop, space, fn, n_workers=2, **kwargs):
    tuner = Tuner(PythonBackend(fn, space), scheduler, stop, n_workers=n_workers, **kwargs)
    tuner.run()
    return tuner, load_experiment(tuner.name)


def configs_of(df):
    first = df.groupby("trial_id").first()
    return [(round(r.config_x, 9), r.config_act, int(r.config_n)) for r in first.itertuples()]


# -- GridSearch ------------------------------------------------------------------------------

def test_grid_search_runs_the_whole_grid_once_midpoint_first_then_ends():
    sched = GridSearch(GRID_SPACE, "loss", mode="min", random_seed=3,
                       search_options={"num_samples": {"x": 3}})
    tuner, exp = run(sched, StoppingCriterion(max_wallclock_time=10_000), GRID_SPACE,
                     grid_objective)
    got = configs_of(exp.results)
    grid = {(round(x, 9), a, n) for x, a, n in product([1 / 6, 0.5, 5 / 6], ["relu", "tanh"],
                                                       [1, 2])}
    # 3 x 2 x 2 points, each once; Syne Tune's default first configuration is the midpoint
    # one (x=0.5, the first category, round(1.5)=2), which the grid then skips
    assert len(got) == 12 and set(got) == grid
    assert got[0] == (0.5, "relu", 2)
    # the grid ran out: tuning ended when the last trials ended, far below the budget
    assert tuner.status.num_trials_completed == 12
    assert tuner.status.wallclock_time < 100
    assert (exp.results.groupby("trial_id").epoch.max() == 3).all()


def test_grid_order_points_to_evaluate_num_samples_and_duplicates():
    space = {"x": uniform(0, 1), "lr": loguniform(1e-4, 1e-2), "act": choice(["a", "b"]),
             "f": finrange(0, 1, 3), "k": randint(1, 9), "c": 7}
    sched = GridSearch(space, "loss", points_to_evaluate=[{"act": "b"}], shuffle_config=False,
                       num_samples={"x": 2, "lr": 2, "k": 100})
    # 2 (act) x 3 (finrange) x 2 (x) x 2 (lr) x min(5, 9) (k)
    assert sched.grid_size == 2 * 3 * 2 * 2 * 5 and sched.num_samples["k"] == 5
    first = sched.configs()[0]
    assert first["c"] == 7 and first["act"] == "a" and first["f"] == 0.0
    # cell centres, in log space for a log domain (Syne Tune dedupes them with a set, so
    # their order is the set's)
    assert sorted({c["lr"] for c in sched.configs()}) == pytest.approx([10 ** -3.5,
                                                                       10 ** -2.5])
    assert sorted({c["x"] for c in sched.configs()}) == [0.25, 0.75]
    assert sorted({c["k"] for c in sched.configs()}) == [1, 3, 5, 7, 9]
    searcher = sched._searcher()
    # the point (x=0.5) is off the grid: the whole grid follows it, then FINISHED
    suggested = [searcher.suggest(str(i)) for i in range(sched.grid_size + 2)]
    assert suggested[0]["act"] == "b" and suggested[0]["k"] == 5  # the point, midpoints
    assert suggested[0]["x"] == 0.5
    assert suggested[-1] == "FINISHED" and None not in suggested
    # not shuffled: categorical values (reverse config order), then numeric ones by sorted
    # name (k, lr, x); the last varies fastest
    assert [(s["k"], s["x"]) for s in suggested[1:4]] == [(1, 0.25), (1, 0.75), (1, 0.25)]
    assert all(s["c"] == 7 for s in suggested[1:-1])
    shuffled = GridSearch(space, "loss", random_seed=0, num_samples={"x": 2, "lr": 2})
    assert shuffled.configs() != sched.configs()
    assert sorted(map(str, shuffled.configs())) == sorted(map(str, sched.configs()))
    with pytest.raises(TuneConfigError, match="`num_samples\\['x'\\]` must be an integer"):
        GridSearch(space, "loss", num_samples={"x": 0})
    with pytest.raises(TuneConfigError, match="`shuffle_config` must be None when"):
        GridSearch(space, "loss", shuffle_config=True, search_options={"shuffle_config": 1})


def test_grid_allow_duplicates_goes_round_again_and_refuses_unbounded_domains():
    import poptune.search as ps

    searcher = GridSearch({"a": choice([1, 2, 3])}, "loss", points_to_evaluate=[],
                          shuffle_config=False, allow_duplicates=True)._searcher()
    assert [searcher.suggest(str(i))["a"] for i in range(7)] == [1, 2, 3, 1, 2, 3, 1]
    with pytest.raises(TuneConfigError, match=r"`config_space\['z'\]` must be a float"):
        GridSearch({"z": ps.sample_from(lambda _: 1)}, "loss")


# -- FIFOScheduler / HyperbandScheduler -----------------------------------------------------

def test_fifo_scheduler_with_grid_and_random_searchers():
    sched = FIFOScheduler(GRID_SPACE, searcher="grid", metric="loss", mode="min",
                          search_options={"num_samples": {"x": 2}}, points_to_evaluate=[])
    tuner, exp = run(sched, StoppingCriterion(max_wallclock_time=10_000), GRID_SPACE,
                     grid_objective)
    assert exp.results.trial_id.nunique() == 8 and tuner.status.num_trials_completed == 8
    meta = json.loads((exp.path / "metadata.json").read_text())
    assert meta["scheduler_name"] == "FIFOScheduler" and meta["searcher"] == "grid"
    # random: endless, every trial runs to its end (FIFO never stops a trial)
    sched = FIFOScheduler(CURVE_SPACE, metric="loss", random_seed=0)
    tuner, exp = run(sched, StoppingCriterion(max_num_trials_completed=3), CURVE_SPACE, curve)
    assert (exp.results.groupby("trial_id").epoch.max().iloc[:4] == 5).all()
    assert (exp.results.st_decision == "CONTINUE").all()


def test_fifo_and_hyperband_refuse_what_poptune_cannot_run():
    with pytest.raises(TuneConfigError, match=r"^`searcher` must be one of 'random', 'grid', "
                                              r"'bayesopt', 'botorch', 'kde' .*got 'bore'$"):
        FIFOScheduler(CURVE_SPACE, searcher="bore", metric="loss")
    with pytest.raises(TypeError, match="`searcher` must be a searcher name"):
        FIFOScheduler(CURVE_SPACE, searcher=object(), metric="loss")
    with pytest.raises(TuneConfigError, match=r"^`searcher` must be one of 'random', 'grid', "
                                              r"'bayesopt', 'kde' .*got 'hypertune'$"):
        HyperbandScheduler(CURVE_SPACE, searcher="hypertune", metric="loss")
    with pytest.raises(TuneConfigError, match=r"^`type` must be 'stopping' or 'promotion' .*"
                                              r"got 'pasha'$"):
        HyperbandScheduler(CURVE_SPACE, type="pasha", metric="loss")
    with pytest.raises(TuneConfigError, match=r"^`rung_levels` must be None .*got \[1, 3\]$"):
        HyperbandScheduler(CURVE_SPACE, rung_levels=[1, 3], metric="loss")
    with pytest.raises(TuneConfigError, match=r"^`reduction_factor` must be a number >= 2"):
        HyperbandScheduler(CURVE_SPACE, reduction_factor=1.5, metric="loss")
    with pytest.raises(TuneConfigError, match=r"^`max_t` must be given, or be a constant"):
        HyperbandScheduler({"lr": uniform(0, 1)}, metric="loss")
    with warnings.catch_warnings():  # the promotion variant runs: nothing is ignored
        warnings.simplefilter("error")
        HyperbandScheduler(CURVE_SPACE, type="promotion", metric="loss")
    with pytest.raises(TuneConfigError, match=r"^`brackets` must be 1 with type='promotion'"):
        HyperbandScheduler(CURVE_SPACE, type="promotion", metric="loss", brackets=2)
    with pytest.warns(UserWarning, match=r"search_options\['debug_log'\]=False.*ignored"):
        FIFOScheduler(CURVE_SPACE, metric="loss", search_options={"debug_log": False})


def test_hyperband_scheduler_d2l_style_stops_poor_trials():
    # max_t from config_space["epochs"], as Syne Tune infers it
    sched = HyperbandScheduler(CURVE_SPACE, type="stopping", resource_attr="epoch",
                               grace_period=1, reduction_factor=2, searcher="random",
                               metric="loss", mode="min", random_seed=1)
    assert (sched.time_attr, sched.max_t) == ("epoch", 5)
    _, exp = run(sched, StoppingCriterion(max_num_trials_finished=8), CURVE_SPACE, curve)
    last = exp.results.groupby("trial_id").tail(1)
    cut = last[last.epoch < 5]
    assert len(cut) >= 1 and (cut.st_decision == "STOP").all()
    full = last[last.epoch == 5]
    assert len(full) >= 1 and (full.st_decision == "STOP").all()
    meta = json.loads((exp.path / "metadata.json").read_text())
    assert meta["scheduler_name"] == "HyperbandScheduler" and meta["type"] == "stopping"


def test_hyperband_scheduler_with_the_grid_searcher_and_max_resource_attr():
    space = {"lr": choice([0.001, 0.5, 1.0]), "width": 1, "budget": 5}

    def fn(lr, width, budget):
        curve(lr, width, budget)

    sched = HyperbandScheduler(space, searcher="grid", metric="loss", max_resource_attr="budget",
                               points_to_evaluate=[], grace_period=1, reduction_factor=3)
    tuner, exp = run(sched, StoppingCriterion(max_wallclock_time=10_000), space, fn)
    assert sched.max_t == 5 and exp.results.trial_id.nunique() == 3


# -- StoreResultsCallback ------------------------------------------------------------------

class StartedCount:
    """An extra results composer (a class, as Syne Tune asks)."""

    def __call__(self, tuner):
        return {"n_started": tuner.tuning_status.num_trials_started}

    def keys(self):
        return ["n_started"]


def test_store_results_callback_is_the_results_table(tmp_path):
    from poptune.syne_tune.results_callback import ExtraResultsComposer, StoreResultsCallback
    from poptune.syne_tune.tuner_callback import StoreResultsCallback as D2lEra

    assert D2lEra is StoreResultsCallback
    assert ExtraResultsComposer().keys() == []
    cb = StoreResultsCallback(extra_results_composer=StartedCount())
    sched = HyperbandScheduler(CURVE_SPACE, metric="loss", grace_period=1, reduction_factor=2,
                               random_seed=1)
    tuner, exp = run(sched, StoppingCriterion(max_num_trials_finished=6), CURVE_SPACE, curve,
                     callbacks=[cb])
    df = cb.dataframe()
    assert cb.csv_file == str(exp.path / "results.csv.zip")
    # the callback's rows are the table results.csv.zip holds: STOP decisions, statuses
    assert len(df) == len(exp.results) > 6
    assert list(df.trial_id) == list(exp.results.trial_id)
    assert list(df.st_decision) == list(exp.results.st_decision)
    assert (df.st_decision == "STOP").any() and (df.st_status == "Completed").any()
    assert "n_started" in exp.results.columns and exp.results.n_started.min() >= 1
    cb.store_results()  # rewrites the same table
    assert len(pd.read_csv(exp.path / "results.csv.zip")) == len(df)


def test_store_results_callback_without_a_poptune_tuner_writes_its_own_csv(tmp_path):
    from datetime import datetime
    from types import SimpleNamespace

    from poptune.syne_tune.results_callback import StoreResultsCallback
    from poptune.syne_tune.tuner_callback import Trial

    cb = StoreResultsCallback()
    cb.on_tuning_start(SimpleNamespace(tuner_path=tmp_path, results_update_interval=100))
    cb.on_trial_result(Trial(3, {"lr": 0.1}, datetime.now()), "InProgress", {"loss": 1.0},
                       "CONTINUE")
    cb.on_tuning_end()
    df = pd.read_csv(tmp_path / "results.csv.zip")
    assert df.to_dict("records")[0]["config_lr"] == 0.1 and "st_tuner_time" in df.columns


# -- PlateauStopper ------------------------------------------------------------------------

def flat(lr, width, epochs):
    from poptune import simulation

    simulation.advance(1.0)
    Reporter()(epoch=1, loss=round(lr, 1) * 0 + 1.0)


def test_plateau_stopper_stops_tuning_once_the_best_plateaus():
    stop = PlateauStopper(metric="loss", num_trials=4, std=0.001)
    tuner, exp = run(RandomSearch(CURVE_SPACE, metric="loss", random_seed=0), stop,
                     CURVE_SPACE, flat)
    # every trial reports 1.0: the running best of 4 trials is flat once 4 trials reported
    assert 4 <= tuner.status.num_trials_started <= 8
    assert exp.results.trial_id.nunique() >= 4


def test_plateau_stopper_rules_mode_patience_and_arguments():
    status = TuningStatus(["acc"])
    for trial_id, acc in enumerate([0.1, 0.9, 0.5, 0.2]):
        status.on_result(trial_id, {"acc": acc})
    assert not PlateauStopper("acc", num_trials=3, mode="max")(status)  # nothing finished
    status.num_trials_completed = 1
    assert PlateauStopper("acc", num_trials=3, mode="max")(status)  # 0.9, 0.9, 0.9
    assert not PlateauStopper("acc", num_trials=4, mode="max")(status)  # 0.1, 0.9, ...
    patient = PlateauStopper("acc", num_trials=3, mode="max", patience=2)
    assert [patient(status) for _ in range(3)] == [False, True, True]
    for kwargs, msg in (({"mode": "avg"}, "min or max"), ({"num_trials": 1}, "greater than"),
                        ({"patience": -1}, "Patience"), ({"std": 1}, "standard deviation")):
        with pytest.raises(ValueError, match=msg):
            PlateauStopper("acc", **kwargs)


# -- list_experiments / load_experiments_df / get_metadata --------------------------------

def test_list_and_load_experiments_over_poptunes_layout(_syne_folder):
    names = []
    for seed, tuner_name in ((0, "first"), (1, "second")):
        tuner, _ = run(RandomSearch(CURVE_SPACE, metric="loss", random_seed=seed),
                       StoppingCriterion(max_num_trials_started=1), CURVE_SPACE, curve,
                       tuner_name=tuner_name)
        names.append(tuner.name)
    (_syne_folder / "not-an-experiment").mkdir()
    (_syne_folder / "not-an-experiment" / "metadata.json").write_text('{"x": 1}')
    meta = get_metadata()
    assert sorted(meta) == sorted(names)
    assert meta[names[0]]["path"] == str(_syne_folder)
    assert meta[names[0]]["metric_names"] == ["loss"]
    exps = list_experiments()
    assert [e.name for e in exps] == names[::-1]  # newest first
    assert [e.name for e in list_experiments(path_filter=lambda p: "second" in p)] == [names[1]]
    assert list_experiments(experiment_filter=lambda e: e.name == names[0])[0].name == names[0]
    df = load_experiments_df()
    assert set(df.tuner_name) == set(names)
    assert len(df) == sum(len(e.results) for e in exps)
    assert (df.metric_names == "loss").all() and (df.scheduler_name == "RandomSearch").all()
    assert list_experiments(root=_syne_folder / "elsewhere") == []


# -- constants -----------------------------------------------------------------------------

def test_constants_name_the_results_columns():
    from poptune.syne_tune import constants as c

    _, exp = run(RandomSearch(CURVE_SPACE, metric="loss", random_seed=0),
                 StoppingCriterion(max_num_trials_started=1), CURVE_SPACE, curve)
    for col in (c.ST_TRIAL_ID, c.ST_TUNER_TIME, c.ST_WORKER_TIME, c.ST_WORKER_TIMESTAMP,
                c.ST_WORKER_ITER, c.ST_DECISION, c.ST_STATUS):
        assert col in exp.results.columns, col
    assert (exp.path / c.ST_RESULTS_DATAFRAME_FILENAME).exists()
    meta = json.loads((exp.path / c.ST_METADATA_FILENAME).read_text())
    assert c.ST_TUNER_CREATION_TIMESTAMP in meta and c.ST_TUNER_START_TIMESTAMP in meta
    assert exp.path.parent.name == "syne-tune"  # the conftest's $SYNE_TUNE_ENV_FOLDER
    assert (c.SYNE_TUNE_ENV_FOLDER, c.SYNE_TUNE_DEFAULT_FOLDER) == ("SYNETUNE_FOLDER",
                                                                    "syne-tune")
    assert (c.ST_CHECKPOINT_DIR, c.ST_METRIC_TAG) == ("st_checkpoint_dir", "tune-metric")
