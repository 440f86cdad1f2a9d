"""The scheduler extension point.

A scheduler *decides*; it never acts. The controller calls its hooks, one at a time, in event
order, and carries out the value each returns:

* :meth:`TrialScheduler.on_trial_result` returns a :data:`Decision`: ``CONTINUE``, ``PAUSE``,
  ``STOP``, ``NOOP`` (Ray's constants) or an :class:`Exploit` value meaning "restart this
  trial from that checkpoint with this config".
* :meth:`TrialScheduler.choose_trial_to_run` picks which pending/paused trial gets a free slot.
* :meth:`TrialScheduler.on_trial_add` may return config values to fill in (PBT samples the
  hyperparameters it mutates); it never writes ``trial.config``.
* Any hook may instead return an :class:`Outcome`: its usual value plus :data:`Action` values
  about *other* trials (an :class:`Exploit`, :class:`StopTrial`, :class:`ResizeTrial`), e.g.
  synchronous PBT exploiting the paused bottom of the population when the last member
  reports, or HyperBand stopping the losers of a halving. Nothing is queued for later.

Trials passed in are read-only views (:class:`~poptune.engine.trial_view.TrialView`): setting
an attribute raises. ``save_state``/``load_state`` make the scheduler's memory part of the
experiment, so a restored experiment continues where it stopped.

Example:
    >>> class StopAtFive(TrialScheduler):
    ...     def on_trial_result(self, trial, result):
    ...         return self.STOP if result["training_iteration"] >= 5 else self.CONTINUE
    >>> Outcome(SchedulerDecision.PAUSE, (StopTrial("a_00001"),)).actions
    (StopTrial(trial_id='a_00001'),)
"""

from __future__ import annotations

import enum
import functools
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Generic, TypeVar, Union

from poptune._validation import check_mode
from poptune.exceptions import TuneConfigError
from poptune.experiment.trial import Trial, TrialStatus


class SchedulerDecision(str, enum.Enum):
    """What happens to a trial after one of its results."""

    CONTINUE = "CONTINUE"
    PAUSE = "PAUSE"
    STOP = "STOP"
    NOOP = "NOOP"


@dataclass(frozen=True)
class Exploit:
    """Restart ``trial_id`` from ``checkpoint_path`` (another trial's) with ``config``.

    Returned by PBT-style schedulers. The runner stops the trial, pins the donor's checkpoint
    so no cleanup deletes it, and relaunches the trial with ``config`` and that checkpoint.
    """

    trial_id: str
    donor_trial_id: str
    checkpoint_path: str
    config: dict[str, Any]
    donor_result: dict[str, Any] = field(default_factory=dict)
    #: the policy-log record (``pbt_global.txt`` / ``pbt_policy_*.txt``), see :attr:`log_line`
    target_tag: str = ""
    donor_tag: str = ""
    target_iteration: int = 0
    donor_iteration: int = 0
    donor_config: dict[str, Any] = field(default_factory=dict)
    #: the trial's new ``experiment_tag`` (``"{orig_tag}@perturbed[...]"``); None keeps it
    experiment_tag: str | None = None

    @property
    def log_line(self) -> list[Any] | None:
        """Ray's policy-log line ``[target_tag, clone_tag, target_iteration, clone_iteration,
        clone_config, new_config]``; None when the scheduler did not fill the record."""
        if not (self.target_tag or self.donor_tag):
            return None
        return [
            self.target_tag,
            self.donor_tag,
            self.target_iteration,
            self.donor_iteration,
            self.donor_config,
            self.config,
        ]


Decision = Union[SchedulerDecision, Exploit]


@dataclass(frozen=True)
class StopTrial:
    """End ``trial_id`` for good: a PAUSED or PENDING trial at once, a RUNNING one at its next
    result (e.g. the losers of a HyperBand halving)."""

    trial_id: str


@dataclass(frozen=True)
class ResizeTrial:
    """Run ``trial_id`` with ``resources`` (a dict or a ``PlacementGroupFactory``) from its next
    start; a RUNNING trial is resized once it has paused."""

    trial_id: str
    resources: Any


#: a decision about a trial other than the one a hook was called for
Action = Union[Exploit, StopTrial, ResizeTrial]

T = TypeVar("T")


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """A hook's usual return ``value`` plus ``actions`` on other trials, carried out in order
    right after the hook returns."""

    value: T
    actions: tuple[Action, ...] = ()


