"""poptune.plot: every picture is written, is not blank, and says what it needs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from poptune._imports import MissingDependencyError
from tests.top.test_lineage import make_experiment, run_tiny_pbt

mpl = pytest.importorskip("matplotlib")
from matplotlib.image import imread

from poptune import plot


def assert_drawn(path) -> None:
    """A PNG that exists and whose pixels are not one flat colour."""
    assert os.path.getsize(path) > 2000
    pixels = imread(str(path))[..., :3]
    assert pixels.std() > 0.05
    assert (pixels.mean(axis=2) < 0.9).mean() > 0.01  # more than 1 % is not near-white


@pytest.fixture
def exp_dir(tmp_path):
    return make_experiment(tmp_path)


@pytest.fixture(scope="module")
def real_exp(tmp_path_factory):
    return run_tiny_pbt(tmp_path_factory.mktemp("pbt"))


def test_each_plot_writes_a_png_that_is_not_blank(exp_dir, tmp_path):
    out = tmp_path / "png"
    figures = [
        plot.plot_metric(exp_dir, "score", out=out / "metric.png"),
        plot.plot_schedules(exp_dir, out=out / "schedules.png"),
        plot.plot_family_tree(exp_dir, out=out / "family_tree.png", metric="score", mode="max"),
        plot.plot_scatter(exp_dir, "score", "max", out=out / "scatter.png"),
    ]
    for name in ("metric", "schedules", "family_tree", "scatter"):
        assert_drawn(out / f"{name}.png")
    assert all(fig.axes for fig in figures)


def test_metric_plot_marks_every_exploit(exp_dir):
    fig = plot.plot_metric(exp_dir, "score")
    ax = fig.axes[0]
    crosses = [ln for ln in ax.lines if ln.get_marker() == "x"]
    dashed = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    assert len(crosses) == 4 and len(dashed) == 4
    # exploit #2: donor trial 1 at iteration 5 (score 5 * 0.12) -> trial 2 resumes at 6
    assert any(list(ln.get_xdata()) == [5, 6] and ln.get_ydata()[0] == pytest.approx(0.6)
               for ln in dashed)
    assert ax.get_xlabel() == "training_iteration" and ax.get_ylabel() == "score"
    assert "4 exploits" in ax.get_title()
    labels = ax.get_legend_handles_labels()[1]
    assert {"trial 0", "trial 1", "trial 2"} <= set(labels)


def test_metric_plot_draws_into_given_axes(exp_dir):
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    assert plot.plot_metric(exp_dir, "score", ax=ax) is fig and ax.lines


def test_family_tree_has_an_arrow_per_exploit_and_the_best_lineage(exp_dir):
    fig = plot.plot_family_tree(exp_dir, metric="score", mode="max")
    ax = fig.axes[0]
    arrows = [a for a in ax.texts if getattr(a, "arrow_patch", None) is not None]
    assert len(arrows) == 4
    assert [t.get_text() for t in ax.get_yticklabels()] == ["trial 0", "trial 1", "trial 2"]
    assert "lineage of the best trial (trial 0, 3 exploits)" in ax.get_legend_handles_labels()[1]


def test_schedules_has_one_subplot_per_numeric_mutated_hyperparameter(real_exp):
    fig = plot.plot_schedules(real_exp)
    assert [ax.get_ylabel() for ax in fig.axes] == ["lr", "momentum"]


def test_a_missing_metric_is_named_with_what_was_reported(exp_dir):
    with pytest.raises(ValueError, match=r"`metric`.*'loss'.*\['score'"):
        plot.plot_metric(exp_dir, "loss")
    with pytest.raises(ValueError, match="`mode`"):
        plot.plot_scatter(exp_dir, "score", "best")


def test_plot_all_infers_metric_from_the_tuner_and_writes_every_png(real_exp, tmp_path):
    paths = plot.plot_all(real_exp, tmp_path / "all")
    assert [os.path.basename(p) for p in paths] == [
        "metric.png", "schedules.png", "family_tree.png", "scatter_lr.png",
        "scatter_momentum.png"]
    for path in paths:
        assert_drawn(path)


def test_plot_all_without_a_metric_to_infer_says_so(exp_dir, tmp_path):
    with pytest.raises(ValueError, match="`metric` must be given"):
        plot.plot_all(exp_dir, tmp_path / "out")
    paths = plot.plot_all(exp_dir, tmp_path / "out", metric="score", mode="max")
    assert len(paths) == 4  # metric, schedules, family tree, one hyperparameter


def test_plot_all_into_a_file_or_from_no_path_is_a_clear_error(exp_dir, tmp_path):
    from poptune.exceptions import TuneConfigError

    afile = tmp_path / "afile"
    afile.write_text("x")
    for out, why in ((afile, "it is a file"), (afile / "plots", f"{afile} is a file")):
        with pytest.raises(TuneConfigError, match=(
                rf"^`out_dir` must be a directory, or a path where one can be made \({why}\), "
                rf"got '{out}'$")):
            plot.plot_all(exp_dir, out, metric="score", mode="max")
    assert afile.read_text() == "x"
    with pytest.raises(TypeError, match=r"^`out_dir` must be the path of a directory .* int$"):
        plot.plot_all(exp_dir, 3)
    with pytest.raises(TypeError, match=r"^`experiment_dir` must be the path of an experiment"):
        plot.plot_all(3, tmp_path / "out")
    with pytest.raises(TuneConfigError, match=r"^`out` must be the path of a PNG file to write, "
                                              r"not a directory"):
        plot.plot_metric(exp_dir, "score", out=tmp_path)


def test_a_non_pbt_experiment_gets_curves_and_scatter_only(tmp_path):
    exp = make_experiment(tmp_path, rows={0: [(1, 0.1), (2, 0.1)], 1: [(1, 0.3), (2, 0.3)]},
                          lines=None)
    paths = plot.plot_all(exp, tmp_path / "out", metric="score", mode="min")
    assert [os.path.basename(p) for p in paths] == ["metric.png", "scatter_lr.png"]
    assert_drawn(paths[1])


def test_many_trials_are_drawn_as_one_collection_per_picture_not_an_artist_each(tmp_path):
    """A plot of 1,000 trials took 9 s (11,000: minutes): one line, one scatter and one bar
    patch per trial. Past the legend's limit each picture draws them as one collection, with
    every trial's curve, point and bar in it."""
    from matplotlib.collections import LineCollection, PathCollection, PolyCollection

    n = 40
    exp = make_experiment(tmp_path, rows={i: [(1, 0.01 * (i + 1)), (2, 0.01 * (i + 1)),
                                               (3, 0.01 * (i + 1))] for i in range(n)},
                          lines=None)
    ax = plot.plot_metric(exp, "score").axes[0]
    (lines,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(lines.get_segments()) == n and not ax.lines
    assert len({tuple(c) for c in lines.get_colors()}) > 1  # each trial keeps its colour
    fig = plot.plot_scatter(exp, "score", "max")
    points = [c for c in fig.axes[0].collections if isinstance(c, PathCollection)]
    assert sorted(len(c.get_offsets()) for c in points) == [1, n - 1]  # the best: a star
    import poptune as tune
    from poptune import simulation

    def timed(config):
        for _ in range(2):
            simulation.advance(1.0 + config["i"])
            tune.report(score=config["i"])

    grid = tune.Tuner(timed, param_space={"i": tune.grid_search(list(range(12)))},
                      tune_config=tune.TuneConfig(backend="simulated"),
                      run_config=tune.RunConfig(storage_path=str(tmp_path / "sim"),
                                                verbose=0)).fit()
    fig = plot.plot_trials_over_time(grid.experiment_path, "score", "max")
    (bars,) = [c for c in fig.axes[0].collections if isinstance(c, PolyCollection)]
    assert len(bars.get_paths()) == 12 and not fig.axes[0].patches


def test_missing_matplotlib_gives_the_install_hint(exp_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'poptune\[plot\]'"):
        plot.plot_metric(exp_dir, "score")


def test_importing_plot_needs_no_matplotlib():
    code = ("import sys; sys.modules['matplotlib'] = None; import poptune.plot, poptune.lineage;"
            "print('ok')")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=False)
    assert out.stdout.strip() == "ok", out.stderr
