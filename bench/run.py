#!/usr/bin/env python3
"""Run poptune's benchmarks side by side with Ray Tune and Optuna, and print the ratios.

    .venv-bench/bin/python bench/run.py                       # everything (Ray takes minutes)
    .venv-bench/bin/python bench/run.py --only overhead --frameworks poptune,optuna --quick

Every (workload, framework) pair runs in its own subprocess, one after the other, in this
one run. The wall time is measured here, from just before the subprocess is started to the
moment its JSON result line arrives on our end of its stdout pipe, so interpreter start and
imports count. Ratios are framework / poptune on that wall time. Raw records go to
``bench/results/<timestamp>.json`` (and ``latest.json``); each run's stderr to
``bench/results/<timestamp>/``.

Frameworks that are not importable by the chosen Python are reported as skipped. By
default the subprocesses use ``.venv-bench/bin/python`` when it exists (see
bench/setup.sh), else this interpreter.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as _dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKLOADS_DIR = os.path.join(HERE, "workloads")
sys.path.insert(0, WORKLOADS_DIR)
import _common  # noqa: E402  (the workloads' helpers: the clean-up listing)

#: module each framework needs, to tell "not installed" apart from "failed".
FRAMEWORK_MODULE = {"poptune": "poptune", "ray": "ray.tune", "optuna": "optuna"}

WORKLOADS: dict[str, dict[str, Any]] = {
    "overhead": {
        "script": "overhead.py",
        "frameworks": ["poptune", "ray", "optuna"],
        "args": ["--trials", "200", "--reports", "10", "--concurrency", "2"],
        "quick_args": ["--trials", "50", "--reports", "10", "--concurrency", "2"],
        "per_framework": True,
    },
    "scale": {
        "script": "scale.py",
        "frameworks": ["poptune"],
        "args": ["--trials", "10000", "--concurrency", "2"],
        "quick_args": ["--trials", "2000", "--concurrency", "2"],
        # Per-trial files make this workload filesystem-bound on some disks; the tmpfs
        # variant shows poptune's own cost with the disk taken out.
        "variants": {"disk": [], "tmpfs": ["--storage-parent", "/dev/shm"]},
        "per_framework": False,
        "repeat": False,  # 10,000 trials average themselves; one run is enough
    },
    # Result quality, not speed: medians over seeded runs inside one subprocess (see
    # workloads/pbt_quality.py); poptune on the simulated backend, Ray on 2 CPUs.
    "pbt_quality": {
        "script": "pbt_quality.py",
        "frameworks": ["poptune", "ray"],
        "args": ["--toy", "triangle", "--toy", "fig2", "--toy", "convnet"],
        "quick_args": ["--toy", "fig2", "--seeds", "5", "--ray-seeds", "2"],
        "per_framework": True,
        "repeat": False,  # the workload repeats itself over seeds
    },
}

TARGETS = {
    "overhead_poptune_wall_s": 1.5,  # 200 trials x 10 reports, process start to best result
    "scale_driver_peak_rss_mb": 300.0,
    "scale_per_trial_bookkeeping_ms": 1.0,
}


# ---------------------------------------------------------------------------------------------
def default_python() -> str:
    bench_py = os.path.join(ROOT, ".venv-bench", "bin", "python")
    return bench_py if os.path.exists(bench_py) else sys.executable


#: Before each run, wait up to QUIET_WAIT_S for the CPUs to be under QUIET_THRESHOLD busy.
QUIET_WAIT_S = 0.0
QUIET_THRESHOLD = 0.15

#: Where compiled bytecode goes (see warm_bytecode); None = inherit the environment's setting.
PYCACHE_PREFIX: str | None = None


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network here; don't let Ray try
    if PYCACHE_PREFIX is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = PYCACHE_PREFIX
    if CLEANUP_LIST is not None:  # see _common.discard: no mass delete between measurements
        env[_common.DEFER_CLEANUP_ENV] = CLEANUP_LIST
    return env


#: file where the workloads list the result directories they leave behind (set by main).
CLEANUP_LIST: str | None = None


def cleanup_deferred() -> int:
    """Delete the result directories the workloads left behind; return how many."""
    return 0 if CLEANUP_LIST is None else _common.delete_listed(CLEANUP_LIST)


def warm_bytecode(python: str, prefix: str) -> float:
    """Compile every framework's and poptune's modules once into ``prefix``.

    pip compiles Ray's and Optuna's modules at install time, but an editable poptune is
    compiled on first import, and only if bytecode writing is allowed (some shells here set
    PYTHONDONTWRITEBYTECODE=1, which would make poptune recompile its source in every run
    while the other frameworks load bytecode). A separate cache prefix under bench/results
    gives every framework the same warm cache and writes nothing into the source tree.
    """
    global PYCACHE_PREFIX
    PYCACHE_PREFIX = prefix
    code = "import sysconfig; p = sysconfig.get_paths(); print(p['purelib']); print(p['platlib'])"
    libs = sorted(set(subprocess.run([python, "-c", code], capture_output=True, text=True,
                                     env=child_env()).stdout.split()))
    t0 = time.perf_counter()
    subprocess.run([python, "-m", "compileall", "-q", "-j", "0", *libs,
                    os.path.join(ROOT, "poptune"), WORKLOADS_DIR],
                   env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def available(python: str, framework: str) -> bool:
    module = FRAMEWORK_MODULE[framework]
    code = ("import importlib.util, sys; "
            f"sys.exit(0 if importlib.util.find_spec({module.split('.')[0]!r}) else 1)")
    return subprocess.run([python, "-c", code], env=child_env()).returncode == 0


def cpu_busy(interval: float = 0.5) -> float | None:
    """Fraction of all CPUs busy over ``interval`` seconds (from /proc/stat)."""
    def snap() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as f:
                vals = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
        return sum(vals), idle

    a = snap()
    time.sleep(interval)
    b = snap()
    if a is None or b is None or b[0] == a[0]:
        return None
    return 1.0 - (b[1] - a[1]) / (b[0] - a[0])


def wait_quiet(max_wait: float, threshold: float) -> float | None:
    """Wait up to ``max_wait`` s for the machine to be idle (others' work skews timings)."""
    deadline = time.monotonic() + max_wait
    busy = cpu_busy()
    while busy is not None and busy > threshold and time.monotonic() < deadline:
        busy = cpu_busy(1.0)
    return busy


def run_one(python: str, script: str, args: list[str], timeout: float, log_prefix: str) -> dict:
    """Run one workload subprocess; time it from start to its JSON line and to its exit."""
    cmd = [python, os.path.join(WORKLOADS_DIR, script), *args]
    stderr_path = log_prefix + ".stderr"
    stdout_lines: list[str] = []
    record: dict | None = None
    t_result: float | None = None
    busy_before = wait_quiet(QUIET_WAIT_S, QUIET_THRESHOLD)
    load_before = round(os.getloadavg()[0], 2)  # other work on the machine skews timings
    with open(stderr_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=child_env(),
                                cwd=ROOT, start_new_session=True, text=True, bufsize=1)
        timed_out = threading.Event()

        def _kill() -> None:
            timed_out.set()
            _killpg(proc.pid)

        timer = threading.Timer(timeout, _kill)
        timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                now = time.perf_counter()
                parsed = _parse(line)
                if parsed is not None and record is None:
                    record, t_result = parsed, now - t0
                else:
                    stdout_lines.append(line)
            proc.wait()
            t_exit = time.perf_counter() - t0
        finally:
            timer.cancel()
            _killpg(proc.pid)  # leftovers of this run's process tree (e.g. Ray's raylet)
    if stdout_lines:
        with open(log_prefix + ".stdout", "w") as f:
            f.writelines(stdout_lines)
    out = {"cmd": cmd, "loadavg_before": load_before,
           "cpu_busy_before": None if busy_before is None else round(busy_before, 3), "returncode": proc.returncode,
           "timed_out": timed_out.is_set(),
           "wall_to_result_s": t_result, "wall_to_exit_s": t_exit, "record": record,
           "stderr_log": os.path.relpath(stderr_path, ROOT)}
    if record is None or proc.returncode != 0:
        with open(stderr_path, errors="replace") as f:
            out["stderr_tail"] = f.read()[-3000:]
    return out


def _parse(line: str) -> dict | None:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) and obj.get("bench") else None


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# ---------------------------------------------------------------------------------------------
def machine_info(python: str) -> dict:
    code = ("import json, platform, importlib.metadata as md\n"
            "v = {'python': platform.python_version()}\n"
            "for n in ('poptune', 'ray', 'optuna', 'psutil'):\n"
            "    try: v[n] = md.version(n)\n"
            "    except md.PackageNotFoundError: v[n] = None\n"
            "print(json.dumps(v))")
    try:
        versions = json.loads(subprocess.run([python, "-c", code], capture_output=True,
                                             text=True, env=child_env()).stdout)
    except ValueError:
        versions = {}
    cpu_model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = None
    try:
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    git = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip() or None
    dirty = bool(subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "poptune"],
                                capture_output=True, text=True).stdout.strip())
    return {"date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "nproc": os.cpu_count(), "cpu": cpu_model, "mem_gib": mem_gib,
            "os": platform.platform(), "python_exe": python, "versions": versions,
            "git": git, "poptune_tree_dirty": dirty}


