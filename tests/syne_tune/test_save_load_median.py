"""Tuner.save / Tuner.load / load_experiment(load_tuner=True) and a loaded tuner run again;
Syne Tune's MedianStoppingRule; on the simulated backend."""

from __future__ import annotations

import pickle

import pandas as pd
import pytest

from poptune.exceptions import TuneConfigError
from poptune.syne_tune import StoppingCriterion, Tuner
from poptune.syne_tune.backend import PythonBackend
from poptune.syne_tune.config_space import uniform
from poptune.syne_tune.experiments import list_experiments, load_experiment
from poptune.syne_tune.optimizer.baselines import ASHA, RandomSearch
from poptune.syne_tune.optimizer.schedulers import (
    LegacyMedianStoppingRule,
    MedianStoppingRule,
)

from tests.syne_tune._toy import SPACE, objective


@pytest.fixture(autouse=True)
def simulated(monkeypatch):
    monkeypatch.setenv("POPTUNE_BACKEND", "simulated")


def make(scheduler, stop, n_workers=2, **kwargs):
    return Tuner(PythonBackend(objective, SPACE), scheduler, stop, n_workers=n_workers,
                 **kwargs)


# -- save / load ------------------------------------------------------------------------

def test_tuner_dill_is_written_and_loads_with_its_state(_syne_folder):
    tuner = make(ASHA(SPACE, metric="loss", time_attr="epoch", max_t=5, random_seed=0),
                 StoppingCriterion(max_num_trials_started=4), tuner_name="saved",
                 suffix_tuner_name=False)
    tuner.run()
    dill_file = _syne_folder / "saved" / "tuner.dill"
    assert dill_file.is_file()
    with open(dill_file, "rb") as f:  # a plain pickle (dill reads it too)
        assert isinstance(pickle.load(f), Tuner)
    loaded = Tuner.load(str(_syne_folder / "saved"))
    assert loaded.name == "saved" and loaded.tuner_path == _syne_folder / "saved"
    assert loaded.status.num_trials_started == tuner.status.num_trials_started
    assert loaded.tuning_status.trial_rows.keys() == tuner.status.trial_rows.keys()
    assert loaded.best_config() == tuner.best_config()
    assert loaded.scheduler.max_t == 5 and loaded.n_workers == 2
    exp = load_experiment("saved", load_tuner=True)
    assert isinstance(exp.tuner, Tuner) and exp.name == "saved"
    assert load_experiment("saved").tuner is None
    assert list_experiments(load_tuner=True)[0].tuner.name == "saved"
    # save elsewhere, load from there: the tuner now belongs to that directory
    other = _syne_folder.parent / "elsewhere"
    tuner.save(str(other))
    assert Tuner.load(other).tuner_path == other


def test_save_tuner_false_writes_no_dill_and_load_experiment_gives_none(_syne_folder):
    tuner = make(RandomSearch(SPACE, metric="loss", random_seed=0),
                 StoppingCriterion(max_num_trials_started=1), save_tuner=False)
    tuner.run()
    assert not (tuner.tuner_path / "tuner.dill").exists()
    assert load_experiment(tuner.name, load_tuner=True).tuner is None
    with pytest.raises(FileNotFoundError):
        Tuner.load(tuner.tuner_path)


def test_load_refuses_what_is_not_a_tuner(tmp_path, caplog):
    (tmp_path / "tuner.dill").write_bytes(pickle.dumps({"not": "a tuner"}))
    with pytest.raises(TuneConfigError, match=r"^`tuner_path` must be a directory whose "
                                              r"tuner.dill holds a pickled Tuner \(it holds a "
                                              r"dict\)"):
        Tuner.load(tmp_path)
    with pytest.raises(TypeError, match="`tuner_path` must be the experiment's directory"):
        Tuner.load(3)
    assert load_experiment(tmp_path.name, load_tuner=True,
                           local_path=str(tmp_path.parent)).tuner is None
    assert "could not be loaded" in caplog.text


def test_a_loaded_tuner_runs_again_and_continues_its_experiment(_syne_folder):
    tuner = make(ASHA(SPACE, metric="loss", time_attr="epoch", max_t=5, random_seed=0),
                 StoppingCriterion(max_num_trials_started=4), tuner_name="resume",
                 suffix_tuner_name=False)
    tuner.run()
    first = load_experiment("resume").results
    started = tuner.status.num_trials_started
    exp = load_experiment("resume", load_tuner=True)
    exp.tuner.stop_criterion = StoppingCriterion(max_num_trials_started=10)
    exp.tuner.run()
    again = load_experiment("resume").results
    # the earlier rows stay, new trial ids follow the old ones, the counts go on
    assert exp.tuner.status.num_trials_started > 10 > started
    assert again.trial_id.nunique() == exp.tuner.status.num_trials_started
    pd.testing.assert_frame_equal(again.iloc[:len(first)].reset_index(drop=True),
                                  first[again.columns.intersection(first.columns)],
                                  check_like=True, check_dtype=False)
    new = again.iloc[len(first):]
    assert new.trial_id.min() == first.trial_id.max() + 1
    # the tuner time goes on from where the first run ended
    assert again.st_tuner_time.is_monotonic_increasing
    assert new.st_tuner_time.min() > first.st_tuner_time.max()
    # the old trials are not run again; the tuner.dill is rewritten with the new state
    assert (again.groupby("trial_id").size() <= 5).all()
    assert Tuner.load(_syne_folder / "resume").status.num_trials_started == (
        exp.tuner.status.num_trials_started)


