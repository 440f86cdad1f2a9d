"""Lineage as data: the exploits of a PBT run, each trial's schedule and its family tree.

Everything here reads an experiment directory as poptune (or Ray Tune) wrote it and never
unpickles user objects, so it is safe behind a web dashboard:

* :func:`load_exploits` — every exploit, from ``pbt_global.txt`` (Ray's format), else from
  the journal's ``"config"`` records (``PopulationBasedTraining(log_config=False)``);
* :func:`hyperparam_schedule` — the configs one trial actually ran, from its ``result.json``;
* :func:`lineage` / :func:`lineage_schedule` — the chain of clones behind a trial's final
  model, and the schedule that model was trained with (what
  :class:`~poptune.schedulers.PopulationBasedTrainingReplay` replays);
* :func:`family_tree` — trials as nodes and exploits as edges, JSON-serialisable.

**Iterations.** An entry ``(k, config)`` of a schedule means *config took effect after
training iteration k*: it produced iterations ``k + 1, k + 2, ...``. The first entry is
``(0, initial_config)``. After an exploit, ``k`` is the donor's iteration (the trial resumes
from the donor's checkpoint), exactly Ray's ``(clone_iteration, new_config)`` replay policy.

Example:
    >>> from poptune.lineage import family_tree, lineage
    >>> tree = family_tree("~/poptune_results/pbt_exp", metric="mean_accuracy")  # doctest: +SKIP
    >>> [(e.donor_trial_id, e.donor_iteration) for e in lineage(
    ...     "~/poptune_results/pbt_exp", "a1b2c_00003")]  # doctest: +SKIP
    [('a1b2c_00000', 5), ('a1b2c_00001', 10)]
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import os
import pickle
import posixpath
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

from poptune._dicts import flatten_dict, nested_get
from poptune._validation import bad_type, bad_value
from poptune.exceptions import StorageError
from poptune.storage.trial_logs import RESULT_FILE, parse_result_lines

if TYPE_CHECKING:
    from poptune.results.result import Result

__all__ = ["Experiment", "ExploitEvent", "Segment", "TrialRecord", "family_tree",
           "hyperparam_schedule", "lineage", "lineage_schedule", "load_experiment",
           "load_exploits", "mutated_keys"]

Schedule = list[tuple[int, dict[str, Any]]]
PathOrResult = Union[str, "os.PathLike[str]", "Result"]
_log = logging.getLogger(__name__)
_LEADING_INT = re.compile(r"\s*(\d+)")
_ID_INDEX = re.compile(r"_(\d+)$")
_DIR_ID = re.compile(r"_([0-9a-f]{5}_\d{5})_")


@dataclass(frozen=True)
class ExploitEvent:
    """One PBT exploit: ``target`` restarted from ``donor``'s checkpoint with ``new_config``.

    Attributes:
        order: position among the experiment's exploits (0 = first).
        target_trial_id / donor_trial_id: the restarted trial and the cloned one.
        target_iteration: the target's last ``training_iteration`` before the exploit.
        donor_iteration: the iteration of the donor checkpoint it resumed from.
        old_config: the donor's config at that time; new_config: the explored copy.
        target_tag / donor_tag: the experiment tags as logged (may be empty).
    """

    order: int
    target_trial_id: str
    donor_trial_id: str
    target_iteration: int
    donor_iteration: int
    old_config: dict[str, Any]
    new_config: dict[str, Any]
    target_tag: str = ""
    donor_tag: str = ""

    @property
    def changes(self) -> dict[str, tuple[Any, Any]]:
        """``{"lr": (old, new)}`` for each (flattened) key whose value changed."""
        old, new = _flatten(self.old_config), _flatten(self.new_config)
        return {k: (old.get(k), new.get(k)) for k in sorted(set(old) | set(new))
                if old.get(k) != new.get(k)}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (non-finite floats become ``None``)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["changes"] = {k: list(v) for k, v in self.changes.items()}
        return _jsonable(out)  # type: ignore[no-any-return]


@dataclass
class TrialRecord:
    """One trial directory: ids, tag and its ``result.json`` rows in report order."""

    trial_id: str
    index: int
    tag: str
    path: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        """Short name for plots: ``"trial 3"``."""
        return f"trial {self.index}"

    @property
    def initial_config(self) -> dict[str, Any]:
        """The config of the first result (else ``params.json``)."""
        first = _row_config(self.rows[0]) if self.rows else None
        return first if first is not None else dict(self.params or {})

    @property
    def final_config(self) -> dict[str, Any]:
        """The config of the last result (else ``params.json``)."""
        for row in reversed(self.rows):
            if _row_config(row) is not None:
                return row["config"]  # type: ignore[no-any-return]
        return dict(self.params or {})


@dataclass
class Segment:
    """A run of consecutive rows of one trial without a restart; ``event`` started it."""

    rows: list[dict[str, Any]]
    event: ExploitEvent | None
    order: int  #: order of the exploit that started it (-1: the trial's own start)


@dataclass
class Experiment:
    """An experiment directory read once: its trials (by index) and exploits (in order)."""

    path: str
    trials: list[TrialRecord]
    exploits: list[ExploitEvent]
    _segments: dict[str, list[Segment]] = field(default_factory=dict, repr=False)

    def trial(self, trial_id: str) -> TrialRecord:
        for t in self.trials:
            if t.trial_id == trial_id:
                return t
        raise KeyError(f"no trial {trial_id!r} in {self.path}; trials: "
                       f"{[t.trial_id for t in self.trials]}")

    def exploits_of(self, trial_id: str) -> list[ExploitEvent]:
        """The exploits whose target is ``trial_id``, in order."""
        return [e for e in self.exploits if e.target_trial_id == trial_id]

    def segments(self, trial_id: str) -> list[Segment]:
        """Split the trial's rows where it restarted, attributing each split to an exploit.

        An exploit ``(T, D)`` shows as a row at iteration ``T`` followed by one at ``D + 1``.
        Other jumps (a failed trial restored from its own checkpoint) start a segment too.
        """
        if trial_id in self._segments:
            return self._segments[trial_id]
        rows, events = self.trial(trial_id).rows, self.exploits_of(trial_id)
        segs, start, nxt, order, event = [], 0, 0, -1, None
        for i in range(1, len(rows)):
            prev, cur = _iteration(rows[i - 1], i - 1), _iteration(rows[i], i)
            jump = cur != prev + 1 or _row_config(rows[i]) != _row_config(rows[i - 1])
            match = next((j for j in range(nxt, min(nxt + 4, len(events)))
                          if events[j].donor_iteration + 1 == cur
                          and (events[j].target_iteration == prev or jump)), None)
            if match is None and not jump:
                continue
            segs.append(Segment(rows[start:i], event, order))
            start = i
            if match is not None:
                event, order, nxt = events[match], events[match].order, match + 1
            else:
                event = None
        if rows:
            segs.append(Segment(rows[start:], event, order))
        self._segments[trial_id] = segs
        return segs

    def donor_row(self, event: ExploitEvent) -> dict[str, Any] | None:
        """The donor's result at ``donor_iteration`` as it stood when it was cloned."""
        found = None
        for seg in self.segments(event.donor_trial_id):
            for pos, row in enumerate(seg.rows):
                if seg.order < event.order and _iteration(row, pos) == event.donor_iteration:
                    found = row
        return found


