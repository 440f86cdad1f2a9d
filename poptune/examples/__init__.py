"""Example trainables and data used by poptune's tutorials and tests.

``poptune.examples.mnist_pytorch`` mirrors ``ray.tune.examples.mnist_pytorch``: the same
``ConvNet``, ``train_func``, ``test_func``, ``get_data_loaders`` and ``train_mnist``. By
default it trains on scikit-learn's bundled digits (upsampled to 28x28, so nothing is
downloaded); set ``POPTUNE_MNIST=real`` to use the real MNIST through torchvision.
``poptune.examples.datasets`` holds the data loading shared by the examples.

The other ``ray.tune.examples`` modules Ray's scripts and docs import as a library are here
too, under the same names and offline: ``pbt_function`` (``pbt_function``, the toy PBT
problem of Ray's PB2 example), ``pbt_convnet_example`` (``PytorchTrainable``),
``mnist_pytorch_trainable`` (``TrainMNIST``) and ``pbt_dcgan_mnist``.
"""
