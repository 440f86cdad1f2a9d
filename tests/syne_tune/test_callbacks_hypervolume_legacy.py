"""syne_tune.callbacks.TensorboardCallback, ExperimentResult.plot_hypervolume and
optimizer.legacy_baselines, on the simulated backend."""

from __future__ import annotations

import struct
import sys

import numpy as np
import pytest

from poptune.exceptions import TuneConfigError
from poptune.syne_tune import Reporter, StoppingCriterion, Tuner
from poptune.syne_tune.backend import PythonBackend
from poptune.syne_tune.config_space import choice, loguniform, randint
from poptune.syne_tune.experiments import (
    hypervolume,
    hypervolume_cumulative,
    load_experiment,
)
from poptune.syne_tune.optimizer import legacy_baselines as lb
from poptune.syne_tune.optimizer.baselines import RandomSearch

SPACE = {"lr": loguniform(1e-3, 1.0), "width": randint(1, 4), "act": choice(["a", "b"]),
         "epochs": 3}


def objective(lr, width, act, epochs):
    from poptune import simulation

    report = Reporter()
    for epoch in range(1, epochs + 1):
        simulation.advance(10.0)
        report(epoch=epoch, loss=lr / epoch + width * 0.01, cost=width * epoch / lr)


@pytest.fixture(autouse=True)
def simulated(monkeypatch):
    monkeypatch.setenv("POPTUNE_BACKEND", "simulated")


def run(scheduler=None, stop=None, **kwargs):
    tuner = Tuner(PythonBackend(objective, SPACE),
                  scheduler or RandomSearch(SPACE, metric="loss", random_seed=0),
                  stop or StoppingCriterion(max_num_trials_completed=3), n_workers=2, **kwargs)
    tuner.run()
    return tuner, load_experiment(tuner.name)


