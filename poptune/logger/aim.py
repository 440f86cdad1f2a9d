"""``AimLoggerCallback``: each trial as a run in an `Aim <https://aimstack.io>`_ repository,
with Ray Tune's names and semantics (``ray.tune.logger.aim``).

One Aim run per trial, in the repository ``repo`` (default: the experiment directory, which
then holds ``.aim``), in the Aim experiment ``experiment_name`` (default: the Tune experiment's
name). As in Ray, the run records ``trial_id``, ``trial_log_dir`` (the trial directory),
``trial_ip`` (where the trial reports from) and ``hparams``: the trial's sampled values
(``trial.evaluated_params``, flattened with ``/``; str, bool, int, float, None and lists of
them, NumPy scalars as numbers, anything else left out with an INFO message). Every numeric
value of a result (nested dicts flattened with ``/``; NaN and infinities left out) is tracked
as ``ray/tune/<name>`` at step ``timesteps_total`` when the result has it, else
``training_iteration``; a result's ``context`` and ``epoch`` keys become the values' Aim
context and epoch, and ``config``, ``pid``, ``timestamp``, ``time_total_s`` and
``training_iteration`` are not tracked. The run is closed when the trial ends.

Where it differs from Ray:

- The Aim calls are made on one background thread, in order: opening a run takes about
  50 ms, closing one a few ms, tracking a result's values about 0.2 ms per value with
  pauses of several ms when RocksDB flushes; the engine only queues them.
- A trial keeps one run: a trial that is paused, retried or exploited (PBT) and launched
  again, or resumed by ``Tuner.restore``, logs on into the run it had (Ray opens a new run at
  every launch). A paused trial's run is closed until it runs again, so that open runs (13
  file descriptors and 2 threads each) are bounded by the running trials.
- The runs neither capture the driver's console (the live table) nor sample its CPU and
  memory (Aim's ``capture_terminal_logs=True`` and ``system_tracking_interval=10`` cost a
  thread per run and patch ``sys.stdout``); pass them to turn them on.
- The arguments are checked at once: ``metrics`` must be a non-empty list of names, and
  ``aim_run_kwargs`` are ``aim.Run``'s own keyword arguments (``run_hash`` and
  ``read_only`` cannot serve every trial, and are refused).

Aim 3.29 lists a run in ``aim.Repo(...).iter_runs()`` once the repository is indexed, which
``aim up`` does when it starts (``aim storage reindex`` otherwise).

Example::

    from poptune.logger.aim import AimLoggerCallback

    tune.Tuner(train, param_space={"lr": tune.loguniform(1e-4, 1e-1)},
               run_config=tune.RunConfig(callbacks=[AimLoggerCallback(metrics=["loss"])]),
               ).fit()
    # aim up --repo ~/poptune_results/<experiment>
"""

from __future__ import annotations

import inspect
import logging
import math
import numbers
import os
from typing import TYPE_CHECKING, Any, Sequence

from poptune._dicts import flatten_dict
from poptune._imports import require
from poptune._validation import bad_type, bad_value
from poptune.integration._worker import CallThread, ThreadedLoggerCallback

if TYPE_CHECKING:
    from poptune.experiment.trial import Trial

__all__ = ["AimLoggerCallback"]

logger = logging.getLogger(__name__)

#: result keys not tracked (Ray's); ``context`` and ``epoch`` are used for the tracked values
SKIPPED_KEYS = frozenset({"config", "pid", "timestamp", "time_total_s", "training_iteration"})
METRIC_PREFIX = "ray/tune/"
#: ``aim.Run`` arguments set for every trial (``repo``, ``experiment``) or that cannot serve
#: more than one trial
_OWN_RUN_ARGS = frozenset({"self", "repo", "experiment", "run_hash", "read_only"})
#: ``aim.Run`` defaults changed here: no copy of the driver's console or of its system
#: metrics in every trial's run
_QUIET_RUN = {"capture_terminal_logs": False, "system_tracking_interval": None}
#: seconds to wait at the end of the experiment for the runs to be closed
CLOSE_TIMEOUT_S = 300.0
#: calls waiting for the thread past which a warning says Aim is falling behind
BACKLOG_WARNING = 100_000
_PLAIN = (str, bool, int, float, type(None))


