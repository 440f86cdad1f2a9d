"""Tests for ``poptune.results.result.Result``, on trial directories written by hand."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cloudpickle
import pandas as pd
import pytest

from poptune.checkpoint import Checkpoint
from poptune.exceptions import StorageError, TrialError, TuneConfigError
from poptune.results import Result
from poptune.results.result import flatten_dict


# -- building trial directories -------------------------------------------------------------
def make_rows(
    metrics: Iterable[dict[str, Any]],
    config: dict[str, Any] | None = None,
    trial_id: str = "abc12_00000",
    checkpoints: dict[int, str] | None = None,
    done: bool = True,
    iterations: Iterable[int] | None = None,
) -> list[dict[str, Any]]:
    """Full result dicts (auto keys included) as the engine writes them to result.json."""
    metrics = list(metrics)
    its = list(iterations) if iterations is not None else list(range(1, len(metrics) + 1))
    rows = []
    for n, (it, m) in enumerate(zip(its, metrics)):
        row = dict(m)
        row.update(
            training_iteration=it, time_this_iter_s=0.1, time_total_s=0.1 * (n + 1),
            timestamp=1_700_000_000 + n, date="2024-01-01_00-00-00", pid=1234,
            hostname="host", trial_id=trial_id, iterations_since_restore=n + 1,
            time_since_restore=0.1 * (n + 1), done=done and n == len(metrics) - 1,
            config=config or {}, checkpoint_dir_name=(checkpoints or {}).get(n),
        )
        rows.append(row)
    return rows


def write_trial(
    root: Path,
    name: str,
    rows: list[dict[str, Any]] | None = None,
    *,
    config: dict[str, Any] | None = None,
    result_json: bool = True,
    progress_csv: bool = True,
    checkpoint_dirs: Iterable[str] = (),
    error_text: str | None = None,
    error_obj: BaseException | None = None,
    tail: str | None = None,
) -> Path:
    """Write a trial directory the way the engine lays it out."""
    d = root / name
    d.mkdir(parents=True)
    rows = rows or []
    if config is None and rows:
        config = rows[-1].get("config")
    if config is not None:
        (d / "params.json").write_text(json.dumps(config))
    if result_json:
        text = "".join(json.dumps(r) + "\n" for r in rows)
        (d / "result.json").write_text(text + (tail or ""))
    if progress_csv:
        flat = [flatten_dict({k: v for k, v in r.items() if k != "config"}) for r in rows]
        pd.DataFrame(flat).to_csv(d / "progress.csv", index=False)
    for ck in checkpoint_dirs:
        (d / ck).mkdir()
        (d / ck / "model.txt").write_text(ck)
    if error_text is not None:
        (d / "error.txt").write_text(error_text)
    if error_obj is not None:
        (d / "error.pkl").write_bytes(cloudpickle.dumps(error_obj))
    return d


# -- from_path: result.json -----------------------------------------------------------------
def test_from_path_reads_last_result_and_full_history(tmp_path: Path) -> None:
    rows = make_rows([{"loss": 3.0, "eval": {"acc": 0.1}}, {"loss": 1.0, "eval": {"acc": 0.5}}],
                     config={"lr": 0.1, "net": {"width": 8}})
    d = write_trial(tmp_path, "t0", rows)

    result = Result.from_path(d)

    assert result.metrics == rows[-1]
    assert result.metrics["eval"]["acc"] == 0.5
    assert result.config == {"lr": 0.1, "net": {"width": 8}}
    assert result.path == str(d)
    assert result.error is None and result.checkpoint is None and result.best_checkpoints == []
    df = result.metrics_dataframe
    assert df["loss"].tolist() == [3.0, 1.0]
    assert df["eval/acc"].tolist() == [0.1, 0.5]
    assert df["config/net/width"].tolist() == [8, 8]
    assert "eval" not in df.columns


def test_from_path_keeps_repeated_iterations_in_file_order(tmp_path: Path) -> None:
    rows = make_rows([{"loss": v} for v in [5, 4, 3, 9, 8]], iterations=[1, 2, 3, 2, 3])
    d = write_trial(tmp_path, "pbt", rows)

    df = Result.from_path(d).metrics_dataframe

    assert df["training_iteration"].tolist() == [1, 2, 3, 2, 3]
    assert df["loss"].tolist() == [5, 4, 3, 9, 8]


def test_truncated_last_line_of_result_json_is_ignored(tmp_path: Path) -> None:
    rows = make_rows([{"loss": 2.0}, {"loss": 1.0}], done=False)
    d = write_trial(tmp_path, "t", rows, tail='{"loss": 0.5, "training_itera')

    result = Result.from_path(d)

    assert result.metrics["loss"] == 1.0
    assert len(result.metrics_dataframe) == 2


def test_corrupt_line_in_the_middle_of_result_json_raises(tmp_path: Path) -> None:
    d = write_trial(tmp_path, "t", make_rows([{"loss": 1.0}]), progress_csv=False)
    good = (d / "result.json").read_text()
    (d / "result.json").write_text(good + "garbage\n" + good)

    with pytest.raises(StorageError, match="line 2"):
        Result.from_path(d)


def test_nan_and_infinity_in_result_json_are_read(tmp_path: Path) -> None:
    d = write_trial(tmp_path, "t", make_rows([{"loss": float("nan"), "g": float("inf")}]))

    result = Result.from_path(d)

    assert math.isnan(result.metrics["loss"]) and result.metrics["g"] == math.inf


# -- from_path: progress.csv fallback -------------------------------------------------------
def test_missing_result_json_falls_back_to_progress_csv_and_params_json(tmp_path: Path) -> None:
    rows = make_rows([{"loss": 2.0, "eval": {"acc": 0.2}}, {"loss": 1.0, "eval": {"acc": 0.4}}],
                     config={"lr": 0.01}, trial_id="00001")
    d = write_trial(tmp_path, "t", rows, result_json=False)

    result = Result.from_path(d)

    assert result.metrics["loss"] == 1.0
    assert result.metrics["eval/acc"] == 0.4  # flattened, as Ray Tune
    assert result.metrics["trial_id"] == "00001"  # never read as a number
    assert isinstance(result.metrics["training_iteration"], int)
    assert result.config == {"lr": 0.01}
    assert result.metrics_dataframe["eval/acc"].tolist() == [0.2, 0.4]


def test_unterminated_short_last_row_of_progress_csv_is_ignored(tmp_path: Path) -> None:
    d = write_trial(tmp_path, "t", make_rows([{"loss": 2.0}, {"loss": 1.0}]), result_json=False)
    with open(d / "progress.csv", "a") as f:
        f.write("0.5,3")

    result = Result.from_path(d)

    assert result.metrics["loss"] == 1.0
    assert len(result.metrics_dataframe) == 2


def test_from_path_without_result_files_raises(tmp_path: Path) -> None:
    d = write_trial(tmp_path, "t", config={"lr": 1}, result_json=False, progress_csv=False)

    with pytest.raises(StorageError, match="neither result.json nor progress.csv"):
        Result.from_path(d)
    with pytest.raises(StorageError, match="does not exist"):
        Result.from_path(tmp_path / "nope")


def test_empty_result_json_gives_empty_metrics(tmp_path: Path) -> None:
    d = write_trial(tmp_path, "t", [], config={"lr": 1}, progress_csv=False)

    result = Result.from_path(d)

    assert result.metrics == {}
    assert result.metrics_dataframe.empty
    assert result.config == {"lr": 1}


def test_params_pkl_is_preferred_over_params_json(tmp_path: Path) -> None:
    d = write_trial(tmp_path, "t", make_rows([{"loss": 1.0}]), result_json=False)
    (d / "params.pkl").write_bytes(cloudpickle.dumps({"shape": (3, 4)}))

    assert Result.from_path(d).config == {"shape": (3, 4)}


# -- checkpoints ----------------------------------------------------------------------------
def test_best_checkpoints_list_only_checkpoint_dirs_that_exist(tmp_path: Path) -> None:
    rows = make_rows([{"acc": a} for a in [0.1, 0.5, 0.3, 0.2]],
                     checkpoints={0: "checkpoint_000000", 1: "checkpoint_000001",
                                  2: "checkpoint_000002"})
    d = write_trial(tmp_path, "t", rows,
                    checkpoint_dirs=["checkpoint_000000", "checkpoint_000002",
                                     "checkpoint_000009", "checkpoint_tmp123"])
    (d / "checkpoint_000005.txt").write_text("a file, not a checkpoint")

    result = Result.from_path(d)

    names = [os.path.basename(c.path) for c, _ in result.best_checkpoints]
    assert names == ["checkpoint_000000", "checkpoint_000002", "checkpoint_000009"]
    assert [m.get("acc") for _, m in result.best_checkpoints] == [0.1, 0.3, None]
    assert result.best_checkpoints[2][1] == {}  # no result names it
    assert result.checkpoint == Checkpoint(str(d / "checkpoint_000009"))
    with result.checkpoint.as_directory() as path:
        assert Path(path, "model.txt").read_text() == "checkpoint_000009"


def test_checkpoints_are_ordered_by_index_not_by_name(tmp_path: Path) -> None:
    d = write_trial(tmp_path, "t", make_rows([{"acc": 1}]),
                    checkpoint_dirs=["checkpoint_1000000", "checkpoint_999999"])

    result = Result.from_path(d)

    assert os.path.basename(result.checkpoint.path) == "checkpoint_1000000"


def test_checkpoint_metrics_come_from_progress_csv_when_result_json_is_missing(
    tmp_path: Path,
) -> None:
    rows = make_rows([{"eval": {"acc": a}} for a in [0.1, 0.7, 0.3]],
                     checkpoints={0: "checkpoint_000000", 1: "checkpoint_000001",
                                  2: "checkpoint_000002"})
    d = write_trial(tmp_path, "t", rows, result_json=False,
                    checkpoint_dirs=["checkpoint_000000", "checkpoint_000001",
                                     "checkpoint_000002"])

    result = Result.from_path(d)

    assert [m["eval/acc"] for _, m in result.best_checkpoints] == [0.1, 0.7, 0.3]
    best = result.get_best_checkpoint("eval/acc", "max")
    assert os.path.basename(best.path) == "checkpoint_000001"


def _ckpt_result(scores: list[Any]) -> Result:
    cks = [(Checkpoint(f"/tmp/ck{i}"), m) for i, m in enumerate(scores)]
    return Result(metrics={}, checkpoint=cks[-1][0] if cks else None, error=None, path="",
                  best_checkpoints=cks)


def test_get_best_checkpoint_min_max_and_nested() -> None:
    r = _ckpt_result([{"loss": 3, "m": {"acc": 0.2}}, {"loss": 1, "m": {"acc": 0.9}},
                      {"loss": 2, "m": {"acc": 0.5}}])

    assert r.get_best_checkpoint("loss", "min").path == "/tmp/ck1"
    assert r.get_best_checkpoint("loss", "max").path == "/tmp/ck0"
    assert r.get_best_checkpoint("m/acc", "max").path == "/tmp/ck1"


def test_get_best_checkpoint_skips_missing_and_nan_and_ties_go_first() -> None:
    r = _ckpt_result([{}, {"loss": float("nan")}, {"loss": 2}, {"loss": 2}])

    assert r.get_best_checkpoint("loss", "min").path == "/tmp/ck2"
    assert _ckpt_result([{"loss": float("nan")}]).get_best_checkpoint("loss", "min") is None


def test_get_best_checkpoint_errors() -> None:
    r = _ckpt_result([{"loss": 1}])

    with pytest.raises(TuneConfigError, match="`mode` must be one of 'min', 'max', got 'low'"):
        r.get_best_checkpoint("loss", "low")
    with pytest.raises(RuntimeError, match="'acc'.*\\['loss'\\]"):
        r.get_best_checkpoint("acc", "max")
    with pytest.raises(RuntimeError, match="No checkpoint exists"):
        _ckpt_result([]).get_best_checkpoint("loss", "min")


# -- errors ---------------------------------------------------------------------------------
def test_error_pkl_gives_the_original_exception(tmp_path: Path) -> None:
    d = write_trial(tmp_path, "t", make_rows([{"loss": 1}]), error_obj=ValueError("boom"),
                    error_text="Traceback ...\nValueError: boom\n")

    error = Result.from_path(d).error

    assert type(error) is ValueError and str(error) == "boom"


def test_error_txt_becomes_trial_error_when_no_usable_pickle(tmp_path: Path) -> None:
    text = "Failure # 1\nTraceback (most recent call last):\nValueError: boom\n"
    d = write_trial(tmp_path, "t", make_rows([{"loss": 1}]), error_text=text)
    (d / "error.pkl").write_bytes(b"not a pickle")

    error = Result.from_path(d).error

    assert isinstance(error, TrialError)
    assert str(error) == text.strip()


# -- construction by the engine -------------------------------------------------------------
def test_metrics_dataframe_is_read_lazily_from_path(tmp_path: Path) -> None:
    d = tmp_path / "t"
    d.mkdir()
    result = Result(metrics={"loss": 1.0}, checkpoint=None, error=None, path=str(d))
    write_trial(tmp_path, "t2", make_rows([{"loss": 2.0}, {"loss": 1.0}]))
    os.rmdir(d)
    os.rename(tmp_path / "t2", d)  # the files appear only after the Result was built

    assert result.metrics_dataframe["loss"].tolist() == [2.0, 1.0]
    assert result.metrics_dataframe is result.metrics_dataframe  # read once


def test_given_metrics_dataframe_is_used_as_is() -> None:
    df = pd.DataFrame({"loss": [1.0]})
    result = Result({"loss": 1.0}, None, None, "/does/not/exist", df)

    assert result.metrics_dataframe is df
    result.metrics_dataframe = None
    assert Result({}, None, None, "").metrics_dataframe is None


def test_lazy_metrics_dataframe_of_a_trial_without_files_is_empty(tmp_path: Path) -> None:
    result = Result(metrics={}, checkpoint=None, error=None, path=str(tmp_path / "none"))

    assert result.metrics_dataframe.empty


def test_config_comes_from_metrics_else_params_json(tmp_path: Path) -> None:
    d = write_trial(tmp_path, "t", config={"lr": 0.5}, result_json=False, progress_csv=False)

    assert Result({"config": {"lr": 1}}, None, None, str(d)).config == {"lr": 1}
    assert Result({"loss": 1}, None, None, str(d)).config == {"lr": 0.5}
    assert Result(None, None, None, "").config is None


def test_filesystem_is_local_for_a_plain_path(tmp_path: Path) -> None:
    result = Result({}, None, None, str(tmp_path))

    assert "file" in result.filesystem.protocol


def test_from_path_works_on_an_fsspec_uri() -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    rows = make_rows([{"loss": 2.0}, {"loss": 1.0}], config={"lr": 3},
                     checkpoints={1: "checkpoint_000001"})
    fs.pipe("/exp/t0/result.json", "".join(json.dumps(r) + "\n" for r in rows).encode())
    fs.pipe("/exp/t0/checkpoint_000001/model.txt", b"w")
    try:
        result = Result.from_path("memory://exp/t0")

        assert result.metrics["loss"] == 1.0
        assert result.best_checkpoints[0][1]["loss"] == 1.0
        with result.checkpoint.as_directory() as path:
            assert Path(path, "model.txt").read_text() == "w"
        assert "memory" in result.filesystem.protocol
        assert "filesystem='memory'" in repr(result)
    finally:
        fs.rm("/exp", recursive=True)


# -- repr -----------------------------------------------------------------------------------
def test_repr_hides_auto_keys_and_names_the_error_type(tmp_path: Path) -> None:
    d = write_trial(tmp_path, "t", make_rows([{"loss": 0.25}], config={"lr": 1}),
                    checkpoint_dirs=["checkpoint_000000"], error_text="ValueError: x")

    text = repr(Result.from_path(d))

    assert text.startswith("Result(\n  error='TrialError',\n  metrics={'loss': 0.25},\n")
    assert f"  path='{d}',\n  filesystem='local',\n  checkpoint=Checkpoint(" in text
    assert text.endswith(")\n)")
    assert "training_iteration" not in text and "config" not in text


def test_repr_without_error_or_metrics() -> None:
    assert repr(Result(None, None, None, "/x")) == (
        "Result(\n  metrics=None,\n  path='/x',\n  filesystem='local',\n  checkpoint=None\n)")


# -- rank_checkpoints: Ray's best_checkpoints -----------------------------------------------
def test_rank_checkpoints_keeps_rays_top_k_worst_to_best() -> None:
    from poptune.config import CheckpointConfig
    from poptune.results.result import rank_checkpoints

    kept = [(Checkpoint(f"/tmp/ck{i}"), {"acc": a}) for i, a in
            enumerate([0.9, math.nan, 0.5, 0.5, 0.3])]
    top = rank_checkpoints(kept, CheckpointConfig(num_to_keep=3, checkpoint_score_attribute="acc"))
    assert [c.path for c, _ in top] == ["/tmp/ck2", "/tmp/ck3", "/tmp/ck0"]  # ties: later wins
    low = rank_checkpoints(kept, CheckpointConfig(num_to_keep=2, checkpoint_score_attribute="acc",
                                                  checkpoint_score_order="min"))
    assert [c.path for c, _ in low] == ["/tmp/ck3", "/tmp/ck4"]  # the NaN one ranks lowest
    everything = rank_checkpoints(kept, CheckpointConfig(checkpoint_score_attribute="acc"))
    assert [c.path for c, _ in everything][0] == "/tmp/ck1"  # kept, below every number
    by_time = rank_checkpoints(kept, CheckpointConfig(num_to_keep=2))
    assert [c.path for c, _ in by_time] == ["/tmp/ck3", "/tmp/ck4"]


# -- Checkpoint with a pyarrow filesystem (Ray's kind) ----------------------------------------
def test_checkpoint_accepts_a_pyarrow_filesystem(tmp_path: Path) -> None:
    pafs = pytest.importorskip("pyarrow.fs")
    src = tmp_path / "ckpt"
    src.mkdir()
    (src / "model.txt").write_text("weights")
    ckpt = Checkpoint(str(src), filesystem=pafs.LocalFileSystem())
    ckpt.update_metadata({"step": 3})

    assert ckpt.get_metadata() == {"step": 3}
    out = ckpt.to_directory(str(tmp_path / "out"))
    assert (Path(out) / "model.txt").read_text() == "weights"
    with ckpt.as_directory() as d:
        assert (Path(d) / "model.txt").read_text() == "weights"
    assert type(ckpt.filesystem).__name__ == "ArrowFSWrapper"  # fsspec, not pyarrow
    with pytest.raises(TypeError, match="`filesystem` must be an fsspec filesystem or a "
                                        "pyarrow.fs.FileSystem.*got 3 of type int"):
        Checkpoint(str(src), filesystem=3)


def test_local_checkpoints_do_not_import_pyarrow(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import sys, poptune; c = poptune.Checkpoint(sys.argv[1]); c.to_directory(); "
            "c.get_metadata(); print('pyarrow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"
