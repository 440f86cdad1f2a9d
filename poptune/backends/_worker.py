"""A local worker process: connects back to the driver and runs trials, one at a time.

Started by :class:`~poptune.backends.local.LocalBackend` as
``python -m poptune.backends._worker ADDRESS`` with the auth key in ``POPTUNE_AUTHKEY``.
The process is reused across trials; the trainable is unpickled once per experiment. A class
trainable's instance is made for each trial, unless ``TuneConfig(reuse_actors=True)``: then the
instance of a trial that ended is kept and reset for the next (see ``Worker._run_class``).
"""

from __future__ import annotations

import contextlib
import inspect
import numbers
import os
import pickle
import shutil
import signal
import socket
import sys
import tempfile
import threading
import traceback
from multiprocessing.connection import Client, Connection
from typing import Any, Iterator, cast

from poptune import session as _session_mod
from poptune._pickling import load_config
from poptune.backends._base import LaunchSpec
from poptune.exceptions import TrialStopped, TuneError
from poptune.storage.dirs import STORAGE_MARKER, ensure_dir
from poptune.session import TuneContext, _Session


#: a trial sent ahead (``ConnectionBackend.launch_after``):
#: ``("queue", spec, after_trial_id, number, slot_path)``
_AHEAD = "queue"


def send_result(conn: Connection, msg: tuple[Any, ...]) -> None:
    """Send a result message as ``conn.send`` does (plain pickle: the fast path); a result
    plain pickle cannot ship (an instance of a class defined in the user's script, which
    is ``__main__`` only in the driver) goes with cloudpickle, as Ray ships results. The
    driver's ``conn.recv()`` reads both. ``conn.send`` pickles the whole message before it
    writes anything, so a message it cannot pickle leaves nothing half-sent."""
    send_bytes = getattr(conn, "send_bytes", None)
    if send_bytes is None:  # an in-process channel (simulated): no pickling
        conn.send(msg)
        return
    try:
        data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError):
        import cloudpickle

        data = cloudpickle.dumps(msg)
    send_bytes(data)


def _report_output(sess: Any, output: Any, final: bool) -> None:
    """Report what a function trainable returned or yielded, as Ray does: a dict of metrics,
    or a number (reported as ``_metric``)."""
    if isinstance(output, dict):
        metrics = output
    elif isinstance(output, numbers.Number) and not isinstance(output, bool):
        metrics = {"_metric": output}
    else:
        raise ValueError(
            "a trainable function must return or yield a dict of metrics or a number (or "
            f"return None), got {output!r} of type {type(output).__name__}")
    if metrics:
        sess.report({**metrics, "done": True} if final else metrics)


def _die_with_parent() -> None:
    """Have the kernel kill this process when its parent ends (Linux only):
    :func:`poptune._pdeathsig.die_with_parent`, imported here, where it is used (it loads
    ctypes and libc, which the processes importing this module in-process do not need)."""
    from poptune._pdeathsig import die_with_parent

    die_with_parent()


