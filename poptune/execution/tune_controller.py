"""A read-only view of the running experiment (Ray's ``TuneController``, for schedulers).

A :class:`~poptune.schedulers.ResourceChangingScheduler` hands it to its
``resources_allocation_function`` as Ray's ``tune_controller`` argument: it answers
questions about the trials and the total resources; it cannot start, stop or change
anything (schedulers decide, the runner acts).

Example:
    >>> from poptune.experiment.trial import Trial
    >>> view = TuneController(lambda: [Trial(trial_id="a", trainable_name="f", config={})],
    ...                       num_cpus=2, num_gpus=0)
    >>> [t.trial_id for t in view.get_live_trials()], view._resource_updater.get_num_cpus()
    (['a'], 2.0)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from poptune.engine.resources import ResourcePool
    from poptune.experiment.trial import Trial


class TuneController:
    """What a resource-allocation function may ask about the experiment."""

    def __init__(self, trials: Callable[[], list[Trial]], num_cpus: float = 0.0,
                 num_gpus: int = 0, *, pool: ResourcePool | None = None) -> None:
        """``pool``: the experiment's resources, read at each question (a cluster's grow
        and shrink with its nodes); else the fixed ``num_cpus`` and ``num_gpus``."""
        self._trials = trials
        self._pool = pool
        self._num_cpus = float(num_cpus)
        self._num_gpus = int(num_gpus)

    def get_trials(self) -> list[Trial]:
        """Every trial of the experiment, in creation order."""
        return list(self._trials())

    def get_live_trials(self) -> list[Trial]:
        """Trials that have not finished (pending, running or paused)."""
        return [t for t in self._trials() if not t.is_finished()]

    def get_num_cpus(self) -> float:
        """CPUs the backend offers in total (not just free ones)."""
        return self._pool.cpu_total if self._pool is not None else self._num_cpus

    def get_num_gpus(self) -> int:
        """GPUs the backend offers in total."""
        return self._pool.gpu_total if self._pool is not None else self._num_gpus

    @property
    def _resource_updater(self) -> TuneController:
        """Ray scripts ask ``tune_controller._resource_updater.get_num_cpus()``."""
        return self


class Candidates(list):  # type: ignore[type-arg]
    """The trials a scheduler may start next: the list poptune passes to
    ``choose_trial_to_run``, which also answers what Ray's ``tune_controller`` argument does
    (``get_trials()``, ``get_live_trials()``, ...), so a Ray-style
    ``choose_trial_to_run(self, tune_controller)`` works unchanged.

    Example:
        >>> from poptune.experiment.trial import Trial
        >>> every = [Trial(trial_id=i, trainable_name="f", config={}) for i in "ab"]
        >>> c = Candidates(every[1:], TuneController(lambda: every, num_cpus=2, num_gpus=0))
        >>> [t.trial_id for t in c], [t.trial_id for t in c.get_trials()]
        (['b'], ['a', 'b'])
    """

    def __init__(self, trials: list[Any], view: TuneController | None) -> None:
        super().__init__(trials)
        self._view = view

    def __getattr__(self, name: str) -> Any:
        view = self.__dict__.get("_view")
        if view is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(view, name)
