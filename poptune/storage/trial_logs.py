"""Per-trial files in Ray's format: ``params.json``, ``params.pkl``, ``result.json``,
``progress.csv``, ``error.txt``/``error.pkl``."""

from __future__ import annotations

import csv
import json
import logging
import os
from typing import Any, Iterable

from poptune._dicts import flatten_dict
from poptune.exceptions import StorageError
from poptune.storage.errors import write_failed
from poptune.storage.journal import dumps, json_default

logger = logging.getLogger(__name__)

RESULT_FILE = "result.json"

#: the one flatten (:func:`poptune._dicts.flatten_dict`): ``{"a": {"b": 1}}`` → ``{"a/b": 1}``
flatten = flatten_dict


def parse_result_lines(text: str, where: str) -> list[dict[str, Any]]:
    """Parse JSON lines; an unparsable *last* line (driver killed mid-write) is dropped."""
    lines = [ln for ln in text.split("\n") if ln.strip()]
    rows: list[dict[str, Any]] = []
    for i, line in enumerate(lines):
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if isinstance(row, dict):
            rows.append(row)
        elif i == len(lines) - 1:
            logger.warning("Ignoring the truncated last line of %s", where)
        else:
            raise StorageError(f"{where}: line {i + 1} is not a JSON result: {line[:80]!r}")
    return rows


def write_params(trial_dir: str, config: dict[str, Any], pickle_too: bool = True) -> None:
    """Write ``params.json`` (readable) and ``params.pkl`` (exact) for a trial."""
    import cloudpickle

    os.makedirs(trial_dir, exist_ok=True)
    with open(os.path.join(trial_dir, "params.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True, default=json_default)
    if not pickle_too:
        return
    try:
        blob = cloudpickle.dumps(config)
    except Exception:  # noqa: BLE001 - an unpicklable config still gets params.json
        return
    with open(os.path.join(trial_dir, "params.pkl"), "wb") as f:
        f.write(blob)


def write_error(trial_dir: str, traceback_text: str, exception_blob: bytes | None) -> str:
    """Write ``error.txt`` (and ``error.pkl`` when the exception pickles); return error.txt."""
    path = os.path.join(trial_dir, "error.txt")
    try:
        os.makedirs(trial_dir, exist_ok=True)
        with open(path, "w") as f:
            f.write(traceback_text)
        if exception_blob is not None:
            with open(os.path.join(trial_dir, "error.pkl"), "wb") as f:
                f.write(exception_blob)
    except OSError as exc:
        raise write_failed(exc, path, "the trial's error (error.txt, error.pkl)") from exc
    return path


def _csv_value(v: Any) -> Any:
    if isinstance(v, (list, tuple, dict)):
        return dumps(v)
    return v


class TrialLogWriter:
    """Appends results to ``result.json`` and ``progress.csv`` of one trial.

    ``result.json`` lines carry the full result (with ``config``); ``progress.csv`` has the
    flattened result without ``config``. Columns are fixed by the first row (Ray's behaviour:
    keys first seen later are not added to the CSV).
    """

    def __init__(self, trial_dir: str, write_json: bool = True, write_csv: bool = True) -> None:
        self.trial_dir = trial_dir
        self._json = open(os.path.join(trial_dir, "result.json"), "a") if write_json else None
        self._csv_file = None
        self._fields: list[str] | None = None
        self._write_csv = write_csv
        if write_csv:
            path = os.path.join(trial_dir, "progress.csv")
            exists = os.path.exists(path) and os.path.getsize(path) > 0
            self._csv_file = open(path, "a", newline="")
            if exists:
                with open(path, newline="") as f:
                    header = f.readline().strip()
                self._fields = next(csv.reader([header])) if header else None
        self._csv_writer: Any = None

    def write(self, result: dict[str, Any]) -> None:
        if self._json is not None:
            self._json.write(dumps(result) + "\n")
        if self._csv_file is not None:
            row = flatten({k: v for k, v in result.items() if k != "config"})
            if self._fields is None:
                self._fields = list(row)
                self._csv_writer = csv.DictWriter(self._csv_file, self._fields, extrasaction="ignore")
                self._csv_writer.writeheader()
            elif self._csv_writer is None:
                self._csv_writer = csv.DictWriter(self._csv_file, self._fields, extrasaction="ignore")
            self._csv_writer.writerow({k: _csv_value(v) for k, v in row.items()})

    def flush(self) -> None:
        if self._json is not None:
            self._json.flush()
        if self._csv_file is not None:
            self._csv_file.flush()

    def close(self) -> None:
        for f in (self._json, self._csv_file):
            if f is not None:
                f.close()
        self._json = self._csv_file = None


def rewrite_logs(trial_dir: str, results: Iterable[dict[str, Any]], write_json: bool = True,
                 write_csv: bool = True) -> None:
    """Replace a trial's result.json/progress.csv with exactly ``results`` (used on restore)."""
    for name, on in (("result.json", write_json), ("progress.csv", write_csv)):
        if not on:
            continue  # not ours to rewrite (switched off, or written by a user's logger)
        try:
            os.remove(os.path.join(trial_dir, name))
        except FileNotFoundError:
            pass
    writer = TrialLogWriter(trial_dir, write_json, write_csv)
    for r in results:
        writer.write(r)
    writer.close()

