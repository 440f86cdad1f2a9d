"""``poptune.utils``: Ray's ``ray.tune.utils`` helpers, checked against Ray's own, and
``wait_for_gpu`` with a stand-in GPUtil (these machines have no GPU)."""

from __future__ import annotations

import threading
import time

import pytest

import poptune as tune
from poptune._compat import get_gpu_ids
from poptune.utils import (
    UtilMonitor, date_str, deep_update, diagnose_serialization, flatten_dict, merge_dicts, unflattened_lookup,
    wait_for_gpu, warn_if_slow,
)
from tests._modules import source_module

ray_dict = pytest.importorskip("ray._private.dict")

NESTED = {"a": {"b": 1, "c": {"d": [1, {"e": 2}]}}, "f": [3], "g": {}}


@pytest.mark.parametrize("flatten_list", [False, True])
def test_flatten_dict_as_rays(flatten_list):
    assert flatten_dict(NESTED, flatten_list=flatten_list) == ray_dict.flatten_dict(
        NESTED, flatten_list=flatten_list)
    assert flatten_dict(NESTED, ".", flatten_list=flatten_list) == ray_dict.flatten_dict(
        NESTED, ".", flatten_list=flatten_list)
    with pytest.raises(ValueError):
        flatten_dict({"a/b": 1}, prevent_delimiter=True)


@pytest.mark.parametrize("args", [
    ({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}, True),
    ({"a": {"b": 1}}, {"a": {"x": 2}}, True),
    ({"a": {"b": 1}, "k": 1}, {"a": 5, "k": {"z": 1}}, True),
    ({"a": {"b": 1}}, {"a": {"b": 2}}, False),
])
def test_deep_update_and_merge_dicts_as_rays(args):
    import copy

    original, new, allowed = args
    ours = deep_update(copy.deepcopy(original), new, allowed)
    assert ours == ray_dict.deep_update(copy.deepcopy(original), new, allowed)
    assert merge_dicts(original, new) == ray_dict.merge_dicts(original, new)


def test_deep_update_options_as_rays():
    import copy

    original = {"model": {"type": "a", "x": 1}, "opt": {"lr": 1}, "keep": {"p": 1}}
    new = {"model": {"type": "b", "y": 2}, "opt": {"beta": 2}, "keep": {"q": 2}}
    kwargs = dict(allow_new_subkey_list=["opt"], override_all_if_type_changes=["model"],
                  override_all_key_list=["keep"])
    assert deep_update(copy.deepcopy(original), new, False, **kwargs) == ray_dict.deep_update(
        copy.deepcopy(original), new, False, **kwargs)
    with pytest.raises(KeyError, match="Unknown config parameter `x`"):
        deep_update({"a": 1}, {"x": 2})


def test_unflattened_lookup_as_rays():
    for key in ("a/b", "a/c/d/1/e", "f/0"):
        assert unflattened_lookup(key, NESTED) == ray_dict.unflattened_lookup(key, NESTED)
    assert unflattened_lookup("a/zz", NESTED, default=7) == 7
    with pytest.raises(KeyError, match="no 'zz' at that level"):
        unflattened_lookup("a/zz", NESTED)


def test_date_str_is_rays_format():
    import re

    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d", date_str())


def test_warn_if_slow_warns_after_the_first_minute(monkeypatch, caplog):
    import time

    from poptune.utils import util

    monkeypatch.setattr(util, "_START", time.time())  # as if imported a moment ago
    with warn_if_slow("quick", threshold=0.0001) as quiet:
        sum(range(10000))
    assert not quiet.too_slow  # the first minute after import: quiet, as Ray
    monkeypatch.setattr(util, "_START", 0.0)  # long ago
    with warn_if_slow("slow op", threshold=0.0001) as slow:
        sum(range(10000))
    assert slow.too_slow and "The `slow op` operation took" in caplog.text


def plain(config):
    return config


def test_diagnose_serialization_names_the_culprit(capsys):
    assert diagnose_serialization(plain) is True
    assert "Serialization succeeded!" in capsys.readouterr().out
    # a script's function (in __main__, so pickled by value) using a global lock, and a closure
    script: dict = {"__name__": "__main__", "LOCK": threading.Lock()}
    exec("def train(config):\n    with LOCK:\n        return config\n", script)
    assert diagnose_serialization(script["train"]) == {"LOCK"}
    out = capsys.readouterr().out
    assert "[name='LOCK']... FAILED" in out and "Variable(s) {'LOCK'}" in out
    event = threading.Event()

    def closure(config):
        return event.is_set()

    assert diagnose_serialization(closure) == {"event"}
    assert "Detected 1 nonlocal variables" in capsys.readouterr().out


FAKE_GPUTIL = '''
import os
from types import SimpleNamespace

def getGPUs():
    """Two GPUs; GPU 1's memory use comes from FAKE_GPU_UTIL ("0.9,0.5,0.0": one per call)."""
    steps = os.environ.get("FAKE_GPU_UTIL", "0.0").split(",")
    n = int(os.environ.get("FAKE_GPU_CALLS", "0"))
    os.environ["FAKE_GPU_CALLS"] = str(n + 1)
    util = float(steps[min(n, len(steps) - 1)])
    if os.environ.get("FAKE_GPU_BROKEN"):
        raise ValueError("NVIDIA-SMI has failed")
    return [SimpleNamespace(id=0, uuid="GPU-aaaa", memoryUtil=0.0, load=0.25),
            SimpleNamespace(id=1, uuid="GPU-bbbb", memoryUtil=util, load=0.75)]
'''


