"""Every module of Ray 2.60's ``ray.tune.logger`` package exists under ``poptune.logger``
with the same callback classes (scripts import them from those paths)."""

from __future__ import annotations

import importlib

import pytest

# module -> the public names Ray's module defines or re-exports
RAY_MODULES = {
    "csv": ["CSVLoggerCallback"],
    "json": ["JsonLoggerCallback"],
    "logger": ["LoggerCallback", "pretty_print"],
    "mlflow": ["MLflowLoggerCallback"],
    "wandb": ["WandbLoggerCallback"],
    "tensorboardx": ["TBXLoggerCallback"],
    "aim": ["AimLoggerCallback"],
    "comet": ["CometLoggerCallback"],
}


@pytest.mark.parametrize("module", sorted(RAY_MODULES))
def test_ray_tune_logger_module_paths_exist(module):
    if module == "tensorboardx":
        pytest.importorskip("tensorboardX")
    mod = importlib.import_module(f"poptune.logger.{module}")
    assert [n for n in RAY_MODULES[module] if not hasattr(mod, n)] == []


def test_the_list_covers_ray_s_package():
    import pkgutil

    ray_logger = pytest.importorskip("ray.tune.logger")
    ray_modules = {m.name for m in pkgutil.iter_modules(ray_logger.__path__)}
    assert ray_modules <= set(RAY_MODULES)