def _med(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.0f}%"


def _loads(runs: list[dict]) -> str:
    def span(key: str, fmt: Any) -> str:
        vals = [r.get(key) for r in runs if r.get(key) is not None]
        if not vals:
            return "-"
        lo, hi = min(vals), max(vals)
        return fmt(lo) if lo == hi else f"{fmt(lo)}-{fmt(hi)}"

    return f"{span('loadavg_before', lambda v: f'{v:.1f}')} / {span('cpu_busy_before', _pct)}"


def summarize(report: dict) -> str:
    lines: list[str] = []
    runs = report["runs"]
    quick = report["quick"]
    for wname in report["workloads"]:
        wruns = [r for r in runs if r["workload"] == wname]
        if not wruns:
            continue
        if wname == "overhead":
            lines += _overhead_table(wruns, report, quick)
        elif wname == "scale":
            lines += _scale_table(wruns, quick)
        elif wname == "pbt_quality":
            lines += _quality_table(wruns)
        lines.append("")
    return "\n".join(lines)


def _overhead_table(wruns: list[dict], report: dict, quick: bool) -> list[str]:
    args = WORKLOADS["overhead"]["quick_args" if quick else "args"]
    lines = [f"overhead ({' '.join(args)}): wall time from process start to printed best result",
             "",
             "| framework | runs | wall to best, median (s) | min (s) | in-process fit (s) "
             "| exit (s) | ratio vs poptune | before: load avg / CPU busy |",
             "|---|---|---|---|---|---|---|---|"]
    by_fw: dict[str, list[dict]] = {}
    for r in wruns:
        by_fw.setdefault(r["framework"], []).append(r)
    base = None
    if "poptune" in by_fw:
        base = _med([r["wall_to_result_s"] for r in by_fw["poptune"] if r.get("record")])
    for fw in WORKLOADS["overhead"]["frameworks"]:
        rs = by_fw.get(fw)
        if not rs:
            continue
        if rs[0].get("skipped"):
            lines.append(f"| {fw} | skipped: {rs[0]['skipped']} | | | | | | |")
            continue
        ok = [r for r in rs if r.get("record")]
        if not ok:
            lines.append(f"| {fw} | {len(rs)} | FAILED (rc={rs[0]['returncode']}, see "
                         f"{rs[0]['stderr_log']}) | | | | | |")
            continue
        walls = [r["wall_to_result_s"] for r in ok]
        med = _med(walls)
        ratio = (med / base) if (base and med) else None
        lines.append(
            f"| {fw} | {len(ok)} | {_fmt(med)} | {_fmt(min(walls))} "
            f"| {_fmt(_med([r['record'].get('fit_s') for r in ok]))} "
            f"| {_fmt(_med([r['wall_to_exit_s'] for r in ok]))} "
            f"| {_fmt(ratio, 1 if ratio and ratio >= 10 else 2) + ('x' if ratio else '')} "
            f"| {_loads(ok)} |")
    if base is not None and not quick:
        target = TARGETS["overhead_poptune_wall_s"]
        verdict = "met" if base <= target else f"MISSED by {base - target:.2f} s ({base / target:.2f}x)"
        lines += ["", f"poptune target <= {target} s: {verdict} (median {base:.2f} s)"]
    return lines


