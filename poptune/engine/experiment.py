"""Experiment naming and rebuilding an experiment's state from its journal."""

from __future__ import annotations

import base64
import os
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cloudpickle

from poptune._pickling import load_config
from poptune.clock import local_date
from poptune.engine.trial import Trial, TrialStatus
from poptune.session import CHECKPOINT_DIR

if TYPE_CHECKING:
    from poptune.storage.replay import ExperimentState

_UNSAFE = re.compile(r"[^\w.,=+@\-\[\]]+")


def timestamp() -> str:
    """The local time as Ray writes it in trial directory names."""
    return local_date(time.time())


def default_trial_dirname(trial: Trial, date: str, limit: int = 130) -> str:
    """Ray's style: ``{trial name}_{index}_{k=v,...}`` cut to ``limit`` characters (Ray's
    ``TUNE_MAX_LEN_IDENTIFIER``, 130: see :func:`name_limit`), then ``_{date}``, sanitised;
    the trial name is ``trial_name_creator``'s when it gave one, as in Ray.

    Example:
        >>> t = Trial("ab_00001", "f", {"x": 2}, experiment_tag="1_x=2")
        >>> default_trial_dirname(t, "D")
        'f_ab_00001_1_x=2_D'
        >>> t.custom_trial_name = "run/one"
        >>> default_trial_dirname(t, "D")
        'run_one_1_x=2_D'
    """
    return _UNSAFE.sub("_", f"{trial}_{trial.experiment_tag}"[:limit]) + f"_{date}"


def name_limit() -> int:
    """``TUNE_MAX_LEN_IDENTIFIER`` (default 130): how long a trial directory's name may be
    before its date (read once per experiment)."""
    return int(os.environ.get("TUNE_MAX_LEN_IDENTIFIER", "130"))


def pack(obj: Any) -> str:
    return base64.b64encode(cloudpickle.dumps(obj)).decode()


def unpack(text: str, constants: list[Any] | None = None) -> Any:
    """Decode ``pack`` output; configs refer to the experiment's constants by index."""
    return load_config(base64.b64decode(text), constants or [])


@dataclass
class TrialHistory:
    """What the journal says about one trial."""

    trial: Trial
    rows: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)  # name, metrics, rows
    deleted: set[str] = field(default_factory=set)
    restore_meta: dict[str, Any] | None = None
    next_checkpoint_index: int = 0
    #: checkpoint directories on local disk the journal deleted or never recorded (a driver
    #: that died between the journal and the disk left them): a restore removes them
    stale_checkpoints: list[str] = field(default_factory=list)
    #: its scheduler paused it on its latest result and it had not stopped yet
    pausing: bool = False
    #: the journal position where it began to wait (created, its latest status, a pause)
    status_seq: int = 0


@dataclass
class ExperimentHistory:
    header: dict[str, Any]
    trials: dict[str, TrialHistory]
    search_state: Any = None  #: the searcher's ``pack``ed state (base64 text), or None
    finished: bool = False
    #: the scheduler's pickled state at the last commit (None: not journaled, e.g. an
    #: experiment from before schema version 2, whose state is in ``scheduler_state.pkl``)
    scheduler_state: bytes | None = None
    #: the scheduler's deltas committed after ``scheduler_state`` (unpickled), in order
    scheduler_deltas: list[Any] = field(default_factory=list)
    #: trials created after ``search_state`` was journaled (replayed by the searcher)
    created_after_search_state: int = 0
    #: directories of this experiment's trials that no committed record names
    #: (:func:`orphan_trial_dirs`); restore removes them
    orphan_dirs: list[str] = field(default_factory=list)


def _forget_missing_checkpoints(h: TrialHistory) -> None:
    """Count as deleted the newest checkpoints the journal keeps but the local disk lacks
    (journal and disk disagree, e.g. after ``poptune repair`` cut off the records of their
    deletion, or after a user removed them): the trial then resumes from its newest
    checkpoint that exists, or from the start, instead of handing its trainable a
    checkpoint that is gone. A pending exploit whose donor checkpoint is gone is dropped
    the same way. Each is said once, as a warning."""
    import logging
    import os

    log = logging.getLogger("poptune")
    t = h.trial
    for name, _, _ in reversed(h.checkpoints):
        if name in h.deleted:
            continue
        if os.path.isdir(os.path.join(t.storage_dir, name)):
            break
        h.deleted.add(name)
        log.warning("poptune: trial %s: its checkpoint %s is in the journal but not in %s; "
                    "the trial resumes from an earlier checkpoint or from the start", t.trial_id,
                    name, t.storage_dir)
    path = (h.restore_meta or {}).get("path")
    if isinstance(path, str) and "://" not in path and not os.path.isdir(path):
        log.warning("poptune: trial %s: the checkpoint %s it was to restore from (a PBT exploit) "
                    "is gone; it resumes from its own latest checkpoint instead", t.trial_id, path)
        h.restore_meta = None


def _stale_checkpoint_dirs(h: TrialHistory) -> list[str]:
    """The ``checkpoint_NNNNNN`` directories in a trial's local directory that the journal
    marks deleted or never recorded (a deletion committed, or a checkpoint not yet committed,
    when the driver died)."""
    kept = {name for name, _, _ in h.checkpoints if name not in h.deleted}
    try:
        names = os.listdir(h.trial.local_path)
    except OSError:
        return []
    return [os.path.join(h.trial.local_path, n) for n in sorted(names)
            if n not in kept and CHECKPOINT_DIR.fullmatch(n)
            and os.path.isdir(os.path.join(h.trial.local_path, n))]


