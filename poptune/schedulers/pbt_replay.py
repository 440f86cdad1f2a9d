"""PBT replay: re-run the hyperparameter schedule one trial followed in a PBT run.

:class:`PopulationBasedTrainingReplay` reads a ``pbt_policy_{trial_id}.txt`` (poptune's or
Ray Tune's) and applies its config changes to a single trial, at most one per result as Ray
does (changes due at once follow one another, each trained at least one iteration). Also
importable from :mod:`poptune.schedulers.pbt` and :mod:`poptune.schedulers`.
"""

from __future__ import annotations

import copy
import logging
import os
from typing import Any

from poptune._validation import bad_type, bad_value
from poptune.exceptions import TuneConfigError
from poptune.experiment.trial import Trial
from poptune.result import TRAINING_ITERATION
from poptune.schedulers._base import Decision, Exploit, FIFOScheduler, SchedulerDecision
from poptune.schedulers._pbt_explore import make_experiment_tag

__all__ = ["PopulationBasedTrainingReplay"]

# the replay logged under ``poptune.schedulers.pbt`` before it had its own module; keep that
# name so existing logging configuration (and filters) still apply
logger = logging.getLogger("poptune.schedulers.pbt")


def _load_policy(path: str) -> tuple[dict[str, Any] | None, list[tuple[int, dict[str, Any]]]]:
    """Ray's parsing: walk the lines backwards while each entry's target is the next one's
    donor (the lineage chain); return the chain's initial config and its change points."""
    from poptune.storage.pbt_log import read_policy_file

    policy: list[tuple[int, dict[str, Any]]] = []
    last_new_tag: str | None = None
    initial: dict[str, Any] | None = None
    for old_tag, new_tag, _old_step, new_step, old_conf, new_conf in reversed(
        read_policy_file(path)
    ):
        if last_new_tag is not None and old_tag != last_new_tag:
            break  # the chain ended: earlier lines were overwritten by a later exploit
        last_new_tag, initial = new_tag, old_conf
        policy.append((new_step, new_conf))
    return initial, list(reversed(policy))


