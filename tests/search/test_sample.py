"""Search-space domains: bounds, types, quantization, randomness and input validation."""

from __future__ import annotations

import functools
import math
import os
import pickle
import random
import warnings

import numpy as np
import pytest

from poptune.exceptions import TuneConfigError
from poptune.search import sample as s

N = 2000


def draws(domain: s.Domain, n: int = N, seed: int = 0) -> list:
    """``n`` values as Python scalars (``sample`` gives a numpy array for some domains)."""
    values = domain.sample(size=n, random_state=seed)
    return values.tolist() if isinstance(values, np.ndarray) else values


def is_multiple(value: float, q: float) -> bool:
    return math.isclose(value / q, round(value / q), abs_tol=1e-9)


# ---------------------------------------------------------------- bounds, types, coverage


def test_uniform_stays_in_half_open_range_and_spreads():
    values = draws(s.uniform(-5, -1))
    assert all(type(v) is float and -5 <= v < -1 for v in values)
    assert min(values) < -4.99 and max(values) > -1.01


def test_quniform_hits_both_bounds_on_the_q_lattice():
    values = draws(s.quniform(3.2, 5.4, 0.2))
    assert all(type(v) is float and 3.2 <= v <= 5.4 for v in values)
    assert all(is_multiple(v, 0.2) for v in values)
    assert math.isclose(min(values), 3.2) and math.isclose(max(values), 5.4)
    assert len({round(v, 6) for v in values}) == 12


def test_loguniform_is_uniform_in_log_space():
    values = draws(s.loguniform(1e-4, 1e-2))
    assert all(type(v) is float and 1e-4 <= v < 1e-2 for v in values)
    below_1e3 = sum(v < 1e-3 for v in values) / N
    assert 0.45 < below_1e3 < 0.55  # half the mass per decade


def test_float_quantization_with_q_one_still_rounds():
    # as Ray 2.60 (whole floats; an older note here said Ray returned unrounded ones)
    assert all(v == int(v) for v in draws(s.quniform(0, 10, 1)))


def test_qloguniform_is_quantized_and_reaches_upper_bound():
    values = draws(s.qloguniform(1, 100, 1), n=5000)
    assert all(type(v) is float and 1 <= v <= 100 and v == int(v) for v in values)
    assert min(values) == 1 and max(values) == 100
    small = draws(s.qloguniform(1e-4, 1e-1, 5e-5))
    assert all(1e-4 <= v <= 1e-1 + 1e-12 and is_multiple(v, 5e-5) for v in small)


def test_randn_and_qrandn_follow_mean_and_sd():
    values = draws(s.randn(10, 2))
    assert all(type(v) is float for v in values)
    assert abs(np.mean(values) - 10) < 0.2 and abs(np.std(values) - 2) < 0.2
    qvalues = draws(s.qrandn(10, 2, 0.2))
    assert all(type(v) is float and is_multiple(v, 0.2) for v in qvalues)


def test_randint_excludes_upper_and_covers_the_range():
    values = draws(s.randint(-9, 15))
    assert all(type(v) is int for v in values)
    assert set(values) == set(range(-9, 15))


def test_qrandint_includes_upper_for_q_above_one():
    assert set(draws(s.qrandint(-21, 12, 3))) == set(range(-21, 13, 3))
    # bounds that are not multiples of q are snapped inwards: 1..10 -> 3, 6, 9
    values = draws(s.qrandint(1, 10, 3))
    assert all(type(v) is int for v in values) and set(values) == {3, 6, 9}


@pytest.mark.parametrize("args", [(0, 10, 2), (1, 10, 3), (-7, 7, 7)])
def test_qrandint_draws_each_multiple_alike_as_ray(args):
    """Ray 2.60 draws the multiples' indices: each multiple of q in [lower, upper] is as likely
    (rounding a randint draw instead would make 0..10 step 2 favour 4 and 8 and never give
    10)."""
    values = draws(s.qrandint(*args), n=12000)
    counts = {v: values.count(v) for v in set(values)}
    expected = 12000 / len(counts)
    assert all(abs(c - expected) < 0.1 * expected for c in counts.values()), counts
    ray_sample = pytest.importorskip("ray.tune.search.sample")
    assert set(counts) == set(ray_sample.qrandint(*args).sample(size=3000))


