"""Open files only when they really are inside a root directory.

The read-only views (the dashboard, ``poptune ls``/``show``/``plot``) read files from
experiment directories that anyone with write access to the storage could have planted:
``error.txt`` may be a symlink to ``/etc/passwd``, ``journal.jsonl`` a FIFO that blocks
``open()`` for ever. :func:`open_under` resolves every symlink in the path, refuses a real
path that leaves ``root`` (:class:`OutsideRootError`, no byte is read) and refuses anything
that is not a regular file (a FIFO, a device: opened non-blocking, so that never hangs).

Example:
    >>> import os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> os.symlink("/etc/hostname", os.path.join(root, "error.txt"))
    >>> open_under(root, os.path.join(root, "error.txt"))
    Traceback (most recent call last):
    ...
    poptune.storage.confined.OutsideRootError: ... resolves outside ...
"""

from __future__ import annotations

import io
import os
import stat
from typing import IO, Any


class OutsideRootError(PermissionError):
    """A file to read resolves (through symlinks) outside its root, or is not a regular file."""


def resolve_under(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> str:
    """The real path of ``path``; :class:`OutsideRootError` if it is not strictly below
    the real path of ``root``.

    >>> resolve_under("/tmp", "/tmp/../etc/passwd")
    Traceback (most recent call last):
    ...
    poptune.storage.confined.OutsideRootError: '/tmp/../etc/passwd' resolves outside '/tmp' (to '/etc/passwd')
    """
    base = os.path.realpath(root)
    real = os.path.realpath(path)
    if real == base or os.path.commonpath([base, real]) != base:
        raise OutsideRootError(f"{os.fspath(path)!r} resolves outside {os.fspath(root)!r} "
                               f"(to {real!r})")
    return real


def open_under(root: str | os.PathLike[str], path: str | os.PathLike[str], mode: str = "rb",
               **kwargs: Any) -> IO[Any]:
    """Open the regular file ``path`` for reading if its real path is inside ``root``.

    ``mode`` is ``"rb"`` or ``"r"`` (``kwargs`` go to the text wrapper: ``encoding``,
    ``errors``). Raises :class:`OutsideRootError` (a ``PermissionError``) for a path that
    leaves ``root`` or is not a regular file, and the usual ``OSError`` otherwise.
    """
    if mode not in ("r", "rb"):
        raise ValueError(f"`mode` must be 'r' or 'rb', got {mode!r}")
    real = resolve_under(root, path)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(real, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OutsideRootError(f"{os.fspath(path)!r} is not a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        raw = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    if mode == "rb":
        return raw
    return io.TextIOWrapper(raw, **kwargs)


def is_file_under(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a regular file whose real path is inside ``root``."""
    try:
        real = resolve_under(root, path)
    except OSError:
        return False
    return os.path.isfile(real)
