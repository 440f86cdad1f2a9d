"""Tests for ``poptune.results.result_grid.ResultGrid``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import poptune.results.result as result_module
from poptune.engine.trial import TrialStatus
from poptune.exceptions import StorageError, TrialError, TuneConfigError
from poptune.results import Result, ResultGrid
from tests.results.test_result import make_rows, write_trial

NAN, INF = float("nan"), float("inf")


def grid_of(tmp_path: Path, histories: dict[str, list[Any]], key: str = "loss",
            **grid_kwargs: Any) -> ResultGrid:
    """An experiment dir with one trial per history of ``key`` values; the grid read back."""
    for i, (name, values) in enumerate(histories.items()):
        rows = make_rows([{key: v} if v is not None else {} for v in values],
                         config={"name": name}, trial_id=f"abc_{i:05d}")
        write_trial(tmp_path, f"train_{i:05d}_{name}", rows)
    return ResultGrid.from_path(tmp_path, **grid_kwargs)


def best_name(grid: ResultGrid, **kwargs: Any) -> str:
    return grid.get_best_result(**kwargs).config["name"]


# -- get_best_result: scopes ----------------------------------------------------------------
@pytest.mark.parametrize(("scope", "mode", "expected"), [
    ("last", "min", "b"), ("last", "max", "a"),
    ("avg", "min", "a"), ("avg", "max", "b"),
    ("all", "min", "a"), ("all", "max", "a"),
])
def test_scopes_last_avg_all(tmp_path: Path, scope: str, mode: str, expected: str) -> None:
    # a: last 9, avg 5, min 1, max 9    b: last 7, avg 5.5, min 4, max 7
    grid = grid_of(tmp_path, {"a": [1, 9], "b": [4, 7]})

    assert best_name(grid, metric="loss", mode=mode, scope=scope) == expected


def test_scope_last_5_avg_uses_exactly_the_last_five_results(tmp_path: Path) -> None:
    # a: last 5 average 8 (last 4 would be 10, last 6 would be 15); b: 9 throughout
    grid = grid_of(tmp_path, {"a": [50] * 5 + [0] + [10] * 4, "b": [9] * 10})

    assert best_name(grid, metric="loss", mode="min", scope="last-5-avg") == "a"
    assert best_name(grid, metric="loss", mode="min", scope="avg") == "b"  # 29 vs 9


def test_scope_last_10_avg_uses_exactly_the_last_ten_results(tmp_path: Path) -> None:
    # a: last 10 average 9 (last 9 would be 10, last 11 would be 12.7); b: 9.5 throughout
    grid = grid_of(tmp_path, {"a": [50] * 5 + [0] + [10] * 9, "b": [9.5] * 15})

    assert best_name(grid, metric="loss", mode="min", scope="last-10-avg") == "a"
    assert best_name(grid, metric="loss", mode="min", scope="avg") == "b"  # 22.7 vs 9.5


def test_last_n_avg_of_a_short_history_averages_what_there_is(tmp_path: Path) -> None:
    grid = grid_of(tmp_path, {"a": [1, 3], "b": [2.5]})  # 2 vs 2.5

    assert best_name(grid, metric="loss", mode="min", scope="last-10-avg") == "a"


def test_scope_last_uses_the_last_reported_value_when_the_last_result_lacks_it(
    tmp_path: Path,
) -> None:
    grid = grid_of(tmp_path, {"a": [1, None], "b": [2, 2]})

    assert best_name(grid, metric="loss", mode="min") == "a"


def test_nested_metric_keys(tmp_path: Path) -> None:
    for i, (name, acc) in enumerate([("a", [0.5, 0.6]), ("b", [0.9, 0.7])]):
        rows = make_rows([{"eval": {"acc": v}} for v in acc], config={"name": name})
        write_trial(tmp_path, f"t{i}", rows)
    grid = ResultGrid.from_path(tmp_path)

    assert best_name(grid, metric="eval/acc", mode="max") == "b"
    assert best_name(grid, metric="eval/acc", mode="max", scope="avg") == "b"
    assert best_name(grid, metric="eval/acc", mode="min", scope="all") == "a"


def test_ties_go_to_the_earlier_trial(tmp_path: Path) -> None:
    grid = grid_of(tmp_path, {"a": [1], "b": [1]})

    assert best_name(grid, metric="loss", mode="min") == "a"
    assert best_name(grid, metric="loss", mode="max") == "a"


# -- get_best_result: NaN and inf -----------------------------------------------------------
def test_nan_and_inf_scores_are_filtered_by_default(tmp_path: Path) -> None:
    grid = grid_of(tmp_path, {"diverged": [1, NAN], "neg_inf": [2, -INF], "ok": [3, 3]})

    assert best_name(grid, metric="loss", mode="min") == "ok"
    assert best_name(grid, metric="loss", mode="min", filter_nan_and_inf=False) == "neg_inf"


def test_nan_never_beats_a_number_without_filtering(tmp_path: Path) -> None:
    grid = grid_of(tmp_path, {"diverged": [NAN], "ok": [3]})

    assert best_name(grid, metric="loss", mode="max", filter_nan_and_inf=False) == "ok"
    assert best_name(grid, metric="loss", mode="min", filter_nan_and_inf=False) == "ok"


def test_a_nan_inside_the_history_poisons_avg_but_not_all(tmp_path: Path) -> None:
    grid = grid_of(tmp_path, {"a": [0, NAN, 0], "b": [5, 5, 5]})

    assert best_name(grid, metric="loss", mode="min", scope="avg") == "b"
    assert best_name(grid, metric="loss", mode="min", scope="all") == "a"


def test_all_nan_raises_and_mentions_the_filter(tmp_path: Path) -> None:
    grid = grid_of(tmp_path, {"a": [NAN], "b": [NAN]})

    with pytest.raises(RuntimeError, match="loss.*filter_nan_and_inf=False"):
        grid.get_best_result("loss", "min")
    assert best_name(grid, metric="loss", mode="min", filter_nan_and_inf=False) == "a"


# -- get_best_result: defaults and errors ---------------------------------------------------
def test_defaults_are_used_when_the_call_gives_none(tmp_path: Path) -> None:
    grid = grid_of(tmp_path, {"a": [1], "b": [2]}, default_metric="loss", default_mode="max")

    assert best_name(grid) == "b"
    assert best_name(grid, mode="min") == "a"


def test_missing_metric_or_mode_raise_value_error_naming_them(tmp_path: Path) -> None:
    grid = grid_of(tmp_path, {"a": [1], "b": [2]})

    with pytest.raises(ValueError, match="No metric.*`metric`.*TuneConfig"):
        grid.get_best_result(mode="min")
    with pytest.raises(ValueError, match="No mode.*`mode`.*TuneConfig"):
        grid.get_best_result(metric="loss")


def test_only_a_default_mode_means_the_anonymous_metric(tmp_path: Path) -> None:
    grid = grid_of(tmp_path, {"a": [1], "b": [2]}, default_mode="min")

    assert grid.default_metric == "_metric"
    with pytest.raises(RuntimeError, match="_metric"):
        grid.get_best_result()


def test_bad_mode_and_scope_are_rejected(tmp_path: Path) -> None:
    grid = grid_of(tmp_path, {"a": [1], "b": [2]})

    with pytest.raises(TuneConfigError, match="`mode` must be one of 'min', 'max', got 'best'"):
        grid.get_best_result("loss", "best")
    with pytest.raises(ValueError, match="`scope` must be one of 'all', 'last'.*got 'first'"):
        grid.get_best_result("loss", "min", scope="first")
    with pytest.raises(ValueError, match="`default_mode` must be"):
        ResultGrid([], "/tmp", default_mode="up")


def test_no_trial_reported_the_metric_raises_runtime_error(tmp_path: Path) -> None:
    grid = grid_of(tmp_path, {"a": [1], "b": [2]})

    with pytest.raises(RuntimeError, match="No best trial found for the given metric: acc"):
        grid.get_best_result("acc", "max")
    with pytest.raises(RuntimeError, match="acc. This means that no trial has reported"):
        grid.get_best_result("acc", "max", scope="avg", filter_nan_and_inf=False)


def test_trials_without_the_metric_or_with_non_numbers_are_skipped(tmp_path: Path) -> None:
    grid = grid_of(tmp_path, {"text": ["high"], "missing": [None], "ok": [7]})

    assert best_name(grid, metric="loss", mode="max") == "ok"
    assert best_name(grid, metric="loss", mode="max", scope="avg") == "ok"


def test_a_single_trial_is_returned_without_comparing(tmp_path: Path) -> None:
    grid = grid_of(tmp_path, {"only": [1]})

    assert best_name(grid) == "only"
    assert best_name(grid, metric="never_reported", mode="max") == "only"


def test_errored_trials_without_results_do_not_break_the_search(tmp_path: Path) -> None:
    grid_of(tmp_path, {"a": [4]})
    write_trial(tmp_path, "train_00009_broken", config={"name": "broken"}, result_json=False,
                progress_csv=False, error_text="RuntimeError: oom")
    grid = ResultGrid.from_path(tmp_path)

    assert best_name(grid, metric="loss", mode="min") == "a"


# -- get_dataframe --------------------------------------------------------------------------
def test_get_dataframe_has_one_row_per_trial_with_last_results_and_config(
    tmp_path: Path,
) -> None:
    grid = grid_of(tmp_path, {"a": [3, 1, 2], "b": [5, 6]})

    df = grid.get_dataframe()

    assert len(df) == 2
    assert df["loss"].tolist() == [2, 6]
    assert df["config/name"].tolist() == ["a", "b"]
    assert df["training_iteration"].tolist() == [3, 2]
    assert df["logdir"].tolist() == ["abc_00000", "abc_00001"]  # trial ids, as Ray 2.60
    assert df["trial_id"].tolist() == ["abc_00000", "abc_00001"]


@pytest.mark.parametrize(("mode", "losses", "iterations"), [
    ("min", [1, 5], [2, 1]), ("max", [3, 6], [1, 2]),
])
def test_get_dataframe_filtered_picks_each_trials_best_row(
    tmp_path: Path, mode: str, losses: list[int], iterations: list[int],
) -> None:
    grid = grid_of(tmp_path, {"a": [3, 1, 2], "b": [5, 6]})

    df = grid.get_dataframe(filter_metric="loss", filter_mode=mode)

    assert df["loss"].tolist() == losses
    assert df["training_iteration"].tolist() == iterations
    assert df["config/name"].tolist() == ["a", "b"]


def test_get_dataframe_filtered_ignores_nan_and_falls_back_to_last_row(tmp_path: Path) -> None:
    grid = grid_of(tmp_path, {"a": [NAN, 4, 9], "b": [NAN, NAN]})
    grid_other = grid_of(tmp_path / "other", {"c": [1, 2]}, key="acc")

    df = grid.get_dataframe(filter_metric="loss", filter_mode="max")

    assert df["training_iteration"].tolist() == [3, 2]
    df = grid_other.get_dataframe(filter_metric="loss", filter_mode="min")  # never reported
    assert df["training_iteration"].tolist() == [2]


def test_get_dataframe_filtered_on_a_nested_metric(tmp_path: Path) -> None:
    rows = make_rows([{"eval": {"acc": v}} for v in [0.2, 0.9, 0.4]], config={"lr": 1})
    write_trial(tmp_path, "t0", rows)

    df = ResultGrid.from_path(tmp_path).get_dataframe("eval/acc", "max")

    assert df["eval/acc"].tolist() == [0.9]
    assert df["config/lr"].tolist() == [1]


def test_get_dataframe_argument_errors(tmp_path: Path) -> None:
    grid = grid_of(tmp_path, {"a": [1]})

    with pytest.raises(ValueError, match="`filter_metric` must be given"):
        grid.get_dataframe(filter_mode="min")
    with pytest.raises(ValueError, match="`filter_mode` must be one of"):
        grid.get_dataframe("loss", "lowest")
    assert grid.get_dataframe(filter_metric="loss")["loss"].tolist() == [1]  # no mode: last


def test_get_dataframe_from_progress_csv_takes_config_from_params_json(tmp_path: Path) -> None:
    write_trial(tmp_path, "t0", make_rows([{"loss": 2}, {"loss": 1}], config={"lr": 0.1}),
                result_json=False)
    write_trial(tmp_path, "t1", [], config={"lr": 0.2}, progress_csv=False)  # never reported

    grid = ResultGrid.from_path(tmp_path)

    for df in (grid.get_dataframe(), grid.get_dataframe("loss", "max")):
        assert len(df) == 1
        assert df["config/lr"].tolist() == [0.1]
    assert grid.get_dataframe("loss", "max")["loss"].tolist() == [2]


def test_get_dataframe_of_an_empty_grid_is_empty() -> None:
    assert ResultGrid([], "/tmp/none").get_dataframe().empty


# -- container protocol, counts, repr -------------------------------------------------------
def test_indexing_iteration_and_len(tmp_path: Path) -> None:
    grid = grid_of(tmp_path, {"a": [1], "b": [2], "c": [3]})

    assert len(grid) == 3
    assert grid[0].config["name"] == "a" and grid[-1].config["name"] == "c"
    assert [r.config["name"] for r in grid[1:]] == ["b", "c"]
    assert [r.config["name"] for r in grid] == ["a", "b", "c"]
    with pytest.raises(IndexError):
        grid[3]


def test_errors_and_counts_inferred_from_disk(tmp_path: Path) -> None:
    write_trial(tmp_path, "t0", make_rows([{"loss": 1}]))  # done=True
    write_trial(tmp_path, "t1", make_rows([{"loss": 1}], done=False))  # unfinished
    write_trial(tmp_path, "t2", make_rows([{"loss": 1}], done=False), error_text="Boom")

    grid = ResultGrid.from_path(tmp_path)

    assert grid.num_terminated == 1
    assert grid.num_errors == 1
    assert len(grid.errors) == 1 and isinstance(grid.errors[0], TrialError)


def test_counts_use_the_status_the_engine_gives() -> None:
    results = [
        Result({"done": False}, None, None, "/e/a", _status=TrialStatus.TERMINATED),
        Result({}, None, ValueError("x"), "/e/b", _status=TrialStatus.ERROR),
        Result({}, None, None, "/e/c", _status="PAUSED"),
        Result({"done": True}, None, ValueError("retried"), "/e/d", _status="TERMINATED"),
    ]
    grid = ResultGrid(results, "/e")

    assert grid.num_terminated == 2
    assert grid.num_errors == 1
    assert [str(e) for e in grid.errors] == ["x", "retried"]


def test_repr_lists_every_result_indented(tmp_path: Path) -> None:
    results = [Result({"loss": 1}, None, None, "/e/a"), Result({"loss": 2}, None, None, "/e/b")]

    text = repr(ResultGrid(results, "/e"))

    assert text.startswith("ResultGrid<[\n  Result(\n    metrics={'loss': 1},\n")
    assert "  ),\n  Result(\n    metrics={'loss': 2}," in text
    assert text.endswith("\n  )\n]>")


# -- from_path and construction -------------------------------------------------------------
def test_from_path_finds_trial_dirs_in_name_order_and_skips_others(tmp_path: Path) -> None:
    write_trial(tmp_path, "train_00001", make_rows([{"loss": 2}]))
    write_trial(tmp_path, "train_00000", make_rows([{"loss": 1}]), result_json=False)
    write_trial(tmp_path, "train_00002", [], config={"lr": 1}, result_json=False,
                progress_csv=False)  # pending: only params.json
    (tmp_path / "some_artifacts").mkdir()
    (tmp_path / "some_artifacts" / "notes.txt").write_text("x")
    (tmp_path / "experiment_state-2024.json").write_text("{}")

    grid = ResultGrid.from_path(tmp_path)

    assert [Path(r.path).name for r in grid] == ["train_00000", "train_00001", "train_00002"]
    assert grid[2].metrics == {} and grid[2].config == {"lr": 1}
    assert grid.experiment_path == str(tmp_path)
    assert "file" in grid.filesystem.protocol


def test_from_path_of_a_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        ResultGrid.from_path(tmp_path / "nope")


def test_engine_built_grid_answers_last_scope_without_reading_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    results = [Result({"loss": float(i % 7), "config": {"i": i}}, None, None,
                      str(tmp_path / f"t{i}")) for i in range(2000)]
    grid = ResultGrid(results, str(tmp_path), default_metric="loss", default_mode="max")

    def no_io(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("files were read")

    monkeypatch.setattr(result_module, "_TrialDir", no_io)

    assert grid.get_best_result().config == {"i": 6}
    monkeypatch.undo()  # get_dataframe reads each trial's logged rows, as Ray's does
    assert len(grid.get_dataframe()) == 2000  # no result files: the last metrics


def test_engine_built_grid_reads_histories_lazily_for_other_scopes(tmp_path: Path) -> None:
    paths = []
    for i, losses in enumerate([[1, 9], [4, 7]]):
        paths.append(write_trial(tmp_path, f"t{i}", make_rows([{"loss": v} for v in losses])))
    results = [Result({"loss": [9, 7][i]}, None, None, str(p)) for i, p in enumerate(paths)]

    grid = ResultGrid(results, str(tmp_path))

    assert grid.get_best_result("loss", "min", scope="avg") is results[0]
    assert grid.get_best_result("loss", "min") is results[1]
    df = grid.get_dataframe("loss", "min")
    assert df["loss"].tolist() == [1, 4]
    assert isinstance(results[0].metrics_dataframe, pd.DataFrame)


def test_infinite_values_in_all_scope(tmp_path: Path) -> None:
    grid = grid_of(tmp_path, {"a": [1, INF], "b": [2, 3]})

    assert best_name(grid, metric="loss", mode="max", scope="all") == "b"
    assert best_name(grid, metric="loss", mode="max", scope="all",
                     filter_nan_and_inf=False) == "a"
    assert math.isinf(grid.get_dataframe("loss", "max")["loss"].tolist()[0])


# -- scopes and statistics as Ray's metric_analysis (reported values only) -------------------
def test_avg_scopes_count_only_the_results_that_reported_the_metric(tmp_path: Path) -> None:
    # val_acc at iterations 2 and 4 only; Ray: avg = (v + (step - 1) * avg) / step
    grid = grid_of(tmp_path, {"a": [None, 1.6, None, 0.6], "b": [None, 1.0, None, 1.3]},
                   key="val_acc")

    assert best_name(grid, metric="val_acc", mode="max", scope="avg") == "a"  # 1.35 vs 1.075
    assert best_name(grid, metric="val_acc", mode="max", scope="last-5-avg") == "b"  # 1.1/1.15
    assert best_name(grid, metric="val_acc", mode="min", scope="last-10-avg") == "a"
    stats = result_module.metric_analysis(grid[0]._reported())["val_acc"]
    assert stats["avg"] == pytest.approx(1.35) and stats["last-5-avg"] == pytest.approx(1.1)


def test_metric_analysis_follows_rays_running_statistics() -> None:
    rows = [{"acc": 0.5, "n": 1, "flag": False, "s": "x", "training_iteration": 1,
             "timestamp": 5, "config": {"lr": 1}},
            {"acc": NAN, "n": 2, "flag": True, "once": 7, "training_iteration": 2},
            {"acc": 0.6, "n": 3, "flag": True, "training_iteration": 3},
            {"acc": 0.7, "n": 4, "flag": True, "training_iteration": 4, "nested": {"v": 2}}]

    stats = result_module.metric_analysis(rows)

    assert "s" not in stats and "timestamp" not in stats and "config/lr" not in stats
    # Python's max(value, previous): a NaN is kept until a later value replaces it
    assert stats["acc"]["max"] == 0.7 and stats["acc"]["min"] == 0.6
    assert math.isnan(stats["acc"]["avg"]) and math.isnan(stats["acc"]["last-5-avg"])
    assert stats["acc"]["last"] == 0.7
    n = stats["n"]
    assert (n["max"], n["min"], n["last"]) == (4, 1, 4) and type(n["max"]) is int
    assert n["avg"] == 2.5 and type(n["avg"]) is float
    assert stats["flag"]["max"] is True and stats["flag"]["min"] is False
    assert stats["once"] == {"max": 7, "min": 7, "avg": 7, "last": 7, "last-5-avg": 7,
                             "last-10-avg": 7}
    assert type(stats["once"]["avg"]) is int
    assert stats["nested/v"]["last"] == 2


def test_all_scope_takes_rays_min_even_after_a_nan(tmp_path: Path) -> None:
    # a: min(0.6, nan) is 0.6 in Ray's running statistics, so b (0.55) is lower
    grid = grid_of(tmp_path, {"a": [0.5, NAN, 0.6], "b": [0.55, 0.7]})

    assert best_name(grid, metric="loss", mode="min", scope="all") == "b"


def test_a_non_numeric_metric_is_both_a_type_and_a_runtime_error(tmp_path: Path) -> None:
    from poptune.exceptions import MetricTypeError

    grid = grid_of(tmp_path, {"a": ["high"], "b": ["low"]})

    with pytest.raises(RuntimeError, match="`loss` must be reported as a number.*'high'"):
        grid.get_best_result("loss", "max")
    with pytest.raises(TypeError, match="str"):
        grid.get_best_result("loss", "max", scope="avg")
    with pytest.raises(MetricTypeError):
        grid.get_best_result("loss", "min")


# -- get_dataframe: each trial's last logged row ---------------------------------------------
def test_get_dataframe_uses_the_last_logged_row_and_skips_unreported_trials(
    tmp_path: Path,
) -> None:
    rows = make_rows([{"n": 1, "extra": 5}, {"n": 2}], config={"k": 0}, trial_id="t_00000",
                     done=False)
    write_trial(tmp_path, "t0", rows)
    write_trial(tmp_path, "t1", [], config={"k": 1})  # never reported
    grid = ResultGrid.from_path(tmp_path)
    grid[0].metrics["n"] = 99  # not what was logged: the row comes from the history

    df = grid.get_dataframe()

    assert len(df) == 1 and df["n"].tolist() == [2] and df["n"].dtype == "int64"
    assert math.isnan(df["extra"][0])  # logged earlier, not in the last result
    assert df["done"].tolist() == [False] and df["done"].dtype == bool
    assert df["logdir"].tolist() == ["t_00000"] and df["config/k"].tolist() == [0]


# -- a real experiment: fit(), restore, ExperimentAnalysis -----------------------------------
ACCS = [0.9, 0.8, 0.5, 0.3]


def _train(config: dict[str, Any]) -> None:
    import os
    import tempfile

    import poptune as tune

    for i, acc in enumerate(config["accs"]):
        d = tempfile.mkdtemp()
        with open(os.path.join(d, "i.txt"), "w") as f:
            f.write(str(i))
        metrics = {"acc": acc}
        if i % 2:
            metrics["val_acc"] = acc + config["k"]
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[ResultGrid, str]:
    import poptune as tune

    storage = tmp_path_factory.mktemp("finished")
    space = {"k": tune.grid_search([0, 1, 2]),
             "accs": tune.sample_from(lambda spec: ACCS if spec.config.k < 2
                                      else [0.5, NAN, 0.6, 0.7])}
    grid = tune.Tuner(_train, param_space=space, run_config=tune.RunConfig(
        name="exp", storage_path=str(storage), verbose=0,
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2, checkpoint_score_attribute="acc",
                                                checkpoint_score_order="max"))).fit()
    return grid, str(storage / "exp")


def _names(result: Result) -> list[tuple[str, float]]:
    return [(Path(c.path).name, m["acc"]) for c, m in result.best_checkpoints]


def test_best_checkpoints_are_rays_top_k_worst_to_best(finished: Any) -> None:
    import poptune as tune

    grid, path = finished
    restored = tune.Tuner.restore(path, _train).get_results()
    analysis = tune.ExperimentAnalysis(path)
    for results in (grid, restored, tune.ResultGrid(analysis)):
        r = results[0]
        assert _names(r) == [("checkpoint_000001", 0.8), ("checkpoint_000000", 0.9)]
        assert Path(r.checkpoint.path).name == "checkpoint_000003"  # the latest, kept on disk
        assert Path(r.get_best_checkpoint("acc", "min").path).name == "checkpoint_000001"
        # a NaN score ranks below every number: not in the top 2
        assert _names(results[2]) == [("checkpoint_000002", 0.6), ("checkpoint_000003", 0.7)]
    last = analysis.get_last_checkpoint(analysis.trials[0])
    assert Path(last.path).name == "checkpoint_000001"  # highest iteration of the top 2
    assert sorted(Path(p).name for p, _ in analysis.get_trial_checkpoints_paths(
        analysis.trials[0])) == ["checkpoint_000000", "checkpoint_000001", "checkpoint_000003"]
    assert sorted(p.name for p in Path(grid[0].path).glob("checkpoint_*")) == [
        "checkpoint_000000", "checkpoint_000001", "checkpoint_000003"]


def test_restored_results_take_statuses_from_the_journal(finished: Any) -> None:
    import poptune as tune

    grid, path = finished
    restored = tune.Tuner.restore(path, _train).get_results()
    from_analysis = tune.ResultGrid(tune.ExperimentAnalysis(path))
    for results in (grid, restored, ResultGrid.from_path(path), from_analysis):
        assert (results.num_terminated, results.num_errors) == (3, 0)
        assert [r.metrics["done"] for r in results] == [True, True, True]


def test_fit_and_restored_grids_give_the_same_dataframe(finished: Any) -> None:
    import poptune as tune

    grid, path = finished
    df = grid.get_dataframe()
    again = tune.Tuner.restore(path, _train).get_results().get_dataframe()
    analysis = tune.ExperimentAnalysis(path)
    pd.testing.assert_frame_equal(df, again)
    pd.testing.assert_frame_equal(df, analysis.dataframe())
    assert df["done"].tolist() == [r.metrics_dataframe["done"].iloc[-1] for r in grid]
    assert df["logdir"].tolist() == [t.trial_id for t in analysis.trials]
    assert df["val_acc"].tolist() == pytest.approx([0.3, 1.3, 2.7], nan_ok=True)


def test_avg_scope_of_a_metric_reported_every_other_step_on_a_real_run(finished: Any) -> None:
    import poptune as tune

    grid, path = finished
    assert grid.get_best_result("val_acc", "max", scope="avg").config["k"] == 1
    analysis = tune.ExperimentAnalysis(path)
    assert analysis.get_best_config("val_acc", "max", scope="avg")["k"] == 1
    stats = analysis.trials[0].metric_analysis["val_acc"]
    assert stats["avg"] == pytest.approx((0.3 + 3 * 0.8) / 4)  # Ray's running mean
    assert stats["last-5-avg"] == pytest.approx(0.55)
