"""The backend conformance suite: behaviour every backend must show.

Each ``check_*`` function runs a small real experiment on whatever backend the environment
selects (``POPTUNE_BACKEND``/``POPTUNE_ADDRESS``) and asserts one behaviour. A test module runs
them against every backend (see ``tests/backends/test_conformance.py``)::

    @pytest.mark.parametrize("check", CHECKS)
    def test_backend(check, backend_env, tmp_path):
        check(str(tmp_path))

The trainables live here so that workers on any node can import them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Any, Callable

import poptune as tune
from poptune.schedulers import PopulationBasedTraining, SchedulerDecision, TrialScheduler


def counting_trainable(config: dict[str, Any]) -> None:
    """Counts to ``config["steps"]``, checkpointing every ``config["every"]`` steps; can
    raise at ``fail_at`` or kill its own process at ``die_at`` (once, marked by a file)."""
    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt:
        with ckpt.as_directory() as d:
            start = int(open(os.path.join(d, "step")).read())
    for step in range(start + 1, config["steps"] + 1):
        time.sleep(config.get("sleep", 0.0))
        if config.get("fail_at") == step:
            raise ValueError(f"planned failure at step {step}")
        marker = config.get("marker")
        if config.get("die_at") == step and marker and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        checkpoint = None
        if step % config.get("every", 1) == 0:
            d = tempfile.mkdtemp()
            with open(os.path.join(d, "step"), "w") as f:
                f.write(str(step))
            checkpoint = tune.Checkpoint.from_directory(d)
        tune.report({"step": step, "score": step * config.get("k", 1.0), "pid": os.getpid()},
                    checkpoint=checkpoint)


class _PauseAt(TrialScheduler):
    def __init__(self, at: int) -> None:
        self.at, self.paused = at, set[str]()

    def on_trial_result(self, trial: Any, result: dict[str, Any]) -> Any:
        if result["training_iteration"] == self.at and trial.trial_id not in self.paused:
            self.paused.add(trial.trial_id)
            return SchedulerDecision.PAUSE
        return SchedulerDecision.CONTINUE


def _fit(storage: str, name: str, param_space: dict[str, Any], **kw: Any) -> Any:
    run_kw = {k: kw.pop(k) for k in list(kw) if k in ("failure_config", "stop")}
    return tune.Tuner(
        counting_trainable, param_space=param_space,
        tune_config=tune.TuneConfig(**kw),
        run_config=tune.RunConfig(name=name, storage_path=storage, verbose=0, **run_kw),
    ).fit()


def _rows(result: Any) -> list[dict[str, Any]]:
    with open(os.path.join(result.path, "result.json")) as f:
        return [json.loads(line) for line in f]


def check_results_arrive_in_order(storage: str) -> None:
    grid = _fit(storage, "order", {"steps": 20, "k": tune.grid_search([1.0, 2.0, 3.0])})
    assert grid.num_errors == 0 and len(grid) == 3
    for r in grid:
        assert [row["training_iteration"] for row in _rows(r)] == list(range(1, 21))
        assert [row["step"] for row in _rows(r)] == list(range(1, 21))


def check_pause_and_resume_from_checkpoint(storage: str) -> None:
    grid = _fit(storage, "pause", {"steps": 8, "every": 2, "k": tune.grid_search([1.0, 2.0])},
                scheduler=_PauseAt(4))
    for r in grid:
        rows = _rows(r)
        assert [row["step"] for row in rows] == list(range(1, 9))
        assert [row["iterations_since_restore"] for row in rows] == [1, 2, 3, 4, 1, 2, 3, 4]


def check_pbt_exploit_across_workers(storage: str) -> None:
    pbt = PopulationBasedTraining(time_attr="training_iteration", perturbation_interval=3,
                                  hyperparam_mutations={"k": tune.uniform(1.0, 5.0)}, seed=0)
    grid = _fit(storage, "pbt", {"steps": 15, "sleep": 0.01,
                                 "k": tune.grid_search([1.0, 2.0, 3.0, 4.0])},
                scheduler=pbt, metric="score", mode="max")
    assert grid.num_errors == 0
    lines = open(os.path.join(grid.experiment_path, "pbt_global.txt")).read().splitlines()
    assert lines, "no exploit happened"
    for r in grid:
        assert r.metrics["training_iteration"] == 15


def check_trial_that_raises_is_recorded(storage: str) -> None:
    grid = _fit(storage, "raises", {"steps": 5, "fail_at": 3})
    assert grid.num_errors == 1
    assert isinstance(grid[0].error, ValueError)
    assert "planned failure at step 3" in open(os.path.join(grid[0].path, "error.txt")).read()


def check_killed_worker_resumes_from_checkpoint(storage: str) -> None:
    marker = os.path.join(storage, "died")
    grid = _fit(storage, "killed", {"steps": 8, "every": 2, "die_at": 5, "marker": marker},
                failure_config=tune.FailureConfig(max_failures=2))
    assert os.path.exists(marker)
    r = grid[0]
    assert r.error is None, r.error
    rows = _rows(r)
    assert [row["training_iteration"] for row in rows] == list(range(1, 9))
    assert rows[4]["iterations_since_restore"] == 1  # step 5 ran again after restoring step 4
    assert rows[3]["pid"] != rows[4]["pid"]


def check_time_budget_stops_running_trials(storage: str) -> None:
    """Trials that would report for hours are stopped mid-run by ``time_budget_s`` (on the
    local, Ray and Dask backends their results go unanswered: the stop is sent unasked)."""
    grid = _fit(storage, "budget", {"steps": 10**6, "sleep": 0.01, "every": 10**6,
                                    "k": tune.grid_search([1.0, 2.0])}, time_budget_s=2.0)
    assert grid.num_errors == 0 and len(grid) == 2
    for r in grid:
        steps = [row["step"] for row in _rows(r)]
        assert steps and steps == list(range(1, len(steps) + 1)) and steps[-1] < 10**6


_DRIVER = textwrap.dedent('''
    import poptune as tune
    from poptune.backends.testing import counting_trainable
    tune.Tuner(counting_trainable,
               param_space={{"steps": 200, "sleep": 0.02, "every": 5,
                             "k": tune.grid_search([1.0, 2.0])}},
               run_config=tune.RunConfig(name="ctrlc", storage_path={storage!r}, verbose=0)).fit()
''')


def check_ctrl_c_stops_everything_and_is_restorable(storage: str) -> None:
    script = os.path.join(storage, "driver.py")
    with open(script, "w") as f:
        f.write(_DRIVER.format(storage=storage))
    proc = subprocess.Popen([sys.executable, script], env=dict(os.environ))
    journal = os.path.join(storage, "ctrlc", "journal.jsonl")
    deadline = time.time() + 120
    while time.time() < deadline:
        if os.path.exists(journal) and open(journal).read().count('"e":"result"') >= 10:
            break
        assert proc.poll() is None, "driver ended early"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) is not None
    exp = os.path.join(storage, "ctrlc")
    assert tune.Tuner.can_restore(exp)
    before = open(journal).read().count('"e":"result"')
    time.sleep(1.0)  # nothing keeps running after Ctrl-C
    assert open(journal).read().count('"e":"result"') == before


CHECKS: list[Callable[[str], None]] = [
    check_results_arrive_in_order,
    check_pause_and_resume_from_checkpoint,
    check_pbt_exploit_across_workers,
    check_trial_that_raises_is_recorded,
    check_killed_worker_resumes_from_checkpoint,
    check_ctrl_c_stops_everything_and_is_restorable,
    check_time_budget_stops_running_trials,
]
