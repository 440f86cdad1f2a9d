"""Resolving param_space as Ray 2.60 does: sample_from reading its own nested dict, Ray's
JSON-style ``{"eval": "..."}`` entries, which values trial tags show, HyperOpt's
points_to_evaluate checked against the space."""

from __future__ import annotations

import importlib.util
import os
import pickle

import pytest

import poptune as tune
from poptune.exceptions import TuneConfigError
from poptune.search import BasicVariantGenerator
from poptune.search import sample as s
from poptune.search.variant_generator import format_vars, generate_variants


def configs(space, **kwargs):
    return [config for _, config in generate_variants(space, **kwargs)]


def suggestions(space, num_samples=1, seed=0, **kwargs):
    gen = BasicVariantGenerator(**kwargs)
    gen.setup_experiment(space, num_samples, seed)
    out = []
    while (suggestion := gen.next_trial(f"t{len(out)}")) is not None:
        out.append(suggestion)
    return out


def report_one(config):
    tune.report({"score": 1.0})


def fit(tmp_path, param_space, **tune_config):
    return tune.Tuner(
        report_one, param_space=param_space,
        tune_config=tune.TuneConfig(**tune_config),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
    ).fit()


def by_tag(grid):
    return sorted(((r.metrics["experiment_tag"], r.config, os.path.basename(r.path))
                   for r in grid), key=lambda t: t[0])


# ------------------------------------------------- 1. sample_from inside its own nested dict
SIBLING_READS = {
    "item access": lambda config: config["opt"]["lr"] * 2,
    "get": lambda config: config.get("opt").get("lr") * 2,
    "spec style": lambda spec: spec.config.opt.lr * 2,
    "spec item access": lambda spec: spec["config"]["opt"]["lr"] * 2,
}


@pytest.mark.parametrize("read", list(SIBLING_READS), ids=list(SIBLING_READS))
@pytest.mark.parametrize("lr", [s.uniform(0, 1), 0.5], ids=["domain", "constant"])
def test_sample_from_reads_a_sibling_in_its_own_nested_dict(read, lr):
    space = {"opt": {"lr": lr, "m": s.sample_from(SIBLING_READS[read])}}
    for config in configs(space, num_samples=3, random_state=0):
        assert config["opt"]["m"] == 2 * config["opt"]["lr"]
    if lr == 0.5:
        assert config == {"opt": {"lr": 0.5, "m": 1.0}}


def test_sample_from_reads_a_sibling_defined_after_it_in_its_nested_dict():
    space = {"opt": {"m": s.sample_from(lambda c: c["opt"]["lr"] + 1), "lr": s.randint(0, 9)}}
    for config in configs(space, num_samples=5, random_state=1):
        assert config["opt"]["m"] == config["opt"]["lr"] + 1


def test_sample_from_reads_a_sibling_in_its_own_list():
    space = {"layers": [s.randint(1, 9), s.sample_from(lambda c: c["layers"][0] * 10)],
             "n": s.sample_from(lambda c: len(c["layers"]))}
    for config in configs(space, num_samples=3, random_state=0):
        assert config["layers"][1] == 10 * config["layers"][0]
        assert config["n"] == 2


def test_reading_an_unresolved_entry_of_a_nested_dict_still_waits_for_it():
    # `total` reads the whole of `opt` (values()), so it must wait for `m` as well
    space = {"total": s.sample_from(lambda c: sum(c["opt"].values())),
             "opt": {"m": s.sample_from(lambda c: c["opt"]["lr"] * 2), "lr": s.uniform(0, 1)}}
    config = configs(space, random_state=0)[0]
    assert config["total"] == pytest.approx(3 * config["opt"]["lr"])


def test_a_function_reading_itself_is_a_cycle_naming_the_path():
    space = {"opt": {"lr": 0.1, "m": s.sample_from(lambda c: c["opt"]["m"] + 1)}}
    with pytest.raises(TuneConfigError,
                       match=r"\['opt/m'\].*cycle \(`opt/m` reads `opt/m` \(itself\)\)"):
        configs(space)


