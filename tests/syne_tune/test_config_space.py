"""Syne Tune's domains map onto poptune's with Syne Tune's bounds."""

from __future__ import annotations

import math

import pytest

from poptune.syne_tune import config_space as cs


def test_integer_bounds_are_inclusive_as_in_syne_tune():
    assert sorted(set(cs.randint(1, 3).sample(size=300, random_state=0))) == [1, 2, 3]
    values = cs.lograndint(1, 4).sample(size=400, random_state=0)
    assert min(values) == 1 and max(values) == 4


def test_floats_stay_in_range_and_loguniform_is_log_spread():
    u = cs.uniform(-1.0, 2.0).sample(size=200, random_state=1)
    assert all(-1.0 <= v <= 2.0 for v in u)
    lg = cs.loguniform(1e-4, 1.0).sample(size=400, random_state=1)
    assert all(1e-4 <= v <= 1.0 for v in lg)
    below = sum(v < 1e-2 for v in lg) / len(lg)  # half the log range lies below 1e-2
    assert 0.35 < below < 0.65


def test_choice_and_ordinal_kinds():
    assert set(cs.choice(["a", "b"]).sample(size=50, random_state=0)) == {"a", "b"}
    nn = cs.ordinal([1, 2, 10], kind="nn").sample(size=600, random_state=0)
    # nearest neighbour on [1, 10]: 10 is nearest for draws above 6, about 4/9 of them
    assert 0.35 < nn.count(10) / 600 < 0.55
    equal = cs.ordinal(["x", "y"]).sample(size=50, random_state=0)
    assert set(equal) == {"x", "y"}
    assert set(cs.logordinal([1, 10, 100]).sample(size=100, random_state=0)) == {1, 10, 100}


def test_finite_ranges():
    assert cs.finrange(0.0, 1.0, 5).categories == [0.0, 0.25, 0.5, 0.75, 1.0]
    log = cs.logfinrange(1.0, 100.0, 3, cast_int=True).categories
    assert log == [1, 10, 100]


@pytest.mark.parametrize("call, name", [
    (lambda: cs.ordinal([3, 1], kind="nn"), "categories"),
    (lambda: cs.ordinal([1, 2], kind="zigzag"), "kind"),
    (lambda: cs.finrange(0, 1, 0), "size"),
])
def test_bad_arguments_name_the_parameter(call, name):
    with pytest.raises((ValueError, TypeError), match=f"`{name}`"):
        call()


def test_constants_pass_through_to_the_param_space():
    space = {"lr": cs.loguniform(1e-3, 1), "max_epochs": 10}
    assert space["max_epochs"] == 10 and not math.isnan(space["lr"].sample(random_state=0))


@pytest.mark.parametrize("domain, values", [
    (cs.ordinal([1, 2, 3]), [1, 2, 3]),
    (cs.logordinal([1, 2, 4, 8]), [1, 2, 4, 8]),
])
def test_nearest_neighbour_ordinals_draw_evenly_spaced_values_equally(domain, values):
    # Syne Tune widens the interval by half the mean spacing (in log space for nn-log)
    draws = domain.sample(size=20000, random_state=0)
    share = [draws.count(v) / len(draws) for v in values]
    assert all(abs(p - 1 / len(values)) < 0.02 for p in share), share


def test_finite_ranges_are_clipped_and_expose_their_values():
    assert cs.logfinrange(1, 100, 3).values == [1.0, 10.000000000000002, 100.0]
    assert max(cs.logfinrange(0.1, 34.9, 7).values) <= 34.9
    assert cs.finrange(0.0, 1.0, 3).values == cs.finrange(0.0, 1.0, 3).categories
    with pytest.raises(ValueError, match="`lower`"):
        cs.finrange(3, 1, 3)


def test_float_bounds_as_syne_tune():
    assert cs.uniform(1, 1).sample(size=3, random_state=0) == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="`lower`"):
        cs.uniform(1, 0)
