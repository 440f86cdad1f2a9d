"""Tests of the web dashboard; also the small real PBT experiment the CLI tests share.

:func:`make_experiment` runs a real ``tune.Tuner`` with PBT on a fast function trainable
(a checkpoint every iteration) written to a module in a temporary directory, so a restored
run in another process can import the same trainable as ``trainmod:train``.
"""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

TRAIN_MODULE = textwrap.dedent('''
    import json, os, tempfile, time
    import poptune as tune

    def train(config):
        """score grows fastest near lr=0.01; the trial with lr == config["fail_lr"] fails once
        at step 1 (a marker file beside this module records that it did)."""
        step, score = 0, 0.0
        ckpt = tune.get_checkpoint()
        if ckpt:
            with ckpt.as_directory() as d:
                state = json.load(open(os.path.join(d, "state.json")))
            step, score = state["step"], state["score"]
        while step < config["steps"]:
            step += 1
            time.sleep(config.get("sleep", 0.0))
            score += 1.0 - min(1.0, abs(config["lr"] - 0.01) * 100)
            marker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "failed_once")
            if config["lr"] == config.get("fail_lr") and step == 1 and not os.path.exists(marker):
                open(marker, "w").close()
                raise ValueError("injected failure at step 1")
            d = tempfile.mkdtemp()
            json.dump({"step": step, "score": score}, open(os.path.join(d, "state.json"), "w"))
            tune.report({"score": score, "lr_seen": config["lr"]},
                        checkpoint=tune.Checkpoint.from_directory(d))
''')


def train_module(folder: Path) -> Any:
    """Write ``trainmod.py`` into ``folder`` and import it (its folder goes on sys.path)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "trainmod.py").write_text(TRAIN_MODULE)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    sys.modules.pop("trainmod", None)
    return importlib.import_module("trainmod")


def make_experiment(storage: Path, name: str = "pbt_exp", *, fail: bool = False,
                    steps: int = 40, sleep: float = 0.002, pbt: bool = True) -> Path:
    """Run a 4-trial synchronous PBT experiment into ``storage/name`` (10 exploits).

    With ``fail``, the trial with ``lr=0.001`` raises at step 1, once per storage directory
    (a marker in ``storage/_code`` stops it failing again when restarted). ``pbt=False`` runs
    the same trials under FIFO.
    """
    import poptune as tune
    from poptune.schedulers import PopulationBasedTraining

    mod = train_module(storage / "_code")
    lrs = [0.001, 0.002, 0.005, 0.01]
    scheduler = PopulationBasedTraining(
        time_attr="training_iteration", perturbation_interval=4, seed=7, synch=True,
        hyperparam_mutations={"lr": tune.uniform(0.0005, 0.02)})
    space = {"lr": tune.grid_search(lrs), "steps": steps, "sleep": sleep,
             "fail_lr": 0.001 if fail else None}
    tune.Tuner(
        tune.with_resources(mod.train, {"cpu": 0.5}), param_space=space,
        tune_config=tune.TuneConfig(scheduler=scheduler if pbt else None, metric="score",
                                    mode="max"),
        run_config=tune.RunConfig(name=name, storage_path=str(storage), verbose=0),
    ).fit()
    return storage / name


def append_result(exp_dir: Path, trial_id: str, result: dict[str, Any]) -> None:
    """Commit one ``result`` record to the journal, as the runner does while a run is live."""
    from poptune.storage.journal import Journal
    from poptune.storage.records import ResultReported

    journal = Journal(str(exp_dir / "journal.jsonl"))
    journal.append(ResultReported(trial_id, result))
    journal.close()


def commit_bytes(exp_dir: Path, *records: Any) -> bytes:
    """The bytes of the journal's next commit group holding ``records`` (not written)."""
    from poptune.storage.journal import _last_commit, encode_group, frame

    _, seq = _last_commit(str(exp_dir / "journal.jsonl"))
    return encode_group([frame(r.encode()) for r in records], seq + 1)


def copy_without_end(src: Path, dst: Path) -> None:
    """Copy journal ``src`` to ``dst`` without its ``end`` record (a run still going)."""
    from poptune.storage.journal import Journal
    from poptune.storage.records import ExperimentEnded
    from poptune.storage.replay import read_groups

    journal = Journal(str(dst))
    for group in read_groups(str(src)):
        for rec in group:
            if not isinstance(rec, ExperimentEnded):
                journal.append(rec)
        journal.commit()
    journal.close()


def journal_records(exp_dir: Path, kind: str) -> list[dict[str, Any]]:
    with open(exp_dir / "journal.jsonl") as f:
        return [r for r in map(json.loads, f) if r.get("e") == kind]
