"""BayesOptSearch on bayesian-optimization 1.x (the API Ray 2.60 and nevergrad 1.0 use).

The 3.x path is what the rest of the search tests run. The 1.x path runs where 1.x is
importable: in this interpreter, or from the directory ``make venv`` fills with it
(``.venv/bayes-opt-1``, or ``$POPTUNE_BAYES_OPT_1``); otherwise the test is skipped.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Ray 2.60's BayesOptSearch on bayesian-optimization 1.4.0 (scikit-learn 1.9, scipy 1.17),
# driven as below: 3 random trials, then the Gaussian process
RAY_2_60_CONFIGS = [
    [-1.694766843, 0.779918792], [-0.246363074, 0.723465178], [1.911958048, 0.53849587],
    [-0.736720351, 0.785478063], [0.332956604, 0.0], [0.767416556, 1.0],
    [0.999301675, 0.0], [-0.339700632, 0.000320827], [0.618564483, 0.322724766],
]

DRIVE = """
import json
import bayes_opt
from poptune.search.bayesopt import BayesOptSearch

assert hasattr(bayes_opt, "UtilityFunction"), bayes_opt.__file__
s = BayesOptSearch(space={"x": (-2.0, 2.0), "y": (0.0, 1.0)}, metric="loss", mode="min",
                   random_search_steps=3, random_state=7)
out = []
for i in range(9):
    cfg = s.suggest(f"t{i}")
    out.append([cfg["x"], cfg["y"]])
    s.on_trial_complete(f"t{i}", {"loss": (cfg["x"] - 0.5) ** 2 + cfg["y"]})
print(json.dumps(out))
"""


def _bayes_opt_1_path() -> str | None:
    """The sys.path entry that makes bayes_opt 1.x importable ("" when it already is)."""
    try:
        if importlib.metadata.version("bayesian-optimization").startswith("1."):
            return ""
    except importlib.metadata.PackageNotFoundError:
        pass
    for path in (os.environ.get("POPTUNE_BAYES_OPT_1"), os.path.join(ROOT, ".venv",
                                                                      "bayes-opt-1")):
        if path and os.path.isdir(os.path.join(path, "bayes_opt")):
            return path
    return None


def test_bayes_opt_1x_suggests_the_configs_rays_bayesoptsearch_suggests():
    extra = _bayes_opt_1_path()
    if extra is None:
        pytest.skip("bayesian-optimization 1.x is not installed (make venv puts it in "
                    ".venv/bayes-opt-1)")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (extra, ROOT, env.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, "-c", DRIVE], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    configs = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(configs) == len(RAY_2_60_CONFIGS)
    for got, ray in zip(configs, RAY_2_60_CONFIGS):
        assert got == pytest.approx(ray, abs=1e-6)
