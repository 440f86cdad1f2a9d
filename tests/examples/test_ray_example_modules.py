"""The ``ray.tune.examples`` modules Ray 2.60's own scripts and docs import as a library exist
under ``poptune.examples`` with the same names (so the import swap keeps them working)."""

from __future__ import annotations

import importlib
import json

import pytest

import poptune as tune
from poptune.schedulers import PopulationBasedTraining

# module -> names imported from it by Ray's scripts (pb2_example, pbt_convnet_example,
# pbt_convnet_function_example, mnist_pytorch_trainable) and docstrings (PB2, PBT replay)
IMPORTED = {
    "pbt_function": ["pbt_function"],
    "mnist_pytorch": ["ConvNet", "get_data_loaders", "test_func", "train_func", "train_mnist"],
    "pbt_convnet_example": ["PytorchTrainable"],
    "mnist_pytorch_trainable": ["TrainMNIST"],
    "pbt_dcgan_mnist.common": ["batch_size"],
}


@pytest.mark.parametrize("module", sorted(IMPORTED))
def test_the_example_module_ray_users_import_exists(module):
    if module != "pbt_function":
        pytest.importorskip("torch")
    mod = importlib.import_module(f"poptune.examples.{module}")
    assert [n for n in IMPORTED[module] if not hasattr(mod, n)] == []


def test_pbt_function_learns_under_pbt_and_checkpoints_every_interval(tmp_path):
    from poptune.examples.pbt_function import pbt_function

    pbt = PopulationBasedTraining(time_attr="training_iteration", perturbation_interval=2,
                                  hyperparam_mutations={"lr": tune.uniform(0.0001, 0.02)})
    grid = tune.Tuner(
        pbt_function,
        param_space={"lr": 0.0001, "checkpoint_interval": 2},
        tune_config=tune.TuneConfig(scheduler=pbt, metric="mean_accuracy", mode="max",
                                    num_samples=4, backend="simulated", seed=0),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                  stop={"done": True, "training_iteration": 6}),
    ).fit()
    assert grid.num_errors == 0 and len(grid) == 4
    for result in grid:
        assert result.metrics["training_iteration"] == 6
        assert {"mean_accuracy", "cur_lr", "optimal_lr", "q_err"} <= set(result.metrics)
        with result.checkpoint.as_directory() as path:
            saved = json.load(open(f"{path}/checkpoint.json"))
        assert saved["step"] % 2 == 0 and saved["acc"] >= 0


def test_train_mnist_saves_and_restores_its_model(tmp_path):
    pytest.importorskip("torch")
    import torch

    from poptune.examples.pbt_convnet_example import PytorchTrainable

    first = PytorchTrainable({"lr": 0.05})
    path = first.save(str(tmp_path / "ckpt"))
    second = PytorchTrainable({"lr": 0.05})
    second.restore(path)
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    first.stop()
    second.stop()
