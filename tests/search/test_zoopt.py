"""ZOOptSearch with the real zoopt: space conversion (Ray's and the exact one it searches),
``dim_dict``, argument errors, seeding without touching numpy's global state, the cases where
Ray's adapter stops suggesting (failed trials, initial trials that all ended, finite spaces),
``points_to_evaluate``, saved state, and real ``Tuner.fit()`` / ``Tuner.restore`` runs."""

from __future__ import annotations

import importlib.util
import logging
import math
from collections import Counter

import cloudpickle
import numpy as np
import pytest

import poptune as tune
from poptune.exceptions import TuneConfigError
from tests.search._helpers import ENABLED, StopAfterResults

# Trial workers import this module to unpickle the trainables: keep its import light (zoopt
# and the searcher are imported by the tests).

pytestmark = pytest.mark.skipif(importlib.util.find_spec("zoopt") is None,
                                reason="zoopt is not installed")

X = {"x": tune.uniform(-10, 10)}


def quadratic(config):
    tune.report({"loss": (config["x"] - 3) ** 2})


def flaky(config):
    """Raises left of -6, reports NaN in [-6, -4), else the score -(x - 3)^2 (max at 3)."""
    if config["x"] < -6:
        raise RuntimeError("boom")
    tune.report({"score": math.nan if config["x"] < -4 else -((config["x"] - 3) ** 2)})


def searcher(space=X, **kwargs):
    from poptune.search.zoopt import ZOOptSearch

    kwargs.setdefault("budget", 20)
    kwargs.setdefault("seed", 0)
    kwargs.setdefault("metric", "m")
    kwargs.setdefault("mode", "min")
    s = ZOOptSearch(**kwargs)
    if space is not None:
        assert s.set_search_properties(None, None, space) is True
    return s


def loss(config):
    return (config["x"] - 3) ** 2


def drive(s, n, objective=loss, start=0):
    """Suggest and complete up to ``n`` trials in turn; the suggestions, ending at the first
    that is not a config."""
    out = []
    for i in range(start, start + n):
        config = s.suggest(f"t{i}")
        out.append(config)
        if not isinstance(config, dict):
            break
        s.on_trial_complete(f"t{i}", {"m": objective(config)})
    return out


def fit(trainable, tmp_path, search_alg, num_samples, name="exp", stop=None, **kw):
    return tune.Tuner(
        trainable,
        param_space={"x": tune.uniform(-10, 10), "const": "c"},
        tune_config=tune.TuneConfig(search_alg=search_alg, num_samples=num_samples, **kw),
        run_config=tune.RunConfig(name=name, verbose=0, storage_path=str(tmp_path), stop=stop),
    ).fit()


def in_order(grid):
    return sorted(grid, key=lambda r: r.metrics["trial_id"])


# -- the space ------------------------------------------------------------------------------------
SPACE = {
    "u": tune.uniform(-1, 2),
    "qu": tune.quniform(0, 5, 0.5),
    "ri": tune.randint(0, 5),
    "qri": tune.qrandint(0, 10, 2),
    "qri1": tune.qrandint(3, 6, 1),
    "c": tune.choice(["relu", 1, None, {"k": 1}]),
    "nested": {"f": tune.uniform(0, 1)},
    "const": 3,
    "fn": tune.sample_from(lambda: 7),
}
# Ray 2.60's ZOOptSearch.convert_search_space(SPACE with ray.tune's domains), recorded
RAY_DIM_DICT = {
    "u": (1, [-1, 2], 1e-12),
    "qu": (1, [0, 5], 0.5),
    "ri": (0, [0, 4], True),
    "qri": (0, [0, 9], True),
    "qri1": (0, [3, 5], True),
    "c": (2, ["relu", 1, None, {"k": 1}]),
    "nested/f": (1, [0, 1], 1e-12),
}


