#!/usr/bin/env python
"""Example of training DCGAN on MNIST-shaped digits using PBT with poptune's function API.

poptune's ``ray.tune.examples.pbt_dcgan_mnist.pbt_dcgan_mnist_func``: the guide's
``dcgan_train`` trainable and ``download_mnist_cnn``, and a runnable experiment. A
population of DCGANs (8 by default) is trained with Population Based Training on the
generator's and discriminator's Adam learning rates (``netG_lr``, ``netD_lr``), maximising
the inception score of the generated digits. Then the best trial's generator draws 64
digits, saved as ``generated.png`` in the experiment directory, beside the guide's plots
of the inception score and the losses of every trial.

Differences from Ray's script, each deliberate:

* Offline: the data are scikit-learn's bundled digits and the inception-score classifier
  is trained on them once and cached (``download_mnist_cnn`` trains instead of
  downloading; see ``common``).
* The classifier reaches the trials through ``tune.with_parameters`` (Ray puts it in the
  object store and passes the reference in the config; ``dcgan_train`` still accepts it
  as ``config["mnist_model_ref"]``).
* The optimizers start at the trial's own ``netD_lr`` / ``netG_lr``. Ray's trainable
  starts both at ``config.get("lr", 0.01)`` and applies the sampled rates only after a
  checkpoint restore, so a trial that is never exploited never uses them.
* ``checkpoint_interval`` defaults to 1 when missing (Ray's script omits it from the
  config and its trainable then fails with ``KeyError``).
* PBT's ``time_attr`` is ``training_iteration``, so perturbations fall on the
  checkpointing steps; the resampling distributions are ``tune.uniform(1e-5, 1e-2)``
  (Ray: ``np.random.uniform(1e-2, 1e-5)``, the same distribution).
* Sized for a 2-core CPU: 8 trials of 100 steps (Ray: 300, the guide: 150), about
  3-4 minutes on an idle machine; ``--smoke-test`` runs 4 trials of 6 steps, perturbing
  every 2 (about 15 s). Each trial keeps its 4 latest checkpoints (Ray keeps all).

Usage::

    python -m poptune.examples.pbt_dcgan_mnist.pbt_dcgan_mnist_func \\
        [--smoke-test] [--storage-path /tmp/poptune_results]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import Any

import torch
import torch.nn as nn
import torch.optim as optim

import poptune as tune
from poptune import Checkpoint
from poptune.examples.pbt_dcgan_mnist import common
from poptune.examples.pbt_dcgan_mnist.common import (
    Discriminator,
    Generator,
    Net,
    beta1,
    demo_gan,
    get_data_loader,
    load_mnist_cnn,
    model_path,
    plot_images,
    train_func,
    weights_init,
)
from poptune.schedulers import PopulationBasedTraining

__all__ = ["dcgan_train", "download_mnist_cnn", "plot_metrics", "run_pbt", "main"]

EXPERIMENT_NAME = "pbt_dcgan_mnist"


# __Train_begin__
def dcgan_train(config: dict[str, Any], mnist_model_ref: Any = None) -> None:
    """Function trainable: DCGAN steps forever, reporting ``lossg``, ``lossd``, ``is_score``.

    Config keys: ``netD_lr`` and ``netG_lr`` (Adam learning rates; each falls back to
    ``lr``, then 0.01), ``checkpoint_interval`` (default 1: a checkpoint with every
    report), ``use_gpu`` (default False). The inception-score classifier is
    ``mnist_model_ref`` (bound with ``tune.with_parameters``), else
    ``config["mnist_model_ref"]``, else the cached one (``common.load_mnist_cnn``).

    A checkpoint is a directory with ``checkpoint.pt``: the ``state_dict`` of both
    networks (``netDmodel``, ``netGmodel``) and both optimizers (``optimD``, ``optimG``)
    and the ``step`` it was taken after. On restore (``tune.get_checkpoint()``, e.g. when
    PBT clones a better trial) training continues from ``step + 1`` with the optimizers'
    learning rates set from this trial's config, so PBT's explored values take effect.
    """
    torch.set_num_threads(1)  # one core per trial: the trials run side by side
    if mnist_model_ref is None:
        mnist_model_ref = config.get("mnist_model_ref")
    if mnist_model_ref is None:
        mnist_model_ref = load_mnist_cnn()
    use_cuda = config.get("use_gpu") and torch.cuda.is_available()
    device = torch.device("cuda" if use_cuda else "cpu")
    netD = Discriminator().to(device)
    netD.apply(weights_init)
    netG = Generator().to(device)
    netG.apply(weights_init)
    criterion = nn.BCELoss()
    default_lr = config.get("lr", 0.01)
    optimizerD = optim.Adam(
        netD.parameters(), lr=config.get("netD_lr", default_lr), betas=(beta1, 0.999)
    )
    optimizerG = optim.Adam(
        netG.parameters(), lr=config.get("netG_lr", default_lr), betas=(beta1, 0.999)
    )
    # The digits' disk cache is written atomically: no lock is needed around this.
    dataloader = get_data_loader()

    step = 1
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as checkpoint_dir:
            checkpoint_dict = torch.load(
                os.path.join(checkpoint_dir, "checkpoint.pt"), map_location=device
            )
        netD.load_state_dict(checkpoint_dict["netDmodel"])
        netG.load_state_dict(checkpoint_dict["netGmodel"])
        optimizerD.load_state_dict(checkpoint_dict["optimD"])
        optimizerG.load_state_dict(checkpoint_dict["optimG"])
        # Note: Make sure to increment the loaded step by 1 to get the
        # current step.
        last_step = checkpoint_dict["step"]
        step = last_step + 1

        # NOTE: It's important to set the optimizer learning rates
        # again, since we want to explore the parameters passed in by PBT.
        # Without this, we would continue using the exact same
        # configuration as the trial whose checkpoint we are exploiting.
        if "netD_lr" in config:
            for param_group in optimizerD.param_groups:
                param_group["lr"] = config["netD_lr"]
        if "netG_lr" in config:
            for param_group in optimizerG.param_groups:
                param_group["lr"] = config["netG_lr"]

    checkpoint_interval = config.get("checkpoint_interval", 1)
    while True:
        lossG, lossD, is_score = train_func(
            netD,
            netG,
            optimizerG,
            optimizerD,
            criterion,
            dataloader,
            step,
            device,
            mnist_model_ref,
        )
        metrics = {"lossg": lossG, "lossd": lossD, "is_score": is_score}

        if step % checkpoint_interval == 0:
            with tempfile.TemporaryDirectory() as tmpdir:
                torch.save(
                    {
                        "netDmodel": netD.state_dict(),
                        "netGmodel": netG.state_dict(),
                        "optimD": optimizerD.state_dict(),
                        "optimG": optimizerG.state_dict(),
                        "step": step,
                    },
                    os.path.join(tmpdir, "checkpoint.pt"),
                )
                tune.report(metrics, checkpoint=Checkpoint.from_directory(tmpdir))
        else:
            tune.report(metrics)

        step += 1


# __Train_end__


def download_mnist_cnn() -> str:
    """Return the path of the inception-score classifier's ``state_dict`` (``MODEL_PATH``).

    Ray downloads a pretrained file; poptune trains ``Net`` on the bundled digits the
    first time (a few seconds) and caches it, so later calls return at once. Load it as
    the guide does: ``Net().load_state_dict(torch.load(download_mnist_cnn()))``.
    """
    path = model_path()
    if common._read_state_dict(path) is None:  # missing or unreadable
        model = load_mnist_cnn()  # trains, and fills the disk cache when it is enabled
        if common._read_state_dict(path) is None:  # disk cache disabled or read-only
            common._write_state_dict(path, model.state_dict())
    return path


def plot_metrics(results_grid: Any, output_dir: str) -> list[str]:
    """The guide's "Visualization" plots, saved as PNGs in ``output_dir``; returns the paths.

    ``inception_score.png``: the inception score of every trial over its iterations;
    ``losses.png``: the generator's and the discriminator's losses.
    """
    from matplotlib.figure import Figure

    result_dfs = [result.metrics_dataframe for result in results_grid]
    os.makedirs(output_dir, exist_ok=True)

    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    for i, df in enumerate(result_dfs):
        if df is not None and "is_score" in df:
            ax.plot(df["is_score"], label=i)
    ax.legend()
    ax.set_title("Inception Score During Training")
    ax.set_xlabel("Training Iterations")
    ax.set_ylabel("Inception Score")
    score_path = os.path.join(output_dir, "inception_score.png")
    fig.savefig(score_path)

    fig = Figure(figsize=(12, 4))
    axs = fig.subplots(1, 2)
    for col, (key, who) in enumerate([("lossg", "Generator"), ("lossd", "Discriminator")]):
        for i, df in enumerate(result_dfs):
            if df is not None and key in df:
                axs[col].plot(df[key], label=i)
        axs[col].legend()
        axs[col].set_title(f"{who} Loss During Training")
        axs[col].set_xlabel("Training Iterations")
        axs[col].set_ylabel(f"{who} Loss")
    loss_path = os.path.join(output_dir, "losses.png")
    fig.savefig(loss_path)
    return [score_path, loss_path]


def run_pbt(
    smoke_test: bool = False,
    storage_path: str | None = None,
    num_samples: int | None = None,
    training_iterations: int | None = None,
) -> Any:
    """Run the PBT experiment ``pbt_dcgan_mnist``; return the ``ResultGrid``.

    Defaults: 8 trials of 100 steps, perturbing and checkpointing every 5 steps;
    ``smoke_test``: 4 trials of 6 steps, every 2. ``num_samples`` and
    ``training_iterations`` override the population size and the number of steps.
    """
    # __tune_begin__

    # Load the classification model for inception_score (trained and cached at first use)
    mnist_cnn = Net()
    mnist_cnn.load_state_dict(torch.load(download_mnist_cnn(), weights_only=True))
    mnist_cnn.eval()

    perturbation_interval = 2 if smoke_test else 5
    scheduler = PopulationBasedTraining(
        time_attr="training_iteration",
        perturbation_interval=perturbation_interval,
        hyperparam_mutations={
            # distribution for resampling
            "netG_lr": tune.uniform(1e-5, 1e-2),
            "netD_lr": tune.uniform(1e-5, 1e-2),
        },
    )

    if training_iterations is None:
        training_iterations = 6 if smoke_test else 100
    if num_samples is None:
        num_samples = 4 if smoke_test else 8
    tuner = tune.Tuner(
        # The classifier is shipped to each worker once (Ray: an object-store reference).
        tune.with_parameters(dcgan_train, mnist_model_ref=mnist_cnn),
        run_config=tune.RunConfig(
            name=EXPERIMENT_NAME,
            stop={"training_iteration": training_iterations},
            # A checkpoint is 6 MB; keeping all of them would take about 1 GB. poptune
            # never deletes one that a pending PBT exploit may still restore from.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=4),
            storage_path=storage_path,
            verbose=1,
        ),
        tune_config=tune.TuneConfig(
            metric="is_score",
            mode="max",
            num_samples=num_samples,
            scheduler=scheduler,
        ),
        param_space={
            # Define how initial values of the learning rates should be chosen.
            "netG_lr": tune.choice([0.0001, 0.0002, 0.0005]),
            "netD_lr": tune.choice([0.0001, 0.0002, 0.0005]),
            "checkpoint_interval": perturbation_interval,
        },
    )
    results_grid = tuner.fit()
    # __tune_end__
    return results_grid


def main(argv: list[str] | None = None) -> Any:
    """Command line: run the experiment, then save the plots and the best generator's digits."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--smoke-test",
        action="store_true",
        help="Finish quickly for testing: 4 trials of 6 steps, perturbing every 2",
    )
    parser.add_argument(
        "--storage-path",
        default="/tmp/poptune_results",
        help="Where experiments are stored (default: /tmp/poptune_results)",
    )
    parser.add_argument("--num-samples", type=int, default=None, help="Population size")
    parser.add_argument(
        "--training-iterations", type=int, default=None, help="Steps each trial trains for"
    )
    args = parser.parse_args(argv)
    storage_path = os.path.expanduser(args.storage_path)

    results_grid = run_pbt(
        args.smoke_test, storage_path, args.num_samples, args.training_iterations
    )
    experiment_path = results_grid.experiment_path
    if not args.smoke_test:
        images_path = os.path.join(experiment_path, "original_images.png")
        print("Training images:", plot_images(get_data_loader(), images_path))
    for path in plot_metrics(results_grid, experiment_path):
        print("Saved", path)

    # demo of the best trained Generator
    best_result = results_grid.get_best_result(metric="is_score", mode="max")
    print("Best trial's final config:", best_result.config)
    print("Best trial's final inception score: %.3f" % best_result.metrics["is_score"])
    if best_result.checkpoint is not None:
        with best_result.checkpoint.as_directory() as best_checkpoint:
            for path in demo_gan([best_checkpoint], output_dir=experiment_path):
                print("Generated digits of the best trial:", path)
    return results_grid


if __name__ == "__main__":
    main()
