"""poptune._validation.no_metric_mode: one readiness message for schedulers and searchers."""

from __future__ import annotations

import pytest

import poptune as tune
from poptune._validation import no_metric_mode
from poptune.exceptions import TuneConfigError
from poptune.experiment import Trial
from poptune.schedulers import AsyncHyperBandScheduler, MedianStoppingRule
from poptune.search.bohb import TuneBOHB


def test_the_message_names_the_object_what_is_missing_and_where_to_pass_it():
    error = no_metric_mode(MedianStoppingRule(), None, "min", "scheduler")
    assert isinstance(error, TuneConfigError)
    assert str(error) == (
        "MedianStoppingRule has no valid `metric` (None) or `mode` ('min'); pass them to the "
        "scheduler or to `tune.TuneConfig()`")


def test_schedulers_and_searchers_raise_the_same_shape():
    with pytest.raises(TuneConfigError) as scheduler_error:
        AsyncHyperBandScheduler().on_trial_add(Trial("t0", "f", {}))
    assert str(scheduler_error.value) == str(
        no_metric_mode(AsyncHyperBandScheduler(), None, None, "scheduler"))
    searcher = TuneBOHB(space={"x": tune.uniform(0, 1)})
    with pytest.raises(TuneConfigError) as searcher_error:
        searcher.suggest("t0")
    assert str(searcher_error.value) == (
        "TuneBOHB has no valid `metric` (None) or `mode` (None); pass them to the searcher or "
        "to `tune.TuneConfig()`")
