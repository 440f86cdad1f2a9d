"""``TuneConfig(reuse_actors=True)`` with a class trainable, as in Ray 2.60: the Trainable of a
trial that ended is kept and reset for the next trial with the same resources
(``Trainable.reset`` -> ``reset_config``; counters start afresh, the trial's facts are the new
trial's, ``setup`` is not called again); a ``reset_config`` that returns False fails that
trial (Ray: "Trainable runner reuse requires reset_config() to be implemented and return
True."); ``cleanup`` runs once per instance, when it is not kept. Without ``reuse_actors`` each
trial gets a new Trainable (in a worker process reused across trials)."""

from __future__ import annotations

import math
import os
from typing import Any

import cloudpickle
import pytest

import poptune as tune
from poptune.backends._base import DoneEvent, ErrorEvent, LaunchSpec, ResultEvent, StoppedEvent
from poptune.backends.simulated import SimulatedBackend


class Resettable(tune.Trainable):
    def setup(self, config: dict[str, Any]) -> None:
        self.resets = getattr(self, "resets", 0)
        self.setups = getattr(self, "setups", 0) + 1
        self.x = config["x"]

    def step(self) -> dict[str, Any]:
        return {"score": self.x, "resets": self.resets, "setups": self.setups,
                "it": self.iteration, "pid": os.getpid(), "me": id(self),
                "tid": self.trial_id, "logdir": self.logdir,
                "done": self.iteration >= 1}

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        self.resets += 1
        self.x = new_config["x"]
        return True

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:
        return {"x": self.x}

    def load_checkpoint(self, checkpoint: Any) -> None:
        self.x = checkpoint["x"]

    def cleanup(self) -> None:
        log = self.config.get("log")
        if log:
            with open(log, "a") as f:
                f.write(self.trial_id + "\n")


class NotResettable(Resettable):
    def reset_config(self, new_config: dict[str, Any]) -> bool:
        return False


def _fit(trainable: Any, tmp_path: Any, backend: str, reuse: bool | None,
         xs: tuple[int, ...] = (1, 2, 3), **space: Any) -> list[Any]:
    grid = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 2}),
        param_space={"x": tune.grid_search(list(xs)), **space},
        tune_config=tune.TuneConfig(reuse_actors=reuse, backend=backend,
                                    max_concurrent_trials=1),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "results"), verbose=0),
    ).fit()
    return sorted(grid, key=lambda r: r.config["x"])


# -- Trainable.reset ----------------------------------------------------------------------------


def test_reset_calls_reset_config_and_starts_the_counters_afresh():
    t = Resettable({"x": 1})
    t.train()
    t.train()
    assert t.iteration == 2
    assert t.reset({"x": 5}) is True
    assert (t.resets, t.setups, t.x, t.iteration, t.config) == (1, 1, 5, 0, {"x": 5})
    result = t.train()
    assert result["training_iteration"] == 1 and result["score"] == 5 and result["it"] == 0
    t.stop()


def test_reset_returns_false_when_reset_config_does():
    t = NotResettable({"x": 1})
    t.train()
    assert t.reset({"x": 2}) is False
    assert t.iteration == 1  # not reset: the trainable is not reused
    assert tune.Trainable().reset({}) is False  # the default reset_config


# -- through Tuner.fit, on real worker processes and on the simulated backend ----------------


@pytest.mark.parametrize("backend", ["local", "simulated"])
def test_reuse_actors_resets_the_trainable_for_the_next_trial(tmp_path, backend):
    log = str(tmp_path / "cleanups")
    results = _fit(Resettable, tmp_path, backend, True, log=log)
    assert all(r.error is None for r in results), [r.error for r in results]
    rows = [r.metrics for r in results]
    assert len({m["pid"] for m in rows}) == 1
    assert [m["resets"] for m in rows] == [0, 1, 2]  # Ray: 0, 1, 2
    assert [m["setups"] for m in rows] == [1, 1, 1]
    assert len({m["me"] for m in rows}) == 1  # one instance
    assert [m["score"] for m in rows] == [1, 2, 3]
    # each trial counts its own iterations and sees its own facts
    assert [m["training_iteration"] for m in rows] == [2, 2, 2]
    assert [m["it"] for m in rows] == [1, 1, 1]
    assert [m["tid"] for m in rows] == [r.metrics["trial_id"] for r in results]
    assert [m["logdir"] for m in rows] == [r.path for r in results]
    # cleanup once, for the one instance, when the experiment ended (not after each trial)
    with open(log) as f:
        assert f.read().split() == [rows[-1]["tid"]]