def test_a_cycle_between_nested_functions_names_what_each_reads():
    space = {"a": {"x": s.sample_from(lambda c: c.b.y)},
             "b": {"y": s.sample_from(lambda spec: spec.config.a.x)}}
    with pytest.raises(TuneConfigError,
                       match=r"\['a/x', 'b/y'\].*cycle \(`a/x` reads `b/y`, `b/y` reads `a/x`\)"):
        configs(space)


def test_tuner_resolves_a_sample_from_reading_its_own_nested_dict(tmp_path):
    grid = fit(tmp_path, {"opt": {"lr": tune.uniform(0, 1),
                                  "m": tune.sample_from(lambda config: config["opt"]["lr"] * 2)}})
    [result] = list(grid)
    assert result.config["opt"]["m"] == 2 * result.config["opt"]["lr"]


# ------------------------------------------------------------ 2. {"eval": "..."} entries
def test_eval_entry_is_evaluated_with_spec():
    got = list(generate_variants({"a": s.grid_search([1, 2]),
                                  "b": {"eval": "spec.config.a * 3"}}))
    assert [config for _, config in got] == [{"a": 1, "b": 3}, {"a": 2, "b": 6}]
    assert [format_vars(resolved) for resolved, _ in got] == ["a=1,b=3", "a=2,b=6"]


def test_eval_entry_sees_np_and_random_and_reads_other_values():
    space = {"model": {"w": s.randint(1, 5)},
             "f": s.sample_from(lambda c: 100),
             "b": {"c": {"eval": "spec.config.model.w + spec.config.f + np.floor(2.5)"}},
             "r": {"eval": "0 <= random.random() < 1"}}
    for config in configs(space, num_samples=3, random_state=0):
        assert config["b"]["c"] == config["model"]["w"] + 102
        assert config["r"] is True


def test_eval_entry_in_a_grid_value_and_in_a_choice():
    space = {"g": s.grid_search([{"eval": "spec.config.k + 1"}, 0]), "k": 10,
             "c": s.choice([{"eval": "spec.config.k * 2"}])}
    assert configs(space) == [{"g": 11, "k": 10, "c": 20}, {"g": 0, "k": 10, "c": 20}]


def test_only_a_one_key_eval_dict_is_an_expression():
    space = {"a": {"eval": "1 + 1", "other": 3}, "b": {"evaluation": "1 + 1"}}
    assert configs(space) == [space]


def test_bad_eval_entries_name_the_parameter_value_and_what_is_accepted():
    with pytest.raises(TuneConfigError, match=r"`b/eval` must be a Python expression string "
                                              r"using `spec`, `np` and `random`, got 5"):
        configs({"b": {"eval": 5}})
    with pytest.raises(TuneConfigError, match=r"`n/b/eval` must be a valid Python expression.*"
                                              r"got 'spec\.config\.a \*'"):
        configs({"n": {"b": {"eval": "spec.config.a *"}}})
    with pytest.raises(TuneConfigError, match=r"`b` could not be sampled from "
                                              r"\{'eval': 'undefined_name'\}: NameError"):
        configs({"b": {"eval": "undefined_name"}})


def test_a_parsed_eval_entry_pickles():
    from poptune.search.variant_generator import _parse

    [(path, domain)] = _parse({"a": 2, "b": {"eval": "spec.config.a * 3"}})[0]
    restored = pickle.loads(pickle.dumps(domain))
    assert path == ("b",) and repr(restored) == "{'eval': 'spec.config.a * 3'}"
    assert restored.sample({"a": 2}) == 6


def test_eval_entry_counts_as_unresolved_and_a_point_may_replace_it():
    assert s.has_unresolved({"x": [{"eval": "1"}]})
    got = suggestions({"a": 1, "b": {"eval": "spec.config.a * 3"}}, num_samples=2,
                      points_to_evaluate=[{"b": 7}])
    assert [g.config for g in got] == [{"a": 1, "b": 7}, {"a": 1, "b": 3}]