def test_qrandint_with_q_one_keeps_rays_exclusive_upper_bound():
    # Ray skips quantization for q == 1, so the upper bound stays exclusive.
    assert set(draws(s.qrandint(1, 5))) == {1, 2, 3, 4}


def test_lograndint_and_qlograndint_bounds():
    values = draws(s.lograndint(1, 10))
    assert all(type(v) is int for v in values) and set(values) == set(range(1, 10))
    qvalues = draws(s.qlograndint(2, 20, 2), n=5000)
    assert all(type(v) is int for v in qvalues) and set(qvalues) == set(range(2, 21, 2))


def test_choice_preserves_element_types_and_covers_all():
    categories = [1, "a", None, 2.5, (1, 2)]
    values = draws(s.choice(categories))
    for category in categories:
        assert any(v == category and type(v) is type(category) for v in values)
    assert [type(v) for v in s.choice([np.int64(3)]).sample(size=2)] == [np.int64] * 2


def test_choice_accepts_any_non_string_iterable():
    assert s.choice(range(3)).categories == [0, 1, 2]
    assert s.choice(x for x in "ab").categories == ["a", "b"]


# ---------------------------------------------------------------- sample() API


# size > 1: what Ray 2.60 returns (checked against the installed Ray below)
ARRAYS = {"uniform": (s.uniform(-1, 2), np.float64), "loguniform": (s.loguniform(1e-3, 1),
          np.float64), "randint": (s.randint(0, 9), np.int64),
          "lograndint": (s.lograndint(1, 100), np.int64), "randn": (s.randn(0, 2), np.float64)}
LISTS = {"quniform": (s.quniform(0, 10, 0.5), float), "quniform_q1": (s.quniform(0, 10, 1), float),
         "qloguniform": (s.qloguniform(1e-2, 1, 1e-2), float),
         "qrandint": (s.qrandint(0, 20, 5), int), "qrandint_q1": (s.qrandint(1, 5), int),
         "qlograndint": (s.qlograndint(2, 100, 2), int), "qrandn": (s.qrandn(0, 2, 0.5), float),
         "choice": (s.choice([1, "a", 2.5, None]), None),
         "sample_from": (s.sample_from(lambda: 7), int)}


def test_sample_returns_a_scalar_for_size_one_and_an_array_or_a_list_otherwise():
    for domain, _ in {**ARRAYS, **LISTS}.values():
        assert type(domain.sample(random_state=1)) in (float, int, str, type(None))
    for name, (domain, dtype) in ARRAYS.items():  # uniform, log-uniform and normal numbers
        values = domain.sample(size=3, random_state=1)
        assert isinstance(values, np.ndarray) and values.dtype == dtype, name
        assert values.shape == (3,) and domain.sample(size=np.int64(1), random_state=1) == \
            domain.sample(random_state=1)
    for name, (domain, kind) in LISTS.items():  # quantized, choice, sample_from: values
        values = domain.sample(size=3, random_state=1)
        assert isinstance(values, list) and len(values) == 3, name
        assert kind is None or {type(v) for v in values} == {kind}, name


@pytest.fixture
def ray_sample():
    """Ray's ``sample`` module, imported here; what importing Ray changes in this process (the
    global random states, an environment variable, warning filters) is put back after."""
    env, state, np_state = dict(os.environ), random.getstate(), np.random.get_state()
    with warnings.catch_warnings():
        yield pytest.importorskip("ray.tune.search.sample")
    random.setstate(state)
    np.random.set_state(np_state)
    os.environ.clear()
    os.environ.update(env)


