"""A toy Searcher through SearchGenerator, ConcurrencyLimiter and Repeater."""

from __future__ import annotations

import math
import os
import pickle

import pytest

from poptune.exceptions import TuneConfigError
from poptune.search import (
    ConcurrencyLimiter,
    Repeater,
    SearchAlgorithm,
    Searcher,
    SearchGenerator,
    TrialSuggestion,
)
from poptune.search import sample as s
from poptune.search.repeater import TRIAL_INDEX


class Walker(Searcher):
    """Suggests x = 1, 2, 3, ...; FINISHED after `limit`; records every callback."""

    def __init__(self, limit=None, metric="loss", mode="min"):
        super().__init__(metric=metric, mode=mode)
        self.limit = limit
        self.next_x = 1
        self.results = []
        self.completed = {}

    def suggest(self, trial_id):
        if self.limit is not None and self.next_x > self.limit:
            return Searcher.FINISHED
        x, self.next_x = self.next_x, self.next_x + 1
        return {"x": x, "nested": {"y": x * 10}}

    def on_trial_result(self, trial_id, result):
        self.results.append((trial_id, result))

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.completed[trial_id] = (result, error)


class SpaceTaker(Walker):
    """Accepts the Tuner's param_space and suggests only `x`."""

    def set_search_properties(self, metric, mode, config, **spec):
        self.got = (metric, mode, config, spec)
        if metric:
            self._metric = metric
        if mode:
            self._mode = mode
        return True


def generator(searcher, space=None, num_samples=3, seed=0):
    gen = SearchGenerator(searcher)
    gen.setup_experiment(space if space is not None else {}, num_samples, seed)
    return gen


# ---------------------------------------------------------------- SearchGenerator


def test_counts_up_to_num_samples_and_merges_constants_by_identity():
    model = object()
    gen = generator(Walker(), {"model": model, "nested": {"z": 1}}, num_samples=3)
    assert isinstance(gen, SearchAlgorithm) and gen.total_samples == 3
    trials = [gen.next_trial(f"t{i}") for i in range(3)]
    assert gen.is_finished() and gen.next_trial("t3") is None
    assert trials[0] == TrialSuggestion(
        config={"model": model, "nested": {"z": 1, "y": 10}, "x": 1},
        resolved_vars={"x": 1, "nested/y": 10}, tag=trials[0].tag,
    )
    # Ray's tag of a searcher's trial: counted from 1, every config value, sorted by path
    assert trials[0].tag.startswith("1_model=object_object_at_0x")
    assert trials[0].tag.endswith(",y=10,z=1,x=1") and trials[2].tag.startswith("3_")
    assert all(t.config["model"] is model for t in trials)


def test_finished_from_the_searcher_ends_an_unlimited_run():
    gen = generator(Walker(limit=2), num_samples=-1)
    assert gen.total_samples is None
    assert [gen.next_trial(f"t{i}") is not None for i in range(3)] == [True, True, False]
    assert gen.is_finished()


def test_none_from_the_searcher_means_not_now():
    class Slow(Walker):
        def suggest(self, trial_id):
            return None if trial_id == "wait" else super().suggest(trial_id)

    gen = generator(Slow(), num_samples=1)
    assert gen.next_trial("wait") is None and not gen.is_finished()
    assert gen.next_trial("t0").config["x"] == 1 and gen.is_finished()


def test_results_and_completions_reach_the_searcher():
    walker = Walker()
    gen = generator(walker)
    gen.next_trial("t0")
    gen.on_trial_result("t0", {"loss": 2.0})
    gen.on_trial_complete("t0", {"loss": 1.0}, error=False)
    assert walker.results == [("t0", {"loss": 2.0})]
    assert walker.completed == {"t0": ({"loss": 1.0}, False)}


def test_searcher_with_its_own_space_refuses_domains_in_param_space():
    with pytest.raises(TuneConfigError, match="`param_space` must hold constants only when Wal"):
        generator(Walker(), {"lr": s.uniform(0, 1)})


def test_searcher_taking_the_space_gets_it_and_leftover_domains_are_sampled():
    taker = SpaceTaker(metric=None, mode=None)
    space = {"x": s.randint(0, 5), "lr": s.uniform(0, 1), "k": 3}
    gen = SearchGenerator(taker)
    assert gen.set_search_properties("acc", "max", space, extra=1) is True
    gen.setup_experiment(space, 2, seed=4)
    assert taker.got == ("acc", "max", space, {"extra": 1})
    assert (gen.metric, taker.mode) == ("acc", "max")
    config = gen.next_trial("t0").config
    assert config["x"] == 1 and config["k"] == 3 and 0 <= config["lr"] < 1