# ----------------------------------------------------- 3. which values trial tags show
def test_trial_tags_leave_out_sample_from_values_as_ray_does():
    space = {"a": s.grid_search([1, 2]), "r": s.sample_from(lambda _: 5),
             "c": s.sample_from(lambda spec: spec.config.a * 10), "u": s.randint(3, 4)}
    got = suggestions(space)
    assert [g.config for g in got] == [{"a": 1, "r": 5, "c": 10, "u": 3},
                                       {"a": 2, "r": 5, "c": 20, "u": 3}]
    assert [g.resolved_vars for g in got] == [{"a": 1, "u": 3}, {"a": 2, "u": 3}]
    assert [format_vars(g.resolved_vars) for g in got] == ["a=1,u=3", "a=2,u=3"]


def test_trial_tags_show_eval_values_but_not_nested_or_chosen_sample_from_values():
    space = {"a": s.grid_search([1, 2]),
             "n": {"x": {"eval": "spec.config.a * 3"}, "y": s.sample_from(lambda c: 1)},
             "ch": s.choice([s.sample_from(lambda c: 7)]),
             "l": [s.sample_from(lambda c: 8), s.randint(4, 5)]}
    got = suggestions(space)
    assert [g.config for g in got] == [
        {"a": 1, "n": {"x": 3, "y": 1}, "ch": 7, "l": [8, 4]},
        {"a": 2, "n": {"x": 6, "y": 1}, "ch": 7, "l": [8, 4]}]
    assert [g.resolved_vars for g in got] == [{"a": 1, "n/x": 3, "l/1": 4},
                                              {"a": 2, "n/x": 6, "l/1": 4}]


@pytest.mark.parametrize("constant_grid_search", [False, True])
def test_trial_tags_leave_out_sample_from_values_with_points_and_constant_grids(
        constant_grid_search):
    space = {"a": s.grid_search([1, 2]), "b": s.uniform(0, 1),
             "f": s.sample_from(lambda c: c["b"] + c["a"])}
    got = suggestions(space, points_to_evaluate=[{"b": 0.5}],
                      constant_grid_search=constant_grid_search)
    assert [g.config["f"] for g in got] == [1.5, 2.5]
    assert all(set(g.resolved_vars) == {"a"} for g in got)  # b is preset: not sampled


def test_generate_variants_still_returns_sample_from_values():
    # Ray's generate_variants (which sees the functions, not placeholders) returns them too
    [(resolved, config)] = list(generate_variants({"f": s.sample_from(lambda c: 4)}))
    assert resolved == {"f": 4} and config == {"f": 4}


def test_tuner_trial_tags_and_dirnames_match_ray(tmp_path):
    grid = fit(tmp_path, {"a": tune.grid_search([1, 2]), "r": tune.sample_from(lambda _: 5),
                          "c": tune.sample_from(lambda spec: spec.config.a * 10),
                          "u": tune.randint(3, 4)})
    got = by_tag(grid)
    assert [(tag, config) for tag, config, _ in got] == [
        ("0_a=1,u=3", {"a": 1, "r": 5, "c": 10, "u": 3}),
        ("1_a=2,u=3", {"a": 2, "r": 5, "c": 20, "u": 3})]
    assert "_0_a=1,u=3_" in got[0][2] and "_1_a=2,u=3_" in got[1][2]
    grid = fit(tmp_path, {"a": tune.grid_search([1, 2]), "b": {"eval": "spec.config.a * 3"}})
    got = by_tag(grid)
    assert [(tag, config) for tag, config, _ in got] == [
        ("0_a=1,b=3", {"a": 1, "b": 3}), ("1_a=2,b=6", {"a": 2, "b": 6})]
    assert "_0_a=1,b=3_" in got[0][2] and "_1_a=2,b=6_" in got[1][2]


