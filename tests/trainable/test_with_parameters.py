"""``tune.with_parameters``: as in Ray, each trial gets its own copy of the bound objects (Ray
reads them from its object store for every trial), even in a worker process reused across
trials; NumPy arrays come back read-only, over the data shipped to the worker once (Ray's
zero-copy reads), not copied per trial."""

from __future__ import annotations

import os
from typing import Any

import cloudpickle
import numpy as np
import pytest

import poptune as tune


def mutating(config: dict[str, Any], data: Any = None) -> None:
    """Reports what it found in ``data``, then changes it (the list; the array if it can)."""
    before = [len(data["lst"]), float(data["arr"].sum())]
    data["lst"].append(config["i"])
    try:
        data["arr"] += 1
        error = None
    except ValueError as exc:
        error = str(exc)
    tune.report({"before": before, "error": error, "pid": os.getpid(),
                 "writeable": bool(data["arr"].flags.writeable),
                 "address": data["arr"].__array_interface__["data"][0]})


class MutatingTrainable(tune.Trainable):
    def setup(self, config: dict[str, Any], data: Any = None) -> None:
        self.before = [len(data["lst"]), float(data["arr"].sum())]
        data["lst"].append(config["i"])
        self.writeable = bool(data["arr"].flags.writeable)

    def step(self) -> dict[str, Any]:
        return {"before": self.before, "writeable": self.writeable, "pid": os.getpid(),
                "done": True}


def _fit(trainable: Any, tmp_path: Any, backend: str, n: int = 4) -> list[Any]:
    grid = tune.Tuner(
        trainable, param_space={"i": tune.grid_search(list(range(1, n + 1)))},
        tune_config=tune.TuneConfig(max_concurrent_trials=1, backend=backend),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
    ).fit()
    results = sorted(grid, key=lambda r: r.config["i"])
    assert all(r.error is None for r in results), [r.error for r in results]
    return [r.metrics for r in results]


@pytest.mark.parametrize("backend", ["local", "simulated"])
def test_each_trial_gets_its_own_copy_of_the_objects(tmp_path, backend):
    data = {"lst": [], "arr": np.zeros(3)}
    rows = _fit(tune.with_parameters(mutating, data=data), tmp_path, backend)
    if backend == "local":  # one worker process ran them all: the copies are not its doing
        assert len({r["pid"] for r in rows}) == 1
    assert [r["before"] for r in rows] == [[0, 0.0]] * 4
    # read-only, as Ray's zero-copy arrays: the in-place change fails
    assert [r["error"] for r in rows] == ["output array is read-only"] * 4
    assert not any(r["writeable"] for r in rows)
    assert data == {"lst": [], "arr": data["arr"]} and not data["arr"].any()  # the driver's
    if backend == "local":  # the array's data is the one shipped to the worker, not a copy
        assert len({r["address"] for r in rows}) == 1


@pytest.mark.parametrize("backend", ["local", "simulated"])
def test_a_class_trainable_gets_its_own_copy_in_setup(tmp_path, backend):
    data = {"lst": [], "arr": np.zeros(3)}
    rows = _fit(tune.with_parameters(MutatingTrainable, data=data), tmp_path, backend, n=3)
    if backend == "local":
        assert len({r["pid"] for r in rows}) == 1
    assert [r["before"] for r in rows] == [[0, 0.0]] * 3
    assert not any(r["writeable"] for r in rows)


def test_the_trial_that_writes_into_an_array_fails_as_in_ray(tmp_path):
    def train(config, arr=None):
        arr += 1
        tune.report({"x": 1})

    grid = tune.Tuner(tune.with_parameters(train, arr=np.zeros(3)),
                      tune_config=tune.TuneConfig(backend="simulated"),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    assert "output array is read-only" in str(grid[0].error)


def test_changes_made_before_fit_are_shipped(tmp_path):
    """The objects are pickled when the experiment starts (Ray, without ``ray.init`` before
    ``with_parameters``, puts them in its object store then too)."""
    data = {"lst": [], "arr": np.zeros(3)}
    wrapped = tune.with_parameters(mutating, data=data)
    data["lst"].append("late")
    rows = _fit(wrapped, tmp_path, "simulated", n=2)
    assert [r["before"] for r in rows] == [[1, 0.0]] * 2


# -- the shipped form ---------------------------------------------------------------------------


def test_called_in_the_driver_the_trainable_gets_the_objects_themselves():
    data = {"lst": []}

    def train(config, data=None):
        data["lst"].append(1)

    wrapped = tune.with_parameters(train, data=data)
    wrapped({})
    wrapped({})
    assert data["lst"] == [1, 1]


def grab(config: dict[str, Any], **objects: Any) -> dict[str, Any]:
    return objects


def test_once_shipped_each_call_unpickles_a_copy_over_the_same_read_only_buffers():
    arr = np.arange(6.0)
    wrapped = tune.with_parameters(grab, arr=arr, lst=[1], nc=np.zeros((4, 4))[::2, ::2],
                                   f=np.zeros((3, 2), order="F"))
    blob = cloudpickle.dumps(wrapped)  # as the runner ships the trainable to the workers
    assert blob.count(arr.tobytes()) == 1  # the array's data once, as a buffer
    shipped = cloudpickle.loads(blob)
    a, b = shipped({}), shipped({})
    assert a["lst"] == [1] and a["lst"] is not b["lst"]
    assert a["arr"] is not b["arr"] and (a["arr"] == arr).all()
    assert not a["arr"].flags.writeable and not a["f"].flags.writeable
    assert np.shares_memory(a["arr"], b["arr"])  # not copied per call
    with pytest.raises(ValueError, match="cannot set WRITEABLE flag"):
        a["arr"].flags.writeable = True
    assert a["nc"].flags.writeable  # not contiguous: pickled in band, a copy (as in Ray)


@pytest.mark.parametrize("protocol", [4, 5])
def test_the_shipped_form_pickles_again_with_any_protocol(protocol):
    wrapped = tune.with_parameters(grab, arr=np.ones(4), s="x")
    for _ in range(2):  # from the driver's form, then from the shipped form
        wrapped = cloudpickle.loads(cloudpickle.dumps(wrapped, protocol=protocol))
        got = wrapped({})
        assert got["s"] == "x" and (got["arr"] == 1).all() and not got["arr"].flags.writeable


def test_an_object_that_cannot_be_pickled_fails_the_experiment_clearly(tmp_path):
    import threading

    lock = threading.Lock()
    with pytest.raises(tune.TuneError, match="cannot be pickled"):
        tune.Tuner(tune.with_parameters(mutating, data=lock),
                   tune_config=tune.TuneConfig(backend="simulated"),
                   run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()


def test_the_docstring_says_arrays_are_read_only():
    doc = tune.with_parameters.__doc__ or ""
    assert "read-only" in doc and "own copy" in doc
