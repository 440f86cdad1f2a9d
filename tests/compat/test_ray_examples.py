"""Ray Tune's own example scripts run on poptune after the import swap (issue 4).

Every script in ``bench/compat/compat_list.txt`` is translated from the installed ``ray``
wheel by ``bench/compat/translate.py`` and run with ``--smoke-test`` in a subprocess,
exactly as ``bench/compat/run_compat.py`` does; one test per script, so CI names the
script that broke. Skipped when ray is not installed (the examples come from its wheel).
"""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMPAT = os.path.join(ROOT, "bench", "compat")
sys.path.insert(0, COMPAT)

import run_compat

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                       reason="the examples are read from the installed ray wheel"),
]

SCRIPTS = run_compat.read_list(run_compat.DEFAULT_LIST)
TIMEOUT = 240.0


@pytest.fixture(scope="module")
def translated_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = str(tmp_path_factory.mktemp("ray_examples"))
    run_compat.translate_all(out, SCRIPTS, quiet=True)
    return out


@pytest.mark.timeout(TIMEOUT + 30)
@pytest.mark.parametrize("script", SCRIPTS)
def test_ray_example_runs(script: str, translated_dir: str) -> None:
    outcome = run_compat.run_one(script, translated_dir, timeout=TIMEOUT)
    assert outcome.status == "pass", (
        f"{script}: {outcome.status} after {outcome.seconds:.1f}s: {outcome.last_error}\n"
        f"--- last output ---\n{outcome.output[-3000:]}")
