"""Driver-only workload (poptune only): N one-report trials completed inside the driver.

    python bench/workloads/driver.py [--trials 10000] [--storage-parent /dev/shm]

A stub backend answers each launch at once with the result a worker would send (made by the
worker's own session, freshly unpickled) and the trial's completion, so no worker process
runs: what is left is the driver's own work per trial (searcher, controller, journal,
runner, the trial-file writer's queue), plus the stub's making of the result (a few µs). The
writer process still writes the files.

Prints one JSON line with ``driver_cpu_per_trial_us`` (the main thread's CPU during
``fit()``, per trial) and ``fit_s``. The machine's speed drifts (see bench/README.md); for a
deterministic figure, count instructions instead: the difference between two trial counts
under callgrind is the driver's instructions per trial (the writer process is not traced):

    for n in 500 2500; do PYTHONHASHSEED=0 valgrind --tool=callgrind \\
        --callgrind-out-file=/tmp/cg.$n python bench/workloads/driver.py --trials $n; done
    # then (Ir at 2500 - Ir at 500) / 2000, from the "Collected" line of each run
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

METRIC = "score"


def _stub_backend() -> Any:
    from poptune.backends._base import Backend, DoneEvent, ResultEvent
    from poptune.session import TuneContext, _Session

    class InDriver(Backend):
        """Completes each launched trial at once with one result, made by the session a
        worker runs (so it carries the same automatic keys)."""

        unanswered_results = True  # as the local backend: nothing waits for an answer

        def __init__(self) -> None:
            self.events: list[Any] = []

        def setup(self, blobs: dict[str, bytes], max_concurrent: int) -> None:
            pass

        def total_resources(self) -> dict[str, float]:
            return {"cpu": 2.0, "gpu": 0.0}

        def launch(self, spec: Any) -> None:
            trial_id = spec.trial_id
            sent: list[dict[str, Any]] = []
            context = TuneContext(trial_id, spec.trial_name, spec.trial_dir,
                                  spec.experiment_name, spec.experiment_dir)
            _Session(context, sent.append, None).report({METRIC: 0.5})
            result = pickle.loads(pickle.dumps(sent[0]))  # fresh strings, as from a worker
            self.events += [ResultEvent(trial_id, result), DoneEvent(trial_id)]

        def reply(self, trial_id: str, decision: str) -> None:
            pass

        def poll(self, timeout: float) -> list[Any]:
            events, self.events = self.events, []
            return events

        def kill(self, trial_id: str) -> None:
            pass

        def shutdown(self) -> None:
            pass

    return InDriver()


def trainable(config: dict[str, Any]) -> None:  # never runs: the stub reports for it
    pass


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=10_000)
    p.add_argument("--storage-parent", default=None,
                   help="where the fresh results directory is made (default: the system's)")
    args = p.parse_args(argv)
    import poptune as tune

    storage = tempfile.mkdtemp(prefix="bench_driver_", dir=args.storage_parent)
    try:
        tuner = tune.Tuner(
            trainable, param_space={"x": tune.uniform(0, 1)},
            tune_config=tune.TuneConfig(num_samples=args.trials, metric=METRIC, mode="max",
                                        max_concurrent_trials=2, backend=_stub_backend()),
            run_config=tune.RunConfig(verbose=0, storage_path=storage))
        t0, c0 = time.perf_counter(), time.thread_time()
        grid = tuner.fit()
        cpu, fit = time.thread_time() - c0, time.perf_counter() - t0
        _common.emit({"workload": "driver", "framework": "poptune", "trials": args.trials,
                      "n_results": len(grid), "fit_s": fit,
                      "driver_cpu_per_trial_us": cpu / args.trials * 1e6,
                      "storage": storage})
    finally:
        _common.discard(storage)


if __name__ == "__main__":
    main()