def test_a_tuner_that_cannot_pickle_warns_once_and_tunes_on():
    import threading

    class Unpicklable:
        lock = None

        def __init__(self):
            self.lock = threading.Lock()

        def on_tuning_start(self, tuner):
            pass

    tuner = make(RandomSearch(SPACE, metric="loss", random_seed=0),
                 StoppingCriterion(max_num_trials_started=1), callbacks=[Unpicklable()])
    tuner.metadata_holder = threading.Lock()
    with pytest.warns(UserWarning, match=r"Tuner\(save_tuner=True\): the tuner could not be "
                                         r"pickled") as record:
        tuner.run()
    assert sum("could not be pickled" in str(w.message) for w in record) == 1
    assert tuner.status.num_trials_started >= 1 and tuner.status.overall_metric_statistics.count


# -- MedianStoppingRule ------------------------------------------------------------------

def rule_decisions(df, metric, resource, mode="min", running_average=True, grace_time=1,
                   grace_population=5, rank_cutoff=0.5):
    """Syne Tune's rule replayed over the results table, in arrival order: the index of
    each row where it says STOP."""
    seen: dict = {}
    history: dict = {}
    stops = []
    for index, row in df.iterrows():
        value = row[metric] * (-1 if mode == "max" else 1)
        if running_average:
            history.setdefault(row.trial_id, []).append(value)
            value = sum(history[row.trial_id]) / len(history[row.trial_id])
        level = seen.setdefault(row[resource], [])
        rank = sum(v < value for v in level) / (len(level) + 1)
        level.append(value)
        if not (len(level) < grace_population or row[resource] < grace_time) and (
                rank > rank_cutoff):
            stops.append(index)
    return stops


@pytest.mark.parametrize("running_average", [True, False])
def test_median_stopping_rule_stops_exactly_as_syne_tunes_rule(running_average):
    rule = MedianStoppingRule(RandomSearch(SPACE, metric="loss", random_seed=1), "epoch",
                              running_average=running_average, grace_population=3)
    tuner = make(rule, StoppingCriterion(max_num_trials_finished=12), n_workers=3)
    tuner.run()
    df = load_experiment(tuner.name).results
    expected = rule_decisions(df, "loss", "epoch", running_average=running_average,
                              grace_population=3)
    assert len(expected) >= 2  # the test means something
    stopped = list(df.index[df.st_decision == "STOP"])
    assert stopped == expected
    # a trial ends early on its STOP, or because tuning ended (the running ones, at the end)
    last = df.groupby("trial_id").tail(1)
    cut = last[(last.epoch < 5) & ~last.index.isin(expected)]
    assert len(cut) <= 3 and (cut.st_tuner_time >= df.st_tuner_time.max() - 10).all()
    assert (last.loc[expected].st_status == "InProgress").all()
    assert tuner.status.num_trials_stopped >= len(expected)


def test_median_stopping_rule_arguments_mode_and_metadata():
    import json

    space = {"x": uniform(0, 1), "epochs": 3}
    rule = LegacyMedianStoppingRule(RandomSearch(space, metric="acc", mode="max"),
                                    time_attr="epoch", grace_time=None, rank_cutoff=0.25)
    assert rule.metric_mode() == "max" and rule.resource_attr == "epoch"
    parts = rule.poptune_parts()
    sched = parts["scheduler"]
    assert (sched.metric, sched.mode, sched.rank_cutoff) == ("acc", "max", 0.25)
    # do_minimize (0.15) sets the rule's own ranking; the searcher keeps its mode
    minimizing = MedianStoppingRule(RandomSearch(space, metric="acc", mode="max"), "epoch",
                                    metric="loss", do_minimize=True).poptune_parts()
    assert (minimizing["scheduler"].metric, minimizing["scheduler"].mode) == ("loss", "min")
    meta = rule.metadata()
    assert meta["scheduler_name"] == "MedianStoppingRule"
    assert meta["wrapped_scheduler"] == "RandomSearch" and json.loads(meta["config_space"])
    for kwargs, match in (
            ({"scheduler": ASHA(space, metric="acc", time_attr="epoch", max_t=3)},
             r"^`scheduler` must be a scheduler that only proposes configurations, one of "
             r"RandomSearch, .* got 'ASHA'$"),
            ({"time_attr": "step"}, r"^`time_attr` must be None or 'epoch'"),
            ({"rank_cutoff": 1.5}, r"^`rank_cutoff` must be a number in \[0, 1\], got 1.5$"),
            ({"grace_population": 0}, r"^`grace_population` must be an integer >= 1 or None"),
            ({"grace_time": -1}, r"^`grace_time` must be a number >= 0 or None, got -1$")):
        args = {"scheduler": RandomSearch(space, metric="acc"), "resource_attr": "epoch",
                **kwargs}
        with pytest.raises(TuneConfigError, match=match):
            MedianStoppingRule(**args)
    with pytest.raises(TypeError, match=r"^`scheduler` must be a scheduler from "):
        MedianStoppingRule("random", "epoch")
    with pytest.raises(TypeError, match=r"^`resource_attr` must be a result key"):
        MedianStoppingRule(RandomSearch(space, metric="acc"))


def test_median_stopping_rule_state_survives_a_loaded_tuners_run(_syne_folder):
    rule = MedianStoppingRule(RandomSearch(SPACE, metric="loss", random_seed=2), "epoch",
                              grace_population=3)
    tuner = make(rule, StoppingCriterion(max_num_trials_finished=6), n_workers=3,
                 tuner_name="msr", suffix_tuner_name=False)
    tuner.run()
    loaded = Tuner.load(_syne_folder / "msr")
    loaded.stop_criterion = StoppingCriterion(max_num_trials_finished=14)
    loaded.run()
    df = load_experiment("msr").results
    # the rule continued with the results it had seen: its decisions over both runs are
    # those of one rule over the whole table
    assert list(df.index[df.st_decision == "STOP"]) == rule_decisions(
        df, "loss", "epoch", grace_population=3)
