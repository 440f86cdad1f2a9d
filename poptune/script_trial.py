"""Script trials: any command-line training script as a trainable (:func:`script`).

The trainable runs inside a trial like a function trainable: it starts the command as a
subprocess, reads the metric lines it prints (see :mod:`poptune.script_reporter`) and reports
each one with ``tune.report``; the driver's decisions (stop, pause, a PBT exploit) stop the
process. The whole protocol is described in ``docs/script_trials.md``.

What the script receives:

* each top-level config key as ``--name value`` (``str(value)`` for str/int/float/bool, as
  Syne Tune's ``LocalBackend`` passes them; JSON text for dicts, lists and None);
* the whole config as JSON in ``POPTUNE_CONFIG`` (nested dicts included);
* a checkpoint directory in ``POPTUNE_CHECKPOINT_DIR`` (and as ``--<checkpoint_arg> DIR``
  when ``checkpoint_arg`` is set) holding the checkpoint to resume from, if any;
* ``POPTUNE_TRIAL_DIR`` and ``POPTUNE_TRIAL_ID``.

Its stdout and stderr are kept in the trial directory (``stdout.txt``, ``stderr.txt``).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from collections import deque
from typing import IO, Any, Callable, Mapping, Sequence

from poptune._pdeathsig import die_with_parent
from poptune._validation import bad_type, bad_value
from poptune.exceptions import ScriptError
from poptune import script_reporter as _rep

__all__ = ["script", "ScriptTrainable"]

#: the name of the script's checkpoint directory inside its trial directory
CHECKPOINT_DIRNAME = "script_checkpoint"
STDOUT_FILE = "stdout.txt"
STDERR_FILE = "stderr.txt"
#: how many trailing stderr lines a crash error quotes
STDERR_TAIL_LINES = 20
#: the directory holding the ``poptune`` package
_POPTUNE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(_rep.__file__)))


def _arg_value(value: Any) -> str:
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, (str, bytes)):  # numpy scalars
        try:
            value = item()
        except (ValueError, TypeError):
            pass
    if isinstance(value, (str, int, float, bool)):
        return str(value)
    return json.dumps(value, default=_json_fallback)


def _json_fallback(obj: Any) -> Any:
    item = getattr(obj, "item", None)
    if callable(item):
        try:
            return item()
        except (ValueError, TypeError):
            pass
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    return str(obj)


def config_arguments(config: Mapping[str, Any]) -> list[str]:
    """The ``--name value`` arguments for a config.

    >>> config_arguments({"lr": 0.1, "layers": 2, "opt": {"name": "sgd"}})
    ['--lr', '0.1', '--layers', '2', '--opt', '{"name": "sgd"}']
    """
    argv: list[str] = []
    for key, value in config.items():
        argv += [f"--{key}", _arg_value(value)]
    return argv


def _normalize_command(command: Any, cwd: str) -> list[str]:
    if isinstance(command, str):
        argv = shlex.split(command)
    elif isinstance(command, Sequence) and all(isinstance(a, str) for a in command):
        argv = list(command)
    else:
        raise bad_type("command", command,
                       "a command line str ('python train.py') or a sequence of str")
    if not argv:
        raise bad_value("command", command, "a non-empty command ('python train.py')")
    if argv[0] in ("python", "python3"):  # the interpreter poptune (and its venv) runs on
        argv[0] = sys.executable
    elif argv[0].endswith(".py"):
        argv.insert(0, sys.executable)
    if argv[0] == sys.executable and len(argv) > 1 and argv[1].endswith(".py"):
        path = argv[1] if os.path.isabs(argv[1]) else os.path.join(cwd, argv[1])
        if not os.path.isfile(path):
            raise bad_value("command", command,
                            f"a script that exists (no file {path!r}; relative paths are "
                            f"resolved against cwd={cwd!r})")
    return argv


class ScriptTrainable:
    """A trainable that runs a command per trial; made by :func:`script`."""

    def __init__(self, argv: list[str], cwd: str, env: dict[str, str],
                 checkpoint_arg: str | None, silence_ok: bool, stop_grace_s: float) -> None:
        self.argv = argv
        self.cwd = cwd
        self.env = env
        self.checkpoint_arg = checkpoint_arg
        self.silence_ok = silence_ok
        self.stop_grace_s = stop_grace_s
        script_arg = next((a for a in argv[1:] if not a.startswith("-")), argv[0])
        self.__name__ = os.path.splitext(os.path.basename(script_arg))[0] or "script"
        self.__qualname__ = self.__name__

    def __repr__(self) -> str:
        return f"poptune.script({shlex.join(self.argv)!r}, cwd={self.cwd!r})"

    def __call__(self, config: dict[str, Any]) -> None:
        from poptune.session import current_session

        sess = current_session()
        if sess is None:
            raise ScriptError(
                f"{self!r} runs only as a trial: pass it to `Tuner(...)` or `tune.run(...)`")
        _ScriptRun(self, sess, config).run()


class _ScriptRun:
    """One launch of a script for one trial (a restart is a new run)."""

    def __init__(self, spec: ScriptTrainable, sess: Any, config: dict[str, Any]) -> None:
        self.spec = spec
        self.sess = sess
        self.config = config
        self.trial_dir = sess.context.trial_dir
        self.ckpt_dir = os.path.join(self.trial_dir, CHECKPOINT_DIRNAME)
        self.proc: subprocess.Popen[bytes] | None = None
        self.ack_w: int | None = None
        self.reported = 0
        #: the script waits in script_report() for the driver's answer
        self.waiting = False
        self._ckpt_signature: Any = None

    # -- setup ------------------------------------------------------------------------------
    def _prepare_checkpoint_dir(self) -> None:
        """An empty directory, or one holding the checkpoint the trial restarts from."""
        shutil.rmtree(self.ckpt_dir, ignore_errors=True)
        os.makedirs(self.ckpt_dir)
        restore = self.sess.restore_checkpoint
        if restore is not None:
            restore.to_directory(self.ckpt_dir)
            self._ckpt_signature = _signature(self.ckpt_dir)

    def _argv(self) -> list[str]:
        argv = list(self.spec.argv) + config_arguments(self.config)
        if self.spec.checkpoint_arg:
            argv += [f"--{self.spec.checkpoint_arg}", self.ckpt_dir]
        return argv

    def _env(self, ack_r: int) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.update(self.spec.env)
        env[_rep.ENV_CONFIG] = json.dumps(self.config, default=_json_fallback)
        env[_rep.ENV_CHECKPOINT_DIR] = self.ckpt_dir
        env[_rep.ENV_TRIAL_DIR] = self.trial_dir
        env[_rep.ENV_TRIAL_ID] = str(self.sess.context.trial_id)
        env[_rep.ENV_ACK_FD] = str(ack_r)
        # a script on poptune's interpreter imports poptune.script_reporter from the poptune
        # that runs it (another interpreter gets no foreign path)
        paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        if self.spec.argv[0] == sys.executable and _POPTUNE_ROOT not in paths:
            env["PYTHONPATH"] = os.pathsep.join(paths + [_POPTUNE_ROOT])
        return env

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> None:
        os.makedirs(self.trial_dir, exist_ok=True)
        self._prepare_checkpoint_dir()
        argv = self._argv()
        ack_r, self.ack_w = os.pipe()
        out_log = open(os.path.join(self.trial_dir, STDOUT_FILE), "ab")
        err_path = os.path.join(self.trial_dir, STDERR_FILE)
        err_log = open(err_path, "ab")
        err_start = err_log.tell()
        try:
            try:
                self.proc = subprocess.Popen(
                    argv, cwd=self.spec.cwd, env=self._env(ack_r), stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=err_log, pass_fds=(ack_r,),
                    start_new_session=True, preexec_fn=die_with_parent)  # with its worker
            except OSError as exc:
                raise ScriptError(
                    f"cannot start the script {shlex.join(argv)!r} (cwd={self.spec.cwd!r}): "
                    f"{exc}") from None
            finally:
                os.close(ack_r)
            assert self.proc.stdout is not None
            self._read(self.proc.stdout, out_log)
            code = self.proc.wait()
            if code != 0:
                raise ScriptError(
                    f"the script {shlex.join(argv)!r} {_exit_text(code)}; the last lines of "
                    f"its stderr ({err_path}):\n{_tail(err_path, err_start)}")
            restarted = self.sess.restore_checkpoint is not None  # may have nothing left to do
            if self.reported == 0 and not (self.spec.silence_ok or restarted):
                raise ScriptError(
                    f"the script {shlex.join(argv)!r} exited with code 0 without reporting a "
                    f"metric: print `{_rep.POPTUNE_MARKER} {{\"loss\": 0.1}}` lines (or call "
                    "poptune.script_report(loss=0.1)); pass silence_ok=True to script() to "
                    "allow a script that reports nothing")
        finally:
            self._close(out_log)
            out_log.close()
            err_log.close()

    def _read(self, stdout: IO[bytes], out_log: IO[bytes]) -> None:
        for raw in stdout:
            out_log.write(raw)
            out_log.flush()
            line = raw.decode("utf-8", errors="replace")
            try:
                parsed = _rep.parse_line(line)
            except _rep.MetricLineError as exc:
                raise ScriptError(f"the script printed a bad metric line ({exc}): "
                                  f"{line.rstrip()!r}") from None
            if parsed is None:
                sys.stdout.write(line)
                continue
            kind, metrics = parsed
            self._report(kind, metrics, line)

    def _report(self, kind: str, metrics: dict[str, Any], line: str) -> None:
        from poptune.checkpoint import Checkpoint

        wait = False
        take_checkpoint = False
        if kind == "poptune-metric":
            flag = metrics.pop(_rep.CHECKPOINT_KEY, False)
            wait = metrics.pop(_rep.WAIT_KEY, False) is True
            if not isinstance(flag, bool):
                raise ScriptError(
                    f"the script printed a bad metric line (`{_rep.CHECKPOINT_KEY}` must be "
                    f"true or false, got {flag!r}): {line.rstrip()!r}")
            take_checkpoint = flag
            if flag and not (os.path.isdir(self.ckpt_dir) and os.listdir(self.ckpt_dir)):
                raise ScriptError(
                    f"the script reported `{_rep.CHECKPOINT_KEY}: true` but its checkpoint "
                    f"directory {self.ckpt_dir} is empty: save into POPTUNE_CHECKPOINT_DIR "
                    "before reporting")
        else:  # Syne Tune's lines: the directory is the checkpoint whenever it changed
            signature = _signature(self.ckpt_dir)
            take_checkpoint = bool(signature) and signature != self._ckpt_signature
        if take_checkpoint:
            self._ckpt_signature = _signature(self.ckpt_dir)
        self.waiting = wait
        self.sess.report(metrics, Checkpoint(self.ckpt_dir) if take_checkpoint else None)
        self.reported += 1
        self.waiting = False
        if wait and self.ack_w is not None:
            try:
                os.write(self.ack_w, b"c")
            except OSError:
                pass  # the script is gone; its exit status tells the rest

    # -- teardown ---------------------------------------------------------------------------
    def _close(self, out_log: IO[bytes]) -> None:
        """End the script: a script waiting in ``script_report`` gets EOF and exits by itself
        (its ``finally`` blocks run); else, or if it lingers, SIGTERM, then SIGKILL."""
        waiting = self.waiting
        if self.ack_w is not None:
            os.close(self.ack_w)
            self.ack_w = None
        proc = self.proc
        if proc is None:
            return
        grace = self.spec.stop_grace_s
        if waiting and proc.poll() is None:
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(proc.pid, signal.SIGKILL)  # the script and anything it left behind
        proc.wait()
        if proc.stdout is not None:
            _drain(proc.stdout, out_log)  # what it printed on its way out
            proc.stdout.close()


def _drain(stdout: IO[bytes], out_log: IO[bytes]) -> None:
    """Copy what is left in the pipe to the log without blocking (nothing is reported)."""
    try:
        os.set_blocking(stdout.fileno(), False)
        rest = stdout.read()
    except (OSError, ValueError):
        return
    if rest:
        out_log.write(rest)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _signature(path: str) -> tuple[tuple[str, int, int], ...]:
    """What identifies a directory's content cheaply: (relative path, size, mtime) of files."""
    out: list[tuple[str, int, int]] = []
    for root, _dirs, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            try:
                st = os.stat(full)
            except OSError:
                continue
            out.append((os.path.relpath(full, path), st.st_size, st.st_mtime_ns))
    return tuple(sorted(out))


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name} (exit code {code})"
    return f"exited with code {code}"


