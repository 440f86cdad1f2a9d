"""``ResourceChangingScheduler``: resize live trials between steps (Ray's API and semantics).

It wraps another scheduler. After each result the wrapped scheduler decides first; when it
says ``CONTINUE``, the ``resources_allocation_function`` may return new resources for the
trial. If they differ from the trial's current ones the trial is paused (it must be able to
checkpoint: a class trainable, or a function that reports checkpoints) and the hook returns
``Outcome(PAUSE, (ResizeTrial(trial_id, new),))``: the controller gives the trial the new
resources once it has stopped and resumes it from its checkpoint with them. Inside the
trial, ``tune.get_context().get_trial_resources()`` (or ``Trainable.trial_resources``)
returns the current resources.

A trial's resources are the *sum* of their bundles here (see
:class:`~poptune.PlacementGroupFactory`), so the default :class:`DistributeResources`
grows the trial's single bundle; ``add_bundles=True`` adds bundles of ``increase_by``.

Example:
    >>> from poptune.schedulers import ASHAScheduler
    >>> sched = ResourceChangingScheduler(ASHAScheduler(max_t=16),
    ...                                   DistributeResources(increase_by={"CPU": 1}))
    >>> type(sched.base_scheduler).__name__
    'AsyncHyperBandScheduler'
"""

from __future__ import annotations

import contextlib
import logging
import math
import numbers
import warnings
from typing import TYPE_CHECKING, Any, Callable

from poptune._validation import bad_type, bad_value
from poptune.exceptions import TuneConfigError
from poptune.execution.placement_groups import PlacementGroupFactory
from poptune.experiment.trial import Trial
from poptune.schedulers._base import (
    Action,
    Decision,
    FIFOScheduler,
    Outcome,
    ResizeTrial,
    SchedulerDecision,
    TrialScheduler,
)

if TYPE_CHECKING:
    from poptune.execution.tune_controller import TuneController

logger = logging.getLogger("poptune")

AllocationFunction = Callable[
    ["TuneController", "Trial", "dict[str, Any]", "ResourceChangingScheduler"],
    "PlacementGroupFactory | dict[str, float] | None",
]


def _units(increase_by: dict[str, float], cpus: float, gpus: float) -> int:
    """How many ``increase_by`` units fit in ``cpus``/``gpus`` (negative when they are).

    >>> _units({"CPU": 2}, 5, 0), _units({"CPU": 1}, -1.5, 0), _units({"CPU": 1, "GPU": 1}, 4, 1)
    (2, -2, 1)
    """
    per = [(cpus, increase_by.get("CPU", 0.0)), (gpus, increase_by.get("GPU", 0.0))]
    counts = [math.floor(have / unit + 1e-9) for have, unit in per if unit > 0]
    return min(counts) if counts else 0


