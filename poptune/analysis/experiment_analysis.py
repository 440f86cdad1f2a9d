"""``ExperimentAnalysis``: the legacy view of an experiment, as ``tune.run`` returns it.

It reads an experiment directory: the journal (trial ids, statuses, checkpoint metrics) when
there is one, else every trial subdirectory (``result.json`` / ``progress.csv``,
``params.json``, ``checkpoint_NNNNNN/``, ``error.txt``), locally or at an fsspec URI.

Example:
    >>> import json, os, tempfile
    >>> exp = tempfile.mkdtemp()
    >>> for name, acc in [("t0", 0.7), ("t1", 0.9)]:
    ...     os.mkdir(os.path.join(exp, name))
    ...     row = {"acc": acc, "trial_id": name, "config": {"lr": acc / 10}}
    ...     _ = open(os.path.join(exp, name, "result.json"), "w").write(json.dumps(row) + "\\n")
    >>> analysis = ExperimentAnalysis(exp, default_metric="acc", default_mode="max")
    >>> analysis.best_config, analysis.best_trial.trial_id
    ({'lr': 0.09}, 't1')
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from poptune._validation import bad_type, bad_value, check_mode
from poptune.checkpoint import Checkpoint
from poptune.experiment.trial import Trial, TrialStatus
from poptune.results.result import _MISSING, Result, flatten_dict, is_number, lookup_metric
from poptune.results.result_grid import DEFAULT_METRIC, SCOPES, ResultGrid, _score, _status
from poptune.storage.journal import JOURNAL_FILE
from poptune.storage.remote import is_remote, local_path
from poptune.storage.replay import load_state

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["AnalysisTrial", "ExperimentAnalysis"]

logger = logging.getLogger(__name__)

TRAINING_ITERATION = "training_iteration"
_STATS = ("max", "min", "avg", "last", "last-5-avg", "last-10-avg")


class AnalysisTrial(Trial):
    """A trial as :attr:`ExperimentAnalysis.trials` lists it: a read-only :class:`Trial` with
    Ray's analysis attributes (``logdir``, ``checkpoint``, ``metric_analysis``)."""

    _result: Result

    @property
    def logdir(self) -> str:
        """The trial directory (Ray's older name for ``local_path``)."""
        return self.local_path

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The trial's latest checkpoint that still exists, or None."""
        return self._result.checkpoint

    @property
    def error(self) -> BaseException | None:
        """The trial's exception, if it failed."""
        return self._result.error

    @property
    def metric_analysis(self) -> dict[str, dict[str, float]]:
        """Per numeric metric: its ``max``, ``min``, ``avg``, ``last``, ``last-5-avg`` and
        ``last-10-avg`` over every reported result (NaNs skipped)."""
        df = self._result.metrics_dataframe
        out: dict[str, dict[str, float]] = {}
        if df is None:
            return out
        for column in df.select_dtypes(include=["number", "bool"]):
            v = df[column].astype(float).dropna()
            if len(v):
                out[str(column)] = {"max": v.max(), "min": v.min(), "avg": v.mean(),
                                    "last": v.iloc[-1], "last-5-avg": v.iloc[-5:].mean(),
                                    "last-10-avg": v.iloc[-10:].mean()}
        return {k: {s: float(x) for s, x in d.items()} for k, d in out.items()}


class _TrialFrames(dict):  # type: ignore[type-arg]
    """``{trial dir: DataFrame}`` (Ray <= 2.6) that also answers to a trial id (Ray >= 2.7)."""

    def __init__(self, frames: dict[str, Any], ids: dict[str, str]) -> None:
        super().__init__(frames)
        self._ids = ids

    def __missing__(self, key: str) -> Any:
        if key in self._ids:
            return self[self._ids[key]]
        raise KeyError(key)


