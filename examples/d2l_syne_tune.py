#!/usr/bin/env python
"""d2l.ai chapter 19.3, "Asynchronous Random Search", on poptune.syne_tune.

The chapter's experiment — LeNet, asynchronous random search over the learning rate and
the batch size, 2 workers, a wall-clock budget — with the chapter's code and only its
imports changed (``syne_tune`` -> ``poptune.syne_tune``, ``d2l.torch`` -> poptune's
stand-in ``poptune.examples.d2l_torch``). The data is scikit-learn's bundled digits
(28x28, no download) unless ``--data fashion_mnist`` (downloads through torchvision).

    python examples/d2l_syne_tune.py                 # 3 minutes on 2 cores
    python examples/d2l_syne_tune.py --budget 720    # the chapter's 12 minutes
    python examples/d2l_syne_tune.py --smoke         # seconds: tiny data, simulated time

It saves the chapter's two figures (best validation error over time, every trial's curve)
and poptune's trials-over-time bars into ``--out``.
"""

import argparse
import logging
import os

parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
parser.add_argument("--budget", type=float, default=180.0,
                    help="wall-clock budget in seconds (the chapter: 720)")
parser.add_argument("--workers", type=int, default=2)
parser.add_argument("--data", choices=["digits", "fashion_mnist"], default="digits")
parser.add_argument("--smoke", action="store_true",
                    help="256 images, simulated time, a 2 s budget: for the tests")
parser.add_argument("--out", default="d2l_syne_tune_plots", help="directory for the figures")
args = parser.parse_args()
os.environ["POPTUNE_D2L_DATA"] = args.data
if args.smoke:
    os.environ.update(POPTUNE_D2L_SMOKE="1", POPTUNE_BACKEND="simulated")
    args.budget = min(args.budget, 2.0)

import matplotlib  # noqa: E402

matplotlib.use("Agg")

from poptune.examples import d2l_torch as d2l  # noqa: E402  (was: from d2l import torch as d2l)

logging.basicConfig(level=logging.INFO)
from poptune.syne_tune import StoppingCriterion, Tuner  # noqa: E402
from poptune.syne_tune.backend.python_backend import PythonBackend  # noqa: E402
from poptune.syne_tune.config_space import loguniform, randint  # noqa: E402
from poptune.syne_tune.experiments import load_experiment  # noqa: E402
from poptune.syne_tune.optimizer.baselines import RandomSearch  # noqa: E402


def hpo_objective_lenet_synetune(learning_rate, batch_size, max_epochs):
    from poptune.examples import d2l_torch as d2l
    from poptune.syne_tune import Reporter

    model = d2l.LeNet(lr=learning_rate, num_classes=10)
    trainer = d2l.HPOTrainer(max_epochs=1, num_gpus=1)
    data = d2l.FashionMNIST(batch_size=batch_size)
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
    report = Reporter()
    for epoch in range(1, max_epochs + 1):
        if epoch == 1:
            # Initialize the state of Trainer
            trainer.fit(model=model, data=data)
        else:
            trainer.fit_epoch()
        validation_error = trainer.validation_error().cpu().detach().numpy()
        report(epoch=epoch, validation_error=float(validation_error))


n_workers = args.workers  # Needs to be <= the number of available GPUs
max_wallclock_time = args.budget  # the chapter: 12 * 60

mode = "min"
metric = "validation_error"

config_space = {
    "learning_rate": loguniform(1e-2, 1),
    "batch_size": randint(32, 256),
    "max_epochs": 10,
}
initial_config = {
    "learning_rate": 0.1,
    "batch_size": 128,
}

trial_backend = PythonBackend(
    tune_function=hpo_objective_lenet_synetune,
    config_space=config_space,
)

scheduler = RandomSearch(
    config_space,
    metric=metric,
    mode=mode,
    points_to_evaluate=[initial_config],
)

stop_criterion = StoppingCriterion(max_wallclock_time=max_wallclock_time)
tuner = Tuner(
    trial_backend=trial_backend,
    scheduler=scheduler,
    stop_criterion=stop_criterion,
    n_workers=n_workers,
    print_update_interval=int(max_wallclock_time * 0.6),
)

tuner.run()

os.makedirs(args.out, exist_ok=True)
d2l.set_figsize()
tuning_experiment = load_experiment(tuner.name)
tuning_experiment.plot(figure_path=os.path.join(args.out, "best_over_time.png"))

d2l.set_figsize([6, 2.5])
results = tuning_experiment.results

for trial_id in results.trial_id.unique():
    df = results[results["trial_id"] == trial_id]
    d2l.plt.plot(
        df["st_tuner_time"],
        df["validation_error"],
        marker="o"
    )

d2l.plt.xlabel("wall-clock time")
d2l.plt.ylabel("objective function")
d2l.plt.savefig(os.path.join(args.out, "trials_curves.png"))

from poptune.plot import plot_trials_over_time  # noqa: E402

plot_trials_over_time(tuning_experiment.path, metric, mode,
                      out=os.path.join(args.out, "trials_over_time.png"))
print(tuning_experiment)
print("best config:", tuning_experiment.best_config())
print("figures in", os.path.abspath(args.out))
