"""``load_experiment``: read back an experiment run by :class:`poptune.syne_tune.Tuner`.

Example:
    >>> exp = load_experiment("python-entrypoint-2026-12-03-12-00-00-000")  # doctest: +SKIP
    >>> exp.results[["trial_id", "st_tuner_time", "validation_error"]]  # doctest: +SKIP
    >>> exp.best_config()  # doctest: +SKIP
    {'trial_id': 3, 'validation_error': 0.11, 'config_learning_rate': 0.3, ...}
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from poptune._validation import bad_value
from poptune.exceptions import TuneConfigError
from poptune.syne_tune._bridge import METADATA_FILE, RESULTS_FILE
from poptune.syne_tune.tuner import TUNER_FILE, experiment_path

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ExperimentResult", "get_metadata", "hypervolume", "hypervolume_cumulative",
           "list_experiments", "load_experiment", "load_experiments_df"]

logger = logging.getLogger("poptune.syne_tune")

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

    def _modes(self, names: list[str], metric_modes: str | list[str] | None) -> list[str]:
        """Each metric's mode: ``metric_modes`` (one for all, or one per metric), else the
        experiment's (a list in ``metadata.json`` goes by the metric's index), else min."""
        if metric_modes is None:
            stored = self.metadata.get("metric_mode", "min")
            known = self.metric_names()
            if isinstance(stored, list):
                return [stored[known.index(n)] if n in known and known.index(n) < len(stored)
                        else "min" for n in names]
            return [str(stored)] * len(names)
        modes = [metric_modes] * len(names) if isinstance(metric_modes, str) else list(
            metric_modes)
        if len(modes) != len(names) or any(m not in ("min", "max") for m in modes):
            raise bad_value("metric_modes", metric_modes, f"'min' or 'max', or a list of "
                            f"them, one per metric of {names}")
        return modes

    def hypervolume_indicator(self, metrics_to_plot: list[int] | list[str] | None = None,
                              reference_point: Any = None,
                              metric_modes: str | list[str] | None = None
                              ) -> tuple[Any, Any]:
        """The hypervolume indicator of the results seen so far, after each result in
        ``st_tuner_time`` order: ``(times, values)`` (numpy arrays). See
        :meth:`plot_hypervolume` for the arguments."""
        import numpy as np

        if metrics_to_plot is None:
            metrics_to_plot = self.metric_names()
        if isinstance(metrics_to_plot, (str, int)) or len(metrics_to_plot) < 2:
            raise bad_value("metrics_to_plot", metrics_to_plot,
                            "two metrics or more (names or indices into the experiment's "
                            "metrics): a hypervolume needs several objectives")
        names = [self._metric(m)[0] for m in metrics_to_plot]
        modes = self._modes(names, metric_modes)
        df = self._table().sort_values("st_tuner_time", kind="stable")
        sign = np.array([-1.0 if m == "max" else 1.0 for m in modes])
        points = df[names].to_numpy(dtype=float) * sign  # every metric minimized
        if reference_point is None:
            finite = points[np.isfinite(points).all(axis=1)]
            if len(finite) == 0:
                raise bad_value("metrics_to_plot", names, "metrics with numeric results")
            ref = finite.max(axis=0) * (1 + _EPSILON) + _EPSILON  # as Syne Tune
        else:
            ref = np.asarray(reference_point, dtype=float).reshape(-1)
            if ref.shape != (len(names),) or not np.isfinite(ref).all():
                raise bad_value("reference_point", reference_point,
                                f"{len(names)} finite numbers, one per metric of {names}")
            ref = ref * sign
        return df["st_tuner_time"].to_numpy(dtype=float), hypervolume_cumulative(points, ref)

    def plot_hypervolume(self, metrics_to_plot: list[int] | list[str] | None = None,
                         reference_point: Any = None, figure_path: str | None = None,
                         metric_modes: str | list[str] | None = None,
                         **plt_kwargs: Any) -> None:
        """The hypervolume indicator of the results so far against wall-clock time
        (``st_tuner_time``), drawn with pyplot; saved to ``figure_path``, else shown.

        Args:
            metrics_to_plot: two metrics or more: names of reported values, or indices into
                the experiment's metrics (default: the experiment's metrics).
            reference_point: one value per metric, in the metrics' own units, worse than
                the results (default: the worst value seen per metric, moved slightly
                further, as Syne Tune).
            metric_modes: ``"min"``/``"max"`` for all, or one per metric (default: the
                experiment's ``metric_mode``). Syne Tune insists on ``"max"`` for all and
                then measures as if all were minimized; poptune honours each mode.
            plt_kwargs: passed to ``Axes.plot``.

        Example:
            >>> exp.plot_hypervolume(["error", "latency"], reference_point=[1.0, 100.0],
            ...                      figure_path="hv.png")  # doctest: +SKIP
        """
        times, values = self.hypervolume_indicator(metrics_to_plot, reference_point,
                                                   metric_modes)
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.plot(times, values, **plt_kwargs)
        ax.set_xlabel("wallclock time (secs)")
        ax.set_ylabel("Hypervolume indicator")
        ax.set_title(f"Hypervolume over time {self.name}")
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
    or ``~/syne-tune``). ``results`` is None when no results were written. With
    ``load_tuner`` the result's ``tuner`` is the :class:`~poptune.syne_tune.Tuner` saved in
    its ``tuner.dill`` (``Tuner.load``), or None when there is none or it cannot be read (as
    Syne Tune; the reason is logged as a warning); its ``run()`` continues the experiment.

    Example:
        >>> exp = load_experiment("my-tuning", load_tuner=True)  # doctest: +SKIP
        >>> exp.tuner.stop_criterion = StoppingCriterion(max_num_trials_started=20)  # doctest: +SKIP
        >>> exp.tuner.run()  # doctest: +SKIP
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
    tuner = None
    if load_tuner:
        from poptune.syne_tune.tuner import Tuner

        try:
            tuner = Tuner.load(path)
        except FileNotFoundError:
            tuner = None
        except Exception as exc:  # noqa: BLE001 - as Syne Tune: no tuner, and say why
            logger.warning("load_experiment(%r, load_tuner=True): %s could not be loaded "
                           "(%s: %s); `tuner` is None", tuner_name, path / TUNER_FILE,
                           type(exc).__name__, exc)
            tuner = None
    return ExperimentResult(name=tuner.name if tuner is not None else path.name,
                            results=results, metadata=metadata, tuner=tuner, path=path)


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


#: Syne Tune's margin of the default reference point
_EPSILON = 1e-6


def hypervolume(points: Any, reference_point: Any) -> float:
    """The volume dominated by ``points`` (rows, every objective minimized) and bounded by
    ``reference_point``; points not strictly better than it in every objective add nothing.

    Example:
        >>> hypervolume([[1.0, 3.0], [2.0, 1.0]], [4.0, 4.0])  # 3 + 6, less their overlap 2
        7.0
    """
    import numpy as np

    ref = np.asarray(reference_point, dtype=float)
    pts = np.asarray(points, dtype=float).reshape(-1, len(ref))
    pts = pts[np.isfinite(pts).all(axis=1) & (pts < ref).all(axis=1)]
    return float(_volume(_pareto(pts), ref)) if len(pts) else 0.0


def hypervolume_cumulative(points: Any, reference_point: Any) -> Any:
    """:func:`hypervolume` of ``points[:i + 1]`` for each ``i`` (a numpy array); a row with a
    NaN keeps the value before it.

    Example:
        >>> hypervolume_cumulative([[2.0, 1.0], [3.0, 3.0], [1.0, 3.0]], [4.0, 4.0]).tolist()
        [6.0, 6.0, 7.0]
    """
    import numpy as np

    ref = np.asarray(reference_point, dtype=float)
    pts = np.asarray(points, dtype=float).reshape(-1, len(ref))
    out = np.zeros(len(pts))
    front = np.empty((0, len(ref)))
    value = 0.0
    for i, p in enumerate(pts):
        if np.isfinite(p).all() and (p < ref).all() and not (front <= p).all(axis=1).any():
            front = _pareto(np.vstack([front, p]))
            value = float(_volume(front, ref))
        out[i] = value
    return out


def _pareto(points: Any) -> Any:
    """The rows no other row weakly dominates (duplicates kept once)."""
    import numpy as np

    points = np.unique(points, axis=0)
    keep = [i for i, p in enumerate(points)
            if not ((points <= p).all(axis=1) & (points < p).any(axis=1)).any()]
    return points[keep]


def _volume(points: Any, ref: Any) -> float:
    """Hypervolume by slicing along the last objective (exact; fine for a few objectives
    and thousands of points)."""
    import numpy as np

    if len(points) == 0:
        return 0.0
    if len(ref) == 1:
        return float(ref[0] - points[:, 0].min())
    if len(ref) == 2:
        area, best = 0.0, float(ref[1])
        for x, y in points[np.argsort(points[:, 0], kind="stable")]:
            if y < best:
                area += (ref[0] - x) * (best - y)
                best = y
        return float(area)
    order = points[np.argsort(points[:, -1], kind="stable")]
    total = 0.0
    for i in range(len(order)):
        upper = order[i + 1, -1] if i + 1 < len(order) else ref[-1]
        depth = upper - order[i, -1]
        if depth > 0:
            total += depth * _volume(_pareto(order[:i + 1, :-1]), ref[:-1])
    return float(total)
