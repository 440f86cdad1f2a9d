"""``ray.tune.progress_reporter``: the reporters, at Ray's module path for scripts that import
from it.

Example:
    >>> from poptune.progress_reporter import CLIReporter
    >>> from poptune.callbacks.progress import CLIReporter as same
    >>> CLIReporter is same
    True
"""

from __future__ import annotations

from poptune.callbacks.progress import (
    CLIReporter, JupyterNotebookReporter, ProgressReporter, TuneReporterBase,
)

__all__ = ["CLIReporter", "JupyterNotebookReporter", "ProgressReporter", "TuneReporterBase"]
