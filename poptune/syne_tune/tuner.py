"""Syne Tune's ``Tuner`` on poptune's engine.

``Tuner(trial_backend, scheduler, stop_criterion, n_workers).run()`` runs the experiment
with poptune (worker processes, journal, restore-safe layout) in
``$SYNETUNE_FOLDER/<name>`` (default ``~/syne-tune/<name>``, as Syne Tune), writes
``metadata.json`` and ``results.csv.zip`` there for :func:`load_experiment`, and the
directory is an ordinary poptune experiment: ``poptune ls ~/syne-tune`` and the dashboard
show it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from poptune._validation import bad_type, bad_value
from poptune.exceptions import TuneError
from poptune.syne_tune._bridge import METADATA_FILE, Bridge
from poptune.syne_tune.backend._python import TrialBackend
from poptune.syne_tune.optimizer.baselines import SyneScheduler
from poptune.syne_tune.stopping_criterion import TuningStatus

logger = logging.getLogger("poptune.syne_tune")

__all__ = ["Tuner", "experiment_path", "name_from_base"]

ENV_FOLDER = "SYNETUNE_FOLDER"


def experiment_path(tuner_name: str | None = None, local_path: str | None = None) -> Path:
    """Where experiments live: ``local_path``, else ``$SYNETUNE_FOLDER``, else
    ``~/syne-tune``; with ``tuner_name`` the experiment's own directory."""
    root = Path(local_path) if local_path is not None else Path(
        os.environ.get(ENV_FOLDER) or "~/syne-tune").expanduser()
    return root / tuner_name if tuner_name is not None else root


def name_from_base(base: str, max_length: int = 63) -> str:
    """``base`` plus a UTC timestamp with milliseconds, e.g. ``lenet-2026-12-03-12-00-00-123``.

    Example:
        >>> bool(re.fullmatch(r"x-\\d{4}(-\\d\\d){5}-\\d{3}", name_from_base("x")))
        True
    """
    now = time.time()
    stamp = time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(now)) + f"-{int(now * 1000) % 1000:03d}"
    return f"{base[:max_length - len(stamp) - 1]}-{stamp}"


