"""BasicVariantGenerator: counts, points_to_evaluate, concurrency, seeds, save/restore."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from poptune.exceptions import TuneConfigError
from poptune.search import BasicVariantGenerator, TrialSuggestion
from poptune.search import sample as s


def drain(gen: BasicVariantGenerator, start: int = 0) -> list[TrialSuggestion]:
    out = []
    for i in range(start, start + 10_000):
        suggestion = gen.next_trial(f"t{i}")
        if suggestion is None:
            assert gen.is_finished()
            return out
        out.append(suggestion)
    raise AssertionError("generator never finished")


def make(space, num_samples=1, seed=None, **kwargs) -> BasicVariantGenerator:
    gen = BasicVariantGenerator(**kwargs)
    gen.setup_experiment(space, num_samples, seed)
    return gen


SPACE = {
    "x": s.grid_search([10, 20]),
    "y": s.grid_search(["a", "b", "c"]),
    "lr": s.loguniform(1e-4, 1e-1),
    "fn": s.sample_from(lambda c: c["lr"] * 2),
}


def test_grid_times_num_samples_counts_and_finishes_with_last_trial():
    gen = make(SPACE, num_samples=4, seed=0)
    assert gen.total_samples == 24 and not gen.is_finished()
    trials = [gen.next_trial(f"t{i}") for i in range(24)]
    assert gen.is_finished()  # known right after the last trial, no extra call needed
    assert gen.next_trial("t24") is None
    assert all(t.config["fn"] == t.config["lr"] * 2 for t in trials)
    # as in Ray, a sample_from value is no resolved var (it stays out of the trial's tag)
    assert set(trials[0].resolved_vars) == {"x", "y", "lr"}


def test_an_unseeded_search_repeats_after_np_random_seed_as_in_ray():
    """Ray's samplers use numpy's global state, so ``np.random.seed(...)`` in the driver
    repeats an unseeded search; poptune's unseeded generator is drawn from that state."""
    def configs():
        return [t.config["lr"] for t in drain(make(SPACE, num_samples=3))]

    np.random.seed(5)
    first = configs()
    np.random.seed(5)
    assert configs() == first
    assert configs() != first  # the global state moved on: another search


def test_empty_space_yields_one_empty_config_per_sample():
    trials = drain(make({}, num_samples=3))
    assert [t.config for t in trials] == [{}, {}, {}]
    assert trials[0].resolved_vars == {}


def test_points_to_evaluate_follow_rays_documented_example():
    space = {"a": s.grid_search([1, 2]), "b": s.randint(0, 3)}
    points = [{"a": 2, "b": 2}, {"a": 1}, {"b": 2}]
    gen = make(space, num_samples=4, seed=0, points_to_evaluate=points)
    assert gen.total_samples == 6
    trials = drain(gen)
    configs = [t.config for t in trials]
    assert configs[0] == {"a": 2, "b": 2}
    assert configs[1]["a"] == 1 and configs[1]["b"] in (0, 1, 2)
    assert configs[2:4] == [{"a": 1, "b": 2}, {"a": 2, "b": 2}]
    assert [c["a"] for c in configs[4:]] == [1, 2]
    assert trials[0].resolved_vars == {}  # nothing was sampled for a full point
    assert set(trials[1].resolved_vars) == {"b"}


def test_more_points_than_samples_runs_every_point():
    gen = make({"a": s.uniform(0, 1)}, num_samples=1,
               points_to_evaluate=[{"a": 0.1}, {"a": 0.2}, {"a": 0.3}])  # fmt: skip
    assert [t.config["a"] for t in drain(gen)] == [0.1, 0.2, 0.3]


def test_nested_point_merges_into_the_space():
    space = {"opt": {"lr": s.uniform(0, 1), "mom": s.uniform(0, 1)}, "k": 1}
    gen = make(space, points_to_evaluate=[{"opt": {"lr": 0.5}}], num_samples=2, seed=0)
    first = gen.next_trial("t0")
    assert first.config["opt"]["lr"] == 0.5 and 0 <= first.config["opt"]["mom"] < 1
    assert first.config["k"] == 1 and list(first.resolved_vars) == ["opt/mom"]


