"""Lineage as data: exploits, schedules, clone chains and the family tree of a PBT run."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile

import pytest

import poptune as tune
from poptune import Checkpoint, Result, ResultGrid
from poptune.exceptions import StorageError
from poptune.lineage import (
    ExploitEvent,
    family_tree,
    hyperparam_schedule,
    lineage,
    lineage_schedule,
    load_experiment,
    load_exploits,
)
from poptune.schedulers import PopulationBasedTraining
from poptune.schedulers.pbt import _load_policy

HEX = "abcde"


# -- a hand-built experiment ------------------------------------------------------------------
# trial 0: lr .1 for iterations 1-6; exploit #3 (from trial 2 at 4) -> lr .2 for 5-7
# trial 1: lr .5 for 1-3; exploit #0 (from trial 0 at 3) -> lr .12 for 4-6
# trial 2: lr .9 for 1-4; exploit #1 (from trial 1 at 4) -> lr .1 for 5-6;
#          exploit #2 (from trial 1 at 5) -> lr .08 for 6-7 (a rewind: 6 is reported twice)
ROWS = {
    0: [(i, 0.1) for i in range(1, 7)] + [(5, 0.2), (6, 0.2), (7, 0.2)],
    1: [(1, 0.5), (2, 0.5), (3, 0.5), (4, 0.12), (5, 0.12), (6, 0.12)],
    2: [(1, 0.9), (2, 0.9), (3, 0.9), (4, 0.9), (5, 0.1), (6, 0.1), (6, 0.08), (7, 0.08)],
}
LINES = [
    ["1_lr=0.5", "0_lr=0.1", 3, 3, {"lr": 0.1}, {"lr": 0.12}],
    ["2_lr=0.9", "1_lr=0.5", 4, 4, {"lr": 0.12}, {"lr": 0.1}],
    ["2@perturbed[lr=0.1]", "1@perturbed[lr=0.12]", 6, 5, {"lr": 0.12}, {"lr": 0.08}],
    ["0_lr=0.1", "2@perturbed[lr=0.1]", 6, 4, {"lr": 0.1}, {"lr": 0.2}],
]


def tid(i: int) -> str:
    return f"{HEX}_{i:05d}"


def make_experiment(root, rows=ROWS, lines=LINES) -> str:
    exp = os.path.join(str(root), "exp")
    for i, trial_rows in rows.items():
        d = os.path.join(exp, f"train_{tid(i)}_{i}_lr={trial_rows[0][1]}_2026-01-01_00-00-00")
        os.makedirs(d)
        with open(os.path.join(d, "params.json"), "w") as f:
            json.dump({"lr": trial_rows[0][1]}, f)
        with open(os.path.join(d, "result.json"), "w") as f:
            f.writelines(json.dumps({"score": it * lr, "training_iteration": it,
                                     "trial_id": tid(i), "experiment_tag": f"{i}_lr={lr}",
                                     "config": {"lr": lr}}) + "\n" for it, lr in trial_rows)
    if lines is not None:
        with open(os.path.join(exp, "pbt_global.txt"), "w") as f:
            f.writelines(json.dumps(line) + "\n" for line in lines)
    return exp


@pytest.fixture
def exp_dir(tmp_path):
    return make_experiment(tmp_path)


def test_exploit_lines_become_events_with_trial_ids(exp_dir):
    events = load_exploits(exp_dir)
    assert [(e.order, e.target_trial_id, e.donor_trial_id, e.target_iteration,
             e.donor_iteration) for e in events] == [
        (0, tid(1), tid(0), 3, 3), (1, tid(2), tid(1), 4, 4), (2, tid(2), tid(1), 6, 5),
        (3, tid(0), tid(2), 6, 4)]
    assert events[0].old_config == {"lr": 0.1} and events[0].new_config == {"lr": 0.12}
    assert events[2].changes == {"lr": (0.12, 0.08)}
    assert events[2].target_tag == "2@perturbed[lr=0.1]"
    assert json.loads(json.dumps(events[2].to_dict()))["changes"] == {"lr": [0.12, 0.08]}


def test_schedule_is_what_the_trial_ran_and_changes_where_the_log_says(exp_dir):
    exp = load_experiment(exp_dir)
    schedules = {t.index: hyperparam_schedule(t.path) for t in exp.trials}
    assert schedules[2] == [(0, {"lr": 0.9}), (4, {"lr": 0.1}), (5, {"lr": 0.08})]
    assert schedules[0] == [(0, {"lr": 0.1}), (4, {"lr": 0.2})]
    assert schedules[1] == [(0, {"lr": 0.5}), (3, {"lr": 0.12})]
    for event in load_exploits(exp_dir):  # each change sits at the donor's iteration
        index = int(event.target_trial_id[-5:])
        assert (event.donor_iteration, event.new_config) in schedules[index]


def test_schedule_merges_repeats_and_falls_back_to_params(tmp_path):
    exp = make_experiment(tmp_path, rows={0: [(1, 0.3), (2, 0.3), (3, 0.3)]}, lines=None)
    trial = load_experiment(exp).trials[0]
    assert hyperparam_schedule(trial.path) == [(0, {"lr": 0.3})]
    os.remove(os.path.join(trial.path, "result.json"))
    assert hyperparam_schedule(trial.path) == [(0, {"lr": 0.3})]


def test_lineage_walks_back_through_donors_at_the_cloned_iteration(exp_dir):
    events = load_exploits(exp_dir)
    assert lineage(exp_dir, tid(1)) == [events[0]]
    assert lineage(exp_dir, tid(2)) == [events[0], events[2]]
    # trial 0 cloned trial 2 at iteration 4: that model came from exploit #1, not #2
    # (which restarted trial 2 at 5), and #1's donor at 4 came from exploit #0
    assert lineage(exp_dir, tid(0)) == [events[0], events[1], events[3]]
    assert lineage_schedule(exp_dir, tid(0)) == [(0, {"lr": 0.1}), (3, {"lr": 0.12}),
                                                 (4, {"lr": 0.2})]
    with pytest.raises(KeyError, match="nope"):
        lineage(exp_dir, "nope")


def test_family_tree_is_json_with_an_edge_per_exploit_line(exp_dir):
    tree = family_tree(exp_dir, metric="score")
    assert json.loads(json.dumps(tree, allow_nan=False)) == tree
    assert [n["id"] for n in tree["nodes"]] == [tid(0), tid(1), tid(2)]
    assert tree["nodes"][2]["iterations"] == 7 and tree["nodes"][2]["metric"] == 7 * 0.08
    assert tree["nodes"][2]["final_config"] == {"lr": 0.08}
    assert [(e["source"], e["target"], e["source_iteration"], e["target_iteration"],
             e["new_config"]) for e in tree["edges"]] == [
        (tid(int(d[0])), tid(int(t[0])), di, ti, new) for t, d, ti, di, _, new in LINES]
    assert tree["hyperparams"] == ["lr"]
    assert tree["edges"][0]["changes"] == {"lr": [0.1, 0.12]}


def test_result_exposes_schedule_and_the_exploits_that_targeted_it(exp_dir):
    grid = ResultGrid.from_path(exp_dir)
    by_id = {r.metrics["trial_id"]: r for r in grid}
    events = load_exploits(exp_dir)
    assert by_id[tid(2)].hyperparam_schedule == hyperparam_schedule(by_id[tid(2)].path)
    assert by_id[tid(2)].lineage == [events[1], events[2]]
    assert by_id[tid(1)].lineage == [events[0]]
    assert isinstance(by_id[tid(0)].lineage[0], ExploitEvent)
    in_memory = Result(metrics={"config": {"lr": 1}}, checkpoint=None, error=None, path="")
    assert in_memory.hyperparam_schedule == [] and in_memory.lineage == []


def test_not_an_experiment_and_not_pbt(tmp_path):
    with pytest.raises(StorageError, match="does not exist"):
        load_exploits(str(tmp_path / "missing"))
    plain = make_experiment(tmp_path, lines=None)
    assert load_exploits(plain) == [] and lineage(plain, tid(0)) == []
    assert family_tree(plain)["edges"] == []


@pytest.mark.parametrize("call", [load_exploits, family_tree, load_experiment,
                                  lambda d: lineage(d, tid(0)),
                                  lambda d: lineage_schedule(d, tid(0))],
                         ids=["load_exploits", "family_tree", "load_experiment", "lineage",
                              "lineage_schedule"])
def test_an_experiment_argument_that_is_no_path_or_no_experiment_is_named(call, tmp_path):
    with pytest.raises(TypeError, match=r"^`experiment_dir` must be the path of an experiment "
                                        r"directory \(str or os.PathLike\), got 3 of type int$"):
        call(3)
    with pytest.raises(StorageError, match=rf"^`experiment_dir` must be an experiment directory, "
                                           rf"got '{tmp_path}/missing': it does not exist$"):
        call(str(tmp_path / "missing"))
    (tmp_path / "afile").write_text("x")
    with pytest.raises(StorageError, match="got '.*afile': it is a file$"):
        call(tmp_path / "afile")
    (tmp_path / "empty").mkdir()  # what the CLI calls "not a poptune experiment"
    with pytest.raises(StorageError, match=r"^`experiment_dir` must be an experiment directory "
                                           r"\(holding journal.jsonl, or trial directories with "
                                           r"result.json or params.json\), got '.*empty': it "
                                           r"holds no journal.jsonl, no pbt_global.txt and no "
                                           r"trial directory$"):
        call(str(tmp_path / "empty"))


def test_schedule_of_no_trial_directory_is_a_clear_error(exp_dir, tmp_path):
    with pytest.raises(TypeError, match=r"^`trial` must be a trial directory \(str or "
                                        r"os.PathLike\) or a Result, got 5 of type int$"):
        hyperparam_schedule(5)
    accepted = (r"^`trial` must be a trial directory \(holding result.json or params.json\) "
                r"or a Result, ")
    with pytest.raises(StorageError, match=accepted + "got '/nonexistent': it does not exist$"):
        hyperparam_schedule("/nonexistent")
    with pytest.raises(StorageError, match=accepted + f"got '{exp_dir}': it is an experiment "
                                           r"directory; pass one of its trial directories"):
        hyperparam_schedule(exp_dir)
    (tmp_path / "bare").mkdir()
    with pytest.raises(StorageError, match="'.*bare': it holds no result.json or params.json$"):
        hyperparam_schedule(tmp_path / "bare")
    trial = load_experiment(exp_dir).trials[1].path
    assert hyperparam_schedule(trial) == [(0, {"lr": 0.5}), (3, {"lr": 0.12})]


def test_replay_of_a_directory_or_no_path_is_a_clear_error(exp_dir):
    from poptune.exceptions import TuneConfigError
    from poptune.schedulers import PopulationBasedTrainingReplay
    from poptune.storage.pbt_log import read_policy_file

    with pytest.raises(TuneConfigError, match=r"^`policy_file` must be the path of a PBT policy "
                                              r"file, not a directory .*, got '.*exp'$"):
        PopulationBasedTrainingReplay(exp_dir)
    with pytest.raises(TypeError, match=r"^`policy_file` must be the path .* got 3 of type int$"):
        PopulationBasedTrainingReplay(3)  # type: ignore[arg-type]
    with pytest.raises(TuneConfigError, match="an existing PBT policy file, got '/nonexistent'"):
        PopulationBasedTrainingReplay("/nonexistent")
    with pytest.raises(ValueError, match="Could not read PBT policy file .*: it is a directory"):
        read_policy_file(exp_dir)


def test_a_bad_log_line_is_a_clear_error_and_a_partial_last_line_is_ignored(exp_dir):
    path = os.path.join(exp_dir, "pbt_global.txt")
    with open(path, "a") as f:
        f.write('["3", "0", 7')  # being written
    assert len(load_exploits(exp_dir)) == 4
    with open(path, "a") as f:
        f.write("\n[1, 2]\n")
    with pytest.raises(ValueError, match="Could not read PBT policy file .*pbt_global.txt"):
        load_exploits(exp_dir)


# -- a real PBT run ---------------------------------------------------------------------------
def _train(config):
    step, score = 0, 0.0
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as d, open(os.path.join(d, "s.json")) as f:
            state = json.load(f)
        step, score = state["step"], state["score"]
    while True:
        step += 1
        score += 1.0 - abs(config["lr"] - 0.01) * 20
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "s.json"), "w") as f:
                json.dump({"step": step, "score": score}, f)
            tune.report({"score": score, "lr": config["lr"]},
                        checkpoint=Checkpoint.from_directory(d))


def run_tiny_pbt(storage, name="tiny", log_config=True) -> str:
    pbt = PopulationBasedTraining(
        time_attr="training_iteration", perturbation_interval=3, seed=0, log_config=log_config,
        quantile_fraction=0.5, synch=True,
        hyperparam_mutations={"lr": tune.uniform(0.001, 0.05), "momentum": [0.8, 0.9, 0.99]})
    tune.Tuner(
        _train,
        param_space={"lr": tune.grid_search([0.001, 0.005, 0.01, 0.04]), "momentum": 0.9},
        tune_config=tune.TuneConfig(scheduler=pbt, metric="score", mode="max"),
        run_config=tune.RunConfig(name=name, storage_path=str(storage), verbose=0,
                                  stop={"training_iteration": 12}),
    ).fit()
    return os.path.join(str(storage), name)


@pytest.fixture(scope="module")
def real_exp(tmp_path_factory):
    return run_tiny_pbt(tmp_path_factory.mktemp("pbt"))


def _log_lines(exp_dir):
    with open(os.path.join(exp_dir, "pbt_global.txt")) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_real_run_events_match_the_global_log(real_exp):
    lines, events = _log_lines(real_exp), load_exploits(real_exp)
    exp = load_experiment(real_exp)
    assert len(exp.trials) == 4 and len(lines) >= 3
    assert len(events) == len(lines)
    for line, ev in zip(lines, events):
        assert exp.trial(ev.target_trial_id).index == int(line[0].split("_")[0])
        assert exp.trial(ev.donor_trial_id).index == int(line[1].split("_")[0])
        assert (ev.target_iteration, ev.donor_iteration, ev.old_config, ev.new_config) == (
            line[2], line[3], line[4], line[5])


def test_real_run_schedules_change_exactly_at_the_exploits(real_exp):
    exp = load_experiment(real_exp)
    for trial in exp.trials:
        expected, current = [], trial.initial_config
        for ev in exp.exploits_of(trial.trial_id):
            if ev.target_iteration == trial.rows[-1]["training_iteration"] and \
                    ev is exp.exploits_of(trial.trial_id)[-1]:
                break  # exploited as the run stopped: never trained with the new config
            if ev.new_config != current:
                expected.append((ev.donor_iteration, ev.new_config))
                current = ev.new_config
        assert hyperparam_schedule(trial.path) == [(0, trial.initial_config)] + expected


def test_real_run_lineage_is_a_chain_and_replays_like_the_policy_file(real_exp):
    exp = load_experiment(real_exp)
    for trial in exp.trials:
        chain = lineage(real_exp, trial.trial_id)
        for a, b in itertools.pairwise(chain):
            assert a.target_trial_id == b.donor_trial_id and a.order < b.order
            assert a.donor_iteration <= b.donor_iteration
        if chain:
            assert chain[-1] == exp.exploits_of(trial.trial_id)[-1]
            initial, policy = _load_policy(os.path.join(real_exp,
                                                        f"pbt_policy_{trial.trial_id}.txt"))
            ray_view: list = [(0, initial)]
            for it, config in policy:  # collapse as lineage_schedule does
                if ray_view[-1][0] == it:
                    ray_view.pop()
                if not ray_view or ray_view[-1][1] != config:
                    ray_view.append((it, config))
            assert lineage_schedule(real_exp, trial.trial_id) == ray_view


def test_real_run_family_tree_has_an_edge_per_log_line(real_exp):
    tree = family_tree(real_exp, metric="score")
    json.dumps(tree, allow_nan=False)
    lines = _log_lines(real_exp)
    index = {n["id"]: n["index"] for n in tree["nodes"]}
    assert len(tree["edges"]) == len(lines)
    assert [(index[e["target"]], index[e["source"]], e["target_iteration"],
             e["source_iteration"]) for e in tree["edges"]] == [
        (int(t.split("_")[0]), int(d.split("_")[0]), ti, di) for t, d, ti, di, _, _ in lines]
    assert all(n["iterations"] == 12 for n in tree["nodes"])


def test_without_the_log_the_journal_gives_the_same_exploits(real_exp, tmp_path):
    copy = str(tmp_path / "nolog")
    shutil.copytree(real_exp, copy)
    os.remove(os.path.join(copy, "pbt_global.txt"))

    def key(e):
        return (e.target_trial_id, e.donor_trial_id, e.target_iteration, e.donor_iteration,
                json.dumps(e.old_config, sort_keys=True), json.dumps(e.new_config, sort_keys=True))

    assert sorted(map(key, load_exploits(copy))) == sorted(map(key, load_exploits(real_exp)))


def test_log_config_false_still_has_lineage_from_the_journal(tmp_path):
    exp = run_tiny_pbt(tmp_path, name="nolog", log_config=False)
    assert not os.path.exists(os.path.join(exp, "pbt_global.txt"))
    events = load_exploits(exp)
    assert events and all(e.new_config and e.old_config for e in events)
    for ev in events:
        trial = load_experiment(exp).trial(ev.target_trial_id)
        assert (ev.donor_iteration, ev.new_config) in hyperparam_schedule(trial.path) or \
            ev.target_iteration == 12


def test_a_rerun_under_the_same_name_only_shows_the_latest_run(tmp_path):
    run_tiny_pbt(tmp_path, name="same")
    first = len(_log_lines(os.path.join(tmp_path, "same")))
    exp_dir = run_tiny_pbt(tmp_path, name="same")
    exp = load_experiment(exp_dir)
    assert len(exp.trials) == 4 and len({t.trial_id[:5] for t in exp.trials}) == 1
    assert len(exp.exploits) == len(_log_lines(exp_dir)) - first
    assert {e.target_trial_id for e in exp.exploits} <= {t.trial_id for t in exp.trials}
