"""The dashboard's HTTP server: a read-only JSON API over :mod:`poptune.dashboard.data` plus
the static front end shipped in ``poptune/dashboard/static``.

Security model:

* Only ``GET``/``HEAD``; no endpoint writes, executes or unpickles anything.
* Names in URLs are validated and resolved inside the storage root (``..``, absolute paths
  and symlinks that leave it are rejected with 400). Every file read (journal, params,
  error text, PBT log) must really be inside its experiment directory: one that is a
  symlink leading out is not read (its endpoint answers 403, or leaves the field empty).
* Every ASGI scope is guarded: a websocket that fails the Host/token checks is closed with
  1008 (policy violation) before it is accepted; only ``lifespan`` passes untouched.
* Without a token the app answers only requests whose ``Host`` is a loopback name (this
  defeats DNS-rebinding from web pages), and :func:`serve` binds 127.0.0.1 by default.
* Binding any other address requires a token (one is generated and printed if none is
  given). Requests carry it as ``?token=``, an ``X-Poptune-Token`` header or
  ``Authorization: Bearer``; a valid ``?token=`` also sets an HttpOnly cookie so the page's
  own script and stylesheet requests pass. Anything else gets 401.

Polling is cheap: each experiment answer is kept per query and per view state (journal
version, status, metric/mode, journal mtime; :func:`cached_answer`), so an experiment that
did not change (a finished one, above all) is never rebuilt; every answer carries an ``ETag``
and a request whose ``If-None-Match`` names it gets an empty ``304``. ``/trials?since=VERSION``
sends only the trials that changed, ``?last=0`` and ``/timeline?points=0`` leave out what the
page does not draw.

Example:
    >>> from poptune.dashboard import serve
    >>> serve("~/poptune_results", port=8265)            # doctest: +SKIP
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import ipaddress
import json
import math
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from poptune._imports import require
from poptune.exceptions import TuneError
from poptune.dashboard.data import (
    JOURNAL,
    ExperimentView,
    PathError,
    experiment_names,
    finite,
    resolve_inside,
)
from poptune.storage.confined import OutsideRootError, is_file_under

#: answers kept per experiment (each endpoint and query string is one)
CACHE_ENTRIES = 32
#: trials one ``/series`` answer carries (``left_out`` says how many more were asked for)
SERIES_TRIALS = 500
STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
COOKIE = "poptune_token"
_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"content-security-policy",
     (b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
      b"frame-ancestors 'none'")),
]


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ``::1``."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf become None, unknown objects their ``str``."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return str(obj)


def render_json(content: Any) -> bytes:
    """``content`` as the compact UTF-8 JSON Starlette's ``JSONResponse`` sends."""
    return json.dumps(_clean(content), ensure_ascii=False, allow_nan=False, indent=None,
                      separators=(",", ":")).encode("utf-8")


def etag_of(body: bytes) -> str:
    """A strong entity tag for ``body`` (a hash of its bytes, so equal answers match even
    across rebuilds and server restarts)."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header value names ``etag`` (or is ``*``)."""
    if not header:
        return False
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*" or (tag[2:] if tag.startswith("W/") else tag) == etag:
            return True
    return False


def cached_answer(view: ExperimentView, key: Any, build: Callable[[], Any]
                  ) -> tuple[bytes, str]:
    """``(body, etag)`` of the answer ``build()`` gives for ``key`` in the view's current
    :meth:`~ExperimentView.state`; built only when no answer for both is kept (the caller
    holds ``view.lock``). The view keeps the :data:`CACHE_ENTRIES` most recently used."""
    full_key = (key, view.state())
    hit = view.cache.pop(full_key, None)
    if hit is None:
        body = render_json(build())
        hit = (body, etag_of(body))
        # building may read a trial config late (a new version): key it by the state after
        full_key = (key, view.state())
    view.cache[full_key] = hit
    while len(view.cache) > CACHE_ENTRIES:
        del view.cache[next(iter(view.cache))]
    return hit


def _int_param(name: str, text: str, given: str) -> int:
    """``int(text)``, or a ValueError naming the query parameter and what it accepts."""
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"`{name}` must be an integer (or trial:epoch:count items for "
                         f"/series), got {given!r}") from None


def exploit_event(view: ExperimentView, index: int) -> dict[str, Any]:
    """Exploit ``index`` with the target's config before it (``old_config``), the donor's
    (``donor_config``), the explored one (``new_config``) and the keys that ``changed``."""
    ev = dict(view.exploits[index])
    before = view.config_before(view.trials[ev["target"]], index) or {}
    new = ev["new_config"] or {}
    ev["old_config"] = before or None
    ev["changed"] = sorted(k for k in set(new) | set(before)
                           if before.get(k) != new.get(k)) if new else []
    return ev


