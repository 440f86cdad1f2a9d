"""Population Based Training of a Keras MLP (the Japanese PBT article's script, on poptune).

The article trains a TensorFlow 2.4 ``tf.keras`` MLP on MNIST with Ray Tune's legacy
``tune.run`` API, ``TuneReportCheckpointCallback`` and ``PopulationBasedTraining``. This is
the same script with

* the imports swapped (``ray.tune`` → ``poptune``),
* TensorFlow replaced by Keras 3 on the PyTorch backend (``KERAS_BACKEND=torch``),
* MNIST replaced by scikit-learn's bundled 8x8 digits so it runs offline (``--mnist`` loads
  the real MNIST through ``keras.datasets`` when online),
* ``--smoke-test`` for a run of a few seconds per trial.

Three details differ from the article: the Keras 3 optimizer takes ``learning_rate`` (not
``lr``); a model restored from a checkpoint is compiled again so the explored ``lr`` and
``momentum`` take effect; and ``momentum`` is capped at 0.99, because PBT's x1.2 perturbation
pushes a value above 0.83 past 1, which SGD rejects (the article's script fails there too).

Run::

    python examples/pbt_tune_mnist_keras.py --smoke-test
"""

import argparse
import os

os.environ["KERAS_BACKEND"] = "torch"  # Keras 3 on PyTorch: no TensorFlow needed
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # the article's incantation (harmless without TF)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import poptune as tune  # noqa: E402  (was: from ray import tune)
from poptune.integration.keras import TuneReportCheckpointCallback  # noqa: E402
from poptune.schedulers.pbt import PopulationBasedTraining  # noqa: E402

SMOKE_TEST = False
USE_MNIST = False


def set_growth():
    """The article's GPU memory-growth incantation. PyTorch allocates GPU memory on demand,
    so the useful part left is to keep each trial to its share of the CPU cores."""
    import torch

    try:
        cpus = tune.get_context().get_trial_resources().required_resources.get("CPU", 1)
    except Exception:  # noqa: BLE001 - outside a trial
        cpus = 1
    torch.set_num_threads(max(1, int(cpus)))


def train_mnist(config, checkpoint_dir=None):
    # GPU メモリ割り当てがバグらないようになるおまじない (also works for cpu-only machine)
    set_growth()
    # batch_size = config["batch_size"]とかけばチューニング対象にできる。
    batch_size = 128
    epochs = 6 if SMOKE_TEST else 10
    x_train, y_train, x_test, y_test = load_data()
    model = build_model(config, checkpoint_dir, input_shape=x_train.shape[1:])
    model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
        validation_data=(x_test, y_test),
        callbacks=[
            TuneReportCheckpointCallback(
                metrics={"mean_accuracy": "accuracy"},
                filename="model",
                frequency=1 if SMOKE_TEST else 5,
            ),
        ],
    )


def load_data():
    if USE_MNIST:  # downloads ~11 MB on first use
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
        x_train, x_test = x_train / 255.0, x_test / 255.0
    else:  # scikit-learn's bundled 8x8 digits (1,797 images, values 0..16): works offline
        from sklearn.datasets import load_digits

        digits = load_digits()
        x, y = digits.images / 16.0, digits.target
        x_train, y_train, x_test, y_test = x[:1400], y[:1400], x[1400:], y[1400:]
    if SMOKE_TEST:
        x_train, y_train = x_train[:1000], y_train[:1000]
        x_test, y_test = x_test[:300], y_test[:300]
    return (x_train.astype(np.float32), y_train, x_test.astype(np.float32), y_test)


def build_model(config: dict, checkpoint_dir: str, input_shape=(28, 28)) -> keras.Model:
    num_classes = 10
    if checkpoint_dir:
        checkpoint_filepath = os.path.join(checkpoint_dir, "model")
        model = keras.models.load_model(checkpoint_filepath)
    else:
        model = keras.models.Sequential([
            keras.Input(shape=input_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(config["hidden"], activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(num_classes, activation="softmax"),
        ])
    model.compile(
        loss="sparse_categorical_crossentropy",
        optimizer=keras.optimizers.SGD(
            # PBT's x1.2 perturbation can push momentum past 1, which SGD rejects
            learning_rate=config["lr"], momentum=min(config["momentum"], 0.99)),
        metrics=["accuracy"])
    return model


def main():
    global SMOKE_TEST, USE_MNIST
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke-test", action="store_true", help="Finish quickly for testing")
    parser.add_argument("--mnist", action="store_true",
                        help="Use the real MNIST via keras.datasets (needs the network)")
    args, _ = parser.parse_known_args()
    SMOKE_TEST, USE_MNIST = args.smoke_test, args.mnist

    search_space = {
        "lr": tune.uniform(0.001, 0.1),
        "momentum": tune.uniform(0.1, 0.9),
        "hidden": tune.randint(32, 512),
    }
    # 例えば8コア1GPUのマシンなら {"cpu": 2, "gpu": 0.25}
    import torch

    resource_per_trial = {"cpu": 1, "gpu": 0.25 if torch.cuda.is_available() else 0}

    sched = PopulationBasedTraining(
        time_attr="training_iteration",
        perturbation_interval=2 if SMOKE_TEST else 4,
        hyperparam_mutations=search_space,
    )

    analysis = tune.run(
        train_mnist,
        name="exp",
        scheduler=sched,
        metric="mean_accuracy",
        mode="max",
        stop={
            "training_iteration": 6 if SMOKE_TEST else 10  # エージェント本番はもうちょっと増やしましょう。
        },
        num_samples=4 if SMOKE_TEST else 10,  # 並走するエージェントの数。
        resources_per_trial=resource_per_trial,
    )
    print("Best hyperparameters found were: ", analysis.best_config)


if __name__ == "__main__":
    main()
