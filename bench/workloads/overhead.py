"""Overhead workload: 200 trials x 10 ``report`` calls of a no-op function, 2 at a time.

    python bench/workloads/overhead.py --framework poptune|ray|optuna [--trials N]

Prints one JSON line with the best result the moment it is known. bench/run.py times this
script from subprocess start (interpreter start and imports included) to that line.

* poptune: ``Tuner(..., TuneConfig(num_samples=N, max_concurrent_trials=2, metric, mode),
  RunConfig(verbose=0, storage_path=<tmpdir>))`` with ``param_space={"x": uniform(0, 1)}``.
* ray: the same script with ``from ray import tune``, ``ray.init(num_cpus=2)`` and
  ``tune.with_resources(fn, {"cpu": 1})``.
* optuna: ``study.optimize`` in-process (n_jobs=1), each trial calling ``trial.report`` 10
  times. Optuna has no worker processes: this is the in-process floor, not a like-for-like
  engine comparison.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

METRIC = "score"


def run_poptune(args: argparse.Namespace, storage: str) -> dict:
    t0 = time.perf_counter()
    import poptune as tune

    t_import = time.perf_counter() - t0
    reports = args.reports

    def trainable(config):
        x = config["x"]
        for i in range(reports):
            tune.report({METRIC: x + i})

    scheduler = None
    if args.scheduler == "asha":  # poptune only: its state grows with every trial
        from poptune.schedulers import ASHAScheduler

        scheduler = ASHAScheduler(max_t=reports, grace_period=1, reduction_factor=2)
    tuner = tune.Tuner(
        trainable,
        param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(num_samples=args.trials, metric=METRIC, mode="max",
                                    max_concurrent_trials=args.concurrency,
                                    scheduler=scheduler),
        run_config=tune.RunConfig(verbose=0, storage_path=storage),
    )
    t1 = time.perf_counter()
    grid = tuner.fit()
    best = grid.get_best_result()
    if args.dataframe:
        assert len(grid.get_dataframe()) == args.trials
    t_fit = time.perf_counter() - t1
    journal = os.path.join(grid.experiment_path, "journal.jsonl")
    return {"best": best.metrics[METRIC], "best_config": best.config, "import_s": t_import,
            "fit_s": t_fit, "n_results": len(grid),
            "n_errors": sum(1 for r in grid if r.error is not None),
            "journal_bytes": os.path.getsize(journal) if os.path.exists(journal) else None}


def run_ray(args: argparse.Namespace, storage: str) -> dict:
    t0 = time.perf_counter()
    import ray
    from ray import tune

    t_import = time.perf_counter() - t0
    reports = args.reports

    def trainable(config):
        x = config["x"]
        for i in range(reports):
            tune.report({METRIC: x + i})

    # address="local": always a fresh cluster of our own, never one that `ray start` left running
    ray.init(address="local", num_cpus=args.concurrency, include_dashboard=False,
             log_to_driver=False)
    t_init = time.perf_counter() - t0 - t_import
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(num_samples=args.trials, metric=METRIC, mode="max",
                                    max_concurrent_trials=args.concurrency),
        run_config=tune.RunConfig(verbose=0, storage_path=storage),
    )
    t1 = time.perf_counter()
    grid = tuner.fit()
    best = grid.get_best_result()
    if args.dataframe:
        assert len(grid.get_dataframe()) == args.trials
    t_fit = time.perf_counter() - t1
    return {"best": best.metrics[METRIC], "best_config": best.config, "import_s": t_import,
            "ray_init_s": t_init, "fit_s": t_fit, "n_results": len(grid),
            "n_errors": sum(1 for r in grid if r.error is not None)}


def run_optuna(args: argparse.Namespace, storage: str) -> dict:
    t0 = time.perf_counter()
    import optuna

    t_import = time.perf_counter() - t0
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    reports = args.reports

    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        value = x
        for i in range(reports):
            value = x + i
            trial.report(value, i)
        return value

    sampler = (optuna.samplers.RandomSampler(seed=0) if args.optuna_sampler == "random"
               else None)  # None: Optuna's default, TPE (its cost grows with the trials seen)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    t1 = time.perf_counter()
    study.optimize(objective, n_trials=args.trials)
    if args.dataframe:
        assert len(study.trials_dataframe()) == args.trials
    t_fit = time.perf_counter() - t1
    return {"best": study.best_value, "best_config": study.best_params, "import_s": t_import,
            "fit_s": t_fit, "n_results": len(study.trials), "n_errors": 0}


RUNNERS = {"poptune": run_poptune, "ray": run_ray, "optuna": run_optuna}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--framework", choices=sorted(RUNNERS), required=True)
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--reports", type=int, default=10)
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--optuna-sampler", choices=["tpe", "random"], default="tpe",
                   help="Optuna's sampler: its default TPE, or random search as poptune's "
                        "default searcher does (for thousands of trials)")
    p.add_argument("--dataframe", action="store_true",
                   help="also build the results table (ResultGrid.get_dataframe(), Optuna's "
                        "study.trials_dataframe()) before printing the result")
    p.add_argument("--scheduler", choices=["fifo", "asha"], default="fifo",
                   help="poptune only: ASHA (max_t = reports) instead of FIFO")
    p.add_argument("--storage", default=None, help="results directory (default: a fresh tmpdir)")
    p.add_argument("--storage-parent", default=None,
                   help="where the fresh tmpdir is made (default: the system's, e.g. /tmp); "
                        "/dev/shm takes the disk out of the measurement")
    args = p.parse_args(argv)
    storage = args.storage or tempfile.mkdtemp(prefix=f"bench_{args.framework}_",
                                                  dir=args.storage_parent)
    try:
        out = RUNNERS[args.framework](args, storage)
        _common.emit({"workload": "overhead", "framework": args.framework,
                      "trials": args.trials, "reports": args.reports,
                      "concurrency": args.concurrency, "dataframe": args.dataframe,
                      "storage": storage, **out})
    finally:
        if args.storage is None:
            _common.discard(storage)
    if args.framework == "ray":
        import ray

        ray.shutdown()


if __name__ == "__main__":
    main()
