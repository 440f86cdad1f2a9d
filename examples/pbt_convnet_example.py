#!/usr/bin/env python
"""The PBT guide's ConvNet example ("A Guide to Population Based Training with Tune") on poptune.

The guide's code is unchanged except for its imports (``import poptune as tune`` for
``from ray import tune``, ``poptune.examples.mnist_pytorch`` and ``poptune.schedulers`` for
the ``ray.tune`` modules) and the removal of ``ray.init()`` / ``ray.shutdown()``, which
poptune does not need. It runs in three parts, as in the guide:

1. PBT over 4 trials of ``train_convnet`` (SGD on a small ConvNet), stopping a trial at
   ``mean_accuracy`` 0.96 or 50 iterations;
2. inspection of the best result: its path, final config and learning curve (saved as
   ``best_trial_accuracy.png`` in the experiment directory, and shown on screen when
   matplotlib has an interactive backend);
3. a replay of one trial's PBT hyperparameter schedule from its ``pbt_policy_*.txt``.

The data is scikit-learn's digits upsampled to MNIST's 28x28 (no download); set
``POPTUNE_MNIST=real`` to train on the real MNIST (needs torchvision).

Usage::

    python examples/pbt_convnet_example.py [--smoke-test] [--storage-path DIR]

``DIR`` defaults to ``$POPTUNE_STORAGE_PATH``, else ``/tmp/poptune_results`` (the guide's
``/tmp/ray_results``).
"""

import argparse
import glob
import os
import tempfile

import torch
import torch.optim as optim

import poptune
import poptune as tune
from poptune.examples.mnist_pytorch import ConvNet, get_data_loaders, test_func
from poptune.schedulers import PopulationBasedTraining, PopulationBasedTrainingReplay


def train_convnet(config):
    # Create our data loaders, model, and optmizer.
    step = 1
    train_loader, test_loader = get_data_loaders()
    model = ConvNet()
    optimizer = optim.SGD(
        model.parameters(),
        lr=config.get("lr", 0.01),
        momentum=config.get("momentum", 0.9),
    )

    # Myabe resume from a checkpoint.
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as checkpoint_dir:
            checkpoint_dict = torch.load(os.path.join(checkpoint_dir, "checkpoint.pt"))

        # Load model state and iteration step from checkpoint.
        model.load_state_dict(checkpoint_dict["model_state_dict"])
        # Load optimizer state (needed since we're using momentum),
        # then set the `lr` and `momentum` according to the config.
        optimizer.load_state_dict(checkpoint_dict["optimizer_state_dict"])
        for param_group in optimizer.param_groups:
            if "lr" in config:
                param_group["lr"] = config["lr"]
            if "momentum" in config:
                param_group["momentum"] = config["momentum"]

        # Note: Make sure to increment the checkpointed step by 1 to get the current step.
        last_step = checkpoint_dict["step"]
        step = last_step + 1

    while True:
        poptune.examples.mnist_pytorch.train_func(model, optimizer, train_loader)
        acc = test_func(model, test_loader)
        metrics = {"mean_accuracy": acc, "lr": config["lr"]}

        # Every `checkpoint_interval` steps, checkpoint our current state.
        if step % config["checkpoint_interval"] == 0:
            with tempfile.TemporaryDirectory() as tmpdir:
                torch.save(
                    {
                        "step": step,
                        "model_state_dict": model.state_dict(),
                        "optimizer_state_dict": optimizer.state_dict(),
                    },
                    os.path.join(tmpdir, "checkpoint.pt"),
                )
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmpdir))
        else:
            tune.report(metrics)

        step += 1


