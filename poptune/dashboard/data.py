"""Read-only view of experiment directories, kept current by tailing each journal.

Shared by the web dashboard and the ``poptune ls``/``show`` commands. Nothing here writes,
executes or unpickles: the journal and ``pbt_global.txt`` are JSON lines, trial configs come
from ``params.json`` plus the logged exploits, and ``metric``/``mode`` are read from
``tuner.pkl`` by *scanning* its opcodes (:func:`sniff_metric_mode`), never by loading it.

Each :class:`ExperimentView` reads ``journal.jsonl`` through a
:class:`~poptune.storage.replay.JournalReader` (verified, committed groups only) and keeps a
byte offset into ``pbt_global.txt``; :meth:`ExperimentView.refresh` parses only what was
appended since the last call, so polling once a second is cheap. A damaged journal is shown
up to the damage, with :attr:`ExperimentView.damage` saying where it is. Names from requests go through
:func:`resolve_inside`, which rejects anything that would leave the storage root.

Example:
    >>> view = ExperimentView("~/poptune_results/my_exp")   # doctest: +SKIP
    >>> view.refresh(); view.summary()["status"]            # doctest: +SKIP
    'finished'
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import pickletools
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from poptune.exceptions import RestoreError
from poptune.result import NON_METRIC_KEYS
from poptune.storage.confined import OutsideRootError, is_file_under, open_under
from poptune.storage.lock import driver_alive
from poptune.storage.records import (
    ConfigChanged,
    ExperimentEnded,
    ExperimentStarted,
    Record,
    ResultReported,
    RolledBack,
    StatusChanged,
    TrialCreated,
)
from poptune.storage.replay import JournalReader
from poptune.storage.trial_logs import flatten

JOURNAL = "journal.jsonl"
PBT_GLOBAL = "pbt_global.txt"
TUNER_PKL = "tuner.pkl"
#: how much of ``tuner.pkl`` is looked through for metric and mode
SNIFF_BYTES = 4 << 20
#: an experiment without an ``end`` record whose journal changed this recently is running
#: (used only when no lock or lease file tells whether a live driver holds it)
RUNNING_WINDOW_S = 10.0
#: result keys that are bookkeeping, not metrics worth plotting
NON_METRICS = NON_METRIC_KEYS
_BAD_CHARS = re.compile(r"[/\\\x00-\x1f\x7f]")


class PathError(ValueError):
    """A name from a request is malformed or resolves outside the storage root."""


def resolve_inside(root: str, *names: str, hidden: bool = False) -> str:
    """``root/names...`` with symlinks resolved; :class:`PathError` if it leaves ``root``.

    Each name must be one plain path component: no separator or control character, not
    empty, not starting with ``.`` (so not ``..``; with ``hidden``, a name such as ``.x`` is
    accepted, ``.`` and ``..`` are not), at most 255 characters.

    >>> resolve_inside("/tmp", "..", hidden=True)
    Traceback (most recent call last):
    ...
    poptune.dashboard.data.PathError: invalid name '..'
    """
    for name in names:
        if (not isinstance(name, str) or not name or len(name) > 255
                or (name in (".", "..") if hidden else name.startswith("."))
                or _BAD_CHARS.search(name)):
            raise PathError(f"invalid name {name!r}")
    base = os.path.realpath(root)
    path = os.path.realpath(os.path.join(base, *names))
    if path == base or os.path.commonpath([base, path]) != base:
        raise PathError(f"{'/'.join(names)!r} resolves outside the storage root")
    return path


def finite(value: Any) -> float | int | None:
    """``value`` if it is a finite real number (ints stay ints), else None (JSON has no NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int):
        return value
    return float(value) if math.isfinite(value) else None


_MEMO_PUT = {"BINPUT", "LONG_BINPUT", "PUT"}
_MEMO_GET = {"BINGET", "LONG_BINGET", "GET"}


