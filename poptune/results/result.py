"""``Result``: what one trial left behind (last metrics, checkpoints, history, error).

A trial directory holds ``result.json`` (one JSON result per line), ``progress.csv`` (the same
rows flattened with ``/``), ``params.json`` / ``params.pkl`` (the config), ``checkpoint_NNNNNN/``
directories and, when the trial failed, ``error.pkl`` / ``error.txt``.

Example:
    >>> import json, os, tempfile
    >>> trial_dir = tempfile.mkdtemp()
    >>> with open(os.path.join(trial_dir, "result.json"), "w") as f:
    ...     for i, loss in enumerate([0.9, 0.4], start=1):
    ...         _ = f.write(json.dumps({"loss": loss, "training_iteration": i}) + "\\n")
    >>> result = Result.from_path(trial_dir)
    >>> result.metrics["loss"], len(result.metrics_dataframe)
    (0.4, 2)
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import numbers
import os
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from poptune._dicts import MISSING as _MISSING
from poptune._dicts import flatten_dict, nested_get
from poptune._validation import check_one_of
from poptune.checkpoint import Checkpoint, _split_fs
from poptune.exceptions import StorageError, TrialError
from poptune.lineage import _result_exploits
from poptune.lineage import hyperparam_schedule as _hyperparam_schedule
from poptune.result import AUTO_RESULT_KEYS, DEBUG_METRICS, TRAINING_ITERATION
from poptune.storage.trial_logs import RESULT_FILE  # noqa: F401  (re-exported)
from poptune.storage.trial_logs import parse_result_lines as _parse_result_lines

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

PROGRESS_FILE = "progress.csv"
PARAMS_FILE = "params.json"
PARAMS_PICKLE = "params.pkl"
ERROR_FILE = "error.txt"
ERROR_PICKLE = "error.pkl"
CHECKPOINT_DIR_KEY = "checkpoint_dir_name"
_CHECKPOINT_DIR = re.compile(r"^checkpoint_(\d+)$")


# -- helpers shared with result_grid (flatten_dict and _MISSING come from poptune._dicts) -----
def lookup_metric(d: Mapping[str, Any] | None, key: str) -> Any:
    """Return ``d[key]``, else follow ``"a/b"`` into nested dicts; ``_MISSING`` if absent."""
    return nested_get(d, key, _MISSING)


def is_number(value: Any) -> bool:
    """True for real numbers (bools count, as in Ray Tune's ``isinstance(v, Number)``)."""
    return isinstance(value, numbers.Real)


def _native(value: Any) -> Any:
    """numpy scalar -> Python scalar (so dicts read from CSV print like JSON ones)."""
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value


# -- Ray Tune's per-trial statistics and checkpoint ranking ------------------------------------
#: The statistics :func:`metric_analysis` keeps per metric (Ray Tune's ``metric_analysis``).
ANALYSIS_STATS = ("max", "min", "avg", "last", "last-5-avg", "last-10-avg")
_WINDOWS = (5, 10)


def metric_analysis(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Ray Tune's running statistics of every numeric metric over the reported ``rows``.

    Each row is one reported result (a nested dict, in report order). As Ray Tune does when a
    result arrives, the row minus its bookkeeping keys (``trial_id``, ``date``, ``config``,
    ...) is flattened with ``/`` and every ``numbers.Number`` value (bools included) updates
    its metric's ``max``, ``min``, ``avg``, ``last``, ``last-5-avg`` and ``last-10-avg``. A
    metric a row lacks is not updated by it. ``avg`` is Ray's running mean over the
    ``training_iteration`` (``step``) of the row: ``avg = (value + (step - 1) * avg) / step``,
    the plain mean only when the metric is reported at every iteration from 1. The first
    report sets every statistic to the value itself (an int stays an int); ``max``/``min``
    are Python's ``max(value, previous)``/``min(...)`` (a NaN is kept until a later value
    replaces it); a NaN makes ``avg`` NaN from then on.

    Example:
        >>> stats = metric_analysis([{"acc": 1, "training_iteration": 1},
        ...                          {"training_iteration": 2},
        ...                          {"acc": 3, "training_iteration": 3}])
        >>> stats["acc"]["max"], stats["acc"]["last-5-avg"], round(stats["acc"]["avg"], 3)
        (3, 2.0, 1.667)
    """
    out: dict[str, dict[str, Any]] = {}
    windows: dict[str, dict[int, list[Any]]] = {}
    for row in rows:
        step = row.get(TRAINING_ITERATION) or 1
        # (a progress.csv row is flat already: its "config/..." columns are left out too)
        kept = {k: v for k, v in row.items() if str(k).split("/", 1)[0] not in DEBUG_METRICS}
        for metric, value in flatten_dict(kept).items():
            if not isinstance(value, numbers.Number):
                continue
            stats = out.get(metric)
            if stats is None:
                out[metric] = {"max": value, "min": value, "avg": value, "last": value}
                windows[metric] = {}
                for n in _WINDOWS:
                    out[metric][f"last-{n}-avg"] = value
                    windows[metric][n] = [value]
                continue
            stats["max"] = max(value, stats["max"])
            stats["min"] = min(value, stats["min"])
            stats["avg"] = 1 / step * (value + (step - 1) * stats["avg"])
            stats["last"] = value
            for n in _WINDOWS:
                window = windows[metric][n]
                window.append(value)
                del window[:-n]
                stats[f"last-{n}-avg"] = sum(window) / len(window)
    return out


def _ckpt_score(metrics: Mapping[str, Any], attribute: str | None,
                order: str) -> tuple[bool, Any]:
    """Ray's ordering key of a checkpoint: NaN < -inf < numbers (``mode="min"`` negated)."""
    value: Any = flatten_dict(metrics).get(attribute, -math.inf) if attribute else -math.inf
    try:
        score = (1.0 if order == "max" else -1.0) * value
    except TypeError:
        return (False, -math.inf)
    if not isinstance(score, numbers.Number) or score != score:  # noqa: PLR0124 (NaN)
        return (False, -math.inf)
    return (True, score)


def rank_checkpoints(entries: Iterable[tuple[Checkpoint, dict[str, Any]]],
                     checkpoint_config: Any) -> list[tuple[Checkpoint, dict[str, Any]]]:
    """``Result.best_checkpoints`` as Ray Tune builds it from the checkpoints kept.

    ``entries`` are ``(checkpoint, metrics)`` in the order they were taken. With a
    ``checkpoint_score_attribute`` each one whose metrics have that key is placed by its
    score, worst first (a NaN score below every number, ties after the earlier ones); one
    without the key goes last. Only the top ``num_to_keep`` are returned (worst to best), so
    the latest checkpoint, kept on disk anyway, is left out when it is not among them.

    Example:
        >>> from poptune.config import CheckpointConfig
        >>> cfg = CheckpointConfig(num_to_keep=2, checkpoint_score_attribute="acc")
        >>> kept = [(Checkpoint(f"/tmp/c{i}"), {"acc": a}) for i, a in enumerate([0.9, 0.8, 0.3])]
        >>> [m["acc"] for _, m in rank_checkpoints(kept, cfg)]
        [0.8, 0.9]
    """
    attribute = getattr(checkpoint_config, "checkpoint_score_attribute", None)
    order = getattr(checkpoint_config, "checkpoint_score_order", "max")
    keep = getattr(checkpoint_config, "num_to_keep", None)
    ranked: list[tuple[Checkpoint, dict[str, Any]]] = []
    for entry in entries:
        if attribute is not None and attribute in entry[1]:
            key = _ckpt_score(entry[1], attribute, order)
            i = 0
            while i < len(ranked) and not _ckpt_score(ranked[i][1], attribute, order) > key:
                i += 1
            ranked.insert(i, entry)
        else:
            ranked.append(entry)
    return ranked[-keep:] if keep is not None else ranked


_T = TypeVar("_T")


class _Unset(Generic[_T]):
    """An optional attribute: None until set, and no entry in the instance's ``__dict__``
    until set to something else.

    Example:
        >>> class C:
        ...     x = _Unset[int]()
        >>> c = C(); c.x, vars(c)
        (None, {})
        >>> c.x = 3; c.x
        3
        >>> c.x = None; vars(c)
        {}
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self._key = name

    def __get__(self, obj: Any, objtype: Any = None) -> _T | None:
        return None if obj is None else obj.__dict__.get(self._key)

    def __set__(self, obj: Any, value: _T | None) -> None:
        if value is None:
            obj.__dict__.pop(self._key, None)
        else:
            obj.__dict__[self._key] = value


# -- reading a trial directory ----------------------------------------------------------------
def _read_progress_csv(text: str) -> pd.DataFrame:
    """Read progress.csv, dropping an unterminated last row that lacks fields."""
    import pandas as pd

    lines = text.split("\n")
    if not text.endswith("\n") and len(lines) > 1:
        header, last = next(csv.reader([lines[0]])), next(csv.reader([lines[-1]]), [])
        if len(last) < len(header):
            text = "\n".join(lines[:-1]) + "\n"
    if not text.strip():
        return pd.DataFrame()
    return pd.read_csv(io.StringIO(text), dtype={"trial_id": str})


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame([flatten_dict(r) for r in rows])


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _row_dict(df: pd.DataFrame, position: int) -> dict[str, Any]:
    return {k: _native(v) for k, v in df.iloc[position].to_dict().items()}


class _TrialDir:
    """One listing of a trial directory, read on demand."""

    def __init__(self, fs: Any, path: str) -> None:
        self.fs, self.path = fs, path
        try:
            entries = fs.ls(path, detail=True)
        except FileNotFoundError:
            entries = []
        self.files: set[str] = set()
        self.checkpoints: list[tuple[int, str]] = []
        for entry in entries:
            name = posixpath.basename(str(entry["name"]).rstrip("/"))
            match = _CHECKPOINT_DIR.match(name)
            if entry.get("type") == "directory":
                if match:
                    self.checkpoints.append((int(match.group(1)), name))
            else:
                self.files.add(name)
        self.checkpoints.sort()

    def join(self, name: str) -> str:
        return self.path.rstrip("/") + "/" + name

    def read(self, name: str, mode: str = "r") -> Any:
        kwargs = {"encoding": "utf-8"} if mode == "r" else {}
        with self.fs.open(self.join(name), mode, **kwargs) as f:
            return f.read()

    def history(self) -> tuple[list[dict[str, Any]] | None, pd.DataFrame | None]:
        """(rows of result.json, or None if absent; the metrics dataframe, or None)."""
        if RESULT_FILE in self.files:
            rows = _parse_result_lines(self.read(RESULT_FILE), self.join(RESULT_FILE))
            return rows, _frame(rows)
        if PROGRESS_FILE in self.files:
            return None, _read_progress_csv(self.read(PROGRESS_FILE))
        return None, None

    def config(self) -> dict[str, Any] | None:
        if PARAMS_PICKLE in self.files:
            try:
                import cloudpickle

                config = cloudpickle.loads(self.read(PARAMS_PICKLE, "rb"))
                if isinstance(config, dict):
                    return config
            except Exception:  # stale pickle: the JSON copy is good enough
                logger.debug("Could not unpickle %s", self.join(PARAMS_PICKLE), exc_info=True)
        if PARAMS_FILE in self.files:
            config = json.loads(self.read(PARAMS_FILE))
            return config if isinstance(config, dict) else None
        return None

    def error(self) -> BaseException | None:
        if ERROR_PICKLE in self.files:
            try:
                import cloudpickle

                error = cloudpickle.loads(self.read(ERROR_PICKLE, "rb"))
                if isinstance(error, BaseException):
                    return error
            except Exception:
                logger.debug("Could not unpickle %s", self.join(ERROR_PICKLE), exc_info=True)
        if ERROR_FILE in self.files:
            return TrialError(self.read(ERROR_FILE).strip())
        return None

    def checkpoint(self, name: str) -> Checkpoint:
        path = self.join(name)
        local = "file" in getattr(self.fs, "protocol", ())
        return Checkpoint(path if local else self.fs.unstrip_protocol(path))


# -- the dataclass ----------------------------------------------------------------------------
@dataclass(repr=False, eq=False)
class Result:
    """The outcome of one trial: its last metrics, checkpoints, history and error.

    ``ResultGrid`` hands these out; build one from a trial directory with :meth:`from_path`.

    Attributes:
        metrics: the last reported result (nested dict, including auto-filled keys).
        checkpoint: the latest checkpoint that exists, or ``None``.
        error: the trial's exception if it failed, else ``None``.
        path: the trial directory (for a remote URI, the path within its filesystem).
        metrics_dataframe: every reported result, one row each in report order, keys
            flattened with ``/``. Read from ``path`` on first access when not given.
        best_checkpoints: ``(checkpoint, metrics)`` for each kept checkpoint, where
            ``metrics`` is the result reported with it.

    The engine may also pass ``_storage_filesystem`` (an fsspec filesystem ``path`` lives on)
    and ``_status`` (the trial's status, e.g. ``"TERMINATED"``), which ``ResultGrid`` counts.

    Example:
        >>> r = Result(metrics={"loss": 0.1, "config": {"lr": 0.01}}, checkpoint=None,
        ...            error=None, path="")
        >>> r.config
        {'lr': 0.01}
    """

    metrics: dict[str, Any] | None
    checkpoint: Checkpoint | None
    error: BaseException | None
    path: str
    metrics_dataframe: pd.DataFrame | None = None  # replaced by a lazy property below
    best_checkpoints: list[tuple[Checkpoint, dict[str, Any]]] = field(default_factory=list)
    _storage_filesystem: Any = None
    #: trial status ("TERMINATED", "ERROR", ...) when known; ``ResultGrid`` counts with it.
    _status: str | None = None
    # not dataclass fields (no annotation): None until set, with no per-instance entry
    # until then (a grid of 100,000 results)
    #: the trial id when the engine or an ExperimentAnalysis knows it
    _trial_id = _Unset[str]()
    #: every checkpoint kept on disk, oldest first, when ``best_checkpoints`` is Ray's top
    #: ``num_to_keep`` only (``ExperimentAnalysis.get_trial_checkpoints_paths``)
    _kept_checkpoints = _Unset[list[tuple[Checkpoint, dict[str, Any]]]]()
    #: the result.json rows the dataframe was built from (None: not read from there)
    _rows = _Unset[list[dict[str, Any]]]()
    #: :func:`metric_analysis` of the reported rows, once computed
    _analysis = _Unset[dict[str, dict[str, Any]]]()

    def __post_init__(self) -> None:
        self.path = os.fspath(self.path) if self.path is not None else ""
        if self.best_checkpoints is None:  # Ray Tune's constructor default
            self.best_checkpoints = []
        self._config_cache: Any = _MISSING
        # _trial_id, _kept_checkpoints, _rows and _analysis: class defaults (None) until set,
        # so that a grid of 100,000 results holds no per-instance entry for them

    # -- properties ---------------------------------------------------------------------------
    def _set_metrics_dataframe(self, value: pd.DataFrame | None) -> None:
        self._metrics_dataframe: pd.DataFrame | None = value
        self._df_loaded: bool = value is not None
        # read again with the dataframe
        self._rows = None
        self._analysis = None

    def _get_metrics_dataframe(self) -> pd.DataFrame | None:
        if not self._df_loaded and self.path:
            fs, fs_path = self._fs_path()
            rows, df = _TrialDir(fs, fs_path).history()
            if df is None:
                import pandas as pd

                df = pd.DataFrame()
            self._set_metrics_dataframe(df)
            self._rows = rows
        return self._metrics_dataframe

    def _logged_rows(self) -> list[dict[str, Any]] | None:
        """The rows of the trial's ``result.json`` (None: it has none, or the dataframe came
        from elsewhere), read without building the dataframe."""
        if self._rows is not None:
            return self._rows
        if self._df_loaded or not self.path:
            return None
        if "://" not in self.path and self._storage_filesystem is None:  # local: no fsspec
            path = os.path.join(self.path, RESULT_FILE)
            try:
                with open(path, encoding="utf-8") as f:
                    return _parse_result_lines(f.read(), path)
            except (FileNotFoundError, NotADirectoryError):
                return None
        fs, fs_path = self._fs_path()
        trial_dir = _TrialDir(fs, fs_path)
        if RESULT_FILE not in trial_dir.files:
            return None
        return _parse_result_lines(trial_dir.read(RESULT_FILE), trial_dir.join(RESULT_FILE))

    def _reported(self) -> list[dict[str, Any]]:
        """Every reported result, in order, as reported: the rows of ``result.json``; else
        the rows of the dataframe (``progress.csv``, or one given), where a missing key and a
        NaN look alike and an empty cell is taken as not reported; else ``[metrics]``."""
        df = self.metrics_dataframe
        if self._rows is not None:
            return self._rows
        if df is not None and not df.empty:
            return [{k: v for k, v in _row_dict(df, i).items() if not _is_nan(v)}
                    for i in range(len(df))]
        return [self.metrics] if self.metrics else []

    def _metric_analysis(self) -> dict[str, dict[str, Any]]:
        """:func:`metric_analysis` of :meth:`_reported` (cached until the dataframe is
        replaced)."""
        if self._analysis is None or not self._df_loaded:
            self._analysis = metric_analysis(self._reported())
        return self._analysis

    @property
    def config(self) -> dict[str, Any] | None:
        """The trial's config: ``metrics["config"]``, else read from ``params.json``."""
        config = self.metrics.get("config") if self.metrics else None
        if isinstance(config, dict):
            return config
        if self._config_cache is _MISSING:
            self._config_cache = None
            if self.path:
                fs, fs_path = self._fs_path()
                self._config_cache = _TrialDir(fs, fs_path).config()
        return self._config_cache  # type: ignore[no-any-return]

    @property
    def hyperparam_schedule(self) -> list[tuple[int, dict[str, Any]]]:
        """The configs this trial ran: ``[(0, initial_config), (k, config), ...]``.

        ``(k, config)`` means ``config`` produced iterations ``k + 1, ...`` (after a PBT
        exploit, ``k`` is the donor checkpoint's iteration). See
        :func:`poptune.lineage.hyperparam_schedule`.
        """
        return _hyperparam_schedule(self)

    @property
    def lineage(self) -> list[Any]:
        """The PBT exploits whose target is this trial, oldest first
        (:class:`poptune.lineage.ExploitEvent`; ``[]`` outside PBT). For the full chain of
        clones behind the final model see :func:`poptune.lineage.lineage`."""
        return _result_exploits(self)

    @property
    def filesystem(self) -> Any:
        """The fsspec filesystem that ``path`` lives on (local unless a URI was given)."""
        return self._fs_path()[0]

    def _fs_path(self) -> tuple[Any, str]:
        if self._storage_filesystem is not None:
            return self._storage_filesystem, self.path
        fs, inner, _ = _split_fs(self.path)
        return fs, inner

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def from_path(cls, path: str | os.PathLike[str], storage_filesystem: Any = None) -> Result:
        """Rebuild the ``Result`` of a trial from its directory (local path or URI).

        Metrics come from ``result.json`` (an unparsable last line is ignored), else from
        ``progress.csv`` (then ``metrics`` holds flattened keys). Checkpoints are the
        ``checkpoint_NNNNNN`` directories that exist; the error comes from ``error.pkl``, else
        ``error.txt`` (as a :class:`~poptune.exceptions.TrialError` holding its text).

        Args:
            path: the trial directory, e.g. ``~/poptune_results/exp/train_a1b2c_00000_0_...``.
            storage_filesystem: an fsspec filesystem; ``path`` is then a path within it.

        Raises:
            StorageError: the directory does not exist or holds neither result file.

        Example:
            >>> import os, tempfile
            >>> trial_dir = tempfile.mkdtemp()
            >>> _ = open(os.path.join(trial_dir, "result.json"), "w").write(
            ...     '{"acc": 0.8, "checkpoint_dir_name": "checkpoint_000000"}\\n')
            >>> os.mkdir(os.path.join(trial_dir, "checkpoint_000000"))
            >>> result = Result.from_path(trial_dir)
            >>> os.path.basename(result.checkpoint.path), result.best_checkpoints[0][1]["acc"]
            ('checkpoint_000000', 0.8)
        """
        return cls._from_dir(path, storage_filesystem, strict=True)

    @classmethod
    def _from_dir(cls, path: str | os.PathLike[str], storage_filesystem: Any = None,
                  strict: bool = False, status: str | None = None) -> Result:
        if storage_filesystem is not None:
            fs, fs_path = storage_filesystem, os.fspath(path)
        else:
            fs, fs_path, _ = _split_fs(os.fspath(path))
        if not fs.isdir(fs_path):
            raise StorageError(f"Trial directory {fs_path} does not exist")
        trial = _TrialDir(fs, fs_path)
        rows, df = trial.history()
        if df is None and strict:
            raise StorageError(f"Cannot read a result from {fs_path}: it holds neither "
                               f"{RESULT_FILE} nor {PROGRESS_FILE}")
        by_checkpoint: dict[str, dict[str, Any]] = {}
        if rows is not None:  # result.json: keep the nested dicts
            metrics: dict[str, Any] = dict(rows[-1]) if rows else {}
            for row in rows:
                if row.get(CHECKPOINT_DIR_KEY):
                    by_checkpoint[str(row[CHECKPOINT_DIR_KEY])] = row
        elif df is not None and not df.empty:  # progress.csv: flattened, as Ray Tune
            metrics = _row_dict(df, -1)
            if CHECKPOINT_DIR_KEY in df.columns:
                for pos, name in enumerate(df[CHECKPOINT_DIR_KEY].tolist()):
                    if isinstance(name, str) and name:
                        by_checkpoint[name] = _row_dict(df, pos)
        else:
            metrics = {}
        if df is None:  # nothing to read later either
            import pandas as pd

            df = pd.DataFrame()
        best = [(trial.checkpoint(name), by_checkpoint.get(name, {}))
                for _, name in trial.checkpoints]
        result = cls(
            metrics=metrics,
            checkpoint=best[-1][0] if best else None,
            error=trial.error(),
            path=fs_path,
            metrics_dataframe=df,
            best_checkpoints=best,
            _storage_filesystem=fs,
            _status=status,
        )
        result._rows = rows
        return result

    # -- queries ------------------------------------------------------------------------------
    def get_best_checkpoint(self, metric: str, mode: str) -> Checkpoint | None:
        """Return the kept checkpoint whose result scored best on ``metric``.

        Checkpoints whose result lacks ``metric`` are skipped; ``"a/b"`` reaches nested
        metrics. NaN scores are skipped; ties go to the earlier checkpoint.

        Args:
            metric: the metric to order on, e.g. ``"mean_accuracy"``.
            mode: ``"min"`` or ``"max"``.

        Returns:
            The best checkpoint, or ``None`` if every score for ``metric`` is NaN.

        Raises:
            ValueError: ``mode`` is not ``"min"`` or ``"max"``.
            RuntimeError: the trial kept no checkpoint, or none was reported with ``metric``.

        Example:
            >>> a, b = Checkpoint("/tmp/ck_a"), Checkpoint("/tmp/ck_b")
            >>> r = Result(metrics={}, checkpoint=b, error=None, path="",
            ...            best_checkpoints=[(a, {"acc": 0.9}), (b, {"acc": 0.7})])
            >>> r.get_best_checkpoint("acc", "max") is a
            True
        """
        check_one_of("mode", mode, ("min", "max"))
        if not self.best_checkpoints:
            raise RuntimeError(f"No checkpoint exists for the trial at {self.path!r}")
        scored = []
        for checkpoint, metrics in self.best_checkpoints:
            value = lookup_metric(metrics, metric)
            if value is not _MISSING and is_number(value):
                scored.append((checkpoint, float(value)))
        if not scored:
            seen = sorted({k for _, m in self.best_checkpoints for k in flatten_dict(m or {})})
            raise RuntimeError(
                f"No checkpoint of the trial at {self.path!r} was reported with metric "
                f"{metric!r}; metrics reported with its checkpoints: {seen}")
        scored = [(c, v) for c, v in scored if not math.isnan(v)]
        if not scored:
            return None
        pick = max if mode == "max" else min
        return pick(scored, key=lambda cv: cv[1])[0]

    # -- repr ---------------------------------------------------------------------------------
    def _repr(self, indent: int = 0) -> str:
        shown: dict[str, Any] = {}
        if self.error is not None:
            shown["error"] = type(self.error).__name__
        if self.metrics:
            shown["metrics"] = {k: v for k, v in self.metrics.items() if k not in AUTO_RESULT_KEYS}
        else:
            shown["metrics"] = self.metrics
        shown["path"] = self.path
        protocol = getattr(self.filesystem, "protocol", "file")
        protocol = protocol[0] if isinstance(protocol, (tuple, list)) else protocol
        shown["filesystem"] = "local" if protocol in ("file", "local") else protocol
        shown["checkpoint"] = self.checkpoint
        pad, kw_pad = " " * indent, " " * (indent + 2)
        body = ",\n".join(f"{kw_pad}{k}={v!r}" for k, v in shown.items())
        return f"{pad}{type(self).__name__}(\n{body}\n{pad})"

    def __repr__(self) -> str:
        return self._repr(indent=0)


# ``metrics_dataframe`` stays an ordinary dataclass argument, but reads go through a property
# so that the engine can build many Results without touching their files.
setattr(Result, "metrics_dataframe",  # noqa: B010 (keeps mypy's view: a plain field)
        property(Result._get_metrics_dataframe, Result._set_metrics_dataframe))