def start_child() -> tuple[str, str | None]:
    """The start-up of a process the driver's backend starts to run trials (a local worker,
    :func:`main`; a Dask task's agent, ``_agent._main``): Ctrl-C is left to the driver, the
    process ends with its parent, and the auth key (hex) and agent id that
    ``_agent.worker_env`` put in the environment are taken out of it (the trials' code does
    not see them); return them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's business
    _die_with_parent()
    return os.environ.pop("POPTUNE_AUTHKEY"), os.environ.pop("POPTUNE_AGENT_ID", None)


@contextlib.contextmanager
def _saved_to_temp(inst: Any) -> Iterator[Any]:
    """A class trainable's checkpoint, saved into a temporary directory that is removed after
    the ``with`` block: reporting moves it into the trial dir, but copies it when the two are
    on different filesystems (e.g. a tmpfs ``/tmp``), and the original must not stay."""
    from poptune.checkpoint import Checkpoint

    tmp = tempfile.mkdtemp(prefix="poptune_ckpt_")
    try:
        yield Checkpoint(inst.save(tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _OutputTee:
    """``RunConfig(log_to_file=...)``: while a trial runs, its stdout and stderr also go
    (appended) to files in its directory; they still reach the console.

    In a worker process of its own (``fd_level``: the local backend) file descriptors 1 and
    2 are redirected into pipes, which a thread per stream copies to the console and to the
    file: output of C code and of subprocesses is captured too. In a process shared with
    other trials (the simulated backend, Dask and Ray agents) only Python-level writes to
    ``sys.stdout``/``sys.stderr`` from the trial's thread are (as Ray's tee).
    """

    def __init__(self, trial_dir: str, names: tuple[str | None, str | None],
                 fd_level: bool) -> None:
        self._paths = [None if n is None else os.path.join(trial_dir, os.path.expanduser(n))
                       for n in names]
        self._fd_level = fd_level
        self._undo: list[Any] = []  # what stop() undoes, last first

    def start(self) -> None:
        for fd, stream, path in zip((1, 2), ("stdout", "stderr"), self._paths):
            if path is not None:
                if self._fd_level:
                    self._undo.append(_tee_fd(fd, getattr(sys, stream), path))
                else:
                    self._undo.append(_ThreadTee.add(stream, path))

    def stop(self) -> None:
        while self._undo:
            self._undo.pop()()


def _tee_fd(fd: int, stream: Any, path: str) -> Any:
    """Point ``fd`` into a pipe whose thread copies it to ``fd``'s old target and appends it
    to ``path``; return the function that undoes it (and waits for the copy, briefly)."""
    with contextlib.suppress(Exception):
        stream.flush()
    file_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    saved = os.dup(fd)
    console = os.dup(fd)
    read_end, write_end = os.pipe()
    os.dup2(write_end, fd)
    os.close(write_end)

    def copy() -> None:
        try:
            while data := os.read(read_end, 65536):
                for out in (console, file_fd):
                    with contextlib.suppress(OSError):  # a closed console: the file still
                        view = memoryview(data)
                        while view:
                            view = view[os.write(out, view):]
        finally:
            for own in (read_end, console, file_fd):
                os.close(own)

    thread = threading.Thread(target=copy, name=f"poptune-log-to-file-{fd}", daemon=True)
    thread.start()

    def undo() -> None:
        with contextlib.suppress(Exception):
            stream.flush()
        os.dup2(saved, fd)  # closes the pipe's write end: the copy ends with its last bytes
        os.close(saved)
        thread.join(timeout=1.0)  # longer only if a subprocess still holds the pipe

    return undo


class _ThreadTee:
    """Stands in for ``sys.stdout``/``sys.stderr`` in a shared process while some trial
    logs to a file: a write goes to the real stream, and to the file of the writing thread's
    trial, if it has one."""

    _lock = threading.Lock()

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._files: dict[int, Any] = {}

    @classmethod
    def add(cls, name: str, path: str) -> Any:
        """Tee this thread's writes to ``sys.<name>`` into ``path``; return the undo."""
        file = open(path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115
        ident = threading.get_ident()
        with cls._lock:
            tee = getattr(sys, name)
            if not isinstance(tee, _ThreadTee):
                tee = _ThreadTee(tee)
                setattr(sys, name, tee)
            tee._files[ident] = file

        def undo() -> None:
            with cls._lock:
                tee._files.pop(ident, None)
                if not tee._files and getattr(sys, name) is tee:
                    setattr(sys, name, tee._stream)
            file.close()

        return undo

    def write(self, text: str) -> int:
        n = self._stream.write(text)
        file = self._files.get(threading.get_ident())
        if file is not None:
            file.write(text)
        return n

    def flush(self) -> None:
        self._stream.flush()
        file = self._files.get(threading.get_ident())
        if file is not None:
            file.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class Worker:
    #: whether the trial's session is also the process's (a worker process, whose trial may
    #: report from threads it starts); the simulated backend keeps sessions per thread
    sets_process_session = True
    #: the line prefix that names what this process runs to whoever relays its output (the
    #: local backend's relay: ``_relay.MARKER``; Ray's log monitor: ``":actor_name:"``), or
    #: None when no one prefixes its lines
    name_marker: bytes | None = None
    #: whether a trial checks that the driver still runs it before writing a checkpoint:
    #: in a thread of a Dask worker, which the driver's kill cannot stop
    guards_checkpoints = False

    def __init__(self, conn: Connection, agent_id: str | None = None,
                 manage_process: bool = True) -> None:
        #: a worker that owns its process may chdir and set env vars per trial; an agent
        #: running inside a Dask/Ray worker leaves the host process's state alone
        self.manage_process = manage_process
        self.conn = conn
        #: a Dask agent's connection (``self.conn`` too), which captures what each trial's
        #: threads print and sends it to the driver (``_relay.RelayedConnection``; see
        #: ``_agent.py``); None elsewhere (an instance attribute: the quickest to look up)
        self.relay: Any = None
        self.agent_id = agent_id or str(os.getpid())
        self.blobs: dict[str, Any] = {}
        self._storage_checked = False
        #: a directory of this machine for the trials' files (remote storage, a machine
        #: that does not share the driver's staging directory), or None
        self._own_trial_root: str | None = None
        self.home = os.getcwd()
        self._signature: tuple[Any, bool] | None = None  # (trainable, takes checkpoint_dir)
        #: ``reuse_actors``: (trainable, resources, instance) of the last class trial that
        #: ended, kept for the next
        self._cached: tuple[Any, dict[str, float], Any] | None = None
        #: launch ahead: the trial running, the message of the one the driver sent to start
        #: after it, the last trial that ended by returning (one sent after it that arrives
        #: late starts at once), the trial to start now, messages read early (at a trial's
        #: end) for the serve loop, and the slots the driver's offers are claimed in
        self._current: str | None = None
        self._queued: tuple[Any, ...] | None = None
        self._last_done: str | None = None
        self._next: LaunchSpec | None = None
        self._inbox: list[Any] = []
        self._slots: dict[str, Any] = {}

    def serve(self) -> None:
        self.conn.send(("ready", self.agent_id))
        while True:
            if self._next is not None:  # sent ahead: it starts now (the driver knows)
                spec, self._next = self._next, None
                self.run_trial(spec)
                continue
            try:
                msg = self._inbox.pop(0) if self._inbox else self.conn.recv()
            except (EOFError, OSError):
                break
            if type(msg) is str:
                continue  # a stop or pause sent to an unanswered trial that ended meanwhile
            kind = msg[0]
            if kind == _AHEAD:  # for a trial that has ended: starts now if that one returned
                self._ahead_message(msg)
                continue
            if kind == "init":
                for entry in reversed(msg[1]):  # the driver's import path, ahead of ours
                    if entry not in sys.path:
                        sys.path.insert(0, entry)
                if self.manage_process and os.path.isdir(msg[2]):
                    os.chdir(msg[2])
                    self.home = msg[2]
            elif kind == "register":
                import cloudpickle

                self._drop_cached()  # a new experiment: its trainable is another
                self.blobs = {k: cloudpickle.loads(v) for k, v in msg[1].items()}
                self._storage_checked = False
                if self.name_marker is not None:  # our lines get the trainable's name
                    from poptune.backends._relay import announce

                    announce(getattr(self.blobs.get("trainable"), "__name__", "func"),
                             self.name_marker)
            elif kind == "start":
                self.run_trial(msg[1])
            elif kind == "shutdown":
                break
        self._drop_cached()
        self._remove_own_trial_root()

    # ------------------------------------------------------------------------------------
    def _channel(self, trial_id: str, state: dict[str, Any], answered: bool):
        conn = self.conn

        def channel(result: dict[str, Any]) -> None:
            send_result(conn, ("result", trial_id, result))
            if answered or conn.poll():  # unanswered: a stop, a pause or a trial sent ahead
                self._await_decision(trial_id, state, answered)
            if result.get("done"):
                state["finished"] = True
                raise TrialStopped("done")

        return channel

    def _await_decision(self, trial_id: str, state: dict[str, Any],
                        answered: bool = True) -> None:
        while True:
            reply = self.conn.recv()
            if type(reply) is tuple and reply[0] == _AHEAD:  # not a decision
                self._ahead_message(reply)
                if answered or self.conn.poll():
                    continue
                return
            if reply == "continue":
                return
            if reply == "save":
                name = self._save(state)
                self.conn.send(("saved", trial_id, name))
                continue
            if reply == "pause" and state.get("instance") is not None:
                name = self._save(state)
                self.conn.send(("saved", trial_id, name))
            state["stop_reason"] = reply
            raise TrialStopped(reply)

    def _save(self, state: dict[str, Any]) -> str:
        inst = state.get("instance")
        sess = state["session"]
        if inst is None:
            raise RuntimeError("function trainables checkpoint through tune.report(checkpoint=...)")
        inst._iteration = sess.iteration
        with _saved_to_temp(inst) as ckpt:
            return sess.persist_checkpoint(ckpt)

    def _claim(self, msg: tuple[Any, ...]) -> bool:
        """Claim a trial sent ahead in its slot: False if the driver took it back first."""
        from poptune.backends._ahead import AheadSlot

        number, path = msg[3], msg[4]
        if not number:  # sent after this worker's last trial had returned: it is ours
            return True
        slot = self._slots.get(path)
        if slot is None:
            slot = self._slots[path] = AheadSlot(path)
        return slot.take(number)

    def _ahead_message(self, msg: tuple[Any, ...]) -> None:
        """A trial sent ahead (``("queue", spec, after, number, slot)``): kept while
        ``after`` runs; if ``after`` has returned already (and nothing ran since), claimed and
        started now; else dropped (the driver knows from how ``after`` ended)."""
        after = msg[2]
        if after == self._current:
            self._queued = msg
        elif after == self._last_done and self._current is None:
            self._last_done = None
            if self._claim(msg):
                self._next = msg[1]

    def _ending(self, msg: tuple[Any, ...]) -> tuple[Any, ...]:
        """A trial's end message. After a trial that returned (``done``), the trial sent
        ahead after it is claimed and started (now, or when it arrives); the message says
        whether the claim won (the driver may have taken it back). After any other end it is
        dropped."""
        conn = self.conn
        try:
            while conn.poll():  # what arrived since the last report: a trial sent ahead?
                m = conn.recv()
                if type(m) is tuple and m[0] == _AHEAD:
                    self._ahead_message(m)
                else:
                    self._inbox.append(m)  # for the serve loop, in order
        except (EOFError, OSError):
            pass  # the driver is gone: sending the end fails as before
        queued, self._queued = self._queued, None
        if msg[0] != "done":
            self._last_done = None
            return msg
        if queued is None:
            self._last_done = msg[1]  # one sent after it that arrives now starts at once
            return (*msg, False)
        claimed = self._claim(queued)
        if claimed:
            self._next = queued[1]
        return (*msg, claimed)

    def run_trial(self, spec: LaunchSpec) -> None:
        trial_id = spec.trial_id
        self._current, self._last_done = trial_id, None
        state: dict[str, Any] = {"instance": None, "finished": False}
        environ = os.environ
        # only the variables that change (setting one is a putenv): the usual launch sets
        # the same CUDA_VISIBLE_DEVICES as the one before
        old_env: dict[str, str | None] = {}
        if self.manage_process:
            for k, value in spec.env.items():
                was = environ.get(k)
                if was != value:
                    old_env[k] = was
                    environ[k] = value
        try:
            try:  # setting the trial up: a failure fails the trial, saying why (a trial
                # directory this node cannot make, a config it cannot unpickle, storage it
                # does not share); the worker serves on
                self._check_storage()
                trial_dir = self._trial_dir(spec)
                if trial_dir != spec.trial_dir:
                    state["own_dir"], state["storage_dir"] = trial_dir, spec.storage_trial_dir
                ensure_dir(trial_dir)
                if self.manage_process and "TUNE_ORIG_WORKING_DIR" not in environ:
                    environ["TUNE_ORIG_WORKING_DIR"] = self.home  # as Ray: for relative paths
                if spec.chdir and self.manage_process:
                    os.chdir(trial_dir)
                config = load_config(spec.config_blob, self.blobs.get("constants", []))
                ctx = TuneContext(
                    trial_id=trial_id,
                    trial_name=spec.trial_name,
                    trial_dir=trial_dir,
                    experiment_name=spec.experiment_name,
                    experiment_dir=spec.experiment_dir,
                    trial_resources=dict(spec.resources),
                    storage_trial_dir=spec.storage_trial_dir,
                )
                channel = self._channel(trial_id, state, spec.answered)
                sess = self._new_session(ctx, channel, spec)
                state["session"] = sess
                if self.session_clock is None and isinstance(config, dict) and config.get(
                    "log_sys_usage"
                ):
                    _monitor(sess)
                if self.sets_process_session:
                    _session_mod._session = sess
                _session_mod._local.session = sess
                trainable = self.blobs["trainable"]
                if spec.log_to_file is not None:
                    # a relayed agent's prints are caught above the file descriptors (see
                    # _relay.py): the files take them there too
                    tee = state["tee"] = _OutputTee(
                        trial_dir, spec.log_to_file,
                        fd_level=self.manage_process and self.relay is None)
                    tee.start()
            except Exception:  # noqa: BLE001
                state["failed"] = True
                self._end(state, ("error", trial_id, traceback.format_exc(), None))
                return
            try:
                if inspect.isclass(trainable):
                    self._run_class(trainable, config, spec, sess, state)
                else:
                    self._run_function(trainable, config, spec, sess)
                state["reusable"] = True
                self._end(state, ("done", trial_id))
            except TrialStopped:
                state["reusable"] = True
                self._end(state, ("done" if state["finished"] else "stopped", trial_id))
            except BaseException as exc:  # noqa: BLE001 - everything a trial raises is reported
                state["failed"] = True
                tb = traceback.format_exc()
                try:
                    import cloudpickle

                    blob = cloudpickle.dumps(exc)
                    pickle.loads(blob)
                except Exception:  # noqa: BLE001
                    blob = None
                self._end(state, ("error", trial_id, tb, blob))
        finally:
            if "tee" in state:
                state["tee"].stop()
            self._at_trial_end(state)  # if the end was not reached (the connection failed)
            if self.sets_process_session:
                _session_mod._session = None
            _session_mod._local.session = None
            inst = state.get("instance")
            if inst is not None:
                if spec.reuse_actors and state.get("reusable"):  # done, stopped or paused
                    self._keep_cached(self.blobs["trainable"], spec.resources, inst)
                else:
                    _stop(inst)
            for k, v in old_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            if self.manage_process:
                os.chdir(self.home)
            self._current = None

    def _check_storage(self) -> None:
        """With a local ``storage_path`` and workers that may run on other machines, check
        once per experiment that this one sees the driver's experiment directory (a token
        the driver wrote there): otherwise every checkpoint would be written to this
        machine's disk and never reach the driver (Ray checks the same)."""
        check = self.blobs.get("storage_check")
        if check is None or self._storage_checked:
            return
        exp_dir, token, remote = check
        try:
            with open(os.path.join(exp_dir, STORAGE_MARKER)) as f:
                seen = f.read()
        except OSError:
            seen = None
        self._remove_own_trial_root()  # an earlier experiment's
        if seen != token and remote:
            # remote storage, another machine than the driver's: the trials' files live in a
            # directory of this machine and go to storage when each trial ends
            self._own_trial_root = tempfile.mkdtemp(prefix="poptune_trials_")
        elif seen != token:
            raise TuneError(
                f"this worker (host {socket.gethostname()}) does not see the experiment "
                f"directory {exp_dir!r} the driver writes: RunConfig(storage_path=...) is a "
                "local path that is not shared with this machine, so the trial's checkpoints "
                "would never reach the driver. Set storage_path to a filesystem every node "
                "mounts at the same path (e.g. '/mnt/nfs/results') or to object storage "
                "('s3://bucket/results')")
        self._storage_checked = True

    def _remove_own_trial_root(self) -> None:
        if self._own_trial_root is not None:
            shutil.rmtree(self._own_trial_root, ignore_errors=True)
            self._own_trial_root = None

    def _trial_dir(self, spec: LaunchSpec) -> str:
        """Where the trial's files go on this machine: the driver's (staging) trial
        directory, or one of this machine's own (see :meth:`_check_storage`)."""
        if self._own_trial_root is None or spec.storage_trial_dir is None:
            return spec.trial_dir
        return os.path.join(self._own_trial_root, os.path.basename(spec.trial_dir))

    def _upload_trial_files(self, state: dict[str, Any]) -> None:
        """A trial that kept its files on this machine: put them (not its checkpoints,
        which went to storage when reported) into its storage directory, then remove them."""
        local, remote = state.get("own_dir"), state.get("storage_dir")
        if local is None or remote is None or not os.path.isdir(local):
            return
        from poptune.storage.remote import RemoteStorage

        try:  # what the driver's sync of a trial directory uploads (not checkpoint_*)
            RemoteStorage(remote).sync_dir(local)
        except Exception:  # noqa: BLE001 - said; the trial's end goes on
            traceback.print_exc()
        shutil.rmtree(local, ignore_errors=True)

    def _end(self, state: dict[str, Any], msg: tuple[Any, ...]) -> None:
        """The trial's last message, after its ``at_trial_end`` functions: what they finish (a
        W&B or MLflow run) is complete when the driver hears that the trial ended. Its
        ``log_to_file`` files are complete by then too."""
        self._at_trial_end(state)
        if "tee" in state:
            state["tee"].stop()
        self._upload_trial_files(state)  # on storage before the driver hears of the end
        if self.relay is not None:  # what the trial printed (a partial line too) goes first
            self.relay.end()
        self.conn.send(self._ending(msg))

    @staticmethod
    def _at_trial_end(state: dict[str, Any]) -> None:
        """Run the session's ``at_trial_end`` functions, once."""
        if "session" not in state or state.get("ended"):
            return
        state["ended"] = True
        for fn in state["session"].at_end:
            try:
                fn("failed" in state)
            except Exception:  # noqa: BLE001 - reported; the trial's end goes on
                traceback.print_exc()

    #: the session class and the clock of its time keys (None: ``time.time()``); the
    #: simulated backend runs a subclass on its simulated clock
    session_type: type[_Session] = _Session
    session_clock: Any = None

    def _driver_alive(self) -> bool:
        """Whether the driver's end of the connection is still open (it closes it when it
        kills this trial). A peek: a waiting decision is left for the trial to read."""
        if not self.conn.poll():
            return True
        try:
            with socket.socket(fileno=os.dup(self.conn.fileno())) as sock:
                return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
        except BlockingIOError:
            return True
        except OSError:
            return False

    def _new_session(self, ctx: TuneContext, channel: Any, spec: LaunchSpec) -> _Session:
        sess = self.session_type(
            ctx,
            channel,
            spec.restore_path,
            start_iteration=spec.start_iteration,
            time_total_offset=spec.time_total_offset,
            next_checkpoint_index=spec.next_checkpoint_index,
            storage_trial_dir=spec.storage_trial_dir,
            clock=self.session_clock,
            timesteps_total=spec.timesteps_total,
            episodes_total=spec.episodes_total,
        )
        if self.guards_checkpoints:
            sess.driver_alive = self._driver_alive
        return sess

    def _takes_checkpoint_dir(self, fn: Any) -> bool:
        """Whether ``fn`` has a ``checkpoint_dir`` parameter (looked up once per trainable)."""
        cached = self._signature
        if cached is not None and cached[0] is fn:
            return cached[1]
        try:
            takes = "checkpoint_dir" in inspect.signature(fn).parameters
        except (TypeError, ValueError):
            takes = False
        self._signature = (fn, takes)
        return takes

    def _run_function(self, fn: Any, config: dict[str, Any], spec: LaunchSpec, sess: _Session) -> None:
        kwargs: dict[str, Any] = {}
        if self._takes_checkpoint_dir(fn):  # legacy `train(config, checkpoint_dir=None)`
            kwargs["checkpoint_dir"] = spec.restore_path
        try:
            ret = fn(config, **kwargs)
            if inspect.isgenerator(ret):  # Ray: each yielded dict (or number) is a result
                try:
                    for output in ret:
                        _report_output(sess, output, final=False)
                finally:
                    ret.close()
            elif ret is not None:  # Ray: a returned dict (or number) is the final result
                _report_output(sess, ret, final=True)
        except BaseException:
            discard = getattr(sess, "_discard_pending_checkpoint", None)
            if discard is not None:  # a legacy `checkpoint_dir` nobody reported
                discard()
            raise
        flush = getattr(sess, "_flush_pending_checkpoint", None)
        if flush is not None:  # a legacy `checkpoint_dir` written after the last report
            flush()

    # --- reuse_actors --------------------------------------------------------------------
    def _take_cached(self, cls: Any, resources: dict[str, float]) -> Any:
        """The kept instance if it can run a trial of ``cls`` with ``resources`` (as Ray
        reuses a cached actor only for the same trainable and resource request), else None
        (a kept instance that cannot is stopped)."""
        cached, self._cached = self._cached, None
        if cached is None:
            return None
        if cached[0] is cls and cached[1] == resources:
            return cached[2]
        _stop(cached[2])
        return None

    def _keep_cached(self, cls: Any, resources: dict[str, float], inst: Any) -> None:
        self._drop_cached()
        self._cached = (cls, dict(resources), inst)

    def _drop_cached(self) -> None:
        """Stop the kept instance (its ``cleanup``), as Ray when it removes a cached actor."""
        cached, self._cached = self._cached, None
        if cached is not None:
            _stop(cached[2])

    def _run_class(self, cls: Any, config: dict[str, Any], spec: LaunchSpec, sess: _Session,
                   state: dict[str, Any]) -> None:
        sess.is_class = True  # before setup: a tune.report there warns, as in Ray
        inst = self._take_cached(cls, spec.resources) if spec.reuse_actors else None
        if inst is not None:  # as Ray's controller: `Trainable.reset`, or the trial fails
            state["instance"] = inst  # stopped (its cleanup called) if the reset fails
            if not inst.reset(config):
                raise TuneError("Trainable runner reuse requires reset_config() to be "
                                "implemented and return True.")
        else:
            inst = cls(config)
            state["instance"] = inst
        if spec.restore_path:
            # the counters of the checkpoint's result (a bare ``save()``'s state file, as
            # older checkpoints have, overrides them)
            inst._iteration, inst._time_total = sess.iteration, sess.time_total_offset
            inst._timesteps_total, inst._episodes_total = sess.timesteps_total, sess.episodes_total
            inst.restore(spec.restore_path)
            sess.iteration, sess.time_total_offset = inst._iteration, inst._time_total
            sess.timesteps_total, sess.episodes_total = inst._timesteps_total, inst._episodes_total
            sess._counts = inst._timesteps_total is not None or inst._episodes_total is not None
        _class_channel(inst, sess)
        freq = spec.checkpoint_frequency
        saved_at = -1  # the iteration of the last checkpoint reported with its result
        try:
            while True:
                result = inst.step()
                if not isinstance(result, dict):
                    raise TypeError(f"`{cls.__name__}.step()` must return a dict, got {result!r}")
                if freq and (sess.iteration + 1) % freq == 0:  # a last (done) result too
                    inst._iteration = saved_at = sess.iteration + 1
                    with _saved_to_temp(inst) as ckpt:
                        sess.report(result, ckpt)
                else:
                    sess.report(result, None)  # the channel keeps the instance's counters
        except TrialStopped as stop:
            # at the end, unless this iteration's checkpoint was just taken (one, as Ray)
            if (spec.checkpoint_at_end and str(stop) in ("done", "stop")
                    and saved_at != sess.iteration):
                name = self._save(state)
                self.conn.send(("saved", spec.trial_id, name))
            raise


def _class_channel(inst: Any, sess: _Session) -> None:
    """Before each result of a class trainable goes out: update the instance's counters
    (``get_state``) and call its ``log_result`` with the result and ``config``, as Ray's
    ``Trainable.train()`` does."""
    from poptune.trainable import Trainable

    send = sess.channel
    log = None if getattr(type(inst), "log_result", None) is Trainable.log_result else getattr(
        inst, "log_result", None)

    def channel(result: dict[str, Any]) -> None:
        inst._iteration = sess.iteration
        inst._time_total = result["time_total_s"]
        inst._time_since_restore = sess.time_since_restore
        inst._iterations_since_restore = sess.iterations_since_restore
        inst._timesteps_total, inst._episodes_total = sess.timesteps_total, sess.episodes_total
        inst._timesteps_since_restore = sess.timesteps_since_restore
        inst._last_result = result
        if log is not None:
            log({**result, "config": inst.config})
        send(result)

    sess.channel = channel


def _stop(inst: Any) -> None:
    """A class trainable's ``stop()`` (its ``cleanup``); what it raises is printed."""
    try:
        inst.stop()
    except Exception:  # noqa: BLE001
        traceback.print_exc()


def _monitor(sess: _Session) -> None:
    """Ray's ``log_sys_usage``: a ``UtilMonitor`` for the trial, stopped when it ends."""
    from poptune.utils.util import UtilMonitor

    monitor = sess.monitor = UtilMonitor()

    def stop(failed: bool) -> None:
        monitor.stop()
        monitor.join()

    sess.at_end.append(stop)


def main() -> None:
    """``python -m poptune.backends._worker ADDRESS``: a local worker process."""
    authkey_hex, agent_id = start_child()
    try:
        conn = Client(sys.argv[1], family="AF_UNIX", authkey=bytes.fromhex(authkey_hex))
    except (FileNotFoundError, ConnectionRefusedError):
        return  # the driver finished before this worker was needed
    from poptune.backends._conn import BufferedConnection

    worker = Worker(cast(Connection, BufferedConnection(conn)), agent_id)
    if os.environ.pop("POPTUNE_RELAYED", None) == "1":
        from poptune.backends._relay import MARKER

        worker.name_marker = MARKER
    try:
        worker.serve()
    except (ConnectionError, EOFError):
        # the driver is gone (Ctrl-C, killed) while a trial was ending: no one to tell, and
        # nothing to print (it would reach the driver's console as a traceback)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
