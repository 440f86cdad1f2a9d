"""``ResultGrid``: the results of every trial of an experiment, as ``Tuner.fit()`` returns them.

Example:
    >>> grid = ResultGrid([
    ...     Result(metrics={"loss": 0.3, "config": {"lr": 0.1}}, checkpoint=None, error=None,
    ...            path="/tmp/exp/t0"),
    ...     Result(metrics={"loss": 0.2, "config": {"lr": 0.01}}, checkpoint=None, error=None,
    ...            path="/tmp/exp/t1"),
    ... ], experiment_path="/tmp/exp")
    >>> grid.get_best_result(metric="loss", mode="min").config
    {'lr': 0.01}
    >>> list(grid.get_dataframe()[["loss", "config/lr"]].itertuples(index=False, name=None))
    [(0.3, 0.1), (0.2, 0.01)]
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

from poptune._validation import bad_type, check_mode, check_one_of
from poptune.checkpoint import _split_fs
from poptune.exceptions import MetricTypeError, StorageError
from poptune.result import DEBUG_METRICS
from poptune.results.result import (
    _MISSING,
    PARAMS_FILE,
    PROGRESS_FILE,
    RESULT_FILE,
    Result,
    _row_dict,
    flatten_dict,
    is_number,
    lookup_metric,
    rank_checkpoints,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ResultGrid"]

#: Accepted ``scope`` values of :meth:`ResultGrid.get_best_result`.
SCOPES = ("all", "last", "avg", "last-5-avg", "last-10-avg")
#: Metric name Ray Tune uses when only a mode is configured (a trainable returning a number).
DEFAULT_METRIC = "_metric"


def _column(result: Result, metric: str) -> Any:
    """The trial's history of ``metric`` as a float array, or ``None`` if never reported."""
    import pandas as pd

    df = result.metrics_dataframe
    if df is None or df.empty or metric not in df.columns:
        return None
    raw = df[metric]
    if raw.dtype == bool:
        return raw.astype(float).to_numpy()
    values = pd.to_numeric(raw, errors="coerce").astype(float)
    if values.isna().all() and raw.notna().any():  # only non-numbers (strings, lists)
        return None
    return values.to_numpy()


def _score(result: Result, metric: str, mode: str, scope: str) -> Any:
    """One number per trial for ``scope``, as Ray Tune ranks trials: its statistic ``scope``
    (``"all"``: its ``max``/``min`` under ``mode``) of :func:`~poptune.results.result.
    metric_analysis` over the results that reported ``metric`` as a number; ``None`` if none
    did. An int or bool stays one."""
    if scope == "last" and metric != "done" and metric.split("/", 1)[0] not in DEBUG_METRICS:
        # the last result has it: that is the last value reported (no file read for a grid
        # the engine built)
        value = lookup_metric(result.metrics, metric)
        if value is not _MISSING and isinstance(value, numbers.Number):
            return value
    stats = result._metric_analysis().get(metric)
    if stats is None:
        return None
    return stats[mode if scope == "all" else scope]


