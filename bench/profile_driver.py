#!/usr/bin/env python3
"""Profile the poptune driver on the overhead workload with cProfile.

    .venv-bench/bin/python bench/profile_driver.py [--trials 200] [--top 15] [--workload overhead|scale]

Runs the workload's poptune path in this process under cProfile (the worker processes are
not profiled: they are separate interpreters) and prints the top functions by own time and
by cumulative time. The full profile is saved to bench/results/profile-<workload>.pstats.
For a sampling profile of the real, unprofiled run (workers too) use py-spy, e.g.:

    .venv-bench/bin/py-spy record --subprocesses -o bench/results/overhead.svg -- \\
        .venv-bench/bin/python bench/workloads/overhead.py --framework poptune
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "workloads"))
sys.path.insert(0, os.path.dirname(HERE))


def _warm_bytecode() -> None:
    """Use run.py's bytecode cache (bench/results/pycache), as the timed runs do."""
    prefix = os.path.join(HERE, "results", "pycache")
    if os.path.isdir(prefix):
        sys.pycache_prefix = prefix
        sys.dont_write_bytecode = False
        os.environ["PYTHONPYCACHEPREFIX"] = prefix  # for the worker processes
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def main() -> None:
    _warm_bytecode()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workload", choices=["overhead", "scale"], default="overhead")
    p.add_argument("--trials", type=int, default=None)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--storage-parent", default=None,
                   help="where the experiment directory is made (e.g. /dev/shm); default /tmp")
    args = p.parse_args()
    storage = tempfile.mkdtemp(prefix="bench_profile_", dir=args.storage_parent)  # removed outside the profile
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    try:
        if args.workload == "overhead":
            import overhead

            overhead.main(["--framework", "poptune", "--trials", str(args.trials or 200),
                           "--storage", storage])
        else:
            import scale

            scale.main(["--trials", str(args.trials or 2000), "--storage", storage])
    finally:
        prof.disable()
        wall = time.perf_counter() - t0
        shutil.rmtree(storage, ignore_errors=True)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    out = os.path.join(HERE, "results", f"profile-{args.workload}.pstats")
    prof.dump_stats(out)
    for key in ("tottime", "cumulative"):
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(key).print_stats(args.top)
        text = buf.getvalue()
        print(f"\n=== top {args.top} by {key} (profiled wall {wall:.2f} s) ===")
        print(text[text.find("   ncalls"):].rstrip())
    print(f"\nfull profile: {os.path.relpath(out)}")


if __name__ == "__main__":
    main()
