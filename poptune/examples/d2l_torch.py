"""The few pieces of ``d2l.torch`` that d2l's Syne Tune chapter (19.3) uses, on bundled data.

``from poptune.examples import d2l_torch as d2l`` stands in for ``from d2l import torch as
d2l``: :class:`LeNet`, :class:`HPOTrainer` (``fit``, ``fit_epoch``, ``validation_error``),
:func:`init_cnn`, :func:`set_figsize` and ``plt``. :class:`FashionMNIST` serves
scikit-learn's handwritten digits upsampled to 28x28 (no download, seconds per epoch on a
CPU; an epoch makes 8 passes over them, ``POPTUNE_D2L_PASSES``, so it takes about as
many steps as an epoch of a small Fashion-MNIST); set ``POPTUNE_D2L_DATA=fashion_mnist`` to download the real Fashion-MNIST through
torchvision instead (``pip install torchvision``). ``POPTUNE_D2L_SMOKE=1`` keeps 256
training and 128 validation images (the tests' smoke mode). On the simulated backend
(``POPTUNE_BACKEND=simulated``) each training step costs ``SIMULATED_STEP_S`` simulated
seconds, so a wall-clock budget is met on deterministic simulated time.

Example:
    >>> from poptune.examples import d2l_torch as d2l
    >>> model = d2l.LeNet(lr=0.1, num_classes=10)
    >>> trainer = d2l.HPOTrainer(max_epochs=1, num_gpus=1)
    >>> data = d2l.FashionMNIST(batch_size=64)  # doctest: +SKIP
    >>> model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)  # doctest: +SKIP
    >>> trainer.fit(model=model, data=data); float(trainer.validation_error()) < 1  # doctest: +SKIP
    True
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset

__all__ = ["FashionMNIST", "HPOTrainer", "LeNet", "init_cnn", "plt", "set_figsize"]

#: simulated seconds per training step on the simulated backend (``POPTUNE_BACKEND=simulated``)
SIMULATED_STEP_S = 0.02


def __getattr__(name: str) -> Any:
    if name == "plt":  # pyplot only when a script plots
        import matplotlib.pyplot as plt

        return plt
    raise AttributeError(name)


def set_figsize(figsize: tuple[float, float] | list[float] = (3.5, 2.5)) -> None:
    """Set matplotlib's default figure size (as d2l)."""
    import matplotlib.pyplot as plt

    plt.rcParams["figure.figsize"] = list(figsize)


def init_cnn(module: nn.Module) -> None:
    """Xavier-uniform weights for linear and convolution layers (d2l's ``init_cnn``)."""
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.xavier_uniform_(module.weight)


class LeNet(nn.Module):
    """LeNet-5 with sigmoid activations and average pooling, as d2l builds it."""

    def __init__(self, lr: float = 0.1, num_classes: int = 10) -> None:
        super().__init__()
        self.lr = lr
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(),
            nn.LazyLinear(120), nn.Sigmoid(),
            nn.LazyLinear(84), nn.Sigmoid(),
            nn.LazyLinear(num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def apply_init(self, inputs: list[torch.Tensor], init: Any = None) -> None:
        """Run ``inputs`` through once to size the lazy layers, then apply ``init``."""
        self.forward(*inputs)
        if init is not None:
            self.net.apply(init)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def _datasets(resize: tuple[int, int]) -> tuple[Dataset[Any], Dataset[Any]]:
    smoke = os.environ.get("POPTUNE_D2L_SMOKE") == "1"
    if os.environ.get("POPTUNE_D2L_DATA", "digits") == "fashion_mnist":
        from poptune._imports import require

        tv = require("torchvision", "Fashion-MNIST (POPTUNE_D2L_DATA=fashion_mnist)")
        tf = tv.transforms.Compose([tv.transforms.Resize(resize), tv.transforms.ToTensor()])
        root = os.path.expanduser(os.environ.get("POPTUNE_DATA_DIR", "~/data"))
        train = tv.datasets.FashionMNIST(root=root, train=True, transform=tf, download=True)
        val = tv.datasets.FashionMNIST(root=root, train=False, transform=tf, download=True)
    else:
        from poptune.examples.datasets import load_digits_28

        train, val = load_digits_28(True), load_digits_28(False)
    if smoke:
        train = Subset(train, range(min(256, len(train))))  # type: ignore[arg-type]
        val = Subset(val, range(min(128, len(val))))  # type: ignore[arg-type]
    return train, val


class FashionMNIST:
    """The chapter's data module: ``get_dataloader(train)`` (digits unless
    ``POPTUNE_D2L_DATA=fashion_mnist``)."""

    def __init__(self, batch_size: int = 64, resize: tuple[int, int] = (28, 28)) -> None:
        torch.set_num_threads(1)  # trials run side by side: one core each
        self.batch_size = int(batch_size)
        self.train, self.val = _datasets(resize)
        #: passes over the digits per epoch (1 for Fashion-MNIST and in smoke mode)
        self.passes = int(os.environ.get("POPTUNE_D2L_PASSES", "8")) if (
            os.environ.get("POPTUNE_D2L_DATA", "digits") != "fashion_mnist"
            and os.environ.get("POPTUNE_D2L_SMOKE") != "1") else 1

    def get_dataloader(self, train: bool) -> DataLoader[Any]:
        data = self.train if train else self.val
        if train and self.passes > 1:  # a digits "epoch" takes as many steps as a small
            data = ConcatDataset([data] * self.passes)  # Fashion-MNIST epoch would
        gen = torch.Generator().manual_seed(0)
        return DataLoader(data, batch_size=self.batch_size, shuffle=train, generator=gen)


class HPOTrainer:
    """d2l's trainer for HPO: ``fit`` trains ``max_epochs`` epochs, ``fit_epoch`` one more,
    ``validation_error`` the share of misclassified validation images (CPU only)."""

    def __init__(self, max_epochs: int = 1, num_gpus: int = 0) -> None:
        self.max_epochs = max_epochs
        self.model: LeNet | None = None
        self.data: FashionMNIST | None = None

    def fit(self, model: LeNet, data: FashionMNIST) -> None:
        self.model, self.data = model, data
        self.optim = model.configure_optimizers()
        for _ in range(self.max_epochs):
            self.fit_epoch()

    def fit_epoch(self) -> None:
        assert self.model is not None and self.data is not None, "call fit() first"
        self.model.train()
        loss_fn = nn.CrossEntropyLoss()
        steps = 0
        for x, y in self.data.get_dataloader(True):
            self.optim.zero_grad()
            loss_fn(self.model(x), y).backward()
            self.optim.step()
            steps += 1
        from poptune import simulation

        if simulation.is_simulated():  # on simulated time an epoch costs what it would on
            simulation.advance(steps * SIMULATED_STEP_S)  # a GPU: 469 steps ~ 10 s

    @torch.no_grad()
    def validation_error(self) -> torch.Tensor:
        assert self.model is not None and self.data is not None, "call fit() first"
        self.model.eval()
        wrong = total = 0
        for x, y in self.data.get_dataloader(False):
            wrong += int((self.model(x).argmax(dim=1) != y).sum())
            total += len(y)
        return torch.tensor(wrong / max(total, 1))
