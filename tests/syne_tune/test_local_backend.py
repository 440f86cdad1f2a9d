"""LocalBackend: a Syne Tune training script (``--name value`` arguments, ``Reporter`` lines
on stdout, ``--st_checkpoint_dir``) runs as a trial in a real subprocess."""

from __future__ import annotations

import textwrap

import pytest

from poptune.syne_tune import StoppingCriterion, Tuner
from poptune.syne_tune.backend import LocalBackend
from poptune.syne_tune.config_space import randint, uniform
from poptune.syne_tune.experiments import load_experiment
from poptune.syne_tune.optimizer.baselines import RandomSearch

SCRIPT = textwrap.dedent('''
    import argparse, os
    from poptune.syne_tune import Reporter

    p = argparse.ArgumentParser()
    p.add_argument("--x", type=float)
    p.add_argument("--epochs", type=int)
    p.add_argument("--st_checkpoint_dir", type=str)
    args, _ = p.parse_known_args()
    assert os.path.isdir(args.st_checkpoint_dir)
    report = Reporter()
    for epoch in range(1, args.epochs + 1):
        report(epoch=epoch, loss=(args.x - 0.5) ** 2 / epoch)
''')


def test_a_training_script_reports_through_its_stdout(tmp_path):
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    space = {"x": uniform(0, 1), "epochs": randint(2, 3)}
    tuner = Tuner(LocalBackend(entry_point=str(script)),
                  RandomSearch(space, metric="loss", points_to_evaluate=[{"x": 0.5}]),
                  StoppingCriterion(max_num_trials_completed=1), n_workers=2)
    assert tuner.name.startswith("train-script-")  # the entry point, "_" -> "-" (Syne Tune)
    tuner.run()
    exp = load_experiment(tuner.name)
    df = exp.results
    first = df[df.trial_id == 0]
    assert list(first.epoch) == list(range(1, first.config_epochs.iloc[0] + 1))
    assert first.loss.iloc[-1] == 0.0 and exp.best_config()["config_x"] == 0.5
    assert tuner.status.num_trials_completed >= 2


def test_a_missing_entry_point_is_named(tmp_path):
    with pytest.raises(ValueError, match="`entry_point`"):
        LocalBackend(entry_point=str(tmp_path / "nope.py"))
