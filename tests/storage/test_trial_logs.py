"""The per-trial files: their fast paths write exactly what the general ones do."""

from __future__ import annotations

import json
import math
import pickle
from collections import OrderedDict

import cloudpickle
import numpy as np
import pytest

from poptune.storage.journal import json_default
from poptune.storage.trial_logs import TrialLogWriter, params_json, write_params

CONFIGS = [
    {"x": 0.123456789},
    {"lr": 1e-3, "act": "relu", "layers": 3, "bn": True, "drop": None, "ünï": "cödé"},
    {"b": 1, "a": 2, "c": float("inf"), "d": -float("inf"), "e": 1e300},
    {"nested": {"lr": 0.1, "m": [1, 2]}, "t": (1, 2)},
    {"np": np.float32(0.5), "arr": np.arange(3)},
    {},
    {"weird": object},
]


@pytest.mark.parametrize("config", CONFIGS)
def test_params_json_is_json_dumps_with_indent_and_sorted_keys(config):
    assert params_json(config) == json.dumps(config, indent=2, sort_keys=True,
                                             default=json_default)


def test_params_json_of_nan_is_what_json_writes():
    assert params_json({"n": math.nan}) == json.dumps({"n": math.nan}, indent=2)


@pytest.mark.parametrize("config", [c for c in CONFIGS if "weird" not in c])
def test_params_pkl_has_the_bytes_cloudpickle_writes(tmp_path, config):
    write_params(str(tmp_path), config)
    blob = (tmp_path / "params.pkl").read_bytes()
    assert blob == cloudpickle.dumps(config)
    loaded = pickle.loads(blob)
    assert list(loaded) == list(config)


def test_params_pkl_of_a_config_with_a_function_is_cloudpickled(tmp_path):
    config = {"fn": lambda v: v + 1}  # pickle cannot: cloudpickle by value
    write_params(str(tmp_path), config)
    assert cloudpickle.loads((tmp_path / "params.pkl").read_bytes())["fn"](1) == 2


def _rows(write_csv_rows, tmp_path, fresh=False):
    w = TrialLogWriter(str(tmp_path), fresh=fresh)
    for row in write_csv_rows:
        w.write(row)
    w.close()
    return (tmp_path / "progress.csv").read_text(), (tmp_path / "result.json").read_text()


def test_flat_and_nested_rows_give_ray_shaped_csv(tmp_path):
    rows = [{"a": 1, "m": {"x": 0.5, "y": [1, 2]}, "l": [3, 4], "config": {"lr": 0.1}},
            {"a": 2, "m": {"x": 0.25}, "l": (5,), "new": 9, "config": {"lr": 0.1}}]
    csv_text, json_text = _rows(rows, tmp_path)
    # list and tuple cells as the csv module (and so Ray) writes them: str(value)
    assert csv_text.splitlines() == ["a,m/x,m/y,l", "1,0.5,\"[1, 2]\",\"[3, 4]\"",
                                     "2,0.25,,\"(5,)\""]
    assert [json.loads(ln) for ln in json_text.splitlines()] == [
        {**r, "l": list(r["l"])} for r in rows]


def test_mapping_values_that_are_not_dicts_are_flattened_too(tmp_path):
    csv_text, _ = _rows([{"a": OrderedDict(b=1)}], tmp_path)
    assert csv_text.splitlines() == ["a/b", "1"]


def test_a_writer_of_a_trial_with_results_keeps_the_columns_its_file_has(tmp_path):
    (tmp_path / "progress.csv").write_text("b,a\n1,2\n")
    csv_text, _ = _rows([{"a": 3, "b": 4, "c": 5}], tmp_path)
    assert csv_text.splitlines() == ["b,a", "1,2", "4,3"]
    # a fresh trial's writer does not look: it has no earlier file by definition
    (tmp_path / "progress.csv").unlink()
    (tmp_path / "result.json").unlink()
    csv_text, _ = _rows([{"a": 3, "b": 4}], tmp_path, fresh=True)
    assert csv_text.splitlines() == ["a,b", "3,4"]


def test_a_fresh_writer_replaces_files_a_lost_run_left_in_its_directory(tmp_path):
    # a trial recreated after `poptune repair` cut its creation from the journal: the lost
    # run's files are in a directory of the same name, and none of their rows is journaled
    (tmp_path / "progress.csv").write_text("x,y\n1,2\n")
    (tmp_path / "result.json").write_text('{"x": 1, "y": 2}\n')
    csv_text, json_text = _rows([{"a": 3, "b": 4}, {"a": 5, "b": 6}], tmp_path, fresh=True)
    assert csv_text.splitlines() == ["a,b", "3,4", "5,6"]
    assert [json.loads(line) for line in json_text.splitlines()] == [
        {"a": 3, "b": 4}, {"a": 5, "b": 6}]


@pytest.mark.parametrize("fresh", [True, False])
def test_progress_csv_is_created_with_the_first_row_as_ray_does(tmp_path, fresh):
    # Ray's CSV logger opens progress.csv at a trial's first result, its JSON logger opens
    # result.json when the trial starts: a trial that fails before reporting has an empty
    # result.json and no progress.csv (not an empty one pandas cannot read)
    if fresh:  # and a lost earlier run's progress.csv is not left behind for it
        (tmp_path / "progress.csv").write_text("x\n1\n")
    w = TrialLogWriter(str(tmp_path), fresh=fresh)
    w.flush()
    w.close()
    assert not (tmp_path / "progress.csv").exists()
    assert (tmp_path / "result.json").read_text() == ""
    w = TrialLogWriter(str(tmp_path), fresh=fresh)
    w.flush()
    w.write({"a": 1})
    w.flush()
    w.write({"a": 2})
    w.close()
    assert (tmp_path / "progress.csv").read_text().splitlines() == ["a", "1", "2"]
