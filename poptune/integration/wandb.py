"""Weights & Biases tracking: ``WandbLoggerCallback`` (driver side) and ``setup_wandb`` (inside a
trainable), with Ray's names and semantics (``ray.air.integrations.wandb``).

wandb is imported when the callback is set up or ``setup_wandb`` is called. One W&B run per
trial, whose id is the trial id, name the trial's name and group the experiment's name.

Where Ray starts one actor per trial to talk to W&B, the callback here keeps every trial's run
in the driver and makes its W&B calls on one background thread, in order: ``wandb.init``
(which takes a few hundred ms) never holds up the engine. The runs' files go into each trial's
directory (``<trial dir>/wandb``) unless ``dir=`` or ``WANDB_DIR`` says otherwise.

Example::

    from poptune.air.integrations.wandb import WandbLoggerCallback, setup_wandb

    # one run per trial, logged from the driver (WANDB_MODE=offline needs no account)
    tune.RunConfig(callbacks=[WandbLoggerCallback(project="pbt")])

    # or W&B's own API inside the trainable
    def train(config):
        run = setup_wandb(config, project="pbt")
        run.log({"loss": 0.1})
"""

from __future__ import annotations

import logging
import numbers
import os
import pickle
import warnings
from typing import TYPE_CHECKING, Any, Sequence

from poptune._dicts import flatten_dict
from poptune._imports import require
from poptune.integration._worker import CallThread, ThreadedLoggerCallback

if TYPE_CHECKING:
    from poptune.experiment.trial import Trial

__all__ = ["WandbLoggerCallback", "setup_wandb"]

logger = logging.getLogger("poptune")

WANDB_ENV_VAR = "WANDB_API_KEY"
WANDB_PROJECT_ENV_VAR = "WANDB_PROJECT_NAME"  # Ray's variable; wandb's own WANDB_PROJECT too
WANDB_GROUP_ENV_VAR = "WANDB_GROUP_NAME"
#: Ray's default wait, in seconds, at the end of the experiment for the runs to finish
DEFAULT_SYNC_TIMEOUT = 1800


def _wandb(purpose: str) -> Any:
    return require("wandb", purpose)


def _set_api_key(api_key_file: str | None, api_key: str | None) -> None:
    """Ray's order: ``api_key``/``api_key_file``, ``WANDB_API_KEY``, a ``wandb login``; no key
    is needed with ``WANDB_MODE`` offline or disabled."""
    if os.environ.get("WANDB_MODE") in {"offline", "disabled"}:
        return
    if api_key_file:
        if api_key:
            raise ValueError("Both WandB `api_key_file` and `api_key` set; pass one of them")
        with open(os.path.expanduser(api_key_file)) as f:
            api_key = f.readline().strip()
    if api_key:
        os.environ[WANDB_ENV_VAR] = api_key
        return
    if os.environ.get(WANDB_ENV_VAR):
        return
    wandb = _wandb("W&B logging")
    try:
        wandb.ensure_configured()
        if wandb.api.api_key:
            return  # `wandb login` was run
    except AttributeError:
        pass
    raise ValueError(
        f"No WandB API key found. Either set the {WANDB_ENV_VAR} environment variable, pass "
        "`api_key` or `api_key_file`, run `wandb login` from the command line, or set "
        "WANDB_MODE=offline to log locally")


def _offline(init_kwargs: dict[str, Any]) -> bool:
    """Whether the run will not sync (W&B then ignores ``resume``, with a warning)."""
    mode = init_kwargs.get("mode") or os.environ.get("WANDB_MODE")
    return mode in ("offline", "disabled", "dryrun")


def _project(project: str | None) -> str | None:
    return project or os.environ.get(WANDB_PROJECT_ENV_VAR) or os.environ.get("WANDB_PROJECT")


def _one_number(value: Any) -> bool:
    """A NumPy (or torch) array or scalar holding one number."""
    return (getattr(value, "ndim", None) is not None and getattr(value, "size", None) == 1
            and isinstance(value.item(), numbers.Number))


