"""Worker utilisation with stragglers: asynchronous vs synchronous-batch scheduling.

    python bench/workloads/utilisation.py [--budget 30] [--slots 2] [--seed 0] \\
        [--frameworks poptune-async,poptune-sync,ray,optuna] [--plot bench/img/utilisation.png]
    python bench/workloads/utilisation.py --one poptune-async [--budget 30] ...   # one run

The d2l chapter on asynchronous random search (seed 004) shows that waiting for the slowest
trial of a batch leaves workers idle, while starting a new trial the moment a slot frees
keeps them busy. This workload measures that.

Trials: a fixed, seeded list of configurations, the same for every run. Trial ``i`` runs
``epochs`` epochs (1-8) of ``epoch_s`` seconds each (log-uniform in 0.02-0.6 s), so trials
last from 20 ms to almost 5 s: stragglers. An epoch is a ``time.sleep`` (the trial holds its
slot without competing with the driver for the 2 CPUs) followed by one ``report``. Each
trial appends ``start``/``end`` lines with wall-clock times to a shared log file (one
``O_APPEND`` write per line), so busy time is measured the same way for every framework.

Runs (each in its own subprocess, one after another; all with ``slots`` trials at a time):

* ``poptune-async``: ``Tuner`` with ``time_budget_s=budget``, ``max_concurrent_trials=slots``
  and a searcher that hands out the list in order: a trial starts as soon as a slot frees.
* ``poptune-sync``: the same engine, trials and searcher, except the searcher hands out
  ``slots`` trials at a time and nothing more until all of them finished (synchronous
  batches, the d2l chapter's baseline).
* ``ray``: ``poptune-async``'s script on Ray Tune 2.60 (``ray.tune.search.Searcher``).
* ``optuna``: ``study.optimize(objective, timeout=budget, n_jobs=slots)`` — threads in one
  process taking the next configuration from the list (an in-process floor).

Utilisation = (slot-seconds spent inside trials during [fit start, fit start + budget])
/ (slots x budget). A trial that has not ended when the budget runs out counts as busy up
to the budget's end. Engine start-up inside ``fit()`` counts as idle time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

RUNS = ("poptune-async", "poptune-sync", "ray", "optuna")
MODULE = {"poptune-async": "poptune", "poptune-sync": "poptune", "ray": "ray.tune",
          "optuna": "optuna"}


def make_configs(seed: int, n: int, log_path: str) -> list[dict[str, Any]]:
    """The trial list: ``n`` configurations with stragglers, identical for a given seed."""
    rng = random.Random(seed)
    lo, hi = math.log(0.02), math.log(0.6)
    return [{"i": i, "epochs": rng.randint(1, 8), "epoch_s": math.exp(rng.uniform(lo, hi)),
             "log": log_path} for i in range(n)]


def _log(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def make_trainable(report: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def trainable(config: dict[str, Any]) -> None:
        _log(config["log"], f"start {config['i']} {time.time():.6f}")
        for epoch in range(config["epochs"]):
            time.sleep(config["epoch_s"])
            report({"loss": 1.0 / (1 + epoch) + config["i"] * 1e-6, "epoch": epoch})
        _log(config["log"], f"end {config['i']} {time.time():.6f}")

    return trainable


def make_searcher(base: type, configs: list[dict[str, Any]], batch: int | None) -> Any:
    """A searcher over ``configs`` in order; with ``batch``, synchronous batches of that size."""

    class ListSearcher(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__(metric="loss", mode="min")
            self.next = 0
            self.live: set[str] = set()
            self.batch_left = 0

        def suggest(self, trial_id: str) -> dict[str, Any] | None:
            if self.next >= len(configs):
                return None
            if batch:
                if not self.live and self.batch_left == 0:
                    self.batch_left = batch  # the previous batch is complete: open a new one
                if self.batch_left == 0:
                    return None  # wait for the batch's slowest trial
                self.batch_left -= 1
            self.live.add(trial_id)
            self.next += 1
            return dict(configs[self.next - 1])

        def on_trial_complete(self, trial_id: str, result: Any = None, error: bool = False) -> None:
            self.live.discard(trial_id)

    return ListSearcher()


def run_tuner(tune: Any, searcher_base: type, args: argparse.Namespace, configs: list,
              batch: int | None, storage: str) -> tuple[float, int]:
    # more slots than CPUs is fine for these sleeping trials: give each a share of a CPU
    cpu = min(1.0, (os.cpu_count() or 1) / args.slots)
    trainable = tune.with_resources(make_trainable(tune.report), {"cpu": cpu})
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=make_searcher(searcher_base, configs, batch), num_samples=-1,
            max_concurrent_trials=args.slots, time_budget_s=args.budget),
        run_config=tune.RunConfig(verbose=0, storage_path=storage),
    )
    t0 = time.time()
    grid = tuner.fit()
    return t0, len(grid)


def run_one(name: str, args: argparse.Namespace) -> dict[str, Any]:
    log_path = os.path.join(tempfile.mkdtemp(prefix="bench_util_log_"), "trials.log")
    configs = make_configs(args.seed, 5000, log_path)
    storage = tempfile.mkdtemp(prefix=f"bench_util_{name}_")
    try:
        if name.startswith("poptune"):
            import poptune as tune
            from poptune.search import Searcher

            t0, n = run_tuner(tune, Searcher, args, configs,
                              args.slots if name == "poptune-sync" else None, storage)
        elif name == "ray":
            import ray
            from ray import tune
            from ray.tune.search import Searcher

            ray.init(address="local", num_cpus=args.slots, include_dashboard=False,
                     log_to_driver=False)
            t0, n = run_tuner(tune, Searcher, args, configs, None, storage)
            ray.shutdown()
        elif name == "optuna":
            t0, n = run_optuna(args, configs)
        else:
            raise SystemExit(f"--one: unknown run {name!r} (known: {', '.join(RUNS)})")
        t_end = time.time()
        with open(log_path) as f:
            lines = f.read().split()
    finally:
        _common.discard(storage)
        _common.discard(os.path.dirname(log_path))
    starts: dict[int, float] = {}
    ends: dict[int, float] = {}
    for kind, i, t in zip(lines[0::3], lines[1::3], lines[2::3]):
        (starts if kind == "start" else ends)[int(i)] = float(t)
    intervals = [(starts[i] - t0, (ends[i] - t0) if i in ends else None) for i in sorted(starts)]
    return {"run": name, "budget_s": args.budget, "slots": args.slots, "seed": args.seed,
            "fit_s": t_end - t0, "trials_reported": n, "intervals": intervals,
            **measure(intervals, args.budget, args.slots)}


def run_optuna(args: argparse.Namespace, configs: list[dict[str, Any]]) -> tuple[float, int]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    lock = threading.Lock()
    it = iter(configs)

    def report(metrics: dict[str, Any]) -> None:
        pass  # the trial's value is its last loss; Optuna has no per-step stream here

    body = make_trainable(report)

    def objective(trial: Any) -> float:
        with lock:
            config = next(it)
        body(config)
        return 1.0 / config["epochs"]

    study = optuna.create_study()
    t0 = time.time()
    study.optimize(objective, timeout=args.budget, n_jobs=args.slots)
    return t0, len(study.trials)


def measure(intervals: list[tuple[float, float | None]], budget: float,
            slots: int) -> dict[str, Any]:
    """Busy slot-seconds inside [0, budget] over slots x budget, and completed trials.

    >>> measure([(0.0, 1.0), (0.5, None)], budget=2.0, slots=2)["utilisation"]
    0.625
    """
    busy = 0.0
    done = 0
    for start, end in intervals:
        stop = budget if end is None else min(end, budget)
        busy += max(0.0, stop - max(start, 0.0))
        done += end is not None and end <= budget
    first = min((s for s, _ in intervals), default=None)
    return {"utilisation": busy / (slots * budget), "busy_slot_s": busy,
            "trials_completed_in_budget": done, "trials_started": len(intervals),
            "first_trial_start_s": first}


def lanes(intervals: list[tuple[float, float | None]], budget: float) -> list[list[tuple]]:
    """Assign intervals to slots greedily (first free lane) for drawing."""
    out: list[list[tuple[float, float]]] = []
    for start, end in sorted(intervals):
        stop = budget if end is None else end
        for lane in out:
            if lane[-1][1] <= start + 1e-3:
                lane.append((start, stop))
                break
        else:
            out.append([(start, stop)])
    return out


def plot(records: list[dict[str, Any]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(records), 1, figsize=(10, 1.2 + 0.9 * len(records)),
                             sharex=True, squeeze=False)
    budget = records[0]["budget_s"]
    for ax, rec in zip(axes[:, 0], records):
        for y, lane in enumerate(lanes(rec["intervals"], budget)):
            ax.broken_barh([(s, e - s) for s, e in lane], (y - 0.4, 0.8),
                           facecolors=["C0", "C1"] * (len(lane) // 2 + 1), edgecolor="white",
                           linewidth=0.5)
        ax.set_yticks(range(rec["slots"]))
        ax.set_ylabel("slot")
        ax.set_title(f"{rec['run']}: utilisation {rec['utilisation']:.1%}, "
                     f"{rec['trials_completed_in_budget']} trials completed", fontsize=9)
        ax.axvline(budget, color="k", linewidth=0.8)
    axes[-1, 0].set_xlim(0, budget * 1.02)
    axes[-1, 0].set_xlabel("seconds since fit() started (budget ends at the black line)")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=30.0, help="time_budget_s of each run")
    p.add_argument("--slots", type=int, default=2, help="trials at a time")
    p.add_argument("--seed", type=int, default=0, help="seed of the trial list")
    p.add_argument("--one", choices=RUNS, help="run one configuration in this process")
    p.add_argument("--frameworks", default=",".join(RUNS),
                   help=f"comma-separated runs (default: {','.join(RUNS)})")
    p.add_argument("--plot", default=None, help="write a Gantt chart of the runs to this PNG")
    args = p.parse_args(argv)
    if args.budget <= 0 or args.slots < 1:
        p.error(f"--budget must be > 0 and --slots >= 1, got {args.budget} and {args.slots}")
    if args.one:
        _common.emit({"workload": "utilisation", **run_one(args.one, args)})
        return
    records = []
    for name in args.frameworks.split(","):
        if name not in RUNS:
            p.error(f"--frameworks: unknown run {name!r} (known: {', '.join(RUNS)})")
        if not _importable(MODULE[name]):
            print(f"{name:14s} skipped: {MODULE[name]} is not installed", flush=True)
            continue
        cmd = [sys.executable, os.path.abspath(__file__), "--one", name, "--budget",
               str(args.budget), "--slots", str(args.slots), "--seed", str(args.seed)]
        out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True,
                             timeout=args.budget * 3 + 300)
        rec = next((json.loads(ln) for ln in out.stdout.splitlines()
                    if ln.startswith('{"bench"')), None)
        if rec is None:
            print(f"{name:14s} FAILED (exit {out.returncode})", flush=True)
            continue
        records.append(rec)
        print(f"{name:14s} utilisation {rec['utilisation']:6.1%}  "
              f"completed {rec['trials_completed_in_budget']:4d}  "
              f"first trial at {rec['first_trial_start_s']:.2f} s", flush=True)
    print()
    print(table(records))
    if args.plot and records:
        plot(records, args.plot)
        print(f"\nplot: {args.plot}")


def table(records: list[dict[str, Any]]) -> str:
    base = next((r for r in records if r["run"] == "poptune-async"), None)
    rows = ["| run | utilisation | trials completed in budget | ratio to poptune-async "
            "(completed) | first trial starts (s) |", "|---|---|---|---|---|"]
    for r in records:
        ratio = (f"{r['trials_completed_in_budget'] / base['trials_completed_in_budget']:.2f}"
                 if base and base["trials_completed_in_budget"] else "-")
        rows.append(f"| {r['run']} | {r['utilisation']:.1%} | {r['trials_completed_in_budget']}"
                    f" | {ratio} | {r['first_trial_start_s']:.2f} |")
    return "\n".join(rows)


def _importable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


if __name__ == "__main__":
    main()