@pytest.mark.parametrize("seed", [5, "generator", "random_state"])
def test_several_values_have_rays_type_and_values(seed, ray_sample):
    """``sample(size=n)``: the same type (array or list, and element types) and the same
    values as Ray 2.60 for every domain, with each kind of ``random_state``."""

    def rng():
        return {"generator": np.random.default_rng(5),
                "random_state": np.random.RandomState(5)}.get(seed, seed)

    theirs = {"uniform": ray_sample.uniform(-1, 2), "loguniform": ray_sample.loguniform(1e-3, 1),
              "randint": ray_sample.randint(0, 9), "lograndint": ray_sample.lograndint(1, 100),
              "randn": ray_sample.randn(0, 2), "quniform": ray_sample.quniform(0, 10, 0.5),
              "quniform_q1": ray_sample.quniform(0, 10, 1),
              "qloguniform": ray_sample.qloguniform(1e-2, 1, 1e-2),
              "qrandint": ray_sample.qrandint(0, 20, 5), "qrandint_q1": ray_sample.qrandint(1, 5),
              "qlograndint": ray_sample.qlograndint(2, 100, 2),
              "qrandn": ray_sample.qrandn(0, 2, 0.5),
              "choice": ray_sample.choice([1, "a", 2.5, None]),
              "sample_from": ray_sample.sample_from(lambda: 7)}
    assert set(theirs) == {*ARRAYS, *LISTS}
    for name, (domain, _) in {**ARRAYS, **LISTS}.items():
        for size in (1, 2, 6):
            ray, ours = theirs[name].sample(size=size, random_state=rng()), \
                domain.sample(size=size, random_state=rng())
            assert type(ours) is type(ray), (name, size)
            if isinstance(ray, np.ndarray):
                assert ours.dtype == ray.dtype and ours.tolist() == ray.tolist(), (name, size)
            else:
                assert ours == ray, (name, size)
                kinds = [type(v) for v in (ray if size > 1 else [ray])]
                assert [type(v) for v in (ours if size > 1 else [ours])] == kinds, (name, size)


@pytest.mark.parametrize("size", [0, -1, 1.5, True])
def test_sample_rejects_bad_size(size):
    with pytest.raises((TuneConfigError, TypeError), match="`size`"):
        s.uniform(0, 1).sample(size=size)


def test_every_kind_of_random_state_reproduces():
    domain = s.uniform(0, 1)
    by_int = draws(domain, 5, 42)
    assert by_int == draws(domain, 5, 42)
    assert by_int == draws(domain, 5, np.random.default_rng(42))
    legacy = draws(domain, 5, np.random.RandomState(42))
    assert legacy == draws(domain, 5, np.random.RandomState(42))
    assert draws(s.randint(0, 100), 3, np.random.RandomState(0)) == [44, 47, 64]


def test_unseeded_sampling_follows_numpy_s_global_state_and_seeded_leaves_it_alone():
    """As in Ray, whose samplers use the global state: ``np.random.seed(...)`` repeats
    unseeded samples (one draw seeds each sampler). A seeded sample leaves the state alone."""
    np.random.seed(123)
    first = (draws(s.uniform(0, 1), 10, None), s.choice([1, 2, 3]).sample(random_state=None))
    np.random.seed(123)
    assert (draws(s.uniform(0, 1), 10, None), s.choice([1, 2, 3]).sample()) == first
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    s.uniform(0, 1).sample(size=10, random_state=4)
    s.choice([1, 2]).sample(random_state=np.random.default_rng(1))
    assert np.random.random() == expected


@pytest.mark.parametrize("bad", [-1, "seed", 1.5])
def test_bad_random_state_is_rejected(bad):
    with pytest.raises((TuneConfigError, TypeError), match="`random_state`"):
        s.uniform(0, 1).sample(random_state=bad)


# ---------------------------------------------------------------- construction errors


def test_loguniform_needs_positive_lower_bound():
    with pytest.raises(TuneConfigError) as info:
        s.loguniform(0, 1)
    assert str(info.value) == "`lower` must be > 0 for loguniform, got 0"
    with pytest.raises(ValueError, match="`lower` must be > 0 for lograndint, got -1"):
        s.lograndint(-1, 10)


