"""pbt_global.txt / pbt_policy_*.txt in Ray Tune's exact format."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from poptune.storage.pbt_log import (
    GLOBAL_LOG,
    SafeFallbackEncoder,
    policy_file_path,
    read_policy_file,
    write_exploit_logs,
)


def line(target: str, donor: str, t_it: int, d_it: int, lr: float, new_lr: float) -> list:
    return [target, donor, t_it, d_it, {"lr": lr}, {"lr": new_lr}]


def test_each_exploit_appends_one_json_list_to_the_global_log(tmp_path):
    write_exploit_logs(str(tmp_path), "x_00001", "x_00000", line("1_a", "0_b", 5, 5, 0.1, 0.12))
    write_exploit_logs(str(tmp_path), "x_00002", "x_00000", line("2_c", "0_b", 6, 5, 0.1, 0.08))
    text = (tmp_path / GLOBAL_LOG).read_text()
    assert text == (
        '["1_a", "0_b", 5, 5, {"lr": 0.1}, {"lr": 0.12}]\n'
        '["2_c", "0_b", 6, 5, {"lr": 0.1}, {"lr": 0.08}]\n'
    )  # byte-identical to Ray's json.dumps(...) + newline


def test_target_policy_file_inherits_the_donor_lineage_first(tmp_path):
    d = str(tmp_path)
    write_exploit_logs(d, "x_00001", "x_00000", line("1", "0", 5, 5, 0.1, 0.12))
    write_exploit_logs(d, "x_00002", "x_00003", line("2", "3", 5, 5, 0.4, 0.32))  # own history
    write_exploit_logs(d, "x_00002", "x_00001", line("2", "1", 10, 10, 0.12, 0.144))
    rows = read_policy_file(policy_file_path(d, "x_00002"))
    assert [r[:2] for r in rows] == [["1", "0"], ["2", "1"]]  # "2 <- 3" was overwritten
    assert read_policy_file(policy_file_path(d, "x_00001")) == [line("1", "0", 5, 5, 0.1, 0.12)]
    assert len(read_policy_file(os.path.join(d, GLOBAL_LOG))) == 3


def test_self_exploit_does_not_clobber_its_own_file(tmp_path):
    d = str(tmp_path)
    write_exploit_logs(d, "x_00000", "x_00000", line("r", "r", 5, 5, 0.1, 0.2))
    write_exploit_logs(d, "x_00000", "x_00000", line("r", "r", 9, 9, 0.2, 0.3))
    assert len(read_policy_file(policy_file_path(d, "x_00000"))) == 2


def test_values_json_cannot_encode_fall_back_safely(tmp_path):
    class Opaque:
        def __str__(self) -> str:
            return "<opaque>"

    config = {"a": np.float32(0.5), "b": np.int64(3), "c": np.arange(2), "d": Opaque(),
              "e": np.float32("nan")}
    write_exploit_logs(str(tmp_path), "x_1", "x_0", ["t", "d", np.int64(4), 3, config, config])
    (row,) = read_policy_file(str(tmp_path / GLOBAL_LOG))
    assert row[2] == 4
    # like Ray, a numpy NaN becomes the string "null"
    assert row[4] == {"a": 0.5, "b": 3, "c": [0, 1], "d": "<opaque>", "e": "null"}
    assert json.dumps({"x": np.bool_(True)}, cls=SafeFallbackEncoder) == '{"x": true}'


def test_read_policy_file_rejects_malformed_lines(tmp_path):
    bad = tmp_path / "pbt_policy_x.txt"
    bad.write_text("not json\n")
    with pytest.raises(ValueError, match="line 1 is not JSON"):
        read_policy_file(str(bad))
    bad.write_text('["only", "three", 1]\n')
    with pytest.raises(ValueError, match="must be a list"):
        read_policy_file(str(bad))
    bad.write_text('\n["a", "b", 1, 2, {}, {}]\n\n')
    assert read_policy_file(str(bad)) == [["a", "b", 1, 2, {}, {}]]