def read_events(directory):
    """Every (tag, step, wall_time, value or text) in the TensorBoard files of a directory."""
    from tensorboardX.proto.event_pb2 import Event

    out = []
    for path in sorted(directory.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            for v in event.summary.value:
                text = v.tensor.string_val[0].decode() if v.tensor.string_val else None
                out.append((v.tag.removesuffix("/text_summary"), event.step, event.wall_time,
                            text if text is not None else v.simple_value))
    return out


# -- TensorboardCallback -------------------------------------------------------------------

def test_tensorboard_callback_writes_what_syne_tune_writes():
    pytest.importorskip("tensorboardX")
    from poptune.syne_tune.callbacks import TensorboardCallback

    cb = TensorboardCallback(ignore_metrics=["st_worker_iter"], target_metric="loss")
    tuner, exp = run(callbacks=[cb])
    events = read_events(exp.path / "tensorboard_output")
    df = exp.results
    tags = {t for t, *_ in events}
    assert {"loss", "cost", "epoch", "lr", "width", "act", "runtime", "number_of_trials",
            "optimal_lr", "optimal_width", "optimal_act"} <= tags
    assert "st_worker_iter" not in tags
    # one step per result; runtime is the tuner time, which is also the event wall time
    runtime = [(s, w, v) for t, s, w, v in events if t == "runtime"]
    assert [s for s, _, _ in runtime] == list(range(len(df)))
    assert all(w == pytest.approx(v) for _, w, v in runtime)
    assert [v for *_, v in runtime] == pytest.approx(list(df.st_tuner_time))
    # the target metric: the raw value and the best so far, at each step
    best = {}
    for t, s, _, v in events:
        if t == "loss":
            best[s] = min(best.get(s, v), v)
    assert [best[s] for s in range(len(df))] == pytest.approx(list(df.loss.cummin()))
    assert [v for t, *_, v in events if t == "number_of_trials"][-1] == df.trial_id.nunique()
    assert {v for t, *_, v in events if t == "act"} <= {"a", "b"}
    assert cb.iter == len(df)
    # it pickles with the tuner (without its writer)
    loaded = Tuner.load(exp.path)
    assert [type(c).__name__ for c in loaded.callbacks] == ["TensorboardCallback"]
    assert loaded.callbacks[0].writer is None


def test_tensorboard_callback_without_tensorboardx_names_the_package(monkeypatch):
    from poptune.syne_tune.callbacks import TensorboardCallback

    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    cb = TensorboardCallback()
    with pytest.raises(ImportError, match=r"`tensorboardX` is required for "
                                          r"TensorboardCallback.*pip install"):
        cb.on_tuning_start(type("T", (), {"tuner_path": "/nonexistent"})())
    with pytest.raises(TuneConfigError, match=r"^`mode` must be"):
        TensorboardCallback(mode="avg")


# -- plot_hypervolume -------------------------------------------------------------------------

def test_hypervolume_exact_values_and_pymoo_agreement():
    assert hypervolume([[1.0, 3.0], [2.0, 1.0]], [4.0, 4.0]) == 7.0
    assert hypervolume([[5.0, 0.0]], [4.0, 4.0]) == 0.0  # outside the reference box
    assert hypervolume([[0.0, 0.0, 0.0]], [1.0, 2.0, 3.0]) == 6.0
    assert hypervolume([[0, 0, 1], [0, 1, 0], [1, 0, 0]], [2, 2, 2]) == 8 - 1 == 7.0
    rng = np.random.default_rng(0)
    for d in (2, 3, 4):
        points = rng.random((40, d))
        ref = np.full(d, 1.1)
        cum = hypervolume_cumulative(points, ref)
        assert np.all(np.diff(cum) >= -1e-12)
        assert cum[-1] == pytest.approx(hypervolume(points, ref))
        pymoo = pytest.importorskip("pymoo.indicators.hv")
        assert cum[-1] == pytest.approx(pymoo.HV(ref_point=ref)(points))
        assert cum[9] == pytest.approx(pymoo.HV(ref_point=ref)(points[:10]))


def test_plot_hypervolume_over_the_results_with_modes_and_reference(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    _, exp = run()
    df = exp.results.sort_values("st_tuner_time", kind="stable")
    times, values = exp.hypervolume_indicator(["loss", "cost"], reference_point=[2.0, 1e5])
    assert list(times) == list(df.st_tuner_time)
    assert values == pytest.approx(hypervolume_cumulative(df[["loss", "cost"]].to_numpy(),
                                                          [2.0, 1e5]))
    assert values[-1] > 0 and np.all(np.diff(values) >= 0)
    # a maximized metric is negated, its reference point given in its own units
    _, flipped = exp.hypervolume_indicator(["loss", "cost"], [2.0, -1.0], ["min", "max"])
    assert flipped[-1] == pytest.approx(hypervolume(
        df[["loss", "cost"]].to_numpy() * [1, -1], [2.0, 1.0]))
    figure = tmp_path / "hv.png"
    exp.plot_hypervolume(["loss", "cost"], figure_path=str(figure))
    assert figure.stat().st_size > 0
    with pytest.raises(TuneConfigError, match=r"^`metrics_to_plot` must be two metrics or "
                                              r"more .*got \['loss'\]$"):
        exp.plot_hypervolume()  # the experiment has one metric
    with pytest.raises(TuneConfigError, match=r"^`reference_point` must be 2 finite numbers"):
        exp.plot_hypervolume(["loss", "cost"], reference_point=[1.0])
    with pytest.raises(TuneConfigError, match=r"^`metric_modes` must be 'min' or 'max'"):
        exp.plot_hypervolume(["loss", "cost"], metric_modes=["min"])
    with pytest.raises(TuneConfigError, match=r"^`metric` must be a reported metric"):
        exp.plot_hypervolume(["loss", "nope"])


# -- legacy_baselines ------------------------------------------------------------------------

def test_legacy_baselines_map_onto_fifo_and_hyperband_and_refuse_the_others():
    from poptune.syne_tune.optimizer.schedulers import FIFOScheduler, HyperbandScheduler

    for cls, searcher in ((lb.RandomSearch, "random"), (lb.GridSearch, "grid"),
                          (lb.BayesianOptimization, "bayesopt"), (lb.KDE, "kde"),
                          (lb.BoTorch, "botorch")):
        s = cls(SPACE, "loss", mode="max")
        assert isinstance(s, FIFOScheduler) and s.searcher == searcher
        assert s.metric_mode() == "max" and s.metadata()["scheduler_name"] == cls.__name__
    for cls, searcher in ((lb.ASHA, "random"), (lb.MOBSTER, "bayesopt"), (lb.BOHB, "kde")):
        s = cls(SPACE, "loss", "epoch", max_resource_attr="epochs")
        assert isinstance(s, HyperbandScheduler) and s.searcher == searcher
        assert (s.time_attr, s.max_t) == ("epoch", 3)
    with pytest.raises(TuneConfigError, match=r"^`max_t` must be given, or `max_resource_attr`"
                                              r" given \(ASHA needs one"):
        lb.ASHA(SPACE, "loss", "epoch")
    with pytest.raises(TuneConfigError, match=r"^`searcher` must be None or 'grid' "
                                              r"\(GridSearch is searcher='grid'\), got 'kde'$"):
        lb.GridSearch(SPACE, "loss", searcher="kde")
    for name in lb.REFUSED:
        with pytest.raises(TuneConfigError, match=rf"^legacy_baselines.{name} .*has no "
                                                  r"equivalent on poptune; use one of ASHA"):
            getattr(lb, name)(SPACE, "loss", "epoch", max_t=3)


def test_legacy_asha_runs_and_stops_trials():
    s = lb.ASHA(SPACE, "loss", "epoch", max_t=3, mode="min", reduction_factor=2,
                random_seed=1)
    _, exp = run(s, StoppingCriterion(max_num_trials_finished=6))
    last = exp.results.groupby("trial_id").tail(1)
    assert (last[last.epoch == 3].st_decision == "STOP").all()