#: the trial hooks, and how many positional arguments poptune passes them after ``self``; Ray
#: passes its ``tune_controller`` first (``on_trial_result(tune_controller, trial, result)``)
HOOK_ARITY = {"on_trial_add": 1, "on_trial_error": 1, "on_trial_result": 2,
              "on_trial_complete": 2, "on_trial_remove": 1}
#: the names Ray (2.x, 1.x) gives that leading argument
_CONTROLLER_NAMES = ("tune_controller", "trial_runner")
#: where a scheduler keeps the experiment view it was given (a key ``save_state`` leaves out)
_VIEW_KEY = "__experiment_view"


def _ray_style(fn: Callable[..., Any], arity: int) -> bool:
    """Whether hook ``fn`` has Ray's signature: its first parameter after ``self`` is named
    as Ray names the controller, or it requires one more positional argument than poptune
    passes."""
    try:
        params = list(inspect.signature(fn).parameters.values())[1:]
    except (TypeError, ValueError):
        return False
    if params and params[0].name in _CONTROLLER_NAMES:
        return True
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return False
    required = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                   and p.default is p.empty for p in params)
    return required == arity + 1


def _ray_hook(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A hook written with Ray's signature, called the poptune way: the experiment's
    read-only :class:`~poptune.execution.TuneController` goes in front."""

    @functools.wraps(fn)
    def hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(self, self.__dict__.get(_VIEW_KEY), *args, **kwargs)

    hook._poptune_hook = True  # type: ignore[attr-defined]
    return hook


def _tolerant_hook(fn: Callable[..., Any], arity: int) -> Callable[..., Any]:
    """One of poptune's own hooks that also takes Ray's leading ``tune_controller`` (and
    drops it): a Ray-style subclass calls ``super().on_trial_result(tune_controller, trial,
    result)``."""

    @functools.wraps(fn)
    def hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        for ray_name in _CONTROLLER_NAMES:
            kwargs.pop(ray_name, None)
        return fn(self, *(args[1:] if len(args) > arity else args), **kwargs)

    hook._poptune_hook = True  # type: ignore[attr-defined]
    return hook


class TrialScheduler:
    """Base class of every scheduler. Ray's class constants are kept for user subclasses.

    A subclass may write its hooks with Ray's signatures (``on_trial_result(self,
    tune_controller, trial, result)``, ``choose_trial_to_run(self, tune_controller)``, ...):
    they get the experiment's read-only :class:`~poptune.execution.TuneController`
    (``get_trials()``, ``get_live_trials()``, the total resources) as ``tune_controller``,
    and may call ``super()`` the way Ray's do. Acting through it (``pause_trial``,
    ``stop_trial``) is not possible: return a decision instead.
    """

    CONTINUE = SchedulerDecision.CONTINUE
    PAUSE = SchedulerDecision.PAUSE
    STOP = SchedulerDecision.STOP
    NOOP = SchedulerDecision.NOOP

    _metric: str | None = None
    _mode: str | None = None
    #: a scheduler that pauses trials and resumes them later needs checkpoints to do so
    needs_checkpoints = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, arity in HOOK_ARITY.items():
            fn = cls.__dict__.get(name)
            if fn is None or getattr(fn, "_poptune_hook", False):
                continue
            if _ray_style(fn, arity):  # Ray's (tune_controller, ...)
                setattr(cls, name, _ray_hook(fn))
            elif cls.__module__.startswith("poptune."):  # a Ray-style subclass calls super()
                setattr(cls, name, _tolerant_hook(fn, arity))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop(_VIEW_KEY, None)  # the live experiment: not part of the scheduler
        return state

    @property
    def metric(self) -> str | None:
        return self._metric

    @property
    def mode(self) -> str | None:
        return self._mode

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        """Receive metric/mode from ``TuneConfig``; giving them in both places is an error."""
        if (self._metric or self._mode) and (metric or mode):
            if (metric and self._metric and metric != self._metric) or (
                mode and self._mode and mode != self._mode
            ) or (metric and self._metric) or (mode and self._mode):
                raise TuneConfigError(
                    f"`metric`/`mode` were given both to {type(self).__name__} "
                    f"(metric={self._metric!r}, mode={self._mode!r}) and to TuneConfig "
                    f"(metric={metric!r}, mode={mode!r}); set them in one place only"
                )
        check_mode(mode)
        if metric is not None:
            self._metric = metric
        if mode is not None:
            self._mode = mode
        if self._mode and not self._metric:
            self._metric = "_metric"
        return True

    def on_trial_add(self, trial: Trial) -> dict[str, Any] | None | Outcome[Any]:
        """A trial was created (before it first starts), or restored.

        Return the config values to fill in, as ``{"a/b": value}`` paths (PBT samples the
        hyperparameters it mutates that the config lacks), or None. The controller writes
        them into the trial's config and ``evaluated_params``."""
        return None

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> Decision | Outcome[Any]:
        """A running trial reported ``result`` (flattened: ``"a/b"`` keys); return what to do
        with it."""
        return SchedulerDecision.CONTINUE

    def on_trial_complete(self, trial: Trial, result: dict[str, Any]) -> Outcome[None] | None:
        """A running trial finished: its function returned, or it stopped after a result
        (a ``STOP`` decision, the stopper)."""
        return None

    def on_trial_error(self, trial: Trial) -> Outcome[None] | None:
        """A trial errored for good."""
        return None

    def on_trial_remove(self, trial: Trial) -> Outcome[None] | None:
        """A PAUSED or PENDING trial was ended without running again (as in Ray: the
        experiment stops, or a scheduler's :class:`StopTrial`)."""
        return None

    def choose_trial_to_run(self, candidates: list[Trial]) -> Trial | None | Outcome[Any]:
        """Pick the next trial to launch among PENDING and PAUSED ones (FIFO by default).

        PENDING trials come first, in creation order, then PAUSED ones. Asked when a slot
        is free for the resources every trial asks for; when trials ask for different
        resources, also when the chosen one may not fit: the choice is then dropped and
        asked for again later, so choosing must not commit the scheduler to the trial.
        """
        for status in (TrialStatus.PENDING, TrialStatus.PAUSED):
            for trial in candidates:
                if trial.status == status:
                    return trial
        return None

    def pinned_checkpoints(self) -> set[str]:
        """Checkpoint paths a future decision may restore from; never deleted while listed."""
        return set()

    def set_experiment_view(self, view: Any) -> None:
        """Receive a read-only view of the experiment (a
        :class:`~poptune.execution.TuneController`: the trials, the total resources), once,
        before the first trial starts; it is what Ray-style hooks get as ``tune_controller``.
        An override should call ``super().set_experiment_view(view)``."""
        self.__dict__[_VIEW_KEY] = view

    def should_checkpoint(self, trial: Trial, result: dict[str, Any]) -> bool:
        """Class trainables only: return True to have the trial save a checkpoint right after
        ``result`` (before :meth:`on_trial_result` sees it). Function trainables checkpoint
        through ``tune.report(checkpoint=...)`` themselves."""
        return False

    def debug_string(self) -> str:
        return f"Using {type(self).__name__}."

    def save_state(self) -> dict[str, Any]:
        """State to store with the experiment (picklable)."""
        return {k: v for k, v in self.__dict__.items() if not k.startswith("__")}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`save_state` returned."""
        self.__dict__.update(state)

    #: True when the scheduler journals its state as deltas (:meth:`state_delta`): for a
    #: state that grows with the experiment (ASHA's rungs), so that every commit records
    #: exactly what changed instead of the whole state. Others are journaled whole.
    incremental_state: ClassVar[bool] = False

    def state_delta(self) -> Any:
        """What changed in the state since the last call (None: nothing), for schedulers
        with :attr:`incremental_state`; the engine calls it once per commit and calls
        :meth:`save_state` (which must not reset it) when it writes the whole state."""
        return None

    def apply_state_delta(self, delta: Any) -> None:
        """Apply one :meth:`state_delta` on top of the state restored by :meth:`load_state`."""
        raise NotImplementedError(f"{type(self).__name__} does not journal state deltas")


for _name, _arity in HOOK_ARITY.items():  # the base's hooks, for super() calls from Ray style
    setattr(TrialScheduler, _name, _tolerant_hook(TrialScheduler.__dict__[_name], _arity))


class FIFOScheduler(TrialScheduler):
    """Run trials in the order they were created; never stops or pauses anything."""

    def __init__(self) -> None:
        pass

    def debug_string(self) -> str:
        """Ray's status line for this scheduler."""
        return "Using FIFO scheduling algorithm."