# -- reading ------------------------------------------------------------------------------
def _locate(path: Any, filesystem: Any = None) -> tuple[Any, str, bool]:
    from poptune.checkpoint import _split_fs

    if filesystem is not None:
        return filesystem, os.fspath(path), "file" in getattr(filesystem, "protocol", ())
    return _split_fs(os.fspath(path))


_GLOBAL_LOG = "pbt_global.txt"  # poptune.storage.pbt_log.GLOBAL_LOG
_EXPERIMENT_DIR = ("an experiment directory (holding journal.jsonl, or trial directories "
                   "with result.json or params.json)")


def _check_path(name: str, value: Any, what: str) -> Any:
    """``value`` if it is a path (``str`` or ``os.PathLike``), else the standard type error."""
    if not isinstance(value, (str, os.PathLike)):
        raise bad_type(name, value, f"the path of {what} (str or os.PathLike)")
    return value


def _bad_path(name: str, value: Any, accepted: str, why: str) -> StorageError:
    """The error for a path argument that names no usable directory: `name` must be
    <accepted>, got <value>: <why>."""
    return StorageError(f"{bad_value(name, os.fspath(value), accepted)}: {why}")


def _exists(fs: Any, path: str, local: bool) -> bool:
    return os.path.exists(path) if local else bool(fs.exists(path))


