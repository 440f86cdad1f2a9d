"""``load_experiment``: read back an experiment run by :class:`poptune.syne_tune.Tuner`.

Example:
    >>> exp = load_experiment("python-entrypoint-2026-12-03-12-00-00-000")  # doctest: +SKIP
    >>> exp.results[["trial_id", "st_tuner_time", "validation_error"]]  # doctest: +SKIP
    >>> exp.best_config()  # doctest: +SKIP
    {'trial_id': 3, 'validation_error': 0.11, 'config_learning_rate': 0.3, ...}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from poptune._validation import bad_value
from poptune.exceptions import TuneConfigError
from poptune.syne_tune._bridge import METADATA_FILE, RESULTS_FILE
from poptune.syne_tune.tuner import experiment_path

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ExperimentResult", "get_metadata", "list_experiments", "load_experiment",
           "load_experiments_df"]

#: the metadata entry that marks a Syne Tune experiment (``ST_TUNER_CREATION_TIMESTAMP``)
_CREATED = "st_tuner_creation_timestamp"


@dataclass
class ExperimentResult:
    """An experiment's results table (one row per reported result), metadata and path.

    ``results`` columns: ``trial_id`` (0, 1, ...), the reported metrics, ``st_worker_time``
    / ``st_worker_timestamp`` / ``st_worker_iter`` (from the reporter), ``st_tuner_time``
    (seconds since the tuner started, when the result arrived), ``st_decision``,
    ``st_status`` and ``config_<name>`` for each hyperparameter.
    """

    name: str
    results: pd.DataFrame | None
    metadata: dict[str, Any]
    tuner: Any
    path: Path

    def __str__(self) -> str:
        if self.results is None:
            return f"Experiment {self.name}"
        return (f"Experiment {self.name} contains {len(self.results)} evaluations from "
                f"{self.results.trial_id.nunique()} trials")

    def metric_names(self) -> list[str]:
        return list(self.metadata.get("metric_names") or [])

    def metric_mode(self) -> str:
        return str(self.metadata.get("metric_mode", "min"))

    def entrypoint_name(self) -> str:
        return str(self.metadata.get("entrypoint", ""))

    def creation_date(self) -> datetime:
        return datetime.fromtimestamp(self.metadata["st_tuner_creation_timestamp"])

    def _metric(self, metric: str | int) -> tuple[str, str]:
        names = self.metric_names()
        if isinstance(metric, int):
            if not 0 <= metric < len(names):
                raise bad_value("metric", metric, f"an index into the metrics {names}")
            return names[metric], self.metric_mode()
        if self.results is None or metric not in self.results.columns:
            raise bad_value("metric", metric, f"a reported metric, e.g. one of {names}")
        return metric, self.metric_mode()

    def _table(self) -> pd.DataFrame:
        """The results, or an error saying why this experiment has none."""
        if self.results is not None and len(self.results) > 0:
            return self.results
        table = self.path / RESULTS_FILE
        if not self.path.is_dir():
            why = (f"there is no experiment directory {self.path} (check the name "
                   f"{self.name!r} and `local_path`)")
        elif self.results is None:
            why = f"{table} does not exist (no trial reported a result)"
        else:
            why = f"{table} holds no results (no trial reported a result)"
        raise TuneConfigError(f"experiment {self.name!r} has no results: {why}")

    def best_config(self, metric: str | int = 0) -> dict[str, Any]:
        """The row (without ``st_`` fields) with the best value of ``metric``."""
        df = self._table()
        name, mode = self._metric(metric)
        index = df[name].idxmin() if mode == "min" else df[name].idxmax()
        return {k: v for k, v in df.loc[index].to_dict().items() if not k.startswith("st_")}

    def plot(self, metric_to_plot: str | int = 0, figure_path: str | None = None,
             **plt_kwargs: Any) -> None:
        """The best ``metric`` so far against wall-clock time (``st_tuner_time``), drawn with
        pyplot; saved to ``figure_path`` when given, else shown."""
        df = self._table().sort_values("st_tuner_time")
        name, mode = self._metric(metric_to_plot)
        import matplotlib.pyplot as plt
        best = df[name].cummax() if mode == "max" else df[name].cummin()
        fig, ax = plt.subplots()
        ax.plot(df["st_tuner_time"], best, **plt_kwargs)
        ax.set_xlabel("wallclock time (secs)")
        ax.set_ylabel(name)
        ax.set_title(f"Best result over time {self.name}")
        self._finish(fig, figure_path)

    def plot_trials_over_time(self, metric_to_plot: str | int = 0,
                              figure_path: str | None = None,
                              figsize: tuple[float, float] | None = None) -> None:
        """Each trial's ``metric`` against wall-clock time; results where the scheduler
        stopped a trial are red crosses."""
        df = self._table()
        name, _ = self._metric(metric_to_plot)
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(1, 1, figsize=figsize or (12, 4))
        for trial_id in sorted(df.trial_id.unique()):
            part = df[df.trial_id == trial_id]
            ax.plot(part["st_tuner_time"], part[name], marker=".", alpha=0.5)
        stops = df[df["st_decision"] == "STOP"]
        ax.scatter(stops["st_tuner_time"], stops[name], marker="x", color="red")
        ax.set_xlabel("Wallclock time (s)")
        ax.set_ylabel(name)
        ax.set_title("Trials value over time")
        self._finish(fig, figure_path)

    @staticmethod
    def _finish(fig: Any, figure_path: str | None) -> None:
        if figure_path is not None:
            fig.savefig(figure_path)
        else:
            fig.show()


def load_experiment(tuner_name: str, load_tuner: bool = False, local_path: str | None = None,
                    experiment_name: str | None = None) -> ExperimentResult:
    """Load the experiment ``tuner_name`` from ``local_path`` (default ``$SYNETUNE_FOLDER``
    or ``~/syne-tune``). ``results`` is None when no results were written;
    ``load_tuner`` is accepted (poptune keeps ``tuner.pkl`` for ``poptune.Tuner.restore``).
    """
    import pandas as pd

    root = Path(local_path) / experiment_name if (local_path and experiment_name) else (
        Path(local_path) if local_path else experiment_path())
    path = root / tuner_name
    try:
        with open(path / METADATA_FILE) as f:
            metadata = json.load(f)
    except FileNotFoundError:
        metadata = {}
    results = None
    if os.path.exists(path / RESULTS_FILE):
        try:
            results = pd.read_csv(path / RESULTS_FILE)
        except pd.errors.EmptyDataError:  # no trial reported before tuning stopped
            results = pd.DataFrame(columns=["trial_id", "st_tuner_time"])
    return ExperimentResult(name=path.name, results=results, metadata=metadata, tuner=None,
                            path=path)


PathFilter = Callable[[str], bool]
ExperimentFilter = Callable[[ExperimentResult], bool]


def _root(root: str | Path | None) -> Path:
    return experiment_path() if root is None else Path(root)


def get_metadata(path_filter: PathFilter | None = None,
                 root: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """The metadata of every experiment under ``root`` (default ``$SYNETUNE_FOLDER`` or
    ``~/syne-tune``, read when called) whose directory passes ``path_filter``, by tuner
    name; each with ``"path"``, the directory holding the experiment (as Syne Tune: only
    ``metadata.json`` files holding ``st_tuner_creation_timestamp`` count).

    Example:
        >>> get_metadata(root="/nonexistent")
        {}
    """
    res: dict[str, dict[str, Any]] = {}
    for metadata_path in sorted(_root(root).glob(f"**/{METADATA_FILE}")):
        path = metadata_path.parent
        if path_filter is not None and not path_filter(str(path)):
            continue
        try:
            with open(metadata_path) as f:
                metadata = json.load(f)
        except json.JSONDecodeError:
            print(f"Could not read {path}")
            continue
        if isinstance(metadata, dict) and _CREATED in metadata:
            metadata["path"] = str(path.parent)
            res[path.name] = metadata
    return res


def list_experiments(path_filter: PathFilter | None = None,
                     experiment_filter: ExperimentFilter | None = None,
                     root: str | Path | None = None,
                     load_tuner: bool = False) -> list[ExperimentResult]:
    """Every experiment under ``root`` (default as :func:`get_metadata`) with both
    metadata and results, newest first (by ``st_tuner_creation_timestamp``).
    ``path_filter`` is given the path of each ``metadata.json``, ``experiment_filter``
    each :class:`ExperimentResult`.

    Example:
        >>> list_experiments(root="/nonexistent")
        []
    """
    res = []
    for metadata_path in sorted(_root(root).glob(f"**/{METADATA_FILE}")):
        path = metadata_path.parent
        if path_filter is not None and not path_filter(str(metadata_path)):
            continue
        result = load_experiment(path.name, load_tuner, local_path=str(path.parent))
        if (experiment_filter is None or experiment_filter(result)) and (
                result.results is not None and result.metadata is not None):
            res.append(result)
    return sorted(res, key=lambda r: r.metadata.get(_CREATED, 0), reverse=True)


def load_experiments_df(path_filter: PathFilter | None = None,
                        experiment_filter: ExperimentFilter | None = None,
                        root: str | Path | None = None,
                        load_tuner: bool = False) -> pd.DataFrame:
    """The results of :func:`list_experiments` in one DataFrame, each row with its
    ``tuner_name`` and its experiment's metadata entries as columns (a list entry of one
    value as that value, a longer one as ``{key}-{i}`` columns).

    Raises:
        ValueError: no experiment matched (pandas' "No objects to concatenate", as Syne
            Tune).
    """
    import pandas as pd

    dfs = []
    for experiment in list_experiments(path_filter, experiment_filter, root, load_tuner):
        assert experiment.results is not None
        df = experiment.results
        df["tuner_name"] = experiment.name
        for key, value in experiment.metadata.items():
            if isinstance(value, list):
                if len(value) > 1:
                    for i, x in enumerate(value):
                        df[f"{key}-{i}"] = x
                elif value:
                    df[key] = value[0]
            else:
                df[key] = value
        dfs.append(df)
    return pd.concat(dfs, ignore_index=True)
