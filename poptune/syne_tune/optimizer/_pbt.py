"""poptune's PBT with Syne Tune's scheduling and explore step.

Scheduling: Syne Tune's PBT only stops a trial at ``max_t`` or exploits it, and starts an
exploited trial (from its donor's checkpoint) before any new random configuration. poptune's
PBT pauses a trial to let one that trained less catch up, and new trials have trained least:
with endless new trials (``num_samples=-1``) they would always go first and no trial would
finish.

Explore (:func:`syne_explore`, Syne Tune's ``PopulationBasedTraining._explore``): a
``custom_explore_fn`` replaces the step; otherwise each hyperparameter of the config space is
resampled when it is not a number range (categorical, ordinal) or with probability
``resample_probability``, and else multiplied by 1.2 or 0.8, clipped to its domain's bounds
and cast to it (an integer rounded, a finite range's nearest value).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Mapping
from typing import Any

from poptune.experiment.trial import Trial
from poptune.schedulers import PopulationBasedTraining
from poptune.schedulers._base import SchedulerDecision
from poptune.schedulers._pbt_explore import _sample_domain, _summarize
from poptune.syne_tune.optimizer._grid import describe, syne_cast


def syne_explore(config: Mapping[str, Any], domains: Mapping[str, Any],
                 resample_probability: float, rng: random.Random,
                 custom_explore_fn: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 ) -> tuple[dict[str, Any], str]:
    """The donor's ``config`` explored as Syne Tune explores it, and a summary of the changes.

    Example:
        >>> import random
        >>> from poptune.syne_tune.config_space import choice, randint
        >>> new, _ = syne_explore({"k": 4, "act": "relu"},
        ...                       {"k": randint(1, 4), "act": choice(["relu", "tanh"])},
        ...                       0.0, random.Random(0))
        >>> new["k"] in (3, 4), new["act"] in ("relu", "tanh")  # 4 * 1.2 is clipped to 4
        (True, True)
    """
    new = copy.deepcopy(dict(config))
    if custom_explore_fn is not None:  # Syne Tune: the custom step replaces its own
        new = custom_explore_fn(new)
        if new is None:
            raise TypeError("`custom_explore_fn` must return the new config, got None")
        return new, "custom_explore_fn"
    ops: dict[str, str] = {}
    for key, domain in domains.items():
        if key not in config:
            continue
        d = describe(key, domain)
        numeric = d["kind"] in ("float", "int", "finite")
        number = isinstance(config[key], (int, float)) and not isinstance(config[key], bool)
        if not numeric or not number or rng.random() < resample_probability:
            new[key], ops[key] = _sample_domain(domain, rng), "resample"
            continue
        factor = 1.2 if rng.random() > 0.5 else 0.8
        value = min(max(config[key] * factor, d["lower"]), d["upper"])
        new[key], ops[key] = syne_cast(domain, value), f"* {factor}"
    old_params = {k: config[k] for k in domains if k in config}
    new_params = {k: new[k] for k in domains if k in new}
    return new, _summarize(old_params, new_params, ops) or "No hyperparameters mutated."


class SynePBT(PopulationBasedTraining):
    """:class:`~poptune.schedulers.PopulationBasedTraining` whose catch-up PAUSE is a
    CONTINUE, which restarts exploited trials before it starts new ones, and which explores
    as Syne Tune does (:func:`syne_explore`)."""

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> Any:
        decision = super().on_trial_result(trial, result)
        return SchedulerDecision.CONTINUE if decision is SchedulerDecision.PAUSE else decision

    def choose_trial_to_run(self, candidates: list[Trial]) -> Any:
        restarts = [t for t in candidates if getattr(t, "restore_path", None) is not None]
        return super().choose_trial_to_run(restarts or candidates)

    def _get_new_config(self, trial: Trial, donor: Trial) -> tuple[dict[str, Any], str]:
        return syne_explore(donor.config, self._hyperparam_mutations,
                            self._resample_probability, self._rng, self._custom_explore_fn)