# -- reading the experiment directory -----------------------------------------------------
def _read_journal(exp_dir: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """(header, one dict per trial of the latest experiment in ``exp_dir``), or None.

    Raises:
        RestoreError: the journal is damaged or not a poptune journal.
    """
    path = os.path.join(exp_dir, JOURNAL_FILE)
    if not os.path.isfile(path):
        return None
    state = load_state(path, tail_log_level=logging.INFO)  # a live run has a tail in flight
    trials = []
    for t in state.trials.values():
        rec = t.created
        trials.append({
            "rec": {"id": rec.trial_id, "trainable": rec.trainable, "tag": rec.tag,
                    "path": rec.path, "dirname": rec.dirname, "name": rec.name},
            "status": t.status, "msg": t.error_msg, "failures": t.failures,
            "ckpts": {c.name: (c.metrics, c.rows) for c in t.live_checkpoints}})
    return (state.header.encode() if state.header else {}), trials


def _result_at(path: str) -> Result:
    if os.path.isdir(path):
        return Result._from_dir(path)
    return Result(metrics={}, checkpoint=None, error=None, path=path)


def _make_trial(result: Result, status: str, trial_id: str | None = None,
                info: dict[str, Any] | None = None) -> AnalysisTrial:
    rec = info["rec"] if info else {}
    metrics = dict(result.metrics or {})
    dirname = os.path.basename(result.path.rstrip("/"))
    trial_id = trial_id or str(metrics.get("trial_id") or dirname)
    trainable = rec.get("trainable") or (
        dirname.split(f"_{trial_id}")[0] if f"_{trial_id}" in dirname else "")
    if status == "TERMINATED" and metrics:
        metrics["done"] = True
    if info is not None:  # the journal knows which checkpoints count and their results
        kept = []
        for ckpt, row in result.best_checkpoints:
            known = info["ckpts"].get(os.path.basename(ckpt.path))
            if known is not None:
                kept.append((ckpt, {**row, **known[0]}))
        result.best_checkpoints = kept
        result.checkpoint = kept[-1][0] if kept else None
    trial = AnalysisTrial(
        trial_id=trial_id, trainable_name=trainable, config=dict(result.config or {}),
        experiment_tag=rec.get("tag", metrics.get("experiment_tag", "")), local_path=result.path,
        dirname=dirname, status=TrialStatus(status), last_result=metrics,
        num_failures=info["failures"] if info else 0, error_msg=info["msg"] if info else None,
        checkpoint_path=result.checkpoint.path if result.checkpoint else None,
        custom_trial_name=rec.get("name"))
    trial._result = result
    return trial


def _load_trials(exp_dir: str) -> tuple[dict[str, Any], list[AnalysisTrial]]:
    journal = None if is_remote(exp_dir) else _read_journal(exp_dir)
    if journal is not None:
        header, infos = journal
        trials = []
        for info in infos:
            rec = info["rec"]
            path = os.path.join(exp_dir, rec["dirname"]) if rec.get("dirname") else rec["path"]
            trials.append(_make_trial(_result_at(path), info["status"], rec["id"], info))
        return header, trials
    grid = ResultGrid.from_path(exp_dir)
    if not len(grid):
        raise ValueError(f"The directory `{exp_dir}` does not contain a poptune experiment "
                         f"({JOURNAL_FILE} or trial directories with result.json/progress.csv)")
    return {}, [_make_trial(r, _inferred_status(r)) for r in grid]


def _inferred_status(result: Result) -> str:
    return _status(result) or ("TERMINATED" if result.metrics else "PENDING")


class ExperimentAnalysis:
    """Analyze the trials of one experiment (what ``tune.run`` returns).

    Args:
        experiment_checkpoint_path: the experiment directory (``{storage_path}/{name}``), or a
            file inside it such as ``journal.jsonl``.
        trials: trial objects to describe instead of every trial found on disk (matched by
            their directory; their ``status`` wins).
        default_metric: metric for ``best_*`` and the ``get_best_*`` methods' defaults.
        default_mode: ``"min"`` or ``"max"``; alone, it implies the metric ``"_metric"``.
        storage_filesystem: accepted for compatibility (URIs are read with fsspec).

    Raises:
        ValueError: the path does not exist or holds no experiment; a bad ``default_mode``.

    Example::

        analysis = tune.run(train, config=space, metric="loss", mode="min", name="exp")
        analysis.best_config, analysis.best_checkpoint
        # later, from disk:
        analysis = ExperimentAnalysis("~/poptune_results/exp", default_metric="loss",
                                      default_mode="min")
    """

    def __init__(
        self,
        experiment_checkpoint_path: str | os.PathLike[str],
        trials: Sequence[Trial] | None = None,
        default_metric: str | None = None,
        default_mode: str | None = None,
        storage_filesystem: Any = None,
    ) -> None:
        if not isinstance(experiment_checkpoint_path, (str, os.PathLike)):
            raise bad_type("experiment_checkpoint_path", experiment_checkpoint_path,
                           "a str path to an experiment directory")
        check_mode(default_mode, "default_mode")
        path = os.fspath(experiment_checkpoint_path)
        if not is_remote(path):
            path = os.path.abspath(os.path.expanduser(local_path(path)))
            if os.path.isfile(path):
                path = os.path.dirname(path)
            if not os.path.isdir(path):
                raise ValueError(f"The directory `{path}` does not exist and cannot be loaded "
                                 "for experiment analysis")
        header, loaded = _load_trials(path)
        if trials is not None:
            by_path = {os.path.realpath(t.local_path): t for t in loaded}
            adopted = []
            for t in trials:
                found = by_path.get(os.path.realpath(t.local_path))
                if found is None:
                    found = _make_trial(_result_at(t.local_path), str(t.status), t.trial_id)
                found.status = TrialStatus(str(t.status))
                adopted.append(found)
            loaded = adopted
        self._setup(path, header, loaded, default_metric, default_mode)

    def _setup(self, path: str, header: dict[str, Any], trials: list[AnalysisTrial],
               default_metric: str | None, default_mode: str | None) -> None:
        check_mode(default_mode, "default_mode")
        self.default_metric = default_metric
        self.default_mode = default_mode
        if default_metric is None and default_mode is not None:
            self.default_metric = DEFAULT_METRIC
        self._experiment_path = path
        self._header = header
        self.trials: list[AnalysisTrial] = trials
        self._trial_dataframes = self._frames()

    # -- paths and raw data --------------------------------------------------------------
    @property
    def experiment_path(self) -> str:
        """The experiment directory."""
        return self._experiment_path

    def fetch_trial_dataframes(self) -> dict[str, pd.DataFrame]:
        """(Re)read every trial's results: ``{trial dir: DataFrame}``, one row per report."""
        for t in self.trials:
            t._result._set_metrics_dataframe(None)  # read again on access
        return self._frames()

    def _frames(self) -> dict[str, pd.DataFrame]:
        import pandas as pd

        frames = {}
        for t in self.trials:
            df = t._result.metrics_dataframe
            frames[t.local_path] = df if df is not None else pd.DataFrame()
        self._trial_dataframes = _TrialFrames(frames, {t.trial_id: t.local_path
                                                       for t in self.trials})
        return self._trial_dataframes

    @property
    def trial_dataframes(self) -> dict[str, pd.DataFrame]:
        """``{trial dir: DataFrame}`` of every reported result, keys flattened with ``/``; a
        trial id works as a key too (Ray >= 2.7 keys this dict by trial id)."""
        return self._trial_dataframes

    @property
    def results(self) -> dict[str, dict[str, Any]]:
        """``{trial_id: last result}``."""
        return {t.trial_id: t.last_result for t in self.trials}

    @property
    def results_df(self) -> pd.DataFrame:
        """Every trial's last result, flattened, one row per trial, indexed by ``trial_id``."""
        import pandas as pd

        rows = [{**flatten_dict(t.last_result), "trial_id": t.trial_id} for t in self.trials]
        return pd.DataFrame.from_records(rows, index="trial_id") if rows else pd.DataFrame()

    def get_all_configs(self, prefix: bool = False) -> dict[str, dict[str, Any]]:
        """``{trial dir: config}``; with ``prefix``, configs flattened as ``config/...``."""
        return {t.local_path: flatten_dict({"config": t.config}) if prefix else t.config
                for t in self.trials}

    def dataframe(self, metric: str | None = None, mode: str | None = None) -> pd.DataFrame:
        """One row per trial: its last result, or with ``metric`` and ``mode`` the result
        where ``metric`` was lowest (``"min"``) or highest (``"max"``) *ever*.

        Columns are the flattened result keys, ``config/...`` and ``logdir``. The defaults
        are not used here, as in Ray. Trials that never reported are left out.

        Raises:
            ValueError: a bad ``mode``, or ``mode`` without ``metric``.
        """
        check_mode(mode)
        if mode and not metric:
            raise ValueError("If a `mode` is passed to `ExperimentAnalysis.dataframe()`, "
                             "you'll also have to pass a `metric`!")
        grid = ResultGrid([t._result for t in self.trials], self._experiment_path)
        return grid.get_dataframe(filter_metric=metric, filter_mode=mode)

    def stats(self) -> dict[str, Any]:
        """``{"start_time": ..., "timestamp": ...}``: when the experiment started and when
        its state was last written (seconds since the epoch)."""
        stamp = None
        if not is_remote(self._experiment_path):
            journal = os.path.join(self._experiment_path, JOURNAL_FILE)
            stamp = os.path.getmtime(journal if os.path.exists(journal) else self._experiment_path)
        return {"start_time": self._header.get("start"), "timestamp": stamp}

    # -- best trial ----------------------------------------------------------------------
    def _validate_metric(self, metric: str | None) -> str:
        if not metric and not self.default_metric:
            raise ValueError("No `metric` has been passed and `default_metric` has not been "
                             "set. Please specify the `metric` parameter.")
        return metric or self.default_metric  # type: ignore[return-value]

    def _validate_mode(self, mode: str | None) -> str:
        if not mode and not self.default_mode:
            raise ValueError("No `mode` has been passed and `default_mode` has not been set. "
                             "Please specify the `mode` parameter.")
        check_mode(mode)
        return mode or self.default_mode  # type: ignore[return-value]

    def _need_defaults(self, what: str, alternative: str) -> None:
        if not self.default_metric or not self.default_mode:
            raise ValueError(f"To fetch the `{what}`, pass a `metric` and `mode` parameter to "
                             f"`tune.run()`. Alternatively, use the `{alternative}` method to "
                             "set the metric and mode explicitly.")

    def get_best_trial(self, metric: str | None = None, mode: str | None = None,
                       scope: str = "last", filter_nan_and_inf: bool = True) -> AnalysisTrial | None:
        """The trial that scored best on ``metric`` (defaults: ``default_metric``/``_mode``).

        ``scope`` scores each trial by its ``"last"`` value, the mean of ``"avg"`` /
        ``"last-5-avg"`` / ``"last-10-avg"`` of its values, or with ``"all"`` its best value
        under ``mode``. With ``filter_nan_and_inf``, NaN and infinite scores are skipped;
        otherwise a NaN never beats a number. Ties go to the earlier trial. As in Ray, an
        experiment of one trial returns it without comparing.

        Returns:
            The best trial, or None (with a warning) when no trial reported ``metric``.

        Raises:
            ValueError: no metric or mode in the call nor the defaults; a bad mode or scope.
        """
        if len(self.trials) == 1:
            return self.trials[0]
        metric = self._validate_metric(metric)
        mode = self._validate_mode(mode)
        if scope not in SCOPES:
            raise bad_value("scope", scope, "one of " + ", ".join(repr(s) for s in SCOPES))
        best: AnalysisTrial | None = None
        best_score = math.nan
        for trial in self.trials:
            score = _score(trial._result, metric, mode, scope)
            if score is None or (filter_nan_and_inf and not math.isfinite(score)):
                continue
            if (best is None or (math.isnan(best_score) and not math.isnan(score))
                    or (mode == "max" and score > best_score)
                    or (mode == "min" and score < best_score)):
                best, best_score = trial, score
        if best is None:
            logger.warning("Could not find best trial. Did you pass the correct `metric` "
                           "parameter? (metric=%r)", metric)
        return best

    def get_best_config(self, metric: str | None = None, mode: str | None = None,
                        scope: str = "last") -> dict[str, Any] | None:
        """The config of :meth:`get_best_trial`, or None."""
        trial = self.get_best_trial(metric, mode, scope)
        return trial.config if trial else None

    def get_best_logdir(self, metric: str | None = None, mode: str | None = None,
                        scope: str = "last") -> str | None:
        """The directory of :meth:`get_best_trial`, or None."""
        trial = self.get_best_trial(metric, mode, scope)
        return trial.local_path if trial else None

    @property
    def best_trial(self) -> AnalysisTrial | None:
        """The best trial by ``metric``/``mode`` given to ``tune.run`` (last results)."""
        self._need_defaults("best_trial", "get_best_trial(metric, mode)")
        return self.get_best_trial(self.default_metric, self.default_mode)

    @property
    def best_config(self) -> dict[str, Any] | None:
        """The config of :attr:`best_trial`."""
        self._need_defaults("best_config", "get_best_config(metric, mode)")
        return self.get_best_config(self.default_metric, self.default_mode)

    @property
    def best_logdir(self) -> str | None:
        """The directory of :attr:`best_trial`."""
        self._need_defaults("best_logdir", "get_best_logdir(metric, mode, scope)")
        return self.get_best_logdir(self.default_metric, self.default_mode)

    @property
    def best_result(self) -> dict[str, Any]:
        """The last result of :attr:`best_trial`."""
        self._need_defaults("best_result", "get_best_trial(metric, mode).last_result")
        return self._best().last_result

    @property
    def best_dataframe(self) -> pd.DataFrame:
        """Every result of :attr:`best_trial`, as a DataFrame."""
        self._need_defaults("best_dataframe", "get_best_trial(metric, mode)")
        return self._trial_dataframes[self._best().local_path]

    @property
    def best_result_df(self) -> pd.DataFrame:
        """:attr:`best_result` flattened into a one-row DataFrame indexed by ``trial_id``."""
        import pandas as pd

        self._need_defaults("best_result_df", "get_best_trial(metric, mode).last_result")
        best = self._best()
        row = {**flatten_dict(best.last_result), "trial_id": best.trial_id}
        return pd.DataFrame.from_records([row], index="trial_id")

    def _best(self) -> AnalysisTrial:
        trial = self.get_best_trial(self.default_metric, self.default_mode)
        if trial is None:
            raise ValueError(f"No best trial found. Please check if you specified the correct "
                             f"default metric ({self.default_metric}) and mode "
                             f"({self.default_mode}).")
        return trial

    # -- checkpoints ---------------------------------------------------------------------
    def _result_of(self, trial: Trial | str) -> Result:
        if isinstance(trial, AnalysisTrial):
            return trial._result
        if isinstance(trial, Trial):
            path = trial.local_path
        elif isinstance(trial, (str, os.PathLike)):
            path = os.path.abspath(os.path.expanduser(os.fspath(trial)))
        else:
            raise bad_type("trial", trial, "a trial of `analysis.trials` or its directory")
        for t in self.trials:
            if os.path.realpath(t.local_path) == os.path.realpath(path):
                return t._result
        return _result_at(path)

    def _checkpoints(self, trial: Trial | str, metric: str | None) -> list[tuple[Checkpoint, Any]]:
        metric = metric or self.default_metric or TRAINING_ITERATION
        out = []
        for ckpt, metrics in self._result_of(trial).best_checkpoints:
            value = lookup_metric(metrics, metric)
            out.append((ckpt, None if value is _MISSING else value))
        return out

    def get_trial_checkpoints_paths(self, trial: Trial | str,
                                    metric: str | None = None) -> list[tuple[str, Any]]:
        """``[(checkpoint dir, value of metric reported with it)]`` for each kept checkpoint
        (``metric`` defaults to ``default_metric``, else ``training_iteration``; the value is
        None when that result lacked it). Remote checkpoints are given as URIs."""
        return [(getattr(c, "_uri", c.path), v) for c, v in self._checkpoints(trial, metric)]

    def get_best_checkpoint(self, trial: Trial | str, metric: str | None = None,
                            mode: str | None = None,
                            return_path: bool = False) -> Checkpoint | str | None:
        """The trial's kept checkpoint whose result scored best on ``metric``.

        ``metric`` defaults to ``default_metric``, else ``training_iteration``; ``mode`` to
        ``default_mode``. Checkpoints whose result lacks the metric or has NaN are skipped;
        ties go to the earlier checkpoint. ``trial`` may also be a trial directory.

        Returns:
            A :class:`~poptune.Checkpoint` (its path or URI with ``return_path``), or None
            (logged) when no checkpoint qualifies.
        """
        mode = self._validate_mode(mode)
        scored = [(c, float(v)) for c, v in self._checkpoints(trial, metric)
                  if is_number(v) and not math.isnan(float(v))]
        if not scored:
            logger.error("No checkpoints have been found for trial %s.", trial)
            return None
        best = (max if mode == "max" else min)(scored, key=lambda cv: cv[1])[0]
        return getattr(best, "_uri", best.path) if return_path else best

    def get_last_checkpoint(self, trial: Trial | str | None = None,
                            metric: str = TRAINING_ITERATION,
                            mode: str = "max") -> Checkpoint | str | None:
        """The checkpoint with the highest ``training_iteration`` of ``trial`` (default: the
        best trial by ``metric``/``mode``)."""
        if trial is None:
            trial = self.get_best_trial(metric, mode)
            if trial is None:
                return None
        return self.get_best_checkpoint(trial, TRAINING_ITERATION, "max")

    @property
    def best_checkpoint(self) -> Checkpoint | str | None:
        """The best checkpoint (by ``default_metric``/``default_mode``) of :attr:`best_trial`."""
        self._need_defaults("best_checkpoint", "get_best_checkpoint(trial, metric, mode)")
        return self.get_best_checkpoint(self._best(), self.default_metric, self.default_mode)

    def __repr__(self) -> str:
        return f"ExperimentAnalysis({self._experiment_path!r}, trials={len(self.trials)})"

    # -- used by tune.run ----------------------------------------------------------------
    @classmethod
    def _from_result_grid(cls, grid: ResultGrid, default_metric: str | None,
                          default_mode: str | None) -> ExperimentAnalysis:
        """The analysis of ``grid``'s trials, as the run left them (used by ``tune.run``)."""
        path = grid.experiment_path
        journal = None if is_remote(path) else _read_journal(path)
        header, infos = journal if journal is not None else ({}, [])
        by_dir = {info["rec"].get("dirname"): info for info in infos}
        trials = []
        for result in grid:
            info = by_dir.get(os.path.basename(result.path.rstrip("/")))
            trial_id = info["rec"]["id"] if info else None
            trials.append(_make_trial(result, _inferred_status(result), trial_id, info))
        analysis = cls.__new__(cls)
        analysis._setup(path, header, trials, default_metric, default_mode)
        return analysis
