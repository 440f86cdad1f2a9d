"""Remote storage with workers on machines that do not share the driver's staging directory
(a probe: with Ray or Dask, a node that could not make the driver's staging path lost every
trial, and ``log_to_file`` output and files a trial wrote never reached storage). Such a
worker keeps each trial's files in a directory of its own and puts them on storage when the
trial ends. Real worker processes of the local backend stand in for remote ones: the
driver's token in its staging directory is made unreadable to them."""

from __future__ import annotations

import os
import sys
import tempfile
import textwrap

import pytest

from poptune.backends.local import LocalBackend
from poptune.engine.runner import Runner
from tests.storage._s3 import fresh_bucket, import_source, s3_env, s3_server  # noqa: F401

pytest.importorskip("s3fs", reason="remote storage tests need `pip install s3fs moto[server]`")

TRAIN = textwrap.dedent('''
    import os, tempfile
    import poptune as tune

    def train(config):
        print("printed by", config["i"], flush=True)
        ctx = tune.get_context()
        with open(os.path.join(ctx.get_trial_dir(), "artifact.txt"), "w") as f:
            f.write(str(config["i"]))
        d = tempfile.mkdtemp()
        open(os.path.join(d, "w"), "w").write("1")
        tune.report({"score": config["i"], "dir": ctx.get_trial_dir()},
                    checkpoint=tune.Checkpoint.from_directory(d))
''')


def _own_roots() -> set[str]:
    return {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("poptune_trials_")}


def test_a_worker_apart_from_the_driver_puts_its_trials_files_on_storage(
        s3_server, monkeypatch, tmp_path):  # noqa: F811
    import poptune as tune

    s3_env(monkeypatch, s3_server, str(tmp_path / "staging"))
    fs, bucket = fresh_bucket("w")
    mod = import_source(tmp_path, "remotedirmod", TRAIN)
    monkeypatch.setattr(LocalBackend, "runs_elsewhere", True)
    real = Runner._write_storage_marker

    def another_machine(self):  # the workers cannot read the driver's token
        exp_dir, _ = real(self)
        return exp_dir, "0" * 16

    monkeypatch.setattr(Runner, "_write_storage_marker", another_machine)
    before = _own_roots()
    try:
        grid = tune.Tuner(mod.train, param_space={"i": tune.grid_search([1, 2])},
                          run_config=tune.RunConfig(name="exp", verbose=0, log_to_file=True,
                                                    storage_path=f"s3://{bucket}/runs")).fit()
    finally:
        sys.path.remove(str(tmp_path))
    assert grid.num_errors == 0
    staging = str(tmp_path / "staging")
    for r in grid:
        assert not r.metrics["dir"].startswith(staging)  # the worker's own directory
        files = {f.rsplit("/", 1)[-1] for f in fs.find(r.path)}
        assert {"artifact.txt", "stdout", "stderr", "result.json"} <= files, files
        assert fs.cat(f"{r.path}/artifact.txt").decode() == str(r.config["i"])
        assert f"printed by {r.config['i']}" in fs.cat(f"{r.path}/stdout").decode()
        with r.checkpoint.as_directory() as d:
            assert open(os.path.join(d, "w")).read() == "1"
    assert _own_roots() == before  # removed when the workers ended
    # the driver's token for its workers is not part of the experiment on storage
    assert not [f for f in fs.find(f"{bucket}/runs/exp") if f.endswith(".poptune_storage_check")]
