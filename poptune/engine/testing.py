"""Helpers to drive a :class:`~poptune.engine.controller.Controller` by hand (no backend, no
files): build one over a small search space, make result events, pick instructions.

Example:
    >>> ctl = make_controller(num_samples=2)
    >>> out = ctl.handle(Tick(now=0.0, wall=0.0))
    >>> [i.trial.trial_id for i in of(out, Launch)]
    ['t_00000', 't_00001']
    >>> of(ctl.handle(result("t_00000", score=3.0)), Reply)
    [Reply(trial_id='t_00000', answer=<Answer.CONTINUE: 'continue'>, watch=None)]
"""

from __future__ import annotations

from typing import Any, TypeVar

from poptune.backends._base import ResultEvent
from poptune.engine.controller import Controller
from poptune.engine.events import Tick
from poptune.engine.instructions import Launch, Reply
from poptune.engine.resources import ResourcePool
from poptune.engine.trial import Trial
from poptune.schedulers._base import FIFOScheduler, TrialScheduler
from poptune.stopper import NoopStopper

__all__ = ["make_controller", "result", "of", "Tick", "Launch", "Reply"]

T = TypeVar("T")
_iterations: dict[str, int] = {}


def make_controller(*, num_samples: int = 1, param_space: dict[str, Any] | None = None,
                    scheduler: TrialScheduler | None = None, searcher: Any = None,
                    stopper: Any = None, cpus: float = 2, seed: int = 0,
                    metric: str | None = None, mode: str | None = None, gpus: int = 0,
                    resources: Any = None, pool: ResourcePool | None = None,
                    **kwargs: Any) -> Controller:
    """A controller over ``param_space`` (default ``{"x": 1}``) with ``num_samples`` trials,
    trial ids ``t_00000``, ``t_00001``, ... and a pool of ``cpus`` CPUs and ``gpus`` GPUs
    (or ``pool``);
    ``resources(config)`` gives a trial's resources (default one CPU). ``kwargs`` go to
    :class:`Controller` (``max_failures``, ``fail_fast``, ``is_class``, ...)."""
    from poptune.search.basic_variant import BasicVariantGenerator

    if searcher is None:
        searcher = BasicVariantGenerator()
        searcher.set_search_properties(metric, mode, param_space or {"x": 1})
        searcher.setup_experiment(param_space or {"x": 1}, num_samples, seed)
    scheduler = scheduler if scheduler is not None else FIFOScheduler()
    if metric or mode:
        scheduler.set_search_properties(metric, mode)

    def new_trial(trial_id: str, suggestion: Any) -> Trial:
        return Trial(trial_id=trial_id, trainable_name="f", config=suggestion.config,
                     experiment_tag=trial_id.rsplit("_", 1)[-1], local_path=f"/exp/{trial_id}",
                     dirname=trial_id, storage_dir=f"/exp/{trial_id}",
                     resources=(resources(suggestion.config) if resources is not None
                                else {"cpu": 1.0, "gpu": 0.0}))

    _iterations.clear()
    return Controller(scheduler=scheduler, searcher=searcher,
                      stopper=stopper if stopper is not None else NoopStopper(),
                      new_trial=new_trial, exp_hex="t",
                      pool=pool if pool is not None else ResourcePool(cpu=cpus, gpu=gpus),
                      default_resources={"cpu": 1.0, "gpu": 0.0}, metric=metric, **kwargs)


def result(trial_id: str, *, iteration: int | None = None, checkpoint: str | None = None,
           **metrics: Any) -> ResultEvent:
    """A result event as a worker sends it (``training_iteration`` counts up per trial unless
    given; ``checkpoint`` names a checkpoint directory reported with it)."""
    it = iteration if iteration is not None else _iterations.get(trial_id, 0) + 1
    _iterations[trial_id] = it
    res: dict[str, Any] = {**metrics, "training_iteration": it, "time_total_s": float(it),
                           "trial_id": trial_id}
    if checkpoint:
        res["checkpoint_dir_name"] = checkpoint
    return ResultEvent(trial_id, res)


def of(instructions: list[Any], kind: type[T]) -> list[T]:
    """The instructions of one type, in order."""
    return [i for i in instructions if isinstance(i, kind)]
