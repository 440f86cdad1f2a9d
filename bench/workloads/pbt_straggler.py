"""PBT quality: does every member of Ray's triangle toy reach ``done``, and how fast?

    python bench/workloads/pbt_straggler.py [--runs 20] [--ray-runs 6] [--frameworks poptune,ray]

Runs bench/workloads/pbt_function.py (Ray Tune's ``pbt_function.py`` experiment: 8 trials,
2 at a time, PBT every 5 iterations, ``stop={"done": True, "training_iteration": 1000}``,
``num_to_keep`` unset) ``--runs`` times on poptune's local engine and ``--ray-runs`` times on
Ray Tune, each run in its own process, interleaved (poptune, ray, poptune, ...) so both see
the same machine load. The toy draws its noise from the global random state, unseeded, as
in Ray's script: runs differ.

``--simulated``: poptune only, on the simulated backend (2 slots), in this process, runs
seeded 0, 1, ... (the global ``random``/``numpy`` state, PBT and ``TuneConfig``): the same
figures every time, in seconds per run, and no machine load in them.

Per run: whether every trial reached ``done`` (``mean_accuracy > 200``; a trial that did not
stops at iteration 1,000), the median over the 8 trials of the iterations each needed
(the trial's last ``training_iteration``), and the slowest trial. Then per framework: runs
with every trial done, the median of the per-run medians and the slowest trial overall.
Prints one line per run on stderr and one JSON line (``emit``) with everything on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LIMIT = 1000


def one_run(framework: str, python: str, timeout: float) -> dict:
    """One pbt_function.py run in a subprocess: its per-trial iterations and done flags."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env.pop(_common.DEFER_CLEANUP_ENV, None)  # each run deletes its own results
    t0 = time.perf_counter()
    proc = subprocess.run(
        [python, os.path.join(HERE, "pbt_function.py"), "--framework", framework],
        capture_output=True, text=True, env=env, timeout=timeout)
    wall = time.perf_counter() - t0
    record = None
    for line in proc.stdout.splitlines():
        if line.startswith("{") and '"bench"' in line:
            record = json.loads(line)
    if record is None or "final_iterations" not in record:
        tail = (record or {}).get("crashed") or proc.stderr[-500:]
        return {"framework": framework, "ok": False, "wall_s": wall, "error": tail}
    iters = [int(i) if i is not None else LIMIT for i in record["final_iterations"]]
    accs = record["final_accuracies"]
    done = [a is not None and a > 200 for a in accs]
    return {"framework": framework, "ok": True, "wall_s": round(wall, 1),
            "all_done": all(done) and len(done) == 8, "trials_done": sum(done),
            "median_iterations": statistics.median(iters), "slowest": max(iters),
            "iterations": sorted(iters), "exploits": record.get("exploits"),
            "fit_s": round(record.get("fit_s", 0.0), 1)}


def one_simulated_run(seed: int) -> dict:
    """The same experiment on the simulated backend, every random choice seeded by ``seed``."""
    import random
    import tempfile

    import numpy as np

    import pbt_function
    import poptune as tune
    from poptune.schedulers import PopulationBasedTraining

    fn = pbt_function._load_poptune_example().pbt_function
    random.seed(seed)
    np.random.seed(seed)
    storage = tempfile.mkdtemp(prefix="bench_pbt_straggler_sim_")
    try:
        pbt = PopulationBasedTraining(
            time_attr="training_iteration", perturbation_interval=5, seed=seed,
            hyperparam_mutations={"lr": tune.uniform(0.0001, 0.02),
                                  "some_other_factor": [1, 2]})
        t0 = time.perf_counter()
        grid = tune.Tuner(
            fn,
            run_config=tune.RunConfig(
                name=pbt_function.NAME, verbose=0, storage_path=storage,
                stop={"done": True, "training_iteration": LIMIT},
                checkpoint_config=tune.CheckpointConfig(
                    checkpoint_score_attribute="mean_accuracy")),
            tune_config=tune.TuneConfig(scheduler=pbt, metric="mean_accuracy", mode="max",
                                        num_samples=8, backend="simulated", seed=seed),
            param_space={"lr": 0.0001, "some_other_factor": 1, "checkpoint_interval": 5},
        ).fit()
        fit_s = time.perf_counter() - t0
    finally:
        _common.discard(storage)
    iters = [int(r.metrics["training_iteration"]) for r in grid]
    done = [r.metrics["mean_accuracy"] > 200 for r in grid]
    return {"framework": "poptune-simulated", "seed": seed, "ok": True, "all_done": all(done),
            "trials_done": sum(done), "median_iterations": statistics.median(iters),
            "slowest": max(iters), "iterations": sorted(iters), "fit_s": round(fit_s, 1)}


def summarize(runs: list[dict]) -> dict:
    ok = [r for r in runs if r["ok"]]
    if not ok:
        return {"runs": len(runs), "failed_runs": len(runs)}
    medians = [r["median_iterations"] for r in ok]
    return {"runs": len(ok), "failed_runs": len(runs) - len(ok),
            "runs_all_done": sum(r["all_done"] for r in ok),
            "median_of_medians": statistics.median(medians),
            "per_run_median_range": [min(medians), max(medians)],
            "slowest_trial": max(r["slowest"] for r in ok),
            "median_fit_s": statistics.median(r["fit_s"] for r in ok)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20, help="poptune runs (default 20)")
    p.add_argument("--ray-runs", type=int, default=6, help="Ray Tune runs (default 6: "
                   "about a minute each on 2 busy cores)")
    p.add_argument("--frameworks", default="poptune,ray")
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    p.add_argument("--simulated", action="store_true",
                   help="poptune on the simulated backend, seeded runs, in this process")
    args = p.parse_args(argv)
    if args.simulated:
        os.environ["POPTUNE_NUM_CPUS"] = "2"
        sim = [one_simulated_run(seed) for seed in range(args.runs)]
        for r in sim:
            print(f"seed {r['seed']:2}: all done {r['all_done']!s:5} median "
                  f"{r['median_iterations']:6} slowest {r['slowest']:4}", file=sys.stderr)
        _common.emit({"workload": "pbt_straggler", "backend": "simulated",
                      "summary": {"poptune-simulated": summarize(sim)}, "runs": sim,
                      "versions": _common.versions("poptune")})
        return
    frameworks = [f for f in args.frameworks.split(",") if f]
    wanted = {"poptune": args.runs, "ray": args.ray_runs}
    load_before = os.getloadavg()
    runs: dict[str, list[dict]] = {f: [] for f in frameworks}
    for i in range(max(wanted.get(f, 0) for f in frameworks)):
        for f in frameworks:
            if i < wanted.get(f, 0):
                r = one_run(f, args.python, args.timeout)
                runs[f].append(r)
                print(f"{f:8} run {i + 1:2}: " + (
                    f"all done {r['all_done']!s:5} median {r['median_iterations']:6} "
                    f"slowest {r['slowest']:4} iterations {r['iterations']} "
                    f"fit {r['fit_s']} s" if r["ok"] else f"FAILED {r['error']}"),
                    file=sys.stderr, flush=True)
    summary = {f: summarize(rs) for f, rs in runs.items()}
    for f, s in summary.items():
        print(f"{f}: {json.dumps(s)}", file=sys.stderr)
    _common.emit({"workload": "pbt_straggler", "summary": summary, "runs": runs,
                  "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
                  "versions": _common.versions("poptune", "ray")})


if __name__ == "__main__":
    main()
