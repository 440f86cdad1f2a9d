"""A ``fit()`` whose setup fails after the backend started leaves nothing running.

The local backend starts its workers early, so that their start-up overlaps the rest of the
setup. A setup that then fails (a bad scheduler, an unpicklable constant in ``param_space``)
must shut them down, and the trial-file writer and I/O thread the runner had started: in a
notebook the user's next cell would otherwise find two idle worker processes per failed
``fit()``, and a socket directory in the temporary directory that no later driver removes.
"""

from __future__ import annotations

import glob
import os
import tempfile
import threading

import pytest

import poptune as tune
from poptune.exceptions import TuneError
from tests.conftest import _POPTUNE_PATTERNS


def _trainable(config):
    tune.report({"score": 1.0})


def _my_workers() -> list[int]:
    """Live worker and trial-file writer processes whose parent is this process."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[-1].split()
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if (int(fields[1]) == os.getpid() and fields[0] != b"Z"
                and any(p.encode() in cmd for p in _POPTUNE_PATTERNS)):
            found.append(int(name))
    return found


def _socket_dirs() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "poptune-*")))


class _Unpicklable:
    def __init__(self) -> None:
        self.lock = threading.Lock()


@pytest.mark.parametrize("case", ["bad scheduler", "unpicklable constant"])
def test_a_setup_that_fails_after_the_workers_started_shuts_them_down(case, tmp_path):
    assert _my_workers() == []
    dirs = _socket_dirs()
    if case == "bad scheduler":  # found after the backend prestarted its workers
        tuner = tune.Tuner(_trainable, tune_config=tune.TuneConfig(
            num_samples=2, metric="score", mode="max", scheduler="asha"),
            run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0))
        expected: type[BaseException] = TypeError
    else:  # found by the runner, the last step of the setup
        tuner = tune.Tuner(_trainable, param_space={"obj": _Unpicklable()},
                           tune_config=tune.TuneConfig(num_samples=2),
                           run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0))
        expected = TuneError
    with pytest.raises(expected):
        tuner.fit()
    assert _my_workers() == []
    assert _socket_dirs() == dirs
    assert not [t for t in threading.enumerate() if t.name == "poptune-io"]
