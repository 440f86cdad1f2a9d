"""Comet tracking: ``CometLoggerCallback`` (driver side), with Ray's name and semantics
(``ray.air.integrations.comet``, also ``ray.tune.logger.comet``).

One Comet experiment per trial, named after the trial: its config as parameters, each result
as metrics at ``step=training_iteration`` (with Ray's routing of some keys to "Others", to the
system information and to curves), optionally its checkpoints, and ``end()`` when the trial
ends.

Where Ray makes the Comet calls in the driver's loop, the callback here makes them on one
background thread, in order: importing comet_ml (about a second), creating an experiment and
ending one (a few seconds, uploads included) never hold up the engine. The experiments are
quiet in the driver's console, and an offline experiment's archive goes into its trial's
directory; see :class:`CometLoggerCallback` for these and the other differences from Ray.

Example::

    from poptune.air.integrations.comet import CometLoggerCallback

    # online (COMET_API_KEY or api_key=), or offline: one archive per trial, in its directory
    tune.RunConfig(callbacks=[CometLoggerCallback(online=False, tags=["pbt"])])
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Any

from poptune._dicts import flatten_dict
from poptune._imports import COMET_AUTO_LOGGING_OFF, require
from poptune._validation import bad_type
from poptune.integration._worker import CallThread, ThreadedLoggerCallback

if TYPE_CHECKING:
    from poptune.experiment.trial import Trial

__all__ = ["CometLoggerCallback"]

logger = logging.getLogger("poptune")

#: comet_ml's variable that keeps it from patching ML frameworks (Ray sets it to 1)
AUTO_LOGGING_ENV_VAR = COMET_AUTO_LOGGING_OFF
#: seconds to wait at the end of the experiment for the experiments to end (their uploads)
END_TIMEOUT = 1800


def _check_installed() -> None:
    """Fail at construction, as Ray does, without importing comet_ml (about a second)."""
    if sys.modules.get("comet_ml") is None and importlib.util.find_spec("comet_ml") is None:
        require("comet_ml", "CometLoggerCallback")  # raises, with the install command


def _import_comet() -> Any:
    """comet_ml, imported with ``COMET_DISABLE_AUTO_LOGGING=1`` unless the variable is set
    (:func:`~poptune._imports.require`; Ray's default: comet then patches no framework the
    driver imports later). The variable is set for the import only: trial processes started
    afterwards do not inherit it."""
    return require("comet_ml", "CometLoggerCallback")


def _quiet(record: logging.LogRecord) -> bool:
    """A filter on comet's console handler: drops the lines below ERROR that a quiet
    callback's thread makes comet log (other threads' comet lines are left alone)."""
    return record.levelno >= logging.ERROR or not getattr(threading.current_thread(),
                                                         "poptune_quiet_comet", False)


def _key_in(key: str, names: list[str]) -> bool:
    """Whether ``key`` is one of ``names`` or below one of them (``name/...``), as Ray
    matches result keys."""
    return any(key == name or key.startswith(name + "/") for name in names)


def _plain_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config as Comet parameters: without ``callbacks``, nested dicts flattened with
    ``/``."""
    return flatten_dict({k: v for k, v in config.items() if k != "callbacks"})


def _remote(path: str) -> bool:
    """Whether a checkpoint is on remote storage (a URI); else a local directory, which must
    still be there."""
    if "://" in path:
        return True
    if not os.path.isdir(path):
        raise FileNotFoundError(f"the checkpoint directory {path} is gone")
    return False


def _checkpoint_artifact(comet: Any, name: str, path: str) -> Any:
    """A ``comet_ml.Artifact`` of type ``"model"`` holding the checkpoint directory's files
    (their paths relative to it), or a link to a checkpoint on remote storage."""
    artifact = comet.Artifact(name=name, artifact_type="model")
    if _remote(path):
        artifact.add_remote(path, sync_mode=False)
        return artifact
    for root, _dirs, files in os.walk(path):
        for file in sorted(files):
            local = os.path.join(root, file)
            artifact.add(local, logical_path=os.path.relpath(local, path).replace(os.sep, "/"))
    return artifact