def _confined(fs: Any, root: str) -> str | None:
    """``root`` if ``fs`` is the local filesystem (then every read stays inside ``root``, see
    :func:`_open`), else None: a remote store has no symlinks or FIFOs to plant."""
    return root if "file" in getattr(fs, "protocol", ()) else None


def _open(fs: Any, path: str, root: str | None, mode: str) -> Any:
    """``path`` opened for reading; with ``root`` (local), only a regular file whose real path
    is inside ``root`` (:func:`poptune.storage.confined.open_under`, what ``poptune ls``/``show``
    and the dashboard read through): a symlink out of it is refused, a FIFO never blocks."""
    if root is None:
        return fs.open(path, mode, **({"encoding": "utf-8"} if mode == "r" else {}))
    from poptune.storage.confined import open_under

    return open_under(root, path, mode, **({"encoding": "utf-8"} if mode == "r" else {}))


def _refused(path: str, exc: OSError) -> None:
    """Say (as a warning) that ``path`` was left unread: it leaves the experiment directory
    or is not a regular file. A directory in a file's place is skipped silently."""
    if not os.path.isdir(path):
        _log.warning("Not read (left out): %s", exc)


def _read_text(fs: Any, path: str, root: str | None = None) -> str | None:
    """The text of ``path``; None if it is missing (or refused: see :func:`_open`)."""
    from poptune.storage.confined import OutsideRootError

    try:
        with _open(fs, path, root, "r") as f:
            return f.read()  # type: ignore[no-any-return]
    except OutsideRootError as exc:
        _refused(path, exc)
        return None
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def _subdirs(fs: Any, path: str, local: bool) -> list[str]:
    """The subdirectories of ``path``; locally, a symlink to a directory is not one (it may
    lead out of the experiment)."""
    if local:
        return sorted(e.name for e in os.scandir(path) if e.is_dir(follow_symlinks=False))
    return sorted(posixpath.basename(str(e["name"]).rstrip("/"))
                  for e in fs.ls(path, detail=True) if e.get("type") == "directory")


def _read_rows(fs: Any, trial_dir: str, root: str | None = None
               ) -> list[dict[str, Any]] | None:
    text = _read_text(fs, trial_dir.rstrip("/") + "/" + RESULT_FILE, root)
    return None if text is None else parse_result_lines(text, trial_dir)


