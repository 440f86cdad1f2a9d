"""Helpers of the Ray side-by-side decision tests (import Ray only after ``importorskip``).

* :func:`rtrial` / :func:`ptrial`: the same hand-made trial for Ray (``Trial(stub=True)``)
  and for poptune;
* :func:`decision`: a poptune hook's return as a plain value comparable with Ray's;
* :class:`FakeController`: the part of Ray's ``TuneController`` its schedulers call;
* :func:`simulate_ray` / :func:`simulate_poptune`: a deterministic K-slot "controller" that
  drives a scheduler one iteration at a time and records every decision;
* :func:`assert_same`: compare labelled rows of (Ray's, poptune's) decisions;
* :func:`global_random_state`: seed ``random`` and ``np.random`` for a block, then restore.
"""

from __future__ import annotations

import contextlib
import logging
import random
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
from ray.tune.experiment import Trial as RayTrial

from poptune.experiment.trial import Trial, TrialStatus
from poptune.schedulers import Exploit, Outcome, StopTrial

#: a row compared by :func:`assert_same`: (label, Ray's value, poptune's value)
Row = tuple[str, Any, Any]
#: the loss of trial ``i`` (its index) at iteration ``k``
LossFn = Callable[[int, int], float]


def loss_distinct(i: int, k: int) -> float:
    """Distinct per trial, improving with k, trial order unrelated to index."""
    return 1.0 / (k + 1) + ((i * 7919) % 13) / 13.0


def loss_cross(i: int, k: int) -> float:
    """The ranking changes from one iteration to the next."""
    return ((i * 31 + k * 17) % 23) / 23.0

_RUNNING = "RUNNING"
_FINISHED = ("TERMINATED", "ERROR")


def rtrial(trial_id: str, config: dict[str, Any] | None = None,
           status: str = _RUNNING) -> RayTrial:
    """A Ray trial that never runs (``stub=True``), in ``status``."""
    trial = RayTrial("f", config=dict(config or {}), trial_id=trial_id, stub=True)
    trial.status = status
    return trial


def ptrial(trial_id: str, config: dict[str, Any] | None = None,
           status: str = _RUNNING) -> Trial:
    """The poptune trial matching :func:`rtrial`."""
    return Trial(trial_id, "f", dict(config or {}), status=TrialStatus(status))


def plain(value: Any) -> Any:
    """An enum member's value (``SchedulerDecision.STOP`` -> ``"STOP"``), else ``value``."""
    return getattr(value, "value", value)


def decision(out: Any) -> Any:
    """A poptune hook's return as a plain value: ``"CONTINUE"``, ``"EXPLOIT<-t0"``, ...

    An :class:`Outcome` with actions becomes ``(value, ("StopTrial:t3", ...))``.
    """
    actions: tuple[Any, ...] = ()
    if isinstance(out, Outcome):
        actions, out = out.actions, out.value
    value = f"EXPLOIT<-{out.donor_trial_id}" if isinstance(out, Exploit) else plain(out)
    if not actions:
        return value
    return value, tuple(f"{type(a).__name__}:{a.trial_id}" for a in actions)


def outcome(call: Callable[[], Any]) -> Any:
    """``call()``, or ``"raise <ExceptionType>"`` if it raises."""
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - the exception type is the compared outcome
        return f"raise {type(exc).__name__}"


class FakeController:
    """The calls Ray's schedulers make on ``TuneController`` (no cluster, no trials run)."""

    def __init__(self, trials: Iterable[RayTrial] = ()) -> None:
        self.trials = list(trials)
        self.paused: list[str] = []
        self.stopped: list[str] = []

    @property
    def search_alg(self) -> None:
        return None

    def get_trials(self) -> list[RayTrial]:
        return self.trials

    def get_live_trials(self) -> list[RayTrial]:
        return [t for t in self.trials if t.status not in _FINISHED]

    def pause_trial(self, trial: RayTrial, should_checkpoint: bool = True) -> None:
        self.paused.append(trial.trial_id)
        trial.status = "PAUSED"

    def stop_trial(self, trial: RayTrial) -> None:
        self.stopped.append(trial.trial_id)
        trial.status = "TERMINATED"

    def _schedule_trial_pause(self, trial: RayTrial, should_checkpoint: bool = True) -> None:
        self.pause_trial(trial, should_checkpoint)

    def _schedule_trial_stop(self, trial: RayTrial, exception: Any = None) -> None:
        self.stop_trial(trial)


