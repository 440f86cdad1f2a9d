"""Scale workload (poptune only): N no-op trials x 1 ``report`` (default 10,000).

    python bench/workloads/scale.py [--trials N] [--concurrency 2]

Prints one JSON line with:

* ``driver_peak_rss_mb``: ru_maxrss of the driver process alone (the process that calls
  ``Tuner.fit()``; worker processes are not included), over its whole life.
* ``driver_rss_before_fit_mb``: the driver's RSS after imports, before ``fit()``.
* ``workers_peak_rss_mb``: the largest VmHWM (peak RSS) of any child process, and
  ``workers_sum_peak_rss_mb`` the sum of those peaks, sampled from /proc every 0.25 s.
* ``fit_s``: wall time of ``Tuner.fit()`` plus ``get_best_result()``.
* ``trial_body_s``: the time the trials themselves ran, i.e. the summed time spent in the
  trainable's own code (excluding ``report``), divided by the concurrency since trials run
  side by side. For a no-op trainable this is microseconds.
* ``per_trial_bookkeeping_ms`` = (fit_s - trial_body_s) / trials * 1000: everything that
  is not the trial's own code (driver loop, IPC, journal, result files), per trial.
* ``driver_cpu_per_trial_ms``: driver CPU time (user+sys) during fit / trials.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

METRIC = "score"


def _rss_mb(pid: str | int = "self", field: str = "VmRSS") -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _children(pid: int) -> list[int]:
    """All descendants of ``pid`` (via /proc/<pid>/task/*/children)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/children") as f:
                    kids = [int(c) for c in f.read().split()]
            except OSError:
                continue
            out.extend(kids)
            todo.extend(kids)
    return out


class ChildSampler(threading.Thread):
    """Record each descendant's peak RSS (VmHWM) every ``interval`` seconds."""

    def __init__(self, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peaks: dict[int, float] = {}
        self._stop_evt = threading.Event()

    def sample(self) -> None:
        for pid in _children(os.getpid()):
            hwm = _rss_mb(pid, "VmHWM")
            if hwm is not None:
                self.peaks[pid] = max(self.peaks.get(pid, 0.0), hwm)

    def run(self) -> None:
        while not self._stop_evt.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stop_evt.set()
        self.join()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--storage", default=None, help="results directory (default: a fresh tmpdir)")
    p.add_argument("--storage-parent", default=None,
                   help="where the fresh tmpdir is made (default: the system's, e.g. /tmp); "
                        "/dev/shm takes the disk out of the measurement")
    args = p.parse_args(argv)
    storage = args.storage or tempfile.mkdtemp(prefix="bench_scale_",
                                                  dir=args.storage_parent)

    t0 = time.perf_counter()
    import poptune as tune

    t_import = time.perf_counter() - t0

    def trainable(config):
        start = time.perf_counter()
        score = config["x"] * 2.0
        body = time.perf_counter() - start
        tune.report({METRIC: score, "body_s": body})

    tuner = tune.Tuner(
        trainable,
        param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(num_samples=args.trials, metric=METRIC, mode="max",
                                    max_concurrent_trials=args.concurrency),
        run_config=tune.RunConfig(verbose=0, storage_path=storage),
    )
    rss_before = _rss_mb()
    sampler = ChildSampler()
    sampler.start()
    cpu0 = _common.cpu_s()
    t1 = time.perf_counter()
    try:
        grid = tuner.fit()
        best = grid.get_best_result()
        fit_s = time.perf_counter() - t1
        cpu_fit = _common.cpu_s() - cpu0
        body_total = sum(float(r.metrics.get("body_s", 0.0)) for r in grid)
        trial_body_s = body_total / args.concurrency
        n_done = sum(1 for r in grid if r.error is None and r.metrics)
        # ru_maxrss is only refreshed now and then by the kernel; VmHWM is exact.
        driver_peak = max(_common.peak_rss_mb(), _rss_mb(field="VmHWM") or 0.0)
        driver_now = _rss_mb()
        sampler.sample()
    except BaseException:
        if args.storage is None:
            _common.discard(storage)
        raise
    finally:
        sampler.stop()
    workers = sorted(sampler.peaks.values())
    _common.emit({
        "workload": "scale", "framework": "poptune", "trials": args.trials,
        "concurrency": args.concurrency, "best": best.metrics[METRIC],
        "n_results": len(grid), "n_completed": n_done, "import_s": t_import, "fit_s": fit_s,
        "trial_body_s": trial_body_s,
        "per_trial_bookkeeping_ms": (fit_s - trial_body_s) / args.trials * 1000,
        "driver_cpu_fit_s": cpu_fit,
        "driver_cpu_per_trial_ms": cpu_fit / args.trials * 1000,
        "driver_rss_before_fit_mb": rss_before, "driver_rss_after_fit_mb": driver_now,
        "driver_peak_rss_mb": driver_peak,
        "workers_seen": len(workers),
        "workers_peak_rss_mb": workers[-1] if workers else None,
        "workers_sum_peak_rss_mb": sum(workers) if workers else None,
        "storage": storage,
    })
    if args.storage is None:
        _common.discard(storage)


if __name__ == "__main__":
    main()
