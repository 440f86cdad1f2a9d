"""The journal's records: one frozen dataclass per kind, and their JSON form.

Every record encodes to a dict whose ``"e"`` field names its kind; :func:`decode_record`
turns such a dict back into the record. The JSON field names are those poptune wrote before
the schema existed (version 1), so old journals still replay. Configs and searcher/scheduler
states stay opaque base64 pickles here: decoding them is up to the reader (the dashboard and
lineage never unpickle user objects).

Example:
    >>> rec = ResultReported("a_00000", {"loss": 0.5, "training_iteration": 1})
    >>> rec.encode()
    {'e': 'result', 't': 'a_00000', 'r': {'loss': 0.5, 'training_iteration': 1}}
    >>> decode_record(rec.encode()) == rec
    True
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

#: the journal schema this poptune writes; 1 is the unversioned format without checksums
SCHEMA_VERSION = 2
SCHEDULER_STATE_FILE = "scheduler_state.pkl"

__all__ = [
    "SCHEMA_VERSION", "Record", "ExperimentStarted", "TrialCreated", "ResultReported",
    "CheckpointSaved", "CheckpointDeleted", "StatusChanged", "ConfigChanged",
    "ResourcesChanged", "RolledBack", "SearcherState", "SchedulerState", "SchedulerDelta",
    "ExperimentEnded", "PauseRequested",
    "UnknownRecord", "decode_record", "RECORD_TYPES",
]


class Record:
    """Base of every journal record."""

    kind: ClassVar[str] = ""

    def encode(self) -> dict[str, Any]:  # pragma: no cover - every record overrides it
        raise NotImplementedError

    @classmethod
    def decode(cls, d: dict[str, Any]) -> Record:  # pragma: no cover
        raise NotImplementedError


@dataclass(frozen=True)
class ExperimentStarted(Record):
    """The journal's header: a new (not resumed) experiment."""

    kind: ClassVar[str] = "exp"
    name: str
    trainable: str
    metric: str | None = None
    mode: str | None = None
    start: float = 0.0
    exp_hex: str | None = None
    version: int = SCHEMA_VERSION
    #: ``"simulated"`` when the experiment runs on simulated time (``start`` and every
    #: result's ``timestamp`` are then simulated seconds); None (not written) for real time
    clock: str | None = None

    def encode(self) -> dict[str, Any]:
        d = {"e": "exp", "v": self.version, "name": self.name, "trainable": self.trainable,
             "metric": self.metric, "mode": self.mode, "start": self.start,
             "exp_hex": self.exp_hex}
        if self.clock is not None:
            d["clock"] = self.clock
        return d

    @classmethod
    def decode(cls, d: dict[str, Any]) -> ExperimentStarted:
        clock = d.get("clock")
        return cls(str(d.get("name", "")), str(d.get("trainable", "")), d.get("metric"),
                   d.get("mode"), float(d.get("start") or 0.0), d.get("exp_hex"),
                   int(d.get("v", 1)), clock if isinstance(clock, str) else None)


@dataclass(frozen=True)
class TrialCreated(Record):
    """A new trial; ``config`` is its base64 (cloud)pickled config."""

    kind: ClassVar[str] = "trial"
    trial_id: str
    trainable: str
    config: str
    tag: str
    path: str
    dirname: str
    resources: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    #: the searcher's state, in journals of early poptune versions only
    search_state: str | None = None

    def encode(self) -> dict[str, Any]:
        d = {"e": "trial", "id": self.trial_id, "trainable": self.trainable,
             "config": self.config, "tag": self.tag, "path": self.path,
             "dirname": self.dirname, "resources": self.resources, "params": self.params,
             "name": self.name}
        if self.search_state is not None:
            d["search_state"] = self.search_state
        return d

    @classmethod
    def decode(cls, d: dict[str, Any]) -> TrialCreated:
        path = str(d.get("path") or "")
        return cls(str(d["id"]), str(d.get("trainable", "")), d.get("config") or "",
                   str(d.get("tag", "")), path,
                   str(d.get("dirname") or os.path.basename(path.rstrip("/\\"))),
                   d.get("resources") or {}, d.get("params") or {}, d.get("name"),
                   d.get("search_state"))