@pytest.mark.parametrize("backend", ["local", "simulated"])
@pytest.mark.parametrize("reuse", [False, None])
def test_without_reuse_actors_each_trial_gets_a_new_trainable(tmp_path, backend, reuse):
    log = str(tmp_path / "cleanups")
    results = _fit(Resettable, tmp_path, backend, reuse, log=log)
    rows = [r.metrics for r in results]
    assert [m["resets"] for m in rows] == [0, 0, 0]
    if backend == "local":  # in one reused worker process, but new instances
        assert len({m["pid"] for m in rows}) == 1
    with open(log) as f:
        assert f.read().split() == [m["tid"] for m in rows]  # one cleanup per trial


@pytest.mark.parametrize("backend", ["local", "simulated"])
def test_a_reset_config_returning_false_fails_that_trial_as_in_ray(tmp_path, backend):
    log = str(tmp_path / "cleanups")
    results = _fit(NotResettable, tmp_path, backend, True, log=log)
    assert results[0].error is None and results[2].error is None
    assert "Trainable runner reuse requires reset_config() to be implemented and return True" \
        in str(results[1].error)
    # the first trial's instance went to the second and was stopped; the third got a new one
    assert results[2].metrics["resets"] == 0 and results[2].metrics["setups"] == 1
    with open(log) as f:  # cleanups: the instance that failed to reset (it had taken the
        stopped = f.read().split()  # second trial's facts, as in Ray), then the third's
    assert len(stopped) == 2
    assert stopped[0] in os.path.basename(results[1].path)
    assert stopped[1] == results[2].metrics["tid"]


@pytest.mark.parametrize("backend", ["local", "simulated"])
def test_a_trial_with_other_resources_gets_a_new_trainable(tmp_path, backend):
    def fit(resources: Any) -> list[int]:
        grid = tune.Tuner(
            tune.with_resources(Resettable, resources),
            param_space={"x": tune.grid_search([1, 2])},
            tune_config=tune.TuneConfig(reuse_actors=True, backend=backend,
                                        max_concurrent_trials=1),
            run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
        ).fit()
        return [r.metrics["resets"] for r in sorted(grid, key=lambda r: r.config["x"])]

    assert fit(lambda config: {"cpu": 1}) == [0, 1]
    assert fit(lambda config: {"cpu": config.get("x", 1)}) == [0, 0]


def test_function_trainables_are_unaffected(tmp_path):
    def train(config):
        tune.report({"pid": os.getpid()})

    grid = tune.Tuner(train, param_space={"x": tune.grid_search([1, 2])},
                      tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=1),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    assert all(r.error is None for r in grid)


# -- a paused trial resumes on a kept trainable: reset, then restored ------------------------


def test_a_paused_trial_resumes_on_the_kept_trainable_from_its_checkpoint(tmp_path):
    backend = SimulatedBackend()
    backend.setup({"trainable": cloudpickle.dumps(Resettable),
                   "constants": cloudpickle.dumps([])}, 1)

    def spec(trial_id: str, x: int, **kw: Any) -> LaunchSpec:
        return LaunchSpec(trial_id=trial_id, trial_name=trial_id,
                          trial_dir=str(tmp_path / trial_id), experiment_name="exp",
                          experiment_dir=str(tmp_path), config_blob=cloudpickle.dumps({"x": x}),
                          resources={"cpu": 1.0}, reuse_actors=True, **kw)

    def run(launch: LaunchSpec, decision: str) -> list[Any]:
        backend.launch(launch)
        seen = []
        while True:
            events = backend.poll(math.inf)
            if not events:
                return seen
            for event in events:
                seen.append(event)
                if isinstance(event, ResultEvent):
                    backend.reply(event.trial_id, decision)

    first = run(spec("a", 7), "pause")  # paused at its first result: saved, then stopped
    assert isinstance(first[-1], StoppedEvent)
    saved = next(e for e in first if type(e).__name__ == "SavedEvent")
    other = run(spec("b", 1), "continue")  # runs on a's kept trainable
    assert isinstance(other[-1], DoneEvent)
    b_rows = [e.result for e in other if isinstance(e, ResultEvent)]
    assert b_rows[0]["resets"] == 1 and b_rows[0]["score"] == 1
    resumed = run(spec("a", 7, restore_path=str(tmp_path / "a" / saved.checkpoint_dir_name),
                        start_iteration=1), "continue")
    rows = [e.result for e in resumed if isinstance(e, ResultEvent)]
    assert not any(isinstance(e, ErrorEvent) for e in resumed)
    assert rows[0]["resets"] == 2 and rows[0]["me"] == b_rows[0]["me"]
    assert rows[0]["score"] == 7 and rows[0]["training_iteration"] == 2  # restored
    backend.shutdown()
