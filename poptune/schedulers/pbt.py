"""Population Based Training (``ray.tune.schedulers.PopulationBasedTraining``) and its replay.

Every ``perturbation_interval`` units of ``time_attr``, a trial in the bottom
``quantile_fraction`` of the population is restarted from the latest checkpoint of a random
trial in the top quantile, with an *explored* copy of that donor's config (perturbed by a
factor, shifted to a neighbouring list value, or resampled). The scheduler only decides: it
returns an :class:`~poptune.schedulers.Exploit` and the controller carries it out. In synch
mode the exploits of the whole population are returned, weakest first, as the actions of one
:class:`~poptune.schedulers.Outcome` by the hook that released the barrier.

Where poptune differs from Ray Tune (each a known Ray issue):

* the donor's *latest persisted* checkpoint is used, and it is pinned
  (:meth:`PopulationBasedTraining.pinned_checkpoints`) so ``num_to_keep`` never deletes it;
* an exploit whose donor never checkpointed is skipped with one clear warning per pair;
* ``synch=True`` never hangs: finished/errored/removed trials leave the barrier, and the
  scheduler state (barrier included) is saved with the experiment;
* a policy line's target iteration is the iteration of the result the exploit was decided
  on (Ray's is the one before, for the trial whose result it was: its ``last_result`` is
  updated after the scheduler's hook), so lineage plots place exploits where they happened and
  a seeded synch run writes the same logs each time;
* ``seed`` (or else ``TuneConfig(seed=...)``) makes every random choice reproducible;
  with neither, the generator is seeded from the ``random`` module's global state, so
  ``random.seed(...)`` in the driver repeats the explore decisions, as Ray's PBT, which
  draws from ``random`` itself;
  ``clip_to_bounds`` keeps perturbed values inside their search-space domain;
* a trial that completes stays in the population, frozen at its last result and latest
  checkpoint: it is ranked and may donate (to members that trained at least as long as it
  did, so nobody is carried past where it was stopped), never exploited. Ray drops it from
  the quantiles,
  so the last trial still running has no one to compare with and keeps its config, however
  bad, until the stop condition (with Ray's rule, poptune left a member of the triangle toy
  ``pbt_function.py`` behind in about one run in five).

The explore step lives in :mod:`poptune.schedulers._pbt_explore` and the replay in
:mod:`poptune.schedulers.pbt_replay`; both are re-exported here.
"""

from __future__ import annotations

import copy
import logging
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from poptune._validation import bad_type, bad_value, check_in_range, check_mode, no_metric_mode
from poptune.experiment.trial import Trial, TrialStatus
from poptune.schedulers._base import (
    Decision,
    Exploit,
    FIFOScheduler,
    Outcome,
    SchedulerDecision,
)
from poptune.schedulers._pbt_explore import (  # noqa: F401  (private ones: re-exported)
    _clean,
    _clip,
    _domain_bounds,
    _explore_tree,
    _fill_missing,
    _filter_mutated,
    _isinstance,
    _sample_domain,
    _space,
    _summarize,
    _validate_mutations,
    explore,
    make_experiment_tag,
)
from poptune.schedulers.pbt_replay import (  # noqa: F401  (_load_policy: re-exported)
    PopulationBasedTrainingReplay,
    _load_policy,
)

__all__ = ["PopulationBasedTraining", "PopulationBasedTrainingReplay", "explore"]

logger = logging.getLogger(__name__)

TRAINING_ITERATION = "training_iteration"
_WAITING = (TrialStatus.PENDING, TrialStatus.PAUSED)
_NUMBER = (int, float)


# --------------------------------------------------------------------------- per-trial state
@dataclass
class _TrialState:
    """What PBT remembers about one trial (plain data, saved with the experiment)."""

    orig_tag: str
    index: int
    last_score: float | None = None
    last_perturbation_time: float = 0.0
    last_train_time: float = 0.0
    last_result: dict[str, Any] | None = None
    #: ``training_iteration`` of the trial's last result, the target iteration of its policy
    #: lines
    latest_iteration: int = 0
    #: checkpoint this trial's current model state restores from (its own, or its donor's
    #: right after an exploit) and the result that carried it
    ckpt_path: str | None = None
    ckpt_result: dict[str, Any] | None = None
    #: ``trial.checkpoint_path`` as last observed, to detect a newly persisted checkpoint
    seen_path: str | None = None


