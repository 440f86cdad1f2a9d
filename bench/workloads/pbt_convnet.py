"""PBT ConvNet workload: the PBT guide's example (4 trials, ConvNet on the bundled digits).

    python bench/workloads/pbt_convnet.py --framework poptune|ray

Part 1 of "A Guide to Population Based Training with Tune": ``train_convnet`` (SGD on the
small ``ConvNet``, checkpoint every 5 steps), PBT on ``training_iteration`` with
``perturbation_interval=5``, ``hyperparam_mutations={"lr": uniform(0.0001, 1), "momentum":
[0.8, 0.9, 0.99]}``, ``stop={"mean_accuracy": 0.96, "training_iteration": 50}``,
``CheckpointConfig(checkpoint_score_attribute="mean_accuracy", num_to_keep=4)``,
``num_samples=4``, ``param_space={"lr": uniform(0.001, 1), "momentum": uniform(0.001, 1),
"checkpoint_interval": 5}``.

Like for like: both frameworks train the SAME model on the SAME data, namely
``poptune.examples.mnist_pytorch`` (``ConvNet``, ``get_data_loaders``, ``train_func``,
``test_func``: Ray's module's code on scikit-learn's digits upsampled to 28x28, no download).

* poptune: ``train_convnet`` imported from the repository's ``examples/pbt_convnet_example.py``
  (the guide's function with the imports swapped), local engine (2 workers).
* ray: the guide's ``train_convnet`` verbatim with ``from ray import tune`` (``tune.report``,
  ``tune.get_checkpoint``, ``tune.Checkpoint``), defined below; ``ray.init(num_cpus=2)``.

Prints one JSON line: fit time, best ``mean_accuracy`` (``get_best_result``), each trial's
last accuracy and iteration, exploits (lines in ``pbt_global.txt``).
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
NAME = "pbt_test"


def _load_poptune_example():
    path = os.path.join(ROOT, "examples", "pbt_convnet_example.py")
    spec = importlib.util.spec_from_file_location("poptune_example_pbt_convnet", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    import cloudpickle

    cloudpickle.register_pickle_by_value(mod)  # workers cannot import it by name
    return mod


def _ray_train_convnet():
    """The guide's ``train_convnet`` with ``from ray import tune`` (pickled by value)."""

    def train_convnet(config):
        import os
        import tempfile

        import torch
        import torch.optim as optim  # noqa: PLR0402 - the guide's import
        from ray import tune

        import poptune.examples.mnist_pytorch
        from poptune.examples.mnist_pytorch import ConvNet, get_data_loaders, test_func

        step = 1
        train_loader, test_loader = get_data_loaders()
        model = ConvNet()
        optimizer = optim.SGD(model.parameters(), lr=config.get("lr", 0.01),
                              momentum=config.get("momentum", 0.9))
        checkpoint = tune.get_checkpoint()
        if checkpoint:
            with checkpoint.as_directory() as checkpoint_dir:
                checkpoint_dict = torch.load(os.path.join(checkpoint_dir, "checkpoint.pt"))
            model.load_state_dict(checkpoint_dict["model_state_dict"])
            optimizer.load_state_dict(checkpoint_dict["optimizer_state_dict"])
            for param_group in optimizer.param_groups:
                if "lr" in config:
                    param_group["lr"] = config["lr"]
                if "momentum" in config:
                    param_group["momentum"] = config["momentum"]
            last_step = checkpoint_dict["step"]
            step = last_step + 1

        while True:
            poptune.examples.mnist_pytorch.train_func(model, optimizer, train_loader)
            acc = test_func(model, test_loader)
            metrics = {"mean_accuracy": acc, "lr": config["lr"]}
            if step % config["checkpoint_interval"] == 0:
                with tempfile.TemporaryDirectory() as tmpdir:
                    torch.save({"step": step, "model_state_dict": model.state_dict(),
                                "optimizer_state_dict": optimizer.state_dict()},
                               os.path.join(tmpdir, "checkpoint.pt"))
                    tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmpdir))
            else:
                tune.report(metrics)
            step += 1

    return train_convnet


