"""Script trials (``poptune.script``) end to end, with real worker processes and scripts."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

import poptune as tune
from poptune.exceptions import ScriptError, TuneConfigError
from poptune.schedulers import (
    ASHAScheduler, FIFOScheduler, PopulationBasedTraining, SchedulerDecision,
)

# A script that counts steps, checkpoints every step into POPTUNE_CHECKPOINT_DIR, resumes from
# it, and says (as metrics) which trial's checkpoint it resumed from.
COUNTER = """
import argparse, json, os
from poptune import script_reporter as pt

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float)
parser.add_argument("--steps", type=int, default=4)
args, _ = parser.parse_known_args()
trial = os.environ["POPTUNE_TRIAL_ID"]
with open(os.path.join(os.environ["POPTUNE_TRIAL_DIR"], "pids.txt"), "a") as f:
    f.write(f"{os.getpid()}\\n")
path = os.path.join(pt.checkpoint_dir(), "state.json")
state, extra = {"trial": trial, "step": 0}, {}
if os.path.exists(path):
    with open(path) as f:
        state = json.load(f)
    extra = {"restored_from": state["trial"], "restored_step": state["step"]}
print("starting at step", state["step"])
for step in range(state["step"] + 1, args.steps + 1):
    with open(path, "w") as f:
        json.dump({"trial": trial, "step": step}, f)
    pt.script_report(score=args.lr * step, step=step, checkpoint=True, **extra)
