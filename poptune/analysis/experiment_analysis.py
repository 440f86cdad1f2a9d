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
from poptune.results.result_grid import (
    DEFAULT_METRIC,
    SCOPES,
    ResultGrid,
    _apply_journal,
    _finite,
    _isnan,
    _saved_checkpoint_config,
    _score,
    _status,
)
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
    def metric_analysis(self) -> dict[str, dict[str, Any]]:
        """Per numeric metric (flattened ``"a/b"``), Ray Tune's running statistics over the
        results that reported it: ``max``, ``min``, ``avg`` (Ray's running mean by
        ``training_iteration``), ``last``, ``last-5-avg`` and ``last-10-avg``; ints and bools
        stay so where Ray keeps them, NaNs count as Ray counts them. See
        :func:`poptune.results.result.metric_analysis`."""
        return {k: dict(v) for k, v in self._result._metric_analysis().items()}


class _ByTrialId(dict):  # type: ignore[type-arg]
    """``{trial id: value}`` (Ray >= 2.7) that also answers to a trial directory (Ray <= 2.6
    keyed these dicts by it), with ``[]``, ``get`` and ``in``."""

    def __init__(self, values: dict[str, Any], paths: dict[str, str]) -> None:
        super().__init__(values)
        self._paths = paths  # trial directory -> trial id

    def _id_of(self, key: Any) -> Any:
        if isinstance(key, (str, os.PathLike)):
            path = os.fspath(key)
            return self._paths.get(path, self._paths.get(os.path.normpath(path).rstrip("/")))
        return None

    def __missing__(self, key: Any) -> Any:
        trial_id = self._id_of(key)
        if trial_id is not None and dict.__contains__(self, trial_id):
            return dict.__getitem__(self, trial_id)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        if dict.__contains__(self, key):
            return True
        trial_id = self._id_of(key)
        return trial_id is not None and dict.__contains__(self, trial_id)

    def get(self, key: Any, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default


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
            "error_file": t.error_file,
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
        result.metrics = dict(metrics)  # the grid's Result shows it too, as fit()'s does
    result._trial_id = trial_id
    result._status = str(status)
    trial = AnalysisTrial(
        trial_id=trial_id, trainable_name=trainable, config=dict(result.config or {}),
        experiment_tag=rec.get("tag", metrics.get("experiment_tag", "")), local_path=result.path,
        dirname=dirname, status=TrialStatus(status), last_result=metrics,
        num_failures=info["failures"] if info else 0, error_msg=info["msg"] if info else None,
        checkpoint_path=result.checkpoint.path if result.checkpoint else None,
        custom_trial_name=rec.get("name"), error_file=_error_file(result.path, status, info))
    trial._result = result
    return trial


def _error_file(trial_dir: str, status: str, info: dict[str, Any] | None) -> str | None:
    """Where an errored trial's traceback is (Ray's ``Trial.error_file``): the journal's
    record of it, else ``error.txt`` in the trial dir; None for a trial that did not fail."""
    if status != "ERROR":
        return None
    for path in ((info or {}).get("error_file"), os.path.join(trial_dir, "error.txt")):
        if path and os.path.exists(path):  # the journal's path, unless the experiment moved
            return path
    return None


def _load_trials(exp_dir: str) -> tuple[dict[str, Any], list[AnalysisTrial]]:
    journal = None if is_remote(exp_dir) else _read_journal(exp_dir)
    if journal is not None:
        header, infos = journal
        checkpoint_config = _saved_checkpoint_config(exp_dir)
        trials = []
        for info in infos:
            rec = info["rec"]
            path = os.path.join(exp_dir, rec["dirname"]) if rec.get("dirname") else rec["path"]
            result = _result_at(path)
            # the journal knows which checkpoints are kept and their results; Ray ranks them
            _apply_journal(result, info["status"], rec["id"],
                           {name: known[0] for name, known in info["ckpts"].items()},
                           checkpoint_config)
            trials.append(_make_trial(result, info["status"], rec["id"], info))
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
        """(Re)read every trial's results: ``{trial id: DataFrame}``, one row per report (a
        trial directory works as a key too)."""
        for t in self.trials:
            t._result._set_metrics_dataframe(None)  # read again on access
        return self._frames()

    def _frames(self) -> dict[str, pd.DataFrame]:
        import pandas as pd

        frames = {}
        for t in self.trials:
            df = t._result.metrics_dataframe
            frames[t.trial_id] = df if df is not None else pd.DataFrame()
        self._trial_dataframes = _ByTrialId(frames, self._paths())
        return self._trial_dataframes

    def _paths(self) -> dict[str, str]:
        """``{trial directory: trial id}`` (for Ray <= 2.6 code that looks up by directory)."""
        paths = {}
        for t in self.trials:
            paths[t.local_path] = t.trial_id
            paths[os.path.normpath(t.local_path).rstrip("/")] = t.trial_id
        return paths

    @property
    def trial_dataframes(self) -> dict[str, pd.DataFrame]:
        """``{trial id: DataFrame}`` of every reported result, keys flattened with ``/``, as
        Ray Tune >= 2.7; a trial directory works as a key too (Ray <= 2.6 keyed it so)."""
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
        """``{trial id: config}`` (Ray >= 2.7; a trial directory works as a key too, as Ray
        <= 2.6 keyed it); with ``prefix``, configs flattened as ``config/...``."""
        return _ByTrialId({t.trial_id: flatten_dict({"config": t.config}) if prefix else t.config
                           for t in self.trials}, self._paths())

    def dataframe(self, metric: str | None = None, mode: str | None = None) -> pd.DataFrame:
        """One row per trial: its last result, or with ``metric`` and ``mode`` the result
        where ``metric`` was lowest (``"min"``) or highest (``"max"``) *ever*.

        Columns are the flattened result keys, ``config/...`` and ``logdir`` (the trial id,
        as in Ray 2.60; Ray <= 2.6 gave the trial directory). A trial's row is a row of its
        dataframe, so ``done`` is as logged. The defaults are not used here, as in Ray.
        Trials that never reported are left out.

        Raises:
            ValueError: a bad ``mode``, or ``mode`` without ``metric``.
        """
        check_mode(mode)
        if mode and not metric:
            raise ValueError("If a `mode` is passed to `ExperimentAnalysis.dataframe()`, "
                             "you'll also have to pass a `metric`!")
        for t in self.trials:
            t._result._trial_id = t.trial_id
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

        ``scope`` scores each trial by its :attr:`AnalysisTrial.metric_analysis` statistic, as
        Ray: ``"last"``, ``"avg"``, ``"last-5-avg"``, ``"last-10-avg"``, or with ``"all"`` its
        ``max``/``min`` under ``mode``. With ``filter_nan_and_inf``, NaN and infinite scores are skipped;
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
            if score is None or (filter_nan_and_inf and not _finite(score)):
                continue
            if (best is None or (_isnan(best_score) and not _isnan(score))
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
        return self._trial_dataframes[self._best().trial_id]

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

    def _checkpoints(self, trial: Trial | str, metric: str | None,
                     kept: bool = False) -> list[tuple[Checkpoint, Any]]:
        """``(checkpoint, value of metric)`` of Ray's ``best_checkpoints`` (the top
        ``num_to_keep``, worst to best), or with ``kept`` of every checkpoint on disk."""
        metric = metric or self.default_metric or TRAINING_ITERATION
        result = self._result_of(trial)
        entries = result.best_checkpoints
        if kept and result._kept_checkpoints is not None:
            entries = result._kept_checkpoints
        out = []
        for ckpt, metrics in entries:
            value = lookup_metric(metrics, metric)
            out.append((ckpt, None if value is _MISSING else value))
        return out

    def get_trial_checkpoints_paths(self, trial: Trial | str,
                                    metric: str | None = None) -> list[tuple[str, Any]]:
        """``[(checkpoint dir, value of metric reported with it)]`` for each checkpoint kept on
        disk, oldest first: the top ``num_to_keep`` and the latest (``metric`` defaults to
        ``default_metric``, else ``training_iteration``; the value is None when that result
        lacked it). Remote checkpoints are given as URIs."""
        return [(getattr(c, "_uri", c.path), v)
                for c, v in self._checkpoints(trial, metric, kept=True)]

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
        """The checkpoint with the highest ``training_iteration`` among ``trial``'s
        ``best_checkpoints`` (default trial: the best by ``metric``/``mode``). As in Ray, that
        is the top ``num_to_keep`` by score: the latest checkpoint only when it is among them
        (``trial.checkpoint`` is the latest)."""
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
