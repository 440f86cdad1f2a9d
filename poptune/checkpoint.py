"""``Checkpoint``: a directory of files a trial can resume from.

Example:
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> _ = open(os.path.join(d, "model.txt"), "w").write("weights")
    >>> ckpt = Checkpoint.from_directory(d)
    >>> with ckpt.as_directory() as path:
    ...     open(os.path.join(path, "model.txt")).read()
    'weights'
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from typing import Any, Iterator

from poptune._validation import bad_type
from poptune.storage.uri import is_remote, local_path

_METADATA_FILE = ".metadata.json"


def _split_fs(path: str) -> tuple[Any, str, bool]:
    """Return (filesystem, path within it, is_local)."""
    if not is_remote(path):
        return _LocalFS, os.path.abspath(os.path.expanduser(local_path(path))), True
    import fsspec

    fs, inner = fsspec.core.url_to_fs(path)
    return fs, inner, False


class _LocalFSType:
    """A stand-in for fsspec's local filesystem, so local checkpoints never import fsspec."""

    protocol = ("file", "local")

    def _fs(self) -> Any:
        import fsspec

        return fsspec.filesystem("file")

    def open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        return open(path, mode, **kwargs)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        os.makedirs(path, exist_ok=exist_ok)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fs(), name)


_LocalFS = _LocalFSType()


def _as_fsspec(filesystem: Any) -> Any:
    """``filesystem`` as an fsspec filesystem: a ``pyarrow.fs.FileSystem`` (Ray's kind) is
    wrapped in ``ArrowFSWrapper``; pyarrow is imported only when such an object is given."""
    if type(filesystem).__module__.startswith("pyarrow"):
        import pyarrow.fs

        if isinstance(filesystem, pyarrow.fs.FileSystem):
            from fsspec.implementations.arrow import ArrowFSWrapper

            return ArrowFSWrapper(filesystem)
    if isinstance(filesystem, _LocalFSType) or (
            callable(getattr(filesystem, "open", None))
            and callable(getattr(filesystem, "ls", None))):
        return filesystem
    raise bad_type("filesystem", filesystem,
                   "an fsspec filesystem or a pyarrow.fs.FileSystem (or None to infer it "
                   "from `path`)")


class Checkpoint:
    """A reference to a checkpoint directory, local or on any fsspec filesystem.

    Args:
        path: the directory (a local path or a URI such as ``s3://bucket/ckpt``).
        filesystem: an fsspec filesystem, or a ``pyarrow.fs.FileSystem`` as Ray takes (then
            wrapped in fsspec's ``ArrowFSWrapper``: :attr:`filesystem` is that fsspec
            object); ``path`` is then a path within it. Inferred from ``path`` when omitted.

    Raises:
        TypeError: ``path`` is not a str or os.PathLike, or ``filesystem`` is neither an
            fsspec nor a pyarrow filesystem.
    """

    def __init__(self, path: str | os.PathLike[str], filesystem: Any = None) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise bad_type("path", path, "a str or os.PathLike directory path")
        path = os.fspath(path)
        if filesystem is None:
            self.filesystem, self.path, self._local = _split_fs(path)
        else:
            filesystem = _as_fsspec(filesystem)
            self.filesystem, self.path = filesystem, path
            protocol = getattr(filesystem, "protocol", ())
            protocols = protocol if isinstance(protocol, (tuple, list)) else (protocol,)
            # a local one (fsspec's "file", a wrapped pyarrow LocalFileSystem's "local")
            self._local = bool({"file", "local"} & set(protocols))
        self._uri = path

    @classmethod
    def from_directory(cls, path: str | os.PathLike[str]) -> "Checkpoint":
        """Create a checkpoint that refers to an existing directory."""
        return cls(path)

    def to_directory(self, path: str | os.PathLike[str] | None = None) -> str:
        """Copy the checkpoint's files into ``path`` (a new temp dir if omitted); return it."""
        target = os.fspath(path) if path is not None else tempfile.mkdtemp(prefix="checkpoint_")
        os.makedirs(target, exist_ok=True)
        if self._local:
            shutil.copytree(self.path, target, dirs_exist_ok=True)
        else:
            self.filesystem.get(self.path.rstrip("/") + "/", target, recursive=True)
        return target

    @contextlib.contextmanager
    def as_directory(self) -> Iterator[str]:
        """Yield a local directory with the files: the path itself when local (no copy)."""
        if self._local:
            yield self.path
            return
        tmp = self.to_directory()
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # metadata --------------------------------------------------------------------------
    def _metadata_path(self) -> str:
        return self.path.rstrip("/") + "/" + _METADATA_FILE

    def get_metadata(self) -> dict[str, Any]:
        """Return the user metadata stored with the checkpoint (``{}`` if none)."""
        try:
            with self.filesystem.open(self._metadata_path(), "r") as f:
                return dict(json.load(f))
        except FileNotFoundError:
            return {}

    def set_metadata(self, metadata: dict[str, Any]) -> None:
        """Replace the stored metadata (must be JSON-serialisable)."""
        if not isinstance(metadata, dict):
            raise bad_type("metadata", metadata, "a dict")
        self.filesystem.makedirs(self.path, exist_ok=True)
        with self.filesystem.open(self._metadata_path(), "w") as f:
            json.dump(metadata, f)

    def update_metadata(self, metadata: dict[str, Any]) -> None:
        """Merge ``metadata`` into the stored metadata."""
        merged = self.get_metadata()
        merged.update(metadata)
        self.set_metadata(merged)

    @property
    def metadata(self) -> dict[str, Any]:
        return self.get_metadata()

    def __repr__(self) -> str:
        fs: Any = "local" if self._local else getattr(self.filesystem, "protocol", None)
        if isinstance(fs, (tuple, list)):  # Ray's ``type_name``: local, s3, gcs, ...
            fs = fs[0]
        fs = fs or type(self.filesystem).__name__
        return f"Checkpoint(filesystem={fs}, path={self._uri})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Checkpoint) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Checkpoint, (self._uri,))
