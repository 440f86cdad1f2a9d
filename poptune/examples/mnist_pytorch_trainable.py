"""The MNIST ConvNet as a class trainable: poptune's ``ray.tune.examples.mnist_pytorch_trainable``.

``TrainMNIST`` trains :mod:`poptune.examples.mnist_pytorch`'s ``ConvNet`` one short epoch a
``step`` (reporting ``mean_accuracy``) and saves/loads ``model.pth``, as Ray's does; the
data are the bundled digits (no download) unless ``POPTUNE_MNIST=real``.

Example:
    >>> import poptune as tune
    >>> from poptune.examples.mnist_pytorch_trainable import TrainMNIST
    >>> grid = tune.Tuner(TrainMNIST, param_space={"lr": 0.05},
    ...     run_config=tune.RunConfig(stop={"training_iteration": 1}, verbose=0),
    ...     tune_config=tune.TuneConfig(backend="simulated")).fit()
    >>> 0.0 <= grid[0].metrics["mean_accuracy"] <= 1.0
    True
"""

from __future__ import annotations

import os
from typing import Any

from poptune.examples import mnist_pytorch as _mnist
from poptune.trainable import Trainable

import torch  # noqa: E402  (after mnist_pytorch, which names the missing extra)
import torch.optim as optim  # noqa: E402

__all__ = ["TrainMNIST"]


class TrainMNIST(Trainable):
    """SGD on the ConvNet (``lr`` 0.01, ``momentum`` 0.9 by default; ``use_gpu``)."""

    def setup(self, config: dict[str, Any], **kwargs: Any) -> None:
        cuda = bool(config.get("use_gpu")) and torch.cuda.is_available()
        self.device = torch.device("cuda" if cuda else "cpu")
        self.train_loader, self.test_loader = _mnist.get_data_loaders()
        self.model = _mnist.ConvNet().to(self.device)
        self.optimizer = optim.SGD(self.model.parameters(), lr=config.get("lr", 0.01),
                                   momentum=config.get("momentum", 0.9))

    def step(self) -> dict[str, Any]:
        _mnist.train_func(self.model, self.optimizer, self.train_loader, device=self.device)
        return {"mean_accuracy": _mnist.test_func(self.model, self.test_loader, self.device)}

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        torch.save(self.model.state_dict(), os.path.join(checkpoint_dir, "model.pth"))

    def load_checkpoint(self, checkpoint: dict[str, Any] | str) -> None:
        path = os.path.join(str(checkpoint), "model.pth")  # save_checkpoint returns no dict
        self.model.load_state_dict(torch.load(path, map_location=self.device))
