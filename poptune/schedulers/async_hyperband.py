"""Asynchronous Successive Halving (``ray.tune.schedulers.AsyncHyperBandScheduler`` / ASHA).

Each trial joins one *bracket*. Bracket ``s`` has rungs at ``grace_period * rf**(k + s)``
(``rf`` = ``reduction_factor``) for ``k < int(log(max_t / grace_period) / log(rf) - s + 1)``.
The first time a trial's ``time_attr`` reaches a rung, its score is compared with the scores
already recorded there: below the ``(1 - 1/rf)`` quantile (``np.nanpercentile``) it is
stopped, otherwise it continues; its score is recorded either way. A trial reaching ``max_t``
is stopped (``stop_last_trials``). ASHA never pauses and never promotes: it only stops, so it
needs no checkpoints.

Where poptune differs from Ray Tune:

* a trial is judged only at the highest rung it has reached. When ``time_attr`` jumps over a
  rung (``time_total_s``, a restore), Ray with ``stop_last_trials=True`` judges the trial
  again at the skipped, lower rung on its next result; poptune never goes back down (Ray's
  own ``stop_last_trials=False`` path already behaves this way). The scores Ray records at
  a skipped rung also move that rung's cutoff for the other trials judged there;
* a ``None`` or NaN score never stops a trial (Ray raises ``TypeError`` on ``None``); NaN
  scores are recorded and ignored by the quantile, as in Ray;
* the bracket draw uses the scheduler's own generator (``seed``); unseeded, that generator
  is seeded from numpy's global state (one draw), so ``np.random.seed(...)`` repeats it as
  Ray's draw from the global state.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np

from poptune._validation import bad_type, bad_value, check_in_range, check_mode, no_metric_mode
from poptune.exceptions import TuneConfigError
from poptune.experiment.trial import Trial
from poptune.schedulers._base import Decision, FIFOScheduler, SchedulerDecision
from poptune.search.sample import global_seed

__all__ = ["ASHAScheduler", "AsyncHyperBandScheduler"]

logger = logging.getLogger(__name__)



def check_rung_args(time_attr: Any, max_t: Any, grace_period: Any,
                    reduction_factor: Any) -> None:
    """The arguments both ASHA variants place their rungs by: a ``time_attr`` name,
    ``0 < grace_period <= max_t`` and ``reduction_factor > 1`` (errors name the argument)."""
    if not isinstance(time_attr, str):
        raise bad_type("time_attr", time_attr, "a str")
    check_in_range("max_t", max_t, 0, low_open=True)
    check_in_range("grace_period", grace_period, 0, low_open=True)
    if grace_period > max_t:
        raise bad_value("grace_period", grace_period, f"<= `max_t`={max_t}")
    check_in_range("reduction_factor", reduction_factor, 1, low_open=True)

class _Bracket:
    """The rungs of one bracket, highest milestone first: ``[(milestone, {trial_id: score})]``.

    Scores are signed so that higher is better (``metric_op * metric``).
    """

    def __init__(self, min_t: float, max_t: float, rf: float, s: int,
                 log: list[tuple[Any, ...]] | None = None) -> None:
        self.rf = rf
        self.index = s
        self.log = log  # the scheduler's change log (state deltas), if any
        num_rungs = int(np.log(max_t / min_t) / np.log(rf) - s + 1)
        self.rungs: list[tuple[float, dict[str, float]]] = [
            (min_t * rf ** (k + s), {}) for k in reversed(range(num_rungs))
        ]

    def cutoff(self, recorded: dict[str, float]) -> float | None:
        """The score a trial must reach at a rung, None while the rung is empty."""
        if not recorded:
            return None
        with warnings.catch_warnings():  # an all-NaN rung has no cutoff (NaN): nothing stops
            warnings.simplefilter("ignore", RuntimeWarning)
            return float(np.nanpercentile(list(recorded.values()), (1 - 1 / self.rf) * 100))

    def on_result(self, trial_id: str, t: float, score: float) -> SchedulerDecision:
        """Judge ``trial_id`` at the highest rung ``<= t`` it was not judged at yet."""
        for milestone, recorded in self.rungs:
            if t < milestone:
                continue
            if trial_id in recorded:
                return SchedulerDecision.CONTINUE  # judged here already; never go back down
            cutoff = self.cutoff(recorded)
            recorded[trial_id] = score
            if self.log is not None:
                self.log.append(("r", self.index, milestone, trial_id, score))
            if cutoff is not None and score < cutoff:
                return SchedulerDecision.STOP
            return SchedulerDecision.CONTINUE
        return SchedulerDecision.CONTINUE

    def debug_str(self) -> str:
        iters = " | ".join(
            f"Iter {milestone:.3f}: {self.cutoff(recorded)}" for milestone, recorded in self.rungs
        )
        return "Bracket: " + iters


class AsyncHyperBandScheduler(FIFOScheduler):
    """Asynchronous HyperBand / ASHA early stopping, with Ray Tune's parameters and defaults.

    Args:
        time_attr: monotonically increasing result attribute measuring progress.
        metric: the objective; may instead come from ``TuneConfig``. With only ``mode``
            given, the metric is ``"_metric"``.
        mode: ``"min"`` or ``"max"``; may instead come from ``TuneConfig``.
        max_t: trials are stopped once ``time_attr`` reaches this (``stop_last_trials``).
        grace_period: no trial is stopped before this much ``time_attr``; the first rung.
        reduction_factor: rung spacing and halving rate (> 1).
        brackets: number of brackets; a trial joins one, drawn with softmax weights over
            the brackets' rung counts.
        stop_last_trials: stop trials reaching ``max_t``; if False they run on.
        seed: seed of the generator drawing brackets (poptune extra; only matters when
            ``brackets > 1``).

    Example:
        >>> from poptune.experiment.trial import Trial
        >>> asha = ASHAScheduler(metric="loss", mode="min", max_t=16, grace_period=1,
        ...                      reduction_factor=2)
        >>> trials = [Trial(f"t{i}", "f", {}) for i in range(3)]
        >>> for t in trials:
        ...     asha.on_trial_add(t)
        >>> [asha.on_trial_result(t, {"training_iteration": 1, "loss": loss}).value
        ...  for t, loss in zip(trials, [1.0, 2.0, 3.0])]
        ['CONTINUE', 'STOP', 'STOP']
    """

    def __init__(
        self,
        time_attr: str = "training_iteration",
        metric: str | None = None,
        mode: str | None = None,
        max_t: float = 100,
        grace_period: float = 1,
        reduction_factor: float = 4,
        brackets: int = 1,
        stop_last_trials: bool = True,
        *,
        seed: int | None = None,
    ) -> None:
        check_rung_args(time_attr, max_t, grace_period, reduction_factor)
        if isinstance(brackets, bool) or not isinstance(brackets, int) or brackets < 1:
            raise bad_value("brackets", brackets, "an integer >= 1")
        check_mode(mode)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise bad_type("seed", seed, "an int or None")
        self._metric = metric
        self._mode = mode
        self._time_attr = time_attr
        self._max_t = max_t
        self._grace_period = grace_period
        self._reduction_factor = reduction_factor
        self._stop_last_trials = bool(stop_last_trials)
        self._seed = seed
        # unseeded: from numpy's global state, so np.random.seed(...) repeats it (as Ray's
        # np.random.choice of a bracket)
        self._rng = np.random.default_rng(seed if seed is not None else global_seed())
        self._log: list[tuple[Any, ...]] = []  # changes since the last state_delta()
        self._brackets = [
            _Bracket(grace_period, max_t, reduction_factor, s, self._log)
            for s in range(brackets)
        ]
        self._sent = (0, False)  # num_stopped and warned_none as of the last delta
        self._drew = False  # the generator moved since the last delta
        self._trial_info: dict[str, int] = {}  # trial id -> bracket index
        self._num_stopped = 0
        self._warned_none = False

    @property
    def _metric_op(self) -> float | None:
        return {"max": 1.0, "min": -1.0}.get(self._mode or "")

    # ----------------------------------------------------------------- hooks
    def on_trial_add(self, trial: Trial) -> None:
        """Assign ``trial`` to a bracket (softmax over the brackets' rung counts)."""
        if not self._metric or self._metric_op is None:
            raise no_metric_mode(self, self._metric, self._mode, "scheduler")
        if trial.trial_id in self._trial_info or trial.is_finished():
            return  # known already (restore), or finished before the restore
        sizes = np.array([len(b.rungs) for b in self._brackets], dtype=float)
        probs = np.exp(sizes - sizes.max())
        index = int(self._rng.choice(len(self._brackets), p=probs / probs.sum()))
        self._trial_info[trial.trial_id] = index
        self._log.append(("i", trial.trial_id, index))
        self._drew = True

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> Decision:
        if self._time_attr not in result or self._metric not in result:
            return SchedulerDecision.CONTINUE
        t = result[self._time_attr]
        if t >= self._max_t and self._stop_last_trials:
            action = SchedulerDecision.STOP
        else:
            score = self._score(result)
            if score is None:
                return SchedulerDecision.CONTINUE
            if trial.trial_id not in self._trial_info:
                self.on_trial_add(trial)
            bracket = self._brackets[self._trial_info[trial.trial_id]]
            action = bracket.on_result(trial.trial_id, t, score)
        if action == SchedulerDecision.STOP:
            self._num_stopped += 1
        return action

    def on_trial_complete(self, trial: Trial, result: dict[str, Any]) -> None:
        """Record the final result at its rung (as Ray does), then forget the trial."""
        index = self._forget(trial.trial_id)
        if index is None or self._time_attr not in result or self._metric not in result:
            return
        score = self._score(result)
        if score is not None:
            self._brackets[index].on_result(trial.trial_id, result[self._time_attr], score)

    def on_trial_error(self, trial: Trial) -> None:
        self._forget(trial.trial_id)

    def on_trial_remove(self, trial: Trial) -> None:
        self._forget(trial.trial_id)

    def _forget(self, trial_id: str) -> int | None:
        index = self._trial_info.pop(trial_id, None)
        if index is not None:
            self._log.append(("p", trial_id))
        return index

    def debug_string(self) -> str:
        out = f"Using AsyncHyperBand: num_stopped={self._num_stopped}"
        return out + "\n" + "\n".join(b.debug_str() for b in self._brackets)

    def save_state(self) -> dict[str, Any]:
        return {
            "rungs": [[(m, dict(rec)) for m, rec in b.rungs] for b in self._brackets],
            "trial_info": dict(self._trial_info),
            "num_stopped": self._num_stopped,
            "rng": self._rng.bit_generator.state,
            "warned_none": self._warned_none,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`save_state`; the constructor arguments must be the same."""
        if len(state["rungs"]) != len(self._brackets):
            raise bad_value("brackets", len(self._brackets),
                            f"the saved number of brackets ({len(state['rungs'])})")
        for bracket, rungs in zip(self._brackets, state["rungs"]):
            bracket.rungs = [(m, dict(rec)) for m, rec in rungs]
        self._trial_info.update(state["trial_info"])
        self._num_stopped = state["num_stopped"]
        self._rng.bit_generator.state = state["rng"]
        self._warned_none = state.get("warned_none", False)

    # the rungs grow with every trial: the engine journals what changed at each commit
    incremental_state = True

    def state_delta(self) -> dict[str, Any] | None:
        """The rung entries and bracket assignments since the last call (None: nothing).

        >>> from poptune.experiment.trial import Trial
        >>> asha = ASHAScheduler(metric="loss", mode="min", max_t=4, grace_period=1)
        >>> asha.on_trial_add(Trial("t0", "f", {}))
        >>> _ = asha.on_trial_result(Trial("t0", "f", {}), {"training_iteration": 1, "loss": 1.0})
        >>> asha.state_delta()["ops"]
        [('i', 't0', 0), ('r', 0, 1, 't0', -1.0)]
        >>> asha.state_delta() is None
        True
        """
        counters = (self._num_stopped, self._warned_none)
        if not self._log and counters == self._sent and not self._drew:
            return None
        delta: dict[str, Any] = {"ops": list(self._log), "num_stopped": counters[0],
                                 "warned_none": counters[1]}
        if self._drew:
            delta["rng"] = self._rng.bit_generator.state
        self._log.clear()
        self._sent, self._drew = counters, False
        return delta

    def apply_state_delta(self, delta: dict[str, Any]) -> None:
        for op in delta["ops"]:
            if op[0] == "r":
                _, b, milestone, trial_id, score = op
                for m, recorded in self._brackets[b].rungs:
                    if m == milestone:
                        recorded[trial_id] = score
            elif op[0] == "i":
                self._trial_info[op[1]] = op[2]
            else:
                self._trial_info.pop(op[1], None)
        self._num_stopped = delta["num_stopped"]
        self._warned_none = delta["warned_none"]
        if "rng" in delta:
            self._rng.bit_generator.state = delta["rng"]

    # ----------------------------------------------------------------- internals
    def _score(self, result: dict[str, Any]) -> float | None:
        assert self._metric is not None  # checked when the experiment starts
        value = result[self._metric]
        if value is None:
            if not self._warned_none:
                self._warned_none = True
                logger.warning(
                    "%s: the metric %r is None in a result; such results are ignored. "
                    "Consider reporting a different field.", type(self).__name__, self._metric,
                )
            return None
        try:
            score = float(value) * (self._metric_op or 1.0)
        except (TypeError, ValueError):
            raise TuneConfigError(
                f"`{self._metric}` must be a number in every result, got {value!r}"
            ) from None
        return score


ASHAScheduler = AsyncHyperBandScheduler