class SavingController(FakeController):
    """A :class:`FakeController` whose saves return a checkpoint (a truthy tag), so Ray's
    PBT and PB2 have donors to exploit."""

    def _schedule_trial_save(self, trial: RayTrial, result: Any = None) -> str:
        return f"{trial.trial_id}@{(result or {}).get('training_iteration')}"


#: what Ray's PBT (PB2's base) logs when it skips an exploit for want of a donor checkpoint
RAY_SKIP = "no checkpoint for trial"
#: that decision, as the tests write it
SKIPPED = "SKIPPED (no donor checkpoint)"


@contextlib.contextmanager
def ray_skips(logger: str = "ray.tune.schedulers.pbt") -> Iterator[list[str]]:
    """The messages of the exploits Ray skips while the block runs (``logger``'s INFO log);
    the logger's other INFO lines stay out of the test's output."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if RAY_SKIP in record.getMessage():
                messages.append(record.getMessage())

    log = logging.getLogger(logger)
    handler, level, propagate = Collect(), log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        yield messages
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate

    def _schedule_trial_save(self, trial: RayTrial, result: Any = None) -> Any:
        return None


@contextlib.contextmanager
def global_random_state(seed: int | None = None) -> Iterator[None]:
    """Seed ``random`` and numpy's global generator with ``seed`` (if given) for the block;
    restore both states afterwards, so no other test sees the change."""
    saved = random.getstate(), np.random.get_state()
    try:
        if seed is not None:
            random.seed(seed)
            np.random.seed(seed)
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])


def assert_same(rows: Sequence[Row], what: str) -> None:
    """Every row's Ray and poptune values are equal (the message lists the first ones that
    are not)."""
    bad = [(label, r, p) for label, r, p in rows if r != p]
    shown = "\n".join(f"  {label}: Ray {r!r}, poptune {p!r}" for label, r, p in bad[:5])
    assert not bad, f"{what}: {len(bad)} of {len(rows)} decisions differ:\n{shown}"


# --- the K-slot simulator ------------------------------------------------------------------

#: one recorded decision: (trial id, iteration, decision)
Step = tuple[str, int, Any]


@dataclass
class Run:
    """What a simulated run decided: every decision in order, and each trial's end."""

    trace: list[Step]
    final: dict[str, tuple[str, int]]  # trial id -> (status, iterations run)

    def first_difference(self, other: "Run") -> int | None:
        """Index of the first decision that differs from ``other``'s (None if none does)."""
        for i, (mine, theirs) in enumerate(zip(self.trace, other.trace)):
            if mine != theirs:
                return i
        if len(self.trace) != len(other.trace):
            return min(len(self.trace), len(other.trace))
        return None

    def describe_difference(self, other: "Run") -> str:
        """The first differing decision of Ray's run (``self``) and poptune's (``other``)."""
        i = self.first_difference(other)
        if i is None:
            return "the same decisions"
        mine = self.trace[i] if i < len(self.trace) else None
        theirs = other.trace[i] if i < len(other.trace) else None
        return (f"decision #{i}: Ray {mine}, poptune {theirs}; "
                f"final Ray {self.final}, poptune {other.final}")


class _SimController(FakeController):
    """Ray's controller as the simulator needs it: stopping a trial calls the scheduler's
    ``on_trial_complete`` (a running trial) or ``on_trial_remove`` (a waiting one)."""

    def __init__(self, scheduler: Any, trials: list[RayTrial]) -> None:
        super().__init__(trials)
        self.scheduler = scheduler

    def stop_trial(self, trial: RayTrial) -> None:
        if trial.status in _FINISHED:
            return
        if trial.status in ("PENDING", "PAUSED"):
            self.scheduler.on_trial_remove(self, trial)
        else:
            self.scheduler.on_trial_complete(self, trial, dict(trial.last_result))
        trial.status = "TERMINATED"
        self.stopped.append(trial.trial_id)

    def pause_trial(self, trial: RayTrial, should_checkpoint: bool = True) -> None:
        trial.status = "PAUSED"