def _number(value: Any) -> float | None:
    """A finite real number (bool, int, float, a NumPy integer or float) as a float, else None.

    >>> _number(3), _number(True), _number(float("nan")), _number("1")
    (3.0, 1.0, None, None)
    """
    if not isinstance(value, numbers.Real):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return v if math.isfinite(v) else None


def _hparam(value: Any) -> tuple[bool, Any]:
    """``(True, what Aim stores)`` for a value kept as a hyperparameter, ``(False, None)`` for
    one left out.

    >>> _hparam([1, "a", None]), _hparam((1, 2)), _hparam(object())[0]
    ((True, [1, 'a', None]), (False, None), False)
    """
    if isinstance(value, _PLAIN):
        return True, value
    if isinstance(value, list):
        items = [_hparam(v) for v in value]
        if all(ok for ok, _ in items):
            return True, [v for _, v in items]
        return False, None
    item = getattr(value, "item", None)  # a NumPy scalar (not an array: ndim 0, no len)
    if callable(item) and type(value).__module__ == "numpy" and getattr(value, "ndim", 1) == 0:
        try:
            v = item()
        except (TypeError, ValueError):
            return False, None
        if isinstance(v, (bool, int, float)):
            return True, v
    return False, None


def _hparams(params: dict[str, Any]) -> dict[str, Any]:
    """The trial's sampled values, flattened with ``/``, as Aim stores them (Ray's rule)."""
    kept, removed = {}, {}
    for key, value in flatten_dict(params).items():
        ok, v = _hparam(value)
        if ok:
            kept[key] = v
        else:
            removed[key] = value
    if removed:
        logger.info("Removed the following hyperparameter values when logging to aim: %s",
                    removed)
    return kept


class _Runs(CallThread):
    """The Aim calls of an :class:`AimLoggerCallback`, made in order on one thread: opening a
    trial's run, setting its values, tracking results, closing it (``end``). A call that
    fails is a warning the first time for its trial, a debug message after that."""

    library, thread_name = "Aim", "poptune-aim"
    log, warn_once = logger, True

    def __init__(self, hashes: dict[str, str]) -> None:
        super().__init__()
        #: trial id -> its run's hash (the callback's dict: it keeps them for a restore)
        self.hashes = hashes

    def _open(self, trial_id: str, run_kwargs: dict[str, Any], attrs: dict[str, Any]) -> None:
        run = self.runs.get(trial_id)
        if run is None:
            aim = require("aim", "AimLoggerCallback")
            run_cls = aim.Run
            run_hash = self.hashes.get(trial_id)
            if run_hash is not None:  # the trial's run, from an earlier launch
                # Aim looks the hash up in a list of the repository's runs it keeps for
                # 0.5 s, which may predate the run (a trial paused soon after it started)
                clear = getattr(getattr(aim.Repo, "_all_run_hashes", None), "cache_clear", None)
                if callable(clear):
                    clear()
                try:
                    run = run_cls(run_hash, **run_kwargs)
                except Exception as exc:  # noqa: BLE001 - gone, or locked: a new run
                    logger.warning("poptune: the Aim run %s of trial %s cannot be resumed "
                                   "(%s: %s); it logs into a new run", run_hash, trial_id,
                                   type(exc).__name__, exc)
            if run is None:
                run = run_cls(**run_kwargs)
            self.runs[trial_id] = run
            self.hashes[trial_id] = run.hash
        for key, value in attrs.items():
            run[key] = value

    def _set(self, trial_id: str, key: str, value: Any) -> None:
        run = self.runs.get(trial_id)
        if run is not None:
            run[key] = value

    def _track(self, trial_id: str, values: list[tuple[str, float]], step: Any, epoch: Any,
               context: Any) -> None:
        run = self.runs.get(trial_id)
        if run is not None:
            for name, value in values:
                run.track(value, name=name, step=step, epoch=epoch, context=context)

    def _end(self, trial_id: str, failed: bool) -> None:
        run = self.runs.pop(trial_id, None)
        if run is not None:
            run.close()


