"""The PBT guide's DCGAN example: poptune's ``ray.tune.examples.pbt_dcgan_mnist``.

``common`` holds the models (``Generator``, ``Discriminator``, the LeNet ``Net``), the
inception score, the data loader and the training step; ``pbt_dcgan_mnist_func`` holds
the function trainable ``dcgan_train`` and a runnable PBT experiment. Everything runs
offline on scikit-learn's bundled digits.
"""