def _tail(path: str, start: int, lines: int = STDERR_TAIL_LINES) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(start)
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return "(unreadable)"
    kept = deque(text.splitlines(), maxlen=lines)
    return "\n".join(kept) if kept else "(empty)"


def script(command: str | Sequence[str], *, cwd: str | None = None,
           env: Mapping[str, str] | None = None, checkpoint_arg: str | None = None,
           silence_ok: bool = False, stop_grace_s: float = 5.0) -> Callable[[dict], None]:
    """A trainable that runs a training script (any command) per trial.

    Args:
        command: ``"python train.py --epochs 3"`` (split like a shell) or a list of
            arguments. A leading ``python``/``python3`` (or a bare ``train.py``) runs on the
            interpreter poptune runs on.
        cwd: the script's working directory (default: the current directory when
            ``script()`` is called); relative paths in ``command`` are resolved against it.
        env: extra environment variables for the script.
        checkpoint_arg: also pass the checkpoint directory as ``--<checkpoint_arg> DIR``
            (Syne Tune scripts use ``"st_checkpoint_dir"``).
        silence_ok: allow a script that exits 0 without reporting a metric.
        stop_grace_s: seconds between SIGTERM and SIGKILL when a trial is stopped or paused.

    Returns:
        A trainable for ``Tuner``, ``tune.run`` and ``tune.with_resources``.

    Example::

        trainable = poptune.script("python train.py", checkpoint_arg="checkpoint_dir")
        tuner = poptune.Tuner(trainable, param_space={"lr": poptune.loguniform(1e-4, 1e-1)},
                              tune_config=poptune.TuneConfig(metric="loss", mode="min"))
    """
    if cwd is not None and not isinstance(cwd, (str, os.PathLike)):
        raise bad_type("cwd", cwd, "a directory path (str) or None")
    workdir = os.path.abspath(os.fspath(cwd) if cwd is not None else os.getcwd())
    if not os.path.isdir(workdir):
        raise bad_value("cwd", cwd, "an existing directory")
    if env is None:
        env = {}
    if not isinstance(env, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise bad_type("env", env, "a mapping of str to str")
    if checkpoint_arg is not None:
        if not isinstance(checkpoint_arg, str):
            raise bad_type("checkpoint_arg", checkpoint_arg, "an option name (str) or None")
        if not checkpoint_arg or checkpoint_arg.startswith("-") or any(
                c.isspace() for c in checkpoint_arg):
            raise bad_value("checkpoint_arg", checkpoint_arg,
                            "an option name without leading dashes, e.g. 'st_checkpoint_dir'")
    if not isinstance(silence_ok, bool):
        raise bad_type("silence_ok", silence_ok, "a bool")
    if isinstance(stop_grace_s, bool) or not isinstance(stop_grace_s, (int, float)):
        raise bad_type("stop_grace_s", stop_grace_s, "a number of seconds")
    if not stop_grace_s >= 0:
        raise bad_value("stop_grace_s", stop_grace_s, ">= 0")
    argv = _normalize_command(command, workdir)
    return ScriptTrainable(argv, workdir, dict(env), checkpoint_arg, silence_ok,
                           float(stop_grace_s))
