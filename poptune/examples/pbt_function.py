"""A toy PBT problem: poptune's ``ray.tune.examples.pbt_function``.

Ray's PB2 example imports it (``from ray.tune.examples.pbt_function import pbt_function``),
so it exists here under the same name and behaves the same way: the accuracy grows fastest
when ``config["lr"]`` follows a triangle-wave schedule of the accuracy itself (0.001 up to
0.01 at an accuracy of 100, back down to 0.001 at 200), which only a population that copies
and perturbs ``lr`` finds. Each step reports ``mean_accuracy``, ``cur_lr``, ``optimal_lr``,
``q_err`` and ``done`` (accuracy above 200); every ``config["checkpoint_interval"]`` steps
(default 1) it saves ``checkpoint.json`` with the accuracy and the step, and it resumes from
one. Pure Python and numpy: no data, no downloads.

Example:
    >>> import poptune as tune
    >>> from poptune.examples.pbt_function import pbt_function
    >>> grid = tune.Tuner(pbt_function, param_space={"lr": 0.005},
    ...     run_config=tune.RunConfig(stop={"training_iteration": 3}, verbose=0),
    ...     tune_config=tune.TuneConfig(backend="simulated")).fit()
    >>> grid[0].metrics["training_iteration"], sorted(grid[0].metrics)[:3]
    (3, ['checkpoint_dir_name', 'config', 'cur_lr'])
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from typing import Any

import numpy as np

from poptune.checkpoint import Checkpoint
from poptune.session import get_checkpoint, report

__all__ = ["pbt_function", "optimal_lr"]

MIDPOINT = 100.0  # the optimal lr peaks here and falls again up to 2 * MIDPOINT
Q_TOLERANCE = 3.0  # an lr further than this factor from the optimum stops helping
NOISE = 2.0  # standard deviation of the noise added to each step's accuracy


def optimal_lr(accuracy: float) -> float:
    """The best ``lr`` at ``accuracy``: a triangle wave clipped to [0.001, 0.01]."""
    rising = accuracy < MIDPOINT
    lr = 0.01 * accuracy / MIDPOINT if rising else 0.01 - 0.01 * (accuracy - MIDPOINT) / MIDPOINT
    return min(0.01, max(0.001, lr))


def _step(accuracy: float, lr: float) -> tuple[float, float, float]:
    """One training step: the new accuracy, the optimal lr and the ratio of the two lrs."""
    best = optimal_lr(accuracy)
    q_err = max(lr, best) / min(lr, best)
    if q_err < Q_TOLERANCE:
        accuracy += random.random() / q_err
    elif lr > best:
        accuracy -= (q_err - Q_TOLERANCE) * random.random()
    accuracy = max(0.0, accuracy + NOISE * float(np.random.normal()))
    return accuracy, best, q_err


def pbt_function(config: dict[str, Any]) -> None:
    """Train the toy model until ``done`` (or a stop), checkpointing as configured."""
    lr = config["lr"]
    interval = config.get("checkpoint_interval", 1)
    accuracy, step = 0.0, 1  # step 1 is the first: a checkpoint every `interval` steps
    checkpoint = get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as path:
            with open(os.path.join(path, "checkpoint.json")) as f:
                saved = json.load(f)
        accuracy, step = saved["acc"], saved["step"] + 1
    while True:
        accuracy, best, q_err = _step(accuracy, lr)
        metrics = {"mean_accuracy": accuracy, "cur_lr": lr, "optimal_lr": best,
                   "q_err": q_err, "done": accuracy > 2 * MIDPOINT}
        if step % interval:
            report(metrics)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                with open(os.path.join(tmp, "checkpoint.json"), "w") as f:
                    json.dump({"acc": accuracy, "step": step}, f)
                report(metrics, checkpoint=Checkpoint.from_directory(tmp))
        step += 1