def test_choice_of_nothing_names_categories():
    with pytest.raises(TuneConfigError, match=r"`categories` must be a non-empty list.*got \[\]"):
        s.choice([])
    with pytest.raises(TypeError, match="`categories`.*'abc'"):
        s.choice("abc")


@pytest.mark.parametrize("make", [s.uniform, s.randint, s.loguniform, s.lograndint])
@pytest.mark.parametrize("lower, upper", [(2, 2), (3, 2)])
def test_empty_ranges_are_rejected(make, lower, upper):
    if make is s.uniform and lower > upper:
        pytest.skip("uniform accepts reversed bounds, as Ray does (tested below)")
    with pytest.raises(TuneConfigError, match=f"`lower` must be less than `upper`=.*got {lower}"):
        make(lower, upper)


def test_uniform_with_reversed_bounds_samples_the_interval_with_a_warning():
    with pytest.warns(UserWarning, match="greater than `upper`"):
        d = s.uniform(1e-2, 1e-5)
    draws = d.sample(size=200, random_state=0)
    assert all(1e-5 <= v < 1e-2 for v in draws)


@pytest.mark.parametrize("q", [0, -0.5, float("inf")])
def test_non_positive_q_is_rejected(q):
    with pytest.raises(TuneConfigError, match=r"`q` must be > 0.*got"):
        s.quniform(0, 1, q)


def test_integer_q_must_be_a_positive_integer():
    for q in (0, 2.5):
        with pytest.raises(TuneConfigError, match=f"`q` must be a positive integer.*got {q}"):
            s.qrandint(0, 10, q)


def test_integer_q_must_leave_two_multiples_in_range():
    with pytest.raises(TuneConfigError, match="`q` must be small enough.*got 3"):
        s.qrandint(1, 4, 3)


def test_quniform_bounds_must_be_multiples_of_q():
    with pytest.raises(ValueError, match=r"`lower` must be a multiple of q=0.3, got 0.1"):
        s.quniform(0.1, 0.9, 0.3)
    with pytest.raises(ValueError, match=r"`upper` must be a multiple of q=0.2, got 1.1"):
        s.quniform(0.2, 1.1, 0.2)
    with pytest.raises(ValueError, match="`lower` must be a multiple of q=0.0005, got 0.0001"):
        s.Float(1e-4, 1e-1).quantized(5e-4)


@pytest.mark.parametrize("sd", [0, -1.0])
def test_normal_needs_positive_sd(sd):
    with pytest.raises(TuneConfigError, match=f"`sd` must be > 0 and finite, got {sd}"):
        s.randn(0, sd)


def test_bounds_must_be_numbers():
    with pytest.raises(TypeError, match="`lower` must be a number, got 'a' of type str"):
        s.uniform("a", 1)
    with pytest.raises(TypeError, match="`upper` must be a number"):
        s.uniform(0, True)
    with pytest.raises(TuneConfigError, match="`lower` must be a number, not NaN"):
        s.uniform(float("nan"), 1)
    with pytest.raises(TuneConfigError, match="`lower` must be an integer, got 1.5"):
        s.randint(1.5, 3)
    assert s.randint(0, 1e3).upper == 1000  # integral floats are fine


def test_uniform_needs_finite_bounds_and_normal_none():
    with pytest.raises(TuneConfigError, match="`lower` must be a finite number for uniform"):
        s.Float(None, 1).uniform()
    with pytest.raises(TuneConfigError, match="`Float` must be unbounded"):
        s.Float(0, 1).normal()


def test_sample_from_needs_a_callable_of_zero_or_one_argument():
    with pytest.raises(TypeError, match="`func` must be a callable.*got 5 of type int"):
        s.sample_from(5)

    def two(a, b):
        return a

    with pytest.raises(TuneConfigError, match="`func` must be callable with no argument"):
        s.sample_from(two)


def test_a_domain_takes_one_sampler():
    with pytest.raises(TuneConfigError, match="`sampler` must be set once"):
        s.Float(1, 10).uniform().loguniform()


