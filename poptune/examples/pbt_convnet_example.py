"""The MNIST ConvNet under PBT: poptune's ``ray.tune.examples.pbt_convnet_example``.

``PytorchTrainable`` is what Ray's PBT docs import to replay a PBT policy
(``PopulationBasedTrainingReplay``): a class trainable training
:mod:`poptune.examples.mnist_pytorch`'s ``ConvNet`` with SGD, reporting ``mean_accuracy``
each ``step``, saving ``model.pth``, and taking new ``lr``/``momentum`` in place through
``reset_config`` (so PBT can reuse it). The data are the bundled digits (no download) unless
``POPTUNE_MNIST=real``.

Example:
    >>> import poptune as tune
    >>> from poptune.examples.pbt_convnet_example import PytorchTrainable
    >>> trainable = PytorchTrainable({"lr": 0.05})
    >>> 0.0 <= trainable.train()["mean_accuracy"] <= 1.0
    True
    >>> trainable.reset_config({"lr": 0.01, "momentum": 0.5})
    True
    >>> trainable.optimizer.param_groups[0]["lr"]
    0.01
    >>> trainable.stop()
"""

from __future__ import annotations

from typing import Any

from poptune.examples.mnist_pytorch_trainable import TrainMNIST

__all__ = ["PytorchTrainable"]


class PytorchTrainable(TrainMNIST):
    """:class:`~poptune.examples.mnist_pytorch_trainable.TrainMNIST` that PBT can reconfigure
    without a restart."""

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        for group in self.optimizer.param_groups:
            for key in ("lr", "momentum"):
                if key in new_config:
                    group[key] = new_config[key]
        self.config = new_config
        return True
