"""A small PyTorch ConvNet on MNIST-shaped data: poptune's ``ray.tune.examples.mnist_pytorch``.

The public names and their behaviour match Ray Tune's module, so the PBT guide's
``train_convnet`` runs after the import swap::

    from poptune.examples.mnist_pytorch import ConvNet, get_data_loaders, test_func

One difference: the data. By default the loaders serve scikit-learn's bundled digits,
upsampled to 28x28 and normalised like MNIST (see ``poptune.examples.datasets``), so
nothing is downloaded and an epoch takes milliseconds. Set the environment variable
``POPTUNE_MNIST=real`` (or pass ``dataset="mnist"``) for the real MNIST via torchvision.

Example:
    >>> import torch, torch.optim as optim
    >>> from poptune.examples.mnist_pytorch import ConvNet, get_data_loaders, train_func, test_func
    >>> _ = torch.manual_seed(0)
    >>> train_loader, test_loader = get_data_loaders()
    >>> model = ConvNet()
    >>> optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    >>> train_func(model, optimizer, train_loader)
    >>> 0.0 <= test_func(model, test_loader) <= 1.0
    True
"""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import Any

from poptune._imports import require

require("torch", "poptune.examples.mnist_pytorch")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch.optim as optim  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from poptune.examples.datasets import load_dataset  # noqa: E402

__all__ = [
    "EPOCH_SIZE",
    "TEST_SIZE",
    "ConvNet",
    "train_func",
    "test_func",
    "get_data_loaders",
    "train_mnist",
    "train",
    "test",
]

# Change these values if you want the training to run quicker or slower.
EPOCH_SIZE = 512
TEST_SIZE = 256


class ConvNet(nn.Module):
    """One 3x3 convolution (3 channels), 3x3 max-pooling, one linear layer; log-softmax output.

    Input ``[B, 1, 28, 28]``, output ``[B, 10]`` log-probabilities (Ray Tune's ``ConvNet``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 3, kernel_size=3)
        self.fc = nn.Linear(192, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.max_pool2d(self.conv1(x), 3))
        x = x.view(-1, 192)
        x = self.fc(x)
        return F.log_softmax(x, dim=1)


def train_func(
    model: nn.Module,
    optimizer: optim.Optimizer,
    train_loader: DataLoader[Any],
    device: torch.device | str | None = None,
) -> None:
    """Train ``model`` for one short "epoch" of about ``EPOCH_SIZE`` samples with NLL loss.

    As in Ray Tune, batches are taken while ``batch_index * batch_size <= EPOCH_SIZE``
    (9 batches of 64, i.e. 576 samples, with the defaults).
    """
    device = device or torch.device("cpu")
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        if batch_idx * len(data) > EPOCH_SIZE:
            return
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()


def test_func(
    model: nn.Module,
    data_loader: DataLoader[Any],
    device: torch.device | str | None = None,
) -> float:
    """Return ``model``'s accuracy in [0, 1] on about ``TEST_SIZE`` samples of ``data_loader``.

    As in Ray Tune, batches are taken while ``batch_index * batch_size <= TEST_SIZE``
    (5 batches of 64, i.e. 320 samples, with the defaults).
    """
    device = device or torch.device("cpu")
    model.eval()
    correct = 0
    total = 0
    with torch.no_grad():
        for batch_idx, (data, target) in enumerate(data_loader):
            if batch_idx * len(data) > TEST_SIZE:
                break
            data, target = data.to(device), target.to(device)
            outputs = model(data)
            _, predicted = torch.max(outputs.data, 1)
            total += target.size(0)
            correct += (predicted == target).sum().item()

    return correct / total


#: Ray <= 1.x's names for :func:`train_func` and :func:`test_func`, which older tutorials
#: import (``from ray.tune.examples.mnist_pytorch import get_data_loaders, ConvNet, train,
#: test``)
train = train_func
test = test_func


def get_data_loaders(
    batch_size: int = 64, dataset: str | None = None
) -> tuple[DataLoader[Any], DataLoader[Any]]:
    """Return ``(train_loader, test_loader)``, both shuffling, with ``batch_size`` samples a batch.

    Args:
        batch_size: Samples per batch for both loaders.
        dataset: ``"digits"`` (scikit-learn's digits at 28x28, no download) or ``"mnist"``
            (real MNIST via torchvision). ``None`` reads ``POPTUNE_MNIST`` (``real`` selects
            MNIST), defaulting to the digits.
    """
    train_loader = DataLoader(load_dataset(True, dataset), batch_size=batch_size, shuffle=True)
    test_loader = DataLoader(load_dataset(False, dataset), batch_size=batch_size, shuffle=True)
    return train_loader, test_loader


def train_mnist(config: dict[str, Any]) -> None:
    """Function trainable: SGD on ``ConvNet``, reporting ``mean_accuracy`` after every epoch.

    Config keys: ``lr`` and ``momentum`` (required), ``should_checkpoint`` (default False:
    when true, ``model.pt`` is reported as a checkpoint each epoch). Runs until the
    tuner stops it. Uses one torch thread, since trials run side by side in processes.
    """
    import poptune as tune

    torch.set_num_threads(1)
    should_checkpoint = config.get("should_checkpoint", False)
    use_cuda = torch.cuda.is_available()
    device = torch.device("cuda" if use_cuda else "cpu")
    train_loader, test_loader = get_data_loaders()
    model = ConvNet().to(device)

    optimizer = optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"])

    while True:
        train_func(model, optimizer, train_loader, device)
        acc = test_func(model, test_loader, device)
        metrics = {"mean_accuracy": acc}

        # Report metrics (and possibly a checkpoint)
        if should_checkpoint:
            with tempfile.TemporaryDirectory() as tempdir:
                torch.save(model.state_dict(), os.path.join(tempdir, "model.pt"))
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tempdir))
        else:
            tune.report(metrics)


def _main() -> None:
    parser = argparse.ArgumentParser(description="PyTorch MNIST example (ASHA)")
    parser.add_argument("--smoke-test", action="store_true", help="Finish quickly for testing")
    args, _ = parser.parse_known_args()

    import poptune as tune
    from poptune.schedulers import AsyncHyperBandScheduler

    tuner = tune.Tuner(
        train_mnist,
        tune_config=tune.TuneConfig(
            metric="mean_accuracy",
            mode="max",
            scheduler=AsyncHyperBandScheduler(),
            num_samples=1 if args.smoke_test else 50,
        ),
        run_config=tune.RunConfig(
            name="exp",
            stop={"mean_accuracy": 0.98, "training_iteration": 5 if args.smoke_test else 100},
        ),
        param_space={
            "lr": tune.loguniform(1e-4, 1e-2),
            "momentum": tune.uniform(0.1, 0.9),
        },
    )
    results = tuner.fit()
    print("Best config is:", results.get_best_result().config)


if __name__ == "__main__":
    _main()
