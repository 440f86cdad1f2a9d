"""Helpers shared by the benchmark workloads (stdlib only, psutil optional).

Every workload prints exactly one JSON line on stdout (``emit``) the moment it has its
best result; bench/run.py timestamps that line. Anything else a framework prints goes to
stderr or to lines that are not JSON objects with a ``"bench"`` key.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import sys
import time

#: wall clock at the first line of the workload (after the interpreter started).
SCRIPT_START = time.time()


def process_age_s() -> float | None:
    """Seconds since this process was created (interpreter start included), from /proc.

    /proc/uptime and the start time in /proc/self/stat are both counted from boot, so the
    difference is good to one clock tick (10 ms). psutil's create_time() adds the boot time,
    which /proc/stat rounds to whole seconds, so it is not used here.
    """
    try:
        with open("/proc/self/stat") as f:
            stat = f.read()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    start_ticks = int(fields[19])  # field 22 (starttime); fields[0] is field 3
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def peak_rss_mb() -> float:
    """Peak resident set size of this process only (ru_maxrss, KiB on Linux)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / (1024 * 1024) if sys.platform == "darwin" else kib / 1024


def cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def versions(*names: str) -> dict[str, str | None]:
    import importlib.metadata as md

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def emit(record: dict) -> None:
    record = {"bench": True, **record}
    age = process_age_s()
    if age is not None:
        record.setdefault("self_timed_since_process_start_s", round(age, 4))
    record.setdefault("self_timed_since_script_start_s", round(time.time() - SCRIPT_START, 4))
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def quiet_exit(code: int = 0) -> None:
    """Leave without interpreter teardown (after the result is printed and resources freed)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


#: set by bench/run.py and bench/ab.py: a file listing result directories they delete after
#: the clock stopped (run.py after the whole run, ab.py after each run).
DEFER_CLEANUP_ENV = "POPTUNE_BENCH_DEFER_CLEANUP"


def delete_listed(listing: str) -> int:
    """Delete the result directories named in ``listing`` (a :data:`DEFER_CLEANUP_ENV` file),
    then the listing itself; return how many there were."""
    if not os.path.exists(listing):
        return 0
    with open(listing) as f:
        paths = [ln.strip() for ln in f if ln.strip()]
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
    os.remove(listing)
    return len(paths)


def discard(path: str) -> None:
    """Delete a workload's results directory, or leave it for bench/run.py to delete at the end.

    Deleting tens of thousands of files slows the *next* run's file creation several-fold
    on ext4: the inode allocator skips inodes freed in the last seconds to minutes
    (``recently_deleted`` in fs/ext4/ialloc.c), and that scan is kernel CPU in the creating
    process. Measured here: 0.36 ms per trial directory with four files right after an idle
    minute, 2.2 ms right after deleting 25,000 files. So under the harness each run leaves
    its files and the harness deletes them all once, after the last measurement.
    """
    listing = os.environ.get(DEFER_CLEANUP_ENV)
    if listing:
        with open(listing, "a") as f:
            f.write(os.path.abspath(path) + "\n")
        return
    shutil.rmtree(path, ignore_errors=True)
