"""Per-trial files in Ray's format: ``params.json``, ``params.pkl``, ``result.json``,
``progress.csv``, ``error.txt``/``error.pkl``."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import pickle
from typing import Any, Iterable

from poptune._dicts import flatten_dict
from poptune._pickling import PLAIN, is_plain
from poptune.exceptions import StorageError
from poptune.storage.dirs import ensure_dir
from poptune.storage.errors import write_failed
from poptune.storage.journal import json_default, write_all

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


_scalar_json = json.JSONEncoder(default=json_default).encode  # one value, C encoder


def params_json(config: dict[str, Any]) -> str:
    """``params.json``'s text: ``json.dumps(config, indent=2, sort_keys=True)`` (non-JSON values
    as :func:`~poptune.storage.journal.json_default` says). A flat config of plain values is
    formatted with the C encoder; the indenting encoder is pure Python and ten times slower.

    Example:
        >>> print(params_json({"lr": 0.1, "act": "relu"}))
        {
          "act": "relu",
          "lr": 0.1
        }
    """
    if config and type(config) is dict and all(
            type(k) is str and type(v) in PLAIN for k, v in config.items()):
        enc = _scalar_json
        return "{\n" + ",\n".join(f"  {enc(k)}: {enc(config[k])}" for k in sorted(config)) + "\n}"
    return json.dumps(config, indent=2, sort_keys=True, default=json_default)


def write_params(trial_dir: str, config: dict[str, Any], pickle_too: bool = True) -> None:
    """Write ``params.json`` (readable) and ``params.pkl`` (exact) for a trial."""
    ensure_dir(trial_dir)
    _write_new(os.path.join(trial_dir, "params.json"), params_json(config).encode())
    if not pickle_too:
        return
    try:
        if is_plain(config):  # the same bytes as cloudpickle's, ten times sooner
            blob = pickle.dumps(config, protocol=pickle.HIGHEST_PROTOCOL)
        else:
            import cloudpickle

            blob = cloudpickle.dumps(config)
    except Exception:  # noqa: BLE001 - an unpicklable config still gets params.json
        return
    _write_new(os.path.join(trial_dir, "params.pkl"), blob)


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


_CONTAINERS = (list, tuple, dict)
#: values a result row keeps as they are when flattened
_FLAT = PLAIN | {list, tuple}


def result_json_default(obj: Any) -> Any:
    """How ``result.json`` writes a value JSON has no form for, as Ray's encoder does: a
    numpy scalar as its number, an array as a list, anything else as ``str(value)``.

    Example:
        >>> import datetime, numpy as np
        >>> [result_json_default(v) for v in (np.int64(3), np.arange(2),
        ...                                   datetime.date(2020, 1, 2), {1})]
        [3, [0, 1], '2020-01-02', '{1}']
    """
    item = getattr(obj, "item", None)
    if callable(item) and getattr(obj, "ndim", None) == 0:
        try:
            return item()
        except (ValueError, TypeError):
            pass
    tolist = getattr(obj, "tolist", None)
    if callable(tolist) and type(obj).__module__ == "numpy":
        return tolist()
    return str(obj)


#: result.json's rows: Ray's layout (``json.dumps`` separators) and fallbacks
_result_json = json.JSONEncoder(default=result_json_default, allow_nan=True).encode


def _csv_value(v: Any) -> Any:
    """A progress.csv cell for a value that is no plain scalar: ``str(value)``, as the csv
    module (and so Ray) writes it."""
    return str(v)


class TrialLogWriter:
    """Appends results to ``result.json`` and ``progress.csv`` of one trial.

    ``result.json`` lines carry the full result (with ``config``); ``progress.csv`` has the
    flattened result without ``config``. Columns are fixed by the first row (Ray's behaviour:
    keys first seen later are not added to the CSV). Rows are kept in memory until
    :meth:`flush` or :meth:`close`, which append them with one write per file (no file stays
    open between flushes: a trial costs two opens, not two open files).

    Args:
        trial_dir: the trial's directory (it must exist when rows are flushed).
        write_json, write_csv: which of the two files this writer owns.
        fresh: the trial is new: no ``progress.csv`` of its own can fix the columns (saves
            looking for one), and the first flush replaces whatever the two files hold (a
            trial recreated after a restore lost its first creation finds the lost run's
            files in a directory of the same name).

    Example:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp()
        >>> w = TrialLogWriter(d)
        >>> w.write({"loss": 0.5, "config": {"lr": 0.1}}); w.close()
        >>> open(os.path.join(d, "progress.csv")).read()
        'loss\\n0.5\\n'
    """

    def __init__(self, trial_dir: str, write_json: bool = True, write_csv: bool = True,
                 fresh: bool = False) -> None:
        self.trial_dir = trial_dir
        self._json_path = os.path.join(trial_dir, RESULT_FILE) if write_json else None
        self._csv_path = os.path.join(trial_dir, "progress.csv") if write_csv else None
        self._json_rows: list[str] = []
        self._csv_buf = io.StringIO()
        self._csv_writer = csv.writer(self._csv_buf)
        self._fields: list[str] | None = None
        self._touched = False  # whether a flush created the files already
        self._csv_touched = False  # whether a flush wrote progress.csv already
        self._fresh = fresh
        if self._csv_path is not None and not fresh:  # an earlier run's file fixes the columns
            try:
                with open(self._csv_path, newline="") as f:
                    header = f.readline().strip()
            except FileNotFoundError:
                header = ""
            self._fields = next(csv.reader([header])) if header else None

    def write(self, result: dict[str, Any]) -> None:
        if self._json_path is not None:
            self._json_rows.append(_result_json(result))
        if self._csv_path is not None:
            row = {k: v for k, v in result.items() if k != "config"}
            if not all(type(k) is str and type(v) in _FLAT for k, v in row.items()):
                row = flatten(row)  # nested (or odd keys): the one flatten
            fields = self._fields
            if fields is None:
                fields = self._fields = list(row)
                self._csv_writer.writerow(fields)
            get, plain = row.get, PLAIN
            self._csv_writer.writerow([v if type(v) in plain else _csv_value(v)
                                       for v in [get(k, "") for k in fields]])

    def flush(self) -> None:
        """Append the rows written since the last flush. The first flush creates
        ``result.json``, rows or not; ``progress.csv`` is created with its first row, as
        Ray's CSV logger does (a trial that fails before reporting has none). A fresh
        writer's first write to each file replaces what it held."""
        touched, self._touched = self._touched, True
        fresh = self._fresh
        if self._json_path is not None and (self._json_rows or not touched):
            rows = self._json_rows
            put = _write_new if fresh and not touched else _append
            put(self._json_path, ("\n".join(rows) + "\n").encode() if rows else b"")
            rows.clear()
        buf = self._csv_buf
        if self._csv_path is not None:
            if buf.tell():
                put = _write_new if fresh and not self._csv_touched else _append
                self._csv_touched = True
                put(self._csv_path, buf.getvalue().encode())
                buf.seek(0)
                buf.truncate()
            elif fresh and not touched:  # a lost earlier run's rows are not this trial's
                _remove(self._csv_path)

    def close(self) -> None:
        if self._json_path is None and self._csv_path is None:
            return
        self.flush()
        self._json_path = self._csv_path = None


def _append(path: str, data: bytes) -> None:
    """Append ``data`` to ``path`` (created if missing) with raw system calls."""
    _write_fd(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644), data)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _write_new(path: str, data: bytes) -> None:
    """Replace the contents of ``path`` with ``data`` (raw system calls)."""
    _write_fd(os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o644), data)


def _write_fd(fd: int, data: bytes) -> None:
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


def rewrite_logs(trial_dir: str, results: Iterable[dict[str, Any]], write_json: bool = True,
                 write_csv: bool = True) -> None:
    """Replace a trial's result.json/progress.csv with exactly ``results`` (used on restore;
    the directory is made if it is missing, e.g. on a machine restoring from remote storage)."""
    ensure_dir(trial_dir)
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

