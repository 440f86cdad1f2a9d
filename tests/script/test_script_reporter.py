"""The metric-line protocol of script trials (no processes)."""

from __future__ import annotations

import json
import os

import pytest

from poptune import script_reporter as rep


def test_a_poptune_line_round_trips_with_its_checkpoint_flag():
    line = rep.format_line({"loss": 0.25, "epoch": 3}, checkpoint=True)
    assert line.startswith("[poptune-metric]: ")
    assert rep.parse_line(line + "\n") == (
        "poptune-metric", {"loss": 0.25, "epoch": 3, "checkpoint": True})


def test_syne_tune_lines_are_accepted_after_a_log_prefix():
    line = 'INFO:root:[tune-metric]: {"acc": 0.5, "st_worker_iter": 0}'
    assert rep.parse_line(line) == ("tune-metric", {"acc": 0.5, "st_worker_iter": 0})


def test_an_ordinary_line_is_not_a_metric_line():
    assert rep.parse_line("epoch 3: loss 0.1\n") is None


@pytest.mark.parametrize("payload", ["{oops", "[1, 2]", "", "0.5"])
def test_a_marker_without_a_json_object_is_an_error(payload):
    with pytest.raises(rep.MetricLineError, match="not a JSON object"):
        rep.parse_line(f"[poptune-metric]: {payload}")


def test_numpy_values_are_written_as_plain_numbers():
    np = pytest.importorskip("numpy")
    line = rep.format_line({"loss": np.float32(0.5), "n": np.int64(3), "v": np.arange(2)})
    assert json.loads(line.split(": ", 1)[1]) == {"loss": 0.5, "n": 3, "v": [0, 1]}


def test_script_report_outside_poptune_only_prints(capsys, monkeypatch):
    monkeypatch.delenv(rep.ENV_ACK_FD, raising=False)
    rep.script_report({"loss": 1.0}, epoch=2)
    out = capsys.readouterr().out
    assert rep.parse_line(out) == ("poptune-metric", {"loss": 1.0, "epoch": 2})


def test_script_report_waits_for_the_driver_and_exits_when_the_channel_closes(capsys,
                                                                            monkeypatch):
    r, w = os.pipe()
    monkeypatch.setenv(rep.ENV_ACK_FD, str(r))
    try:
        os.write(w, b"c")
        rep.script_report(loss=1.0)  # returns: the driver said go on
        assert rep.parse_line(capsys.readouterr().out)[1]["poptune_wait"] is True
        os.close(w)
        w = -1
        with pytest.raises(SystemExit) as stop:  # the trial is over
            rep.script_report(loss=2.0)
        assert stop.value.code == 0
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_checkpoint_is_reserved_as_a_metric_name():
    with pytest.raises(TypeError, match="checkpoint=True"):
        rep.script_report({"checkpoint": 1})


def test_config_and_checkpoint_dir_read_the_environment(monkeypatch):
    monkeypatch.setenv(rep.ENV_CONFIG, json.dumps({"opt": {"lr": 0.1}}))
    monkeypatch.setenv(rep.ENV_CHECKPOINT_DIR, "/some/dir")
    assert rep.config() == {"opt": {"lr": 0.1}}
    assert rep.checkpoint_dir() == "/some/dir"
    monkeypatch.delenv(rep.ENV_CONFIG)
    monkeypatch.delenv(rep.ENV_CHECKPOINT_DIR)
    assert rep.config() == {} and rep.checkpoint_dir() is None