class _RaySide:
    """Ray's scheduler under the simulator."""

    def __init__(self, scheduler: Any, n: int) -> None:
        self.scheduler = scheduler
        self.trials = [rtrial(f"t{i}", status="PENDING") for i in range(n)]
        self.ctl = _SimController(scheduler, self.trials)

    def status(self, trial: RayTrial) -> str:
        return str(trial.status)

    def start(self) -> None:
        for trial in self.trials:
            self.scheduler.on_trial_add(self.ctl, trial)

    def launch(self) -> bool:
        """Ask the scheduler for a trial to run; False when it offers none."""
        chosen = self.scheduler.choose_trial_to_run(self.ctl)
        if chosen is None:
            return False
        chosen.status = _RUNNING
        return True

    def result(self, trial: RayTrial, result: dict[str, Any], last: bool) -> Any:
        """Report ``result``; ``last``: the trainable returns after it."""
        out = self.scheduler.on_trial_result(self.ctl, trial, dict(result))
        trial.run_metadata.last_result = result
        if out == "STOP" or last:
            self.ctl.stop_trial(trial)
        elif out == "PAUSE":
            trial.status = "PAUSED"
        return out


class _PoptuneSide:
    """poptune's scheduler under the simulator, carrying out the actions its hooks return."""

    def __init__(self, scheduler: Any, n: int) -> None:
        self.scheduler = scheduler
        self.trials = [ptrial(f"t{i}", status="PENDING") for i in range(n)]
        self.by_id = {t.trial_id: t for t in self.trials}

    def status(self, trial: Trial) -> str:
        return str(trial.status)

    def start(self) -> None:
        for trial in self.trials:
            self._act(self.scheduler.on_trial_add(trial))

    def launch(self) -> bool:
        waiting = [t for t in self.trials if t.status in (TrialStatus.PENDING,
                                                          TrialStatus.PAUSED)]
        chosen = self._act(self.scheduler.choose_trial_to_run(waiting))
        if chosen is None:
            return False
        chosen.status = TrialStatus.RUNNING
        return True

    def result(self, trial: Trial, result: dict[str, Any], last: bool) -> Any:
        out = plain(self._act(self.scheduler.on_trial_result(trial, dict(result))))
        trial.last_result = result
        if trial.status != TrialStatus.RUNNING:
            return out  # its own hook's actions stopped it
        if out == "STOP" or last:
            trial.status = TrialStatus.TERMINATED
            self._act(self.scheduler.on_trial_complete(trial, dict(result)))
        elif out == "PAUSE":
            trial.status = TrialStatus.PAUSED
        return out

    def _act(self, out: Any) -> Any:
        """Carry out an :class:`Outcome`'s :class:`StopTrial` actions; return its value."""
        if not isinstance(out, Outcome):
            return out
        for action in out.actions:
            if isinstance(action, StopTrial):
                self._stop(self.by_id[action.trial_id])
        return out.value

    def _stop(self, trial: Trial) -> None:
        if trial.status in (TrialStatus.PAUSED, TrialStatus.PENDING):
            trial.status = TrialStatus.TERMINATED
            self._act(self.scheduler.on_trial_remove(trial))
        elif trial.status == TrialStatus.RUNNING:
            trial.status = TrialStatus.TERMINATED
            self._act(self.scheduler.on_trial_complete(trial, dict(trial.last_result)))


def _simulate(side: Any, n: int, loss: LossFn, slots: int, max_iter: int) -> Run:
    """Run ``n`` trials on ``slots`` slots: fill free slots with the scheduler's choice, then
    the running trial that is furthest behind (the first such) reports its next iteration
    (``loss(index, k)``); a trial's function returns after ``max_iter`` iterations."""
    trials = side.trials
    iterations = {t.trial_id: 0 for t in trials}
    trace: list[Step] = []
    side.start()
    for _ in range(5000):
        while sum(side.status(t) == _RUNNING for t in trials) < slots and side.launch():
            pass
        running = [t for t in trials if side.status(t) == _RUNNING]
        if not running:
            break
        trial = min(running, key=lambda t: (iterations[t.trial_id], trials.index(t)))
        iterations[trial.trial_id] += 1
        k = iterations[trial.trial_id]
        result = {"training_iteration": k, "loss": loss(trials.index(trial), k), "done": False}
        trace.append((trial.trial_id, k, side.result(trial, result, last=k >= max_iter)))
    final = {t.trial_id: (side.status(t), iterations[t.trial_id]) for t in trials}
    return Run(trace, final)


def simulate_ray(scheduler: Any, n: int, loss: LossFn, slots: int, max_iter: int) -> Run:
    """:func:`_simulate` with Ray's ``scheduler``."""
    return _simulate(_RaySide(scheduler, n), n, loss, slots, max_iter)


def simulate_poptune(scheduler: Any, n: int, loss: LossFn, slots: int, max_iter: int) -> Run:
    """:func:`_simulate` with poptune's ``scheduler``."""
    return _simulate(_PoptuneSide(scheduler, n), n, loss, slots, max_iter)