class PopulationBasedTrainingReplay(FIFOScheduler):
    """Replay the hyperparameter schedule one trial followed in a PBT run.

    Reads a ``pbt_policy_{trial_id}.txt`` (written by poptune or by Ray Tune), starts the single
    trial with the lineage's initial config and changes the config at each recorded
    ``training_iteration``.

    A config change restarts the trial from its own checkpoint. poptune cannot force a save,
    so a change due at iteration ``k`` is applied at the first result with
    ``training_iteration >= k`` that carries a new checkpoint (exact when the trainable
    checkpoints every ``perturbation_interval``, as the PBT guide recommends). Until then the
    trial continues with a warning (once per change); it never restarts from scratch nor
    rewinds to an older checkpoint. As in Ray, one change is applied per result: when several
    are due at once (e.g. recorded at the same iteration), the next one waits for the next
    result, so each is trained at least one iteration and the later ones come that much late.

    Args:
        policy_file: path of the policy file.

    Example:
        >>> import json, tempfile
        >>> f = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
        >>> line = ["1_lr=0.1", "0_lr=0.2", 4, 5, {"lr": 0.2}, {"lr": 0.24}]
        >>> _ = f.write(json.dumps(line) + "\\n")
        >>> f.close()
        >>> replay = PopulationBasedTrainingReplay(f.name)
        >>> replay.config, replay.debug_string()
        ({'lr': 0.2}, 'PopulationBasedTraining replay: Step 0, perturb 0')
    """

    needs_checkpoints = True
    log_config = False

    def __init__(self, policy_file: str | os.PathLike[str]) -> None:
        if not isinstance(policy_file, (str, os.PathLike)):
            raise bad_type("policy_file", policy_file,
                           "the path (str or os.PathLike) of a PBT policy file")
        path = os.path.expanduser(os.fspath(policy_file))
        if os.path.isdir(path):
            raise bad_value("policy_file", policy_file, (
                "the path of a PBT policy file, not a directory (an experiment directory "
                "holds one per exploited trial: pbt_policy_<trial_id>.txt)"))
        if not os.path.isfile(path):
            raise bad_value("policy_file", policy_file, "the path of an existing PBT policy file")
        self.policy_file = path
        initial_config, self._policy = _load_policy(path)
        self.experiment_tag = f"replay_{os.path.basename(path)}"
        self.config: dict[str, Any] = initial_config or {}
        self.current_config = self.config
        self._trial_id: str | None = None
        self._current_step = 0
        self._num_perturbations = 0
        self._next = 0
        self._seen_path: str | None = None
        self._warned_at = -1

    def on_trial_add(self, trial: Trial) -> dict[str, Any] | None:
        """Start the trial with the lineage's initial config: return, as ``{"a/b": value}``
        paths, the values of that config that the trial's config lacks or holds otherwise
        (the controller writes them in); None when there is nothing to change."""
        if self._trial_id is not None and trial.trial_id != self._trial_id:
            raise TuneConfigError(
                "More than one trial added to a PBT replay run: the same schedule would be "
                "trained several times. Set `num_samples=1`."
            )
        if self._trial_id == trial.trial_id:  # re-added after a restore
            return None
        self._trial_id = trial.trial_id
        if trial.config and self._policy:
            logger.warning(
                "PBT replay: the trial's config was overwritten by the policy file's initial "
                "config. Did you start the replay with a `param_space`?"
            )
        elif trial.config and not self._policy:
            self.config = copy.deepcopy(trial.config)
        elif not trial.config and not self._policy:
            raise TuneConfigError(
                f"No replay policy found in {self.policy_file} and the trial has no config. "
                "Pass a `param_space` or do not use PBT replay for this run."
            )
        self.current_config = self.config
        from poptune.results.result import flatten_dict

        have = flatten_dict(trial.config)
        changes = {k: copy.deepcopy(v) for k, v in flatten_dict(self.config).items()
                   if k not in have or type(have[k]) is not type(v) or have[k] != v}
        return changes or None

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> Decision:
        fresh_checkpoint = bool(trial.checkpoint_path) and trial.checkpoint_path != self._seen_path
        self._seen_path = trial.checkpoint_path
        if TRAINING_ITERATION not in result:
            return SchedulerDecision.CONTINUE
        step = self._current_step = result[TRAINING_ITERATION]
        if self._next >= len(self._policy):
            return SchedulerDecision.CONTINUE
        change_at, _ = self._policy[self._next]
        if step < change_at:
            return SchedulerDecision.CONTINUE
        due = self._next  # one change per result, as Ray: the next due one waits
        new_config = self._policy[due][1]
        if not fresh_checkpoint:
            if self._warned_at != due:
                self._warned_at = due
                logger.warning(
                    "PBT replay: the config change recorded at iteration %s is due (trial is at "
                    "iteration %s) but this result carries no checkpoint; it is applied at the "
                    "trial's next checkpoint. Checkpoint every `perturbation_interval` to "
                    "replay the schedule exactly.", change_at, step,
                )
            return SchedulerDecision.CONTINUE
        logger.info(
            "Population Based Training replay is now at step %s. Configuration will be "
            "changed to %s.", step, new_config,
        )
        exploit = Exploit(
            trial_id=trial.trial_id,
            donor_trial_id=trial.trial_id,
            checkpoint_path=trial.checkpoint_path,  # type: ignore[arg-type]
            config=copy.deepcopy(new_config),
            donor_result=dict(result),
            target_tag=self.experiment_tag,
            donor_tag=self.experiment_tag,
            target_iteration=step,
            donor_iteration=step,
            donor_config=copy.deepcopy(self.current_config),
            experiment_tag=make_experiment_tag(self.experiment_tag, new_config, new_config),
        )
        self.current_config = new_config
        self._num_perturbations += 1
        self._next = due + 1
        return exploit

    def should_checkpoint(self, trial: Trial, result: dict[str, Any]) -> bool:
        """Class trainables save when a recorded config change falls due."""
        step = result.get(TRAINING_ITERATION)
        return (step is not None and self._next < len(self._policy)
                and step >= self._policy[self._next][0])

    def debug_string(self) -> str:
        return (
            f"PopulationBasedTraining replay: Step {self._current_step}, "
            f"perturb {self._num_perturbations}"
        )
