"""Directory helpers shared by the driver and the worker processes (no heavy imports)."""

from __future__ import annotations

import os

#: the file in an experiment directory a Ray/Dask worker reads to tell whether it shares that
#: directory with the driver (``Backend.runs_elsewhere``); never uploaded to remote storage
STORAGE_MARKER = ".poptune_storage_check"


def ensure_dir(path: str) -> None:
    """Create the directory ``path`` (and its parents) unless it exists: one system call in
    the usual cases (``os.makedirs(path, exist_ok=True)`` makes several).

    Example:
        >>> import tempfile
        >>> d = os.path.join(tempfile.mkdtemp(), "a", "b")
        >>> ensure_dir(d); ensure_dir(d); os.path.isdir(d)
        True
    """
    try:
        os.mkdir(path)
    except FileExistsError:
        pass
    except FileNotFoundError:
        os.makedirs(path, exist_ok=True)