class _Experiments(CallThread):
    """The Comet calls of a :class:`CometLoggerCallback`, made in order on one thread:
    creating a trial's experiment, logging to it, logging a checkpoint, ending it."""

    library, thread_name = "Comet", "poptune-comet"

    def __init__(self) -> None:
        super().__init__()
        #: whether the comet lines this thread causes stay out of the console (see _quiet)
        self.poptune_quiet_comet = False
        self._comet: Any = None
        self._configured: set[str] = set()

    def _library(self) -> Any:
        if self._comet is None:
            comet = _import_comet()
            config = require("comet_ml.config").get_config()
            for name in ("comet.offline_directory", "comet.display_summary_level",
                         "comet.logging.console"):
                try:
                    if config.get_config_origin(name) is not None:  # environment, config file
                        self._configured.add(name)
                except Exception:  # noqa: BLE001 - another comet_ml release: as if unset
                    pass
            for handler in logging.getLogger("comet_ml").handlers:
                if type(handler) is logging.StreamHandler:  # its console, not a log file
                    handler.addFilter(_quiet)  # once: a handler keeps one of each filter
            self._comet = comet
        return self._comet

    def _start(self, trial_id: str, online: bool, kwargs: dict[str, Any], trial_dir: str,
               name: str, tags: list[str] | None, params: dict[str, Any]) -> None:
        comet = self._library()
        kwargs = dict(kwargs)
        if "display_summary_level" in kwargs or self._configured & {
                "comet.display_summary_level", "comet.logging.console"}:
            self.poptune_quiet_comet = False  # the user asked for comet's console output
        else:
            self.poptune_quiet_comet = True
            kwargs["display_summary_level"] = 0
        if online:
            make = comet.Experiment
        else:
            make = comet.OfflineExperiment
            if ("offline_directory" not in kwargs
                    and "comet.offline_directory" not in self._configured):
                kwargs["offline_directory"] = trial_dir
            if kwargs.get("offline_directory"):
                os.makedirs(kwargs["offline_directory"], exist_ok=True)
        config = require("comet_ml.config")
        # a new experiment ends the process's "global" one (a user's, or the last trial's):
        # none while it is created, the user's again after
        previous = config.get_global_experiment()
        config.set_global_experiment(None)
        try:
            experiment = make(**kwargs)
        finally:
            config.set_global_experiment(previous)
        self.runs[trial_id] = experiment
        experiment.set_name(name)
        if tags:
            experiment.add_tags(list(tags))
        experiment.log_other("Created from", "poptune")
        if params:
            experiment.log_parameters(params)

    def _params(self, trial_id: str, params: dict[str, Any]) -> None:
        experiment = self.runs.get(trial_id)
        if experiment is not None and params:
            experiment.log_parameters(params)

    def _log(self, trial_id: str, step: int | None, params: dict[str, Any],
             others: dict[str, Any], metrics: dict[str, Any], system: dict[str, Any],
             curves: dict[str, Any]) -> None:
        experiment = self.runs.get(trial_id)
        if experiment is None:
            return
        if params:
            experiment.log_parameters(params, step=step)
        if others:
            experiment.log_others(others)
        if metrics:
            experiment.log_metrics(metrics, step=step)
        for key, value in system.items():
            experiment.log_system_info(key, value)
        for key, values in curves.items():
            values = list(values)
            experiment.log_curve(key, x=list(range(len(values))), y=values, step=step)

    def _checkpoint(self, trial_id: str, online: bool, name: str, path: str) -> None:
        experiment = self.runs.get(trial_id)
        if experiment is None:
            return
        comet = self._library()
        if online:
            experiment.log_artifact(_checkpoint_artifact(comet, name, path))
        elif _remote(path):  # an offline archive holds no artifacts: a model instead
            experiment.log_remote_model(name, path, sync_mode=False)
        else:
            experiment.log_model(name, path)

    def _end(self, trial_id: str, failed: bool) -> None:
        experiment = self.runs.pop(trial_id, None)
        if experiment is not None:
            experiment.end()


