"""A full disk while trials checkpoint: one ``StorageError`` naming the file and what was being
saved (not a chain of bare ``OSError: [Errno 28]``), and an experiment that restores.

ENOSPC is injected (no small filesystem is available): into the journal's writes, and into
the ``error.txt`` a failed trial leaves. Trials run on the simulated backend (in the driver,
no processes).
"""

from __future__ import annotations

import errno
import os

import pytest

import poptune as tune
from poptune.exceptions import StorageError
from poptune.storage import trial_logs

STEPS = 6


def checkpointing(config):
    """Reports a checkpoint every step, resuming from the last one."""
    import tempfile

    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            start = int(open(os.path.join(d, "step")).read()) + 1
    for step in range(start, STEPS):
        d = tempfile.mkdtemp()
        with open(os.path.join(d, "step"), "w") as f:
            f.write(str(step))
        tune.report({"step": step}, checkpoint=tune.Checkpoint.from_directory(d))


def run(path, name, **failure):
    return tune.Tuner(
        checkpointing, param_space={"x": tune.grid_search([1, 2])},
        tune_config=tune.TuneConfig(backend="simulated"),
        run_config=tune.RunConfig(storage_path=str(path), name=name, verbose=0,
                                  failure_config=tune.FailureConfig(**failure)),
    ).fit()


def chain(exc):
    """The exception and everything chained to it."""
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def assert_restores_to_the_end(exp_dir):
    grid = tune.Tuner.restore(str(exp_dir), trainable=checkpointing).fit()
    assert not grid.errors
    for result in grid:
        steps = [row["step"] for row in result.metrics_dataframe.to_dict("records")]
        assert steps == list(range(STEPS))  # every step once: nothing lost, nothing twice


def test_a_full_disk_under_the_journal_is_one_storage_error_and_the_run_restores(
        tmp_path, monkeypatch):
    exp_dir = tmp_path / "full"
    real_write, journal_writes = os.write, []

    def full_after_a_few(fd, data):
        if os.path.realpath(f"/proc/self/fd/{fd}") != str(exp_dir / "journal.jsonl"):
            return real_write(fd, data)
        journal_writes.append(len(data))
        if len(journal_writes) > 4:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr("poptune.storage.journal.os.write", full_after_a_few)
    with pytest.raises(StorageError) as info:
        run(tmp_path, "full")
    monkeypatch.undo()
    err = info.value
    message = str(err)
    assert message.startswith("could not save the journal records of ")
    assert "checkpoint" in message and "result" in message  # what was being saved
    assert f"to {exp_dir / 'journal.jsonl'}: [Errno 28] No space left on device" in message
    assert f'Tuner.restore("{exp_dir}", trainable=...)' in message
    # one error: its cause is the OSError, and nothing from the clean-up is chained to it
    assert [type(e) for e in chain(err)] == [StorageError, OSError]
    assert_restores_to_the_end(exp_dir)


def test_a_full_disk_under_a_failed_trials_error_file_is_one_storage_error(
        tmp_path, monkeypatch):
    exp_dir = tmp_path / "errfile"
    attempts = []

    def disk_full_checkpoint(config):
        attempts.append(1)
        if len(attempts) == 1:  # the trial's own checkpoint write hits the full disk
            tune.report({"step": 0})
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        checkpointing(config)

    def full_open(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(trial_logs, "open", full_open, raising=False)
    with pytest.raises(StorageError) as info:
        tune.Tuner(
            disk_full_checkpoint, tune_config=tune.TuneConfig(backend="simulated"),
            run_config=tune.RunConfig(storage_path=str(tmp_path), name="errfile", verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=1)),
        ).fit()
    monkeypatch.undo()
    message = str(info.value)
    trial_dir = next(p for p in exp_dir.iterdir() if p.is_dir())
    assert message.startswith(f"could not save the trial's error (error.txt, error.pkl) to "
                              f"{trial_dir / 'error.txt'}: [Errno 28] No space left on device")
    assert [type(e) for e in chain(info.value)] == [StorageError, OSError]
    grid = tune.Tuner.restore(str(exp_dir), trainable=disk_full_checkpoint).fit()
    assert not grid.errors and grid[0].metrics["step"] == STEPS - 1


def test_repeated_trial_file_write_failures_are_logged_once(caplog):
    from poptune.storage.background import BackgroundIO

    def full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    io = BackgroundIO()
    with caplog.at_level("WARNING", logger="poptune"):
        for _ in range(50):
            io.submit(full)
        io.drain()
    io.close()
    assert len(io.errors) == 50
    assert caplog.text.count("writing trial files failed") == 1
