"""Small I/O helpers of the engine: rollback of result files."""

from __future__ import annotations

import os


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