class Tuner:
    """Run ``scheduler`` over ``trial_backend`` with ``n_workers`` trials at a time until
    ``stop_criterion(status)`` holds.

    Args:
        trial_backend: a :class:`PythonBackend` or :class:`LocalBackend`.
        scheduler: a baseline from :mod:`poptune.syne_tune.optimizer.baselines`.
        stop_criterion: a :class:`StoppingCriterion` or any ``f(TuningStatus) -> bool``.
        n_workers: trials running at once.
        max_failures: failed trials tolerated before tuning stops (default 1, as Syne Tune).
        tuner_name: the experiment's name prefix (default: the backend's entry point).
        suffix_tuner_name: append a timestamp to the name (default True).
        metadata: extra entries for ``metadata.json``.
        results_update_interval: seconds between writes of ``results.csv.zip``.
        sleep_time, print_update_interval, save_tuner, start_jobs_without_delay,
        trial_backend_path, output_logger: accepted for compatibility (poptune does not
        poll, so there is nothing to sleep).

    Example:
        >>> from poptune.syne_tune import Tuner, StoppingCriterion, Reporter
        >>> from poptune.syne_tune.backend import PythonBackend
        >>> from poptune.syne_tune.config_space import uniform
        >>> from poptune.syne_tune.optimizer.baselines import RandomSearch
        >>> def f(x):
        ...     Reporter()(loss=(x - 0.5) ** 2)
        >>> space = {"x": uniform(0, 1)}
        >>> tuner = Tuner(PythonBackend(f, space), RandomSearch(space, metric="loss"),
        ...               StoppingCriterion(max_num_trials_finished=3), n_workers=2)
        >>> tuner.run()  # doctest: +SKIP
    """

    def __init__(self, trial_backend: TrialBackend, scheduler: SyneScheduler,
                 stop_criterion: Callable[[TuningStatus], bool], n_workers: int,
                 sleep_time: float = 5.0, results_update_interval: float = 10.0,
                 print_update_interval: float = 30.0, max_failures: int = 1,
                 tuner_name: str | None = None, asynchronous_scheduling: bool = True,
                 wait_trial_completion_when_stopping: bool = False,
                 callbacks: list[Any] | None = None, metadata: dict[str, Any] | None = None,
                 suffix_tuner_name: bool = True, save_tuner: bool = True,
                 start_jobs_without_delay: bool = True, trial_backend_path: str | None = None,
                 output_logger: Any = None) -> None:
        if not isinstance(trial_backend, TrialBackend):
            raise bad_type("trial_backend", trial_backend, "a PythonBackend or LocalBackend")
        if not isinstance(scheduler, SyneScheduler):
            raise bad_type("scheduler", scheduler,
                           "a scheduler from poptune.syne_tune.optimizer.baselines")
        if not callable(stop_criterion):
            raise bad_type("stop_criterion", stop_criterion,
                           "a StoppingCriterion or a callable(TuningStatus) -> bool")
        if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
            raise bad_value("n_workers", n_workers, "an integer >= 1")
        if not asynchronous_scheduling:
            raise bad_value("asynchronous_scheduling", asynchronous_scheduling,
                            "True (poptune schedules asynchronously)")
        if wait_trial_completion_when_stopping:
            raise bad_value("wait_trial_completion_when_stopping",
                            wait_trial_completion_when_stopping,
                            "False (running trials are stopped when the criterion holds)")
        if tuner_name is not None and not re.fullmatch(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*",
                                                      tuner_name):
            raise bad_value("tuner_name", tuner_name,
                            "letters and digits, possibly separated by '-'")
        self.trial_backend = trial_backend
        self.scheduler = scheduler
        self.stop_criterion = stop_criterion
        self.n_workers = n_workers
        self.max_failures = max_failures
        self.results_update_interval = results_update_interval
        self.callbacks = list(callbacks or [])
        base = tuner_name or trial_backend.entrypoint_stem().replace("_", "-")
        self.name = name_from_base(base) if suffix_tuner_name else base
        self.tuner_path = experiment_path(self.name)
        self.metadata = dict(metadata or {})
        self.metadata.update(st_tuner_creation_timestamp=time.time(),
                             entrypoint=trial_backend.entrypoint_stem(),
                             backend=type(trial_backend).__name__, **scheduler.metadata())
        self.status: TuningStatus | None = None

    def run(self) -> None:
        """Run the experiment until the stopping criterion holds (or the searcher is done).

        Raises:
            TuneError: more than ``max_failures`` trials failed.
        """
        import poptune as tune
        from poptune.trainable import with_resources

        parts = self.scheduler.poptune_parts()
        path = str(self.tuner_path)
        bridge = Bridge(self.stop_criterion, self.scheduler.metric_names(), self.max_failures,
                        path, parts.pop("stop", None), self.results_update_interval,
                        parts.pop("resource", None))
        cpus = os.cpu_count() or 1
        trainable = with_resources(self.trial_backend.trainable(self.scheduler.config_space),
                                   {"cpu": min(1.0, cpus / self.n_workers)})
        tuner = tune.Tuner(
            trainable, param_space=dict(self.scheduler.config_space),
            tune_config=tune.TuneConfig(metric=self.scheduler.metric, mode=self.scheduler.mode,
                                        max_concurrent_trials=self.n_workers, **parts),
            run_config=tune.RunConfig(name=self.name, storage_path=str(self.tuner_path.parent),
                                      stop=bridge, callbacks=[bridge, *self.callbacks],
                                      verbose=int(os.environ.get("POPTUNE_SYNE_VERBOSE", 1))))
        os.makedirs(path, exist_ok=True)
        self.metadata["st_tuner_start_timestamp"] = time.time()
        with open(os.path.join(path, METADATA_FILE), "w") as f:
            json.dump(self.metadata, f, default=str)
        logger.info("results of trials will be saved on %s", path)
        tuner.fit()
        self.status = bridge.status
        if bridge.status.num_trials_failed > self.max_failures:
            raise TuneError(f"{bridge.status.num_trials_failed} trials failed (more than "
                            f"max_failures={self.max_failures}); see the trial logs in {path}")