def run_pbt(smoke_test, storage_path):
    """Part 1: the guide's scheduler and ``Tuner.fit()``."""
    perturbation_interval = 2 if smoke_test else 5
    scheduler = PopulationBasedTraining(
        time_attr="training_iteration",
        perturbation_interval=perturbation_interval,
        metric="mean_accuracy",
        mode="max",
        hyperparam_mutations={
            # distribution for resampling
            "lr": tune.uniform(0.0001, 1),
            # allow perturbations within this set of categorical values
            "momentum": [0.8, 0.9, 0.99],
        },
    )

    tuner = tune.Tuner(
        train_convnet,
        run_config=tune.RunConfig(
            name="pbt_test",
            # Stop when we've reached a threshold accuracy, or a maximum
            # training_iteration, whichever comes first
            stop={"mean_accuracy": 0.96, "training_iteration": 6 if smoke_test else 50},
            checkpoint_config=tune.CheckpointConfig(
                checkpoint_score_attribute="mean_accuracy",
                num_to_keep=4,
            ),
            storage_path=storage_path,
        ),
        tune_config=tune.TuneConfig(
            scheduler=scheduler,
            num_samples=4,
        ),
        param_space={
            "lr": tune.uniform(0.001, 1),
            "momentum": tune.uniform(0.001, 1),
            "checkpoint_interval": perturbation_interval,
        },
    )

    results_grid = tuner.fit()
    return results_grid


def inspect_results(results_grid, storage_path):
    """Part 2: the guide's "Checking the accuracy" cell; the plot is also saved as a PNG."""
    import matplotlib.pyplot as plt

    # Get the best trial result
    best_result = results_grid.get_best_result(metric="mean_accuracy", mode="max")

    # Print `path` where checkpoints are stored
    print("Best result path:", best_result.path)

    # Print the best trial `config` reported at the last iteration
    # NOTE: This config is just what the trial ended up with at the last iteration.
    # See the next section for replaying the entire history of configs.
    print("Best final iteration hyperparameter config:\n", best_result.config)

    # Plot the learning curve for the best trial
    df = best_result.metrics_dataframe
    # Deduplicate, since PBT might introduce duplicate data
    df = df.drop_duplicates(subset="training_iteration", keep="last")
    df.plot("training_iteration", "mean_accuracy")
    plt.xlabel("Training Iterations")
    plt.ylabel("Test Accuracy")

    png_path = os.path.join(storage_path, "pbt_test", "best_trial_accuracy.png")
    os.makedirs(os.path.dirname(png_path), exist_ok=True)
    plt.savefig(png_path)
    print("Saved the learning curve to", png_path)
    if plt.get_backend().lower() != "agg":  # an interactive backend: a display is available
        plt.show()
    plt.close("all")


def replay_pbt_run(smoke_test, storage_path):
    """Part 3: the guide's "Replaying a PBT run"."""
    # Get a random replay policy from the experiment we just ran
    policy_logs = glob.glob(
        os.path.expanduser(os.path.join(storage_path, "pbt_test", "pbt_policy*.txt"))
    )
    if not policy_logs:
        print("No trial was perturbed (no pbt_policy_*.txt), so there is nothing to replay.")
        return None
    sample_pbt_trial_log = policy_logs[0]
    replay = PopulationBasedTrainingReplay(sample_pbt_trial_log)

    tuner = tune.Tuner(
        train_convnet,
        tune_config=tune.TuneConfig(scheduler=replay),
        run_config=tune.RunConfig(
            stop={"training_iteration": 6 if smoke_test else 50},
            storage_path=storage_path,
        ),
    )
    results_grid = tuner.fit()
    return results_grid


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--smoke-test",
        action="store_true",
        help="Finish quickly for testing: stop at 6 iterations, perturb every 2",
    )
    parser.add_argument(
        "--storage-path",
        default=os.environ.get("POPTUNE_STORAGE_PATH") or "/tmp/poptune_results",
        help="Where experiments are stored (default: $POPTUNE_STORAGE_PATH, else "
             "/tmp/poptune_results as in the guide)",
    )
    args = parser.parse_args(argv)
    storage_path = os.path.expanduser(args.storage_path)

    results_grid = run_pbt(args.smoke_test, storage_path)
    inspect_results(results_grid, storage_path)
    replay_pbt_run(args.smoke_test, storage_path)


if __name__ == "__main__":
    main()
