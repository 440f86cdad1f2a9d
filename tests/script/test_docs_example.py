"""The runnable example of docs/script_trials.md runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "script_trials.md")


def test_the_docs_example_tunes_its_script_with_pbt(tmp_path):
    text = open(DOC).read()
    blocks = {m.group(1): m.group(0) for m in
              re.finditer(r"(?<=```python\n)# (\w+\.py)\n.*?(?=```)", text, re.S)}
    assert set(blocks) == {"train.py", "tune_it.py"}
    for name, code in blocks.items():
        (tmp_path / name).write_text(code)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, POPTUNE_STORAGE_PATH=str(tmp_path / "results"),
               PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "tune_it.py"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "'lr':" in out.stdout
    exp = tmp_path / "results" / "script_pbt"
    trials = [d for d in exp.iterdir() if d.is_dir()]
    assert len(trials) == 4
    for d in trials:
        assert "starting at epoch" in (d / "stdout.txt").read_text()
