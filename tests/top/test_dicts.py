"""poptune._dicts: the one flatten (Ray's semantics), flat_result and the nested lookup, and
that every former copy now is that one implementation."""

from __future__ import annotations

import csv

import pytest

from poptune._dicts import MISSING, flat_result, flatten_dict, nested_get, unflatten_dict
from poptune.exceptions import TuneConfigError


def test_empty_dict_has_no_leaves_as_in_ray():
    # ray._private.dict.flatten_dict removes a dict value and adds its items: {} adds none
    assert flatten_dict({"a": {}, "b": 1}) == {"b": 1}
    assert flatten_dict({"a": {"x": {}, "y": 2}}) == {"a/y": 2}
    assert flatten_dict({}) == {}


def test_flatten_keeps_lists_whole_and_joins_with_the_delimiter():
    nested = {"a": {"b": 1, "c": {"d": [1, 2]}}, "e": (3,)}
    assert flatten_dict(nested) == {"a/b": 1, "a/c/d": [1, 2], "e": (3,)}
    assert flatten_dict(nested, delimiter="-") == {"a-b": 1, "a-c-d": [1, 2], "e": (3,)}
    assert nested == {"a": {"b": 1, "c": {"d": [1, 2]}}, "e": (3,)}  # input untouched


def test_flatten_can_refuse_keys_holding_the_delimiter():
    with pytest.raises(TuneConfigError, match="a/b"):
        flatten_dict({"a/b": 1}, prevent_delimiter=True)
    assert flatten_dict({"a/b": 1}) == {"a/b": 1}


def test_unflatten_inverts_flatten():
    nested = {"a": {"b": 1, "c": {"d": 2}}, "e": 3}
    assert unflatten_dict(flatten_dict(nested)) == nested


def test_flat_result_returns_the_same_object_without_nested_dicts():
    flat = {"loss": 1.0, "tags": [1, 2]}
    assert flat_result(flat) is flat
    nested = {"val": {"loss": 0.5, "empty": {}}, "config": {"lr": 0.1}}
    assert flat_result(nested) == {"val/loss": 0.5, "config/lr": 0.1}


def test_nested_get_reads_flat_keys_first_then_paths():
    result = {"val": {"loss": 0.5, "none": None}, "a/b": 1}
    assert nested_get(result, "val/loss") == 0.5
    assert nested_get(result, "a/b") == 1
    assert nested_get(result, "val") == {"loss": 0.5, "none": None}
    assert nested_get(result, "val/none", MISSING) is None
    assert nested_get(result, "val/acc") is None
    assert nested_get(result, "val/acc", MISSING) is MISSING
    assert nested_get(result, "val/loss/x", MISSING) is MISSING  # a leaf has no children
    assert nested_get(None, "x", 7) == 7 and nested_get({}, "x/y", 7) == 7


def test_every_former_copy_is_the_one_implementation():
    from poptune.callbacks import _progress_format
    from poptune.results import result
    from poptune.search import variant_generator
    from poptune.storage import trial_logs

    assert trial_logs.flatten is flatten_dict
    assert result.flatten_dict is flatten_dict
    assert variant_generator.flatten_dict is flatten_dict
    assert variant_generator.unflatten_dict is unflatten_dict
    assert _progress_format._lookup is nested_get
    assert result.lookup_metric({"v": {"l": 1}}, "v/l") == 1
    assert result.lookup_metric({}, "v/l") is result._MISSING is MISSING


def test_progress_csv_and_result_dataframe_see_the_same_keys(tmp_path):
    from poptune.results.result import Result
    from poptune.storage.trial_logs import TrialLogWriter

    writer = TrialLogWriter(str(tmp_path))
    writer.write({"loss": 0.5, "extra": {}, "val": {"acc": 0.9}, "training_iteration": 1,
                  "config": {"lr": 0.1}})
    writer.close()
    with open(tmp_path / "progress.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header == ["loss", "val/acc", "training_iteration"]
    frame = Result.from_path(str(tmp_path)).metrics_dataframe
    assert "extra" not in frame.columns and "val/acc" in frame.columns