def _loggable(value: Any, wandb: Any) -> bool:
    """What W&B plots: numbers (NumPy's too, and one-element arrays), W&B media objects and
    lists of them (Ray's rule)."""
    if isinstance(value, numbers.Number) or _one_number(value):
        return True
    media = wandb.sdk.data_types.base_types.wb_value.WBValue
    if isinstance(value, (list, tuple)) and value:
        return isinstance(value[0], media)
    return isinstance(value, media)


def _media(value: Any, wandb: Any, image_kwargs: dict[str, Any],
           video_kwargs: dict[str, Any]) -> Any:
    """NumPy arrays as W&B media, as Ray does: (H, W, C) an image, (N, H, W, C) images,
    (N, T, C, W, H) videos; anything else unchanged."""
    ndim = getattr(value, "ndim", None)
    if ndim not in (3, 4, 5) or not hasattr(value, "shape"):
        return value
    if ndim == 3:
        return wandb.Image(value, **image_kwargs)
    make = (lambda v: wandb.Image(v, **image_kwargs)) if ndim == 4 else (
        lambda v: wandb.Video(v, **video_kwargs))
    items = [make(v) for v in value]
    return items if len(items) > 1 else items[0]


def _plain_config(config: dict[str, Any], excludes: Sequence[str] = ()) -> dict[str, Any]:
    """``config`` without ``callbacks`` and ``excludes``; a value that cannot be pickled is
    replaced by its ``str`` (as a number when it reads as one), as Ray does."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key == "callbacks" or key in excludes:
            continue
        if isinstance(value, dict):
            out[key] = _plain_config(value)
            continue
        try:
            pickle.dumps(value)
        except Exception:  # noqa: BLE001 - any object that does not travel
            text = str(value)
            for convert in (int, float):
                try:
                    value = convert(text)
                    break
                except ValueError:
                    value = text
        out[key] = value
    return out


class _Runs(CallThread):
    """The W&B calls of a :class:`WandbLoggerCallback`, made in order on one thread: starting
    a run, logging to it, uploading a checkpoint, finishing it."""

    library, thread_name = "W&B", "poptune-wandb"

    def _start(self, trial_id: str, init_kwargs: dict[str, Any]) -> None:
        if init_kwargs.get("dir"):
            os.makedirs(init_kwargs["dir"], exist_ok=True)  # the trial's, made a moment later
        self.runs[trial_id] = _wandb("WandbLoggerCallback").init(**init_kwargs)

    def _log(self, trial_id: str, log: dict[str, Any], config: dict[str, Any],
             step: int | None) -> None:
        run = self.runs.get(trial_id)
        if run is not None:
            if config:
                run.config.update(config, allow_val_change=True)
            run.log(log, step=step)

    def _checkpoint(self, trial_id: str, name: str, path: str) -> None:
        run = self.runs.get(trial_id)
        if run is not None:
            artifact = _wandb("WandbLoggerCallback").Artifact(name=f"checkpoint_{name}",
                                                               type="model")
            artifact.add_dir(path)
            run.log_artifact(artifact)

    def _end(self, trial_id: str, failed: bool) -> None:
        run = self.runs.pop(trial_id, None)
        if run is not None:
            run.finish(exit_code=1 if failed else 0)


class WandbLoggerCallback(ThreadedLoggerCallback):
    """Log each trial as a Weights & Biases run: its config, and every result's numbers.

    Args:
        project: the W&B project; default ``WANDB_PROJECT_NAME`` (Ray's variable), then
            ``WANDB_PROJECT``. One of them is required, as in Ray.
        group: the runs' group; default ``WANDB_GROUP_NAME``, then the experiment's name.
        api_key_file: a file whose first line is the API key. ``api_key``: the key itself.
            Neither is needed after ``wandb login``, with ``WANDB_API_KEY``, or with
            ``WANDB_MODE=offline``/``disabled``.
        excludes: result and config keys (flattened with ``/``) not to log.
        log_config: also log the config with every result (it is the run's config anyway).
        upload_checkpoints: upload each checkpoint a trial reports as a W&B artifact.
        save_checkpoints: Ray's deprecated name of ``upload_checkpoints``.
        upload_timeout: seconds to wait at the end of the experiment for the runs to finish.
        video_kwargs, image_kwargs: passed to ``wandb.Video``/``wandb.Image`` for NumPy arrays
            in results.
        **kwargs: passed to ``wandb.init`` (``entity``, ``tags``, ``mode``, ``dir``, ...). The
            runs are quiet by default (``settings=wandb.Settings(silent=True,
            console="off")``: no W&B lines in the driver's output, whose console is not
            recorded into each run); pass ``settings=`` to change that.

    Example::

        tune.RunConfig(callbacks=[WandbLoggerCallback(project="pbt", excludes=["pid"])])
    """

    #: the result keys never logged (Ray's)
    _exclude_results = ["done", "should_checkpoint"]
    #: result keys that go into the run's config instead of its history (Ray's)
    AUTO_CONFIG_KEYS = ["trial_id", "experiment_tag", "node_ip", "experiment_id", "hostname",
                        "pid", "date"]
    _call_thread = _Runs
    _runtime_attributes = ("_wandb",)

    def __init__(
        self,
        project: str | None = None,
        group: str | None = None,
        api_key_file: str | None = None,
        api_key: str | None = None,
        excludes: list[str] | None = None,
        log_config: bool = False,
        upload_checkpoints: bool = False,
        save_checkpoints: bool = False,
        upload_timeout: int = DEFAULT_SYNC_TIMEOUT,
        video_kwargs: dict[str, Any] | None = None,
        image_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if save_checkpoints:
            warnings.warn("`save_checkpoints` is deprecated. Use `upload_checkpoints` instead.",
                          DeprecationWarning, stacklevel=2)
            upload_checkpoints = True
        self.project = project
        self.group = group
        self.api_key_file = api_key_file
        self.api_key = api_key
        self.excludes = list(excludes or [])
        self.log_config = log_config
        self.upload_checkpoints = upload_checkpoints
        self.upload_timeout = upload_timeout
        self.video_kwargs = dict(video_kwargs or {})
        self.image_kwargs = dict(image_kwargs or {})
        self.kwargs = kwargs
        super().__init__()

    def setup(self, *args: Any, **kwargs: Any) -> None:
        self._wandb = _wandb("WandbLoggerCallback")
        _set_api_key(self.api_key_file, self.api_key)
        self.project = _project(self.project)
        if not self.project:
            raise ValueError(
                "Please pass the project name as argument or through the "
                f"{WANDB_PROJECT_ENV_VAR} (or WANDB_PROJECT) environment variable.")
        self.group = self.group or os.environ.get(WANDB_GROUP_ENV_VAR)
        self._ready = True

    def log_trial_start(self, trial: Trial) -> None:
        calls = self._calls()
        if trial.trial_id in self._started:  # restarted (PBT, a retry): logs on into its run
            return
        self._started.add(trial.trial_id)
        init: dict[str, Any] = dict(
            id=trial.trial_id, name=str(trial), reinit="create_new", allow_val_change=True,
            project=self.project,
            group=self.group or trial.experiment_dir_name,
            # Ray's logging actor adds the trial's directory as ``trial_log_path``
            config={**_plain_config(dict(trial.config), self.excludes),
                    "trial_log_path": trial.local_path},
            # quiet, and not capturing the driver's console (its live table) into each run
            settings=self._wandb.Settings(silent=True, console="off"))
        if "dir" not in self.kwargs and not os.environ.get("WANDB_DIR"):
            init["dir"] = trial.local_path
        init.update(self.kwargs)
        if not _offline(init):
            init.setdefault("resume", "allow")  # a restored experiment logs on into its runs
        calls.put("start", trial.trial_id, init)

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        calls = self._calls()
        if trial.trial_id not in self._started:
            self.log_trial_start(trial)
        excluded = self._exclude_results + self.excludes + ([] if self.log_config else ["config"])
        log: dict[str, Any] = {}
        config: dict[str, Any] = {}
        for key, value in flatten_dict(result).items():
            if any(key == e or key.startswith(e + "/") for e in excluded):
                continue
            if key in self.AUTO_CONFIG_KEYS:
                config[key] = value
                continue
            value = _media(value, self._wandb, self.image_kwargs, self.video_kwargs)
            if _loggable(value, self._wandb):
                log[key] = value.item() if _one_number(value) else value
        calls.put("log", trial.trial_id, log, config, result.get("training_iteration"))

    def log_trial_save(self, trial: Trial) -> None:
        path = trial.checkpoint_path
        if self.upload_checkpoints and path is not None and os.path.isdir(path):
            self._calls().put("checkpoint", trial.trial_id, str(trial), path)

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        """Wait up to ``upload_timeout`` seconds for the runs to finish (their uploads); a run
        its trial did not end (an interrupted fit) finishes with exit code 1."""
        if not self._stop_calls(self.upload_timeout):
            logger.warning("poptune: W&B runs did not finish within upload_timeout=%s s",
                           self.upload_timeout)


def setup_wandb(
    config: dict[str, Any] | None = None,
    api_key: str | None = None,
    api_key_file: str | None = None,
    rank_zero_only: bool = True,
    **kwargs: Any,
) -> Any:
    """Start a W&B run for this trial and return it (Ray's semantics).

    Call it inside a trainable: the run's id is the trial id, its name the trial's name and its
    group the experiment's name (``kwargs`` override each, e.g. ``group=``). The run is
    finished when the trial's function ends; it resumes (online) when the trial restarts (PBT,
    a retry). ``config`` becomes the run's config.

    Args:
        config: the run's config (e.g. the trial's ``config``).
        api_key, api_key_file: as in :class:`WandbLoggerCallback`.
        rank_zero_only: in distributed training, a disabled run on other ranks.
        **kwargs: passed to ``wandb.init`` (``project``, ``entity``, ``mode``, ...).

    Example::

        def train(config):
            run = setup_wandb(config, project="pbt")
            for step in range(3):
                run.log({"loss": 1 / (step + 1)})
                tune.report({"loss": 1 / (step + 1)})
    """
    wandb = _wandb("setup_wandb")
    from poptune import session as _session

    defaults: dict[str, Any] = {}
    if _session.current_session() is not None:
        ctx = _session.get_context()
        if rank_zero_only and ctx.get_world_rank() != 0:
            return wandb.init(mode="disabled")
        defaults = {"id": ctx.get_trial_id(), "name": ctx.get_trial_name(),
                    "group": ctx.get_experiment_name()}
    _set_api_key(api_key_file, api_key)
    init = dict(defaults, reinit="finish_previous", allow_val_change=True,
                config=_plain_config(dict(config or {})),
                project=_project(kwargs.pop("project", None)),
                # as Ray's: given, else the experiment's name (WANDB_GROUP_NAME is the
                # logger callback's, not this one's)
                group=kwargs.pop("group", None) or defaults.get("group"))
    for ray_name, wandb_name in (("trial_id", "id"), ("trial_name", "name")):
        if ray_name in kwargs:  # Ray's own names for these two
            init[wandb_name] = kwargs.pop(ray_name)
    init.update(kwargs)
    if not _offline(init):
        init.setdefault("resume", "allow")  # a restarted trial logs on into its run
    run = wandb.init(**init)
    # the worker process outlives the trial: its run ends with it (exit code 1 if it failed)
    _session.at_trial_end(lambda failed: run.finish(exit_code=int(failed)))
    return run
