"""Modules written by a test and imported, so that what they define pickles by reference
(a worker process imports the module, as it would a user's)."""

from __future__ import annotations

import contextlib
import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterator


@contextlib.contextmanager
def source_module(directory: Path, name: str, source: str) -> Iterator[ModuleType]:
    """Write ``source`` as ``directory/name.py``, put ``directory`` on ``sys.path`` and import
    it; afterwards the module and the path entry are gone again."""
    (directory / f"{name}.py").write_text(source)
    sys.path.insert(0, str(directory))
    sys.modules.pop(name, None)
    try:
        yield importlib.import_module(name)
    finally:
        sys.modules.pop(name, None)
        if str(directory) in sys.path:
            sys.path.remove(str(directory))