@dataclass(frozen=True)
class ResultReported(Record):
    """One result row (without its ``config``) of a trial."""

    kind: ClassVar[str] = "result"
    trial_id: str
    result: dict[str, Any]

    def encode(self) -> dict[str, Any]:
        return {"e": "result", "t": self.trial_id, "r": self.result}

    @classmethod
    def decode(cls, d: dict[str, Any]) -> ResultReported:
        r = d["r"]
        if not isinstance(r, dict):
            raise ValueError(f"'r' must be an object, got {type(r).__name__}")
        return cls(str(d["t"]), r)


@dataclass(frozen=True)
class CheckpointSaved(Record):
    """A checkpoint of ``trial_id`` taken after its first ``rows`` results."""

    kind: ClassVar[str] = "ckpt"
    trial_id: str
    name: str
    path: str
    index: int
    rows: int
    metrics: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> dict[str, Any]:
        return {"e": "ckpt", "t": self.trial_id, "name": self.name, "path": self.path,
                "index": self.index, "rows": self.rows, "m": self.metrics}

    @classmethod
    def decode(cls, d: dict[str, Any]) -> CheckpointSaved:
        name = str(d["name"])
        index = d.get("index")
        if index is None:
            index = int(name.rsplit("_", 1)[-1]) if name.rsplit("_", 1)[-1].isdigit() else 0
        return cls(str(d["t"]), name, str(d.get("path", "")), int(index), int(d.get("rows", 0)),
                   d.get("m") or {})


@dataclass(frozen=True)
class CheckpointDeleted(Record):
    """A checkpoint directory of ``trial_id`` was deleted (by name)."""

    kind: ClassVar[str] = "ckpt_del"
    trial_id: str
    name: str

    def encode(self) -> dict[str, Any]:
        return {"e": "ckpt_del", "t": self.trial_id, "name": self.name}

    @classmethod
    def decode(cls, d: dict[str, Any]) -> CheckpointDeleted:
        return cls(str(d["t"]), str(d["name"]))


@dataclass(frozen=True)
class StatusChanged(Record):
    """A trial's new status (``PENDING``, ``RUNNING``, ``PAUSED``, ``TERMINATED``, ``ERROR``);
    errors carry the failure count, the last line of the traceback and the error file."""

    kind: ClassVar[str] = "status"
    trial_id: str
    status: str
    failures: int | None = None
    message: str | None = None
    error_file: str | None = None

    def encode(self) -> dict[str, Any]:
        d: dict[str, Any] = {"e": "status", "t": self.trial_id, "s": self.status}
        if self.failures is not None:
            d["failures"] = self.failures
            d["msg"] = self.message
            d["file"] = self.error_file
        return d

    @classmethod
    def decode(cls, d: dict[str, Any]) -> StatusChanged:
        failures = d.get("failures")
        return cls(str(d["t"]), str(d["s"]), None if failures is None else int(failures),
                   d.get("msg"), d.get("file"))


