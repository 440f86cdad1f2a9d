#!/usr/bin/env python3
"""CPU time of each process of a poptune run: the driver, its workers, the trial-file writer.

    .venv/bin/python bench/cpu_split.py [--trials 10000] [--reports 1] [--storage-parent /dev/shm]

Runs the overhead workload's poptune path in this process while a thread samples
``/proc/<pid>/stat`` of its children every 20 ms (the last sample of each is what it used;
a child that lives less than 20 ms is missed). Prints the wall time of ``fit()`` and, for each
process, user and system CPU seconds and voluntary/involuntary context switches. Where the
CPU goes matters on a 2-core machine: the driver, two workers and the writer share it.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "workloads"))
sys.path.insert(0, os.path.dirname(HERE))


def _sample(pid: int, out: dict[int, tuple[str, float, float, int, int]]) -> None:
    tick = os.sysconf("SC_CLK_TCK")
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/cmdline") as f:
            cmd = f.read().replace("\0", " ").strip()
        switches = {}
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if "ctxt_switches" in line:
                    name, value = line.split(":")
                    switches[name] = int(value)
    except OSError:
        return  # gone meanwhile
    # a process that has exited (a zombie) has no command line any more: keep the name seen
    name = cmd.split(" -m ")[-1].split(" ")[0] if " -m " in cmd else cmd[:40]
    if not name and pid in out:
        name = out[pid][0]
    out[pid] = (name, int(fields[11]) / tick, int(fields[12]) / tick,
                switches.get("voluntary_ctxt_switches", 0),
                switches.get("nonvoluntary_ctxt_switches", 0))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=10000)
    p.add_argument("--reports", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--storage-parent", default=None,
                   help="where the results go (default: the system's temporary directory)")
    args = p.parse_args(argv)
    import overhead

    seen: dict[int, tuple[str, float, float, int, int]] = {}
    stop = threading.Event()
    me = os.getpid()

    def watch() -> None:
        while not stop.is_set():
            try:
                with open(f"/proc/{me}/task/{me}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                kids = []
            for kid in kids:
                _sample(kid, seen)
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    storage = tempfile.mkdtemp(prefix="bench_cpu_", dir=args.storage_parent)
    try:
        ns = argparse.Namespace(reports=args.reports, trials=args.trials,
                                concurrency=args.concurrency, scheduler="fifo", dataframe=False)
        out = overhead.run_poptune(ns, storage)
    finally:
        stop.set()
        thread.join()
        shutil.rmtree(storage, ignore_errors=True)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(f"fit {out['fit_s']:.2f} s for {args.trials} trials x {args.reports} reports")
    print(f"  {'driver':32s} user {ru.ru_utime:6.2f} s  sys {ru.ru_stime:5.2f} s  "
          f"switches {ru.ru_nvcsw} voluntary, {ru.ru_nivcsw} involuntary (whole process)")
    for pid, (name, user, system, vol, invol) in sorted(seen.items()):
        print(f"  {name[:24]:24s} {pid:7d} user {user:6.2f} s  sys {system:5.2f} s  "
              f"switches {vol} voluntary, {invol} involuntary")


if __name__ == "__main__":
    main()