class CometLoggerCallback(ThreadedLoggerCallback):
    """Log each trial as a Comet experiment (``comet_ml.Experiment``, or
    ``comet_ml.OfflineExperiment`` with ``online=False``).

    The experiment is named after the trial (``str(trial)``), tagged with ``tags``, and its
    "Others" say ``Created from: poptune``. Its parameters are the trial's config (nested
    dicts flattened with ``/``, ``callbacks`` left out), logged again with each result at its
    ``training_iteration`` (PBT's changes show). Each result, flattened with ``/`` and without
    its ``config``, is routed as Ray routes it:

    - ``done``, ``should_checkpoint``: not logged;
    - ``trial_id``, ``experiment_id``, ``experiment_tag``: "Others" (``log_others``);
    - ``node_ip``, ``hostname``, ``pid``, ``date``: system information (``log_system_info``);
    - ``hist_stats/episode_reward``, ``hist_stats/episode_lengths`` (RLlib's): curves
      (``log_curve``, x the indices);
    - everything else: metrics (``log_metrics(..., step=training_iteration)``).

    Args:
        online: log to the Comet server (``comet_ml.Experiment``: ``COMET_API_KEY`` or
            ``api_key=``), or, with ``False``, into an offline archive
            (``comet_ml.OfflineExperiment``), to send later with ``comet upload``.
        tags: tags added to each experiment.
        save_checkpoints: log each checkpoint a trial reports as a ``comet_ml.Artifact`` of
            type ``"model"`` named ``checkpoint_<trial>`` (online). An offline archive cannot
            hold artifacts (comet_ml raises ``NotImplementedError``): there the checkpoint's
            files are logged as the model ``checkpoint_<trial>`` (``log_model``), which the
            archive carries.
        **experiment_kwargs: passed to ``comet_ml.Experiment``/``OfflineExperiment``
            (``project_name``, ``workspace``, ``api_key``, ``offline_directory``, ...).
            ``auto_output_logging``, ``log_git_metadata``, ``log_git_patch``, ``log_env_cpu``
            and ``log_env_gpu`` are off unless set (Ray's choice: they slow a driver running
            many experiments).

    Differences from Ray (which makes the same calls in its driver loop):

    - the calls are made on one background thread; at the end of the experiment the callback
      waits up to ``END_TIMEOUT`` (1800) seconds for the experiments to end. A trial that
      is retried after an error logs on into its experiment (Ray ends it and starts
      another); one that is restored after an interrupted run gets a new experiment (as in
      Ray).
    - quiet: no "COMET INFO"/"COMET WARNING" lines in the driver's console for these
      experiments (``display_summary_level=0``, and comet's console lines below ERROR that
      the callback's calls cause are left out). Pass ``display_summary_level=`` or set
      ``COMET_LOGGING_CONSOLE`` (or ``COMET_DISPLAY_SUMMARY_LEVEL``) to get comet's output as
      comet prints it.
    - offline archives go into each trial's directory unless ``offline_directory=`` or
      ``COMET_OFFLINE_DIRECTORY`` (or a ``.comet.config``) says otherwise; Ray leaves them to
      comet's default, ``.cometml-runs`` in the driver's working directory.
    - nested config values are parameters ``a/b`` from the start (Ray logs them as ``a|b``,
      comet's own flattening, at the trial's start and as ``a/b`` with each result);
      "Created from" is ``poptune`` (Ray's: ``Ray``).
    - comet_ml is imported with ``COMET_DISABLE_AUTO_LOGGING=1`` unless the variable is set,
      as in Ray, but the variable is not left in the driver's environment; creating an
      experiment does not end the process's "global" Comet experiment (a user's own).

    Example::

        from poptune.air.integrations.comet import CometLoggerCallback

        tuner = tune.Tuner(train, run_config=tune.RunConfig(callbacks=[
            CometLoggerCallback(online=False, tags=["pbt"], project_name="pbt")]))

    The ``comet upload`` command sends the archives (``<trial dir>/*.zip``) later.
    """

    #: comet's auto-logging options that stay off unless set (Ray's list)
    _exclude_autolog = ["auto_output_logging", "log_git_metadata", "log_git_patch",
                        "log_env_cpu", "log_env_gpu"]
    #: result keys never logged
    _exclude_results = ["done", "should_checkpoint"]
    #: result keys logged as system information
    _system_results = ["node_ip", "hostname", "pid", "date"]
    #: result keys logged as "Others"
    _other_results = ["trial_id", "experiment_id", "experiment_tag"]
    #: result keys logged as curves
    _episode_results = ["hist_stats/episode_reward", "hist_stats/episode_lengths"]

    _call_thread = _Experiments

    def __init__(
        self,
        online: bool = True,
        tags: list[str] | None = None,
        save_checkpoints: bool = False,
        **experiment_kwargs: Any,
    ) -> None:
        if not isinstance(online, bool):
            raise bad_type("online", online, "True or False")
        if tags is not None and (isinstance(tags, str) or not isinstance(tags, (list, tuple))
                                 or not all(isinstance(t, str) for t in tags)):
            raise bad_type("tags", tags, "None or a list of str")
        if not isinstance(save_checkpoints, bool):
            raise bad_type("save_checkpoints", save_checkpoints, "True or False")
        _check_installed()
        self.online = online
        self.tags = list(tags) if tags is not None else None
        self.save_checkpoints = save_checkpoints
        self.experiment_kwargs = dict(experiment_kwargs)
        for option in self._exclude_autolog:
            if not self.experiment_kwargs.get(option):
                self.experiment_kwargs[option] = False
        # the lists a subclass may change per instance (Ray's names)
        self._to_exclude = list(self._exclude_results)
        self._to_system = list(self._system_results)
        self._to_other = list(self._other_results)
        self._to_episodes = list(self._episode_results)
        super().__init__()

    def log_trial_start(self, trial: Trial) -> None:
        calls = self._calls()
        params = _plain_config(dict(trial.config))
        if trial.trial_id in self._started:  # relaunched (a PBT exploit, a retry): its config
            calls.put("params", trial.trial_id, params)
            return
        self._started.add(trial.trial_id)
        calls.put("start", trial.trial_id, self.online, self.experiment_kwargs,
                  trial.local_path, str(trial), self.tags, params)

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        if trial.trial_id not in self._started:
            self.log_trial_start(trial)
        others: dict[str, Any] = {}
        metrics: dict[str, Any] = {}
        system: dict[str, Any] = {}
        curves: dict[str, Any] = {}
        for key, value in flatten_dict(result).items():
            if key == "config" or key.startswith("config/") or _key_in(key, self._to_exclude):
                continue
            if _key_in(key, self._to_other):
                others[key] = value
            elif _key_in(key, self._to_system):
                system[key] = value
            elif _key_in(key, self._to_episodes):
                curves[key] = value
            else:
                metrics[key] = value
        params = _plain_config(result.get("config") or {})
        self._calls().put("log", trial.trial_id, result.get("training_iteration"), params,
                          others, metrics, system, curves)

    def log_trial_save(self, trial: Trial) -> None:
        path = trial.checkpoint_path
        if self.save_checkpoints and path is not None:
            if trial.trial_id not in self._started:
                self.log_trial_start(trial)
            self._calls().put("checkpoint", trial.trial_id, self.online,
                              f"checkpoint_{trial}", path)

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        """Wait up to ``END_TIMEOUT`` seconds for the experiments to end (their uploads); an
        experiment its trial did not end (an interrupted fit) is ended too."""
        if not self._stop_calls(END_TIMEOUT):
            logger.warning("poptune: Comet experiments did not end within %s s", END_TIMEOUT)
