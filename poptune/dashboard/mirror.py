"""A local mirror of experiments on remote storage, kept current for the dashboard.

``poptune dashboard s3://bucket/runs`` (or :func:`poptune.dashboard.serve` given a URI) serves
a temporary local directory (:func:`mirrored`) that a :class:`RemoteMirror` thread brings up
to date every few seconds. For each experiment under
the URI (or the one experiment the URI names) it copies what the dashboard reads:

* the journal: the segments the driver stores, appended in order as new ones appear (a
  journal rewritten on storage, by ``poptune repair`` or a new run under the same name, is
  copied again whole and replaces the local file, so readers start over);
* the driver's lease, so that a live driver shows as ``running`` and a killed one as
  ``interrupted`` once its lease expires;
* ``pbt_global.txt`` (new bytes only), the ``error.txt`` of each trial that failed, and the
  head of ``tuner.pkl``, where the dashboard looks for the metric and mode (never
  unpickling it).

An experiment deleted from storage leaves the mirror too. A run that ended, with no driver
holding it, is looked at only every :data:`QUIET_PASSES` passes: the listings of a bucket
full of finished experiments do not repeat every two seconds.

Checkpoints, results files and everything else stay on storage. Names read from storage
(experiment directories, trial directories) are used only if they are one plain path
component: nothing is written outside the mirror's directory.

Example (an in-memory fsspec filesystem stands in for S3):

    >>> import os, tempfile
    >>> from poptune.storage.journal import Journal
    >>> from poptune.storage.records import ExperimentStarted
    >>> from poptune.storage.remote import RemoteStorage
    >>> path = os.path.join(tempfile.mkdtemp(), "journal.jsonl")
    >>> j = Journal(path); j.append(ExperimentStarted("exp", "f")); j.commit(); j.close()
    >>> RemoteStorage("memory://mirror-doctest/runs/exp").put_journal_segment(open(path, "rb").read())
    >>> mirror = RemoteMirror("memory://mirror-doctest/runs", tempfile.mkdtemp())
    >>> mirror.sync()
    >>> sorted(os.listdir(mirror.local_root))
    ['exp']
    >>> open(os.path.join(mirror.local_root, "exp", "journal.jsonl"), "rb").read() == open(path, "rb").read()
    True
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from poptune.dashboard.data import (
    JOURNAL,
    PBT_GLOBAL,
    RUNNING_WINDOW_S,
    SNIFF_BYTES,
    TUNER_PKL,
)
from poptune.exceptions import RestoreError, StorageError
from poptune.storage.lock import LEASE_FILE, lock_dir, remove_unlocked_dirs
from poptune.storage.records import (
    ExperimentEnded,
    ExperimentStarted,
    StatusChanged,
    TrialCreated,
)
from poptune.storage.remote import JOURNAL_SEGMENTS, RemoteStorage
from poptune.storage.replay import JournalReader

logger = logging.getLogger("poptune")

#: seconds between two passes of the mirror's thread
INTERVAL_S = 2.0
#: the name of a mirror's temporary directory starts with this, then the owner's pid and ``_``
MIRROR_PREFIX = "poptune_dashboard_"
#: an unlocked mirror directory this old (seconds) is a killed dashboard's
STALE_AFTER_S = 60.0
#: passes an ended experiment that no driver holds is left alone before it is looked at
#: again (a finished run changes only when a new run or a repair rewrites it): two requests
#: every 20 s instead of every 2 s for each finished experiment in the bucket (a new run
#: under its name shows within 20 s)
QUIET_PASSES = 10
#: passes an ``error.txt`` is looked for before the journal's message is all there is (the
#: driver uploads trial files every few seconds, after the journal says the trial failed)
ERROR_TRIES = 10


def remove_stale_mirrors(parent: str | None = None) -> list[str]:
    """Remove the mirror directories that ``poptune dashboard`` processes killed outright
    (``kill -9``) left in ``parent`` (the temporary directory); returns their paths.

    A dashboard holds its directory's lock (:func:`~poptune.storage.lock.lock_dir`) from
    just after making it until it has removed it, as a driver holds its socket directory: one
    whose lock is free and that is older than :data:`STALE_AFTER_S` (one made just now is not
    locked yet) is removed (:func:`~poptune.storage.lock.remove_unlocked_dirs`).
    """
    now = time.time()

    def stale(entry: os.DirEntry[str]) -> bool:
        return now - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_S

    return remove_unlocked_dirs(MIRROR_PREFIX, "_", stale,
                                lambda path: shutil.rmtree(path, ignore_errors=True), parent)


def is_plain_name(name: str) -> bool:
    """Whether ``name`` is one path component that stays where it is joined.

    >>> [is_plain_name(n) for n in ("exp", "..", ".", "a/b", "a\\\\b", "")]
    [True, False, False, False, False, False]
    """
    return (bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name
            and "\x00" not in name)


@dataclass
class _Copy:
    """What the mirror holds of one experiment."""

    storage: RemoteStorage
    local: str
    #: the journal segments copied so far, in order: (name, size, version)
    segments: list[tuple[str, int, Any]] = field(default_factory=list)
    pbt_size: int = 0
    tuner_version: Any = None
    #: whether the journal's last run ended (no driver is expected to write again)
    ended: bool = False
    #: the journal's records as the mirror copies them
    reader: JournalReader | None = None
    #: passes to skip before the next look (an ended run without a driver)
    quiet: int = 0
    #: trial id -> its directory's name, from the journal
    dirnames: dict[str, str] = field(default_factory=dict)
    #: trial directory -> passes left to look for its ``error.txt``
    errors: dict[str, int] = field(default_factory=dict)


def _replace(path: str, data: bytes) -> None:
    """Make ``path`` hold ``data``, all at once for a reader (a new file moved in place)."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _version(entry: dict[str, Any]) -> Any:
    """What tells two stored objects of the same name and size apart (S3's ETag, else the
    modification time)."""
    for key in ("ETag", "etag", "LastModified", "mtime", "modified", "created"):
        if entry.get(key) is not None:
            return str(entry[key])
    return None


