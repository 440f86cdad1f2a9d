"""The overhead workload through Syne Tune's API: 200 no-op trials x 10 reports, 2 workers.

    python bench/workloads/syne_tune_overhead.py --framework poptune.syne_tune|syne_tune
        [--trials 200] [--reports 10] [--sleep-time 0]

The same script body runs on either import: ``PythonBackend`` with a no-op function that
calls ``Reporter()`` 10 times, ``RandomSearch``, ``n_workers=2`` and
``StoppingCriterion(max_num_trials_completed=trials - 1)`` (Syne Tune stops once *more
than* the bound completed, so exactly ``trials`` complete). Syne Tune runs with
``sleep_time=0`` (its default 5 s polls). Prints one JSON line when ``run()`` returns;
times are from process start (interpreter start and imports included).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import tempfile
import time

T0 = time.perf_counter()


def noop(x):
    from importlib import import_module
    import os as _os

    Reporter = import_module(_os.environ["BENCH_ST_PACKAGE"]).Reporter
    report = Reporter()
    for i in range(10):
        report(score=x + i)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--framework", choices=["poptune.syne_tune", "syne_tune"],
                   default="poptune.syne_tune")
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--sleep-time", type=float, default=0.0)
    args = p.parse_args()
    pkg = args.framework
    os.environ["BENCH_ST_PACKAGE"] = pkg
    os.environ.setdefault("POPTUNE_SYNE_VERBOSE", "0")
    folder = tempfile.mkdtemp(prefix="bench_syne_")
    os.environ["SYNETUNE_FOLDER"] = folder
    st = importlib.import_module(pkg)
    backend_mod = importlib.import_module(f"{pkg}.backend")  # 0.16: not .python_backend
    space_mod = importlib.import_module(f"{pkg}.config_space")
    baselines = importlib.import_module(f"{pkg}.optimizer.baselines")
    t_import = time.perf_counter() - T0
    space = {"x": space_mod.uniform(0, 1)}
    if pkg == "syne_tune":  # 0.16: metrics=[...] and do_minimize
        scheduler = baselines.RandomSearch(space, metrics=["score"], do_minimize=False)
    else:
        scheduler = baselines.RandomSearch(space, metric="score", mode="max")
    tuner = st.Tuner(trial_backend=backend_mod.PythonBackend(noop, space),
                     scheduler=scheduler,
                     stop_criterion=st.StoppingCriterion(
                         max_num_trials_completed=args.trials - 1),
                     n_workers=2, sleep_time=args.sleep_time,
                     print_update_interval=3600, results_update_interval=3600)
    t1 = time.perf_counter()
    tuner.run()
    t_run = time.perf_counter() - t1
    total = time.perf_counter() - T0
    exp = importlib.import_module(f"{pkg}.experiments").load_experiment(tuner.name)
    df = exp.results
    print(json.dumps({"framework": pkg, "total_s": round(total, 2), "import_s": round(t_import, 2),
                      "run_s": round(t_run, 2), "trials": int(df.trial_id.nunique()),
                      "results": int(len(df)),
                      "completed": int((df.groupby("trial_id").size() == 10).sum())}))
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