def test_convert_search_space_gives_rays_dim_dict():
    from zoopt import ValueType

    from poptune.search.zoopt import ZOOptSearch

    assert (ValueType.DISCRETE, ValueType.CONTINUOUS, ValueType.GRID) == (0, 1, 2)
    assert ZOOptSearch.convert_search_space(SPACE) == RAY_DIM_DICT
    joined = ZOOptSearch.convert_search_space(SPACE, join=True)
    assert joined["const"] == 3 and joined["qu"] == RAY_DIM_DICT["qu"]
    assert ZOOptSearch.convert_search_space({"const": 3}) == {}


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
def test_convert_search_space_matches_ray_itself():
    from ray import tune as ray_tune
    from ray.tune.search.zoopt import ZOOptSearch as RayZOOptSearch

    from poptune.search.zoopt import ZOOptSearch

    ray_space = {
        "u": ray_tune.uniform(-1, 2), "qu": ray_tune.quniform(0, 5, 0.5),
        "ri": ray_tune.randint(0, 5), "qri": ray_tune.qrandint(0, 10, 2),
        "qri1": ray_tune.qrandint(3, 6, 1), "c": ray_tune.choice(["relu", 1, None, {"k": 1}]),
        "nested": {"f": ray_tune.uniform(0, 1)}, "const": 3,
    }
    assert RayZOOptSearch.convert_search_space(ray_space) == RAY_DIM_DICT
    space = {k: v for k, v in SPACE.items() if k != "fn"}  # Ray refuses sample_from
    assert ZOOptSearch.convert_search_space(space) == RayZOOptSearch.convert_search_space(
        ray_space)


def test_every_accepted_domain_is_searched_with_its_exact_values():
    s = searcher(SPACE, budget=60)
    configs = drive(s, 60, objective=lambda c: c["u"] ** 2 + c["qu"] + c["ri"])
    assert len(configs) == 60 and all(isinstance(c, dict) for c in configs)
    for c in configs:
        assert set(c) == {"u", "qu", "ri", "qri", "qri1", "c", "nested"}  # the Tuner adds
        assert -1 <= c["u"] <= 2 and type(c["u"]) is float                # const and fn
        assert c["qu"] in [k * 0.5 for k in range(11)] and type(c["qu"]) is float
        assert c["ri"] in range(5) and type(c["ri"]) is int
        assert c["qri"] in range(0, 11, 2) and type(c["qri"]) is int  # Ray: any of 0..9
        assert c["qri1"] in range(3, 6) and type(c["qri1"]) is int
        assert c["c"] in ("relu", 1, None, {"k": 1})
        assert 0 <= c["nested"]["f"] <= 1
    values = Counter(repr(c["c"]) for c in configs)
    assert set(values) == {"'relu'", "1", "None", "{'k': 1}"}  # as given, never np.str_
    assert {type(c["c"]) for c in configs} == {str, int, type(None), dict}
    assert {c["qri"] for c in configs} == {0, 2, 4, 6, 8, 10}  # the upper bound included


@pytest.mark.parametrize("domain", [
    tune.loguniform(1e-3, 1), tune.qloguniform(1e-3, 1, 1e-3), tune.randn(),
    tune.qrandn(0, 1, 0.5), tune.lograndint(1, 10), tune.qlograndint(1, 10, 1),
])  # fmt: skip
def test_refused_domains_name_the_parameter(domain):
    from poptune.search.zoopt import ZOOptSearch

    s = ZOOptSearch(budget=5, metric="m", mode="min")
    with pytest.raises(TuneConfigError, match=r"`lr` has domain .*ZOOptSearch cannot search; "
                                              r"it takes uniform"):
        s.set_search_properties(None, None, {"a": tune.uniform(0, 1), "lr": domain})
    with pytest.raises(TuneConfigError, match="`net/lr` has domain"):
        ZOOptSearch.convert_search_space({"net": {"lr": domain}})