class ResultGrid:
    """The :class:`Result` of every trial of an experiment, in trial order.

    Trials of every status are included; an unfinished trial shows its latest result and
    checkpoint. Index it, iterate it, or ask for the best result or a dataframe.

    Args:
        results: one :class:`Result` per trial; or, as Ray's public constructor takes it, an
            :class:`~poptune.ExperimentAnalysis` (``ResultGrid(analysis)``): its experiment's
            results, with its default metric and mode.
        experiment_path: the experiment directory (``{storage_path}/{name}``); needed with a
            list of results.
        default_metric: metric used when :meth:`get_best_result` gets none
            (``TuneConfig.metric``).
        default_mode: ``"min"`` or ``"max"``, used when :meth:`get_best_result` gets none.

    Example:
        >>> grid = ResultGrid([], experiment_path="/tmp/exp")
        >>> len(grid), grid.num_errors
        (0, 0)
    """

    def __init__(
        self,
        results: Sequence[Result] | Any,
        experiment_path: str | os.PathLike[str] | None = None,
        default_metric: str | None = None,
        default_mode: str | None = None,
    ) -> None:
        from poptune.analysis import ExperimentAnalysis

        if isinstance(results, ExperimentAnalysis):  # Ray's ResultGrid(experiment_analysis)
            analysis = results
            results = []
            for t in analysis.trials:  # counted by the analysis' statuses, as in Ray
                t._result._status = str(t.status)
                t._result._trial_id = t.trial_id
                results.append(t._result)
            experiment_path = analysis.experiment_path
            if default_metric is None and default_mode is None:
                default_metric, default_mode = analysis.default_metric, analysis.default_mode
        if experiment_path is None:
            raise bad_type("experiment_path", experiment_path,
                           "the experiment directory (with a list of results)")
        check_mode(default_mode, "default_mode")
        if default_metric is None and default_mode is not None:
            default_metric = DEFAULT_METRIC
        self._results = list(results)
        self._experiment_path = os.fspath(experiment_path)
        self._filesystem: Any = None
        self.default_metric = default_metric
        self.default_mode = default_mode

    @classmethod
    def from_path(
        cls,
        experiment_path: str | os.PathLike[str],
        default_metric: str | None = None,
        default_mode: str | None = None,
        *,
        _checkpoint_config: Any = _MISSING,
    ) -> ResultGrid:
        """Build a grid from an experiment directory on disk (local path or fsspec URI).

        Every subdirectory holding ``params.json``, ``result.json`` or ``progress.csv`` is a
        trial; trials come in directory-name order. When the experiment's journal is there
        (local storage), only the trials of its newest run count: a run started again under
        the same name leaves the old run's directories beside the new ones, and Ray's
        ``ResultGrid`` sees the newest run only, and each trial's status is the journal's
        (a ``TERMINATED`` trial's ``metrics["done"]`` is True, as ``fit()`` gives it), its
        checkpoints those the journal keeps, and ``best_checkpoints`` the top
        ``CheckpointConfig.num_to_keep`` by its score attribute (read from ``tuner.pkl``),
        worst to best, as Ray ranks them. A trial that never reported has empty ``metrics``.
        Without a journal, statuses are not stored in trial directories, so a trial counts
        as terminated when it has no error and its last result has ``done=True``; every
        checkpoint directory is listed, by index.

        Raises:
            StorageError: ``experiment_path`` is not a directory.

        Example:
            >>> import tempfile
            >>> len(ResultGrid.from_path(tempfile.mkdtemp()))
            0
        """
        checkpoint_config = _checkpoint_config  # (Tuner.get_results passes its own)
        fs, fs_path, _ = _split_fs(os.fspath(experiment_path))
        if not fs.isdir(fs_path):
            raise StorageError(f"Experiment directory {fs_path} does not exist")
        trial_dirs = []
        for entry in fs.ls(fs_path, detail=True):
            if entry.get("type") != "directory":
                continue
            listing = fs.ls(entry["name"], detail=False)
            names = {os.path.basename(str(e).rstrip("/")) for e in listing}
            if names & {PARAMS_FILE, RESULT_FILE, PROGRESS_FILE}:
                trial_dirs.append(str(entry["name"]).rstrip("/"))
        current = _current_run_trials(fs, fs_path)
        if current is not None:  # a name reused: only the newest run's trials, as in Ray
            trial_dirs = [d for d in trial_dirs if os.path.basename(d) in current]
            if checkpoint_config is _MISSING:
                checkpoint_config = _saved_checkpoint_config(fs_path)
        results = []
        for d in sorted(trial_dirs):
            result = Result._from_dir(d, storage_filesystem=fs)
            if current is not None:
                trial = current[os.path.basename(d)]
                _apply_journal(result, trial.status, trial.trial_id,
                               {c.name: c.metrics for c in trial.live_checkpoints},
                               None if checkpoint_config is _MISSING else checkpoint_config)
            results.append(result)
        grid = cls(results, fs_path, default_metric=default_metric, default_mode=default_mode)
        grid._filesystem = fs
        return grid

    # -- paths --------------------------------------------------------------------------------
    @property
    def experiment_path(self) -> str:
        """The experiment directory (for a remote URI, the path within its filesystem)."""
        return self._experiment_path

    @property
    def filesystem(self) -> Any:
        """The fsspec filesystem that ``experiment_path`` lives on."""
        if self._filesystem is None:
            self._filesystem = _split_fs(self._experiment_path)[0]
        return self._filesystem

    # -- best result --------------------------------------------------------------------------
    def get_best_result(
        self,
        metric: str | None = None,
        mode: str | None = None,
        scope: str = "last",
        filter_nan_and_inf: bool = True,
    ) -> Result:
        """Return the result of the trial that scored best on ``metric``.

        Args:
            metric: metric to compare (``"a/b"`` reaches nested metrics). Defaults to
                ``default_metric`` (``TuneConfig.metric``).
            mode: ``"min"`` or ``"max"``. Defaults to ``default_mode``.
            scope: how each trial is scored, as Ray Tune does, over the results that
                reported ``metric`` as a number: ``"last"`` its last value, ``"avg"`` Ray's
                running mean by ``training_iteration`` (the plain mean when reported at every
                iteration), ``"last-5-avg"`` / ``"last-10-avg"`` the mean of its last 5 / 10
                values, ``"all"`` its ``max`` or ``min`` under ``mode``. See
                :func:`poptune.results.result.metric_analysis`.
            filter_nan_and_inf: skip trials whose score is NaN or infinite.

        As in Ray Tune, a grid of exactly one trial returns that trial without comparing.
        Ties go to the earlier trial; a NaN score (with filtering off) never beats a number.

        Raises:
            ValueError: no metric or no mode in the call nor the defaults; a bad ``mode`` or
                ``scope``.
            RuntimeError: no trial reported ``metric`` (or, when filtering, every score was
                NaN or infinite).
            MetricTypeError: no trial reported ``metric`` as a number, and one reported it as
                something else (a ``RuntimeError`` as in Ray, and a ``TypeError``).

        Example:
            >>> grid = ResultGrid([
            ...     Result({"acc": 0.7}, None, None, "/tmp/e/a"),
            ...     Result({"acc": 0.9}, None, None, "/tmp/e/b"),
            ... ], "/tmp/e")
            >>> grid.get_best_result("acc", "max").path
            '/tmp/e/b'
        """
        check_mode(mode)
        check_one_of("scope", scope, SCOPES)
        if len(self._results) == 1:
            return self._results[0]
        metric = metric or self.default_metric
        mode = mode or self.default_mode
        if not metric:
            raise ValueError(
                "No metric is provided: pass `metric` to `get_best_result` or set `metric` "
                "in the `TuneConfig` of your `Tuner`.")
        if not mode:
            raise ValueError(
                "No mode is provided: pass `mode` ('min' or 'max') to `get_best_result` or "
                "set `mode` in the `TuneConfig` of your `Tuner`.")

        best: Result | None = None
        best_score = math.nan
        for result in self._results:
            score = _score(result, metric, mode, scope)
            if score is None or (filter_nan_and_inf and not _finite(score)):
                continue
            if (best is None or (_isnan(best_score) and not _isnan(score))
                    or (mode == "max" and score > best_score)
                    or (mode == "min" and score < best_score)):
                best, best_score = result, score
        if best is None:
            for result in self._results:  # reported, but not as a number: say so
                value = lookup_metric(result.metrics or {}, metric)
                if value is not _MISSING and value is not None and not is_number(value):
                    raise MetricTypeError(
                        f"`{metric}` must be reported as a number to rank trials, got "
                        f"{value!r} of type {type(value).__name__} (trial "
                        f"{(result.metrics or {}).get('trial_id', result.path)})")
            msg = (f"No best trial found for the given metric: {metric}. This means that no "
                   "trial has reported this metric")
            if filter_nan_and_inf:
                msg += (", or all values reported for this metric are NaN or infinite. To "
                        "not ignore them, pass `filter_nan_and_inf=False`.")
            raise RuntimeError(msg + ("" if filter_nan_and_inf else "."))
        return best

    # -- dataframe ----------------------------------------------------------------------------
    def get_dataframe(
        self, filter_metric: str | None = None, filter_mode: str | None = None
    ) -> pd.DataFrame:
        """Return one row per trial: its last result, or its best if filtered.

        A trial's row is a row of its :attr:`Result.metrics_dataframe` (the last, unless
        filtered), so its columns are every key any of its results had (missing ones NaN)
        and ``done`` is as logged. Columns are the flattened result keys (``"a/b"``), the
        config as ``config/...`` and ``logdir``: the trial id, as in Ray Tune 2.60 (Ray <= 2.6
        put the trial directory there; it is :attr:`Result.path`). Trials that never reported
        are left out. With
        ``filter_metric`` and ``filter_mode``, each trial's row is the result where
        ``filter_metric`` was lowest (``"min"``) or highest (``"max"``) ever; a trial that
        never reported it (or only NaN) shows its last result. ``default_metric`` and
        ``default_mode`` are not used here.

        Args:
            filter_metric: metric to pick each trial's best row by.
            filter_mode: ``"min"`` or ``"max"``; needs ``filter_metric``.

        Raises:
            ValueError: a bad ``filter_mode``, or ``filter_mode`` without ``filter_metric``.

        Example:
            >>> grid = ResultGrid([Result({"acc": 0.5, "trial_id": "a1", "config": {"lr": 1}},
            ...                           None, None, "")], "/tmp/e")
            >>> grid.get_dataframe().to_dict("records")
            [{'acc': 0.5, 'trial_id': 'a1', 'config/lr': 1, 'logdir': 'a1'}]
        """
        import numpy as np
        import pandas as pd

        check_mode(filter_mode, "filter_mode")
        if filter_mode and not filter_metric:
            raise ValueError("`filter_metric` must be given with `filter_mode`, got None")
        rows = []
        for result in self._results:
            if filter_metric and filter_mode:
                df = result.metrics_dataframe
                if df is None or df.empty:
                    continue
                position = len(df) - 1
                values = _column(result, filter_metric)
                if values is not None and not np.isnan(values).all():
                    position = int(np.nanargmax(values) if filter_mode == "max"
                                   else np.nanargmin(values))
                row = _row_dict(df, position)
            else:
                logged = result._logged_rows()
                if logged is not None:  # the last row with every key logged (a dataframe's)
                    if not logged:
                        continue
                    flat = [flatten_dict(r) for r in logged]
                    last = flat[-1]
                    row = {k: last.get(k, math.nan) for k in dict.fromkeys(
                        k for r in flat for k in r)}
                else:
                    df = result.metrics_dataframe
                    if df is not None and not df.empty:
                        row = _row_dict(df, len(df) - 1)
                    elif result.metrics and result._rows is None:  # no result file to read
                        row = flatten_dict(result.metrics)
                    else:
                        continue
            config = result.config
            if config:
                row.update(flatten_dict({"config": config}))
            row["logdir"] = _trial_key(result, row)
            rows.append(row)
        return pd.DataFrame(rows)

    # -- container protocol -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._results)

    @overload
    def __getitem__(self, i: int) -> Result: ...

    @overload
    def __getitem__(self, i: slice) -> list[Result]: ...

    def __getitem__(self, i: int | slice) -> Result | list[Result]:
        """The i-th trial's result (trial order)."""
        return self._results[i]

    def __iter__(self) -> Iterator[Result]:
        return iter(self._results)

    @property
    def errors(self) -> list[BaseException]:
        """The exceptions of the trials that failed."""
        return [r.error for r in self._results if r.error is not None]

    @property
    def num_errors(self) -> int:
        """How many trials ended in error."""
        return sum(1 for r in self._results if _status(r) == "ERROR")

    @property
    def num_terminated(self) -> int:
        """How many trials finished without error."""
        return sum(1 for r in self._results if _status(r) == "TERMINATED")

    def __repr__(self) -> str:
        body = ",\n".join(r._repr(indent=2) for r in self._results)
        return f"ResultGrid<[\n{body}\n]>"