def test_setup_passes_the_space_when_the_tuner_did_not():
    taker = SpaceTaker()
    generator(taker, {"k": 1})
    assert taker.got == (None, None, {"k": 1}, {})


def test_grid_left_for_a_searcher_is_an_error():
    gen = generator(SpaceTaker(), {"g": s.grid_search([1, 2])})
    with pytest.raises(TuneConfigError, match=r"\['g'\] are grid_search"):
        gen.next_trial("t0")


def test_old_style_set_search_properties_without_spec_kwargs():
    class Old(Walker):
        def set_search_properties(self, metric, mode, config):
            return True

    assert SearchGenerator(Old()).set_search_properties("m", "min", {}, extra=1) is True


def test_the_tuner_passes_rays_public_spec_to_set_search_properties(tmp_path):
    import poptune as tune

    seen = {}

    class Spec(Searcher):
        def set_search_properties(self, metric, mode, config, **spec):
            seen.update(spec)
            self.total = spec["num_samples"]
            return True

        def suggest(self, trial_id):
            self.total -= 1
            return {"x": 1} if self.total >= 0 else Searcher.FINISHED

        def on_trial_complete(self, trial_id, result=None, error=False):
            pass

    def f(config):
        tune.report({"score": config["x"]})

    grid = tune.Tuner(f, param_space={"c": 1}, tune_config=tune.TuneConfig(
        num_samples=2, time_budget_s=60, search_alg=Spec(metric="score", mode="max")),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    assert seen == {"stop": {}, "num_samples": 2, "time_budget_s": 60} and len(grid) == 2


def test_non_dict_suggestion_is_rejected():
    class Bad(Walker):
        def suggest(self, trial_id):
            return [1]

    with pytest.raises(TypeError, match=r"`Bad.suggest\(\)` must be a dict, None or"):
        generator(Bad()).next_trial("t0")


def test_generator_needs_a_searcher_and_setup():
    with pytest.raises(TypeError, match="`searcher` must be a Searcher"):
        SearchGenerator(object())
    with pytest.raises(TuneConfigError, match="`setup_experiment` must be called"):
        SearchGenerator(Walker()).next_trial("t0")


# ---------------------------------------------------------------- ConcurrencyLimiter


def test_limiter_holds_suggestions_at_the_limit():
    gen = generator(ConcurrencyLimiter(Walker(), max_concurrent=2), num_samples=4)
    assert gen.next_trial("t0") and gen.next_trial("t1")
    assert gen.next_trial("t2") is None and not gen.is_finished()
    gen.on_trial_complete("t0", {"loss": 1})
    assert gen.next_trial("t2").config["x"] == 3


def test_limiter_batch_mode_reports_when_the_whole_batch_is_done():
    walker = Walker()
    limiter = ConcurrencyLimiter(walker, max_concurrent=2, batch=True)
    limiter.suggest("a"), limiter.suggest("b")
    limiter.on_trial_complete("a", {"loss": 1})
    assert walker.completed == {} and limiter.suggest("c") is None
    limiter.on_trial_complete("b", {"loss": 2})
    assert set(walker.completed) == {"a", "b"} and limiter.suggest("c") is not None


def test_limiter_does_not_count_finished_or_unknown_trials():
    limiter = ConcurrencyLimiter(Walker(limit=1), max_concurrent=1)
    assert limiter.suggest("a") is not None
    limiter.on_trial_complete("zzz")  # not live: ignored
    assert limiter.suggest("b") is None
    limiter.on_trial_complete("a")
    assert limiter.suggest("b") == Searcher.FINISHED and not limiter.live_trials


def test_limiter_defers_to_a_searcher_that_limits_itself():
    class SelfLimiting(Walker):
        def set_max_concurrency(self, max_concurrent):
            self.cap = max_concurrent
            return True

    inner = SelfLimiting()
    limiter = ConcurrencyLimiter(inner, max_concurrent=1)
    assert inner.cap == 1
    assert limiter.suggest("a") and limiter.suggest("b")  # no limit of its own


def test_limiter_validates_arguments_and_forwards_metric():
    for bad in (0, 1.5, True):
        with pytest.raises(TuneConfigError, match="`max_concurrent` must be an integer >= 1"):
            ConcurrencyLimiter(Walker(), max_concurrent=bad)
    with pytest.raises(TypeError, match="`searcher` must be a Searcher"):
        ConcurrencyLimiter(object(), 1)


def test_wrappers_given_a_non_searcher_raise_what_ray_raises_too():
    from poptune.search import BasicVariantGenerator

    with pytest.raises(RuntimeError, match="`searcher` must be a Searcher") as limiter:
        ConcurrencyLimiter(BasicVariantGenerator(), 2)
    with pytest.raises(AttributeError, match="`searcher` must be a Searcher") as repeater:
        Repeater(BasicVariantGenerator())
    assert isinstance(limiter.value, TypeError) and isinstance(repeater.value, TypeError)


def test_limiter_passes_pause_and_unpause_to_a_searcher_that_has_them():
    class Pausable(Walker):
        def __init__(self):
            super().__init__()
            self.events = []

        def on_pause(self, trial_id):
            self.events.append(("pause", trial_id))

        def on_unpause(self, trial_id):
            self.events.append(("unpause", trial_id))

    limiter = ConcurrencyLimiter(Pausable(), 2)
    limiter.on_pause("a"), limiter.on_unpause("a")
    assert limiter.searcher.events == [("pause", "a"), ("unpause", "a")]
    ConcurrencyLimiter(Walker(), 2).on_pause("a")  # no such hook: nothing to do
    limiter = ConcurrencyLimiter(Walker(metric="acc", mode="max"), 2)
    assert (limiter.metric, limiter.mode) == ("acc", "max")
    with pytest.raises(TuneConfigError, match="`trial_id` must be unique"):
        limiter.suggest("a"), limiter.suggest("a")


# ---------------------------------------------------------------- Repeater


def test_repeater_runs_each_suggestion_repeat_times_and_reports_the_mean():
    walker = Walker()
    gen = generator(Repeater(walker, repeat=3), num_samples=6)
    trials = [gen.next_trial(f"t{i}") for i in range(6)]
    assert [t.config["x"] for t in trials] == [1, 1, 1, 2, 2, 2]
    assert [t.config[TRIAL_INDEX] for t in trials] == [0, 1, 2, 0, 1, 2]
    for i, loss in enumerate([1.0, 2.0, 6.0]):
        gen.on_trial_complete(f"t{i}", {"loss": loss})
    assert walker.completed == {"t0": ({"loss": 3.0}, False)}
    gen.on_trial_complete("t3", {"loss": 1.0})
    gen.on_trial_complete("t4", None, error=True)  # no metric: ignored in the mean
    gen.on_trial_complete("t5", {"other": 5})
    assert walker.completed["t3"] == ({"loss": 1.0}, False)


def test_repeater_reports_error_only_if_every_repeat_failed():
    walker = Walker()
    rep = Repeater(walker, repeat=2, set_index=False)
    assert TRIAL_INDEX not in rep.suggest("a")
    rep.suggest("b")
    rep.on_trial_complete("a", None, error=True)
    rep.on_trial_complete("b", None, error=True)
    result, error = walker.completed["a"]
    assert error and math.isnan(result["loss"])


def test_repeater_passes_finished_through_and_warns_on_uneven_num_samples(caplog):
    rep = Repeater(Walker(limit=0), repeat=2)
    assert rep.suggest("a") == Searcher.FINISHED
    generator(Repeater(Walker(), repeat=4), num_samples=6)
    assert "not a multiple of `repeat` (4)" in caplog.text
    with pytest.raises(TuneConfigError, match="`repeat` must be an integer >= 1, got 0"):
        Repeater(Walker(), repeat=0)


def test_repeater_passes_the_error_flag_of_the_trial_that_completes_the_group():
    walker = Walker()
    rep = Repeater(walker, repeat=2)
    for t in "abcd":
        rep.suggest(t)
    rep.on_trial_complete("a", None, error=True)
    rep.on_trial_complete("b", {"loss": 1.0})
    rep.on_trial_complete("c", {"loss": 1.0})
    rep.on_trial_complete("d", None, error=True)
    assert walker.completed["a"][1] is False and walker.completed["c"][1] is True  # as Ray


def test_repeater_save_and_restore_go_through_to_the_wrapped_searcher_and_keep_the_groups(
        tmp_path):
    rep = Repeater(Walker(), repeat=2)
    for i in range(3):
        rep.suggest(f"t{i}")  # x = 1, 1, 2: the second group is half full
    rep.on_trial_complete("t0", {"loss": 1.0})
    path = str(tmp_path / "repeater.pkl")
    rep.save(path)
    reference = [rep.suggest(f"t{i}")["x"] for i in range(3, 6)]
    clone = Repeater(Walker(), repeat=2)
    clone.restore(path)
    assert [clone.suggest(f"t{i}")["x"] for i in range(3, 6)] == reference == [2, 3, 3]
    clone.on_trial_complete("t1", {"loss": 3.0})
    assert clone.searcher.completed == {"t0": ({"loss": 2.0}, False)}


def test_a_repeater_file_restores_the_wrapped_searcher_alone_and_nothing_foreign(tmp_path):
    rep = Repeater(Walker(), repeat=2)
    rep.suggest("a"), rep.suggest("b"), rep.suggest("c")
    path = str(tmp_path / "repeater.pkl")
    rep.save(path)
    plain = Walker()
    plain.restore(path)  # Ray's Repeater file is the wrapped searcher's file
    assert plain.next_x == 3 and not hasattr(plain, "_groups") and not hasattr(plain, "searcher")
    limited = ConcurrencyLimiter(Walker(), 2)
    limited.restore(path)
    assert limited.searcher.next_x == 3

    class Naive(Walker):  # a Ray-style override that takes the file for a state dict
        def restore(self, checkpoint_path):
            with open(checkpoint_path, "rb") as f:
                self.__dict__.update(pickle.load(f))

    with pytest.raises(TuneConfigError, match="holds a Repeater's file, not a state dict"):
        Naive().restore(path)
    walker = Walker()
    walker.suggest("a")
    walker.save(path)  # the wrapped searcher's own file (what Ray's Repeater writes)
    clone = Repeater(Walker(), repeat=2)
    clone.restore(path)
    assert clone.searcher.next_x == 2 and clone._groups == []


def test_save_to_dir_and_restore_from_dir_as_rays(tmp_path):
    assert Searcher.CKPT_FILE_TMPL == "searcher-state-{}.pkl"
    walker = Walker()
    walker.suggest("a")
    limited = ConcurrencyLimiter(walker, 2)
    limited.save_to_dir(str(tmp_path))  # the wrapped searcher's file, written atomically
    assert os.listdir(tmp_path) == ["searcher-state-default.pkl"]
    walker.suggest("b")
    Repeater(walker, 2).save_to_dir(str(tmp_path), session_str="zz")
    clone = Walker()
    clone.restore_from_dir(str(tmp_path))  # the greatest name, as Ray
    assert clone.next_x == 3
    limited = ConcurrencyLimiter(Walker(), 2)
    limited.restore_from_dir(str(tmp_path))
    assert limited.searcher.next_x == 3
    os.remove(tmp_path / "searcher-state-zz.pkl")
    clone.restore_from_dir(str(tmp_path))
    assert clone.next_x == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RuntimeError, match=f"unable to find checkpoint in '{empty}'"):
        Walker().restore_from_dir(str(empty))