def test_grid_search_is_refused_naming_the_entry():
    from poptune.search.zoopt import ZOOptSearch

    with pytest.raises(TuneConfigError, match=r"\['opt/bs'\] are grid_search"):
        searcher({"x": tune.uniform(0, 1), "opt": {"bs": tune.grid_search([1, 2])}})
    with pytest.raises(TuneConfigError, match="grid_search"):
        ZOOptSearch.convert_search_space({"bs": tune.grid_search([1, 2])})
    with pytest.raises(TuneConfigError, match="`dim_dict` entries"):
        ZOOptSearch(budget=5, dim_dict={"bs": tune.grid_search([1, 2])})


def test_a_param_space_without_domains_fails_at_the_first_suggestion():
    s = searcher({"const": 1})
    with pytest.raises(TuneConfigError, match="ZOOptSearch has no search space"):
        s.suggest("t0")


# -- dim_dict -------------------------------------------------------------------------------------
def test_manual_dim_dict_in_zoopts_form_mixed_with_domains():
    from zoopt import ValueType

    from poptune.search.zoopt import ZOOptSearch

    dim_dict = {
        "height": (ValueType.CONTINUOUS, [-10, 10], 1e-2),
        "width": (ValueType.DISCRETE, [-10, 10], False),
        "layers": (ValueType.GRID, [4, 8, 16]),
        "net/act": tune.choice(["a", "b"]),
        "lr": tune.quniform(0.1, 1.0, 0.1),
    }
    s = ZOOptSearch(budget=40, dim_dict=dim_dict, mode="min", seed=0)
    # a space of its own: the Tuner's param_space is refused, its missing metric taken
    assert s.set_search_properties("m", "max", {"const": 1}) is False
    assert (s.metric, s.mode) == ("m", "min")
    configs = drive(s, 40, objective=lambda c: (c["layers"] != 16) * 10 + abs(c["height"]))
    for c in configs:
        assert round(c["height"], 2) == c["height"] and -10 <= c["height"] <= 10
        assert c["width"] in range(-10, 11) and type(c["width"]) is int
        assert c["layers"] in (4, 8, 16) and type(c["layers"]) is int  # not np.int64
        assert c["net"]["act"] in ("a", "b")
        assert round(c["lr"] * 10) in range(1, 11)
    # zoopt's GRID classifier samples only the first two values when exploiting; here the
    # best layer value, the third, is the one SRacos settles on
    assert Counter(c["layers"] for c in configs[4:]).most_common(1)[0][0] == 16


@pytest.mark.parametrize("entry, accepted", [
    ((9, [0, 1], 1e-2), r"\(ValueType.CONTINUOUS"),
    ("height", r"\(ValueType.CONTINUOUS"),
    ((1, [1, 0], 1e-2), "lower < upper"),
    ((1, [0, 1], 0), "precision > 0"),
    ((1, [0, 1]), r"\(ValueType.CONTINUOUS"),
    ((0, [0.5, 2], True), "range \\[lower, upper\\] of integers"),
    ((0, [0, 2], "yes"), "has_order, is a bool"),
    ((2, []), "at least one value"),
    ((0, range(0, 10, 2), True), r"range\(lower, upper \+ 1\) of step 1"),
])  # fmt: skip
def test_bad_dim_dict_entries_name_the_parameter(entry, accepted):
    from poptune.search.zoopt import ZOOptSearch

    with pytest.raises(TuneConfigError, match=r"`dim_dict\['h'\]` must be .*" + accepted):
        ZOOptSearch(budget=5, dim_dict={"h": entry})
    with pytest.raises(TypeError, match=r"`dim_dict\['f'\]` must be .*sample_from"):
        ZOOptSearch(budget=5, dim_dict={"f": tune.sample_from(lambda: 1)})
    with pytest.raises(TypeError, match="`dim_dict` must be a dict"):
        ZOOptSearch(budget=5, dim_dict=[("x", 1)])


