"""Resolving param_space: grids, repeats, nesting, sample_from, identity, formatting."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from poptune.exceptions import TuneConfigError
from poptune.search import sample as s
from poptune.search.variant_generator import (
    count_variants,
    flatten_dict,
    format_vars,
    generate_variants,
    unflatten_dict,
)


def configs(space, **kwargs):
    return [config for _, config in generate_variants(space, **kwargs)]


# ---------------------------------------------------------------- grids and repeats


def test_grid_keys_sorted_and_first_varies_fastest():
    space = {"y": s.grid_search(["a", "b", "c"]), "x": s.grid_search([10, 20])}
    got = [(c["x"], c["y"]) for c in configs(space)]
    assert got == [(10, "a"), (20, "a"), (10, "b"), (20, "b"), (10, "c"), (20, "c")]


def test_grid_times_num_samples_and_fresh_random_values_per_point():
    space = {
        "x": s.grid_search([10, 20]),
        "y": s.grid_search(["a", "b", "c"]),
        "lr": s.uniform(0, 1),
    }
    result = configs(space, num_samples=4, random_state=0)
    assert len(result) == 24 and count_variants(space) == 6
    combos = collections.Counter((c["x"], c["y"]) for c in result)
    assert set(combos.values()) == {4} and len(combos) == 6
    assert len({c["lr"] for c in result}) == 24
    # the whole grid is generated once per sample, in order
    assert [(c["x"], c["y"]) for c in result[:6]] == [(c["x"], c["y"]) for c in result[6:12]]


def test_constant_grid_search_reuses_random_values_within_a_sample():
    space = {"g": s.grid_search([1, 2, 3]), "lr": s.uniform(0, 1)}
    result = configs(space, num_samples=2, random_state=0, constant_grid_search=True)
    assert len({c["lr"] for c in result[:3]}) == 1
    assert len({c["lr"] for c in result[3:]}) == 1 and result[0]["lr"] != result[3]["lr"]


def test_constant_grid_search_still_lets_functions_read_the_grid():
    space = {"g": s.grid_search([1, 2]), "double": s.sample_from(lambda c: c["g"] * 2)}
    result = configs(space, constant_grid_search=True)
    assert [(c["g"], c["double"]) for c in result] == [(1, 2), (2, 4)]


def test_categorical_grid_domain_counts_as_grid():
    assert [c["a"] for c in configs({"a": s.Categorical([1, 2, 3]).grid()})] == [1, 2, 3]


def test_empty_grid_in_a_dict_literal_is_rejected():
    with pytest.raises(TuneConfigError, match=r"`a/grid_search` must be a non-empty list"):
        configs({"a": {"grid_search": []}})


def test_grid_values_may_contain_domains_and_grids():
    space = {
        "model": s.grid_search(
            [
                {"kind": "mlp", "width": s.grid_search([32, 64])},
                {"kind": "cnn", "k": s.randint(1, 4)},
            ]
        )
    }
    assert count_variants(space) == 3
    result = list(generate_variants(space, random_state=0))
    assert [c["model"]["kind"] for _, c in result] == ["mlp", "mlp", "cnn"]
    assert [c["model"].get("width") for _, c in result] == [32, 64, None]
    assert result[2][1]["model"]["k"] in (1, 2, 3)
    assert "model/width" in result[0][0] and "model/k" in result[2][0]
    # the user's grid values are not mutated
    assert isinstance(space["model"]["grid_search"][1]["k"], s.Integer)


def test_num_samples_validation_and_unlimited():
    with pytest.raises(TuneConfigError, match="`num_samples` must be an integer >= 1"):
        configs({}, num_samples=0)
    unlimited = generate_variants({"a": s.uniform(0, 1)}, num_samples=-1, random_state=0)
    assert len([next(unlimited) for _ in range(50)]) == 50
    with pytest.raises(TypeError, match="`param_space` must be a dict"):
        configs([1, 2])


# ---------------------------------------------------------------- nesting and resolved vars


def test_nested_dicts_lists_and_tuples_are_resolved():
    space = {
        "optim": {"lr": s.loguniform(1e-4, 1e-1), "betas": (s.uniform(0.8, 0.9), 0.999)},
        "layers": [64, s.choice([32, 16])],
        "seed": 7,
    }
    resolved, config = next(generate_variants(space, random_state=1))
    assert set(resolved) == {"optim/lr", "optim/betas/0", "layers/1"}
    assert isinstance(config["optim"]["betas"], tuple) and config["optim"]["betas"][1] == 0.999
    assert config["layers"][0] == 64 and config["layers"][1] in (32, 16)
    assert resolved["optim/lr"] == config["optim"]["lr"] and config["seed"] == 7


def test_space_without_domains_yields_fresh_copies():
    space = {"a": 1, "b": {"c": 2}}
    result = configs(space, num_samples=2)
    assert result == [space, space]
    assert result[0] is not space and result[0]["b"] is not result[1]["b"]


# ---------------------------------------------------------------- sample_from


def test_sample_from_reads_keys_defined_after_it():
    space = {
        "b": s.sample_from(lambda config: config["a"] * 2),
        "a": s.randint(5, 10),
    }
    for config in configs(space, num_samples=20, random_state=0):
        assert config["b"] == 2 * config["a"]


def test_sample_from_spec_style_and_nested_attribute_access():
    space = {
        "model": {"width": s.randint(1, 100)},
        "a": s.sample_from(lambda spec: spec.config.model.width + 1),
        "b": s.sample_from(lambda spec: spec["config"]["model"]["width"] + 2),
        "c": s.sample_from(lambda config: config.model.width + 3),
        "d": s.sample_from(lambda: 42),
    }
    config = configs(space, random_state=0)[0]
    width = config["model"]["width"]
    got = (config["a"], config["b"], config["c"], config["d"])
    assert got == (width + 1, width + 2, width + 3, 42)


def test_sample_from_chain_resolves_in_dependency_order():
    space = {
        "c": s.sample_from(lambda cfg: cfg["b"] + 1),
        "b": s.sample_from(lambda cfg: cfg["a"] + 1),
        "a": s.uniform(0, 1),
    }
    config = configs(space, random_state=0)[0]
    assert config["c"] == pytest.approx(config["a"] + 2)


def test_sample_from_cycle_is_reported():
    space = {"a": s.sample_from(lambda c: c["b"]), "b": s.sample_from(lambda c: c["a"])}
    with pytest.raises(TuneConfigError, match=r"\['a', 'b'\].*cycle"):
        configs(space)


def test_sample_from_errors_name_the_parameter():
    space = {"opt": {"lr": s.sample_from(lambda c: 1 / 0)}}
    with pytest.raises(TuneConfigError, match="`opt/lr` could not be sampled.*ZeroDivisionError"):
        configs(space)
    with pytest.raises(TuneConfigError, match="`x`.*KeyError"):
        configs({"x": s.sample_from(lambda c: c["missing"])})


def test_sample_from_sees_a_read_only_view():
    def mutate(config):
        config.a = 1

    with pytest.raises(TuneConfigError, match="read-only"):
        configs({"a": 0, "b": s.sample_from(mutate)})


# ---------------------------------------------------------------- constants and copies


class Model:
    """Stands for a large object that must never be copied."""


def test_constants_are_passed_by_identity_and_containers_are_fresh():
    model, data = Model(), np.zeros(10)
    frozen = {"cfg": 1}
    space = {
        "model": model,
        "data": [data, s.uniform(0, 1)],
        "opts": {"net": model, "lr": s.grid_search([0.1, 0.2])},
        "plain_list": [1, 2],
        "ordered": collections.OrderedDict(k=frozen),
    }
    result = configs(space, num_samples=2, random_state=0)
    assert len(result) == 4
    for config in result:
        assert config["model"] is model and config["opts"]["net"] is model
        assert config["data"][0] is data
        assert config["plain_list"] is space["plain_list"]  # constant list: shared leaf
        assert config["ordered"] is space["ordered"]  # dict subclass without domains: shared
    assert result[0]["opts"] is not result[1]["opts"]  # dicts are always fresh
    assert result[0]["data"] is not result[1]["data"]  # lists with domains are rebuilt
    assert isinstance(space["data"][1], s.Float) and "grid_search" in space["opts"]["lr"]


def test_dict_subclass_holding_domains_keeps_its_type():
    space = {"o": collections.OrderedDict(a=s.uniform(0, 1), b=2)}
    config = configs(space, random_state=0)[0]
    assert type(config["o"]) is collections.OrderedDict and isinstance(config["o"]["a"], float)
    assert isinstance(space["o"]["a"], s.Float)


# ---------------------------------------------------------------- reproducibility


def test_same_seed_same_configs_different_seed_different():
    space = {
        "lr": s.loguniform(1e-4, 1e-1),
        "bs": s.choice([16, 32, 64]),
        "q": s.qrandint(0, 100, 5),
        "g": s.grid_search([1, 2]),
    }
    first = configs(space, num_samples=5, random_state=123)
    assert first == configs(space, num_samples=5, random_state=123)
    assert first == configs(space, num_samples=5, random_state=np.random.default_rng(123))
    assert first != configs(space, num_samples=5, random_state=124)


# ---------------------------------------------------------------- formatting helpers


def test_format_vars_matches_rays_trial_tags():
    assert format_vars({"lr": 0.07012345, "momentum": 0.17741}) == "lr=0.0701,momentum=0.1774"
    tag = format_vars({"model/act": "leaky relu!", "a/b": [1, 2], "n": 3, "flag": True})
    assert tag == "b=1_2,flag=True,act=leaky_relu,n=3"  # sorted by full path
    assert format_vars({("x", "y"): np.float64(0.5)}) == "y=0.5000"
    assert format_vars({}) == ""


def test_flatten_and_unflatten_round_trip():
    nested = {"a": {"b": 1, "c": {"d": [1, 2]}}, "e": 3}
    flat = flatten_dict(nested)
    assert flat == {"a/b": 1, "a/c/d": [1, 2], "e": 3}
    assert unflatten_dict(flat) == nested
    assert flatten_dict({"a": {}}) == {}
    assert flatten_dict({"a": {"b": 1}}, delimiter=".") == {"a.b": 1}
    with pytest.raises(TuneConfigError, match="`key` must be free of the delimiter"):
        flatten_dict({"a/b": 1}, prevent_delimiter=True)
    with pytest.raises(TuneConfigError, match="`a/b` cannot be unflattened"):
        unflatten_dict({"a": 1, "a/b": 2})