@pytest.mark.parametrize("big", [False, True], ids=["journal", "state_file"])
def test_restore_from_dir_reads_the_searcher_state_a_poptune_experiment_saved(tmp_path, big):
    import poptune as tune

    def trainable(config):
        tune.report({"loss": float(config["x"])})

    walker = Walker()
    walker.padding = "x" * (10_000 if big else 0)  # a big state goes to searcher_state.N.b64
    tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=ConcurrencyLimiter(walker, 2), num_samples=4),
        run_config=tune.RunConfig(name="exp", storage_path=str(tmp_path), verbose=0),
    ).fit()
    exp = str(tmp_path / "exp")
    assert any(n.startswith("searcher_state.") for n in os.listdir(exp)) == big
    clone = Repeater(Walker(), repeat=2)  # any wrapping: its innermost searcher gets the state
    clone.restore_from_dir(exp)
    assert clone.searcher.next_x == 5 and len(clone.searcher.completed) == 4
    assert clone._groups == [] and clone.suggest("n0")["x"] == 5
    from poptune.search import BasicVariantGenerator

    with pytest.raises(RuntimeError, match="Unable to find checkpoint in"):
        BasicVariantGenerator().restore_from_dir(exp)  # a searcher's state is not its own


def test_restore_from_dir_of_an_experiment_without_a_searcher_names_the_directory(tmp_path):
    import poptune as tune

    tune.Tuner(lambda config: tune.report({"loss": 1.0}), run_config=tune.RunConfig(
        name="exp", storage_path=str(tmp_path), verbose=0)).fit()
    with pytest.raises(RuntimeError, match="exp'.*a poptune experiment whose search algorithm"):
        Walker().restore_from_dir(str(tmp_path / "exp"))


