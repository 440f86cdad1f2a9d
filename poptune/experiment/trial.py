"""The driver-side record of one trial (``ray.tune.experiment.Trial``): data that the engine,
the schedulers, searchers and callbacks share, so it lives below all of them."""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar


class TrialStatus(str, enum.Enum):
    """Lifecycle of a trial. Values equal Ray Tune's status strings."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    TERMINATED = "TERMINATED"
    ERROR = "ERROR"

    def is_finished(self) -> bool:
        return self in (TrialStatus.TERMINATED, TrialStatus.ERROR)

    def __str__(self) -> str:  # "RUNNING", not "TrialStatus.RUNNING"
        return self.value


@dataclass
class Trial:
    """Everything the driver knows about one trial.

    Schedulers, searchers, stoppers and callbacks receive ``Trial`` objects to read; only the
    controller changes them.

    Attributes:
        trial_id: ``"{experiment_hex}_{index:05d}"`` as in Ray (e.g. ``"a1b2c_00003"``).
        trainable_name: name of the trainable (function name or class name).
        config: the resolved configuration the trial runs with (changes on a PBT exploit).
        experiment_tag: ``"{index}_{k=v,...}"`` describing the sampled values.
        local_path: the trial directory.
        status: current lifecycle state.
        last_result: the latest result dict (with auto-filled keys), ``{}`` before any.
        resources: e.g. ``{"cpu": 1, "gpu": 0}``.
        num_failures: how many times the trial errored or lost its worker.
        error_msg: first line of the last error, if any.
        error_file: path to ``error.txt`` when the trial errored.
        checkpoint_path: path of the latest persisted checkpoint, if any.
        restore_path: checkpoint to start from at the next launch (resume / PBT exploit).
        last_heard: when the driver last heard from the running trial (its launch, a result,
            a checkpoint), in the experiment clock's monotonic seconds; None before launch.
    """

    #: Ray's status constants (``trial.status == Trial.TERMINATED``); equal to the strings
    PENDING: ClassVar[TrialStatus] = TrialStatus.PENDING
    RUNNING: ClassVar[TrialStatus] = TrialStatus.RUNNING
    PAUSED: ClassVar[TrialStatus] = TrialStatus.PAUSED
    TERMINATED: ClassVar[TrialStatus] = TrialStatus.TERMINATED
    ERROR: ClassVar[TrialStatus] = TrialStatus.ERROR

    trial_id: str
    trainable_name: str
    config: dict[str, Any]
    experiment_tag: str = ""
    local_path: str = ""
    dirname: str = ""
    #: the trial directory on the experiment's storage (a URI for remote storage);
    #: checkpoints live here
    storage_dir: str = ""
    status: TrialStatus = TrialStatus.PENDING
    last_result: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, float] = field(default_factory=lambda: {"cpu": 1.0, "gpu": 0.0})
    num_failures: int = 0
    error_msg: str | None = None
    error_file: str | None = None
    checkpoint_path: str | None = None
    restore_path: str | None = None
    custom_trial_name: str | None = None
    evaluated_params: dict[str, Any] = field(default_factory=dict)
    start_time: float | None = None
    last_heard: float | None = None

    def __str__(self) -> str:
        """``trial_name_creator``'s name, else Ray's ``{trainable}_{trial_id}``, with the
        config's ``env`` between them when it has one (``PPO_CartPole-v1_a1b2c_00000``)."""
        if self.custom_trial_name:
            return self.custom_trial_name
        env = self.config.get("env") if type(self.config) is dict else None
        if env is None:
            return f"{self.trainable_name}_{self.trial_id}"
        env = env.__name__ if isinstance(env, type) else env
        return f"{self.trainable_name}_{env}_{self.trial_id}".replace("/", "_")

    def __repr__(self) -> str:
        return str(self)

    def __hash__(self) -> int:
        return hash(self.trial_id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Trial) and other.trial_id == self.trial_id

    @property
    def path(self) -> str:
        """The trial directory (Ray name)."""
        return self.local_path

    def is_finished(self) -> bool:
        """Whether the trial ended (TERMINATED or ERROR): a method, as in Ray."""
        return self.status.is_finished()

    @property
    def placement_group_factory(self) -> Any:
        """The trial's resources as one bundle (Ray's ``Trial.placement_group_factory``)."""
        from poptune.execution.placement_groups import resource_dict_to_pg_factory

        return resource_dict_to_pg_factory(self.resources)

    @property
    def checkpoint(self) -> Any:
        """The latest checkpoint as a :class:`~poptune.Checkpoint`, or None (Ray's
        ``Trial.checkpoint``, which callbacks read in ``on_trial_save``)."""
        if self.checkpoint_path is None:
            return None
        from poptune.checkpoint import Checkpoint

        return Checkpoint(self.checkpoint_path)

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path is not None

    @property
    def has_reported_at_least_once(self) -> bool:
        return bool(self.last_result)

    @property
    def local_experiment_path(self) -> str:
        """The experiment directory (the trial directory's parent)."""
        return os.path.dirname(self.local_path)

    @property
    def experiment_dir_name(self) -> str:
        """The experiment directory's name (``RunConfig(name=...)``)."""
        return os.path.basename(self.local_experiment_path)

    @property
    def node_ip(self) -> str | None:
        """Where the trial last reported from (its results' ``node_ip``)."""
        return self.last_result.get("node_ip")

    @property
    def logdir(self) -> str:
        """Raises, as in Ray 2.60: the trial directory is ``local_path`` (or ``path``)."""
        raise DeprecationWarning("Use `local_path` instead of `logdir`.")

    def get_error(self) -> str | None:
        """The text of the trial's last error (``error.txt``: its traceback), or None when
        it has not failed, as Ray 2.60's ``Trial.get_error`` returns it (a ``str``, though
        Ray's annotation says ``TuneError``)."""
        if not self.error_file:
            return None
        try:
            with open(self.error_file) as f:
                return f.read()
        except OSError:
            return None

    def get_trial_checkpoint(self) -> str | None:
        return self.checkpoint_path