def _status(result: Result) -> str | None:
    """The trial's status: given by the engine, else inferred from the error and ``done``."""
    if result._status is not None:
        return str(result._status)
    if result.error is not None:
        return "ERROR"
    if result.metrics and result.metrics.get("done") is True:
        return "TERMINATED"
    return None


def _current_run_trials(fs: Any, fs_path: str) -> dict[str, Any] | None:
    """``{trial directory name: journal TrialState}`` of the newest run in the experiment's
    local journal (None: no journal to tell, e.g. remote storage or a directory of result
    files only)."""
    import logging

    from poptune.exceptions import RestoreError
    from poptune.storage.journal import JOURNAL_FILE
    from poptune.storage.replay import load_state

    protocol = getattr(fs, "protocol", "file")
    if protocol not in ("file", "local") and "file" not in protocol:
        return None
    path = os.path.join(fs_path, JOURNAL_FILE)
    if not os.path.isfile(path):
        return None
    try:
        state = load_state(path, tail_log_level=logging.DEBUG)
    except RestoreError as exc:
        logging.getLogger("poptune").warning(
            "ResultGrid.from_path(%r): the journal cannot be read (%s); every trial directory "
            "is listed", fs_path, exc)
        return None
    if state.header is None:
        return None
    return {t.created.dirname: t for t in state.trials.values()}


