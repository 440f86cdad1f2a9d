"""``RunConfig(log_to_file=...)``: the worker writes a trial's stdout and stderr to files in
its directory (appending) while the output still reaches the console."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import poptune as tune


def prints(config):
    print("PRINT-STDOUT")
    print("PRINT-STDERR", file=sys.stderr)
    if config.get("subprocess"):  # output that is not Python's: captured at the fd level
        subprocess.run([sys.executable, "-c", "import os; os.write(1, b'FROM-CHILD\\n')"],
                       check=True)
    tune.report({"a": 1})


def _fit(tmp_path, log_to_file, name, config=None):
    grid = tune.Tuner(prints, param_space=config or {}, run_config=tune.RunConfig(
        name=name, storage_path=str(tmp_path), verbose=0, log_to_file=log_to_file)).fit()
    assert grid[0].error is None
    return grid[0].path


def _read(path, name):
    with open(os.path.join(path, name)) as f:
        return f.read()


def test_true_writes_stdout_and_stderr_files_and_the_console_still_gets_them(tmp_path, capfd):
    path = _fit(tmp_path, True, "both", {"subprocess": True})
    assert _read(path, "stdout") == "PRINT-STDOUT\nFROM-CHILD\n"
    assert _read(path, "stderr") == "PRINT-STDERR\n"
    out, err = capfd.readouterr()
    assert "PRINT-STDOUT" in out and "FROM-CHILD" in out and "PRINT-STDERR" in err


def test_a_name_gets_both_streams_and_a_pair_one_file_each(tmp_path):
    path = _fit(tmp_path, "trial.log", "one")
    assert sorted(_read(path, "trial.log").splitlines()) == ["PRINT-STDERR", "PRINT-STDOUT"]
    path = _fit(tmp_path, ("out.txt", "err.txt"), "pair")
    assert (_read(path, "out.txt"), _read(path, "err.txt")) == ("PRINT-STDOUT\n",
                                                                "PRINT-STDERR\n")
    assert not {"stdout", "stderr"} & set(os.listdir(path))


def test_off_writes_no_file(tmp_path):
    path = _fit(tmp_path, False, "off")
    assert not {"stdout", "stderr"} & set(os.listdir(path))


def test_a_shared_process_tees_the_trials_python_output(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("POPTUNE_BACKEND", "simulated")  # trials in threads of this process
    before = sys.stdout, sys.stderr
    path = _fit(tmp_path, (None, "err.txt"), "sim")
    assert _read(path, "err.txt") == "PRINT-STDERR\n"
    assert not os.path.exists(os.path.join(path, "stdout"))
    assert (sys.stdout, sys.stderr) == before  # put back when no trial logs any more
    out, err = capsys.readouterr()
    assert "PRINT-STDOUT" in out and "PRINT-STDERR" in err


def test_a_restarted_trial_appends(tmp_path):
    path = _fit(tmp_path, True, "again")
    with open(os.path.join(path, "stdout"), "a") as f:
        f.write("EARLIER\n")
    # the same file names in the same trial dir: a second run's trial appends
    from poptune.backends._worker import _OutputTee

    tee = _OutputTee(path, ("stdout", None), fd_level=False)
    tee.start()
    print("LATER")
    tee.stop()
    assert _read(path, "stdout") == "PRINT-STDOUT\nEARLIER\nLATER\n"


@pytest.mark.parametrize("value, message", [
    (123, "You can pass a boolean, a string, or a Sequence of length 2"),
    (("a",), "has to have a length of 2"),
    (("a", "b", "c"), "The Sequence you passed has length 3"),
    (("a", 3), "You can pass a boolean"),
])
def test_bad_values_are_rejected_when_the_run_config_is_made(value, message):
    with pytest.raises(ValueError, match=message) as err:
        tune.RunConfig(log_to_file=value)
    assert "`log_to_file`" in str(err.value) and repr(value) in str(err.value)
    with pytest.raises(ValueError, match=message):
        tune.run(prints, log_to_file=value)
