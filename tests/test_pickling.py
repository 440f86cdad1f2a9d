"""Trainables pickled by value keep their file names: a failing trial's traceback names the
user's script and shows its line, as in Ray (cloudpickle from 3.1.3 writes
``File "<dynamic-code>"`` without a line)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import cloudpickle

from poptune._pickling import dumps_with_sources

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_function_and_its_nested_code_keep_their_file_name(tmp_path):
    source = tmp_path / "user_mod.py"
    source.write_text("def outer():\n    def inner():\n        return 1\n    return inner\n")
    namespace: dict = {}
    exec(compile(source.read_text(), str(source), "exec"), namespace)  # not importable:
    outer = namespace["outer"]                                           # pickled by value
    back = cloudpickle.loads(dumps_with_sources(outer))
    assert back.__code__.co_filename == str(source)
    assert back().__code__.co_filename == str(source)
    assert back()() == 1


def test_a_failing_trials_traceback_names_the_script_and_its_line(tmp_path):
    script = tmp_path / "my_tuning.py"
    script.write_text(textwrap.dedent(f"""
        import poptune as tune

        def train_fn(config):
            raise ValueError("boom in my script")

        grid = tune.Tuner(train_fn, run_config=tune.RunConfig(
            storage_path={str(tmp_path / "results")!r}, verbose=0)).fit()
        print(open(grid[0].path + "/error.txt").read())
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=ROOT), timeout=120, check=True)
    assert f'File "{script}", line 5, in train_fn' in out.stdout
    assert 'raise ValueError("boom in my script")' in out.stdout
    assert "<dynamic-code>" not in out.stdout
