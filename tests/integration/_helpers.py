"""What the framework-callback tests share: a run of real trials that stops at the first error,
a trial's ``result.json`` rows, and a stand-in for ``poptune.session.report`` that records
what a callback reported outside a trial."""

from __future__ import annotations

import json
import os


def fit_fail_fast(tmp_path, trainable, param_space, name, **tune_config):
    """``Tuner(trainable).fit()`` into ``tmp_path/name``, quiet, ending at the first error;
    ``tune_config`` goes to ``TuneConfig`` (metric, mode, scheduler)."""
    import poptune as tune

    return tune.Tuner(
        trainable, param_space=param_space, tune_config=tune.TuneConfig(**tune_config),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0,
                                  failure_config=tune.FailureConfig(fail_fast=True)),
    ).fit()


def result_rows(trial_dir):
    """The rows of a trial's ``result.json``."""
    with open(os.path.join(trial_dir, "result.json")) as f:
        return [json.loads(line) for line in f]


class FakeReport:
    """Replaces ``poptune.session.report`` for one test; ``calls`` holds (metrics, sorted file
    names of the checkpoint directory or None) per report."""

    def __init__(self, monkeypatch):
        self.calls = []
        import poptune.session as s

        monkeypatch.setattr(s, "report", self)

    def __call__(self, metrics=None, checkpoint=None):
        files = sorted(os.listdir(checkpoint.path)) if checkpoint else None
        self.calls.append((metrics, files))


def wandb_records(path, timeout=30.0):
    """The records of an offline W&B run file (``run-<id>.wandb``) as ``(kind, message)``
    pairs, read again until the run's ``exit`` record is in it (or ``timeout`` seconds): the
    wandb-core service writes the file after ``run.finish()`` returns (a clean-clone run read
    it with no records at all)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        records = _wandb_file(path)
        if any(kind == "exit" for kind, _ in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.05)


def _wandb_file(path):
    """Parse a W&B run file: a LevelDB-style log (a 7-byte header, then 32 KiB blocks of
    framed chunks) of ``wandb_internal_pb2.Record`` messages; wandb 0.30 ships no reader."""
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    data = open(path, "rb").read()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    block, pos, whole, pending = 32768, 7, [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # too little room for a chunk header: the block is padded
            pos += left
            continue
        _crc, size, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if size == 0 and kind == 0:
            pos += left
            continue
        chunk, pos = data[pos + 7:pos + 7 + size], pos + 7 + size
        if kind == 1:  # a full record
            whole.append(chunk)
        elif kind in (2, 3):  # first and middle chunks
            pending += chunk
        else:  # the last chunk
            whole.append(pending + chunk)
            pending = b""
    out = []
    for raw in whole:
        record = pb.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        out.append((kind, getattr(record, kind)))
    return out


def wandb_history(path):
    """The rows an offline W&B run logged, each ``{key: value}`` (values JSON-decoded)."""
    return [{item.key or "/".join(item.nested_key): json.loads(item.value_json)
             for item in message.item}
            for kind, message in wandb_records(path) if kind == "history"]
