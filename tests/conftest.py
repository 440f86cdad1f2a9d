import atexit
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# $HOME, the XDG directories and $POPTUNE_STORAGE_PATH are set by the root conftest.py

# Ray keeps its sessions and the address of the last cluster it started
# (``ray_current_cluster``) under $RAY_TMPDIR/ray, /tmp/ray by default. A cluster a test stops
# can leave that address behind, and a user's next ``ray.init()`` would then try to join a
# cluster that is gone. Every Ray process the tests start (they inherit this environment)
# keeps its state in a directory of this session's, removed when the session ends. The path
# stays short: Ray puts Unix sockets in it.
_RAY_TMP = tempfile.mkdtemp(prefix="ptray", dir="/tmp")
os.environ["RAY_TMPDIR"] = _RAY_TMP
atexit.register(shutil.rmtree, _RAY_TMP, True)

# --- the suite leaves no Ray or Dask process or Ray state file behind (issue 12) -------------
# Every process the suite starts, directly or not (``ray start`` daemons included), inherits
# this marker in its environment; at the end of the session any Ray or Dask process still
# carrying it fails the run (and is killed), and so does a Ray session this process started in
# the machine's default Ray directory instead of the private one above.
_SESSION_MARK = f"{os.getpid()}-{os.urandom(6).hex()}"
os.environ["POPTUNE_TEST_SESSION"] = _SESSION_MARK
_RAY_PATTERNS = ("raylet", "gcs_server", "ray::", "default_worker.py", "log_monitor.py",
                 "ray/dashboard", "ray/autoscaler", "runtime_env/agent")
_DASK_PATTERNS = ("dask-scheduler", "dask-worker", "dask scheduler", "dask worker",
                  "distributed.cli", "distributed/cli")
#: poptune's own children: a trial's worker process and the trial-file writer
_POPTUNE_PATTERNS = ("poptune.backends._worker", "poptune.storage._files_process")


def _default_ray_dir() -> str:
    """Where Ray keeps its state without RAY_TMPDIR: $TMPDIR/ray on Linux, /tmp/ray else
    ($TMPDIR as the machine has it: the root conftest.py gives the session a private one)."""
    base = (os.environ.get("POPTUNE_TEST_MACHINE_TMPDIR")
            if sys.platform.startswith("linux") else None)
    return os.path.join(base or "/tmp", "ray")


def _ray_dir_entries() -> set[str]:
    try:
        return set(os.listdir(_default_ray_dir()))
    except OSError:
        return set()


_RAY_DIR_BEFORE = _ray_dir_entries()

# --- nor anything new in the directory the suite runs from (the repository) -----------------
# e.g. comet_ml's `.cometml-runs`, MLflow's `mlruns`, W&B's `wandb` made by a library that
# writes into the working directory by default; `test-artifacts/` is meant to stay
_CWD = os.getcwd()
_CWD_BEFORE = set(os.listdir(_CWD))
_CWD_ALLOWED = {"test-artifacts"}


def _new_in_cwd() -> list[str]:
    try:
        return sorted(set(os.listdir(_CWD)) - _CWD_BEFORE - _CWD_ALLOWED)
    except OSError:
        return []


def _leftover_processes() -> list[tuple[int, str]]:
    """(pid, command line) of live Ray/Dask/poptune processes started by this session."""
    mark = f"POPTUNE_TEST_SESSION={_SESSION_MARK}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if mark not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            with open(f"/proc/{name}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[-1].split()[0] == b"Z":
                    continue  # a zombie holds nothing; its parent reaps it
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if any(p in cmd for p in _RAY_PATTERNS + _DASK_PATTERNS + _POPTUNE_PATTERNS):
            found.append((int(name), cmd[:200]))
    return found


def _leftover_ray_state() -> list[str]:
    """Ray sessions this process started in the default Ray directory (a session dir is named
    after the pid of the driver that started it, ``session_<date>_<pid>``; other users of the
    machine may add theirs meanwhile, so only this pid's count)."""
    new = _ray_dir_entries() - _RAY_DIR_BEFORE
    mine = sorted(n for n in new
                  if n.startswith("session_") and n.rsplit("_", 1)[-1] == str(os.getpid()))
    return [os.path.join(_default_ray_dir(), n) for n in mine]


def leftovers(wait: float = 15.0) -> tuple[list[tuple[int, str]], list[str]]:
    """What the session left behind, waiting up to ``wait`` s for processes that are exiting."""
    import time

    deadline = time.monotonic() + wait
    procs = _leftover_processes()
    while procs and time.monotonic() < deadline:
        time.sleep(0.5)
        procs = _leftover_processes()
    return procs, _leftover_ray_state()


def pytest_sessionfinish(session, exitstatus):
    import signal

    import pytest

    procs, state = leftovers()
    written = _new_in_cwd()
    if not procs and not state and not written:
        return
    lines = ["The test session left processes, Ray state or files behind (issue 12):"]
    lines += [f"  process {pid}: {cmd}" for pid, cmd in procs]
    lines += [f"  Ray state outside RAY_TMPDIR ({_RAY_TMP}): {path}" for path in state]
    lines += [f"  new in the working directory {_CWD}: {name}" for name in written]
    lines.append("  (the processes are killed now; the state and files are left for you to "
                 "inspect)")
    for pid, _ in procs:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for line in lines:
        if reporter is not None:
            reporter.write_line(line, red=True)
        else:
            print(line, file=sys.stderr)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