def sniff_metric_mode(path: str, limit: int = SNIFF_BYTES, *, root: str | None = None
                      ) -> tuple[str | None, str | None]:
    """``(metric, mode)`` of the TuneConfig (or else the scheduler) pickled in ``tuner.pkl``.

    Walks the pickle's opcodes with :func:`pickletools.genops`, which only decodes the stream:
    no object is built and no code runs. Returns ``(None, None)`` when nothing is found, or
    when ``path`` resolves outside ``root`` (default: its own directory).
    """
    try:
        with open_under(root or os.path.dirname(os.path.abspath(path)), path) as f:
            data = f.read(limit)
    except OSError:
        return None, None
    values: list[Any] = []  # the string/None values pushed, in order
    memo: dict[int, Any] = {}
    last: Any = object()
    try:
        for op, arg, _ in pickletools.genops(io.BytesIO(data)):
            if op.name == "MEMOIZE":
                memo[len(memo)] = last
                continue
            if op.name in _MEMO_PUT:
                memo[int(arg or 0)] = last
                continue
            if op.name in _MEMO_GET:
                last = memo.get(int(arg or 0))
            elif op.name == "NONE" or isinstance(arg, str) and "UNICODE" in op.name:
                last = arg
            else:
                last = object()
            values.append(last)
    except Exception:  # noqa: BLE001, S110 - truncated or foreign data: use what was decoded
        pass
    found: dict[str, Any] = {}
    start = values.index("TuneConfig") if "TuneConfig" in values else len(values)
    for i, key in enumerate(values[:-1]):  # "metric" after TuneConfig; scheduler's "_metric"
        if key in ("_metric", "_mode") or (key in ("metric", "mode") and i > start):
            found.setdefault(key, values[i + 1] if isinstance(values[i + 1], str) else None)
    metric = found.get("metric") or found.get("_metric")
    mode = found.get("mode") or found.get("_mode")
    return metric, mode if mode in ("min", "max") else None


class _Tail:
    """Complete lines appended to a file since the last call (a partial line waits)."""

    def __init__(self, path: str, root: str) -> None:
        self.path, self.root = path, root
        self.offset = 0

    def read(self) -> tuple[list[bytes], bool]:
        """New complete lines, and whether the file shrank (the caller must start over)."""
        try:
            size = os.path.getsize(self.path)
        except OSError:
            return [], False
        if size < self.offset:
            self.offset = 0
            return [], True
        if size == self.offset:
            return [], False
        try:
            f = open_under(self.root, self.path)
        except OSError:  # gone, or leads outside the experiment: nothing to read
            return [], False
        with f:
            f.seek(self.offset)
            data = f.read(size - self.offset)
        end = data.rfind(b"\n") + 1
        self.offset += end
        return data[:end].splitlines(), False


def _parse(lines: list[bytes]) -> Iterator[Any]:
    """The JSON values of ``lines``, skipping any line that is not JSON."""
    for raw in lines:
        try:
            yield json.loads(raw)
        except ValueError:
            continue


@dataclass
class TrialView:
    """One trial as the journal describes it."""

    trial_id: str
    tag: str
    dirname: str
    name: str | None = None
    status: str = "PENDING"
    rows: list[dict[str, float | int | None]] = field(default_factory=list)
    last: dict[str, Any] = field(default_factory=dict)  # the last result, JSON scalars only
    epoch: int = 0  # bumped when results are rolled back, so clients refetch
    error: str | None = None
    failures: int = 0
    initial_config: dict[str, Any] | None = None
    exploits: list[int] = field(default_factory=list)  # indexes into ExperimentView.exploits
    breaks: list[int] = field(default_factory=list)  # row indexes where a restored model starts
    #: the :attr:`ExperimentView.version` at which this trial's table row last changed
    changed: int = 0
    #: its initial config could not be read yet (reading it later changes its row)
    config_missing: bool = False


