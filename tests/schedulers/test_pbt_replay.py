"""PopulationBasedTrainingReplay: Ray's policy-file parsing and the config changes it decides."""

from __future__ import annotations

import json
import logging
import os
import pickle

import pytest

from poptune.engine.trial import Trial, TrialStatus
from poptune.engine.trial_view import TrialView
from poptune.exceptions import TuneConfigError
from poptune.schedulers import Exploit, PopulationBasedTrainingReplay, SchedulerDecision
from poptune.storage.pbt_log import policy_file_path
from tests.schedulers.outcomes import add
from tests.schedulers.test_pbt import sim

TI = "training_iteration"

# Configs as Ray Tune writes them (the guide's ConvNet example).
C0 = {"lr": 0.0501, "momentum": 0.8, "checkpoint_interval": 5}
C1 = {"lr": 0.0601, "momentum": 0.9, "checkpoint_interval": 5}
C1B = {"lr": 0.0721, "momentum": 0.9, "checkpoint_interval": 5}
C3 = {"lr": 0.0577, "momentum": 0.99, "checkpoint_interval": 5}

# pbt_policy_87836_00003.txt as Ray writes it: trial 3 first exploited trial 2 (a line it kept
# because trial 2 had no policy file of its own)... then exploited trial 1, whose file (trial 1
# exploiting trial 0) was copied over trial 3's before the new line was appended. The line
# that is not part of the chain below the last exploit must be ignored.
RAY_POLICY = [
    ["3_lr=0.0300,momentum=0.9000", "2_lr=0.0200,momentum=0.8000", 2, 2,
     {"lr": 0.02, "momentum": 0.8, "checkpoint_interval": 5},
     {"lr": 0.024, "momentum": 0.9, "checkpoint_interval": 5}],
    ["1_lr=0.0601,momentum=0.9000", "0_lr=0.0501,momentum=0.8000", 4, 5, C0, C1],
    ["3_lr=0.0300,momentum=0.9000", "1_lr=0.0601,momentum=0.9000", 9, 10, C1B, C3],
]


@pytest.fixture
def policy_file(tmp_path):
    path = tmp_path / "pbt_policy_87836_00003.txt"
    path.write_text("".join(json.dumps(row) + "\n" for row in RAY_POLICY))
    return str(path)


def make_trial(config=None) -> Trial:
    return Trial(trial_id="fff_00000", trainable_name="train_convnet", config=dict(config or {}),
                 status=TrialStatus.RUNNING)


def report(replay, trial: Trial, it: int, ckpt: bool = True):
    if ckpt:
        trial.checkpoint_path = f"/exp/{trial.trial_id}/checkpoint_{it:06d}"
    return replay.on_trial_result(trial, {TI: it, "time_total_s": float(it), "mean_accuracy": 0.5})


def test_ray_policy_file_walks_the_lineage_back_to_the_initial_config(policy_file):
    replay = PopulationBasedTrainingReplay(policy_file)
    trial = make_trial()
    add(replay, trial)
    assert trial.config == C0  # the root ancestor's config, not trial 3's own start
    assert all(report(replay, trial, it) == SchedulerDecision.CONTINUE for it in range(1, 5))
    first = report(replay, trial, 5)
    assert isinstance(first, Exploit)
    assert (first.trial_id, first.donor_trial_id) == (trial.trial_id, trial.trial_id)
    assert first.checkpoint_path == "/exp/fff_00000/checkpoint_000005"  # its own latest
    assert first.config == C1 and first.donor_config == C0
    assert first.experiment_tag.startswith("replay_pbt_policy_87836_00003.txt@perturbed[")
    trial.config = first.config
    assert all(report(replay, trial, it) == SchedulerDecision.CONTINUE for it in range(6, 10))
    second = report(replay, trial, 10)
    assert second.config == C3
    assert report(replay, trial, 11) == SchedulerDecision.CONTINUE
    assert replay.debug_string() == "PopulationBasedTraining replay: Step 11, perturb 2"


def test_change_without_a_fresh_checkpoint_waits_for_the_next_one_and_warns_once(
    policy_file, caplog
):
    replay = PopulationBasedTrainingReplay(policy_file)
    trial = make_trial()
    add(replay, trial)
    report(replay, trial, 3)  # an older checkpoint exists: replay must not rewind to it
    with caplog.at_level(logging.WARNING, logger="poptune.schedulers.pbt"):
        assert report(replay, trial, 5, ckpt=False) == SchedulerDecision.CONTINUE
        assert report(replay, trial, 6, ckpt=False) == SchedulerDecision.CONTINUE
    assert len([r for r in caplog.records if "iteration 5" in r.getMessage()]) == 1
    exploit = report(replay, trial, 7)
    assert exploit.config == C1 and exploit.checkpoint_path.endswith("checkpoint_000007")


