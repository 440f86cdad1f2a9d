"""PBT toy workload: Ray Tune's triangle-wave ``pbt_function``, 8 trials until ``done``.

    python bench/workloads/pbt_function.py --framework poptune|ray [--num-to-keep N]
                                           [--backend local|ray|dask]

The trainable is the example's own ``pbt_function``, not a copy: for Ray it is imported from
the installed package (``ray.tune.examples.pbt_function``), for poptune from the repository's
``examples/pbt_function.py`` (the same function with the imports swapped). The experiment is
the example's ``run_tune_pbt()``: PBT on ``training_iteration`` with ``perturbation_interval``
5, ``checkpoint_interval`` 5, ``stop={"done": True, "training_iteration": 1000}``,
``num_samples=8``, ``reuse_actors=True``, ``fail_fast=True``,
``checkpoint_score_attribute="mean_accuracy"``. One deliberate change: ``num_to_keep`` is not
set by default (the shipped ``num_to_keep=2`` crashes Ray Tune 2.60, because PBT restores
from a checkpoint that was already deleted); ``--num-to-keep 2`` puts it back.

Ray: ``ray.init(num_cpus=2)`` (as the example's smoke test does; the machine has 2 CPUs).
poptune: local engine (2 workers on this machine), or ``--backend ray|dask`` (the cluster
address from ``POPTUNE_ADDRESS``, see backends_overhead.py).

Prints one JSON line: results reported (counted by a Callback), exploits (lines in
``pbt_global.txt``), trials whose last result has ``done=True``, best ``mean_accuracy``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAME = "pbt_function_api_example"


def _load_poptune_example():
    """``examples/pbt_function.py`` as module ``poptune_example_pbt_function``."""
    path = os.path.join(ROOT, "examples", "pbt_function.py")
    spec = importlib.util.spec_from_file_location("poptune_example_pbt_function", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    # The module is not importable by name in the worker processes: ship it by value, as
    # cloudpickle does for a function defined in the user's own script.
    import cloudpickle

    cloudpickle.register_pickle_by_value(mod)
    return mod


def _experiment(tune, PopulationBasedTraining, fn, storage, num_to_keep, counter, backend):
    pbt = PopulationBasedTraining(
        time_attr="training_iteration",
        perturbation_interval=5,
        hyperparam_mutations={"lr": tune.uniform(0.0001, 0.02), "some_other_factor": [1, 2]},
    )
    tc_kwargs = {"backend": backend} if backend else {}
    return tune.Tuner(
        fn,
        run_config=tune.RunConfig(
            name=NAME, verbose=False, storage_path=storage,
            stop={"done": True, "training_iteration": 1000},
            failure_config=tune.FailureConfig(fail_fast=True),
            checkpoint_config=tune.CheckpointConfig(
                checkpoint_score_attribute="mean_accuracy", num_to_keep=num_to_keep),
            callbacks=[counter],
        ),
        tune_config=tune.TuneConfig(scheduler=pbt, metric="mean_accuracy", mode="max",
                                    num_samples=8, reuse_actors=True, **tc_kwargs),
        param_space={"lr": 0.0001, "some_other_factor": 1, "checkpoint_interval": 5},
    )


def _counter(Callback):
    class Count(Callback):
        def __init__(self):
            self.n = 0

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.n += 1

    return Count()


def _summary(grid, counter, storage) -> dict:
    glob_path = os.path.join(storage, NAME, "pbt_global.txt")
    exploits = 0
    if os.path.exists(glob_path):
        with open(glob_path) as f:
            exploits = sum(1 for line in f if line.strip())
    # The trainable's own ``done`` is ``mean_accuracy > 200``. Ray Tune sets ``done=True`` in
    # every terminated trial's last result, whatever the trainable said, so it is recomputed.
    accs = [(r.metrics or {}).get("mean_accuracy") for r in grid]
    done = sum(1 for r, a in zip(grid, accs) if r.error is None and a is not None and a > 200)
    final_accs = accs
    accs = [a for a in accs if a is not None]
    iters = [(r.metrics or {}).get("training_iteration") for r in grid]
    return {"n_results": counter.n, "exploits": exploits, "trials": len(grid),
            "trials_done": done, "n_errors": sum(1 for r in grid if r.error is not None),
            "errors": [str(r.error)[:300] for r in grid if r.error is not None][:3],
            "best": max(accs) if accs else None, "final_iterations": iters,
            "final_accuracies": final_accs}


def run_poptune(args, storage) -> dict:
    t0 = time.perf_counter()
    import poptune as tune
    from poptune.schedulers import PopulationBasedTraining

    fn = _load_poptune_example().pbt_function
    t_import = time.perf_counter() - t0
    counter = _counter(tune.Callback)
    tuner = _experiment(tune, PopulationBasedTraining, fn, storage, args.num_to_keep, counter,
                        args.backend)
    t1 = time.perf_counter()
    grid = tuner.fit()
    t_fit = time.perf_counter() - t1
    return {"import_s": t_import, "fit_s": t_fit, **_summary(grid, counter, storage),
            "versions": _common.versions("poptune")}


def run_ray(args, storage) -> dict:
    t0 = time.perf_counter()
    import ray
    from ray import tune
    from ray.tune.examples.pbt_function import pbt_function
    from ray.tune.schedulers import PopulationBasedTraining

    t_import = time.perf_counter() - t0
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    t_init = time.perf_counter() - t0 - t_import
    counter = _counter(tune.Callback)
    tuner = _experiment(tune, PopulationBasedTraining, pbt_function, storage, args.num_to_keep,
                        counter, None)
    t1 = time.perf_counter()
    try:
        grid = tuner.fit()
    except Exception as exc:  # noqa: BLE001 - e.g. the num_to_keep=2 crash: report it
        return {"import_s": t_import, "ray_init_s": t_init,
                "fit_s": time.perf_counter() - t1, "crashed": f"{type(exc).__name__}: "
                f"{str(exc)[:500]}", "n_results": counter.n,
                "versions": _common.versions("ray")}
    t_fit = time.perf_counter() - t1
    return {"import_s": t_import, "ray_init_s": t_init, "fit_s": t_fit,
            **_summary(grid, counter, storage), "versions": _common.versions("ray")}


RUNNERS = {"poptune": run_poptune, "ray": run_ray}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--framework", choices=sorted(RUNNERS), required=True)
    p.add_argument("--num-to-keep", type=int, default=None)
    p.add_argument("--backend", choices=("local", "ray", "dask"), default=None,
                   help="poptune backend (default: TuneConfig's default, i.e. local)")
    p.add_argument("--storage", default=None)
    p.add_argument("--storage-parent", default=None)
    args = p.parse_args(argv)
    storage = args.storage or tempfile.mkdtemp(prefix=f"bench_pbtfn_{args.framework}_",
                                                  dir=args.storage_parent)
    try:
        out = RUNNERS[args.framework](args, storage)
        _common.emit({"workload": "pbt_function", "framework": args.framework,
                      "backend": args.backend, "num_to_keep": args.num_to_keep,
                      "storage": storage, **out})
    finally:
        if args.storage is None:
            _common.discard(storage)
    if args.framework == "ray":
        import ray

        ray.shutdown()


if __name__ == "__main__":
    main()