"""


def write(tmp_path, body, name="train.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def fit(trainable, tmp_path, param_space, *, stop=None, name="exp", **tune_kw):
    return tune.Tuner(
        trainable, param_space=param_space, tune_config=tune.TuneConfig(**tune_kw),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "results"), name=name,
                                  verbose=0, stop=stop),
    ).fit()


def pids_of(result):
    with open(os.path.join(result.path, "pids.txt")) as f:
        return [int(line) for line in f if line.strip()]


def assert_dead(pids):
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_fifo_runs_a_script_per_trial_with_args_checkpoints_and_logs(tmp_path):
    trainable = tune.script(f"python {write(tmp_path, COUNTER)} --steps 3")
    grid = fit(trainable, tmp_path, {"lr": tune.grid_search([0.1, 0.2])},
               metric="score", mode="max")
    assert grid.num_errors == 0 and grid.num_terminated == 2
    best = grid.get_best_result()
    assert best.config == {"lr": 0.2}
    assert list(best.metrics_dataframe["step"]) == [1, 2, 3]
    assert best.metrics["score"] == pytest.approx(0.6)
    with best.checkpoint.as_directory() as d:  # the copy taken with the last report
        assert json.load(open(os.path.join(d, "state.json")))["step"] == 3
    stdout = open(os.path.join(best.path, "stdout.txt")).read()
    assert "starting at step 0" in stdout and "[poptune-metric]:" in stdout
    assert os.path.exists(os.path.join(best.path, "stderr.txt"))
    assert_dead(pids_of(grid[0]) + pids_of(grid[1]))


def test_nested_config_reaches_the_script_as_json(tmp_path):
    body = """
    import argparse, json
    from poptune import script_reporter as pt
    parser = argparse.ArgumentParser()
    parser.add_argument("--opt", type=json.loads)
    parser.add_argument("--name")
    args = parser.parse_args()
    cfg = pt.config()
    pt.script_report(lr=cfg["opt"]["lr"], arg_lr=args.opt["lr"], name=args.name,
                     momentum=cfg["opt"]["momentum"])
    """
    grid = fit(tune.script(["python", write(tmp_path, body)]), tmp_path,
               {"opt": {"lr": tune.grid_search([0.5]), "momentum": 0.9}, "name": "sgd"})
    r = grid[0]
    assert r.error is None, r.error
    assert (r.metrics["lr"], r.metrics["arg_lr"], r.metrics["momentum"], r.metrics["name"]) == (
        0.5, 0.5, 0.9, "sgd")


def test_asha_stops_a_script_at_its_rung_and_the_process_with_it(tmp_path):
    trainable = tune.script(f"python {write(tmp_path, COUNTER)} --steps 6")
    # one trial at a time, best first: each later trial falls below the rung's cutoff
    grid = fit(trainable, tmp_path, {"lr": tune.grid_search([0.4, 0.3, 0.2])},
               metric="score", mode="max", max_concurrent_trials=1,
               scheduler=ASHAScheduler(max_t=6, grace_period=1, reduction_factor=2))
    assert grid.num_errors == 0
    iters = {r.config["lr"]: r.metrics["training_iteration"] for r in grid}
    assert iters[0.4] == 6 and iters[0.3] < 6 and iters[0.2] < 6
    assert_dead([pid for r in grid for pid in pids_of(r)])


def test_pbt_exploit_restarts_the_script_from_the_donors_checkpoint(tmp_path):
    trainable = tune.script(f"python {write(tmp_path, COUNTER)} --steps 6")
    pbt = PopulationBasedTraining(
        time_attr="training_iteration", perturbation_interval=2, quantile_fraction=0.5,
        hyperparam_mutations={"lr": [0.1, 0.2, 0.3, 0.4]}, synch=True, seed=0)
    grid = fit(trainable, tmp_path, {"lr": tune.grid_search([0.1, 0.4])},
               metric="score", mode="max", scheduler=pbt,
               stop={"training_iteration": 12})  # bounds the run if a restart lost its state
    assert grid.num_errors == 0
    by_tag = {}
    for r in grid:
        by_tag[os.path.basename(r.path).split("_", 3)[3].rsplit("_", 2)[0]] = r
    with open(os.path.join(grid.experiment_path, "pbt_global.txt")) as f:
        exploits = [json.loads(line) for line in f if line.strip()]
    checked = 0
    for target_tag, clone_tag, _, clone_iter, _, _ in exploits:
        if clone_iter >= 6:
            continue  # the recipient restarts with nothing left to do
        recipient, donor = by_tag[target_tag], by_tag[clone_tag]
        df = recipient.metrics_dataframe
        seen = df[df["restored_from"] == donor.metrics["trial_id"]]
        # the recipient's script found the donor's checkpoint of that iteration
        assert clone_iter in set(seen["restored_step"]), (target_tag, clone_tag, clone_iter)
        checked += 1
    assert checked >= 1, exploits
    assert_dead([pid for r in grid for pid in pids_of(r)])


class PauseOnceAtTwo(FIFOScheduler):
    def __init__(self) -> None:
        super().__init__()
        self.paused: set[str] = set()

    def on_trial_result(self, trial, result):
        if result["training_iteration"] == 2 and trial.trial_id not in self.paused:
            self.paused.add(trial.trial_id)
            return SchedulerDecision.PAUSE
        return SchedulerDecision.CONTINUE


def test_pause_stops_the_script_and_resume_restarts_it_from_its_checkpoint(tmp_path):
    trainable = tune.script(f"python {write(tmp_path, COUNTER)} --steps 4")
    grid = fit(trainable, tmp_path, {"lr": 0.1}, scheduler=PauseOnceAtTwo())
    r = grid[0]
    assert r.error is None, r.error
    df = r.metrics_dataframe
    assert list(df["step"]) == [1, 2, 3, 4]
    assert list(df["training_iteration"]) == [1, 2, 3, 4]
    assert list(df["restored_step"].fillna(0)) == [0, 0, 2, 2]
    assert len(pids_of(r)) == 2  # two launches
    assert open(os.path.join(r.path, "stdout.txt")).read().count("starting at step") == 2
    assert_dead(pids_of(r))


ERRORS = """
import sys, os
mode = sys.argv[sys.argv.index("--mode") + 1]
if mode == "crash":
    print("about to fail")
    sys.stderr.write("Traceback: something broke (marker-123)\\n")
    sys.exit(3)
if mode == "garbage":
    print('[poptune-metric]: {"loss": 0.1')
if mode == "empty_checkpoint":
    print('[poptune-metric]: {"loss": 0.1, "checkpoint": true}')
