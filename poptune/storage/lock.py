"""One driver per experiment: a lock on local storage, a lease on fsspec storage.

``Tuner.fit()`` (new runs and ``Tuner.restore(...).fit()``) calls :func:`acquire_experiment`
before it writes anything into the experiment directory and releases the owner when the run
ends, also on an error or Ctrl-C. A second driver on the same experiment fails at once with
:class:`~poptune.exceptions.ExperimentLockedError` naming the holder.

* **Local storage** (:class:`LocalLock`): an OS lock (``flock``) on ``.driver.lock`` in the
  experiment directory, and ``.driver.json`` beside it naming the holder (host, pid, start time,
  poptune version). The kernel drops the lock when its process dies, even by ``kill -9``, so a
  ``.driver.json`` found by a driver that got the lock belongs to a dead driver: it is logged
  and taken over.
* **fsspec storage** (:class:`RemoteLease`, e.g. S3, which has no locks): a lease object
  ``.driver_lease.json`` (holder, token, ``expires_at``) that a heartbeat thread renews every
  ``ttl / 3`` seconds. A lease that has expired (its driver died or lost the storage), or whose
  holder ran on this host and is gone, is taken over: write, wait ``settle_s``, read back and compare the token, so of two drivers racing for
  it one wins and the other fails. :meth:`ExperimentOwner.check` raises once the heartbeat has
  found the lease taken by someone else or could not renew it before it expired.

Example:
    >>> import os, tempfile
    >>> exp = tempfile.mkdtemp()
    >>> with acquire_experiment(exp) as owner:
    ...     try:
    ...         acquire_experiment(exp)
    ...     except ExperimentLockedError as err:
    ...         print(err.holder.pid == os.getpid())
    True
    >>> acquire_experiment(exp).release()  # free again after the ``with`` block
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import sys
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from poptune.exceptions import ExperimentLockedError

logger = logging.getLogger("poptune")

LOCK_FILE = ".driver.lock"
HOLDER_FILE = ".driver.json"
LEASE_FILE = ".driver_lease.json"
#: every file above starts with this; remote downloads and syncs skip them
OWNER_FILE_PREFIX = ".driver"
#: tokens of the leases this process holds now: a lease naming this process with another
#: token was released here (its deletion may have failed, e.g. storage was down)
_HELD_HERE: set[str] = set()

Clock = Callable[[], float]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _version() -> str:
    try:
        from poptune import __version__
    except ImportError:  # pragma: no cover
        return "unknown"
    return str(__version__)


@dataclass(frozen=True)
class Holder:
    """The driver that holds an experiment."""

    host: str
    pid: int
    since: str  # ISO-8601, UTC
    version: str

    @classmethod
    def current(cls, now: float | None = None) -> "Holder":
        return cls(host=socket.gethostname(), pid=os.getpid(),
                   since=_iso(time.time() if now is None else now), version=_version())

    @classmethod
    def from_dict(cls, data: Any) -> "Holder | None":
        try:
            return cls(host=str(data["host"]), pid=int(data["pid"]), since=str(data["since"]),
                       version=str(data.get("version", "unknown")))
        except (TypeError, KeyError, ValueError, AttributeError):
            return None

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host!r} since {self.since} (poptune {self.version})"


def locked_error(path: str, holder: Holder | None, detail: str = "") -> ExperimentLockedError:
    """The error for an experiment that another driver holds."""
    who = holder.describe() if holder else "a driver whose details could not be read"
    stop = f" (e.g. `kill {holder.pid}` on {holder.host})" if holder else ""
    return ExperimentLockedError(
        f"experiment {path!r} is being run by another driver: {who}{detail}. Wait for it to "
        f"finish or stop it{stop}, then continue it with `Tuner.restore({path!r}, "
        "trainable=...).fit()`; to start a separate experiment choose another "
        "`RunConfig(name=...)`",
        path=path, holder=holder,
    )


class ExperimentOwner(ABC):
    """Ownership of one experiment by this driver; release it exactly once (idempotent)."""

    path: str
    holder: Holder

    def check(self) -> None:
        """Raise :class:`ExperimentLockedError` if this driver no longer owns the experiment."""

    @abstractmethod
    def release(self) -> None:
        """Give the experiment up; never raises (it runs in ``finally`` blocks)."""

    def __enter__(self) -> "ExperimentOwner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# -- local storage -----------------------------------------------------------------------
def try_lock(fd: int) -> bool:
    """Take the exclusive OS lock on ``fd`` without waiting; False if another open file
    holds it (it is dropped when ``fd`` is closed, or its process dies)."""
    if sys.platform == "win32":  # pragma: no cover
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def lock_dir(path: str) -> int | None:
    """An open descriptor of the directory ``path`` holding its exclusive lock; None if
    another process holds it (alive, in this or another PID namespace), the path is gone or
    the filesystem has no locks. A temporary directory held this way by its owner can be told
    from one a killed process left behind without trusting pids."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        if try_lock(fd):
            return fd
    except OSError:  # e.g. ENOLCK: cannot tell, so treated as held
        pass
    os.close(fd)
    return None