# ---------------------------------------------------------------- Searcher base


def test_searcher_base_validation_and_defaults():
    with pytest.raises(TuneConfigError, match="`mode` must be one of 'min', 'max', got 'up'"):
        Walker(mode="up")
    multi = Searcher(metric=["a", "b"], mode=["min", "obs"])
    assert multi.mode == ["min", "obs"]
    with pytest.raises(TuneConfigError, match="`metric` must be a list as long as `mode`"):
        Searcher(metric="a", mode=["min", "max"])
    base = Searcher()
    assert (base.metric, base.mode) == (None, None)
    assert base.set_search_properties("m", "min", {}) is False
    with pytest.raises(NotImplementedError, match="Searcher must implement `suggest"):
        base.suggest("t0")
    with pytest.raises(NotImplementedError, match="does not support `add_evaluated_point`"):
        base.add_evaluated_point({"x": 1}, 0.5)


def test_searcher_save_and_restore_round_trip(tmp_path):
    walker = Walker()
    walker.suggest("a"), walker.suggest("b")
    walker.fn = lambda: 7  # cloudpickle handles what pickle cannot
    path = str(tmp_path / "searcher.pkl")
    walker.save(path)
    clone = Walker()
    clone.restore(path)
    assert clone.next_x == 3 and clone.fn() == 7
    assert clone.suggest("c")["x"] == 3