def test_point_with_unknown_key_fails_at_setup():
    gen = BasicVariantGenerator(points_to_evaluate=[{"opt": {"nope": 1}}])
    with pytest.raises(TuneConfigError, match="`opt/nope` is not in `param_space`"):
        gen.setup_experiment({"opt": {"lr": s.uniform(0, 1)}}, 1, None)


def test_point_outside_its_domain_warns(caplog):
    make({"a": s.uniform(0, 1)}, points_to_evaluate=[{"a": 5}])
    assert "outside its search space" in caplog.text


def test_max_concurrent_holds_back_until_a_trial_completes():
    gen = make({"a": s.uniform(0, 1)}, num_samples=3, seed=0, max_concurrent=2)
    assert gen.next_trial("t0") and gen.next_trial("t1")
    assert gen.next_trial("t2") is None and not gen.is_finished()
    gen.on_trial_complete("t0", {"loss": 1})
    assert gen.next_trial("t2") is not None and gen.is_finished()


def test_unlimited_num_samples_never_finishes():
    gen = make({"a": s.grid_search([1, 2])}, num_samples=-1, seed=0)
    assert gen.total_samples is None
    assert [gen.next_trial(f"t{i}").config["a"] for i in range(100)] == [1, 2] * 50
    assert not gen.is_finished()


def test_seed_reproduces_and_random_state_takes_precedence():
    space = {"lr": s.uniform(0, 1), "g": s.grid_search([1, 2])}

    def run(seed=None, **kwargs):
        return [t.config for t in drain(make(space, num_samples=3, seed=seed, **kwargs))]

    assert run(seed=7) == run(seed=7)
    assert run(seed=7) != run(seed=8)
    assert run(seed=1, random_state=7) == run(seed=2, random_state=7) == run(seed=7)
    assert run(random_state=np.random.default_rng(7)) == run(seed=7)
    assert run() != run()  # no seed at all: fresh entropy


def test_constants_keep_their_identity():
    model = object()
    trials = drain(make({"model": model, "lr": s.uniform(0, 1)}, num_samples=3))
    assert all(t.config["model"] is model for t in trials)


def test_bad_arguments_are_rejected():
    with pytest.raises(TuneConfigError, match="`max_concurrent` must be an integer >= 0"):
        BasicVariantGenerator(max_concurrent=-1)
    with pytest.raises(TypeError, match=r"`points_to_evaluate\[0\]` must be a dict"):
        BasicVariantGenerator(points_to_evaluate=[1])
    with pytest.raises(TuneConfigError, match="`num_samples` must be an integer >= 1"):
        make({}, num_samples=0)
    with pytest.raises(TuneConfigError, match="`setup_experiment` must be called"):
        BasicVariantGenerator().next_trial("t0")


# ---------------------------------------------------------------- save / restore

RESTORE_SPACE = {
    "g": s.grid_search([1, 2, 3]),
    "lr": s.loguniform(1e-4, 1e-1),
    "c": s.choice(["a", "b"]),
    "dep": s.sample_from(lambda c: c["g"] * 10),
}
RESTORE_POINTS = [{"lr": 0.01}, {"g": 2, "lr": 0.02, "c": "a"}]


def _fresh(constant_grid_search=False):
    gen = BasicVariantGenerator(
        points_to_evaluate=RESTORE_POINTS, constant_grid_search=constant_grid_search
    )
    gen.setup_experiment(RESTORE_SPACE, 4, 11)
    return gen


