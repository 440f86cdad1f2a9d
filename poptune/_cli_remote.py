"""Remote storage (fsspec URIs) for the ``poptune`` command: which arguments name a remote
experiment, and a temporary local copy of one that ``ls``/``show``/``plot`` read with the same
journal replay as a local experiment.

Example:
    >>> remote_experiment("exp", "s3://bucket/runs")
    's3://bucket/runs/exp'
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import time
from collections.abc import Iterator
from typing import Any

from poptune.cli import UsageError
from poptune.exceptions import StorageError


def storage_uri(storage: str | None) -> str | None:
    """The storage root (``storage``, else ``$POPTUNE_STORAGE_PATH``) if it is a URI, else None."""
    from poptune.config import default_storage_path
    from poptune.storage.remote import is_remote

    root = storage or default_storage_path()
    return root.rstrip("/") if is_remote(root) else None


def remote_experiment(arg: str, storage: str | None) -> str | None:
    """The URI of the experiment ``arg`` names on remote storage (a URI, or a name under a
    storage URI that is not also a local experiment), or None for a local experiment.

    >>> remote_experiment("s3://b/runs/exp/", None), remote_experiment("exp", "s3://b/runs")
    ('s3://b/runs/exp', 's3://b/runs/exp')
    >>> remote_experiment("/tmp/exp", "s3://b/runs") is None
    True
    """
    from poptune.storage.remote import is_remote

    if is_remote(arg):
        return arg.rstrip("/")
    root = storage_uri(storage)
    local = os.path.expanduser(arg)
    if root is None or os.path.isabs(local) or os.path.isfile(
            os.path.join(local, "journal.jsonl")):
        return None
    return posixpath.join(root, arg)


def open_remote(uri: str, filesystem: Any = None) -> Any:
    """A :class:`~poptune.storage.remote.RemoteStorage` for ``uri``; a missing filesystem
    package (s3fs, gcsfs) is a :class:`~poptune._imports.MissingDependencyError` with the
    pip command, an unknown protocol a usage error."""
    from poptune.storage.remote import RemoteStorage

    try:
        return RemoteStorage(uri, filesystem)
    except ImportError:
        from fsspec.registry import known_implementations

        from poptune._imports import require

        impl = known_implementations.get(uri.split("://", 1)[0], {})
        require(str(impl.get("class", "fsspec")).split(".")[0], f"storage at {uri}")
        raise
    except ValueError as exc:  # fsspec: "Protocol not known: ..."
        raise UsageError(f"cannot read {uri}: {exc}") from None


def one_line(exc: Exception) -> StorageError:
    return StorageError(" ".join(str(exc).split()))


#: what each command downloads besides the journal: (listing depth, files to keep)
_TOP_FILES = ("tuner.pkl", "pbt_global.txt")
_COPIES: dict[str, tuple[int | None, Any]] = {
    "summary": (1, lambda rel: rel in _TOP_FILES),  # ls
    "params": (2, lambda rel: rel in _TOP_FILES or rel.endswith("/params.json")),  # show
    "all": (None, None),  # plot: every file but checkpoints
}


@contextlib.contextmanager
def remote_copy(uri: str, files: str, filesystem: Any = None) -> Iterator[str]:
    """A temporary local copy of the experiment at ``uri``, removed on exit.

    It holds the journal (the segments joined, as :meth:`Tuner.restore` downloads it), the
    driver's lease (so a live driver shows as ``running``) and, per ``files``
    (``"summary"``, ``"params"`` or ``"all"``), the files :data:`_COPIES` names. The
    journal's modification time is the last segment's, made old enough not to count as
    recent when there is no lease (no driver runs it).

    Raises:
        UsageError: no journal segments at ``uri``.
        StorageError: the storage cannot be read (credentials, network), as one line.
    """
    import tempfile

    from poptune.dashboard.data import RUNNING_WINDOW_S
    from poptune.storage.lock import LEASE_FILE
    from poptune.storage.remote import JOURNAL_SEGMENTS

    remote = open_remote(uri, filesystem)
    maxdepth, keep = _COPIES[files]
    try:
        if not remote.journal_length():
            raise UsageError(f"no experiment at {uri} (looked for its journal segments "
                             f"{uri}/{JOURNAL_SEGMENTS}/*.jsonl)")
        with tempfile.TemporaryDirectory(prefix="poptune_cli_") as tmp:
            name = uri.rsplit("/", 1)[-1]
            local = os.path.join(tmp, name if name.strip(".") else "experiment")  # not ".."
            remote.download_experiment(local, keep=keep, maxdepth=maxdepth)
            stamp = remote.journal_modified() or 0.0
            try:
                lease = remote.read_bytes(LEASE_FILE)
            except FileNotFoundError:  # every driver on remote storage holds a lease: none
                # runs, so the copy must not look "recently written" (running) either
                stamp = min(stamp, time.time() - 2 * RUNNING_WINDOW_S)
            else:
                with open(os.path.join(local, LEASE_FILE), "wb") as f:
                    f.write(lease)
            os.utime(os.path.join(local, "journal.jsonl"), (stamp, stamp))
            yield local
    except StorageError as exc:
        raise one_line(exc) from exc


def as_uri(text: str, local: str, uri: str) -> str:
    """``text`` with the local copy's paths (its journal first) written as on storage."""
    from poptune.storage.remote import JOURNAL_SEGMENTS

    for path in (local, os.path.realpath(local)):
        text = text.replace(os.path.join(path, "journal.jsonl"),
                            f"{uri}/{JOURNAL_SEGMENTS}/*.jsonl (its segments concatenated)")
        text = text.replace(path, uri)
    return text