def test_deprecated_base_argument_warns():
    with pytest.warns(DeprecationWarning, match="`base`"):
        s.loguniform(1, 10, base=10)


# ---------------------------------------------------------------- functions


def test_function_signatures_zero_one_and_defaulted_arguments():
    def zero():
        return 0

    def one(spec):
        return 1

    def defaulted(spec, b="ok"):
        return 2

    def needs_b(spec, b):
        return 3

    cases = [(zero, 0), (one, 1), (defaulted, 2), (functools.partial(needs_b, b=1), 3)]
    for fn, expected in cases:
        assert s.sample_from(fn).sample(None) == expected
    assert s.sample_from(zero).sample(size=3) == [0, 0, 0]


def test_function_sees_config_and_spec_style_access():
    fn = s.sample_from(lambda spec: spec.config.a + spec["config"]["a"])
    assert fn.sample({"a": 2}) == 4
    assert s.sample_from(lambda c: c["a"] * c.a).sample({"a": 3}) == 9


# ---------------------------------------------------------------- introspection


def test_domain_attributes_for_schedulers():
    f, i, c = s.uniform(0.5, 2), s.qrandint(0, 10, 2), s.choice(["a", "b"])
    assert (f.lower, f.upper, i.lower, i.upper, c.categories) == (0.5, 2, 0, 10, ["a", "b"])
    assert (len(c), c[1]) == (2, "b")
    assert f.is_valid(1.0) and not f.is_valid(3) and c.is_valid("a") and not c.is_valid("z")
    assert s.Float(None, None).normal().lower == -math.inf


def test_grid_flag_domain_str_and_repr():
    grid = s.Categorical([1, 2]).grid()
    assert grid.is_grid() and not s.choice([1, 2]).is_grid()
    assert s.sample_from(lambda: 1).is_function() and not grid.is_function()
    assert s.uniform(0, 1).domain_str == "(0, 1)"
    assert s.choice([1, 2]).domain_str == "[1, 2]"
    assert repr(s.quniform(0, 1, 0.5)) == "Float((0, 1), sampler=Quantized(Uniform(), q=0.5))"
    assert repr(s.loguniform(1, 2)) == "Float((1, 2), sampler=LogUniform())"
    with pytest.raises(TuneConfigError, match="enumerated"):
        grid.sample()


def test_sampler_methods_return_new_domains():
    base = s.Float(1, 10)
    uni = base.uniform()
    assert base.sampler is None and isinstance(uni.sampler, s.Uniform)
    assert isinstance(uni.quantized(1).sampler, s.Quantized) and isinstance(uni.sampler, s.Uniform)


def test_domains_pickle():
    domain = s.qloguniform(1e-4, 1e-1, 5e-5)
    clone = pickle.loads(pickle.dumps(domain))
    assert clone.sample(size=4, random_state=3) == domain.sample(size=4, random_state=3)


def test_grid_search_shape_and_validation():
    assert s.grid_search([1, 2]) == {"grid_search": [1, 2]}
    assert s.grid_search(x for x in (1, 2)) == {"grid_search": [1, 2]}
    with pytest.raises(TuneConfigError, match="`values` must be a non-empty list"):
        s.grid_search([])
    with pytest.raises(TypeError, match="`values`"):
        s.grid_search(3)


@pytest.mark.parametrize("make_rng", [np.random.default_rng, np.random.RandomState])
def test_one_draw_is_the_first_value_of_a_drawn_array(make_rng):
    """One value per trial takes a scalar draw: it must equal the array draw it replaced, or a
    seeded run (and the restore of an older experiment's searcher) would draw other configs."""
    for domain in (s.uniform(-2.5, 7.0), s.randint(0, 10), s.choice(["a", "b", "c"])):
        a, b = make_rng(3), make_rng(3)
        one = [domain.sample(random_state=a) for _ in range(500)]
        first = [domain.cast(s.Uniform()._draw(domain, None, 1, b)[0]) for _ in range(500)]
        assert one == first and [type(v) for v in one] == [type(v) for v in first]