def orphan_trial_dirs(exp_dir: str, exp_hex: str | None, known: set[str]) -> list[str]:
    """Directories in ``exp_dir`` named as this experiment's trials are by default
    (``{trainable}_{exp_hex}_{index:05d}_...``) that are not in ``known`` (the journal's):
    a trial's worker made one for a trial whose creation the driver had not committed when
    it died. Restore removes them: that trial runs again under its id, in a new directory.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> for name in ("f_ab123_00000_0_D", "f_ab123_00001_1_D", "f_cd456_00000_0_D", "notes"):
    ...     os.mkdir(os.path.join(d, name))
    >>> [os.path.basename(p) for p in orphan_trial_dirs(d, "ab123", {"f_ab123_00000_0_D"})]
    ['f_ab123_00001_1_D']
    """
    if not exp_hex:
        return []
    named = re.compile(rf"_{re.escape(exp_hex)}_\d{{5,}}_")
    try:
        names = os.listdir(exp_dir)
    except OSError:
        return []
    return [os.path.join(exp_dir, n) for n in sorted(names)
            if n not in known and named.search(n) and os.path.isdir(os.path.join(exp_dir, n))]


def replay_journal(path: str, constants: list[Any] | None = None,
                   storage_root: str | None = None,
                   state: ExperimentState | None = None) -> ExperimentHistory:
    """Rebuild trials, their results and checkpoints from ``journal.jsonl``.

    Trial directories are placed under the journal's directory (so a moved or downloaded
    experiment works) and checkpoints under ``storage_root`` (the remote experiment URI, or
    the same directory when local). ``state``: the journal already replayed (by
    ``Tuner.restore``), else it is read from ``path``.

    Raises:
        RestoreError: the journal is damaged, empty, has no header or a newer schema
            (see :mod:`poptune.storage.replay`).
    """
    import os
    import posixpath

    from poptune.storage.replay import load_state

    exp_dir = os.path.dirname(os.path.abspath(path))
    if state is None:
        state = load_state(path)

    def storage_of(dirname: str) -> str:
        if storage_root:
            return posixpath.join(storage_root, dirname)
        return os.path.join(exp_dir, dirname)

    trials: dict[str, TrialHistory] = {}
    for ts in state.trials.values():
        configs: dict[str, Any] = {}
        for blob in dict.fromkeys(ts.result_configs):
            configs[blob] = unpack(blob, constants)
        if ts.config not in configs:
            configs[ts.config] = unpack(ts.config, constants)
        rec = ts.created
        t = Trial(
            trial_id=rec.trial_id,
            trainable_name=rec.trainable,
            config=configs[ts.config],
            experiment_tag=rec.tag,
            local_path=os.path.join(exp_dir, rec.dirname),
            dirname=rec.dirname,
            storage_dir=storage_of(rec.dirname),
            resources=ts.resources,
            evaluated_params=rec.params,
            custom_trial_name=rec.name,
            status=TrialStatus(ts.status),
            error_msg=ts.error_msg,
            error_file=ts.error_file,
            num_failures=ts.failures,
        )
        h = TrialHistory(t, rows=ts.results,
                         checkpoints=[(c.name, c.metrics, c.rows) for c in ts.checkpoints],
                         deleted=set(ts.deleted),
                         restore_meta=(ts.pending_restore.restore_meta
                                       if ts.pending_restore else None),
                         next_checkpoint_index=ts.next_checkpoint_index,
                         pausing=ts.pausing, status_seq=ts.status_seq)
        for row, blob in zip(h.rows, ts.result_configs):
            row["config"] = configs[blob]
        t.last_result = h.rows[-1] if h.rows else {}
        if not storage_root and t.status != TrialStatus.TERMINATED:
            _forget_missing_checkpoints(h)  # a trial that may run again needs its own
        if not storage_root:
            h.stale_checkpoints = _stale_checkpoint_dirs(h)
        live = [c[0] for c in h.checkpoints if c[0] not in h.deleted]
        if live:
            t.checkpoint_path = (posixpath.join(t.storage_dir, live[-1]) if storage_root
                                 else os.path.join(t.storage_dir, live[-1]))
        trials[t.trial_id] = h
    search_state = None
    if state.searcher_state is not None:
        if state.searcher_state.file is None:
            search_state = state.searcher_state.state
        else:
            try:
                with open(os.path.join(exp_dir, state.searcher_state.file)) as f:
                    search_state = f.read()
            except FileNotFoundError:
                pass
    sched = state.scheduler_state.blob(exp_dir) if state.scheduler_state else None
    header = state.header.encode() if state.header else {}
    deltas = [d.value() for d in state.scheduler_deltas] if sched is not None else []
    orphans = [] if storage_root else orphan_trial_dirs(
        exp_dir, header.get("exp_hex"), {h.trial.dirname for h in trials.values()})
    return ExperimentHistory(header, trials, search_state, state.finished, sched, deltas,
                             state.created_after_search_state, orphans)
