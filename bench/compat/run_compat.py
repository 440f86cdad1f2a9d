"""Run Ray Tune's example scripts on poptune after the import swap (see ``translate.py``).

Each listed example is translated, then run as ``python <script> --smoke-test`` in its own
subprocess with a fresh temp working directory, ``POPTUNE_STORAGE_PATH`` pointing at a
temp dir, ``KERAS_BACKEND=torch`` and ``MLFLOW_ALLOW_FILE_STORE=true`` (mlflow 3
refuses its file store otherwise). A table of name / status / seconds / last error
line is printed; the exit code is non-zero if any listed script fails.

Usage::

    python bench/compat/run_compat.py [--list bench/compat/compat_list.txt] [--timeout 300]
                                      [--jobs 1] [script.py ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_LIST = os.path.join(HERE, "compat_list.txt")
sys.path.insert(0, HERE)

from translate import translate_all


@dataclass
class Outcome:
    name: str
    status: str  # "pass", "FAIL", "TIMEOUT"
    seconds: float
    last_error: str
    output: str


def read_list(path: str) -> list[str]:
    """Script names from a list file: one per line; ``#`` starts a comment."""
    names = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                names.append(line)
    return names


def _last_error_line(output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "Error" in ln or "Exception" in ln or ln.startswith("raise"):
            return ln[:200]
    return lines[-1][:200] if lines else ""


def run_one(name: str, translated_dir: str, timeout: float = 300.0) -> Outcome:
    """Run one translated example with ``--smoke-test``; return its outcome."""
    script = os.path.join(translated_dir, name)
    with tempfile.TemporaryDirectory(prefix="poptune-compat-run-") as work:
        env = dict(os.environ)
        env["POPTUNE_STORAGE_PATH"] = os.path.join(work, "storage")
        env["KERAS_BACKEND"] = "torch"
        env["PYTHONPATH"] = os.pathsep.join(
            [translated_dir] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        # mlflow>=3 refuses its file store (which mlflow_example.py's --smoke-test uses)
        # unless this opt-out is set; it is an mlflow setting, not a script change
        env.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        start = time.monotonic()
        try:
            proc = subprocess.run(
                [sys.executable, script, "--smoke-test"], cwd=work, env=env,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                timeout=timeout, start_new_session=True, check=False)
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout or ""
            if isinstance(out, bytes):
                out = out.decode(errors="replace")
            return Outcome(name, "TIMEOUT", time.monotonic() - start,
                           f"timed out after {timeout:.0f}s", out)
        secs = time.monotonic() - start
    status = "pass" if proc.returncode == 0 else "FAIL"
    err = "" if status == "pass" else _last_error_line(proc.stdout)
    return Outcome(name, status, secs, err, proc.stdout)


def print_table(outcomes: list[Outcome]) -> None:
    w = max([len(o.name) for o in outcomes] + [6])
    print(f"{'script':<{w}}  {'status':<7}  {'seconds':>7}  last error line")
    print("-" * (w + 40))
    for o in outcomes:
        print(f"{o.name:<{w}}  {o.status:<7}  {o.seconds:7.1f}  {o.last_error}")
    n_ok = sum(o.status == "pass" for o in outcomes)
    print(f"\n{n_ok}/{len(outcomes)} passed, {sum(o.seconds for o in outcomes):.1f}s total")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("scripts", nargs="*", help="run these instead of the list")
    p.add_argument("--list", default=DEFAULT_LIST, help="file of script names")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per script")
    p.add_argument("--jobs", type=int, default=1, help="scripts run at once")
    p.add_argument("--out", default=None, help="keep translated scripts here")
    p.add_argument("-v", "--verbose", action="store_true", help="print failing output")
    args = p.parse_args(argv)
    names = args.scripts or read_list(args.list)
    with tempfile.TemporaryDirectory(prefix="poptune-compat-") as tmp:
        out = args.out or tmp
        translate_all(out, names, quiet=True)
        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            outcomes = list(pool.map(lambda n: run_one(n, out, args.timeout), names))
    if args.verbose:
        for o in outcomes:
            if o.status != "pass":
                print(f"===== {o.name} ({o.status}) =====\n{o.output[-4000:]}")
    print_table(outcomes)
    return 0 if all(o.status == "pass" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
