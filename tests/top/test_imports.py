"""``poptune._imports.require``: optional dependencies imported on first use, without letting
comet_ml patch the driver's ML frameworks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from poptune._imports import MissingDependencyError, require

pytest.importorskip("tensorboardX")
pytest.importorskip("comet_ml")

PROBE = """
import os, sys
{setup}
import comet_ml
print(hasattr(comet_ml, "MODULE_FINDER"), "COMET_DISABLE_AUTO_LOGGING" in os.environ)
"""


def probe(setup: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMET_")}
    return subprocess.run([sys.executable, "-c", PROBE.format(setup=setup)], env=env,
                          capture_output=True, text=True, timeout=120, check=True).stdout.strip()


def test_tensorboardx_through_poptune_does_not_turn_on_comets_framework_patching():
    """tensorboardX imports comet_ml when it is installed; comet_ml then patches MLflow, Keras,
    torch, ... as they are imported (a driver-side MLflow run became an offline Comet
    experiment in the working directory). Imported through poptune, it does not, and the
    variable that stops it is not left set."""
    assert probe("import tensorboardX") == "True False"  # what poptune prevents
    assert probe("from poptune.logger import TBXLoggerCallback; TBXLoggerCallback()") == \
        "False False"
    # a user's own setting wins
    assert probe("os.environ['COMET_DISABLE_AUTO_LOGGING'] = '0'\n"
                 "from poptune.logger import TBXLoggerCallback; TBXLoggerCallback()") == \
        "True True"


def test_require_names_the_install_command():
    assert require("json") is sys.modules["json"]
    with pytest.raises(MissingDependencyError, match=r"pip install 'poptune\[zoopt\]'"):
        require("zoopt.not_a_module", "ZOOptSearch")