def _modified(entry: dict[str, Any]) -> float | None:
    value = entry.get("LastModified") or entry.get("mtime") or entry.get("created")
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value.timestamp())
    except AttributeError:
        return None


class RemoteMirror:
    """Keeps ``local_root`` a copy of what the dashboard reads of the experiments at ``uri``.

    Args:
        uri: a storage root holding experiments (``s3://bucket/runs``) or one experiment
            (``s3://bucket/runs/exp``).
        local_root: the local directory the dashboard serves (the mirror writes only there).
        filesystem: an fsspec filesystem (default: inferred from ``uri``).
        interval: seconds between passes of :meth:`start`'s thread.
    """

    def __init__(self, uri: str, local_root: str, filesystem: Any = None,
                 interval: float = INTERVAL_S) -> None:
        self.uri = uri.rstrip("/")
        self.local_root = local_root
        self.interval = interval
        self._root = RemoteStorage(self.uri, filesystem)
        self.fs = self._root.fs
        self._copies: dict[str, _Copy] = {}
        self._single = False  # whether the URI is one experiment
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._said: set[str] = set()

    # -- passes ------------------------------------------------------------------------
    def sync(self) -> None:
        """One pass: find the experiments and bring each copy up to date.

        Raises:
            StorageError: the storage cannot be listed (credentials, network, no such path).
        """
        found = self._experiments()
        for name in set(self._copies) - {name for name, _ in found}:  # deleted on storage
            shutil.rmtree(self._copies.pop(name).local, ignore_errors=True)
        for name, storage in found:
            copy = self._copies.get(name)
            if copy is None:
                copy = self._copies[name] = _Copy(storage, os.path.join(self.local_root, name))
            if copy.quiet > 0:
                copy.quiet -= 1
                continue
            try:
                self._sync_one(copy)
            except Exception as exc:  # noqa: BLE001 - one experiment's trouble: the next pass
                self._say(f"poptune dashboard: {self.uri}/{name} not brought up to date "
                          f"({type(exc).__name__}: {exc}); trying again")

    def _experiments(self) -> list[tuple[str, RemoteStorage]]:
        if not self._single:
            try:
                entries = self._listing(self._root.root, missing_ok=False)
            except StorageError:
                if not self._bucket_exists():
                    raise
                entries = []  # the bucket is there, the first run is still to come
            dirs = [posixpath.basename(str(e["name"]).rstrip("/")) for e in entries
                    if e.get("type") == "directory"]
            # the URI is one experiment once its own journal segments show (asked again
            # until then: the experiment may start later)
            self._single = JOURNAL_SEGMENTS in dirs and bool(
                self._listing(self._root.path_of(JOURNAL_SEGMENTS)))
        if self._single:
            name = posixpath.basename(self.uri)
            return [(name if is_plain_name(name) else "experiment", self._root)]
        return [(name, RemoteStorage(f"{self.uri}/{name}", self.fs))
                for name in dirs if is_plain_name(name)]

    def _bucket_exists(self) -> bool:
        """Whether the URI's bucket (its first path component) exists: then a root with
        nothing under it yet is an empty storage (the first run is still to come)."""
        bucket = self._root.root.strip("/").split("/", 1)[0]
        try:
            return bool(self.fs.exists(bucket if self._root.root[:1] != "/" else "/" + bucket))
        except Exception:  # noqa: BLE001 - unreachable: the listing says how
            return False

    def _listing(self, path: str, missing_ok: bool = True) -> list[dict[str, Any]]:
        """``path``'s entries as the storage has them now (fsspec caches listings)."""
        try:
            self.fs.invalidate_cache(path)
            return list(self.fs.ls(path, detail=True))
        except FileNotFoundError:
            if missing_ok:
                return []
            raise StorageError(f"no such storage path: {self.uri}") from None
        except Exception as exc:  # noqa: BLE001 - credentials, network: one line
            raise StorageError(f"listing {path} failed: {' '.join(str(exc).split())}") from exc

    def _sync_one(self, copy: _Copy) -> None:
        storage = copy.storage
        entries = self._listing(storage.path_of(JOURNAL_SEGMENTS))
        segments = sorted((posixpath.basename(str(e["name"])), int(e.get("size") or 0),
                           _version(e)) for e in entries
                          if str(e["name"]).endswith(".jsonl") and e.get("type") != "directory")
        journal = os.path.join(copy.local, JOURNAL)
        if not segments:
            if copy.segments:  # the journal left storage: the experiment leaves the dashboard
                os.remove(journal)
                copy.segments = []
            return
        os.makedirs(copy.local, exist_ok=True)
        known = len(copy.segments)
        rewritten = segments[:known] != copy.segments
        data = b"".join(self._fetch(storage, segments if rewritten else segments[known:]))
        if rewritten:  # on storage (repair, a new run under the name): copied again whole
            _replace(journal, data)  # a new file: readers see it and start over
            copy.pbt_size = 0
        elif data:
            with open(journal, "ab") as f:
                f.write(data)
        copy.segments = segments
        self._note_records(copy, journal)
        newest = max((m for e in entries if (m := _modified(e)) is not None), default=None)
        top = {posixpath.basename(str(e["name"]).rstrip("/")): e
               for e in self._listing(storage.root)}
        self._copy_lease(copy, LEASE_FILE in top, journal, newest, copy.ended)
        pbt = top.get(PBT_GLOBAL)
        if pbt is not None:
            self._copy_pbt(copy, int(pbt.get("size") or 0))
        tuner = top.get(TUNER_PKL)
        if tuner is not None and _version(tuner) != copy.tuner_version:
            self._copy_head(copy, TUNER_PKL, SNIFF_BYTES)  # all the dashboard reads of it
            copy.tuner_version = _version(tuner)
        self._copy_errors(copy)

    def _fetch(self, storage: RemoteStorage, segments: list[tuple[str, int, Any]]) -> list[bytes]:
        return [storage.read_bytes(JOURNAL_SEGMENTS, name) for name, _, _ in segments]

    def _note_records(self, copy: _Copy, journal: str) -> None:
        """What the mirror needs from the records committed since the last pass, read by the
        replay every reader uses: trial directories, failed trials (their errors to fetch)
        and whether the run ended."""
        if copy.reader is None:
            copy.reader = JournalReader(journal)
        try:
            groups, restarted = copy.reader.read()
        except RestoreError:  # no valid header: the dashboard says so; nothing to note
            return
        if restarted:
            copy.dirnames.clear()
            copy.errors.clear()
            copy.ended = False
        for group in groups:
            for rec in group:
                if isinstance(rec, TrialCreated):
                    copy.dirnames[rec.trial_id] = rec.dirname
                elif isinstance(rec, StatusChanged) and rec.status == "ERROR":
                    dirname = copy.dirnames.get(rec.trial_id)
                    if dirname is not None and is_plain_name(dirname):
                        copy.errors[dirname] = ERROR_TRIES
                elif isinstance(rec, (ExperimentStarted, ExperimentEnded)):
                    copy.ended = isinstance(rec, ExperimentEnded)  # a restore starts a run

    def _copy_lease(self, copy: _Copy, exists: bool, journal: str,
                    modified: float | None, ended: bool) -> None:
        """The driver's lease as it is on storage, and the journal's time: the last
        segment's, but made old enough not to count as recent when no driver holds the
        experiment and its run did not end (it was interrupted)."""
        local = os.path.join(copy.local, LEASE_FILE)
        lease = None
        if exists:
            try:
                lease = copy.storage.read_bytes(LEASE_FILE)
            except FileNotFoundError:  # released since the listing
                lease = None
        if lease is None:
            try:
                os.remove(local)
            except FileNotFoundError:
                pass
        else:
            _replace(local, lease)
        stamp = modified if modified is not None else time.time()
        if lease is None and not ended:  # every driver on remote storage holds a lease
            stamp = min(stamp, time.time() - 2 * RUNNING_WINDOW_S)
        os.utime(journal, (stamp, stamp))
        copy.quiet = QUIET_PASSES if lease is None and ended else 0

    def _copy_pbt(self, copy: _Copy, size: int) -> None:
        local = os.path.join(copy.local, PBT_GLOBAL)
        if size == copy.pbt_size:
            return
        path = copy.storage.path_of(PBT_GLOBAL)
        try:
            if size > copy.pbt_size:
                data = self.fs.cat_file(path, start=copy.pbt_size, end=size)
                with open(local, "ab") as f:
                    f.write(data)
            else:  # rewritten: again whole
                data = self.fs.cat_file(path)
                _replace(local, data)
                size = len(data)
        except FileNotFoundError:
            return
        copy.pbt_size = size

    def _copy_head(self, copy: _Copy, name: str, limit: int) -> None:
        """The first ``limit`` bytes of the experiment's file ``name``."""
        try:
            data = self.fs.cat_file(copy.storage.path_of(name), start=0, end=limit)
        except FileNotFoundError:
            return
        _replace(os.path.join(copy.local, name), data)

    def _copy_errors(self, copy: _Copy) -> None:
        for dirname, tries in list(copy.errors.items()):
            try:
                data = copy.storage.read_bytes(dirname, "error.txt")
            except (FileNotFoundError, StorageError):
                if tries <= 1:
                    del copy.errors[dirname]  # the journal's message stands in
                else:
                    copy.errors[dirname] = tries - 1
                continue
            trial_dir = os.path.join(copy.local, dirname)
            os.makedirs(trial_dir, exist_ok=True)
            _replace(os.path.join(trial_dir, "error.txt"), data)
            del copy.errors[dirname]

    def _say(self, message: str) -> None:
        if message not in self._said:
            self._said.add(message)
            logger.warning("%s", message)

    # -- the thread --------------------------------------------------------------------
    def start(self) -> None:
        """Sync now (errors raise), then every :attr:`interval` seconds in a daemon thread
        (errors are logged once each and retried)."""
        self.sync()
        self._thread = threading.Thread(target=self._run, name="poptune-mirror", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sync()
            except Exception as exc:  # noqa: BLE001 - the storage is away: the next pass
                self._say(f"poptune dashboard: {self.uri} not brought up to date "
                          f"({type(exc).__name__}: {exc}); trying again")

    def close(self) -> None:
        """Stop the thread (the local copy stays; its owner removes it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None


@contextlib.contextmanager
def mirrored(uri: str, filesystem: Any = None) -> Iterator[str]:
    """A temporary local mirror of ``uri``, current while the ``with`` block runs (a thread
    syncs it every :data:`INTERVAL_S` seconds), removed at its end.

    The directory is ``$TMPDIR/poptune_dashboard_<pid>_*``, locked while it exists; those of
    dashboards killed outright are removed first. In the main thread, SIGTERM and SIGHUP end the block with
    ``SystemExit`` (uvicorn hands a SIGTERM on to the handler it found once it stopped), so
    the mirror goes with the process.

    Raises:
        StorageError: the first sync could not list the storage.
    """
    remove_stale_mirrors()
    local = tempfile.mkdtemp(prefix=f"{MIRROR_PREFIX}{os.getpid()}_")
    held = lock_dir(local)  # while it exists: see remove_stale_mirrors
    mirror = RemoteMirror(uri, local, filesystem)
    signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGHUP)
    if threading.current_thread() is not threading.main_thread():  # handlers: main only
        signals = ()
    previous = {sig: signal.getsignal(sig) for sig in signals}
    try:
        for sig in signals:
            signal.signal(sig, _exit_on_signal)
        mirror.start()
        yield local
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        mirror.close()
        shutil.rmtree(local, ignore_errors=True)
        if held is not None:
            os.close(held)


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)
