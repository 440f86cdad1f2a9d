"""Experiment naming and rebuilding an experiment's state from its journal."""

from __future__ import annotations

import base64
import datetime
import re
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from poptune.engine.trial import Trial, TrialStatus
from poptune.storage.journal import read_journal

_UNSAFE = re.compile(r"[^\w.,=+@\-\[\]]+")


def timestamp() -> str:
    return datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")


def default_trial_dirname(trial: Trial, date: str) -> str:
    """Ray's style: ``{trainable}_{trial_id}_{index}_{k=v,...}_{date}`` (sanitised)."""
    tag = _UNSAFE.sub("_", trial.experiment_tag)[:100]
    return f"{trial.trainable_name}_{trial.trial_id}_{tag}_{date}"


def pack(obj: Any) -> str:
    return base64.b64encode(cloudpickle.dumps(obj)).decode()


def unpack(text: str, constants: list[Any] | None = None) -> Any:
    """Decode ``pack`` output; configs refer to the experiment's constants by index."""
    import io
    import pickle

    class _Unpickler(pickle.Unpickler):
        def persistent_load(self, pid: Any) -> Any:
            return (constants or [])[pid]

    return _Unpickler(io.BytesIO(base64.b64decode(text))).load()


@dataclass
class TrialHistory:
    """What the journal says about one trial."""

    trial: Trial
    rows: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)  # name, metrics, rows
    deleted: set[str] = field(default_factory=set)
    restore_meta: dict[str, Any] | None = None
    next_checkpoint_index: int = 0


@dataclass
class ExperimentHistory:
    header: dict[str, Any]
    trials: dict[str, TrialHistory]
    search_state: Any = None
    finished: bool = False


def replay_journal(path: str, constants: list[Any] | None = None,
                   storage_root: str | None = None) -> ExperimentHistory:
    """Rebuild trials, their results and checkpoints from ``journal.jsonl``.

    Trial directories are placed under the journal's directory (so a moved or downloaded
    experiment works) and checkpoints under ``storage_root`` (the remote experiment URI, or
    the same directory when local).
    """
    import os
    import posixpath

    exp_dir = os.path.dirname(os.path.abspath(path))

    def storage_of(dirname: str) -> str:
        if storage_root:
            return posixpath.join(storage_root, dirname)
        return os.path.join(exp_dir, dirname)

    header: dict[str, Any] = {}
    trials: dict[str, TrialHistory] = {}
    search_state = None
    finished = False
    for rec in read_journal(path):
        kind = rec.get("e")
        if kind == "exp":
            header = rec
        elif kind == "trial":
            t = Trial(
                trial_id=rec["id"],
                trainable_name=rec["trainable"],
                config=unpack(rec["config"], constants),
                experiment_tag=rec["tag"],
                local_path=os.path.join(exp_dir, rec["dirname"]),
                dirname=rec["dirname"],
                storage_dir=storage_of(rec["dirname"]),
                resources=rec["resources"],
                evaluated_params=rec.get("params", {}),
                custom_trial_name=rec.get("name"),
            )
            trials[t.trial_id] = TrialHistory(t)
            if rec.get("search_state") is not None:
                search_state = rec["search_state"]
        elif kind == "search":
            if "file" in rec:
                try:
                    with open(os.path.join(exp_dir, rec["file"])) as f:
                        search_state = f.read()
                except FileNotFoundError:
                    pass
            else:
                search_state = rec["state"]
        elif kind == "result":
            h = trials[rec["t"]]
            row = rec["r"]
            row["config"] = h.trial.config
            h.rows.append(row)
            h.trial.last_result = row
        elif kind == "ckpt":
            h = trials[rec["t"]]
            h.checkpoints.append((rec["name"], rec["m"], rec["rows"]))
            h.trial.checkpoint_path = posixpath.join(h.trial.storage_dir, rec["name"]) if (
                storage_root) else os.path.join(h.trial.storage_dir, rec["name"])
            h.next_checkpoint_index = max(h.next_checkpoint_index, rec["index"] + 1)
            h.restore_meta = None
        elif kind == "ckpt_del":
            trials[rec["t"]].deleted.add(rec["name"])
        elif kind == "status":
            h = trials[rec["t"]]
            h.trial.status = TrialStatus(rec["s"])
            h.trial.error_msg = rec.get("msg", h.trial.error_msg)
            h.trial.error_file = rec.get("file", h.trial.error_file)
            h.trial.num_failures = rec.get("failures", h.trial.num_failures)
        elif kind == "config":
            h = trials[rec["t"]]
            h.trial.config = unpack(rec["config"], constants)
            h.restore_meta = rec.get("restore")
        elif kind == "resources":  # resized by a ResourceChangingScheduler
            trials[rec["t"]].trial.resources = rec["r"]
        elif kind == "rollback":
            h = trials[rec["t"]]
            h.rows = h.rows[: rec["rows"]]
            h.trial.last_result = h.rows[-1] if h.rows else {}
            h.checkpoints = [c for c in h.checkpoints if c[2] <= rec["rows"]]
            h.trial.checkpoint_path = (
                f"{h.trial.storage_dir}/{h.checkpoints[-1][0]}" if h.checkpoints else None
            )
            h.restore_meta = None
        elif kind == "end":
            finished = True
    return ExperimentHistory(header, trials, search_state, finished)
