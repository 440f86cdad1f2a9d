"""Small I/O helpers of the engine: asynchronous trial log writers, rollback of result files."""

from __future__ import annotations

import os
from typing import Any

from poptune.storage.background import BackgroundIO
from poptune.storage.trial_logs import TrialLogWriter, ensure_dir


class AsyncWriter:
    """A :class:`TrialLogWriter` whose file operations run on the background I/O thread.

    ``fresh``: the trial was created in this run and its ``params.json`` was submitted before,
    so its directory exists and holds no earlier results (nothing to look for).
    """

    def __init__(self, io: BackgroundIO, trial_dir: str, json: bool = True, csv: bool = True,
                 fresh: bool = False) -> None:
        self._io = io
        self._box: list[TrialLogWriter] = []
        if json or csv:
            io.submit(self._open, trial_dir, json, csv, fresh)

    def _open(self, trial_dir: str, json: bool, csv: bool, fresh: bool) -> None:
        if not fresh:
            ensure_dir(trial_dir)
        self._box.append(TrialLogWriter(trial_dir, json, csv, fresh=fresh))

    def _call(self, name: str, *args: Any) -> None:
        if self._box:
            getattr(self._box[0], name)(*args)

    def write(self, result: dict[str, Any]) -> None:
        self._io.submit(self._call, "write", result)

    def flush(self) -> None:
        self._io.submit(self._call, "flush")

    def close(self) -> None:
        self._io.submit(self._call, "close")


def rewrite_rows(trial_dir: str, keep_rows: int) -> None:
    """Keep only the first ``keep_rows`` results in result.json and progress.csv."""
    path = os.path.join(trial_dir, "result.json")
    if os.path.exists(path):
        with open(path) as f:
            lines = [ln for ln in f if ln.endswith("\n")][:keep_rows]
        with open(path, "w") as f:
            f.writelines(lines)
    path = os.path.join(trial_dir, "progress.csv")
    if os.path.exists(path):
        with open(path, newline="") as f:
            lines = f.read().splitlines(keepends=True)
        with open(path, "w", newline="") as f:
            f.writelines(lines[: keep_rows + 1] if keep_rows else [])



