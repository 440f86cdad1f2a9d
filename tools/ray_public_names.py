"""Write tests/top/ray_public_names.json: the public names of Ray Tune's modules.

Run once against an installed Ray (the checked-in file is the output for Ray 2.60); the
completeness test (tests/top/test_ray_names.py) reads the file and never imports Ray::

    python tools/ray_public_names.py > tests/top/ray_public_names.json

A module with ``__all__`` contributes its ``__all__`` (private ``_names`` dropped); a module
without one (or one that cannot be imported here, e.g. the Keras integration without
TensorFlow) contributes the public classes and functions its source defines at top level.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import sys
from pathlib import Path

#: Ray module -> the poptune module that mirrors it
MODULES: dict[str, str] = {
    "ray.tune": "poptune",
    "ray.tune.schedulers": "poptune.schedulers",
    "ray.tune.search": "poptune.search",
    "ray.tune.search.zoopt": "poptune.search.zoopt",
    "ray.tune.search.hebo": "poptune.search.hebo",
    "ray.tune.stopper": "poptune.stopper",
    "ray.tune.logger": "poptune.logger",
    "ray.tune.logger.aim": "poptune.logger.aim",
    "ray.tune.experiment": "poptune.experiment",
    "ray.tune.callback": "poptune.callback",
    "ray.tune.execution.placement_groups": "poptune.execution.placement_groups",
    "ray.tune.utils": "poptune.utils",
    # integrations poptune has (no ray_train counterpart)
    "ray.tune.integration.keras": "poptune.integration.keras",
    "ray.tune.integration.lightgbm": "poptune.integration.lightgbm",
    "ray.tune.integration.xgboost": "poptune.integration.xgboost",
    "ray.tune.integration.pytorch_lightning": "poptune.integration.pytorch_lightning",
    # Ray 2.x's other entry points of Tune scripts (`from ray import train`, `ray.air`)
    "ray.train": "poptune.train",
    "ray.air": "poptune.air",
    "ray.air.config": "poptune.air.config",
    "ray.air.integrations.mlflow": "poptune.air.integrations.mlflow",
    "ray.air.integrations.wandb": "poptune.air.integrations.wandb",
    "ray.air.integrations.keras": "poptune.air.integrations.keras",
    "ray.air.integrations.comet": "poptune.air.integrations.comet",
}


def _source_names(module: str) -> list[str]:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise SystemExit(f"cannot find {module}")
    tree = ast.parse(Path(spec.origin).read_text())
    names = []
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and not node.name.startswith("_"):
            names.append(node.name)
    return names


def public_names(module: str) -> list[str]:
    try:
        names = getattr(importlib.import_module(module), "__all__", None)
    except Exception:  # an optional dependency missing here: read the source instead
        names = None
    if names is None:
        names = _source_names(module)
    return sorted(n for n in names if not n.startswith("_"))


def main() -> None:
    import ray

    out = {
        "ray_version": ray.__version__,
        "modules": {m: {"poptune": p, "names": public_names(m)} for m, p in MODULES.items()},
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