@dataclass(frozen=True)
class ConfigChanged(Record):
    """A PBT exploit carried out: ``trial_id`` continues with ``config`` (a base64 pickle)
    from ``donor``'s checkpoint ``donor_checkpoint`` at ``restore_path``, which was taken at
    the donor's iteration ``restore_iteration`` and total time ``restore_time``.

    ``donor``/``donor_checkpoint`` are None in journals written before schema version 2.
    """

    kind: ClassVar[str] = "config"
    trial_id: str
    config: str
    restore_path: str | None = None
    restore_iteration: int = 0
    restore_time: float = 0.0
    donor: str | None = None
    donor_checkpoint: str | None = None

    def encode(self) -> dict[str, Any]:
        d: dict[str, Any] = {"e": "config", "t": self.trial_id, "config": self.config}
        if self.restore_path is not None:
            d["restore"] = {"path": self.restore_path, "it": self.restore_iteration,
                            "tt": self.restore_time}
        if self.donor is not None:
            d["donor"] = self.donor
            d["donor_checkpoint"] = self.donor_checkpoint
        return d

    @classmethod
    def decode(cls, d: dict[str, Any]) -> ConfigChanged:
        restore = d.get("restore") or {}
        return cls(str(d["t"]), d.get("config") or "",
                   None if restore.get("path") is None else str(restore["path"]),
                   int(restore.get("it") or 0), float(restore.get("tt") or 0.0),
                   d.get("donor"), d.get("donor_checkpoint"))

    @property
    def restore_meta(self) -> dict[str, Any] | None:
        """``{"path", "it", "tt"}`` as the runner resumes from it (None: no restore)."""
        if self.restore_path is None:
            return None
        return {"path": self.restore_path, "it": self.restore_iteration,
                "tt": self.restore_time}


@dataclass(frozen=True)
class ResourcesChanged(Record):
    """A trial was resized (e.g. by a ResourceChangingScheduler)."""

    kind: ClassVar[str] = "resources"
    trial_id: str
    resources: dict[str, Any]

    def encode(self) -> dict[str, Any]:
        return {"e": "resources", "t": self.trial_id, "r": self.resources}

    @classmethod
    def decode(cls, d: dict[str, Any]) -> ResourcesChanged:
        return cls(str(d["t"]), dict(d["r"]))


@dataclass(frozen=True)
class RolledBack(Record):
    """Keep only the first ``rows`` results of a trial and the checkpoints taken within them
    (a retry from the latest checkpoint, a restore, or ``rows=0``: a restart from scratch)."""

    kind: ClassVar[str] = "rollback"
    trial_id: str
    rows: int

    def encode(self) -> dict[str, Any]:
        return {"e": "rollback", "t": self.trial_id, "rows": self.rows}

    @classmethod
    def decode(cls, d: dict[str, Any]) -> RolledBack:
        return cls(str(d["t"]), int(d["rows"]))