def _tuner(tune, PopulationBasedTraining, fn, storage, counter):
    scheduler = PopulationBasedTraining(
        time_attr="training_iteration", perturbation_interval=5,
        metric="mean_accuracy", mode="max",
        hyperparam_mutations={"lr": tune.uniform(0.0001, 1), "momentum": [0.8, 0.9, 0.99]},
    )
    return tune.Tuner(
        fn,
        run_config=tune.RunConfig(
            name=NAME, storage_path=storage, verbose=0, callbacks=[counter],
            stop={"mean_accuracy": 0.96, "training_iteration": 50},
            checkpoint_config=tune.CheckpointConfig(checkpoint_score_attribute="mean_accuracy",
                                                    num_to_keep=4),
        ),
        tune_config=tune.TuneConfig(scheduler=scheduler, num_samples=4),
        param_space={"lr": tune.uniform(0.001, 1), "momentum": tune.uniform(0.001, 1),
                     "checkpoint_interval": 5},
    )


def _counter(Callback):
    class Count(Callback):
        def __init__(self):
            self.n = 0

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.n += 1

    return Count()


def _summary(grid, counter, storage) -> dict:
    best = grid.get_best_result(metric="mean_accuracy", mode="max")
    glob_path = os.path.join(storage, NAME, "pbt_global.txt")
    exploits = 0
    if os.path.exists(glob_path):
        with open(glob_path) as f:
            exploits = sum(1 for line in f if line.strip())
    return {"best": best.metrics.get("mean_accuracy"), "best_config": best.config,
            "final_accuracies": [(r.metrics or {}).get("mean_accuracy") for r in grid],
            "final_iterations": [(r.metrics or {}).get("training_iteration") for r in grid],
            "n_results": counter.n, "exploits": exploits,
            "n_errors": sum(1 for r in grid if r.error is not None),
            "errors": [str(r.error)[:300] for r in grid if r.error is not None][:3]}


def run_poptune(args, storage) -> dict:
    t0 = time.perf_counter()
    import poptune as tune
    from poptune.schedulers import PopulationBasedTraining

    fn = _load_poptune_example().train_convnet
    t_import = time.perf_counter() - t0
    counter = _counter(tune.Callback)
    t1 = time.perf_counter()
    grid = _tuner(tune, PopulationBasedTraining, fn, storage, counter).fit()
    t_fit = time.perf_counter() - t1
    return {"import_s": t_import, "fit_s": t_fit, **_summary(grid, counter, storage),
            "versions": _common.versions("poptune", "torch")}


def run_ray(args, storage) -> dict:
    t0 = time.perf_counter()
    import ray
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining

    t_import = time.perf_counter() - t0
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    t_init = time.perf_counter() - t0 - t_import
    counter = _counter(tune.Callback)
    t1 = time.perf_counter()
    grid = _tuner(tune, PopulationBasedTraining, _ray_train_convnet(), storage, counter).fit()
    t_fit = time.perf_counter() - t1
    return {"import_s": t_import, "ray_init_s": t_init, "fit_s": t_fit,
            **_summary(grid, counter, storage), "versions": _common.versions("ray", "torch")}


RUNNERS = {"poptune": run_poptune, "ray": run_ray}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--framework", choices=sorted(RUNNERS), required=True)
    p.add_argument("--storage", default=None)
    p.add_argument("--storage-parent", default=None)
    args = p.parse_args(argv)
    storage = args.storage or tempfile.mkdtemp(prefix=f"bench_convnet_{args.framework}_",
                                                  dir=args.storage_parent)
    try:
        out = RUNNERS[args.framework](args, storage)
        _common.emit({"workload": "pbt_convnet", "framework": args.framework,
                      "storage": storage, **out})
    finally:
        if args.storage is None:
            _common.discard(storage)
    if args.framework == "ray":
        import ray

        ray.shutdown()


if __name__ == "__main__":
    main()