def test_changes_that_fall_due_together_are_applied_one_per_result_as_in_ray(policy_file):
    replay = PopulationBasedTrainingReplay(policy_file)
    trial = make_trial()
    add(replay, trial)
    first = report(replay, trial, 12)
    assert first.config == C1  # the next change waits for the next result
    trial.config = first.config
    second = report(replay, trial, 13)
    assert second.config == C3 and second.donor_config == C1
    assert report(replay, trial, 20) == SchedulerDecision.CONTINUE


def test_trial_config_is_overwritten_with_a_warning(policy_file, caplog):
    replay = PopulationBasedTrainingReplay(policy_file)
    trial = make_trial({"lr": 1.0})
    with caplog.at_level(logging.WARNING, logger="poptune.schedulers.pbt"):
        add(replay, trial)
    assert trial.config == C0 and "overwritten" in caplog.text


def test_on_trial_add_returns_the_values_that_differ_and_leaves_the_trial_alone(policy_file):
    replay = PopulationBasedTrainingReplay(policy_file)
    trial = make_trial({"lr": 1.0, "momentum": 0.8})
    assert replay.on_trial_add(TrialView(trial)) == {"lr": 0.0501, "checkpoint_interval": 5}
    assert trial.config == {"lr": 1.0, "momentum": 0.8}
    assert replay.on_trial_add(TrialView(trial)) is None  # re-added after a restore
    same = PopulationBasedTrainingReplay(policy_file)
    assert same.on_trial_add(TrialView(make_trial(C0))) is None  # nothing differs


def test_only_one_trial_may_be_replayed(policy_file):
    replay = PopulationBasedTrainingReplay(policy_file)
    add(replay, make_trial())
    other = Trial(trial_id="fff_00001", trainable_name="t", config={})
    with pytest.raises(TuneConfigError, match="More than one trial"):
        replay.on_trial_add(other)


def test_missing_file_and_empty_policy_without_config_are_errors(tmp_path):
    with pytest.raises(TuneConfigError, match="`policy_file` must be the path of an existing"):
        PopulationBasedTrainingReplay(str(tmp_path / "nope.txt"))
    empty = tmp_path / "pbt_policy_empty.txt"
    empty.write_text("")
    with pytest.raises(TuneConfigError, match="No replay policy found"):
        PopulationBasedTrainingReplay(str(empty)).on_trial_add(make_trial())
    replay = PopulationBasedTrainingReplay(str(empty))
    trial = make_trial({"lr": 0.3})
    add(replay, trial)  # nothing to replay: train with the given config
    assert trial.config == {"lr": 0.3}
    assert report(replay, trial, 100) == SchedulerDecision.CONTINUE


def test_replay_state_survives_a_restore(policy_file):
    replay = PopulationBasedTrainingReplay(policy_file)
    trial = make_trial()
    add(replay, trial)
    report(replay, trial, 5)
    restored = PopulationBasedTrainingReplay(policy_file)
    restored.load_state(pickle.loads(pickle.dumps(replay.save_state())))
    add(restored, trial)  # the runner re-adds the same trial
    assert report(restored, trial, 10).config == C3


def test_policy_files_written_by_poptune_replay_the_trials_schedule(tmp_path):
    pop = sim(n=6, slots=6, synch=True, seed=7, log_dir=str(tmp_path)).run()
    initial = {t.trial_id: dict(t.config) for t in sim(n=6, slots=6, synch=True, seed=7).trials}
    for trial in pop.trials:
        path = policy_file_path(str(tmp_path), trial.trial_id)
        if not os.path.exists(path):
            continue
        replay = PopulationBasedTrainingReplay(path)
        replayed = Trial(trial_id="r_00000", trainable_name="t", config={})
        add(replay, replayed)
        assert replayed.config in initial.values()  # an initial config of the population
        for it in range(1, 31):
            decision = report(replay, replayed, it)
            if isinstance(decision, Exploit):
                replayed.config = decision.config
        assert replayed.config == trial.config  # the schedule ends where the trial ended
