"""One small experiment whose public-API outcome is printed as one JSON line.

    python side_by_side_script.py ray|poptune STORAGE_DIR

Run on Ray Tune 2.60 (``ray``) and on poptune (``poptune``) by
tests/compat/test_side_by_side.py: result keys, ``Result``/``ResultGrid`` fields, checkpoint
handling (``num_to_keep``, scores, names, contents), errors, restore, and ``fail_fast``.
"""
import glob
import json
import os
import sys
import tempfile
import time

if sys.argv[1] == "ray":
    import ray
    from ray import tune
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
else:
    import poptune as tune
STORAGE = sys.argv[2]


def train(config):
    if config["x"] < 0:
        raise ValueError("negative x")
    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt:
        with ckpt.as_directory() as d:
            start = json.load(open(os.path.join(d, "state.json")))["it"]
    for it in range(start, 4):
        metrics = {"score": config["x"] * (it + 1), "it": it}
        if it % 2 == 1:
            with tempfile.TemporaryDirectory() as d:
                json.dump({"it": it + 1}, open(os.path.join(d, "state.json"), "w"))
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))
        else:
            tune.report(metrics)


def fail_or_sleep(config):
    if config["i"] == 0:
        time.sleep(1)
        raise ValueError("boom")
    time.sleep(60)
    tune.report({"score": 1})


out = {}
grid = tune.Tuner(
    train, param_space={"x": tune.grid_search([1, 2, -1])},
    tune_config=tune.TuneConfig(metric="score", mode="max"),
    run_config=tune.RunConfig(name="sbs", storage_path=STORAGE, verbose=0,
                              checkpoint_config=tune.CheckpointConfig(
                                  num_to_keep=1, checkpoint_score_attribute="score")),
).fit()
out["len"] = len(grid)
out["num_errors"] = grid.num_errors
out["num_terminated"] = grid.num_terminated
best = grid.get_best_result()
out["best_config"] = best.config
out["best_metrics_keys"] = sorted(best.metrics)
out["best_score"] = best.metrics["score"]
out["best_iteration"] = best.metrics["training_iteration"]
out["best_done"] = best.metrics.get("done")
out["best_config_in_metrics"] = best.metrics.get("config")
out["df_rows"] = len(best.metrics_dataframe)
out["df_has_score"] = "score" in best.metrics_dataframe.columns
out["checkpoint_name"] = os.path.basename(best.checkpoint.path)
out["checkpoint_files"] = sorted(os.listdir(best.checkpoint.path))
out["best_checkpoints"] = [(os.path.basename(c.path), m["score"])
                           for c, m in best.best_checkpoints]
out["trial_dir_checkpoints"] = sorted(os.path.basename(p) for p in
                                      glob.glob(os.path.join(best.path, "checkpoint_*")))
out["result_files"] = sorted(f for f in ("result.json", "progress.csv", "params.json",
                                         "params.pkl") if os.path.exists(os.path.join(best.path, f)))
errored = [r for r in grid if r.error is not None]
out["error_is_value_error"] = [isinstance(r.error, ValueError) for r in errored]
out["error_config"] = [r.config for r in errored]
out["errored_metrics_score"] = [r.metrics.get("score") for r in errored]
out["errors_len"] = len(grid.errors)
df = grid.get_dataframe()
out["grid_df_rows"] = len(df)
out["grid_df_has"] = sorted(c for c in ("score", "config/x", "trial_id", "training_iteration")
                            if c in df.columns)
out["best_by_min"] = grid.get_best_result(metric="score", mode="min").config
out["restored_config"] = tune.Tuner.restore(os.path.join(STORAGE, "sbs"), train).get_results(
    ).get_best_result(metric="score", mode="max").config

grid = tune.Tuner(
    fail_or_sleep, param_space={"i": tune.grid_search([0, 1])},
    run_config=tune.RunConfig(name="ff", storage_path=STORAGE, verbose=0,
                              failure_config=tune.FailureConfig(fail_fast=True)),
).fit()
by_i = {r.config["i"]: r for r in grid}
out["ff_len"] = len(grid)
out["ff_error"] = isinstance(by_i[0].error, ValueError)
out["ff_other_error"] = by_i[1].error is not None
out["ff_other_score"] = by_i[1].metrics.get("score")
print("JSON " + json.dumps(out, sort_keys=True, default=str))
