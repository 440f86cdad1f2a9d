"""A/B timing of one workload across poptune checkouts (and Optuna), interleaved.

    python bench/ab.py --checkout base=/path/to/old/worktree --checkout new=. \\
        [--optuna] [--repeat 5] -- overhead.py --trials 200 --dataframe

Each run is a fresh subprocess (``PYTHONPATH`` = the checkout, so its poptune is imported
first), timed from start to exit, its results left on disk as a user's run leaves them and
deleted after the clock stopped (``--clean-inside``: the workload deletes them, timed); runs
of the different checkouts alternate so machine load hits them alike (each other round in
reverse order, so no variant is always second). Bytecode is cached per
variant (``PYTHONPYCACHEPREFIX`` under bench/results/, even where ``PYTHONDONTWRITEBYTECODE``
is set) and one warm-up round is not counted, so no variant pays for compiling its sources.
Prints the median wall time of each and its ratio to the first, then the median of the
per-round (paired) ratios of each poptune checkout to the first and to Optuna. "Nothing got
slower" checks between commits go through this; figures for bench/README.md too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "workloads"))
from _common import DEFER_CLEANUP_ENV, delete_listed  # noqa: E402


def _run(cmd: list[str], env: dict[str, str], clean_inside: bool,
         cwd: str | None = None) -> tuple[float, dict]:
    """Run once; the wall time from start to exit and the workload's JSON line.

    Unless ``clean_inside``, the workload leaves its results directory on disk, as a user's
    script does, and it is deleted here after the clock stopped (``bench/run.py`` does the
    same): deleting the 50,000 files of 10,000 trials takes 0.6-0.8 s that no user's run
    spends. ``clean_inside`` keeps the deletion in the timed process (the stricter measure).
    """
    env = dict(env)
    listing = None
    if not clean_inside:
        fd, listing = tempfile.mkstemp(prefix="ab-cleanup-", suffix=".txt")
        os.close(fd)
        env[DEFER_CLEANUP_ENV] = listing
    try:
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False,
                              cwd=cwd)
        wall = time.perf_counter() - t0
    finally:
        if listing is not None:
            delete_listed(listing)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1]
    return wall, json.loads(line)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        raise SystemExit("usage: ab.py --checkout NAME=PATH ... -- WORKLOAD.py [ARGS]")
    split = argv.index("--")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkout", action="append", required=True, metavar="NAME=PATH")
    p.add_argument("--optuna", action="store_true", help="also run --framework optuna")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--clean-inside", action="store_true",
                   help="time the workload's deletion of its results directory too (by "
                        "default it is left on disk and deleted after the clock stops)")
    args = p.parse_args(argv[:split])
    workload, *wargs = argv[split + 1:]
    script = os.path.join(HERE, "workloads", workload)
    # each variant runs in its checkout: the driver's child processes (``python -m
    # poptune.backends._worker``, the trial-file writer) put their working directory first
    # on sys.path, so run from elsewhere they would import another checkout's poptune
    variants: list[tuple[str, list[str], dict[str, str]]] = []
    cwds: dict[str, str | None] = {}
    def bytecode_env(name: str, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = os.path.join(HERE, "results", "pycache-ab", name)
        return {**env, **extra}

    for item in args.checkout:
        name, _, path = item.partition("=")
        env = bytecode_env(name, PYTHONPATH=os.path.abspath(path))
        cwds[name] = os.path.abspath(path)
        cmd = [args.python, script, *wargs]
        if "--framework" not in wargs and "overhead" in workload:
            cmd += ["--framework", "poptune"]
        variants.append((name, cmd, env))
    if args.optuna:
        variants.append(("optuna", [args.python, script, *wargs, "--framework", "optuna"],
                         bytecode_env("optuna")))
    walls: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    fits: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    cpus: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    last: dict[str, dict] = {}
    for name, cmd, env in variants:  # warm-up: writes each variant's bytecode; not counted
        _run(cmd, env, args.clean_inside, cwds.get(name))
    for round_no in range(args.repeat):
        # every other round in reverse order: the variant that runs second in a round pays a
        # few percent (measured: 1.05-1.06 with the same pair in fixed order, 1.02-1.03 swapped)
        for name, cmd, env in (variants if round_no % 2 == 0 else variants[::-1]):
            wall, out = _run(cmd, env, args.clean_inside, cwds.get(name))
            walls[name].append(wall)
            if "fit_s" in out:
                fits[name].append(out["fit_s"])
            if "driver_cpu_fit_s" in out:  # the driver's own CPU: less sensitive to load
                cpus[name].append(out["driver_cpu_fit_s"])
            last[name] = out
    first = statistics.median(walls[variants[0][0]])
    for name, _, _ in variants:
        med = statistics.median(walls[name])
        extra = {k: v for k, v in last[name].items()
                 if k in ("fit_s", "per_trial_bookkeeping_ms", "driver_peak_rss_mb")}
        fit = f"; fit() median {statistics.median(fits[name]):.3f} s" if fits[name] else ""
        if cpus[name]:
            fit += f", driver CPU in fit() median {statistics.median(cpus[name]):.3f} s"
        print(f"{name:>10}: median {med:7.3f} s over {len(walls[name])} runs "
              f"(min {min(walls[name]):.3f}, max {max(walls[name]):.3f}); "
              f"x{med / first:.2f} of {variants[0][0]}{fit}; last run {extra}")
    # paired: the ratio within each round (runs of one round are seconds apart, so a drift
    # of the machine's speed over the session hits both sides of a pair alike)
    refs = [variants[0][0]] + (["optuna"] if args.optuna else [])
    for ref in refs:
        for name, _, _ in variants:
            if name == ref or name == "optuna":
                continue
            ratios = [a / b for a, b in zip(walls[name], walls[ref])]
            print(f"{name:>10} / {ref}: paired per-round ratio median "
                  f"{statistics.median(ratios):.2f} (min {min(ratios):.2f}, "
                  f"max {max(ratios):.2f}, {len(ratios)} rounds)")


if __name__ == "__main__":
    main()