def _saved_checkpoint_config(exp_dir: str) -> Any:
    """The experiment's ``CheckpointConfig`` from its ``tuner.pkl``; None when there is none
    or it cannot be read (then checkpoints are not ranked)."""
    import logging

    path = os.path.join(exp_dir, "tuner.pkl")
    if not os.path.isfile(path):
        return None
    try:
        import cloudpickle

        with open(path, "rb") as f:
            state = cloudpickle.load(f)
        return getattr(state["run_config"], "checkpoint_config", None)
    except Exception:  # noqa: BLE001 - a stale pickle: the checkpoints stay in index order
        logging.getLogger("poptune").debug("Could not read %s", path, exc_info=True)
        return None


def _apply_journal(result: Result, status: str, trial_id: str | None,
                   live: dict[str, dict[str, Any]] | None, checkpoint_config: Any) -> None:
    """Give a trial's ``Result`` read from its directory what the journal knows: its status
    (a ``TERMINATED`` trial's last result gets ``done=True`` and no error, as ``fit()`` gives
    it), its id, the checkpoints still kept (``live``: name -> metrics) and, with a
    ``checkpoint_config``, Ray's ``best_checkpoints`` (:func:`rank_checkpoints`). The latest
    kept checkpoint stays ``result.checkpoint``."""
    result._status = str(status)
    result._trial_id = trial_id
    if str(status) == "TERMINATED":
        # a trial that failed, was retried and finished keeps its old error file: as in
        # Ray's ResultGrid, a terminated trial has no error
        result.error = None
        if result.metrics:
            result.metrics = {**result.metrics, "done": True}
    entries = result.best_checkpoints  # every checkpoint directory, by index
    if live is not None:
        entries = [(ckpt, {**row, **live[name]}) for ckpt, row in entries
                   if (name := os.path.basename(ckpt.path.rstrip("/"))) in live]
    result.checkpoint = entries[-1][0] if entries else None
    result._kept_checkpoints = list(entries)
    result.best_checkpoints = (rank_checkpoints(entries, checkpoint_config)
                               if checkpoint_config is not None else list(entries))


def _trial_key(result: Result, row: dict[str, Any]) -> str:
    """The trial id (Ray 2.60's ``logdir`` column and dataframe key): known to the engine or
    an analysis, else the one its results carry, else its directory name."""
    for candidate in (result._trial_id, row.get("trial_id"), (result.metrics or {}).get(
            "trial_id")):
        if isinstance(candidate, str) and candidate:
            return candidate
    return os.path.basename(result.path.rstrip("/")) or result.path


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(value)
    except TypeError:
        return True


def _isnan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