# ---------------------------------------------------------------- SearchGenerator state


def _chain():
    return Repeater(ConcurrencyLimiter(Walker(), max_concurrent=4), repeat=2)


def test_generator_state_restores_the_whole_wrapper_chain():
    gen = generator(_chain(), num_samples=8)
    head = [gen.next_trial(f"t{i}").config for i in range(3)]
    gen.on_trial_complete("t0", {"loss": 1.0})
    state = pickle.loads(pickle.dumps(gen.save_state()))

    reference = [gen.next_trial(f"t{i}").config for i in range(3, 8)]
    restored = generator(_chain(), num_samples=8)
    restored.load_state(state)
    assert [restored.next_trial(f"t{i}").config for i in range(3, 8)] == reference
    assert head[2]["x"] == 2 and restored.is_finished()
    restored.on_trial_complete("t1", {"loss": 3.0})  # completes the first group after restore
    base = restored.searcher.searcher.searcher
    assert base.completed == {"t0": ({"loss": 2.0}, False)}


def test_generator_state_uses_save_and_restore_of_ray_style_searchers():
    class FileOnly(Walker):
        def save(self, checkpoint_path):
            with open(checkpoint_path, "w") as f:
                f.write(str(self.next_x))

        def restore(self, checkpoint_path):
            with open(checkpoint_path) as f:
                self.next_x = int(f.read())

    gen = generator(FileOnly(), num_samples=5)
    gen.next_trial("t0"), gen.next_trial("t1")
    restored = generator(FileOnly(), num_samples=5)
    restored.load_state(gen.save_state())
    assert restored.next_trial("t2").config["x"] == 3


def test_unpicklable_searcher_state_warns_instead_of_failing(caplog):
    import threading

    class Locked(Walker):
        def __init__(self):
            super().__init__()
            self.lock = threading.Lock()

    gen = generator(Locked(), num_samples=3)
    gen.next_trial("t0")
    state = pickle.loads(pickle.dumps(gen.save_state()))
    assert "Locked cannot be saved" in caplog.text
    restored = generator(Locked(), num_samples=3)
    restored.load_state(state)  # the searcher starts afresh, the count is kept
    assert restored.next_trial("t1").config["x"] == 1 and restored.next_trial("t2")
    assert restored.is_finished()


def test_generator_state_rejects_a_different_wrapper_chain():
    state = generator(_chain()).save_state()
    with pytest.raises(TuneConfigError, match="`search_alg` must be wrapped as when"):
        generator(Walker()).load_state(state)


# ---------------------------------------------------------------- in a real run


@pytest.mark.parametrize("how", ["stopper", "scheduler"])
def test_the_result_that_stops_a_trial_reaches_on_trial_complete_not_on_trial_result(
        tmp_path, how):
    """Ray's order: the stopper / scheduler decide first; a STOP is not passed to the
    searcher's ``on_trial_result``, and the searcher gets that result at completion."""
    import poptune as tune
    from poptune.schedulers import ASHAScheduler

    walker = Walker(limit=1)

    def trainable(config):
        for i in range(10):
            tune.report({"loss": 10.0 - i})

    stop = {"training_iteration": 3} if how == "stopper" else None
    scheduler = ASHAScheduler(metric="loss", mode="min", max_t=3) if how == "scheduler" else None
    grid = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=walker, scheduler=scheduler),
        run_config=tune.RunConfig(stop=stop, storage_path=str(tmp_path), verbose=0),
    ).fit()
    assert grid.num_errors == 0
    assert [r["training_iteration"] for _, r in walker.results] == [1, 2]
    [(result, error)] = walker.completed.values()
    assert result["training_iteration"] == 3 and error is False