@pytest.mark.parametrize("constant_grid_search", [False, True])
def test_restore_at_every_cut_continues_with_exactly_the_remaining_configs(constant_grid_search):
    reference = [t.config for t in drain(_fresh(constant_grid_search))]
    assert len(reference) == 3 + 1 + 3 + 3
    for cut in range(len(reference) + 1):
        gen = _fresh(constant_grid_search)
        head = [gen.next_trial(f"t{i}").config for i in range(cut)]
        state = pickle.loads(pickle.dumps(gen.save_state()))
        restored = _fresh(constant_grid_search)
        restored.load_state(state)
        assert restored.is_finished() == (cut == len(reference))
        tail = [t.config for t in drain(restored, start=cut)]
        assert head + tail == reference, f"cut at {cut}"


def test_load_state_may_come_before_setup_experiment():
    gen = _fresh()
    for i in range(5):
        gen.next_trial(f"t{i}")
    state = gen.save_state()
    expected = [t.config for t in drain(gen, start=5)]
    restored = BasicVariantGenerator(points_to_evaluate=RESTORE_POINTS)
    restored.load_state(state)
    restored.setup_experiment(RESTORE_SPACE, 4, 11)
    assert [t.config for t in drain(restored, start=5)] == expected


def test_saving_a_restored_generator_before_it_resumes_keeps_the_snapshot():
    gen = _fresh()
    for i in range(4):
        gen.next_trial(f"t{i}")
    expected = [t.config for t in drain(_restored(gen.save_state()), start=4)]
    once = _fresh()
    once.load_state(gen.save_state())
    twice = _fresh()
    twice.load_state(once.save_state())
    assert [t.config for t in drain(twice, start=4)] == expected


def _restored(state):
    gen = _fresh()
    gen.load_state(state)
    return gen


def test_restore_keeps_live_trials_for_the_concurrency_limit():
    gen = make({"a": s.uniform(0, 1)}, num_samples=5, seed=0, max_concurrent=2)
    gen.next_trial("t0"), gen.next_trial("t1")
    restored = make({"a": s.uniform(0, 1)}, num_samples=5, seed=0, max_concurrent=2)
    restored.load_state(gen.save_state())
    assert restored.next_trial("t2") is None
    restored.on_trial_complete("t1")
    assert restored.next_trial("t2") is not None


def test_restore_works_with_a_legacy_random_state():
    space = {"a": s.uniform(0, 1), "g": s.grid_search([1, 2])}

    def fresh():
        gen = BasicVariantGenerator(random_state=np.random.RandomState(5))
        gen.setup_experiment(space, 3, None)
        return gen

    reference = [t.config for t in drain(fresh())]
    gen = fresh()
    head = [gen.next_trial(f"t{i}").config for i in range(3)]
    restored = fresh()
    restored.load_state(pickle.loads(pickle.dumps(gen.save_state())))
    assert head + [t.config for t in drain(restored, start=3)] == reference


@pytest.mark.parametrize("taken,later", [(0, 5), (3, 4), (5, 13), (2, 0)])
def test_replaying_creations_continues_where_the_journal_ends(taken, later):
    """The engine journals random search's state now and then: a state taken after ``taken``
    trials plus ``later`` replayed creations hands out exactly what the original run would
    have handed out next (grid, points_to_evaluate and sampling alike)."""
    kwargs = {"points_to_evaluate": [{"x": 10, "y": "a", "lr": 0.01}]}
    full = [t.config for t in drain(make(SPACE, 4, seed=3, **kwargs))]
    gen = make(SPACE, 4, seed=3, **kwargs)
    for i in range(taken):
        gen.next_trial(f"t{i}")
    state = pickle.loads(pickle.dumps(gen.save_state()))
    restored = make(SPACE, 4, seed=3, **kwargs)
    assert restored.replays_creations
    restored.load_state(state)
    restored.replay_creations(later)
    rest = [t.config for t in drain(restored, start=taken + later)]
    assert rest == full[taken + later:]


def test_with_a_concurrency_limit_the_state_is_journaled_with_each_trial():
    assert not make(SPACE, 2, max_concurrent=2).replays_creations


# ---------------------------------------------------------------- Ray's state methods and files