# ------------------------------------------------ 4. searcher-created trials: tags from 1
class Counting(tune.search.Searcher):
    def __init__(self):
        super().__init__(metric="score", mode="max")
        self.i = 0

    def suggest(self, trial_id):
        self.i += 1
        return {"x": self.i}


def test_searcher_created_trials_are_tagged_from_1_as_in_ray(tmp_path):
    grid = fit(tmp_path, {}, search_alg=Counting(), num_samples=2)
    got = by_tag(grid)
    assert [tag for tag, _, _ in got] == ["1_x=1", "2_x=2"]
    assert "_1_x=1_" in got[0][2] and "_2_x=2_" in got[1][2]

    # and the whole config, constants too (Ray formats the merged config), sorted by path
    grid = fit(tmp_path, {"epochs": 3, "opt": {"lr": 0.1}}, search_alg=Counting(),
               num_samples=1)
    assert [tag for tag, _, _ in by_tag(grid)] == ["1_epochs=3,lr=0.1000,x=1"]


# -------------------------------------- 5. HyperOptSearch points_to_evaluate vs the space
needs_hyperopt = pytest.mark.skipif(importlib.util.find_spec("hyperopt") is None,
                                    reason="hyperopt not installed")


def hyperopt(**kwargs):
    from poptune.search.hyperopt import HyperOptSearch

    return HyperOptSearch(metric="score", mode="max", random_state_seed=1, **kwargs)


SPACE = {"x": tune.uniform(0, 1), "c": tune.choice(["a", "b", "c"])}


@needs_hyperopt
def test_hyperopt_point_missing_a_choice_is_refused_when_the_space_is_set():
    searcher = hyperopt(points_to_evaluate=[{"x": 0.1, "c": "b"}, {"x": 0.1}])
    with pytest.raises(TuneConfigError, match=(
            r"`points_to_evaluate\[1\]` must give a value for every parameter HyperOptSearch "
            r"searches \(\['c', 'x'\]\), got \{'x': 0.1\}, which misses `c`: one of "
            r"\['a', 'b', 'c'\]")):
        searcher.set_search_properties(None, None, SPACE)


@needs_hyperopt
def test_hyperopt_point_missing_a_number_is_refused_with_its_own_space():
    with pytest.raises(TuneConfigError, match=(
            r"`points_to_evaluate\[0\]`.*got \{'c': 'a'\}, which misses `x`: a number")):
        hyperopt(space=SPACE, points_to_evaluate=[{"c": "a"}])


@needs_hyperopt
def test_hyperopt_tuner_reports_the_incomplete_point(tmp_path):
    with pytest.raises(TuneConfigError, match=r"points_to_evaluate\[0\].*misses `c`"):
        fit(tmp_path, SPACE, search_alg=hyperopt(points_to_evaluate=[{"x": 0.1}]))


@needs_hyperopt
def test_hyperopt_complete_points_nested_conditional_and_dict_choices():
    space = {"n": {"x": tune.uniform(0, 1)}, "k": 1,
             "sub": tune.choice([{"lr": tune.uniform(0, 1)}, 2]),  # lr: only if drawn
             "d": tune.choice([{"a": 1}, {"a": 2}])}
    searcher = hyperopt(points_to_evaluate=[{"n": {"x": 0.25}, "sub": 2, "d": {"a": 2}}])
    assert searcher.set_search_properties(None, None, space)
    assert searcher.suggest("t0") == {"n": {"x": 0.25}, "sub": 2, "d": {"a": 2}}
    searcher.on_trial_complete("t0", {"score": 1.0})
    with pytest.raises(TuneConfigError,
                       match=r"`points_to_evaluate\['sub'\]` must be one of \[2\] \(1 option"):
        s2 = hyperopt(points_to_evaluate=[{"n": {"x": 0.25}, "sub": {"lr": 0.1},
                                           "d": {"a": 1}}])
        s2.set_search_properties(None, None, space)
        s2.suggest("t0")