def _scale_table(wruns: list[dict], quick: bool) -> list[str]:
    lines = ["scale (poptune): no-op trials x 1 report, 2 at a time", "",
             "| storage | trials | wall to best (s) | fit (s) | per-trial bookkeeping (ms) "
             "| driver CPU / trial (ms) | driver peak RSS (MB) | driver RSS before fit (MB) "
             "| worker peak RSS (MB, each) | before: load avg / CPU busy |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in wruns:
        rec = r.get("record")
        if r.get("skipped"):
            lines.append(f"| skipped: {r['skipped']} | | | | | | | | | |")
            continue
        if not rec:
            lines.append(f"| {r.get('variant') or '-'} | FAILED (rc={r['returncode']}, see "
                         f"{r['stderr_log']}) | | | | | | | | |")
            continue
        where = f"{r.get('variant') or '-'} ({os.path.dirname(rec.get('storage', '')) or '?'})"
        lines.append(
            f"| {where} | {rec['trials']} | {_fmt(r['wall_to_result_s'])} | {_fmt(rec['fit_s'])} "
            f"| {_fmt(rec['per_trial_bookkeeping_ms'], 3)} "
            f"| {_fmt(rec['driver_cpu_per_trial_ms'], 3)} "
            f"| {_fmt(rec['driver_peak_rss_mb'], 1)} | {_fmt(rec['driver_rss_before_fit_mb'], 1)} "
            f"| {_fmt(rec['workers_peak_rss_mb'], 1)} | {_loads([r])} |")
    ok = [r["record"] for r in wruns if r.get("record")]
    if ok:
        rec = ok[0]  # the targets are judged on the first variant: the default (disk) storage
        mem_t, ms_t = TARGETS["scale_driver_peak_rss_mb"], TARGETS["scale_per_trial_bookkeeping_ms"]
        mem, ms = rec["driver_peak_rss_mb"], rec["per_trial_bookkeeping_ms"]
        note = " (quick run: fewer trials than the 10,000 of the target)" if quick else ""
        note += f", storage {wruns[0].get('variant') or 'default'}"
        lines += ["",
                  f"driver memory < {mem_t:.0f} MB: "
                  + ("met" if mem < mem_t else f"MISSED by {mem - mem_t:.0f} MB") + f" ({mem:.1f} MB){note}",
                  f"per-trial bookkeeping < {ms_t} ms: "
                  + ("met" if ms < ms_t else f"MISSED by {ms - ms_t:.3f} ms ({ms / ms_t:.2f}x)")
                  + f" ({ms:.3f} ms){note}"]
    return lines


#: per toy: the columns of the quality table (summary key, header, digits)
QUALITY_COLUMNS = {
    "triangle": [("median_iters_to_done", "median iterations to done (per run, then median)", 0),
                 ("runs_all_done", "runs with every trial done", 0),
                 ("solved_at", "first trial done at", 0), ("best", "best accuracy", 1)],
    "fig2": [("final", "final Q (best member)", 4), ("best", "best Q", 4)],
    "convnet": [("best", "best accuracy", 4), ("best_at", "reached at iteration", 0)],
}


def _quality_table(wruns: list[dict]) -> list[str]:
    lines = ["pbt_quality: medians over seeded runs (plots: bench/img/quality_<toy>.png)"]
    for toy, columns in QUALITY_COLUMNS.items():
        rows = []
        for r in wruns:
            summary = ((r.get("record") or {}).get("toys") or {}).get(toy) or {}
            for method, s in summary.items():
                rows.append(f"| {r['framework']} | {method} | {s['runs']} | "
                            + " | ".join(_fmt(s.get(k), d) if isinstance(s.get(k), float)
                                         else _fmt(s.get(k)) for k, _, d in columns)
                            + f" | {_fmt(s.get('trial_iterations'), 0)} |")
        if not rows:
            continue
        lines += ["", f"{toy}:", "",
                  "| framework | method | runs | " + " | ".join(h for _, h, _ in columns)
                  + " | trial iterations |",
                  "|---" * (len(columns) + 4) + "|", *rows]
    for r in wruns:
        if r.get("skipped") or not r.get("record"):
            lines.append(f"{r['framework']}: " + (r.get("skipped") or
                         f"FAILED (rc={r.get('returncode')}, see {r.get('stderr_log')})"))
    return lines


# ---------------------------------------------------------------------------------------------
def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # unwinds run_one, whose `finally` kills the running workload's tree


def main(argv: list[str] | None = None) -> int:
    global QUIET_WAIT_S, CLEANUP_LIST
    signal.signal(signal.SIGTERM, _on_sigterm)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", action="append", choices=sorted(WORKLOADS),
                   help="run only this workload (repeatable)")
    p.add_argument("--frameworks", default=None,
                   help="comma-separated subset of poptune,ray,optuna (default: all)")
    p.add_argument("--quick", action="store_true",
                   help="smaller workloads (overhead: 50 trials; scale: 2,000 trials)")
    p.add_argument("--repeat", type=int, default=3,
                   help="runs per (workload, framework), interleaved; the median is reported")
    p.add_argument("--slow-s", type=float, default=60.0,
                   help="a framework whose first run took longer than this runs only once")
    p.add_argument("--timeout", type=float, default=1800.0, help="per-subprocess timeout (s)")
    p.add_argument("--python", default=None, help="interpreter for the workloads "
                   "(default: .venv-bench/bin/python if present, else this one)")
    p.add_argument("--out", default=os.path.join(HERE, "results"), help="results directory")
    p.add_argument("--quiet-wait", type=float, default=120.0, metavar="S",
                   help="before each run wait up to S seconds for the machine to be idle "
                        "(< 15%% CPU busy); 0 disables")
    p.add_argument("--summarize", metavar="JSON", default=None,
                   help="print the tables of an earlier run's results file and exit")
    p.add_argument("--cold-bytecode", action="store_true",
                   help="don't warm a bytecode cache; keep the environment's own setting")
    args = p.parse_args(argv)
    if args.summarize:
        with open(args.summarize) as f:
            old = json.load(f)
        m = old["machine"]
        print(f"# {m['date']}  nproc={m['nproc']}  {m['cpu']}  python={m['versions'].get('python')}"
              f"  ray={m['versions'].get('ray')}  optuna={m['versions'].get('optuna')}"
              f"  poptune git {m.get('git')}{' (dirty)' if m.get('poptune_tree_dirty') else ''}"
              f"  load avg at start {m.get('loadavg_at_start')}\n")
        print(summarize(old))
        return 0

    QUIET_WAIT_S = args.quiet_wait
    python = args.python or default_python()
    frameworks = (args.frameworks.split(",") if args.frameworks
                  else list(FRAMEWORK_MODULE))
    for fw in frameworks:
        if fw not in FRAMEWORK_MODULE:
            p.error(f"--frameworks: unknown framework {fw!r} (known: {', '.join(FRAMEWORK_MODULE)})")
    workloads = args.only or list(WORKLOADS)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S") + ("-quick" if args.quick else "")
    log_dir = os.path.join(args.out, stamp)
    os.makedirs(log_dir, exist_ok=True)
    CLEANUP_LIST = os.path.join(log_dir, "leftover-dirs.txt")
    atexit.register(cleanup_deferred)  # also when interrupted

    if not args.cold_bytecode:
        took = warm_bytecode(python, os.path.join(args.out, "pycache"))
        print(f"# bytecode cache warm in {os.path.relpath(PYCACHE_PREFIX, ROOT)} ({took:.1f} s)",
              flush=True)
    info = machine_info(python)
    info["bytecode"] = "inherited" if args.cold_bytecode else "warm cache (PYTHONPYCACHEPREFIX)"
    info["loadavg_at_start"] = [round(x, 2) for x in os.getloadavg()]
    print(f"# poptune bench {info['date']}  nproc={info['nproc']}  python={info['versions'].get('python')}"
          f"  poptune={info['versions'].get('poptune')} ray={info['versions'].get('ray')}"
          f" optuna={info['versions'].get('optuna')}  ({python})", flush=True)
    avail = {fw: available(python, fw) for fw in frameworks}
    report: dict[str, Any] = {"machine": info, "quick": args.quick, "workloads": workloads,
                              "frameworks": frameworks, "repeat": args.repeat, "runs": [],
                              "targets": TARGETS}
    for wname in workloads:
        spec = WORKLOADS[wname]
        wargs = spec["quick_args" if args.quick else "args"]
        fws = [fw for fw in spec["frameworks"] if fw in frameworks]
        variants = [(name, vargs) for name, vargs in spec.get("variants", {"": []}).items()
                    if not (vargs[:1] == ["--storage-parent"] and not os.path.isdir(vargs[1]))]
        slow: set[str] = set()
        for rep in range(args.repeat):
            for fw, (variant, vargs) in [(fw, v) for fw in fws for v in variants]:
                if not avail[fw]:
                    if rep == 0:
                        print(f"  {wname:9s} {fw:8s} skipped: not installed in {python}", flush=True)
                        report["runs"].append({"workload": wname, "framework": fw,
                                               "skipped": "not installed"})
                    continue
                if fw in slow:
                    continue
                extra = ["--framework", fw] if spec["per_framework"] else []
                if wname == "pbt_quality":  # this run's records; a quick run keeps bench/img
                    extra += ["--out-dir", os.path.join(log_dir, "quality")]
                    extra += ["--img-dir", log_dir] if args.quick else []
                tag = f"{wname}-{fw}" + (f"-{variant}" if variant else "")
                prefix = os.path.join(log_dir, f"{tag}-{rep}")
                res = run_one(python, spec["script"], extra + wargs + vargs, args.timeout, prefix)
                res.update(workload=wname, framework=fw, variant=variant, rep=rep)
                report["runs"].append(res)
                if res["record"] is None:
                    status = "FAILED" + (" (timeout)" if res["timed_out"] else "")
                    print(f"  {tag:22s} run {rep + 1}: {status} rc={res['returncode']}; "
                          f"see {res['stderr_log']}", flush=True)
                    slow.add(fw)  # don't repeat a failing framework
                    continue
                print(f"  {tag:22s} run {rep + 1}: {res['wall_to_result_s']:.3f} s to "
                      f"best result, exit at {res['wall_to_exit_s']:.3f} s "
                      f"(before: load avg {res['loadavg_before']}, "
                      f"CPU busy {_pct(res['cpu_busy_before'])})", flush=True)
                if res["wall_to_result_s"] > args.slow_s and variant == variants[-1][0]:
                    slow.add(fw)
            if not spec.get("repeat", True):
                break
    print(f"# deleted {cleanup_deferred()} results directories left by the runs", flush=True)
    out_path = os.path.join(args.out, f"{stamp}.json")
    with open(out_path, "w") as f:
        json.dump(report, f, indent=1)
    with open(os.path.join(args.out, "latest.json"), "w") as f:
        json.dump(report, f, indent=1)
    print()
    print(summarize(report))
    print(f"raw results: {os.path.relpath(out_path, ROOT)}")
    failed = [r for r in report["runs"] if not r.get("skipped") and r.get("record") is None]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