def lineage_schedule(view: ExperimentView, trial_id: str) -> list[dict[str, Any]]:
    """The configs the trial's current model trained with, oldest segment first.

    Follows exploits backwards: a trial that cloned a donor's checkpoint at iteration ``k``
    inherits the donor's schedule up to ``k``. Each segment is ``{trial, from, to, config,
    exploit}`` (``exploit`` is the index of the exploit that started it, or None).
    """
    segments: list[dict[str, Any]] = []
    tid, before, end = trial_id, len(view.exploits), None
    for _ in range(len(view.exploits) + 1):
        t = view.trials[tid]
        idxs = [i for i in t.exploits if i < before]
        start = (finite(view.exploits[idxs[-1]].get("donor_iter")) or 0) if idxs else 0
        config = view.exploits[idxs[-1]]["new_config"] if idxs else view.initial_config(t)
        if end is None:  # a trial exploited at its very end reports nothing after it
            end = max(start, t.last.get("training_iteration", start) or 0)
        segments.append({"trial": tid, "from": start, "to": end, "config": config,
                         "exploit": idxs[-1] if idxs else None})
        if not idxs:
            break
        tid, before, end = view.exploits[idxs[-1]]["donor"], idxs[-1], start
    return segments[::-1]


class Storage:
    """All experiments under one storage root, each tailed incrementally (views are cached)."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(os.path.expanduser(root))
        self._views: dict[str, ExperimentView] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> ExperimentView:
        """The refreshed view of experiment ``name``; KeyError if there is none."""
        path = resolve_inside(self.root, name, hidden=True)  # an experiment may be ".x"
        if not is_file_under(path, os.path.join(path, JOURNAL)):
            raise KeyError(name)
        with self._lock:
            view = self._views.get(name)
            if view is None or view.path != path:
                view = self._views[name] = ExperimentView(path)
        view.refresh()
        return view

    def experiments(self) -> list[dict[str, Any]]:
        """The summary of every experiment, newest first."""
        out = []
        for name in experiment_names(self.root):
            try:
                view = self.get(name)
            except (KeyError, PathError):
                continue
            with view.lock:
                out.append(view.summary())
        out.sort(key=lambda e: e["start"] or 0, reverse=True)
        return out


class _Guard:
    """ASGI middleware: method, Host and token checks, and security headers on every reply."""

    def __init__(self, app: Any, token: str | None, allowed_hosts: frozenset[str] | None) -> None:
        self.app, self.token, self.allowed_hosts = app, token, allowed_hosts

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            return await self.app(scope, receive, send)
        if kind == "websocket":
            refused = self._refusal(scope)
            if refused is not None:  # close before accepting: the client sees a 403
                return await send({"type": "websocket.close", "code": 1008,
                                   "reason": refused[1]})
            return await self.app(scope, receive, send)
        if kind != "http":  # an ASGI extension this app does not know: refuse it
            raise RuntimeError(f"poptune dashboard: unsupported ASGI scope type {kind!r}")
        if scope["method"] not in ("GET", "HEAD"):
            return await self._reply(send, 405, "read-only dashboard: only GET is allowed")
        refused = self._refusal(scope)
        if refused is not None:
            return await self._reply(send, *refused)
        set_cookie = False
        if self.token is not None:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = (query.get("token") or [""])[0]
            set_cookie = bool(given) and self._ok(given)

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                extra = list(_HEADERS)
                if set_cookie:
                    extra.append((b"set-cookie", f"{COOKIE}={self.token}; HttpOnly; "
                                  "SameSite=Strict; Path=/".encode()))
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(self, scope: dict[str, Any]) -> tuple[int, str] | None:
        """``(status, why)`` if the scope fails the Host or token check, else None."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        if self.allowed_hosts is not None:
            host = headers.get("host", "")
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            port = host[len(name) + 1:] if len(host) > len(name) else ""
            if name.strip("[]") not in self.allowed_hosts or (port and not port.isdigit()):
                return 403, f"host {host!r} not allowed"
        if self.token is not None:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = (query.get("token") or [""])[0]
            cookie = SimpleCookie(headers.get("cookie", ""))
            bearer = headers.get("authorization", "")
            candidates = [given, headers.get("x-poptune-token", ""),
                          bearer[7:] if bearer.lower().startswith("bearer ") else "",
                          cookie[COOKIE].value if COOKIE in cookie else ""]
            if not any(self._ok(c) for c in candidates if c):
                return 401, "a valid token is required"
        return None

    def _ok(self, candidate: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(candidate.encode(), self.token.encode())

    @staticmethod
    async def _reply(send: Any, status: int, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()), *_HEADERS]})
        await send({"type": "http.response.body", "body": body})


