"""Syne Tune's ``ASHA(type="promotion")`` / ``HyperbandScheduler(type="promotion")`` on
poptune's PromotionASHAScheduler, end to end on the simulated backend: trials pause at the
rungs (PAUSE rows), the promoted ones resume from their ``st_checkpoint_dir``."""

from __future__ import annotations

import json
import warnings

import pytest

from poptune.exceptions import TuneConfigError
from poptune.schedulers import ASHAScheduler, PromotionASHAScheduler
from poptune.syne_tune import Reporter, StoppingCriterion, Tuner
from poptune.syne_tune.backend import PythonBackend
from poptune.syne_tune.config_space import loguniform
from poptune.syne_tune.experiments import load_experiment
from poptune.syne_tune.optimizer.baselines import ASHA
from poptune.syne_tune.optimizer.schedulers import HyperbandScheduler

SPACE = {"lr": loguniform(1e-3, 1.0), "epochs": 9}


def objective(lr, epochs, st_checkpoint_dir):
    """loss = lr / epoch; the epoch reached is kept in the checkpoint directory; 10 simulated
    seconds an epoch."""
    import os

    from poptune import simulation

    path = os.path.join(st_checkpoint_dir, "epoch.json")
    start = 0
    if os.path.exists(path):
        with open(path) as f:
            start = json.load(f)
    report = Reporter()
    for epoch in range(start + 1, epochs + 1):
        simulation.advance(10.0)
        with open(path, "w") as f:
            json.dump(epoch, f)
        report(epoch=epoch, loss=lr / epoch, resumed_from=start)


@pytest.fixture(autouse=True)
def simulated(monkeypatch):
    monkeypatch.setenv("POPTUNE_BACKEND", "simulated")


def _check(results, rungs=(1, 3), max_t=9):
    for _, df in results.groupby("trial_id"):
        epochs = list(df.epoch)
        assert epochs == list(range(1, epochs[-1] + 1))  # resumed, never restarted
        paused = list(df[df.st_decision == "PAUSE"].epoch)
        assert paused == [r for r in rungs if r <= epochs[-1]][:len(paused)]
        assert set(df.resumed_from) <= {0, *rungs}
        if epochs[-1] == max_t:
            assert df.st_decision.iloc[-1] == "STOP"
    assert (results.st_decision == "PAUSE").any()
    last = results.groupby("trial_id").epoch.max()
    assert (last == max_t).any() and (last < max_t).any()
    assert (results.resumed_from > 0).any()  # some trial was promoted from a checkpoint


def test_asha_promotion_pauses_at_rungs_and_promotes_from_checkpoints():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # type="promotion" is no longer ignored
        sched = ASHA(SPACE, metric="loss", mode="min", resource_attr="epoch",
                     max_resource_attr="epochs", reduction_factor=3, type="promotion",
                     random_seed=2)
    parts = sched.poptune_parts()
    assert isinstance(parts["scheduler"], PromotionASHAScheduler)
    assert parts["scheduler"].rung_levels == [1, 3]
    tuner = Tuner(PythonBackend(objective, SPACE), sched,
                  StoppingCriterion(max_wallclock_time=600), n_workers=2)
    tuner.run()
    _check(load_experiment(tuner.name).results)


def test_hyperband_scheduler_type_promotion_with_a_searcher():
    sched = HyperbandScheduler(SPACE, type="promotion", searcher="random", metric="loss",
                               mode="min", resource_attr="epoch", grace_period=1,
                               reduction_factor=3, random_seed=5)
    assert isinstance(sched.poptune_parts()["scheduler"], PromotionASHAScheduler)
    tuner = Tuner(PythonBackend(objective, SPACE), sched,
                  StoppingCriterion(max_wallclock_time=600), n_workers=2)
    tuner.run()
    exp = load_experiment(tuner.name)
    _check(exp.results)
    assert json.loads((exp.path / "metadata.json").read_text())["type"] == "promotion"


def test_stopping_stays_the_default_and_promotion_refuses_more_brackets():
    assert isinstance(ASHA(SPACE, metric="loss", max_t=9).poptune_parts()["scheduler"],
                      ASHAScheduler)
    with pytest.raises(TuneConfigError, match=r"^`brackets` must be 1 with type='promotion'"
                                              r".*got 2$"):
        ASHA(SPACE, metric="loss", max_t=9, type="promotion", brackets=2)