def _observe_checkpoint(trial: Trial, state: _TrialState, result: dict[str, Any] | None) -> None:
    """Adopt ``trial.checkpoint_path`` if the runner persisted a new one since last time."""
    path = trial.checkpoint_path
    if path and path != state.seen_path and path != state.ckpt_path:
        state.ckpt_path = path
        state.ckpt_result = dict(result if result is not None else trial.last_result or {})
    state.seen_path = path


# --------------------------------------------------------------------------- the scheduler
class PopulationBasedTraining(FIFOScheduler):
    """Population Based Training, with Ray Tune's parameters, defaults and semantics.

    Args:
        time_attr: monotonically increasing result attribute measuring progress.
        metric: the objective; may instead come from ``TuneConfig``.
        mode: ``"min"`` or ``"max"``; may instead come from ``TuneConfig``.
        perturbation_interval: consider a trial for exploit/explore every this many units of
            ``time_attr``. Checkpoint at least this often.
        burn_in_period: no perturbation before this much ``time_attr``.
        hyperparam_mutations: per key a list/tuple (neighbour shift), a search-space domain
            or callable (multiply by a factor, or resample), or a dict of those (nested).
            Keys missing from a trial's config are sampled from it.
        quantile_fraction: top/bottom fraction of the population, in [0, 0.5].
        resample_probability: probability of resampling instead of perturbing.
        perturbation_factors: factors to multiply continuous values by.
        custom_explore_fn: ``f(config) -> config`` applied after the built-in mutations.
        log_config: the runner writes ``pbt_global.txt``/``pbt_policy_*.txt`` when True.
        require_attrs: raise when a result lacks ``time_attr`` or ``metric`` (else warn once).
        synch: perturb the whole population at once, at a barrier every interval.
        seed: seed of this scheduler's own random generator (poptune extra).
        clip_to_bounds: clip perturbed values into their Float/Integer/numeric-choice domain
            (poptune extra; off by default, as in Ray).

    Example:
        >>> from poptune.schedulers import PopulationBasedTraining
        >>> pbt = PopulationBasedTraining(
        ...     time_attr="training_iteration", metric="mean_accuracy", mode="max",
        ...     perturbation_interval=5,
        ...     hyperparam_mutations={"lr": lambda: 0.01, "momentum": [0.8, 0.9, 0.99]},
        ...     seed=0)
        >>> pbt.debug_string()
        'PopulationBasedTraining: 0 checkpoints, 0 perturbs'
    """

    needs_checkpoints = True

    def __init__(
        self,
        time_attr: str = "time_total_s",
        metric: str | None = None,
        mode: str | None = None,
        perturbation_interval: float = 60.0,
        burn_in_period: float = 0.0,
        hyperparam_mutations: Mapping[str, Any] | None = None,
        quantile_fraction: float = 0.25,
        resample_probability: float = 0.25,
        perturbation_factors: Sequence[float] = (1.2, 0.8),
        custom_explore_fn: Callable[[dict], dict] | None = None,
        log_config: bool = True,
        require_attrs: bool = True,
        synch: bool = False,
        *,
        seed: int | None = None,
        clip_to_bounds: bool = False,
    ) -> None:
        if hyperparam_mutations is not None and not isinstance(hyperparam_mutations, Mapping):
            raise bad_type("hyperparam_mutations", hyperparam_mutations,
                           "None or a dict of hyperparameter name -> list, domain or callable")
        mutations = dict(hyperparam_mutations or {})
        if not isinstance(time_attr, str):
            raise bad_type("time_attr", time_attr, "a str")
        _validate_mutations(mutations)
        if custom_explore_fn is not None and not callable(custom_explore_fn):
            raise bad_type("custom_explore_fn", custom_explore_fn, "a callable or None")
        if not mutations and custom_explore_fn is None:
            raise bad_value(
                "hyperparam_mutations", hyperparam_mutations,
                "a non-empty dict when `custom_explore_fn` is None (PBT needs one of them)",
            )
        check_in_range("quantile_fraction", quantile_fraction, 0, 0.5)
        check_in_range("perturbation_interval", perturbation_interval, 0, low_open=True)
        check_in_range("burn_in_period", burn_in_period, 0)
        check_in_range("resample_probability", resample_probability, 0, 1)
        factors = tuple(perturbation_factors) if isinstance(perturbation_factors, Sequence) else ()
        if not factors or any(isinstance(f, bool) or not isinstance(f, _NUMBER) for f in factors):
            accepted = "a non-empty tuple of numbers"
            raise bad_value("perturbation_factors", perturbation_factors, accepted)
        check_mode(mode)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise bad_type("seed", seed, "an int or None")

        self._metric = metric
        self._mode = mode
        self._time_attr = time_attr
        self._perturbation_interval = perturbation_interval
        self._burn_in_period = burn_in_period
        self._hyperparam_mutations = mutations
        self._quantile_fraction = quantile_fraction
        self._resample_probability = resample_probability
        self._perturbation_factors = factors
        self._custom_explore_fn = custom_explore_fn
        self._log_config = bool(log_config)
        self._require_attrs = require_attrs
        self._synch = bool(synch)
        self._seed = seed
        self._clip_to_bounds = bool(clip_to_bounds)

        # unseeded: from the random module's global state, so random.seed(...) repeats the
        # explore decisions (Ray's PBT draws from the random module itself)
        self._rng = random.Random(seed if seed is not None else random.getrandbits(64))
        self._trials: dict[str, Trial] = {}
        self._states: dict[str, _TrialState] = {}
        self._gone: set[str] = set()
        self._warned: set[tuple[str, str]] = set()  # (trial, donor) pairs told "no checkpoint"
        self._warned_attrs: set[str] = set()
        self._next_perturbation_sync = max(perturbation_interval, burn_in_period)
        self._num_checkpoints = 0
        self._num_perturbations = 0

    # ----------------------------------------------------------------- small accessors
    @property
    def log_config(self) -> bool:
        """Whether the runner should write the policy logs at each exploit."""
        return self._log_config

    @property
    def _metric_op(self) -> float | None:
        return {"max": 1.0, "min": -1.0}.get(self._mode or "")

    def _live_trials(self) -> list[Trial]:
        """Unfinished trials that have not left the experiment, in the order they were added."""
        return [t for t in self._members() if not t.status.is_finished()]

    def _members(self) -> list[Trial]:
        """The population, in the order trials were added: live trials and the ones that
        completed (an errored or removed trial has left it)."""
        members = [t for tid, t in self._trials.items() if tid not in self._gone]
        return sorted(members, key=lambda t: self._states[t.trial_id].index)

    def _ltt(self, trial: Trial) -> float:
        state = self._states.get(trial.trial_id)
        return state.last_train_time if state else 0.0

    def _end_time(self, trial: Trial) -> float:
        """A completed member's ``time_attr`` at its last result (its end)."""
        state = self._states.get(trial.trial_id)
        end = (state.last_result or {}).get(self._time_attr) if state else None
        if isinstance(end, _NUMBER) and not isinstance(end, bool):
            return float(end)
        return self._ltt(trial)

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        """Take ``metric``/``mode`` from ``TuneConfig``, and its ``seed`` (``spec["seed"]``)
        when this scheduler was given none: a seeded experiment explores the same way run
        after run, whichever of the two holds the seed."""
        accepted = super().set_search_properties(metric, mode, **spec)
        seed = spec.get("seed")
        if self._seed is None and isinstance(seed, int) and not isinstance(seed, bool):
            # a stream of its own, not the searcher's (seeded with the same number)
            self._rng = random.Random(f"{type(self).__name__}:{seed}")
        return accepted

    # ----------------------------------------------------------------- hooks
    def on_trial_add(self, trial: Trial) -> dict[str, Any] | None:
        """Register ``trial``; return its missing mutated hyperparameters, sampled.

        The values come as ``{"a/b": value}`` paths (None when nothing is missing); the
        controller writes them into the trial's config before it writes ``params.json`` or
        launches the trial (Ray fills ``trial.config`` in place). A trial already known
        (restore) keeps its saved state and gets nothing.
        """
        if not self._metric or self._metric_op is None:
            raise no_metric_mode(self, self._metric, self._mode, "scheduler")
        self._trials[trial.trial_id] = trial
        if trial.trial_id in self._states:
            if not trial.status.is_finished():  # restored to run again (e.g. restart_errored)
                self._gone.discard(trial.trial_id)
            return None
        index = max((s.index for s in self._states.values()), default=-1) + 1
        self._states[trial.trial_id] = _TrialState(orig_tag=trial.experiment_tag, index=index)
        return self._sample_missing(trial.config) or None

    def _sample_missing(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The mutated hyperparameters ``config`` lacks, sampled (PB2 extends this)."""
        return _fill_missing(config, self._hyperparam_mutations, self._rng)

    def on_trial_result(
        self, trial: Trial, result: dict[str, Any]
    ) -> Decision | Outcome[Decision]:
        state = self._states[trial.trial_id]
        _observe_checkpoint(trial, state, result)
        state.latest_iteration = result.get(TRAINING_ITERATION, state.latest_iteration)
        if not self._has_required_attrs(result):
            return SchedulerDecision.CONTINUE
        time = result[self._time_attr]
        if time < self._burn_in_period:
            return SchedulerDecision.CONTINUE
        if time - state.last_perturbation_time < self._perturbation_interval:
            return SchedulerDecision.CONTINUE
        self._save_trial_state(state, time, result, trial)
        if not self._synch:
            return self._async_step(trial, state, time)
        return self._synch_step(trial, state, time)

    def should_checkpoint(self, trial: Trial, result: dict[str, Any]) -> bool:
        """Class trainables save at each perturbation point, so a donor always has a
        checkpoint from the moment the quantiles are computed (Ray schedules the same save)."""
        state = self._states.get(trial.trial_id)
        if state is None or self._time_attr not in result:
            return False
        time = result[self._time_attr]
        return time >= self._burn_in_period and (
            time - state.last_perturbation_time >= self._perturbation_interval)

    def on_trial_complete(self, trial: Trial, result: dict[str, Any]) -> Outcome[None] | None:
        """``trial`` stops training but stays in the population, frozen: ranked by its last
        result, a donor with its latest checkpoint, never exploited (it does not run again).

        So a member still training always has someone to compare with and learn from, even
        when it is the last one running (Ray drops finished trials from the quantiles: the
        last member keeps a bad config until the iteration limit)."""
        state = self._states.get(trial.trial_id)
        if state is None:
            return self._leave(trial)
        _observe_checkpoint(trial, state, result)
        score = (result or {}).get(self._metric or "")
        if isinstance(score, _NUMBER) and not isinstance(score, bool) and not math.isnan(score):
            state.last_score = (self._metric_op or 1.0) * score
            state.last_result = result
        return self._leave(trial, stays=True)

    def on_trial_error(self, trial: Trial) -> Outcome[None] | None:
        return self._leave(trial)

    def on_trial_remove(self, trial: Trial) -> Outcome[None] | None:
        return self._leave(trial)

    def choose_trial_to_run(
        self, candidates: list[Trial]
    ) -> Trial | None | Outcome[Trial | None]:
        """The waiting trial that has trained least (``last_train_time``) goes first.

        In synch mode only trials behind the barrier are eligible; if every live trial waits
        at the barrier and none runs, the barrier is released here (never hangs): the
        choice then comes in an :class:`Outcome` with the exploits of the release, which
        the controller carries out before it launches the chosen trial.
        """
        waiting = [t for t in candidates if t.status in _WAITING and t.trial_id not in self._gone]
        exploits: list[Exploit] = []
        released = False
        if self._synch:
            eligible = [t for t in waiting if self._ltt(t) < self._next_perturbation_sync]
            running = any(t.status == TrialStatus.RUNNING for t in self._live_trials())
            if waiting and not eligible and not running:
                released = self._release_barrier_if_ready(exploits)
                eligible = [t for t in waiting if self._ltt(t) < self._next_perturbation_sync]
            waiting = eligible
        choice: Trial | None = None
        if waiting:
            order = {tid: s.index for tid, s in self._states.items()}
            choice = min(waiting, key=lambda t: (self._ltt(t), order.get(t.trial_id, 0)))
        return Outcome(choice, tuple(exploits)) if released else choice

    def pinned_checkpoints(self) -> set[str]:
        """Checkpoints a future exploit may restore from.

        Every live trial's latest checkpoint (any live trial may reach the upper quantile
        before it saves again, so this covers the upper quantile and more; the controller
        keeps each trial's latest anyway). Exploits are handed out as soon as they are
        decided, and the controller pins their donors' checkpoints itself.
        """
        pins: set[str] = set()
        for trial in self._members():  # a completed member donates its latest checkpoint
            state = self._states[trial.trial_id]
            pins.update(p for p in (state.ckpt_path, trial.checkpoint_path) if p)
        return pins

    def debug_string(self) -> str:
        return (
            f"PopulationBasedTraining: {self._num_checkpoints} checkpoints, "
            f"{self._num_perturbations} perturbs"
        )

    def save_state(self) -> dict[str, Any]:
        return {
            "states": {tid: asdict(s) for tid, s in self._states.items()},
            "gone": sorted(self._gone),
            "warned": sorted(self._warned),
            "warned_attrs": sorted(self._warned_attrs),
            "rng": self._rng.getstate(),
            "next_perturbation_sync": self._next_perturbation_sync,
            "num_checkpoints": self._num_checkpoints,
            "num_perturbations": self._num_perturbations,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`save_state`; trials may be (re-)added before or after."""
        loaded = {tid: _TrialState(**s) for tid, s in state["states"].items()}
        for tid, s in self._states.items():  # added before the restore, unknown to the save
            if tid not in loaded:
                s.index = max((x.index for x in loaded.values()), default=-1) + 1
                loaded[tid] = s
        self._states = loaded
        self._gone = set(state["gone"])
        # states saved before exploits were returned by the hooks may hold a "pending" list
        # of exploits the runner took and carried out already: nothing to keep
        self._warned = {(a, b) for a, b in state["warned"]}
        self._warned_attrs = set(state.get("warned_attrs", ()))
        self._rng.setstate(state["rng"])
        self._next_perturbation_sync = state["next_perturbation_sync"]
        self._num_checkpoints = state["num_checkpoints"]
        self._num_perturbations = state["num_perturbations"]

    # ----------------------------------------------------------------- internals
    def _has_required_attrs(self, result: dict[str, Any]) -> bool:
        for what, key in (("time_attr", self._time_attr), ("metric", self._metric or "")):
            if key in result:
                continue
            msg = (
                f"Cannot find {what} {key!r} in trial result {result}. Make sure that this "
                "attribute is returned in the results of your trainable."
            )
            if self._require_attrs:
                raise RuntimeError(
                    msg + " If this is expected, set PopulationBasedTraining(require_attrs=False)"
                    " to only warn."
                )
            if what not in self._warned_attrs:
                self._warned_attrs.add(what)
                logger.warning(msg)
            return False
        return True

    def _save_trial_state(
        self, state: _TrialState, time: float, result: dict[str, Any], trial: Trial
    ) -> float:
        """Record the score at a perturbation point (PB2 extends this to log its data)."""
        score = (self._metric_op or 1.0) * result[self._metric or ""]
        state.last_score = score
        state.last_train_time = time
        state.last_result = result
        return score

    def _quantiles(self) -> tuple[list[Trial], list[Trial]]:
        """(lower, upper) quantile of the scored members, completed ones included (they
        donate, never receive: callers exploit only live trials of ``lower``); ``([], [])``
        when too few."""
        scores = {tid: s.last_score for tid, s in self._states.items()
                  if s.last_score is not None and not math.isnan(s.last_score)}
        scored = [t for t in self._members() if t.trial_id in scores]
        scored.sort(key=lambda t: scores[t.trial_id])  # stable: ties keep the order of addition
        if len(scored) <= 1:
            return [], []
        n = math.ceil(len(scored) * self._quantile_fraction)
        n = min(n, len(scored) // 2)
        if n == 0:  # Ray would return the whole population as "upper" here
            return [], []
        return scored[:n], scored[-n:]

    def _async_step(self, trial: Trial, state: _TrialState, time: float) -> Decision:
        state.last_perturbation_time = time
        lower, upper = self._quantiles()
        self._num_checkpoints += trial in upper
        others_wait = any(t.status in _WAITING for t in self._live_trials() if t != trial)
        decision = SchedulerDecision.PAUSE if others_wait else SchedulerDecision.CONTINUE
        if trial in lower:
            exploit = self._exploit(trial, upper)
            if exploit is not None:
                return exploit
        return decision

    def _synch_step(
        self, trial: Trial, state: _TrialState, time: float
    ) -> Decision | Outcome[Decision]:
        barrier = self._next_perturbation_sync
        if state.last_train_time < barrier:
            return SchedulerDecision.CONTINUE  # not at the barrier yet: no pointless pause
        if any(self._ltt(t) < barrier for t in self._live_trials() if t != trial):
            return SchedulerDecision.PAUSE  # wait for the others
        exploits: list[Exploit] = []
        self._synch_perturb(time, exploits)
        # every exploit, the reporter's own included, is an action of this one Outcome, in
        # the order decided (weakest first), so the logs do not depend on which trial came
        # last; the reporter's own exploit overrides the PAUSE (it stops, then restarts)
        return Outcome(SchedulerDecision.PAUSE, tuple(exploits))

    def _synch_perturb(self, time: float, exploits: list[Exploit]) -> None:
        """Perturb the whole (synchronised) population; append its exploits to ``exploits``."""
        lower, upper = self._quantiles()
        live = self._live_trials()
        for t in live:
            self._states[t.trial_id].last_perturbation_time = time
        self._num_checkpoints += len(upper)
        for t in lower:  # weakest first, ties in order of addition: deterministic per seed
            if t.status.is_finished():
                continue  # a completed member only donates
            exploit = self._exploit(t, upper)
            if exploit is not None:
                exploits.append(exploit)
        latest = max((self._ltt(t) for t in live), default=0.0)
        self._next_perturbation_sync = max(
            self._next_perturbation_sync + self._perturbation_interval, latest
        )

    def _leave(self, trial: Trial, stays: bool = False) -> Outcome[None] | None:
        """``trial`` completed, errored or was removed: it leaves the barrier, and the
        population too unless it ``stays`` (completed: a donor from now on).

        In synch mode its leaving may release the barrier: the exploits come back in the
        returned :class:`Outcome`."""
        if not stays:
            self._gone.add(trial.trial_id)
        if not self._synch:
            return None
        exploits: list[Exploit] = []
        if self._release_barrier_if_ready(exploits):
            return Outcome(None, tuple(exploits))
        return None

    def _release_barrier_if_ready(self, exploits: list[Exploit]) -> bool:
        """Perturb the population if every live trial reached the barrier; True if so."""
        live = self._live_trials()
        barrier = self._next_perturbation_sync
        if live and all(self._ltt(t) >= barrier for t in live):
            self._synch_perturb(barrier, exploits)
            return True
        return False

    def _exploit(self, trial: Trial, upper: list[Trial]) -> Exploit | None:
        # a completed member donates only to members that trained at least as long: it
        # shows what that much training reached, and restarting from its end would carry
        # the recipient past the point where the donor was stopped (e.g. a
        # `training_iteration` stop criterion)
        upper = [d for d in upper
                 if not d.status.is_finished() or self._end_time(d) <= self._ltt(trial)]
        if not upper:
            return None
        donor = self._rng.choice(upper)
        tstate, dstate = self._states[trial.trial_id], self._states[donor.trial_id]
        _observe_checkpoint(donor, dstate, None)
        if dstate.ckpt_path is None:
            if (trial.trial_id, donor.trial_id) not in self._warned:
                self._warned.add((trial.trial_id, donor.trial_id))
                logger.warning(
                    "PBT: trial %s (lower quantile) should exploit trial %s, but %s has not "
                    "saved a checkpoint yet, so the exploit is skipped and %s keeps training "
                    "with its own weights. Report checkpoints with tune.report(..., "
                    "checkpoint=...) at least every `perturbation_interval`. (Warned once per "
                    "pair of trials.)", trial, donor, donor, trial,
                )
            return None
        new_config, summary = self._get_new_config(trial, donor)
        logger.info(
            "[%s] [Exploit] Cloning trial %s (score = %s) into trial %s (score = %s)\n"
            "[Explore] Perturbed the hyperparameter config of trial %s:\n%s",
            type(self).__name__, donor.trial_id, dstate.last_score, trial.trial_id,
            tstate.last_score, trial.trial_id, summary,
        )
        donor_result = dict(dstate.ckpt_result or {})
        exploit = Exploit(
            trial_id=trial.trial_id,
            donor_trial_id=donor.trial_id,
            checkpoint_path=dstate.ckpt_path,
            config=new_config,
            donor_result=donor_result,
            target_tag=tstate.orig_tag,
            donor_tag=dstate.orig_tag,
            target_iteration=tstate.latest_iteration,
            donor_iteration=donor_result.get(TRAINING_ITERATION, dstate.latest_iteration),
            donor_config=copy.deepcopy(donor.config),
            experiment_tag=make_experiment_tag(
                tstate.orig_tag, new_config, self._hyperparam_mutations
            ),
        )
        # The target now carries the donor's model: its progress and its checkpoint.
        tstate.last_perturbation_time = dstate.last_perturbation_time
        tstate.last_train_time = dstate.last_train_time
        tstate.ckpt_path, tstate.ckpt_result = dstate.ckpt_path, dstate.ckpt_result
        tstate.seen_path = trial.checkpoint_path
        self._num_perturbations += 1
        return exploit

    def _get_new_config(self, trial: Trial, donor: Trial) -> tuple[dict[str, Any], str]:
        """Explore the donor's config (PB2 overrides this)."""
        return explore(
            donor.config,
            self._hyperparam_mutations,
            self._resample_probability,
            self._perturbation_factors,
            self._custom_explore_fn,
            rng=self._rng,
            clip_to_bounds=self._clip_to_bounds,
        )
