"""Directory helpers shared by the driver and the worker processes (no heavy imports)."""

from __future__ import annotations

import os


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