@pytest.fixture
def gputil(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_GPU_CALLS", "0")
    with source_module(tmp_path, "GPUtil", FAKE_GPUTIL) as module:
        yield module


def test_wait_for_gpu_waits_until_the_memory_is_freed(gputil, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    monkeypatch.setenv("FAKE_GPU_UTIL", "0.9,0.5,0.0")
    assert wait_for_gpu(delay_s=0) is True
    # GPUtil was asked three times: the id check (0.9), then the loop saw 0.5 and 0.0
    assert gputil.os.environ["FAKE_GPU_CALLS"] == "3"


def test_wait_for_gpu_gives_up_and_names_bad_input(gputil, monkeypatch):
    monkeypatch.setenv("FAKE_GPU_UTIL", "0.9")
    with pytest.raises(RuntimeError, match="GPU memory was not freed: GPU 1 stayed above"):
        wait_for_gpu("1", retry=3, delay_s=0)
    assert wait_for_gpu("GPU-aaaa", delay_s=0) is True  # a UUID
    with pytest.raises(ValueError, match=r"`gpu_id` 7 is not among the GPUs found: \[0, 1\]"):
        wait_for_gpu(7)
    with pytest.raises(ValueError, match="`gpu_id` must be an int index or a str UUID"):
        wait_for_gpu(1.5)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with pytest.raises(RuntimeError, match="No GPU ids found"):
        wait_for_gpu()


def reports_gpu_ids(config):
    tune.report({"ids": get_gpu_ids(), "waited": tune.utils.wait_for_gpu(delay_s=0)})


def test_in_a_trial_the_trials_gpu_is_the_default(gputil, monkeypatch, tmp_path):
    """Two fake GPUs (``POPTUNE_NUM_GPUS``): each trial sees the one it was given."""
    monkeypatch.setenv("POPTUNE_NUM_GPUS", "2")
    grid = tune.Tuner(tune.with_resources(reports_gpu_ids, {"cpu": 1, "gpu": 1}),
                      tune_config=tune.TuneConfig(num_samples=2),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    assert grid.num_errors == 0
    assert sorted(r.metrics["ids"][0] for r in grid) == [0, 1]
    assert all(r.metrics["waited"] is True for r in grid)


def test_get_gpu_ids_reads_the_trials_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 3,GPU-x")
    assert get_gpu_ids() == [2, 3, "GPU-x"] and tune.get_gpu_ids is get_gpu_ids
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert get_gpu_ids() == []


def test_util_monitor_averages_each_device_since_the_last_call(gputil, monkeypatch):
    monkeypatch.setenv("FAKE_GPU_UTIL", "0.5")
    monitor = UtilMonitor(start=False)
    assert monitor.get_data() == {} and not monitor.is_alive()  # never started: nothing
    monitor = UtilMonitor(delay=0.01)
    try:
        deadline = time.time() + 10
        while int(gputil.os.environ["FAKE_GPU_CALLS"]) < 3 and time.time() < deadline:
            time.sleep(0.01)
        perf = monitor.get_data()["perf"]
        assert set(perf) == {"cpu_util_percent", "ram_util_percent", "gpu_util_percent0",
                             "gpu_util_percent1", "vram_util_percent0", "vram_util_percent1"}
        assert (perf["gpu_util_percent0"], perf["gpu_util_percent1"]) == (0.25, 0.75)
        assert (perf["vram_util_percent0"], perf["vram_util_percent1"]) == (0.0, 0.5)
        assert 0 <= perf["cpu_util_percent"] <= 100 and 0 < perf["ram_util_percent"] <= 100
        monkeypatch.setenv("FAKE_GPU_BROKEN", "1")  # GPUtil failing (no nvidia-smi): no GPU keys
        monitor.get_data()
        time.sleep(0.05)
        assert set(monitor.get_data()["perf"]) == {"cpu_util_percent", "ram_util_percent"}
    finally:
        monitor.stop()
        monitor.join(5)
    assert not monitor.is_alive() and monitor.get_data() == {}
    with pytest.raises(ValueError, match="`delay` must be a positive number of seconds, got 0"):
        UtilMonitor(delay=0)


def monitored(config):
    for _ in range(3):
        time.sleep(0.05)
        tune.report({"threads": sorted(t.name for t in threading.enumerate())})


class MonitoredClass(tune.Trainable):
    def step(self):
        time.sleep(0.05)
        return {"done": self.iteration == 2}


@pytest.mark.parametrize("trainable", [monitored, MonitoredClass])
def test_log_sys_usage_puts_perf_in_every_result_of_that_trial(gputil, tmp_path, trainable):
    """As Ray's ``Trainable``: ``"log_sys_usage": True`` in the config samples the machine
    during the trial; the other trial (same reused worker) has no ``perf`` and no monitor."""
    grid = tune.Tuner(trainable, param_space={"log_sys_usage": tune.grid_search([True, False])},
                      tune_config=tune.TuneConfig(max_concurrent_trials=1),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    assert grid.num_errors == 0
    on, off = sorted(grid, key=lambda r: not r.config["log_sys_usage"])
    rows = on.metrics_dataframe
    assert len(rows) == 3 and rows["perf/gpu_util_percent1"].iloc[0] == 0.75
    assert rows["perf/cpu_util_percent"].iloc[0] >= 0 and "perf" in on.metrics
    assert not any(c.startswith("perf") for c in off.metrics_dataframe.columns)
    if trainable is monitored:
        assert on.metrics["pid"] == off.metrics["pid"]  # one worker, reused
        assert "poptune-util-monitor" in on.metrics["threads"]
        assert "poptune-util-monitor" not in off.metrics["threads"]