class ExperimentView:
    """Incrementally parsed state of one experiment directory.

    Every file it reads must really be inside the directory (symlinks resolved, see
    :func:`poptune.storage.confined.open_under`): one that leads outside is not read.
    """

    def __init__(self, path: str) -> None:
        self.path = os.path.realpath(path)
        self.name = os.path.basename(os.path.abspath(path))
        self.lock = threading.Lock()
        #: bumped whenever what the view shows may have changed (a committed journal group,
        #: a ``pbt_global.txt`` line, a damage note, a trial config read late); never goes
        #: back, also not when the journal is re-read from its start
        self.version = 0
        #: tells this view's versions from another's (a restarted server, a replaced view)
        self.token = secrets.token_hex(6)
        #: answers computed from this view, for the web server (see :meth:`state`)
        self.cache: dict[Any, Any] = {}
        self._stamp = 0  # the version records applied by the running refresh() get
        self._base = 0  # versions before this one describe trials read before a restart
        self._reset()

    def _reset(self) -> None:
        self._journal = JournalReader(os.path.join(self.path, JOURNAL), root=self.path)
        #: why the journal cannot be read further (damage, no header), or None
        self.damage: str | None = None
        self._pbt = _Tail(os.path.join(self.path, PBT_GLOBAL), self.path)
        self.runs: list[dict[str, Any]] = []
        self.header: dict[str, Any] = {}
        self.finished = False
        self.trials: dict[str, TrialView] = {}
        self._by_dirname: dict[str, str] = {}
        self.exploits: list[dict[str, Any]] = []
        self._unmatched: list[int] = []
        self._pbt_lines: list[list[Any]] = []
        self.metric_keys: dict[str, None] = {}
        self.num_results = 0
        self._sniffed: tuple[float, tuple[str | None, str | None]] | None = None

    # -- ingest -------------------------------------------------------------------------
    def refresh(self) -> None:
        """Parse what was committed to the journal and appended to ``pbt_global.txt``;
        :attr:`version` goes up if anything was."""
        with self.lock:
            self._stamp = self.version + 1
            damage_before = self.damage
            changed = False
            try:
                groups, restarted = self._journal.read()
                if restarted:  # truncated (a torn tail cut on restore, a repair): start over
                    self._reset()
                    self._base, changed = self._stamp, True
                    groups, _ = self._journal.read()
            except RestoreError as exc:  # not a poptune journal, or a newer schema
                groups, self.damage = [], str(exc)
            except OutsideRootError as exc:  # a symlink out of the experiment: not read
                groups, self.damage = [], f"{JOURNAL} not read: {exc}"
            else:
                damage = self._journal.damage
                self.damage = damage.describe() if damage is not None else None
            for group in groups:
                for rec in group:
                    self._apply(rec)
                changed = True
            for line in _parse(self._pbt.read()[0]):
                if isinstance(line, list) and len(line) == 6:
                    self._pbt_lines.append(line)
                    changed = True
            if self._unmatched and self._pbt_lines:
                self._match_exploits()
            if changed or self.damage != damage_before:
                self.version = self._stamp

    def state(self) -> tuple[Any, ...]:
        """What every answer about this view depends on besides the request: equal states
        give equal answers, so a web server may reuse one (call :meth:`refresh` first).

        The :attr:`version`, the experiment's status (a running experiment turns
        interrupted without writing), metric and mode (``tuner.pkl``) and the journal's
        modification time. For a finished experiment nothing of it changes until the
        journal does.
        """
        journal = os.path.join(self.path, JOURNAL)
        try:
            modified: float | None = os.path.getmtime(journal)
        except OSError:
            modified = None
        return (self.token, self.version, self.status(), self.metric_mode(), modified)

    def _apply(self, rec: Record) -> None:
        if isinstance(rec, ResultReported):
            t = self.trials.get(rec.trial_id)
            if t is None:
                return
            flat = flatten(rec.result)
            row = {}
            for k, v in flat.items():
                num = finite(v)
                if num is not None or v is None or isinstance(v, float):
                    row[k] = num
                    if k not in NON_METRICS and k not in self.metric_keys:
                        self.metric_keys[k] = None
            t.rows.append(row)
            t.last = {k: v for k, v in flat.items()
                      if v is None or isinstance(v, (str, bool)) or finite(v) is not None}
            t.changed = self._stamp
            self.num_results += 1
        elif isinstance(rec, StatusChanged):
            t = self.trials.get(rec.trial_id)
            if t is None:
                return
            t.status, t.changed = rec.status, self._stamp
            if rec.failures is not None:
                t.failures = rec.failures
                if t.status in ("ERROR", "PENDING"):
                    t.error = rec.message
        elif isinstance(rec, ConfigChanged):
            t = self.trials.get(rec.trial_id)
            if t is not None:
                t.changed = self._stamp
                self._add_exploit(t, rec)
        elif isinstance(rec, RolledBack):
            t = self.trials.get(rec.trial_id)
            if t is None:
                return
            del t.rows[rec.rows:]
            t.breaks = [b for b in t.breaks if b < len(t.rows)]
            t.last = dict(t.rows[-1]) if t.rows else {}
            t.epoch += 1
            t.changed = self._stamp
        elif isinstance(rec, TrialCreated):
            tv = TrialView(rec.trial_id, rec.tag, rec.dirname, rec.name, changed=self._stamp)
            self.trials[tv.trial_id] = tv
            self._by_dirname[rec.dirname] = tv.trial_id
        elif isinstance(rec, ExperimentStarted):
            self.runs.append({"start": rec.start, "trainable": rec.trainable})
            self.header = {**self.header, **rec.encode()}
            self.finished = False
        elif isinstance(rec, ExperimentEnded):
            self.finished = True

    def _add_exploit(self, t: TrialView, rec: ConfigChanged) -> None:
        donor = rec.donor
        if donor is None or donor not in self.trials:  # journals before schema version 2
            ckpt = str(rec.restore_path or "")
            donor = self._by_dirname.get(os.path.basename(os.path.dirname(ckpt)), t.trial_id)
        index = len(self.exploits)
        self.exploits.append({
            "id": index, "target": t.trial_id, "donor": donor,
            "target_iter": (t.rows[-1].get("training_iteration") if t.rows else 0),
            "donor_iter": rec.restore_iteration if rec.restore_path is not None else None,
            "donor_config": None, "new_config": None})
        t.exploits.append(index)
        t.breaks.append(len(t.rows))
        self._unmatched.append(index)

    def _match_exploits(self) -> None:
        """Pair exploits with their ``pbt_global.txt`` lines (which carry the configs)."""
        still: list[int] = []
        for idx in self._unmatched:
            ev = self.exploits[idx]
            tags = (self.trials[ev["target"]].tag, self.trials[ev["donor"]].tag)
            for i, line in enumerate(self._pbt_lines):
                if (str(line[0]), str(line[1])) == tags and line[3] == ev["donor_iter"]:
                    ev["donor_config"], ev["new_config"] = line[4], line[5]
                    self.trials[ev["target"]].changed = self._stamp  # its config changed
                    del self._pbt_lines[i]
                    break
            else:
                still.append(idx)
        self._unmatched = still

    # -- queries (call refresh() first) ---------------------------------------------------
    def trial_dir(self, trial_id: str) -> str:
        """The trial's directory, guaranteed to be inside the experiment directory."""
        t = self.trials.get(trial_id)
        if t is None:
            raise KeyError(trial_id)
        return resolve_inside(self.path, t.dirname)

    def initial_config(self, t: TrialView) -> dict[str, Any] | None:
        """The config the trial started with: its first result's (``params.json`` holds the
        latest config, rewritten after an exploit as Ray's logger does), else
        ``params.json`` (no result yet, so no exploit either)."""
        if t.initial_config is None:
            try:
                trial_dir = self.trial_dir(t.trial_id)
                cfg = None
                with contextlib.suppress(OSError, ValueError, PathError, AttributeError):
                    with open_under(self.path, os.path.join(trial_dir, "result.json"),
                                    "r") as f:
                        first = f.readline()
                    cfg = json.loads(first).get("config") if first.strip() else None
                if not isinstance(cfg, dict):
                    with open_under(self.path, os.path.join(trial_dir, "params.json"),
                                    "r") as f:
                        cfg = json.load(f)
                t.initial_config = cfg if isinstance(cfg, dict) else None
            except (OSError, ValueError, PathError):
                t.initial_config = None
            if t.initial_config is None:
                t.config_missing = True
            elif t.config_missing:  # read late: rows and answers sent before lack it
                t.config_missing = False
                self.version += 1
                t.changed = self.version
        return t.initial_config

    def config_before(self, t: TrialView, event_index: int) -> dict[str, Any] | None:
        """``t``'s config just before the exploit ``event_index`` (or its latest if None)."""
        config = self.initial_config(t)
        for idx in t.exploits:
            if idx == event_index:
                break
            config = self.exploits[idx]["new_config"] or config
        return config

    def current_config(self, t: TrialView) -> dict[str, Any] | None:
        return self.config_before(t, -1)

    def metric_mode(self, metric: str | None = None, mode: str | None = None
                    ) -> tuple[str | None, str | None]:
        """Explicit values win, then the journal's ``exp`` record, then ``tuner.pkl``."""
        if metric and mode:
            return metric, mode
        pkl = os.path.join(self.path, TUNER_PKL)
        try:
            mtime = os.path.getmtime(pkl)
        except OSError:
            mtime = -1.0
        if self._sniffed is None or self._sniffed[0] != mtime:
            self._sniffed = (mtime, sniff_metric_mode(pkl, root=self.path))
        m = metric or self.header.get("metric") or self._sniffed[1][0]
        md = mode or self.header.get("mode") or self._sniffed[1][1]
        return m, md if md in ("min", "max") else None

    def status(self, now: float | None = None) -> str:
        """``finished`` (an ``end`` record closes the last run), ``running`` or ``interrupted``.

        Unfinished: ``running`` while a live driver holds the experiment's lock or lease,
        however long its trials have been silent (hung trials write nothing); without a lock
        or lease file to tell by (a copy of remote storage), ``running`` while the journal
        changed within :data:`RUNNING_WINDOW_S` seconds.
        """
        if self.finished:
            return "finished"
        live = driver_alive(self.path, now)
        if live is not None:
            return "running" if live else "interrupted"
        try:
            age = (now or time.time()) - os.path.getmtime(os.path.join(self.path, JOURNAL))
        except OSError:
            return "interrupted"
        return "running" if age <= RUNNING_WINDOW_S else "interrupted"

    def best(self, metric: str | None, mode: str | None) -> dict[str, Any] | None:
        """The trial whose last reported ``metric`` is best, or None."""
        if not metric or mode not in ("min", "max"):
            return None
        scored = [(v, t.trial_id) for t in self.trials.values()
                  if (v := finite(t.last.get(metric))) is not None]
        if not scored:
            return None
        value, trial = (max if mode == "max" else min)(scored, key=lambda vt: vt[0])
        return {"trial": trial, "value": value}

    def summary(self, metric: str | None = None, mode: str | None = None) -> dict[str, Any]:
        metric, mode = self.metric_mode(metric, mode)
        counts = dict(Counter(t.status for t in self.trials.values()))
        journal = os.path.join(self.path, JOURNAL)
        modified = os.path.getmtime(journal) if os.path.exists(journal) else None
        return {"name": self.name, "status": self.status(), "start": self.header.get("start"),
                "clock": self.header.get("clock"), "modified": modified, "trainable": self.header.get("trainable"),
                "runs": len(self.runs), "num_trials": len(self.trials), "counts": counts,
                "num_results": self.num_results, "num_exploits": len(self.exploits),
                "metric": metric, "mode": mode, "best": self.best(metric, mode),
                "damage": self.damage}

    def trial_rows(self, metric: str | None, since: int | None = None,
                   last: bool = True) -> list[dict[str, Any]]:
        """One JSON-able dict per trial for the trial table, in the order trials were
        created.

        Args:
            metric: the metric each row's ``metric`` holds.
            since: only the rows of trials that changed after this :attr:`version` (all
                rows if it is older than the last restart of the journal, see
                :meth:`rows_since_valid`).
            last: include each trial's whole last result (``last``).
        """
        if since is not None and not self.rows_since_valid(since):
            since = None
        for t in self.trials.values():
            if t.config_missing:  # try again: one read now marks its row changed
                self.initial_config(t)
        return [{"id": t.trial_id, "name": t.name or t.trial_id, "tag": t.tag,
                 "dirname": t.dirname, "status": t.status,
                 "iteration": t.last.get("training_iteration", 0) if t.last else 0,
                 "metric": finite(t.last.get(metric)) if metric else None,
                 **({"last": t.last} if last else {}),
                 "config": self.current_config(t), "error": t.error,
                 "failures": t.failures, "num_exploits": len(t.exploits), "epoch": t.epoch}
                for t in self.trials.values() if since is None or t.changed > since]

    def rows_since_valid(self, since: int) -> bool:
        """Whether rows changed after version ``since`` are all a client that has the rows
        of version ``since`` needs (False: it must start over, the journal was re-read)."""
        return self._base <= since <= self.version

    def series(self, trial_id: str, metric: str, x: str = "training_iteration",
               since: int = 0, epoch: int | None = None) -> dict[str, Any]:
        """Points ``[x, y]`` of ``metric`` from result ``since`` on (all if ``epoch`` is stale).

        ``breaks`` are the indexes of points where the trial continues from another model
        (a PBT exploit), so a chart does not join them to the previous point.
        """
        t = self.trials[trial_id]
        if epoch is not None and epoch != t.epoch or since > len(t.rows) or since < 0:
            since = 0
        points = [[r.get(x), r.get(metric)] for r in t.rows[since:]]
        return {"epoch": t.epoch, "from": since, "next": len(t.rows), "points": points,
                "breaks": [b for b in t.breaks if b >= since]}

    def error_text(self, trial_id: str, limit: int = 200_000) -> str | None:
        """The trial's ``error.txt`` (else the journal's message).

        Raises:
            OutsideRootError: ``error.txt`` leads outside the experiment directory.
        """
        path = os.path.join(self.trial_dir(trial_id), "error.txt")
        try:
            with open_under(self.path, path, "r", encoding="utf-8", errors="replace") as f:
                return f.read(limit)
        except OutsideRootError:
            raise
        except OSError:
            return self.trials[trial_id].error


def experiment_names(root: str) -> list[str]:
    """Names of the experiment directories (those holding a journal) directly under ``root``,
    sorted; a name may start with ``.`` (``RunConfig(name=".x")`` is accepted, as by Ray).
    Symlinks that lead outside ``root``, and a journal that is not a regular file inside its
    experiment, are left out."""
    try:
        entries = sorted(os.listdir(root))
    except OSError:
        return []
    out = []
    for name in entries:
        try:
            path = resolve_inside(root, name, hidden=True)
            if is_file_under(path, os.path.join(path, JOURNAL)):
                out.append(name)
        except PathError:
            continue
    return out