def _safe_unpack(blob: str | None) -> dict[str, Any] | None:
    """Decode a journal config blob without importing anything (no code can run)."""

    class _NoGlobals(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            raise pickle.UnpicklingError(f"{module}.{name}")

        def persistent_load(self, pid: Any) -> Any:
            raise pickle.UnpicklingError("constant")

    try:
        obj = _NoGlobals(io.BytesIO(base64.b64decode(blob or ""))).load()
    except Exception:  # noqa: BLE001 - numpy values, constants: fall back to result rows
        return None
    return obj if isinstance(obj, dict) else None


@dataclass
class _Journal:
    found: bool = False  #: the experiment has a journal
    exp_hex: str | None = None
    trials: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> trial record
    exploits: list[dict[str, Any]] = field(default_factory=list)


def _read_journal(fs: Any, root: str, confine: str | None = None) -> _Journal:
    """The journal's trials and exploits (target, donor, iterations, configs).

    Raises:
        RestoreError: the journal is damaged or not a poptune journal.
    """
    import logging

    from poptune.storage.confined import OutsideRootError
    from poptune.storage.journal import JOURNAL_FILE
    from poptune.storage.records import (
        ConfigChanged,
        ExperimentStarted,
        ResultReported,
        RolledBack,
        TrialCreated,
    )
    from poptune.storage.replay import read_groups

    path = root.rstrip("/") + "/" + JOURNAL_FILE
    try:
        with _open(fs, path, confine, "rb") as f:
            data = f.read()
    except OutsideRootError as exc:
        _refused(path, exc)
        return _Journal()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return _Journal()
    out = _Journal(found=True)
    iters: dict[str, list[int]] = {}
    configs: dict[str, str | None] = {}
    for group in read_groups(data, name=path, tail_log_level=logging.INFO):
        for rec in group:
            if isinstance(rec, ResultReported):
                iters.setdefault(rec.trial_id, []).append(
                    rec.result.get("training_iteration", 0))
            elif isinstance(rec, TrialCreated):
                out.trials[rec.trial_id] = {"id": rec.trial_id, "dirname": rec.dirname,
                                            "path": rec.path, "tag": rec.tag}
                configs[rec.trial_id] = rec.config
            elif isinstance(rec, RolledBack):
                iters[rec.trial_id] = iters.get(rec.trial_id, [])[: rec.rows]
            elif isinstance(rec, ConfigChanged) and rec.restore_path is not None:
                tid = rec.trial_id
                donor = rec.donor if rec.donor is not None else _guess_donor(out, rec)
                out.exploits.append({
                    "target": tid, "donor": donor, "donor_it": rec.restore_iteration,
                    "target_it": (iters.get(tid) or [0])[-1],
                    "old": _safe_unpack(configs.get(donor or "")),
                    "new": _safe_unpack(rec.config)})
                configs[tid] = rec.config
            elif isinstance(rec, ExperimentStarted):
                out.exp_hex = rec.exp_hex
    return out


def _guess_donor(journal: _Journal, rec: Any) -> str | None:
    """The donor of an exploit journaled before schema version 2 (no ``donor`` field): the
    trial whose directory holds the restored checkpoint."""
    path = str(rec.restore_path or "").rstrip("/")
    return next((i for i, t in journal.trials.items()
                 if t.get("dirname") == posixpath.basename(posixpath.dirname(path))
                 or posixpath.dirname(path) == str(t.get("path", "")).rstrip("/")), None)


def _trial_index(trial_id: str, tag: str, fallback: int) -> int:
    match = _ID_INDEX.search(trial_id) or _LEADING_INT.match(tag)
    return int(match.group(1)) if match else fallback


def load_experiment(experiment_dir: str | os.PathLike[str], *,
                    filesystem: Any = None) -> Experiment:
    """Read an experiment directory's trials and exploits once (for plots and dashboards).

    Trial directories are the subdirectories holding ``result.json`` or ``params.json``.
    When the directory holds several runs under one name, only the latest run's trials
    (by the journal's experiment id) are kept.

    Raises:
        TypeError: ``experiment_dir`` is not a path.
        StorageError: ``experiment_dir`` does not exist, or is not an experiment directory
            (it holds no ``journal.jsonl``, no ``pbt_global.txt`` and no trial directory).
        RestoreError: its journal is empty, damaged or not a poptune journal.

    Example:
        >>> import tempfile
        >>> load_experiment(tempfile.mkdtemp())  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        poptune.exceptions.StorageError: `experiment_dir` must be an experiment directory ...
    """
    return _load(experiment_dir, filesystem, strict=True)


def _load(experiment_dir: Any, filesystem: Any, strict: bool) -> Experiment:
    """:func:`load_experiment`; ``strict=False`` reads a directory that holds no experiment
    as one without trials (for ``Result.lineage``)."""
    fs, root, local = _locate(_check_path("experiment_dir", experiment_dir,
                                          "an experiment directory"), filesystem)
    if not (os.path.isdir(root) if local else fs.isdir(root)):
        raise _bad_path("experiment_dir", experiment_dir, "an experiment directory",
                        "it is a file" if (os.path.exists(root) if local else fs.exists(root))
                        else "it does not exist")
    confine = _confined(fs, root)  # every local file read stays inside the experiment
    journal = _read_journal(fs, root, confine)
    by_dirname = {t.get("dirname"): t for t in journal.trials.values()}
    trials: list[TrialRecord] = []
    for name in _subdirs(fs, root, local):
        path = root.rstrip("/") + "/" + name
        rows = _read_rows(fs, path, confine)
        params_text = _read_text(fs, path + "/params.json", confine)
        if rows is None and params_text is None:
            continue
        rows = rows or []
        rec = by_dirname.get(name, {})
        match = _DIR_ID.search(name)
        trial_id = str(rec.get("id") or (rows[-1].get("trial_id") if rows else None)
                       or (match.group(1) if match else name))
        tag = str(rec.get("tag") or (rows[0].get("experiment_tag", "") if rows else ""))
        params = json.loads(params_text) if params_text else None
        trials.append(TrialRecord(trial_id, _trial_index(trial_id, tag, len(trials)), tag,
                                  path, rows, params if isinstance(params, dict) else None))
    if strict and not trials and not journal.found and not _exists(
            fs, root.rstrip("/") + "/" + _GLOBAL_LOG, local):
        raise _bad_path("experiment_dir", experiment_dir, _EXPERIMENT_DIR,
                        "it holds no journal.jsonl, no pbt_global.txt and no trial directory")
    if journal.exp_hex and any(t.trial_id.startswith(journal.exp_hex + "_") for t in trials):
        trials = [t for t in trials if t.trial_id.startswith(journal.exp_hex + "_")]
    trials.sort(key=lambda t: (t.index, t.trial_id))
    exp = Experiment(root, trials, [])
    exp.exploits = _exploits(fs, root, journal, exp, confine)
    return exp


def _exploits(fs: Any, root: str, journal: _Journal, exp: Experiment,
              confine: str | None = None) -> list[ExploitEvent]:
    from poptune.storage.pbt_log import GLOBAL_LOG

    ids = {t.trial_id for t in exp.trials}
    events: list[ExploitEvent] = []
    path = root.rstrip("/") + "/" + GLOBAL_LOG
    text = _read_text(fs, path, confine)
    if text is not None:
        numbered = [(n, raw) for n, raw in enumerate(text.splitlines(), start=1) if raw.strip()]
        if numbered and not text.endswith("\n"):
            numbered.pop()  # a line being written right now
        lines = []
        for number, raw in numbered:
            # the message read_policy_file gives, from the text read here (the file is not
            # opened again: it could have been replaced since)
            try:
                lines.append(json.loads(raw))
            except ValueError:
                raise ValueError(f"Could not read PBT policy file {path}: line {number} is "
                                 "not JSON") from None
            if not isinstance(lines[-1], list) or len(lines[-1]) != 6:
                raise ValueError(
                    f"Could not read PBT policy file {path}: line {number} must be a list "
                    "[target_tag, clone_tag, target_iteration, clone_iteration, clone_config, "
                    f"new_config], got {raw.strip()[:200]}")
        aligned = _align(lines, journal, exp)
        for line, (target, donor) in zip(lines, aligned):
            if target in ids and donor in ids:
                events.append(ExploitEvent(len(events), target, donor, int(line[2]),
                                           int(line[3]), dict(line[4] or {}),
                                           dict(line[5] or {}), str(line[0]), str(line[1])))
        return events
    for rec in journal.exploits:  # no log: the journal's "config" records
        if rec["target"] in ids and rec["donor"] in ids:
            events.append(ExploitEvent(
                len(events), rec["target"], rec["donor"], int(rec["target_it"]),
                rec["donor_it"], rec["old"] or {}, rec["new"] or {},
                exp.trial(rec["target"]).tag, exp.trial(rec["donor"]).tag))
    exp.exploits = events
    for i, ev in enumerate(events):  # configs the safe decoder could not read: from rows
        if not ev.new_config or not ev.old_config:
            seg = next((s for s in exp.segments(ev.target_trial_id) if s.event is ev), None)
            new = ev.new_config or (_row_config(seg.rows[0]) if seg else None) or {}
            old = ev.old_config or _row_config(exp.donor_row(ev) or {}) or {}
            events[i] = ExploitEvent(ev.order, ev.target_trial_id, ev.donor_trial_id,
                                     ev.target_iteration, ev.donor_iteration, old, new,
                                     ev.target_tag, ev.donor_tag)
    exp._segments.clear()
    return events


def _align(lines: list[list[Any]], journal: _Journal,
           exp: Experiment) -> list[tuple[str | None, str | None]]:
    """Trial ids of each log line: the first unused journal exploit record with the same
    trial indices, donor iteration and new config (lines are written when an exploit is
    decided, records when it is carried out, so their order may differ). Without journal
    records: the trials whose index is the tag's leading integer (or whose tag equals it).
    A line no record matches (an exploit never carried out) maps to ``(None, None)``."""

    def index(tag: Any) -> int | None:
        m = _LEADING_INT.match(str(tag))
        return int(m.group(1)) if m else None

    def resolve(tag: Any) -> str | None:
        hits = [t for t in exp.trials if t.index == index(tag) or t.tag == tag]
        hits = hits or (exp.trials if len(exp.trials) == 1 else [])
        return hits[-1].trial_id if hits else None

    recs = journal.exploits
    if not recs:
        return [(resolve(line[0]), resolve(line[1])) for line in lines]
    keys = [(_trial_index(r["target"] or "", "", -1), _trial_index(r["donor"] or "", "", -1),
             r["donor_it"], None if r["new"] is None else _jsonable(r["new"])) for r in recs]
    used, first = [False] * len(recs), 0
    out: list[tuple[str | None, str | None]] = []
    for line in lines:
        want = (index(line[0]), index(line[1]), line[3], _jsonable(line[5]))
        while first < len(recs) and used[first]:
            first += 1
        hit = next((k for k in range(first, len(recs)) if not used[k] and all(
            w is None or g is None or w == g for w, g in zip(want, keys[k]))), None)
        if hit is None:
            out.append((None, None))
        else:
            used[hit] = True
            out.append((recs[hit]["target"], recs[hit]["donor"]))
    return out


def load_exploits(experiment_dir: str | os.PathLike[str]) -> list[ExploitEvent]:
    """Every exploit of a PBT experiment, in the order they happened.

    Read from ``pbt_global.txt`` (tags mapped to trial ids through the journal, else through
    the tag's leading trial index), else from the journal's ``"config"`` records.

    ``[]`` for an experiment without exploits (not run with PBT, or none happened yet).

    Raises:
        TypeError: ``experiment_dir`` is not a path.
        StorageError: ``experiment_dir`` does not exist or is not an experiment directory.

    Example:
        >>> import json, os, tempfile
        >>> trial = os.path.join(tempfile.mkdtemp(), "train_abcde_00000")
        >>> os.makedirs(trial)
        >>> with open(os.path.join(trial, "params.json"), "w") as f:
        ...     json.dump({"lr": 0.1}, f)
        >>> load_exploits(os.path.dirname(trial))
        []
    """
    return load_experiment(experiment_dir).exploits


# -- schedules and lineage ------------------------------------------------------------------
def hyperparam_schedule(trial: PathOrResult) -> Schedule:
    """The configs a trial actually ran, as ``[(k, config), ...]`` from its ``result.json``.

    ``(k, config)``: ``config`` produced iterations ``k + 1, ...`` (the row that first shows
    it has ``training_iteration == k + 1``); the first entry is ``(0, initial_config)``.
    Consecutive equal configs are merged, so an exploit that left the config unchanged
    does not show. Without ``result.json``, ``params.json`` gives ``[(0, config)]``.

    Args:
        trial: a trial directory (path or URI) or a :class:`~poptune.Result`. For an
            experiment directory use :func:`lineage_schedule` (or pass one of its trial
            directories, ``load_experiment(path).trials[i].path``).

    Raises:
        TypeError: ``trial`` is neither a path nor a ``Result``.
        StorageError: the path does not exist or is not a trial directory (it holds no
            ``result.json`` and no ``params.json``; an experiment directory is refused).

    Example:
        >>> import json, os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> with open(os.path.join(d, "result.json"), "w") as f:
        ...     for it, lr in [(1, 0.1), (2, 0.1), (3, 0.2)]:
        ...         _ = f.write(json.dumps({"training_iteration": it, "config": {"lr": lr}}) + "\\n")
        >>> hyperparam_schedule(d)
        [(0, {'lr': 0.1}), (2, {'lr': 0.2})]
    """
    if isinstance(trial, (str, os.PathLike)):
        fs, path, local = _locate(trial)
        confine = path if local else None  # no file read leaves the trial directory
        rows = _read_rows(fs, path, confine)
        if rows is None and _read_text(fs, path.rstrip("/") + "/params.json", confine) is None:
            raise _not_a_trial(fs, path, local, trial)
    elif callable(getattr(trial, "_fs_path", None)):  # a Result
        if not trial.path:  # a Result built in memory
            return []
        fs, path = trial._fs_path()
        confine = _confined(fs, path)
        rows = _read_rows(fs, path, confine)
    else:
        raise bad_type("trial", trial, "a trial directory (str or os.PathLike) or a Result")
    rows = rows or []
    schedule: Schedule = []
    for pos, row in enumerate(rows):
        config = _row_config(row)
        if config is not None and (not schedule or config != schedule[-1][1]):
            schedule.append((max(_iteration(row, pos) - 1, 0), config))
    if not schedule:
        params = _read_text(fs, path.rstrip("/") + "/params.json", confine)
        config = json.loads(params) if params else None
        return [(0, config)] if isinstance(config, dict) else []
    return [(0, schedule[0][1])] + schedule[1:]


def _not_a_trial(fs: Any, path: str, local: bool, trial: Any) -> StorageError:
    """Why ``path`` (holding neither ``result.json`` nor ``params.json``) is no trial."""
    accepted = "a trial directory (holding result.json or params.json) or a Result"
    if not _exists(fs, path, local):
        return _bad_path("trial", trial, accepted, "it does not exist")
    if not (os.path.isdir(path) if local else fs.isdir(path)):
        return _bad_path("trial", trial, accepted, "it is a file")
    base = path.rstrip("/") + "/"
    if _exists(fs, base + "journal.jsonl", local) or _exists(fs, base + _GLOBAL_LOG, local) \
            or any(_exists(fs, base + name + "/" + RESULT_FILE, local)
                   or _exists(fs, base + name + "/params.json", local)
                   for name in _subdirs(fs, path, local)):
        return _bad_path("trial", trial, accepted,
                         "it is an experiment directory; pass one of its trial directories "
                         "(poptune.lineage.load_experiment(path).trials[i].path), or use "
                         "lineage_schedule(path, trial_id)")
    return _bad_path("trial", trial, accepted, "it holds no result.json or params.json")


def _chain(exp: Experiment, trial_id: str) -> list[ExploitEvent]:
    chain: list[ExploitEvent] = []
    current, before, at = trial_id, math.inf, None
    while True:
        cands = [e for e in exp.exploits_of(current) if e.order < before]
        pick = None
        for i in range(len(cands) - 1, -1, -1):
            end = cands[i + 1].target_iteration if i + 1 < len(cands) else math.inf
            if at is None or cands[i].donor_iteration <= at <= end:
                pick = cands[i]
                break
        if pick is None:
            return chain[::-1]
        chain.append(pick)
        current, before, at = pick.donor_trial_id, pick.order, pick.donor_iteration


def lineage(experiment_dir: str | os.PathLike[str], trial_id: str) -> list[ExploitEvent]:
    """The chain of exploits that produced the trial's final model, oldest first.

    Walks back as Ray's replay does: the trial's last exploit, then the exploit that made
    the donor's checkpoint (the donor's latest exploit before that one whose resumed
    timeline contains ``donor_iteration``), and so on. ``[]`` if never exploited.

    Raises:
        KeyError: no trial ``trial_id`` in the experiment.

    Example:
        >>> chain = lineage("~/poptune_results/pbt_exp", "a1b2c_00003")  # doctest: +SKIP
        >>> [(e.donor_trial_id, e.donor_iteration, e.target_trial_id) for e in chain]
        ...  # doctest: +SKIP
        [('a1b2c_00000', 5, 'a1b2c_00001'), ('a1b2c_00001', 10, 'a1b2c_00003')]
    """
    exp = load_experiment(experiment_dir)
    exp.trial(trial_id)
    return _chain(exp, trial_id)


def lineage_schedule(experiment_dir: str | os.PathLike[str], trial_id: str) -> Schedule:
    """The schedule the trial's final model was trained with, across the trials it cloned:
    the root ancestor's initial config at 0, then each chain exploit's ``new_config`` at its
    ``donor_iteration`` (what ``PopulationBasedTrainingReplay`` replays). Of several changes
    at one iteration only the last is kept; equal consecutive configs are merged.

    Raises:
        KeyError: no trial ``trial_id`` in the experiment.

    Example:
        >>> lineage_schedule("~/poptune_results/pbt_exp", "a1b2c_00003")  # doctest: +SKIP
        [(0, {'lr': 0.001}), (5, {'lr': 0.0012}), (10, {'lr': 0.00096})]
    """
    exp = load_experiment(experiment_dir)
    chain = _chain(exp, exp.trial(trial_id).trial_id)
    root = exp.trial(chain[0].donor_trial_id if chain else trial_id)
    out: Schedule = [(0, root.initial_config)]
    for ev in chain:
        if out[-1][0] == ev.donor_iteration:  # superseded before it trained: the later wins
            out.pop()
        if not out or ev.new_config != out[-1][1]:
            out.append((ev.donor_iteration, ev.new_config))
    return out


def family_tree(experiment_dir: str | os.PathLike[str], metric: str | None = None
                ) -> dict[str, Any]:
    """The population as a graph: trials are nodes, exploits are edges donor → target.

    Returns a JSON-serialisable dict::

        {"experiment": name, "metric": metric, "hyperparams": [mutated keys],
         "nodes": [{"id", "index", "tag", "label", "dirname", "iterations",
                    "initial_config", "final_config", "metric"}],
         "edges": [{"order", "source", "target", "source_iteration", "target_iteration",
                    "old_config", "new_config", "changes"}]}

    ``iterations`` is the last reported ``training_iteration``; ``metric`` the last value.

    Raises:
        TypeError: ``experiment_dir`` is not a path.
        StorageError: ``experiment_dir`` does not exist or is not an experiment directory.

    Example:
        >>> import json, os, tempfile
        >>> trial = os.path.join(tempfile.mkdtemp(), "train_abcde_00000")
        >>> os.makedirs(trial)
        >>> with open(os.path.join(trial, "params.json"), "w") as f:
        ...     json.dump({"lr": 0.1}, f)
        >>> family_tree(os.path.dirname(trial))["edges"]
        []
    """
    exp = load_experiment(experiment_dir)
    nodes = [{
        "id": t.trial_id, "index": t.index, "tag": t.tag, "label": t.label,
        "dirname": posixpath.basename(t.path),
        "iterations": _iteration(t.rows[-1], len(t.rows) - 1) if t.rows else 0,
        "initial_config": t.initial_config, "final_config": t.final_config,
        "metric": _lookup(t.rows[-1], metric) if (metric and t.rows) else None,
    } for t in exp.trials]
    edges = [{"order": e.order, "source": e.donor_trial_id, "target": e.target_trial_id,
              "source_iteration": e.donor_iteration, "target_iteration": e.target_iteration,
              "old_config": e.old_config, "new_config": e.new_config,
              "changes": {k: list(v) for k, v in e.changes.items()}} for e in exp.exploits]
    return _jsonable({"experiment": posixpath.basename(exp.path.rstrip("/")), "metric": metric,
                      "hyperparams": mutated_keys(exp), "nodes": nodes, "edges": edges})


def mutated_keys(exp: Experiment) -> list[str]:
    """Flattened config keys that an exploit changed or that differ between trials."""
    keys = {k for e in exp.exploits for k in e.changes}
    finals = [_flatten(t.final_config) for t in exp.trials]
    for k in {k for f in finals for k in f}:
        if len({json.dumps(f.get(k), sort_keys=True, default=repr) for f in finals}) > 1:
            keys.add(k)
    return sorted(keys)


def _result_exploits(result: Result) -> list[ExploitEvent]:
    """Exploits whose target is ``result``'s trial (for ``Result.lineage``)."""
    if not result.path:  # a Result built in memory
        return []
    fs, path = result._fs_path()
    if not path:
        return []
    exp = _load(posixpath.dirname(path.rstrip("/")), fs, strict=False)
    here = [t for t in exp.trials if t.path.rstrip("/") == path.rstrip("/")]
    return exp.exploits_of(here[0].trial_id) if here else []


# -- small helpers ----------------------------------------------------------------------------
def _row_config(row: dict[str, Any]) -> dict[str, Any] | None:
    config = row.get("config")
    return config if isinstance(config, dict) else None


def _iteration(row: dict[str, Any], pos: int) -> int:
    value = row.get("training_iteration")
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) else pos + 1


def _lookup(row: dict[str, Any], key: str) -> Any:
    return nested_get(row, key)


def _flatten(d: dict[str, Any]) -> dict[str, Any]:
    return flatten_dict(d or {})


def _jsonable(obj: Any) -> Any:
    """Plain JSON types only: NaN/inf become None, tuples lists, numpy scalars numbers."""

    def default(o: Any) -> Any:
        item = getattr(o, "item", None)
        return item() if callable(item) else repr(o)

    text = json.dumps(obj, default=default)
    return json.loads(text, parse_constant=lambda _: None)
