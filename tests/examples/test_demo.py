"""``make demo``: the PBT guide's ConvNet example (``examples/pbt_convnet_example.py``) runs
its three parts to the end, and keeps what it writes where ``POPTUNE_STORAGE_PATH`` says (it
wrote to ``/tmp/poptune_results`` whatever the variable said)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_demo_runs_its_three_parts_where_poptune_storage_path_says(tmp_path):
    env = {**os.environ, "POPTUNE_STORAGE_PATH": str(tmp_path), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "pbt_convnet_example.py"),
                           "--smoke-test"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    experiments = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    # part 1 (PBT, "pbt_test") with its plot (part 2), part 3's replay beside it
    assert "pbt_test" in experiments and len(experiments) == 2, experiments
    assert (tmp_path / "pbt_test" / "best_trial_accuracy.png").is_file()
    assert list((tmp_path / "pbt_test").glob("pbt_policy_*.txt"))