class AimLoggerCallback(ThreadedLoggerCallback):
    """Log each trial as an Aim run: its sampled hyperparameters and every result's numbers.

    Args:
        repo: the Aim repository: a directory (``.aim`` is created in it), an ``aim://``
            server address or an ``aim.Repo``. Default: the experiment directory.
        experiment_name: the runs' Aim experiment. Default: the Tune experiment's name
            (``RunConfig(name=...)``).
        metrics: the result keys to track (flattened names such as ``"nested/a"``, without the
            ``ray/tune/`` prefix). Default: every numeric value.
        **aim_run_kwargs: passed to ``aim.Run`` for every trial, e.g. ``log_system_params=True``
            or ``system_tracking_interval=10`` (off by default here) and
            ``capture_terminal_logs=True`` (off by default here: the driver's console is not a
            trial's).

    Example::

        tune.RunConfig(callbacks=[AimLoggerCallback(experiment_name="mnist",
                                                    metrics=["loss", "accuracy"])])
    """

    #: the hyperparameter types kept as they are (Ray's); NumPy scalars become numbers
    VALID_HPARAMS = (str, bool, int, float, list, type(None))
    #: what lives in this process only, besides the runs' thread (``_init_runtime`` makes it
    #: again); the runs' hashes travel in ``get_state``
    _runtime_attributes = ("_metric_set", "_open", "_ips", "_hashes", "_behind")

    def __init__(
        self,
        repo: str | os.PathLike[str] | Any | None = None,
        experiment_name: str | None = None,
        metrics: Sequence[str] | None = None,
        **aim_run_kwargs: Any,
    ) -> None:
        aim = require("aim", "AimLoggerCallback")
        if repo is not None and not isinstance(repo, (str, os.PathLike, aim.Repo)):
            raise bad_type("repo", repo, "a directory, an aim:// address or an aim.Repo")
        if experiment_name is not None and not isinstance(experiment_name, str):
            raise bad_type("experiment_name", experiment_name, "a string or None")
        if metrics is not None:
            if isinstance(metrics, (str, bytes)) or not isinstance(metrics, (list, tuple)):
                raise bad_type("metrics", metrics, "a list of metric names or None")
            if not metrics:
                raise bad_value("metrics", metrics,
                                "a list of at least one metric name, or None to log every "
                                "reported metric")
            for name in metrics:
                if not isinstance(name, str):
                    raise bad_type("metrics", metrics, "a list of metric names (strings)")
        accepted = [p for p in inspect.signature(aim.Run.__init__).parameters
                    if p not in _OWN_RUN_ARGS]
        for name in aim_run_kwargs:
            if name not in accepted:
                raise TypeError(
                    f"`aim_run_kwargs` must be keyword arguments of aim.Run, one of "
                    f"{', '.join(accepted)}; got {name!r}")
        self._repo_path = os.fspath(repo) if isinstance(repo, os.PathLike) else repo
        self._experiment_name = experiment_name
        self._metrics = list(metrics) if metrics is not None else None
        self._aim_run_kwargs = aim_run_kwargs
        super().__init__()
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._metric_set = frozenset(self._metrics) if self._metrics else None
        #: the trials whose run is open (or asked for), to close a paused one's (this, not
        #: ``_started``, which the callback leaves empty)
        self._open: dict[str, Trial] = {}
        self._ips: dict[str, Any] = {}  # trial id -> the trial_ip its run holds
        #: trial id -> its run's hash, written by the thread; kept for a restore
        self._hashes: dict[str, str] = {}
        self._behind = False  # warned that the thread is far behind

    def __getstate__(self) -> dict[str, Any]:
        """The arguments only (``tuner.pkl`` keeps the callback for ``Tuner.restore``): the
        runs and their thread belong to this process, and an ``aim.Repo`` is kept as its
        address."""
        state = super().__getstate__()
        repo = state.get("_repo_path")
        if repo is not None and not isinstance(repo, str):  # an aim.Repo
            state["_repo_path"] = (("aim://" + repo.root_path) if repo.is_remote_repo
                                   else repo.root_path)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    def get_state(self) -> dict[str, Any] | None:
        """The runs' hashes by trial id: a restored experiment's trials log on into them."""
        return {"run_hashes": dict(self._hashes)} if self._hashes else None

    def set_state(self, state: dict[str, Any]) -> None:
        self._hashes.update(state.get("run_hashes") or {})

    # ------------------------------------------------------------------------------------
    def _new_calls(self) -> _Runs:
        return _Runs(self._hashes)

    def _run_kwargs(self, trial: Trial) -> dict[str, Any]:
        kwargs = dict(_QUIET_RUN, **self._aim_run_kwargs)
        kwargs["repo"] = self._repo_path or trial.local_experiment_path
        kwargs["experiment"] = self._experiment_name or trial.experiment_dir_name
        return kwargs

    def log_trial_start(self, trial: Trial) -> None:
        attrs: dict[str, Any] = {"trial_id": trial.trial_id, "trial_log_dir": trial.path}
        ip = trial.node_ip
        if ip:
            attrs["trial_ip"] = ip
        if trial.evaluated_params:  # again at each launch: a PBT exploit changes them
            attrs["hparams"] = _hparams(trial.evaluated_params)
        self._ips[trial.trial_id] = ip
        self._open[trial.trial_id] = trial
        self._calls().put("open", trial.trial_id, self._run_kwargs(trial), attrs)

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        trial_id = trial.trial_id
        if trial_id not in self._open:
            self.log_trial_start(trial)
        calls = self._calls()
        ip = result.get("node_ip")
        if ip and ip != self._ips.get(trial_id):
            self._ips[trial_id] = ip
            calls.put("set", trial_id, "trial_ip", ip)
        step = result.get("timesteps_total") or result.get("training_iteration")
        wanted = self._metric_set
        values = []
        for name, value in flatten_dict(
                {k: v for k, v in result.items()
                 if k not in SKIPPED_KEYS and k != "context" and k != "epoch"}).items():
            if wanted is not None and name not in wanted:
                continue
            v = _number(value)
            if v is not None:
                values.append((METRIC_PREFIX + name, v))
        if values:
            calls.put("track", trial_id, values, step, result.get("epoch"),
                      result.get("context"))
            if not self._behind and calls.calls.qsize() > BACKLOG_WARNING:
                self._behind = True
                logger.warning(
                    "poptune: Aim is %d calls behind the results (it tracks about 5,000 "
                    "values a second); the experiment's end waits for them. `metrics=[...]` "
                    "tracks fewer values", calls.calls.qsize())

    def _end_run(self, trial_id: str, failed: bool) -> None:
        """Close the trial's run (its trial finished, or is paused)."""
        if self._open.pop(trial_id, None) is not None:
            self._ips.pop(trial_id, None)
            super()._end_run(trial_id, failed)

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        # a paused trial's run is closed until the trial runs again
        if self._open:
            paused = [t for t, trial in self._open.items() if trial.status == trial.PAUSED]
            for trial_id in paused:
                self._end_run(trial_id, False)

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        """Close every run and end the thread (up to ``CLOSE_TIMEOUT_S`` seconds)."""
        self._open.clear()
        self._ips.clear()
        if not self._stop_calls(CLOSE_TIMEOUT_S):  # the runs still open are closed too
            logger.warning("poptune: the Aim runs were not closed within %s s", CLOSE_TIMEOUT_S)
