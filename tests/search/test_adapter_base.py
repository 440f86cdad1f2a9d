"""poptune.search._adapter: the checks and the take-the-Tuner's-space-once logic every
library adapter shares."""

from __future__ import annotations

from typing import Any

import pytest

import poptune as tune
from poptune.exceptions import TuneConfigError
from poptune.search._adapter import SearcherAdapter, check_seed, copy_points
from poptune.search.bohb import TuneBOHB


class _Toy(SearcherAdapter):
    def __init__(self, space: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.space = space
        self.installed = 0

    def _has_own_space(self) -> bool:
        return self.space is not None

    def _parse_space(self, config: dict[str, Any]) -> list[str]:
        return sorted(config)

    def _same_space(self, parsed: list[str]) -> bool:
        return parsed == self.space

    def _install_space(self, parsed: list[str]) -> None:
        self.space, self.installed = parsed, self.installed + 1


def test_an_own_space_is_kept_and_only_borrows_a_missing_metric_or_mode():
    toy = _Toy(space=["a"], metric="loss")
    assert toy.set_search_properties("acc", "max", {"x": 1}) is False
    assert (toy.space, toy.metric, toy.mode) == (["a"], "loss", "max")


def test_the_tuners_space_is_taken_once_and_a_restored_one_must_match():
    toy = _Toy(metric="loss", mode="min")
    assert toy.set_search_properties("acc", "max", {"x": 1}) is True
    assert (toy.space, toy.metric, toy.mode, toy.installed) == (["x"], "acc", "max", 1)
    assert toy.set_search_properties(None, None, {"x": 2}) is True  # same parameters
    assert toy.installed == 1
    assert toy.set_search_properties(None, None, {"y": 2}) is False


def test_a_bad_mode_is_refused_before_the_space_is_read():
    with pytest.raises(TuneConfigError, match="`mode` must be one of"):
        _Toy().set_search_properties(None, "avg", {"x": 1})


def test_a_mode_alone_means_the_anonymous_metric():
    toy = _Toy(mode="max")
    toy._require_metric_mode()
    assert toy.metric == "_metric"
    with pytest.raises(TuneConfigError, match=r"_Toy has no valid `metric` \(None\)"):
        _Toy()._require_metric_mode()


def test_seed_and_points_checks():
    check_seed("seed", None)
    check_seed("seed", 7)
    for bad in (True, 1.5, "3"):
        with pytest.raises(TypeError, match="`seed` must be an int or None"):
            check_seed("seed", bad)
    points = [{"x": {"y": 1}}]
    copied = copy_points(points)
    assert copied == points and copied[0]["x"] is not points[0]["x"]
    assert copy_points(({"x": 1},)) == [{"x": 1}]
    for bad in ({"x": 1}, [1], "x"):
        with pytest.raises(TypeError, match="`points_to_evaluate` must be a list of dicts"):
            copy_points(bad)


def test_bohb_uses_the_shared_checks():
    with pytest.raises(TypeError, match="`seed` must be an int or None"):
        TuneBOHB(seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`points_to_evaluate` must be a list of dicts"):
        TuneBOHB(points_to_evaluate={"x": 1})  # type: ignore[arg-type]
    assert TuneBOHB(space={"x": tune.uniform(0, 1)}, points_to_evaluate=({"x": 0.5},),
                    metric="l", mode="min").suggest("t0") == {"x": 0.5}
