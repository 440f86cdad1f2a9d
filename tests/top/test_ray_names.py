"""Every public name of Ray Tune 2.60's modules exists at the mirrored poptune path.

The names come from ``ray_public_names.json`` (made once from an installed Ray by
``tools/ray_public_names.py``); Ray itself is not imported here.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from poptune._imports import MissingDependencyError

DATA = json.loads((Path(__file__).with_name("ray_public_names.json")).read_text())

#: names poptune deliberately leaves out, each with the reason (README names them too)
DELIBERATE_ABSENCES: dict[str, str] = {}

CASES = [(ray_mod, entry["poptune"], name)
         for ray_mod, entry in DATA["modules"].items() for name in entry["names"]]


def test_the_list_is_ray_2_60s():
    assert DATA["ray_version"] == "2.60.0"
    assert len(DATA["modules"]["ray.tune"]["names"]) == 45
    assert "create_scheduler" in DATA["modules"]["ray.tune"]["names"]


@pytest.mark.parametrize("ray_module, module, name", CASES,
                         ids=[f"{m}.{n}" for m, _, n in CASES])
def test_name_exists_at_the_mirrored_path(ray_module, module, name):
    if f"{ray_module}.{name}" in DELIBERATE_ABSENCES:
        pytest.skip(DELIBERATE_ABSENCES[f"{ray_module}.{name}"])
    mod = importlib.import_module(module)
    assert name in dir(mod), f"{module} lacks {name} (Ray has {ray_module}.{name})"
    try:
        value = getattr(mod, name)
    except MissingDependencyError:  # e.g. the Keras callbacks without a Keras backend
        return
    assert value is not None