def test_get_set_state_and_dir_files_as_rays(tmp_path):
    assert BasicVariantGenerator.CKPT_FILE_TMPL == "basic-variant-state-{}.json"
    gen = _fresh()
    head = [gen.next_trial(f"t{i}").config for i in range(4)]
    assert not gen.has_checkpoint(str(tmp_path))
    gen.save_to_dir(str(tmp_path), "2024-01-01_00-00-00")
    assert os.listdir(tmp_path) == ["basic-variant-state-2024-01-01_00-00-00.json"]
    assert gen.has_checkpoint(str(tmp_path))
    clone = BasicVariantGenerator(points_to_evaluate=RESTORE_POINTS)
    clone.set_state(pickle.loads(pickle.dumps(gen.get_state())))
    clone.setup_experiment(RESTORE_SPACE, 4, 11)
    expected = [t.config for t in drain(gen, start=4)]
    assert head and [t.config for t in drain(clone, start=4)] == expected
    restored = BasicVariantGenerator(points_to_evaluate=RESTORE_POINTS)
    restored.restore_from_dir(str(tmp_path))
    restored.setup_experiment(RESTORE_SPACE, 4, 11)
    assert [t.config for t in drain(restored, start=4)] == expected


def test_restore_from_dir_without_a_state_names_the_directory(tmp_path):
    with pytest.raises(RuntimeError, match=f"Unable to find checkpoint in '{tmp_path}'"):
        BasicVariantGenerator().restore_from_dir(str(tmp_path))
    (tmp_path / "basic-variant-state-x.json").write_bytes(pickle.dumps({"_iterators": []}))
    with pytest.raises(TuneConfigError, match="basic-variant-state-x.json` must be a state "
                                              "written by poptune's save_to_dir, got 'dict'"):
        BasicVariantGenerator().restore_from_dir(str(tmp_path))  # e.g. Ray's


def test_restore_from_dir_replays_the_trials_created_after_the_journaled_state(monkeypatch):
    """The engine journals random search's state now and then: ``restore_from_dir`` moves
    past the trials created after it, a concurrency limit or not, and frees the old run's
    live trials."""
    from poptune.search import _saved_state

    full = [t.config for t in drain(make(SPACE, 4, seed=3))]
    gen = make(SPACE, 4, seed=3)
    for i in range(3):
        gen.next_trial(f"t{i}")
    state = pickle.loads(pickle.dumps(gen.save_state()))
    monkeypatch.setattr(_saved_state, "journaled_state", lambda dirpath: (state, 5))
    restored = BasicVariantGenerator(max_concurrent=1)
    restored.restore_from_dir("/experiment")
    again = BasicVariantGenerator()
    again.set_state(restored.get_state())  # saved before it resumed: the replay is kept
    restored.setup_experiment(SPACE, 4, 3)
    assert restored.next_trial("t8").config == full[8]
    again.setup_experiment(SPACE, 4, 3)
    assert [t.config for t in drain(again, start=8)] == full[8:]


def test_restore_from_dir_reads_the_state_of_a_poptune_experiment(tmp_path):
    import poptune as tune
    from tests.search._helpers import ENABLED, StopAfterResults

    space = {"a": s.uniform(0, 1), "g": s.grid_search([1, 2])}
    reference = [t.config for t in drain(make(space, 3, random_state=0))]
    ENABLED[0] = True
    tune.Tuner(
        lambda config: tune.report({"loss": config["a"]}), param_space=space,
        tune_config=tune.TuneConfig(search_alg=BasicVariantGenerator(random_state=0),
                                    num_samples=3, max_concurrent_trials=1),
        run_config=tune.RunConfig(name="exp", storage_path=str(tmp_path), verbose=0,
                                  stop=StopAfterResults(2)),
    ).fit()
    exp = str(tmp_path / "exp")
    created = len([n for n in os.listdir(exp) if n.startswith("lambda_")])
    assert 0 < created < len(reference)
    gen = BasicVariantGenerator(random_state=5)
    assert gen.has_checkpoint(exp)
    gen.restore_from_dir(exp)
    gen.setup_experiment(space, 3, None)
    assert [t.config for t in drain(gen, start=created)] == reference[created:]
