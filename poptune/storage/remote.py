"""Experiments on remote storage: any fsspec URI (``s3://bucket/prefix``, ``gs://…``).

The driver works in a local staging copy of the experiment directory and keeps the remote
copy authoritative for what matters after a crash:

* the journal goes up as numbered segments (``journal/0000000001.jsonl``), one per commit,
  *before* the trials that produced those records are answered — a driver killed at any
  moment loses no reported result, and ``Tuner.restore("s3://…")`` works from a fresh machine;
* checkpoints are uploaded by the worker itself, before ``report`` returns;
* everything else (``result.json``, ``progress.csv``, ``params.json``, PBT logs,
  ``tuner.pkl``, ``scheduler_state.pkl``) is synced in the background and at the end.

Example:
    >>> is_remote("s3://bucket/exp"), is_remote("/tmp/exp"), is_remote("file:///tmp/exp")
    (True, False, False)
"""

from __future__ import annotations

import os
import posixpath
import tempfile
import threading
from typing import Any, Callable

from poptune.exceptions import StorageError
from poptune.storage.dirs import STORAGE_MARKER
from poptune.storage.uri import is_remote as is_remote  # re-exported: callers import them
from poptune.storage.uri import local_path as local_path  # from here too

JOURNAL_SEGMENTS = "journal"