@dataclass(frozen=True)
class _State(Record):
    """A pickled state: inline (``state``, base64) or, when big, in ``file`` beside the
    journal (so the journal does not grow quadratically)."""

    state: str | None = None
    file: str | None = None

    def encode(self) -> dict[str, Any]:
        if self.file is not None:
            return {"e": self.kind, "file": self.file}
        return {"e": self.kind, "state": self.state}

    @classmethod
    def decode(cls, d: dict[str, Any]) -> _State:
        return cls(d.get("state"), d.get("file"))

    def blob(self, experiment_dir: str) -> bytes | None:
        """The pickled bytes (read from ``file`` if needed); None if the file is gone."""
        if self.file is None:
            return base64.b64decode(self.state or "")
        try:
            with open(os.path.join(experiment_dir, self.file), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        try:  # searcher files hold base64 text, scheduler files raw pickle bytes
            return base64.b64decode(data, validate=True)
        except ValueError:
            return data


@dataclass(frozen=True)
class SearcherState(_State):
    """The searcher's state after the commit it is part of."""

    kind: ClassVar[str] = "search"


@dataclass(frozen=True)
class SchedulerState(_State):
    """The scheduler's state after the commit it is part of (new in schema version 2).

    Example:
        >>> import tempfile
        >>> rec = SchedulerState.of({"step": 3}, tempfile.mkdtemp())
        >>> rec.file is None
        True
    """

    kind: ClassVar[str] = "sched"

    @classmethod
    def of(cls, state: Any, experiment_dir: str, inline_limit: int = 4096,
           file_name: str = SCHEDULER_STATE_FILE) -> SchedulerState:
        """The record for ``state`` (cloudpickled): inline up to ``inline_limit`` bytes of
        base64, else written atomically to ``experiment_dir/file_name`` and named."""
        import cloudpickle

        return cls.of_blob(cloudpickle.dumps(state), experiment_dir, inline_limit, file_name)

    @classmethod
    def of_blob(cls, blob: bytes, experiment_dir: str, inline_limit: int = 4096,
                file_name: str = SCHEDULER_STATE_FILE) -> SchedulerState:
        """The record for a state pickled already (see :meth:`of`)."""
        text = base64.b64encode(blob).decode()
        if len(text) <= inline_limit:
            return cls(state=text)
        path = os.path.join(experiment_dir, file_name)
        with open(path + ".tmp", "wb") as f:
            f.write(blob)
        os.replace(path + ".tmp", path)
        return cls(file=file_name)


@dataclass(frozen=True)
class SchedulerDelta(Record):
    """What changed in the scheduler's state since the record before it (a scheduler with
    ``incremental_state``, whose whole state grows with the experiment, e.g. ASHA's rungs).

    Replay applies the deltas after the last :class:`SchedulerState` in order, so a restored
    scheduler is consistent to the last committed result without the whole state being
    rewritten at every commit.

    Example:
        >>> rec = SchedulerDelta.of([("r", 0, 1.0, "t1", 0.5)])
        >>> SchedulerDelta.decode(rec.encode()).value()
        [('r', 0, 1.0, 't1', 0.5)]
    """

    kind: ClassVar[str] = "sdelta"

    delta: str = ""  #: base64 of the pickled delta

    @classmethod
    def of(cls, delta: Any) -> SchedulerDelta:
        import pickle

        return cls(base64.b64encode(pickle.dumps(delta, protocol=5)).decode())

    def value(self) -> Any:
        """The delta, unpickled."""
        import pickle

        return pickle.loads(base64.b64decode(self.delta))

    def encode(self) -> dict[str, Any]:
        return {"e": self.kind, "d": self.delta}

    @classmethod
    def decode(cls, d: dict[str, Any]) -> SchedulerDelta:
        return cls(str(d["d"]))


@dataclass(frozen=True)
class ExperimentEnded(Record):
    """The run ended (every trial finished or the experiment was stopped)."""

    kind: ClassVar[str] = "end"

    def encode(self) -> dict[str, Any]:
        return {"e": "end"}

    @classmethod
    def decode(cls, d: dict[str, Any]) -> ExperimentEnded:
        return cls()


@dataclass(frozen=True)
class PauseRequested(Record):
    """The scheduler paused ``trial_id`` on its latest result; the trial is ``PAUSED`` once
    it stopped. A restore of a driver that ended in between pauses it too (the scheduler's
    journaled state counts it paused), where a trial merely interrupted resumes first."""

    kind: ClassVar[str] = "pause"
    trial_id: str

    def encode(self) -> dict[str, Any]:
        return {"e": "pause", "t": self.trial_id}

    @classmethod
    def decode(cls, d: dict[str, Any]) -> PauseRequested:
        return cls(str(d["t"]))


@dataclass(frozen=True)
class UnknownRecord(Record):
    """A record kind this poptune does not know (readers ignore it)."""

    data: dict[str, Any]

    def encode(self) -> dict[str, Any]:
        return dict(self.data)


RECORD_TYPES: dict[str, type[Record]] = {
    cls.kind: cls for cls in (
        ExperimentStarted, TrialCreated, ResultReported, CheckpointSaved, CheckpointDeleted,
        StatusChanged, ConfigChanged, ResourcesChanged, RolledBack, SearcherState,
        SchedulerState, SchedulerDelta, ExperimentEnded, PauseRequested)
}


def decode_record(d: dict[str, Any]) -> Record:
    """The record a journal dict encodes; KeyError/ValueError/TypeError if it is malformed.

    >>> decode_record({"e": "rollback", "t": "a", "rows": 3})
    RolledBack(trial_id='a', rows=3)
    """
    cls = RECORD_TYPES.get(d.get("e"))  # type: ignore[arg-type]
    if cls is None:
        return UnknownRecord(d)
    return cls.decode(d)
