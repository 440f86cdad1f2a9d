"""Results may hold instances of classes defined in the user's script (``__main__``): they
are shipped with cloudpickle, as Ray ships results."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = textwrap.dedent("""
    import sys
    import poptune as tune


    class Box:
        def __init__(self, v):
            self.v = v


    def train(config):
        for i in range(2):
            tune.report({"score": i, "box": Box(i)})


    if __name__ == "__main__":
        grid = tune.Tuner(train, run_config=tune.RunConfig(storage_path=sys.argv[1],
                                                           verbose=0)).fit()
        result = grid[0]
        assert result.error is None, result.error
        box = result.metrics["box"]
        print("BOX", type(box).__name__, box.v, result.metrics["score"])
""")


def test_a_result_holding_an_object_of_a_class_from_the_users_script_arrives(tmp_path):
    script = tmp_path / "user_script.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "results")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "BOX Box 1 1" in proc.stdout