class RemoteStorage:
    """One experiment directory on an fsspec filesystem.

    Args:
        uri: the experiment's URI, e.g. ``s3://bucket/prefix/my_exp``.
        filesystem: an fsspec filesystem (default: inferred from ``uri``).
    """

    def __init__(self, uri: str, filesystem: Any = None) -> None:
        import fsspec

        if filesystem is None:
            filesystem, path = fsspec.core.url_to_fs(uri)
        else:
            path = fsspec.core.strip_protocol(uri) if hasattr(fsspec.core, "strip_protocol") else uri
        self.fs = filesystem
        self.uri = uri.rstrip("/")
        self.root = path.rstrip("/")
        self.protocol = uri.split("://", 1)[0]
        self._seq = 0
        self._synced: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()
        #: called before each journal segment is stored; the driver's
        #: :meth:`~poptune.storage.lock.ExperimentOwner.check` (raises once its lease is lost)
        self.guard: Callable[[], None] | None = None

    # paths -------------------------------------------------------------------------------
    def uri_of(self, *parts: str) -> str:
        return posixpath.join(self.uri, *parts)

    def path_of(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def _wrap(self, op: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FileNotFoundError:
            raise
        except Exception as exc:  # noqa: BLE001 - every storage failure gets one clear shape
            raise StorageError(
                f"remote storage {self.uri!r}: {op} failed ({type(exc).__name__}: {exc})"
            ) from exc

    # checks ------------------------------------------------------------------------------
    def check_writable(self) -> None:
        probe = self.path_of(f".poptune_write_test_{os.getpid()}")
        try:
            self._wrap("a test write", self.fs.pipe_file, probe, b"ok")
            self._wrap("a test delete", self.fs.rm, probe)
        except FileNotFoundError as exc:  # e.g. the bucket does not exist
            raise StorageError(
                f"remote storage {self.uri!r} cannot be written ({exc}); check the bucket "
                "name and your credentials (`storage_path`)"
            ) from exc

    def exists(self, *parts: str) -> bool:
        return bool(self._wrap("a lookup", self.fs.exists, self.path_of(*parts)))

    def read_bytes(self, *parts: str) -> bytes:
        """The file at ``parts`` under the root (``FileNotFoundError`` if there is none)."""
        return bytes(self._wrap(f"reading {posixpath.join(*parts)}", self.fs.cat_file,
                                self.path_of(*parts)))

    def subdirectories(self) -> list[str]:
        """Names of the directories directly under the root, sorted (``FileNotFoundError``
        if the root does not exist)."""
        entries = self._wrap("listing the storage", self.fs.ls, self.root, detail=True)
        return sorted(posixpath.basename(str(e["name"]).rstrip("/")) for e in entries
                      if e.get("type") == "directory")

    # journal -----------------------------------------------------------------------------
    def start_journal_after_existing(self) -> None:
        """Number new segments after those already stored (restore)."""
        self._seq = len(self._segments())

    def _segments(self) -> list[str]:
        try:
            names = self._wrap("listing the journal", self.fs.ls, self.path_of(JOURNAL_SEGMENTS),
                               detail=False)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if n.endswith(".jsonl"))

    def journal_length(self) -> int:
        """How many journal segments are stored."""
        return len(self._segments())

    def put_journal_segment(self, data: bytes) -> None:
        """Store one commit's records; called before the trials are answered."""
        if not data:
            return
        if self.guard is not None:
            self.guard()
        with self._lock:
            self._seq += 1
            path = self.path_of(JOURNAL_SEGMENTS, f"{self._seq:010d}.jsonl")
        self._wrap("writing the journal", self.fs.pipe_file, path, data)

    def journal_segments(self) -> list[tuple[str, int]]:
        """The stored journal segments in order, with their sizes in bytes."""
        return [(p, int(self._wrap("reading the journal", self.fs.size, p)))
                for p in self._segments()]

    def cut_journal(self, good_end: int, suffix: str) -> list[str]:
        """Keep the journal's first ``good_end`` bytes: segments past them move to
        ``journal-<suffix>/`` (a segment ``good_end`` falls inside keeps its first part and
        a copy of the whole goes there too). Returns the segments moved or cut."""
        aside = f"{JOURNAL_SEGMENTS}-{suffix}"
        touched: list[str] = []
        start = 0
        for path, size in self.journal_segments():
            end = start + size
            if end > good_end:
                name = posixpath.basename(path)
                keep = max(0, good_end - start)
                if keep:
                    head = self._wrap("reading the journal", self.fs.cat_file, path)[:keep]
                    self._wrap("setting the damaged journal aside", self.fs.copy, path,
                               self.path_of(aside, name))
                    self._wrap("cutting the journal", self.fs.pipe_file, path, head)
                else:
                    self._wrap("setting the damaged journal aside", self.fs.mv, path,
                               self.path_of(aside, name))
                touched.append(name)
            start = end
        return touched

    def set_journal_aside(self, suffix: str) -> bool:
        """Move the stored journal segments to ``journal-<suffix>/`` (a new run under an old
        name); readers and restore only read ``journal/``. True if there was one."""
        segments = self._segments()
        for p in segments:
            self._wrap("setting the old journal aside", self.fs.mv, p,
                       self.path_of(f"{JOURNAL_SEGMENTS}-{suffix}", posixpath.basename(p)))
        self._seq = 0
        return bool(segments)

    def read_journal(self) -> bytes:
        return b"".join(self._wrap("reading the journal", self.fs.cat_file, p)
                        for p in self._segments())

    def journal_modified(self) -> float | None:
        """When the last journal segment was stored (seconds since the epoch), or None when
        there is none or the filesystem does not tell."""
        segments = self._segments()
        if not segments:
            return None
        try:
            return float(self.fs.modified(segments[-1]).timestamp())
        except Exception:  # noqa: BLE001 - not every fsspec filesystem keeps the time
            return None

    # files -------------------------------------------------------------------------------
    def upload_file(self, local: str, *parts: str) -> None:
        self._wrap(f"uploading {parts[-1]}", self.fs.put_file, local, self.path_of(*parts))

    def sync_dir(self, local_dir: str,
                 skip: tuple[str, ...] = ("journal.jsonl", STORAGE_MARKER)) -> None:
        """Upload files of ``local_dir`` that changed since the last sync (not checkpoints)."""
        for dirpath, dirnames, filenames in os.walk(local_dir):
            dirnames[:] = [d for d in dirnames if not d.startswith("checkpoint_")]
            for name in filenames:
                if name in skip or name.endswith(".tmp"):
                    continue
                local = os.path.join(dirpath, name)
                try:
                    st = os.stat(local)
                except FileNotFoundError:
                    continue
                key = (st.st_mtime, st.st_size)
                if self._synced.get(local) == key:
                    continue
                rel = os.path.relpath(local, local_dir).replace(os.sep, "/")
                self.upload_file(local, rel)
                self._synced[local] = key

    def download_experiment(self, local_dir: str, keep: Callable[[str], bool] | None = None,
                            maxdepth: int | None = None) -> None:
        """Fetch everything but checkpoints into ``local_dir`` and rebuild the journal.

        ``keep(relative_path)``, when given, picks which of those files are fetched;
        ``maxdepth`` limits the listing (1: the experiment's own files, 2: also those of its
        trial directories).
        """
        os.makedirs(local_dir, exist_ok=True)
        for path in self._wrap("listing the experiment", self.fs.find, self.root,
                               maxdepth=maxdepth):
            rel = posixpath.relpath(path, self.root)
            top = rel.split("/", 1)[0]
            if (top == JOURNAL_SEGMENTS or top.startswith(JOURNAL_SEGMENTS + "-")
                    or top == ".."  # a key such as "exp/a/../../x" would land outside
                    or "/checkpoint_" in "/" + rel
                    or top.startswith(".driver")  # the lease belongs to the storage only
                    or keep is not None and not keep(rel)):
                continue
            target = os.path.join(local_dir, *rel.split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            self._wrap(f"downloading {rel}", self.fs.get_file, path, target)
        with open(os.path.join(local_dir, "journal.jsonl"), "wb") as f:
            f.write(self.read_journal())

    def rm(self, uri_or_path: str) -> None:
        path = uri_or_path.split("://", 1)[-1] if "://" in uri_or_path else uri_or_path
        try:
            self.fs.rm(path, recursive=True)
        except FileNotFoundError:
            pass


def staging_root() -> str:
    """Where drivers on this machine keep local working copies of remote experiments
    (``$POPTUNE_STAGING_DIR``, default ``poptune_staging`` in the temporary directory)."""
    return os.environ.get("POPTUNE_STAGING_DIR") or os.path.join(tempfile.gettempdir(),
                                                                 "poptune_staging")


def staging_dir(name: str, exp_hex: str) -> str:
    """A local working copy for an experiment stored remotely."""
    path = os.path.join(staging_root(), f"{name}-{exp_hex}")
    os.makedirs(path, exist_ok=True)
    return path


def upload_checkpoint(local_dir: str, uri: str) -> None:
    """Worker side: put a checkpoint directory at ``uri`` (before ``report`` returns)."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    try:
        fs.put(local_dir.rstrip("/") + "/", path, recursive=True)
    except Exception as exc:  # noqa: BLE001
        raise StorageError(f"uploading the checkpoint to {uri!r} failed ({exc})") from exc
