#!/usr/bin/env python
"""The PBT guide's DCGAN example ("Example: DCGAN with PBT") on poptune.

A population of DCGANs learns to draw handwritten digits while Population Based Training
tunes the generator's and discriminator's learning rates for the best inception score.
The code lives in ``poptune.examples.pbt_dcgan_mnist`` (as Ray's lives in
``ray.tune.examples.pbt_dcgan_mnist``); this script runs it, like Ray's
``pbt_dcgan_mnist_func.py`` run from the command line. Everything is offline: the data are
scikit-learn's bundled digits, and the inception score's classifier is trained on them the
first time (a few seconds) and cached in ``~/.cache/poptune/mnist_cnn.pt``.

Written to ``<storage-path>/pbt_dcgan_mnist/``: the trials, ``pbt_global.txt`` and the
``pbt_policy_*.txt`` logs, ``inception_score.png`` and ``losses.png`` (the guide's
plots), ``original_images.png`` and ``generated.png`` (64 digits drawn by the best
trial's generator).

Usage::

    python examples/pbt_dcgan_mnist.py [--smoke-test] [--storage-path /tmp/poptune_results]
"""

from poptune.examples.pbt_dcgan_mnist.pbt_dcgan_mnist_func import main

if __name__ == "__main__":
    main()
