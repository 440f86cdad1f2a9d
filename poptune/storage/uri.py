"""Which storage a path names: a local path (or ``file://`` URI) or a remote fsspec URI.

Kept apart from :mod:`poptune.storage.remote` so that code every worker imports (the
``Checkpoint``) can tell them apart without importing the remote machinery.

Example:
    >>> is_remote("s3://bucket/exp"), is_remote("/tmp/exp"), is_remote("file:///tmp/exp")
    (True, False, False)
"""

from __future__ import annotations

import os


def is_remote(path: str | os.PathLike[str] | None) -> bool:
    """Whether ``path`` is a remote URI (``s3://``, ``gs://``, ...; not ``file://``)."""
    return path is not None and "://" in os.fspath(path) and not os.fspath(path).startswith("file://")


def local_path(path: str | os.PathLike[str]) -> str:
    """A local path given as a ``file://`` URI (Ray accepts both), as a path; others as given.

    >>> local_path("file:///tmp/runs/exp"), local_path("~/runs")
    ('/tmp/runs/exp', '~/runs')
    """
    return os.fspath(path).removeprefix("file://")
