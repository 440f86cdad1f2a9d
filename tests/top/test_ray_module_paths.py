"""Ray's deeper module paths that scripts import from (``from ray.tune.search.searcher import
Searcher``, ``from ray.tune.progress_reporter import CLIReporter``, ...) give poptune's objects
at the mirrored path."""

from __future__ import annotations

import importlib

import pytest

import poptune
from poptune import schedulers, search, trainable
from poptune.callbacks import progress
from poptune.integration import comet

#: (poptune module mirroring Ray's, name, the object it must be)
PATHS = [
    ("poptune.progress_reporter", "CLIReporter", progress.CLIReporter),
    ("poptune.progress_reporter", "JupyterNotebookReporter", progress.JupyterNotebookReporter),
    ("poptune.progress_reporter", "ProgressReporter", progress.ProgressReporter),
    ("poptune.progress_reporter", "TuneReporterBase", progress.TuneReporterBase),
    ("poptune.result_grid", "ResultGrid", poptune.ResultGrid),
    ("poptune.tune_config", "TuneConfig", poptune.TuneConfig),
    ("poptune.tune_config", "ResumeConfig", poptune.ResumeConfig),
    ("poptune.error", "TuneError", poptune.TuneError),
    ("poptune.syncer", "SyncConfig", poptune.SyncConfig),
    ("poptune.context", "TuneContext", poptune.TuneContext),
    ("poptune.context", "get_context", poptune.get_context),
    ("poptune.schedulers.trial_scheduler", "TrialScheduler", schedulers.TrialScheduler),
    ("poptune.schedulers.trial_scheduler", "FIFOScheduler", schedulers.FIFOScheduler),
    ("poptune.search.searcher", "Searcher", search.Searcher),
    ("poptune.search.searcher", "ConcurrencyLimiter", search.ConcurrencyLimiter),
    ("poptune.search.search_algorithm", "SearchAlgorithm", search.SearchAlgorithm),
    ("poptune.trainable.trainable", "Trainable", trainable.Trainable),
    ("poptune.trainable.util", "with_parameters", trainable.with_parameters),
    ("poptune.trainable.util", "with_resources", trainable.with_resources),
    ("poptune.logger.comet", "CometLoggerCallback", comet.CometLoggerCallback),
]


@pytest.mark.parametrize("module, name, expected", PATHS,
                         ids=[f"{m}.{n}" for m, n, _ in PATHS])
def test_rays_module_path_gives_poptunes_object(module, name, expected):
    assert getattr(importlib.import_module(module), name) is expected


def test_a_custom_scheduler_from_rays_path_runs(tmp_path):
    """A Ray-style scheduler written against ``ray.tune.schedulers.trial_scheduler``."""
    from poptune.schedulers.trial_scheduler import FIFOScheduler, TrialScheduler

    class StopAtTwo(FIFOScheduler):
        def on_trial_result(self, tune_controller, trial, result):
            return TrialScheduler.STOP if result["training_iteration"] >= 2 else \
                TrialScheduler.CONTINUE

    def count(config):
        for i in range(10):
            poptune.report({"i": i})

    grid = poptune.Tuner(count, tune_config=poptune.TuneConfig(scheduler=StopAtTwo()),
                         run_config=poptune.RunConfig(storage_path=str(tmp_path),
                                                      verbose=0)).fit()
    assert grid[0].metrics["training_iteration"] == 2