class DistributeResources:
    """Share free CPUs/GPUs equally among live trials (Ray's default allocation function).

    A trial keeps at least the resources it started with (the scheduler's
    ``base_trial_resources``); what it has beyond them is counted in ``increase_by`` units.
    After a result, with *free* the units left once every live trial (pending and paused ones
    included) has what it holds, the trial's units become, as in Ray 2.60:

    * free < 0 (over-committed): its units less what is over (never below its base);
    * free = 0: its units, unchanged, even above its equal share or ``increase_by_times``;
    * free > 0: its units plus the free ones, at most its *equal share*: the units beyond
      every live trial's base dealt out one at a time in turn (so ``ceil(spare / live)``),
      and at most ``increase_by_times`` if that is >= 1. A trial above that limit is cut
      down to it.

    Nothing changes before the first result.

    One difference from Ray, a bug there: Ray deals the equal shares only while *every*
    resource, one that is not in ``increase_by`` included, has something left beyond the
    live trials' bases and ``reserve_resources``. When one has not (``increase_by={"GPU": 1}``
    with ``reserve_resources={"CPU": 1}`` on CPUs the bases already use, or pending trials
    whose CPUs do not fit), Ray sets no share, and the first trial to report takes every free
    unit (up to ``increase_by_times``). poptune deals by the resources of ``increase_by``
    only, so the trials still get equal shares of it.

    Args:
        add_bundles: Add a bundle per unit instead of growing the trial's bundle.
        increase_by: One unit, e.g. ``{"CPU": 2}``; default one CPU, or one GPU when the
            base resources have GPUs (``add_bundles``: the last base bundle).
        increase_by_times: Most units a trial may gain (< 1: no limit).
        reserve_resources: Resources kept out of the sharing, e.g. ``{"CPU": 1}``.
    """

    def __init__(self, add_bundles: bool = False, increase_by: dict[str, float] | None = None,
                 increase_by_times: int = -1,
                 reserve_resources: dict[str, float] | None = None) -> None:
        if increase_by is not None:
            if not isinstance(increase_by, dict):
                raise bad_type("increase_by", increase_by, 'a dict such as {"CPU": 1}')
            if not (increase_by.get("CPU", 0) > 0 or increase_by.get("GPU", 0) > 0) or any(
                    v < 0 for v in increase_by.values()):
                raise bad_value("increase_by", increase_by,
                                "a dict with a positive 'CPU' or 'GPU' and no negative amount")
        self.add_bundles = bool(add_bundles)
        self.increase_by = dict(increase_by or {})
        self.increase_by_times = int(increase_by_times)
        self.reserve_resources = dict(reserve_resources or {})
        self.metric: str | None = None
        self.mode: str | None = None

    # -- helpers a subclass may reuse ----------------------------------------------------------
    def _unit(self, base: PlacementGroupFactory) -> dict[str, float]:
        if self.increase_by:
            return self.increase_by
        if self.add_bundles:
            return base.bundles[-1]
        return {"GPU": 1.0} if base.required_resources.get("GPU") else {"CPU": 1.0}

    def _totals(self, controller: TuneController) -> tuple[float, float]:
        return (controller.get_num_cpus() - self.reserve_resources.get("CPU", 0.0),
                controller.get_num_gpus() - self.reserve_resources.get("GPU", 0.0))

    @staticmethod
    def _used(trials: list[Trial]) -> tuple[float, float]:
        return (sum(t.resources.get("cpu", 0.0) for t in trials),
                sum(t.resources.get("gpu", 0.0) for t in trials))

    def _current_units(self, trial: Trial, base: PlacementGroupFactory,
                       unit: dict[str, float]) -> int:
        have = trial.placement_group_factory.required_resources
        start = base.required_resources
        return _units(unit, have.get("CPU", 0.0) - start.get("CPU", 0.0),
                      have.get("GPU", 0.0) - start.get("GPU", 0.0))

    def _cap(self, units: int) -> int:
        return min(units, self.increase_by_times) if self.increase_by_times >= 1 else units

    def _times_limit(self) -> int:
        """``increase_by_times`` as a limit for :meth:`_step` (0: none)."""
        return max(self.increase_by_times, 0)

    def _with_units(self, base: PlacementGroupFactory, unit: dict[str, float],
                    units: int) -> PlacementGroupFactory:
        bundles = base.bundles
        if self.add_bundles:
            bundles = bundles + [dict(unit)] * units
        else:
            first = dict(bundles[0])
            for key in ("CPU", "GPU"):
                if unit.get(key):
                    first[key] = first.get(key, 0.0) + unit[key] * units
            bundles = [first] + bundles[1:]
        return PlacementGroupFactory(bundles, base.strategy)

    @staticmethod
    def _step(current: int, free_units: int, limit: int) -> int:
        """Ray's step: give back what is over-committed, keep, or grow up to ``limit``
        (< 1: none); growing cuts a trial above ``limit`` down to it."""
        if free_units < 0:
            return max(0, current + free_units)
        if free_units == 0:
            return current
        return current + free_units if limit < 1 else min(current + free_units, limit)

    def _equal_share(self, controller: TuneController, live: list[Trial],
                     base: PlacementGroupFactory, unit: dict[str, float]) -> int:
        """Units a trial may reach when the spare ones are dealt out equally, one unit to
        each trial in turn (``increase_by_times`` caps it); 0 when no unit is spare."""
        total_cpu, total_gpu = self._totals(controller)
        start = base.required_resources
        spare = _units(unit, total_cpu - start.get("CPU", 0.0) * len(live),
                       total_gpu - start.get("GPU", 0.0) * len(live))
        return self._cap(-(-spare // len(live))) if spare >= 1 else 0

    def _target_units(self, controller: TuneController, trial: Trial, live: list[Trial],
                      base: PlacementGroupFactory, unit: dict[str, float], current: int,
                      free_units: int) -> int:
        """Units the trial should have: grow into free units up to its equal share."""
        limit = self._equal_share(controller, live, base, unit) or self._times_limit()
        return self._step(current, free_units, limit)

    def __call__(self, controller: TuneController, trial: Trial, result: dict[str, Any],
                 scheduler: ResourceChangingScheduler) -> PlacementGroupFactory | None:
        base = scheduler.base_trial_resources or PlacementGroupFactory([{"CPU": 1}])
        if not self.add_bundles and len(base.bundles) > 1:
            raise bad_value("resources_per_trial", base.bundles,
                            "a single bundle when `add_bundles` is False")
        if result.get("training_iteration", 0) < 1:
            return None
        unit = self._unit(base)
        live = controller.get_live_trials() or [trial]
        total_cpu, total_gpu = self._totals(controller)
        used_cpu, used_gpu = self._used(live)
        free_units = _units(unit, total_cpu - used_cpu, total_gpu - used_gpu)
        current = self._current_units(trial, base, unit)
        target = self._target_units(controller, trial, live, base, unit, current, free_units)
        return self._with_units(base, unit, target)


class DistributeResourcesToTopJob(DistributeResources):
    """Give every free unit to the best live trial that can still grow (by ``metric``/``mode``).

    As in Ray 2.60, the trial that grows is the best live trial holding fewer than
    ``increase_by_times`` units (any trial when that is < 1), or the best one when every
    trial holds that many. It grows by every free unit, at most to ``increase_by_times``
    (a trial above it is cut down to it). The others keep what they have, unless resources
    are over-committed: then each trial that reports gives back what is over (never below its
    base). ``metric``/``mode`` default to the wrapped scheduler's.

    Differences from Ray, bugs there. Ray counts a trial at ``increase_by_times`` as able to
    grow when ``add_bundles`` adds a unit without CPUs or without GPUs (the sum of its added
    bundles lacks that key). Without ``increase_by`` it measures the limit in an empty unit,
    so no trial counts as able to grow (with ``add_bundles``: none without an added
    bundle). The trial Ray picks may then be at its limit, and the free units go unused;
    poptune grows the best trial below the limit. A trial without a numeric ``metric``
    result ranks last (Ray ranks it first in ``"max"`` mode: the others wait until it
    reports).
    """

    def __init__(self, add_bundles: bool = False, increase_by: dict[str, float] | None = None,
                 increase_by_times: int = -1, reserve_resources: dict[str, float] | None = None,
                 metric: str | None = None, mode: str | None = None) -> None:
        super().__init__(add_bundles, increase_by, increase_by_times, reserve_resources)
        if mode is not None and mode not in ("min", "max"):
            raise bad_value("mode", mode, "'min' or 'max'")
        self.metric = metric
        self.mode = mode

    def _score(self, trial: Trial) -> float:
        """The trial's last ``metric``, signed so that higher is better (-inf without one)."""
        value = trial.last_result.get(self.metric) if self.metric else None
        if not isinstance(value, numbers.Real) or math.isnan(value):
            return -math.inf
        return float(value) if self.mode == "max" else -float(value)

    def _top_trial(self, live: list[Trial], base: PlacementGroupFactory,
                   unit: dict[str, float]) -> Trial:
        """The best live trial below ``increase_by_times`` units, else the best one."""
        ranked = sorted(live, key=self._score, reverse=True)  # stable: ties keep live order
        limit = self._times_limit()
        can_grow = [t for t in ranked if not limit or self._current_units(t, base, unit) < limit]
        return (can_grow or ranked)[0]

    def _target_units(self, controller: TuneController, trial: Trial, live: list[Trial],
                      base: PlacementGroupFactory, unit: dict[str, float], current: int,
                      free_units: int) -> int:
        if self.metric is None or self.mode not in ("min", "max"):
            raise TuneConfigError(
                "`metric`/`mode` of DistributeResourcesToTopJob are not set; pass them to it, "
                "to the wrapped scheduler or to TuneConfig")
        if trial.trial_id != self._top_trial(live, base, unit).trial_id:
            return self._step(current, min(free_units, 0), 0)  # give back what is over
        return self._step(current, free_units, self._times_limit())


_DEFAULT_ALLOCATION = DistributeResources(add_bundles=False)


class ResourceChangingScheduler(TrialScheduler):
    """Wrap ``base_scheduler`` and resize live trials with ``resources_allocation_function``.

    Args:
        base_scheduler: The scheduler that decides (default :class:`FIFOScheduler`).
        resources_allocation_function: ``f(tune_controller, trial, result, scheduler)``
            returning a :class:`~poptune.PlacementGroupFactory` (or a resource dict), or
            None to leave the trial as it is. ``tune_controller`` is a read-only
            :class:`~poptune.execution.TuneController`. Default: :class:`DistributeResources`.
            None disables resizing (with a warning, as in Ray).
    """

    needs_checkpoints = True

    def __init__(self, base_scheduler: TrialScheduler | None = None,
                 resources_allocation_function: AllocationFunction | None = _DEFAULT_ALLOCATION,
                 ) -> None:
        if base_scheduler is not None and not isinstance(base_scheduler, TrialScheduler):
            raise bad_type("base_scheduler", base_scheduler, "a TrialScheduler or None")
        if resources_allocation_function is None:
            warnings.warn("`resources_allocation_function` is None: no trial will be resized. "
                          "Pass a function (or DistributeResources()) to enable resizing.",
                          stacklevel=2)
        elif not callable(resources_allocation_function):
            raise bad_type("resources_allocation_function", resources_allocation_function,
                           "a callable (tune_controller, trial, result, scheduler) -> "
                           "PlacementGroupFactory | None")
        self._base_scheduler = base_scheduler or FIFOScheduler()
        self._resources_allocation_function = resources_allocation_function
        self._base_trial_resources: PlacementGroupFactory | None = None
        #: resizes decided and not yet seen carried out (the trial has not reported since):
        #: saved with the experiment, so a restore gives them again
        self._to_reallocate: dict[str, Any] = {}
        self._reallocated_trial_ids: set[str] = set()
        self._view: TuneController | None = None
        self._pending_restored: dict[str, Any] = {}

    # -- what is delegated ---------------------------------------------------------------------
    @property
    def base_scheduler(self) -> TrialScheduler:
        return self._base_scheduler

    @property
    def base_trial_resources(self) -> PlacementGroupFactory | None:
        """The resources of the first trial: every trial starts with them."""
        return self._base_trial_resources

    @property
    def metric(self) -> str | None:
        return self._base_scheduler.metric

    @property
    def mode(self) -> str | None:
        return self._base_scheduler.mode

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return self._base_scheduler.set_search_properties(metric, mode, **spec)

    def set_experiment_view(self, view: Any) -> None:
        super().set_experiment_view(view)
        self._view = view
        self._base_scheduler.set_experiment_view(view)

    def on_trial_add(self, trial: Trial) -> Any:
        """Check the trial starts with the base resources; forward to the base scheduler.

        A restored trial whose resize was decided before the experiment stopped gets it
        back as a :class:`ResizeTrial` action."""
        pgf = trial.placement_group_factory
        if self._base_trial_resources is None:
            self._base_trial_resources = pgf
        elif (trial.trial_id not in self._reallocated_trial_ids and not trial.last_result
              and pgf != self._base_trial_resources):  # a restored trial may have been resized
            raise TuneConfigError(
                "ResourceChangingScheduler needs every trial to start with the same resources: "
                f"the first trial had {self._base_trial_resources.required_resources}, trial "
                f"{trial} has {pgf.required_resources}")
        out = self._base_scheduler.on_trial_add(trial)
        new = self._pending_restored.pop(trial.trial_id, None)
        if new is None or trial.is_finished():
            return out
        self._to_reallocate[trial.trial_id] = new
        self._reallocated_trial_ids.add(trial.trial_id)
        return _with_actions(out, (ResizeTrial(trial.trial_id, new),))

    def on_trial_result(
        self, trial: Trial, result: dict[str, Any]
    ) -> Decision | Outcome[Any]:
        """The base scheduler decides; if it says CONTINUE and the allocation function
        gives new resources, pause the trial and resize it
        (``Outcome(PAUSE, (ResizeTrial(trial_id, new),))``, after the base's actions)."""
        self._to_reallocate.pop(trial.trial_id, None)  # it runs: any earlier resize is done
        out = self._base_scheduler.on_trial_result(trial, result)
        decision = out.value if isinstance(out, Outcome) else out
        if decision == SchedulerDecision.CONTINUE:
            new = self._new_resources(trial, result)
            if new is not None:
                self._to_reallocate[trial.trial_id] = new
                self._reallocated_trial_ids.add(trial.trial_id)
                logger.info("poptune: trial %s will be resized to %s", trial, new)
                return _with_actions(out, (ResizeTrial(trial.trial_id, new),),
                                     value=SchedulerDecision.PAUSE)
        return out

    def on_trial_complete(self, trial: Trial, result: dict[str, Any]) -> Any:
        self._to_reallocate.pop(trial.trial_id, None)
        return self._base_scheduler.on_trial_complete(trial, result)

    def on_trial_error(self, trial: Trial) -> Any:
        self._to_reallocate.pop(trial.trial_id, None)
        return self._base_scheduler.on_trial_error(trial)

    def on_trial_remove(self, trial: Trial) -> Any:
        self._to_reallocate.pop(trial.trial_id, None)
        return self._base_scheduler.on_trial_remove(trial)

    def choose_trial_to_run(self, candidates: list[Trial]) -> Any:
        return self._base_scheduler.choose_trial_to_run(candidates)

    def pinned_checkpoints(self) -> set[str]:
        return self._base_scheduler.pinned_checkpoints()

    def should_checkpoint(self, trial: Trial, result: dict[str, Any]) -> bool:
        return self._base_scheduler.should_checkpoint(trial, result)

    def debug_string(self) -> str:
        return f"(ResourceChangingScheduler) {self._base_scheduler.debug_string()}"

    def save_state(self) -> dict[str, Any]:
        return {"base": self._base_scheduler.save_state(),
                "base_trial_resources": self._base_trial_resources,
                "to_reallocate": dict(self._to_reallocate),
                "reallocated": set(self._reallocated_trial_ids)}

    def load_state(self, state: dict[str, Any]) -> None:
        self._base_scheduler.load_state(state["base"])
        self._base_trial_resources = state["base_trial_resources"]
        self._reallocated_trial_ids = set(state["reallocated"])
        # resizes of trials paused for them, perhaps not carried out before the experiment
        # stopped: on_trial_add of each restored trial gives its resize again
        self._pending_restored = dict(state.get("to_reallocate", {}))

    # -- resizing --------------------------------------------------------------------------------
    def _new_resources(self, trial: Trial, result: dict[str, Any]) -> Any:
        fn = self._resources_allocation_function
        if fn is None or self._view is None:
            return None
        for name, value in (("metric", self.metric), ("mode", self.mode)):
            if not getattr(fn, name, None):  # as in Ray: the function learns the scheduler's
                with contextlib.suppress(AttributeError):  # e.g. a bound method cannot
                    setattr(fn, name, value)
        new = fn(self._view, trial, result, self)
        if not new:
            return None
        if not isinstance(new, (PlacementGroupFactory, dict)):
            raise bad_type("resources_allocation_function's result", new,
                           "a PlacementGroupFactory, a resource dict or None")
        from poptune.trainable._util import normalize_resources

        if normalize_resources(new, "resources_allocation_function's result") == trial.resources:
            return None  # the same resources: nothing to do
        return new


def _with_actions(out: Any, actions: tuple[Action, ...], value: Any = None) -> Outcome[Any]:
    """``out`` (a hook's plain value or :class:`Outcome`) with ``actions`` added after its own;
    its value replaced by ``value`` unless None."""
    if isinstance(out, Outcome):
        base_value, base_actions = out.value, out.actions
    else:
        base_value, base_actions = out, ()
    return Outcome(base_value if value is None else value, base_actions + actions)