def test_a_discrete_range_object_is_searched_over_all_its_values():
    """Public scripts pass ``(ValueType.DISCRETE, range(lo, hi + 1), True)``; zoopt would take
    ``range[0]`` and ``range[1]`` as the bounds and search two values only."""
    from zoopt import ValueType

    from poptune.search.zoopt import ZOOptSearch

    s = ZOOptSearch(budget=40, dim_dict={"k": (ValueType.DISCRETE, range(1, 5), True),
                                         "g": (ValueType.GRID, range(3))},
                    metric="m", mode="min", seed=0)
    configs = [c for c in drive(s, 40, objective=lambda c: -c["k"] - c["g"])
               if isinstance(c, dict)]
    assert len(configs) == 12  # the whole finite space, then FINISHED
    assert {c["k"] for c in configs} <= {1, 2, 3, 4} and 4 in {c["k"] for c in configs}
    assert {c["g"] for c in configs} <= {0, 1, 2}


# -- Ray-like arguments ---------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    ({"algo": "foo"}, r"`algo` must be 'asracos' or 'sracos' \(any case\), got 'foo'"),
    ({"algo": 3}, "`algo` must be 'asracos' or 'sracos'.*of type int"),
    ({"budget": None}, r"`budget` must be an integer >= 3.*got None"),
    ({"budget": 2}, r"`budget` must be an integer >= 3.*got 2"),  # zoopt would sys.exit(1)
    ({"budget": 2.5}, "`budget` must be an integer >= 3"),
    ({"mode": "avg"}, "`mode` must be one of 'min', 'max', got 'avg'"),
    ({"parallel_num": 0}, "`parallel_num` must be an integer >= 1, got 0"),
    ({"seed": -1}, "`seed` must be an integer >= 0 or None, got -1"),
    ({"seed": 1.5}, "`seed` must be an int or None, got 1.5"),
    ({"points_to_evaluate": {"x": 1}}, "`points_to_evaluate` must be a list of dicts"),
    ({"exploration_rate": 2}, r"`exploration_rate` must be in \[0, 1\], got 2"),
    ({"uncertain_bits": 0}, "`uncertain_bits` must be an integer >= 1 or None, got 0"),
])  # fmt: skip
def test_bad_arguments_name_what_is_accepted(kwargs, match):
    from poptune.search.zoopt import ZOOptSearch

    kwargs = {"budget": 10, **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        ZOOptSearch(**kwargs)


def test_algo_is_case_insensitive_and_zoopt_options_are_taken_from_kwargs(caplog):
    from poptune.search.zoopt import ZOOptSearch

    with caplog.at_level(logging.WARNING, logger="poptune.search.zoopt"):
        s = ZOOptSearch(algo="SRacos", budget=10, dim_dict={"x": tune.uniform(0, 1)},
                        exploration_rate=0.25, uncertain_bits=1, typo_option=3)
    assert "ignores 'typo_option'" in caplog.text and "exploration_rate" in caplog.text
    parameter = s.optimizer.get_parameters()
    assert parameter.get_probability() == 0.75 and parameter.get_uncertain_bits() == 1
    assert ZOOptSearch(algo="ASRACOS", budget=3).parallel_num == 1


def test_suggest_needs_a_metric_and_mode():
    s = searcher(metric=None, mode=None)
    with pytest.raises(TuneConfigError, match=r"no valid `metric` \(None\) or `mode` \(None\)"):
        s.suggest("t0")
    s = searcher(metric=None, mode="min")  # a mode alone: Ray's anonymous metric
    assert isinstance(s.suggest("t0"), dict) and s.metric == "_metric"


def test_create_searcher_builds_it_by_name():
    from poptune.search import ZOOptSearch as lazy
    from poptune.search.zoopt import ZOOptSearch

    s = tune.create_searcher("zoopt", budget=5, metric="m", mode="max", points_to_evaluate=None)
    assert type(s) is ZOOptSearch is lazy and (s.metric, s.mode) == ("m", "max")
    with pytest.raises(ValueError, match="`search_alg` must be one of .*'zoopt'"):
        tune.create_searcher("zopt")


# -- seeding and zoopt's globals ------------------------------------------------------------------
def test_a_seed_reproduces_the_search_and_numpys_global_state_is_left_alone():
    np.random.seed(123)
    before = np.random.get_state()
    first = drive(searcher(seed=5), 20)
    after = np.random.get_state()
    assert before[0] == after[0] and (before[1] == after[1]).all() and before[2] == after[2]
    assert drive(searcher(seed=5), 20) == first
    assert drive(searcher(seed=6), 20) != first


def test_two_searchers_in_one_process_do_not_share_zoopts_globals():
    from zoopt import ValueType

    # zoopt keeps the float precisions of the last space built in a module global
    space_a = {"x": tune.uniform(-10, 10)}
    space_b = {"y": (ValueType.CONTINUOUS, [0, 1], 1e-1), "z": (ValueType.CONTINUOUS, [0, 1],
                                                                     1e-3)}
    alone_a = drive(searcher(space_a, seed=1), 15)
    alone_b = drive(searcher(None, dim_dict=space_b, seed=2), 15,
                    objective=lambda c: c["y"] + c["z"])
    a, b = searcher(space_a, seed=1), searcher(None, dim_dict=space_b, seed=2)
    mixed_a, mixed_b = [], []
    for i in range(15):
        mixed_a += drive(a, 1, start=i)
        mixed_b += drive(b, 1, start=i, objective=lambda c: c["y"] + c["z"])
    assert (mixed_a, mixed_b) == (alone_a, alone_b)
    assert all(round(c["y"], 1) == c["y"] and round(c["z"], 3) == c["z"] for c in mixed_b)


# -- where Ray's adapter stops suggesting ---------------------------------------------------------
def test_one_trial_at_a_time_reaches_the_budget():
    # Ray: once the initial trials have all ended, SRacos's next call returns None for ever
    configs = drive(searcher(budget=12), 20)
    assert len(configs) == 13 and configs[-1] == "FINISHED"


def test_failed_and_nan_trials_do_not_stall_the_search(caplog):
    s = searcher(budget=15)
    configs = []
    with caplog.at_level(logging.WARNING, logger="poptune.search.zoopt"):
        for i in range(16):
            config = s.suggest(f"t{i}")
            configs.append(config)
            if not isinstance(config, dict):
                break
            if i in (0, 7):  # an initial trial and a later one fail
                s.on_trial_complete(f"t{i}", None, error=True)
            elif i == 1:
                s.on_trial_complete(f"t{i}", {"m": math.nan})
            elif i == 2:
                s.on_trial_complete(f"t{i}", {"other": 1.0})  # no metric
            else:
                s.on_trial_complete(f"t{i}", {"m": loss(config)})
    assert len(configs) == 16 and configs[-1] == "FINISHED"
    assert caplog.text.count("counts as the worst result") == 1  # warned once
    # the failures rank last: the search still converges
    assert min(loss(c) for c in configs[3:-1]) < 1


def test_parallel_suggestions_wait_for_results_then_continue():
    s = searcher(budget=12, parallel_num=2)
    initial = [s.suggest(f"t{i}") for i in range(4)]  # SRacos's initial sample (budget <= 50)
    assert all(isinstance(c, dict) for c in initial) and s.suggest("t4") is None
    for i in range(4):
        s.on_trial_complete(f"t{i}", {"m": loss(initial[i])})
    assert [isinstance(s.suggest(f"u{i}"), dict) for i in range(3)] == [True, True, False]
    s.on_trial_complete("u0", None, error=True)  # a failure frees its slot too
    assert isinstance(s.suggest("u3"), dict)


@pytest.mark.parametrize("parallel_num", [1, 3])
def test_any_completion_order_reaches_the_budget(parallel_num):
    import random

    for run in range(20):
        rnd = random.Random(run)
        s = searcher(budget=15, parallel_num=parallel_num, seed=run)
        live, created, room = {}, 0, rnd.choice([1, 2, 4, 6])  # the engine's free slots
        while True:
            config = s.suggest(f"t{created}") if len(live) < room else None
            if isinstance(config, dict):
                live[f"t{created}"] = config
                created += 1
                continue
            if not live:
                break  # FINISHED, or stalled: the count below tells
            trial_id = rnd.choice(sorted(live))
            config = live.pop(trial_id)
            if rnd.random() < 0.2:
                s.on_trial_complete(trial_id, None, error=True)
            else:
                s.on_trial_complete(trial_id, {"m": loss(config)})
        assert created == 15 and s.suggest("last") == "FINISHED", (run, room)


def test_a_finite_space_ends_the_search_once_every_point_was_run(capsys):
    space = {"a": tune.choice([1, 2, 3]), "b": tune.randint(0, 3)}
    configs = drive(searcher(space, budget=50), 50, objective=lambda c: c["a"] * c["b"])
    assert configs[-1] == "FINISHED" and len(configs) == 10  # Ray: stalls after a few
    assert len({(c["a"], c["b"]) for c in configs[:-1]}) == 9
    assert "[zoopt]" not in capsys.readouterr().out  # zoopt's prints go to the debug log


# -- points_to_evaluate ---------------------------------------------------------------------------
def test_every_point_to_evaluate_runs_first_as_given():
    points = [{"x": -9.0}, {"x": 4}, {"x": 0.5, "extra": "kept"}, {"x": 7.25}, {"x": -1.0},
              {"x": 2.0}]  # more than SRacos's 4 initial samples; zoopt 0.4.2 drops
    s = searcher(points_to_evaluate=points)        # those after the first trial ends
    configs = drive(s, 10)
    assert configs[:6] == points and all(isinstance(c, dict) for c in configs[6:])
    assert s.optimizer.get_parameters().get_train_size() == 6


def test_points_to_evaluate_with_categories_and_nested_keys():
    space = {"net": {"act": tune.choice(["relu", "tanh"]), "n": tune.qrandint(2, 8, 2)}}
    points = [{"net": {"act": "tanh", "n": 6}}, {"net/act": "relu", "net/n": 2}]
    configs = drive(searcher(space, points_to_evaluate=points), 3,
                    objective=lambda c: c["net"]["n"])
    assert configs[:2] == [{"net": {"act": "tanh", "n": 6}}, {"net": {"act": "relu", "n": 2}}]


@pytest.mark.parametrize("point, match", [
    ({"y": 1.0}, r"`points_to_evaluate\[0\]` must be a config with a value for every searched "
                 r"parameter \(missing \['x'\]\)"),
    ({"x": 11.0}, r"`points_to_evaluate\[0\]\['x'\]` must be a number in \[-10, 10\], got 11.0"),
    ({"x": "3"}, r"`points_to_evaluate\[0\]\['x'\]` must be a number"),
])  # fmt: skip
def test_bad_points_to_evaluate_name_the_value(point, match):
    with pytest.raises(TuneConfigError, match=match):
        searcher(points_to_evaluate=[point])


def test_a_point_must_hold_one_of_the_categories():
    with pytest.raises(TuneConfigError, match=r"\['act'\]` must be one of \['relu', 'tanh'\], "
                                              r"got 'gelu'"):
        searcher({"act": tune.choice(["relu", "tanh"])}, points_to_evaluate=[{"act": "gelu"}])
    with pytest.raises(TuneConfigError, match=r"\['n'\]` must be an integer in \[0, 4\]"):
        searcher({"n": tune.randint(0, 5)}, points_to_evaluate=[{"n": 2.5}])


# -- saved state ----------------------------------------------------------------------------------
def test_a_restored_searcher_continues_identically(tmp_path):
    from poptune.search.zoopt import ZOOptSearch

    a = searcher(budget=30, seed=3, parallel_num=2)
    drive(a, 7)
    live = [a.suggest("l0"), a.suggest("l1")]  # saved while two trials run
    assert all(isinstance(c, dict) for c in live)
    path = str(tmp_path / "searcher.pkl")
    a.save(path)

    def go_on(s):
        for i, config in enumerate(live):
            s.on_trial_complete(f"l{i}", {"m": loss(config)})
        return drive(s, 12, start=100)

    expected = go_on(a)
    assert len(expected) == 12 and all(isinstance(c, dict) for c in expected)
    b = searcher(budget=30, seed=99)  # the Tuner's space, then the saved state
    b.restore(path)
    assert go_on(b) == expected
    c = ZOOptSearch(budget=30, metric="m", mode="min")  # the saved state, then the space
    c.restore(path)
    assert c.set_search_properties(None, None, X) is True  # the same space: state kept
    assert go_on(c) == expected
    d = searcher(budget=30, seed=99)
    d.set_state(cloudpickle.loads(cloudpickle.dumps(searcher(budget=30, seed=3).get_state())))
    assert drive(d, 5) == drive(searcher(budget=30, seed=3), 5)


def test_get_state_is_a_copy():
    s = searcher()
    state = s.get_state()
    drive(s, 6)
    fresh = searcher(seed=42)
    fresh.set_state(state)
    assert drive(fresh, 6) == drive(searcher(), 6)


# -- real Tuner runs ------------------------------------------------------------------------------
def test_tuner_minimises_until_the_budget_one_trial_at_a_time(tmp_path):
    from poptune.search.zoopt import ZOOptSearch

    search = ZOOptSearch(budget=30, points_to_evaluate=[{"x": -9.0}], seed=0)
    grid = fit(quadratic, tmp_path, search, num_samples=60, metric="loss", mode="min",
               max_concurrent_trials=1)
    results = in_order(grid)
    assert len(results) == 30 and grid.num_errors == 0  # the budget, not num_samples
    assert results[0].config == {"x": -9.0, "const": "c"}
    losses = [r.metrics["loss"] for r in results]
    best = grid.get_best_result()
    assert abs(best.config["x"] - 3) < 1 and best.metrics["loss"] < min(losses[:4])


def test_tuner_maximises_past_failed_and_nan_trials(tmp_path):
    from poptune.search.zoopt import ZOOptSearch

    # the two points are initial trials: one raises, one reports NaN
    search = ZOOptSearch(budget=20, parallel_num=2, seed=0,
                         points_to_evaluate=[{"x": -8.0}, {"x": -5.0}])
    grid = fit(flaky, tmp_path, search, num_samples=-1, metric="score", mode="max")
    assert len(grid) == 20  # num_samples=-1: until FINISHED
    assert grid.num_errors == sum(r.config["x"] < -6 for r in grid) >= 1
    best = grid.get_best_result()
    assert best.metrics["score"] > -1 and abs(best.config["x"] - 3) < 1




def test_tuner_restore_continues_the_search_to_its_budget(tmp_path):
    from poptune.search.zoopt import ZOOptSearch

    ENABLED[0] = True
    try:
        first = fit(quadratic, tmp_path, ZOOptSearch(budget=12, seed=0), num_samples=50,
                    stop=StopAfterResults(6), metric="loss", mode="min",
                    max_concurrent_trials=1)
        ENABLED[0] = False
        tuner = tune.Tuner.restore(str(tmp_path / "exp"), trainable=quadratic)
        grid = tuner.fit()
    finally:
        ENABLED[0] = True
    assert 0 < len(first) < 12
    before = {r.metrics["trial_id"]: r.config["x"] for r in first if r.metrics}
    assert len(grid) == 12 and grid.num_errors == 0
    after = {r.metrics["trial_id"]: r.config["x"] for r in grid}
    assert all(after[t] == x for t, x in before.items())
    assert len(set(after.values())) == 12
    assert tuner.tune_config.search_alg._suggested == 12
