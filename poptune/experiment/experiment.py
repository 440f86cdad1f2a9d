"""``Experiment``: one legacy experiment specification (``ray.tune.experiment.Experiment``).

An ``Experiment`` holds what ``tune.run`` would be called with; ``tune.run(experiment)`` and
``tune.run_experiments([...])`` run it on poptune's engine (one ``Tuner`` per experiment).

Example:
    >>> def objective(config):
    ...     return {"score": config["x"]}
    >>> exp = Experiment("demo", objective, config={"x": 1}, stop={"training_iteration": 2})
    >>> exp.name, exp.run_identifier, exp.spec["stop"]
    ('demo', 'objective', {'training_iteration': 2})
    >>> Experiment.from_json("demo", {"run": objective, "num_samples": 2}).spec["num_samples"]
    2
"""

from __future__ import annotations

import copy
import datetime
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from poptune._validation import bad_type
from poptune.config import CheckpointConfig, SyncConfig, default_storage_path
from poptune.exceptions import TuneError

__all__ = ["Experiment"]


class Experiment:
    """One experiment for ``tune.run``/``tune.run_experiments``, with Ray Tune's arguments.

    Args:
        name: the experiment's name (its directory under ``storage_path``).
        run: a function ``train(config)``, a ``Trainable`` subclass or the name given to
            :func:`poptune.register_trainable`.
        stop: a dict ``{metric: threshold}``, a function ``(trial_id, result) -> bool``, a
            :class:`~poptune.Stopper` or a list of stoppers.
        time_budget_s: end the experiment after this many seconds (or a ``timedelta``).
        config: the search space (``tune.run``'s ``config``).
        resources_per_trial: e.g. ``{"cpu": 2}`` or a ``PlacementGroupFactory``.
        num_samples: how many times to sample the space.
        storage_path: parent directory of the experiment (default ``~/poptune_results``).
        checkpoint_config: a :class:`~poptune.CheckpointConfig` (or its fields as a dict).
        trial_name_creator, trial_dirname_creator: ``trial -> str``.
        log_to_file, max_failures, restore: as in ``tune.run``.
        storage_filesystem, sync_config, export_formats: accepted as ``tune.run`` accepts them.
    """

    #: the spec keys a searcher/scheduler may read (Ray's ``PUBLIC_KEYS``)
    PUBLIC_KEYS = {"stop", "num_samples", "time_budget_s"}

    def __init__(
        self,
        name: str,
        run: str | Callable[..., Any] | type,
        *,
        stop: Any = None,
        time_budget_s: float | datetime.timedelta | None = None,
        config: dict[str, Any] | None = None,
        resources_per_trial: Any = None,
        num_samples: int = 1,
        storage_path: str | None = None,
        storage_filesystem: Any = None,
        sync_config: SyncConfig | dict[str, Any] | None = None,
        checkpoint_config: CheckpointConfig | dict[str, Any] | None = None,
        trial_name_creator: Callable[[Any], str] | None = None,
        trial_dirname_creator: Callable[[Any], str] | None = None,
        log_to_file: Any = False,
        export_formats: Sequence[Any] | None = None,
        max_failures: int = 0,
        restore: str | None = None,
        local_dir: str | None = None,
    ) -> None:
        from poptune.registry import resolve_trainable
        from poptune.stopper import as_stopper

        if not isinstance(name, str) or not name or "/" in name:
            raise bad_type("name", name, "a non-empty str without '/'")
        resolve_trainable(run)  # an unregistered name fails here, as in Ray
        if isinstance(checkpoint_config, dict):
            checkpoint_config = CheckpointConfig(**checkpoint_config)
        if isinstance(sync_config, dict):
            sync_config = SyncConfig(**sync_config)
        if config is not None and not isinstance(config, dict):
            raise bad_type("config", config, "a dict (the search space)")
        self.name = name
        self._run = run
        self._stopper = as_stopper(stop) if stop is not None else None
        self._storage_path = os.fspath(storage_path or local_dir or default_storage_path())
        self.spec: dict[str, Any] = {
            "run": run, "stop": stop, "time_budget_s": time_budget_s,
            "config": config or {}, "resources_per_trial": resources_per_trial,
            "num_samples": num_samples, "storage_path": storage_path or local_dir,
            "storage_filesystem": storage_filesystem, "sync_config": sync_config,
            "checkpoint_config": checkpoint_config or CheckpointConfig(),
            "trial_name_creator": trial_name_creator,
            "trial_dirname_creator": trial_dirname_creator, "log_to_file": log_to_file,
            "export_formats": export_formats, "max_failures": max_failures,
            "restore": restore,
        }

    @classmethod
    def from_json(cls, name: str, spec: Mapping[str, Any]) -> Experiment:
        """An ``Experiment`` from a dict of its arguments (``{"run": ..., "config": ...}``).

        As in Ray, a top-level ``"env"`` moves into ``config["env"]``.

        Raises:
            TuneError: no ``"run"`` in ``spec``, or a key ``Experiment`` does not accept.
        """
        if "run" not in spec:
            raise TuneError(f"the spec of experiment {name!r} has no 'run' (the trainable)")
        args = copy.copy(dict(spec))
        if "env" in args:
            args["config"] = {**args.get("config", {}), "env": args.pop("env")}
        run = args.pop("run")
        try:
            return cls(name, run, **args)
        except TypeError as exc:
            raise TuneError(f"the spec of experiment {name!r} is not valid: {exc}") from exc

    @classmethod
    def get_trainable_name(cls, run_object: Any) -> str:
        """The name trials of ``run_object`` carry (a registered name stays as it is)."""
        from poptune.trainable._util import trainable_name

        if isinstance(run_object, str):
            return run_object
        return trainable_name(run_object)

    @property
    def run_identifier(self) -> str:
        """The trainable's name (the registered name for a string ``run``)."""
        return self.get_trainable_name(self._run)

    @property
    def stopper(self) -> Any:
        """The ``stop`` argument as a :class:`~poptune.Stopper` (None without one)."""
        return self._stopper

    @property
    def checkpoint_config(self) -> CheckpointConfig:
        return self.spec["checkpoint_config"]  # type: ignore[no-any-return]

    @property
    def path(self) -> str:
        """The experiment directory, ``{storage_path}/{name}``."""
        return os.path.join(os.path.abspath(os.path.expanduser(self._storage_path)), self.name)

    local_path = path

    @property
    def public_spec(self) -> dict[str, Any]:
        """The parts of the spec a searcher or scheduler may read."""
        return {k: v for k, v in self.spec.items() if k in self.PUBLIC_KEYS}

    def __repr__(self) -> str:
        return f"Experiment(name={self.name!r}, run={self.run_identifier!r})"


def _convert_to_experiment_list(experiments: Any) -> list[Experiment]:
    """``Experiment`` / ``{name: spec}`` / a list of either -> a list of ``Experiment``."""
    if experiments is None:
        return []
    if isinstance(experiments, Experiment):
        return [experiments]
    if isinstance(experiments, Mapping):
        return [Experiment.from_json(name, spec) for name, spec in experiments.items()]
    if isinstance(experiments, (list, tuple)):
        out: list[Experiment] = []
        for item in experiments:
            out.extend(_convert_to_experiment_list(item) if isinstance(item, Mapping)
                       else [item])
        if all(isinstance(e, Experiment) for e in out):
            return out
    raise bad_type("experiments", experiments,
                   "an Experiment, a dict {name: spec} or a list of them")