def remove_unlocked_dirs(prefix: str, sep: str, stale: Callable[[os.DirEntry[str]], bool],
                         remove: Callable[[str], None], parent: str | None = None) -> list[str]:
    """Remove the directories ``<prefix><pid><sep>...`` in ``parent`` (the temporary
    directory) that their owners left behind; return their paths.

    An owner holds its directory's lock (:func:`lock_dir`) from just after making it until
    it has removed it. A directory for which ``stale(entry)`` says so (the caller's test of
    what a left-behind one looks like, e.g. its age: one made just now is not locked yet)
    and whose lock can be taken belongs to no live process, in this PID namespace or another
    sharing the directory; ``remove(path)`` removes it while the lock is held (an ``OSError``
    from it leaves the directory).
    """
    parent = parent or tempfile.gettempdir()
    removed: list[str] = []
    try:
        entries = [e for e in os.scandir(parent) if e.name.startswith(prefix)
                   and e.name[len(prefix):].partition(sep)[0].isdigit()]
    except OSError:
        return removed
    for entry in entries:
        try:
            if not entry.is_dir(follow_symlinks=False) or not stale(entry):
                continue
        except OSError:
            continue
        fd = lock_dir(entry.path)
        if fd is None:
            continue  # a live owner's
        try:
            remove(entry.path)
        except OSError:
            continue  # another process cleaned it meanwhile, or not ours to remove
        finally:
            os.close(fd)
        removed.append(entry.path)
    return removed


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