"""


def test_crash_garbage_silence_and_a_missing_checkpoint_are_clear_trial_errors(tmp_path):
    modes = ["crash", "garbage", "silent", "empty_checkpoint"]
    grid = fit(tune.script(f"python {write(tmp_path, ERRORS)}"), tmp_path,
               {"mode": tune.grid_search(modes)})
    errors = {r.config["mode"]: r.error for r in grid}
    assert all(isinstance(e, ScriptError) for e in errors.values()), errors
    crash = str(errors["crash"])
    assert "exited with code 3" in crash and "marker-123" in crash
    assert """'[poptune-metric]: {"loss": 0.1'""" in str(errors["garbage"])
    assert "without reporting a metric" in str(errors["silent"])
    assert "silence_ok=True" in str(errors["silent"])
    assert "checkpoint directory" in str(errors["empty_checkpoint"])


def test_silence_ok_lets_a_script_report_nothing(tmp_path):
    grid = fit(tune.script(f"python {write(tmp_path, ERRORS)}", silence_ok=True), tmp_path,
               {"mode": "silent"})
    assert grid[0].error is None


def test_syne_tune_lines_and_checkpoint_arg(tmp_path):
    body = """
    import argparse, json, os, time
    parser = argparse.ArgumentParser()
    parser.add_argument("--x", type=int)
    parser.add_argument("--st_checkpoint_dir")
    args = parser.parse_args()
    for step in range(1, 5):
        if step == 1:  # saves once; reports every step
            with open(os.path.join(args.st_checkpoint_dir, "ck.txt"), "w") as f:
                f.write(str(step))
        print("[tune-metric]: " + json.dumps({"y": args.x * step, "st_worker_iter": step - 1}),
              flush=True)
    """
    grid = fit(tune.script(f"python {write(tmp_path, body)}", checkpoint_arg="st_checkpoint_dir"),
               tmp_path, {"x": 2})
    r = grid[0]
    assert r.error is None, r.error
    df = r.metrics_dataframe
    assert list(df["y"]) == [2, 4, 6, 8]
    # the directory is recorded with the first line that sees it changed, not again
    assert list(df["checkpoint_dir_name"].notna()) == [True, False, False, False]
    with r.checkpoint.as_directory() as d:
        assert open(os.path.join(d, "ck.txt")).read() == "1"


def test_a_script_that_ignores_sigterm_is_killed_when_its_trial_stops(tmp_path):
    body = """
    import os, signal, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with open(os.path.join(os.environ["POPTUNE_TRIAL_DIR"], "pids.txt"), "a") as f:
        f.write(f"{os.getpid()}\\n")
    step = 0
    while True:  # hand-printed lines: the script never waits for the driver
        step += 1
        print('[poptune-metric]: {"step": %d}' % step, flush=True)
        time.sleep(0.01)
    """
    grid = fit(tune.script(f"python {write(tmp_path, body)}", stop_grace_s=0.2), tmp_path,
               {}, stop={"training_iteration": 3})
    r = grid[0]
    assert r.error is None, r.error
    assert r.metrics["training_iteration"] == 3
    assert_dead(pids_of(r))


def test_bad_arguments_name_the_parameter(tmp_path):
    with pytest.raises(TuneConfigError, match="`command`"):
        tune.script("")
    with pytest.raises(TuneConfigError, match="no file"):
        tune.script(f"python {tmp_path / 'missing.py'}")
    with pytest.raises(TypeError, match="`command`"):
        tune.script(42)  # type: ignore[arg-type]
    with pytest.raises(TuneConfigError, match="`checkpoint_arg`"):
        tune.script("echo", checkpoint_arg="--st_checkpoint_dir")
    with pytest.raises(TypeError, match="`env`"):
        tune.script("echo", env={"A": 1})  # type: ignore[dict-item]
    with pytest.raises(TuneConfigError, match="`cwd`"):
        tune.script("echo", cwd=str(tmp_path / "nope"))


def test_a_command_that_cannot_start_is_a_trial_error(tmp_path):
    grid = fit(tune.script("no-such-command-xyz --flag"), tmp_path, {})
    assert isinstance(grid[0].error, ScriptError)
    assert "no-such-command-xyz" in str(grid[0].error)


def test_script_outside_a_trial_is_a_clear_error(tmp_path):
    with pytest.raises(ScriptError, match="runs only as a trial"):
        tune.script("echo hi")({})