def create_app(storage_root: str, token: str | None = None, *,
               allowed_hosts: set[str] | None = None) -> Any:
    """The Starlette app serving the dashboard for every experiment under ``storage_root``.

    Args:
        storage_root: directory holding experiment directories (``{root}/{name}/journal.jsonl``).
        token: if given, every request must carry it (see the module docstring).
        allowed_hosts: ``Host`` names accepted when there is no token (default: loopback
            names). Ignored when a token is set.
    """
    require("starlette", "the poptune dashboard")
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    store = Storage(storage_root)

    def reply(content: Any, status: int = 200) -> JSONResponse:
        return JSONResponse(_clean(content), status_code=status)

    def experiment_route(fn: Callable[[Request, ExperimentView], Any], cache: bool = True
                         ) -> Callable[..., Any]:
        """An endpoint answering ``fn(request, view)``. With ``cache``, the answer is kept
        per query and view state (see :func:`cached_answer`): polling an experiment that
        did not change rebuilds nothing, and a request whose ``If-None-Match`` names the
        answer's ``ETag`` gets an empty ``304 Not Modified``."""
        def endpoint(request: Request) -> Response:
            try:
                view = store.get(request.path_params["name"])
                trial = request.path_params.get("trial")
                with view.lock:
                    if trial is not None:
                        resolve_inside(view.path, trial)  # same name rules as paths
                        if trial not in view.trials:
                            raise KeyError(trial)
                    if not cache:
                        return reply(fn(request, view))
                    query = tuple(sorted((k, v) for k, v in request.query_params.multi_items()
                                         if k != "token"))
                    body, etag = cached_answer(view, (fn.__name__, trial, query),
                                               lambda: fn(request, view))
                headers = {"etag": etag}
                if etag_matches(request.headers.get("if-none-match"), etag):
                    return Response(status_code=304, headers=headers)
                return Response(body, media_type="application/json", headers=headers)
            except PathError as exc:
                return reply({"error": str(exc)}, 400)
            except OutsideRootError:  # a file symlinked out of the experiment: not read
                return reply({"error": "forbidden: the file leads outside the experiment"}, 403)
            except KeyError as exc:
                return reply({"error": f"not found: {exc.args[0] if exc.args else ''}"}, 404)
            except ValueError as exc:
                return reply({"error": str(exc)}, 400)
        return endpoint

    def metric_mode(request: Request, view: ExperimentView) -> tuple[str | None, str | None]:
        mode = request.query_params.get("mode")
        if mode not in (None, "", "min", "max"):
            raise ValueError(f"`mode` must be 'min' or 'max', got {mode!r}")
        return view.metric_mode(request.query_params.get("metric") or None, mode or None)

    def index(request: Request) -> FileResponse:
        return FileResponse(os.path.join(STATIC_DIR, "index.html"), media_type="text/html")

    def experiments(request: Request) -> JSONResponse:
        return reply({"experiments": store.experiments(), "now": time.time()})

    def experiment(request: Request, view: ExperimentView) -> Any:
        metric, mode = metric_mode(request, view)
        keys: dict[str, None] = {}
        for t in view.trials.values():
            keys.update(dict.fromkeys(view.current_config(t) or {}))
        return {**view.summary(metric, mode), "metrics": list(view.metric_keys),
                "params": list(keys)}

    def flag(request: Request, name: str) -> bool:
        value = request.query_params.get(name, "1")
        if value not in ("0", "1", "true", "false"):
            raise ValueError(f"`{name}` must be 0 or 1, got {value!r}")
        return value in ("1", "true")

    def trials(request: Request, view: ExperimentView) -> Any:
        """``?since=VERSION`` (the ``version`` of an earlier answer): only the trials that
        changed after it (``full`` false), else every trial (``full`` true). ``?last=0``
        leaves out each trial's whole last result."""
        metric, mode = metric_mode(request, view)
        given = request.query_params.get("since") or ""
        token, _, number = given.rpartition(":")
        since = None
        if given:
            if token == view.token and number.isdigit() and view.rows_since_valid(int(number)):
                since = int(number)
        rows = view.trial_rows(metric, since, last=flag(request, "last"))
        return {"metric": metric, "mode": mode, "metrics": list(view.metric_keys),
                "status": view.status(), "best": view.best(metric, mode),
                "version": f"{view.token}:{view.version}", "full": since is None,
                "num_trials": len(view.trials), "trials": rows}

    def series(request: Request, view: ExperimentView) -> Any:
        q = request.query_params
        metric = q.get("metric") or view.metric_mode()[0] or "training_iteration"
        x = q.get("x") or "training_iteration"
        since: dict[str, tuple[int, int]] = {}
        for item in filter(None, (q.get("since") or "").split(",")):
            key, _, rest = item.partition(":")
            epoch_text, _, count = rest.partition(":")
            since[key] = (_int_param("since", epoch_text or "0", item),
                          _int_param("since", count or "0", item))
        wanted = [t for t in (q.get("trials") or "").split(",") if t]
        if not wanted:
            wanted = list(view.trials)
        out = {}
        for tid in wanted[:SERIES_TRIALS]:
            if tid not in view.trials:
                raise KeyError(tid)
            known = since.get(tid)  # (epoch, count) the client already has
            out[tid] = view.series(tid, metric, x, known[1] if known else 0,
                                   known[0] if known else None)
        # more trials than one answer carries: say so, and which were left out
        left = wanted[SERIES_TRIALS:]
        return {"metric": metric, "x": x, "series": out,
                **({"left_out": len(left), "next_trials": left[:SERIES_TRIALS]} if left else {})}

    def exploits(request: Request, view: ExperimentView) -> Any:
        text = request.query_params.get("since") or "0"
        start = max(0, _int_param("since", text, text))
        events = [exploit_event(view, i) for i in range(start, len(view.exploits))]
        return {"next": len(view.exploits), "exploits": events}

    def tree(request: Request, view: ExperimentView) -> Any:
        metric, mode = metric_mode(request, view)
        lanes = [{"id": t.trial_id, "tag": t.tag, "status": t.status,
                  "first": t.rows[0].get("training_iteration") if t.rows else None,
                  "iteration": t.last.get("training_iteration", 0) if t.last else 0,
                  "metric": t.last.get(metric) if metric and t.last else None}
                 for t in view.trials.values()]
        edges = [{k: e[k] for k in ("id", "target", "donor", "target_iter", "donor_iter")}
                 for e in view.exploits]
        best = view.best(metric, mode)
        ancestry = lineage_schedule(view, best["trial"]) if best else []
        return {"metric": metric, "mode": mode, "trials": lanes, "exploits": edges,
                "best": best, "best_lineage": ancestry}

    def schedule(request: Request, view: ExperimentView) -> Any:
        tid = request.path_params["trial"]
        t = view.trials[tid]
        changes = [{"iteration": 0, "config": view.initial_config(t), "exploit": None}]
        changes += [{"iteration": view.exploits[i]["donor_iter"], "exploit": i,
                     "donor": view.exploits[i]["donor"],
                     "config": view.exploits[i]["new_config"]} for i in t.exploits]
        return {"trial": tid, "iteration": t.last.get("training_iteration", 0),
                "lineage": lineage_schedule(view, tid), "changes": changes}

    def error(request: Request, view: ExperimentView) -> Any:
        tid = request.path_params["trial"]
        t = view.trials[tid]
        return {"trial": tid, "status": t.status, "error": t.error,
                "failures": t.failures, "text": view.error_text(tid)}

    def timeline(request: Request, view: ExperimentView) -> Any:
        from poptune.timeline import timeline as build

        metric, mode = metric_mode(request, view)  # the route holds view.lock
        trials = [(tid, t.tag or tid, t.rows) for tid, t in view.trials.items()]
        out = build(trials, metric, mode, view.runs[0]["start"] if view.runs else None)
        if not flag(request, "points"):  # the page draws runs and best only
            for t in out["trials"]:
                del t["points"]
        return out

    base = "/api/experiments/{name}"
    routes = [
        Route("/", index),
        Route("/api/experiments", experiments),
        Route(base, experiment_route(experiment)),
        Route(base + "/trials", experiment_route(trials)),
        Route(base + "/series", experiment_route(series)),
        Route(base + "/exploits", experiment_route(exploits)),
        Route(base + "/tree", experiment_route(tree)),
        Route(base + "/timeline", experiment_route(timeline)),
        Route(base + "/trials/{trial}/schedule", experiment_route(schedule)),
        Route(base + "/trials/{trial}/error", experiment_route(error, cache=False)),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    hosts = None if token else frozenset(allowed_hosts or LOOPBACK_NAMES)
    return Starlette(routes=routes, middleware=[Middleware(_Guard, token=token,
                                                           allowed_hosts=hosts)])


def resolve_token(host: str, token: str | None) -> str | None:
    """The token to require: ``token``; or, off-loopback without one, a fresh random one."""
    if token:
        return token
    return None if is_loopback(host) else secrets.token_urlsafe(24)


def serve(storage_root: str, host: str = "127.0.0.1", port: int = 8265,
          token: str | None = None, print_fn: Callable[[str], None] = print,
          filesystem: Any = None) -> None:
    """Run the dashboard until interrupted. Binding a non-loopback ``host`` requires a token.

    Args:
        storage_root: directory of experiments to show, or a storage URI
            (``s3://bucket/runs``, or one experiment's): then a local mirror of it, kept
            current by a thread (:mod:`poptune.dashboard.mirror`), is served and removed
            when the server stops.
        host: address to bind; anything but loopback gets a token (printed if generated).
        port: TCP port.
        token: the token to require (optional on loopback).
        print_fn: where the URL line goes.
        filesystem: an fsspec filesystem for a URI (default: inferred from it).

    Raises:
        StorageError: a URI whose storage cannot be listed (credentials, no such bucket).
        BindError: ``port`` is in use (or needs privileges) or ``host`` cannot be bound;
            raised before the URL is printed, and no socket is left open.
    """
    from poptune.storage.remote import is_remote

    if is_remote(storage_root):
        from poptune.dashboard.mirror import mirrored

        with mirrored(storage_root, filesystem) as local:
            _serve(local, host, port, token, print_fn, shown_as=storage_root)
        return
    _serve(storage_root, host, port, token, print_fn)


class BindError(OSError):
    """The dashboard cannot listen on ``host:port``: the port is in use or not allowed
    (:attr:`what` is ``"port"``), or the address cannot be bound (``"host"``)."""

    def __init__(self, host: str, port: int, what: str, reason: str) -> None:
        self.host, self.port, self.what, self.reason = host, port, what, reason
        accepted = (f"a port free on {host}" if what == "port"
                    else "an address of this machine")
        value = port if what == "port" else host
        super().__init__(f"`{what}` must be {accepted}, got {value!r}: {reason}")


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` as uvicorn binds one (``SO_REUSEADDR``; IPv6 for
    an address with a colon), for :class:`uvicorn.Server` to listen on.

    Raises:
        BindError: the port is in use or needs privileges, or ``host`` cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise BindError(host, port, "port", "it is already in use (another program "
                            "listens on it)") from None
        if exc.errno == errno.EACCES:
            raise BindError(host, port, "port", "binding it was refused (ports below 1024 "
                            "need privileges)") from None
        raise BindError(host, port, "host", f"it cannot be bound ({exc.strerror or exc})"
                        ) from None
    return sock


def _serve(storage_root: str, host: str, port: int, token: str | None,
           print_fn: Callable[[str], None], shown_as: str | None = None) -> None:
    uvicorn = require("uvicorn", "the poptune dashboard")
    token = resolve_token(host, token)
    hosts = LOOPBACK_NAMES | {host.strip("[]")} if is_loopback(host) else None
    app = create_app(storage_root, token, allowed_hosts=set(hosts) if hosts else None)
    reachable = host
    if host in ("0.0.0.0", "::", ""):  # bound to every interface: an address others can open
        from poptune.backends._probe import driver_ip

        reachable = driver_ip()
    shown = f"[{reachable}]" if ":" in reachable else reachable
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    where = shown_as or os.path.abspath(os.path.expanduser(storage_root))
    # bound before the address is announced: a port in use is an error, never a URL
    sock = bind_socket(host, port)
    interrupted = False
    try:
        # log_config=None: uvicorn's own dictConfig would close every logging handler of
        # the process (the user's, a test runner's) and replace them; its loggers are kept
        # at WARNING and reach the root logger's handlers (or stderr) instead
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port,
                                               log_level="warning", log_config=None))
        print_fn(f"poptune dashboard for {where}: "
                 f"{url}  (Ctrl+C to stop)")
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn re-raises the Ctrl+C it shut down on
            interrupted = True
    finally:
        sock.close()
    if not server.started and not interrupted:
        raise TuneError(f"the poptune dashboard at {url} stopped before it started "
                        "serving (see the messages above)")