class LocalLock(ExperimentOwner):
    """An OS lock on ``<experiment>/.driver.lock`` plus ``.driver.json`` naming the holder.

    Args:
        path: the experiment directory (it must exist).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.holder = Holder.current()
        self._holder_path = os.path.join(path, HOLDER_FILE)
        # the lock file is never deleted: unlinking it could let two drivers lock two inodes
        fd = os.open(os.path.join(path, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        if not try_lock(fd):
            os.close(fd)
            raise locked_error(path, Holder.from_dict(_read_json(self._holder_path)))
        self._fd: int | None = fd
        previous = Holder.from_dict(_read_json(self._holder_path))
        if previous is not None:
            logger.warning("experiment %r: the driver that held it (%s) ended without releasing "
                           "it (killed?); this driver takes it over", path, previous.describe())
        tmp = f"{self._holder_path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(asdict(self.holder), f)
        os.replace(tmp, self._holder_path)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.remove(self._holder_path)  # still locked: nobody can read a half state
        except OSError:
            pass
        try:
            os.close(self._fd)  # closing the only descriptor drops the lock
        finally:
            self._fd = None


# -- fsspec storage ----------------------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (a zombie counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, owned by someone else
        return True
    return True


@dataclass(frozen=True)
class _LeaseRecord:
    holder: Holder | None
    token: str
    expires_at: float


def read_lease(fs: Any, lease_path: str, path: str) -> _LeaseRecord | None:
    """The lease at ``lease_path`` (None: there is none; unreadable: an expired one)."""
    try:
        raw = fs.cat_file(lease_path)
    except FileNotFoundError:
        return None
    try:
        data = json.loads(raw)
        return _LeaseRecord(Holder.from_dict(data["holder"]), str(data["token"]),
                            float(data["expires_at"]))
    except (ValueError, KeyError, TypeError):
        logger.warning("experiment %r: unreadable lease %r is treated as expired", path,
                       lease_path)
        return _LeaseRecord(None, "", float("-inf"))


def refuse_if_held(current: _LeaseRecord | None, path: str, now: float, host: str,
                   quiet: bool = False) -> None:
    """Raise :class:`ExperimentLockedError` if ``current`` is a live driver's lease; log why
    a lease that is not (expired, its process gone from this host, released by this very
    process) may be taken over."""
    if current is None:
        return
    holder = current.holder
    who = holder.describe() if holder else "an unknown driver"
    log = logger.debug if quiet else logger.warning
    if current.expires_at <= now:
        log("experiment %r: the lease of %s expired at %s (driver gone?); this driver takes it "
            "over", path, who, _iso(current.expires_at))
    elif holder is not None and holder.host == host and not _pid_alive(holder.pid):
        log("experiment %r: the lease of %s is valid until %s but that process is gone from "
            "this host; this driver takes it over", path, who, _iso(current.expires_at))
    elif (holder is not None and holder.host == host and holder.pid == os.getpid()
          and current.token not in _HELD_HERE):
        logger.info("experiment %r: taking back the lease this process released (deleting it "
                    "had failed)", path)
    else:
        raise locked_error(path, holder, f", lease valid until {_iso(current.expires_at)}")


def check_remote_free(remote: Any) -> None:
    """Fail at once if a live driver holds the experiment on ``remote`` (``Tuner.restore``
    calls this before downloading it into a staging directory a live driver may be using)."""
    current = read_lease(remote.fs, remote.path_of(LEASE_FILE), remote.uri)
    refuse_if_held(current, remote.uri, time.time(), socket.gethostname(), quiet=True)


class RemoteLease(ExperimentOwner):
    """A lease object on an fsspec filesystem, renewed by a heartbeat thread.

    Args:
        fs: the fsspec filesystem.
        path: the lease object's path on ``fs`` (``<experiment>/.driver_lease.json``).
        uri: the experiment's URI, for messages.
        ttl_s: how long a lease lives without renewal.
        renew_every_s: heartbeat period (default ``ttl_s / 3``).
        settle_s: wait between writing a lease and reading it back when acquiring.
        clock: wall-clock time in seconds since the epoch (injectable for tests); drivers
            sharing an experiment must agree on it to well within ``ttl_s``.
    """

    def __init__(self, fs: Any, path: str, uri: str, *, ttl_s: float = 30.0,
                 renew_every_s: float | None = None, settle_s: float = 0.5,
                 clock: Clock = time.time) -> None:
        if not ttl_s > 0:
            from poptune._validation import bad_value

            raise bad_value("ttl_s", ttl_s, "a number of seconds > 0")
        self.fs, self.lease_path, self.path = fs, path, uri
        self.ttl_s = float(ttl_s)
        self.renew_every_s = float(renew_every_s) if renew_every_s else self.ttl_s / 3
        self.clock = clock
        self.token = secrets.token_hex(8)
        self.holder = Holder.current(clock())
        self._expires_at = 0.0
        self._lost: str | None = None
        self._io = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._acquire(settle_s)

    # records -----------------------------------------------------------------------------
    def _read(self) -> _LeaseRecord | None:
        return read_lease(self.fs, self.lease_path, self.path)

    def _write(self) -> None:
        expires_at = self.clock() + self.ttl_s
        data = {"holder": asdict(self.holder), "token": self.token, "expires_at": expires_at,
                "expires": _iso(expires_at)}
        self.fs.pipe_file(self.lease_path, json.dumps(data).encode())
        self._expires_at = expires_at

    def _acquire(self, settle_s: float) -> None:
        refuse_if_held(self._read(), self.path, self.clock(), self.holder.host)
        self._write()
        if settle_s > 0:
            time.sleep(settle_s)  # let a racing writer land before reading back
        back = self._read()
        if back is None or back.token != self.token:
            raise locked_error(self.path, back.holder if back else None,
                               " (it took the lease at the same moment)")
        _HELD_HERE.add(self.token)
        self._thread = threading.Thread(target=self._heartbeat, name="poptune-lease",
                                        daemon=True)
        self._thread.start()

    # heartbeat ---------------------------------------------------------------------------
    def _heartbeat(self) -> None:
        while not self._stop.wait(self.renew_every_s):
            self.renew()

    def renew(self) -> None:
        """Extend the lease if it is still ours; record a loss for :meth:`check`."""
        with self._io:
            if self._lost is not None or self._stop.is_set():
                return
            try:
                current = self._read()
                if current is None or current.token != self.token:
                    who = (current.holder.describe() if current and current.holder
                           else "nobody (the lease was deleted)")
                    self._lost = f"its lease was taken over by {who}"
                    logger.error("experiment %r: this driver lost its lease: %s",
                                 self.path, self._lost)
                    return
                self._write()
            except Exception as exc:  # noqa: BLE001 - storage hiccups: retry at the next beat
                logger.warning("experiment %r: renewing the driver lease failed (%s: %s)",
                               self.path, type(exc).__name__, exc)
                if self.clock() > self._expires_at:
                    self._lost = (f"its lease could not be renewed before it expired at "
                                  f"{_iso(self._expires_at)}")

    def check(self) -> None:
        if self._lost is not None:
            raise ExperimentLockedError(
                f"experiment {self.path!r}: this driver ({self.holder.describe()}) no longer "
                f"owns it: {self._lost}; stop here so two drivers do not write it",
                path=self.path, holder=None)

    def release(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        _HELD_HERE.discard(self.token)
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, self.renew_every_s))
        with self._io:
            if self._lost is not None:
                return
            try:
                current = self._read()
                if current is not None and current.token == self.token:
                    self.fs.rm(self.lease_path)
            except Exception as exc:  # noqa: BLE001 - it will expire on its own
                logger.warning("experiment %r: removing the driver lease failed (%s); it "
                               "expires within %.0f s", self.path, exc, self.ttl_s)


def _lock_held(lock_path: str) -> bool | None:
    """Whether some open file holds the ``flock`` on ``lock_path`` (None: cannot tell).

    Probes with a shared lock, dropped at once; a driver starting in that instant could be
    refused, so callers probe only when a holder file names a live process.
    """
    if sys.platform == "win32":  # pragma: no cover - msvcrt has no shared probe
        return None
    import fcntl

    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # e.g. ENOLCK on a network filesystem without locks
        return None
    finally:
        os.close(fd)  # closing drops the probe's lock
    return False


def driver_alive(path: str, now: float | None = None) -> bool | None:
    """Whether a live driver holds the experiment in the local directory ``path``.

    Read-only. True: a driver holds its lock (or an unexpired lease), however long ago it last
    wrote. False: the lock is free, or its holder file names a process gone from this host.
    None: no lock or lease file to tell by (an experiment copied or downloaded from remote
    storage, or written before locks); callers fall back to the journal's age.

    Example:
        >>> import tempfile
        >>> exp = tempfile.mkdtemp()
        >>> driver_alive(exp) is None
        True
        >>> with acquire_experiment(exp):
        ...     driver_alive(exp)
        True
        >>> driver_alive(exp)
        False
    """
    lease = _read_json(os.path.join(path, LEASE_FILE))
    here = socket.gethostname()
    if isinstance(lease, dict):  # a lease object seen through a mounted bucket
        expires_at = lease.get("expires_at")
        if (not isinstance(expires_at, (int, float))
                or expires_at <= (time.time() if now is None else now)):
            return False  # expired, or unreadable (treated as expired, as drivers do)
        holder = Holder.from_dict(lease.get("holder"))
        return not (holder and holder.host == here and not _pid_alive(holder.pid))
    lock_path = os.path.join(path, LOCK_FILE)
    if not os.path.exists(lock_path):
        return None
    holder = Holder.from_dict(_read_json(os.path.join(path, HOLDER_FILE)))
    if holder is None:  # the holder file lives exactly as long as the lock is held
        return False
    local = holder.host == here
    if local and not _pid_alive(holder.pid):
        return False  # killed (the kernel dropped its lock); the file stays behind
    held = _lock_held(lock_path)  # tells a live holder from a reused pid or another host's
    if held is None:  # no lock to probe: trust a live local pid, else cannot tell
        return True if local else None
    return held


def acquire_experiment(path: str, remote: Any = None, **lease_options: Any) -> ExperimentOwner:
    """Make this driver the only one running the experiment at ``path``.

    Args:
        path: the local experiment directory (it must exist).
        remote: the experiment's :class:`~poptune.storage.remote.RemoteStorage` when it lives
            on fsspec storage; then a :class:`RemoteLease` is taken there (``lease_options``
            go to it; ``POPTUNE_LEASE_TTL_S`` sets the default ``ttl_s``).

    Raises:
        ExperimentLockedError: another live driver holds the experiment.
    """
    if remote is None:
        return LocalLock(path)
    ttl = os.environ.get("POPTUNE_LEASE_TTL_S")
    if ttl and "ttl_s" not in lease_options:
        lease_options["ttl_s"] = float(ttl)
    return RemoteLease(remote.fs, remote.path_of(LEASE_FILE), remote.uri, **lease_options)
