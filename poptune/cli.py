"""The ``poptune`` command: list, inspect, plot, serve and resume experiments.

Every subcommand has ``--help``. Exit codes: 0 success, 1 runtime failure (including
``resume`` ending with errored trials), 2 usage error (bad arguments, missing experiment).
``EXPERIMENT`` is a path or a name under the storage directory (``--storage``, else
``$POPTUNE_STORAGE_PATH``, else ``~/poptune_results``). ``ls``, ``show`` and ``plot`` also
read remote storage: a URI (``s3://bucket/runs/my_exp``), or a name under a storage URI
(``--storage s3://bucket/runs``, or ``$POPTUNE_STORAGE_PATH`` set to one); the experiment's
files (never its checkpoints) are downloaded to a temporary directory that is removed
afterwards, and read by the same journal replay as a local experiment. ``resume`` takes a
URI or a name under a storage URI too (``Tuner.restore`` stages the experiment); ``repair``
takes an experiment's URI. ``dashboard`` takes a storage URI (or one experiment's) and serves
a local mirror of it that a thread keeps current (:mod:`poptune.dashboard.mirror`); given one
local experiment's directory, it serves the directory above, the printed URL opening the page
on that experiment.

What ``ls`` and ``show`` print from an experiment (names, config keys and values, errors) is
plain text: never rich markup, and control characters (terminal escape sequences) escaped.

Example:
    $ poptune ls
    $ poptune show pbt_function_api_example
    $ poptune show s3://bucket/runs/pbt_function_api_example
    $ poptune plot pbt_function_api_example --out plots/
    $ poptune dashboard --port 8265
    $ poptune dashboard s3://bucket/runs
    $ poptune resume my_exp --trainable train:objective
    $ poptune repair my_exp
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import importlib.util
import os
import posixpath
import re
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

from poptune._text import plain_text as _plain
from poptune._text import safe_text
from poptune.exceptions import StorageError, TuneError
from poptune.storage.remote import local_path

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad command-line input: one line on stderr, exit code 2."""


class CommandFailed(Exception):
    """The command could not do its work (not a usage error): one line on stderr, exit
    code 1."""


def check_storage_dir(root: str) -> None:
    """A usage error unless ``root`` (STORAGE, or ``--storage``) is an existing directory."""
    if not os.path.exists(root):
        raise UsageError(f"storage directory {root} does not exist (STORAGE must be an "
                         "existing directory of experiments)")
    if not os.path.isdir(root):
        raise UsageError(f"STORAGE must be a directory of experiments, got {root}: it is a "
                         "file, not a directory")


def default_storage() -> str:
    from poptune.config import default_storage_path

    return os.path.abspath(os.path.expanduser(local_path(default_storage_path())))


def local_storage(storage: str | None) -> str:
    """The local storage directory ``storage`` names (a path or a ``file://`` URI), else the
    default one."""
    if not storage:
        return default_storage()
    return os.path.abspath(os.path.expanduser(local_path(storage)))


def resolve_experiment(arg: str, storage: str | None) -> str:
    """The experiment directory ``arg`` names (a path, or a name under ``storage``; either
    may be a ``file://`` URI)."""
    root = local_storage(storage)
    candidates = [os.path.expanduser(local_path(arg))]
    if not os.path.isabs(candidates[0]):
        candidates.append(os.path.join(root, arg))
    for path in candidates:
        if os.path.isfile(os.path.join(path, "journal.jsonl")):
            return os.path.abspath(path)
    for path in candidates:
        if os.path.isdir(path):
            raise UsageError(f"{path} is not a poptune experiment (it has no journal.jsonl)")
        if os.path.exists(path):
            raise UsageError(f"EXPERIMENT must be an experiment directory, got {path}: it is "
                             "a file")
    where = " and ".join(dict.fromkeys(candidates))
    raise UsageError(f"no experiment {arg!r} (looked in {where})")


# -- output helpers -------------------------------------------------------------------------
def _console() -> Any:
    from rich.console import Console

    if sys.stdout.isatty():
        return Console()
    return Console(width=int(os.environ.get("COLUMNS") or 200), no_color=True)


def _print_line(console: Any, *parts: Any) -> None:
    """One line of journal-derived text (``parts`` are strings or ``(text, style)``), printed
    as plain text and never cut."""
    from rich.text import Text

    line = Text.assemble(*((safe_text(p[0]), p[1]) if isinstance(p, tuple) else safe_text(p)
                           for p in parts))
    console.print(line, soft_wrap=True)


def _natural_width(header: str, rows: list[list[Any]], column: int) -> int:
    """The width column ``column`` of ``rows`` (rich ``Text`` cells) needs on one line."""
    from rich.cells import cell_len

    return max([cell_len(header), *(cell_len(r[column].plain) for r in rows)])


def _share(total: int, least: dict[int, int], most: dict[int, int]) -> dict[int, int]:
    """Column widths summing to ``total`` where possible: each at least ``least[c]``, the
    rest shared evenly, no column above ``most[c]``.

    >>> _share(20, {0: 1, 1: 5, 2: 1}, {0: 30, 1: 5, 2: 4})
    {0: 11, 1: 5, 2: 4}
    """
    widths = dict(least)
    spare = total - sum(widths.values())
    open_ = sorted((c for c in widths if widths[c] < most[c]), key=lambda c: most[c])
    while spare > 0 and open_:
        each = max(spare // len(open_), 1)
        for c in list(open_):
            add = min(each, most[c] - widths[c], spare)
            widths[c] += add
            spare -= add
            if widths[c] >= most[c]:
                open_.remove(c)
    return widths


def _print_table(console: Any, table: Any) -> None:
    """``table`` on a terminal at its width; into a file or a pipe at the table's natural
    width, so that no cell is cut or folded (a script reads whole values)."""
    from rich.measure import Measurement

    if not console.is_terminal:
        need = Measurement.get(console, console.options.update_width(1_000_000), table).maximum
        if need > console.width:
            console.width = need
    console.print(table)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _when(ts: Any, clock: Any = None) -> str:
    if clock == "simulated":  # its start is on its own clock, not a date
        return "simulated"
    if not isinstance(ts, (int, float)):
        return "-"
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))


def _silences(trials: list[dict[str, Any]], clock: Any = None) -> dict[str, str] | None:
    """How long each RUNNING trial has sent no result (from its last result's
    ``timestamp``; "-" before its first), or None when no trial is RUNNING. On simulated
    time (``clock="simulated"``) "now" is the latest result's simulated time."""
    from poptune.engine.silence import fmt_seconds

    if not any(t["status"] == "RUNNING" for t in trials):
        return None
    stamps = {t["id"]: ts for t in trials
              if isinstance(ts := (t["last"] or {}).get("timestamp"), (int, float))
              and not isinstance(ts, bool)}
    now = max(stamps.values(), default=0.0) if clock == "simulated" else time.time()
    return {t["id"]: "" if t["status"] != "RUNNING" else fmt_seconds(now - stamps[t["id"]])
            if t["id"] in stamps else "-" for t in trials}


# -- commands ---------------------------------------------------------------------------------
def cmd_ls(args: argparse.Namespace) -> int:
    from poptune.dashboard.data import ExperimentView, experiment_names

    from poptune._cli_remote import storage_uri

    uri = storage_uri(args.storage)
    if uri is not None:
        return _print_experiments(uri, _remote_summaries(uri, args), args)
    root = local_storage(args.storage)
    if args.storage or os.path.exists(root):
        check_storage_dir(root)
    rows = []
    for name in experiment_names(root):
        view = ExperimentView(os.path.join(root, name))
        view.refresh()
        rows.append(_ls_row(view, args))
    return _print_experiments(root, rows, args)


def _ls_row(view: Any, args: argparse.Namespace, uri: str | None = None) -> dict[str, Any]:
    """``ls``'s summary of one experiment (a local copy of the one at ``uri``, if given):
    its status is ``unreadable`` when nothing can be read from its journal and ``damaged``
    when the journal is damaged part-way (``note`` says why, and how to repair it)."""
    from poptune._cli_remote import as_uri

    row = view.summary(args.metric, args.mode)
    problem = journal_problem(view)
    note = None
    if problem is not None:
        row["status"], note = "unreadable", problem
    elif view.damage:
        row["status"], note = "damaged", view.damage + repair_hint(uri or view.path)
    row["note"] = as_uri(note, view.path, uri) if (note and uri) else note
    row["metric_reported"] = _metric_reported(view, args.metric) if args.metric else None
    return row


def _remote_summaries(uri: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The summaries of the experiments (directories with journal segments) under ``uri``."""
    from poptune._cli_remote import one_line, open_remote, remote_copy
    from poptune.dashboard.data import ExperimentView

    storage = open_remote(uri)
    try:
        names = storage.subdirectories()
    except FileNotFoundError:
        raise UsageError(f"storage {uri} does not exist") from None
    except StorageError as exc:
        raise one_line(exc) from exc
    rows = []
    for name in names:
        if name in ("", ".", ".."):
            continue
        try:
            with remote_copy(posixpath.join(uri, name), "summary", storage.fs) as local:
                view = ExperimentView(local)
                view.refresh()
                rows.append(_ls_row(view, args, posixpath.join(uri, name)))
        except UsageError:  # no journal segments: not an experiment
            continue
    return rows


def _print_experiments(root: str, rows: list[dict[str, Any]], args: argparse.Namespace) -> int:
    from rich.table import Table

    console = _console()
    if not rows:
        _print_line(console, f"No experiments in {root}")
        return EXIT_OK
    checked = [r["metric_reported"] for r in rows if r.get("metric_reported") is not None]
    if args.metric and checked and not any(found for found, _ in checked):
        # no listed experiment reported it (those with no result yet cannot tell)
        _check_metric(args.metric, False, [k for _, seen in checked for k in seen], root)
    rows.sort(key=lambda e: (e["modified"] if e.get("clock") == "simulated" else e["start"])
              or 0, reverse=True)
    _print_line(console, f"Experiments in {root}")
    cells = []
    for e in rows:
        best = (f"{e['metric']}={_fmt(e['best']['value'])} ({e['mode']})"
                if e["best"] else "-")
        counts = f": {_counts(e['counts'])}" if e["counts"] else ""
        cells.append([_plain(c) for c in (
            e["name"], e["status"], f"{e['num_trials']}{counts}", best,
            _when(e["start"], e.get("clock")), str(e["num_results"]), str(e["num_exploits"]))])
    table = Table()
    cols = ("experiment", "status", "trials", "best", "started", "results", "exploits")
    # on a narrow terminal the names, counts, best value and start (date, then time) wrap or
    # fold, sharing what the status and the numbers (kept whole) leave: no cell is cut
    folding = ("experiment", "trials", "best", "started")
    natural = [_natural_width(col, cells, i) for i, col in enumerate(cols)]
    left = console.width - 3 * len(cols) - 1 - sum(
        w for col, w in zip(cols, natural) if col not in folding)
    share = max(left // len(folding), 1)
    for col, width in zip(cols, natural):
        folds = col in folding
        table.add_column(_plain(col), no_wrap=not folds, overflow="fold",
                         min_width=min(width, share) if folds else width,
                         justify="right" if col in ("results", "exploits") else "left")
    for row in cells:
        table.add_row(*row)
    _print_table(console, table)
    for e in rows:
        if e.get("note"):
            _print_line(console, f"{e['name']} is {e['status']}: {e['note']}")
    return EXIT_OK


def _check_metric(metric: str, found: bool, seen: Any, where: str) -> None:
    """``poptune plot``'s check of a metric nobody reported, as a usage error naming
    ``--metric``."""
    from poptune.plot import check_metric_reported

    try:
        check_metric_reported(metric, found, seen, where, name="--metric")
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _metric_reported(view: Any, metric: str) -> tuple[bool, list[str]] | None:
    """Whether a trial of ``view`` reported a number as ``metric``, and the numeric metrics
    of the trials' last results; None before the first result (nothing to tell by)."""
    if not view.num_results:
        return None
    trials = list(view.trials.values())
    if any(r.get(metric) is not None for t in trials for r in t.rows):
        return True, []
    return False, [k for t in trials for r in t.rows[-1:] for k, v in r.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)]


def journal_problem(view: Any) -> str | None:
    """Why nothing can be read from the experiment's journal (what ``poptune repair`` and
    a restore say: empty, not a poptune journal, damaged from its first record, a newer
    schema), or None when its header was read, or while a live driver is starting it."""
    import logging

    from poptune.exceptions import RestoreError
    from poptune.storage.confined import open_under
    from poptune.storage.lock import driver_alive
    from poptune.storage.replay import read_groups

    if view.runs or driver_alive(view.path):
        return None
    if view.damage:
        return str(view.damage) + (repair_hint(view.path) if " is damaged at " in view.damage
                                   else "")
    path = os.path.join(view.path, "journal.jsonl")
    try:
        with open_under(view.path, path) as f:
            data = f.read()
        for _ in read_groups(data, name=path, tail_log_level=logging.DEBUG):
            pass
    except RestoreError as exc:
        return str(exc)
    except OSError as exc:
        return f"journal {path} cannot be read: {exc}"
    return None


def repair_hint(exp: str) -> str:
    return f" Run `poptune repair {exp}` to truncate it there (a backup is kept)."


def cmd_show(args: argparse.Namespace) -> int:
    from poptune._cli_remote import remote_copy, remote_experiment

    uri = remote_experiment(args.experiment, args.storage)
    if uri is None:
        return _show(resolve_experiment(args.experiment, args.storage), args)
    with remote_copy(uri, "params") as local:
        return _show(local, args, uri)


def _show(exp_dir: str, args: argparse.Namespace, uri: str | None = None) -> int:
    """Print the experiment in ``exp_dir`` (a local copy of the one at ``uri``, if given).

    Every string from the experiment (names, config keys and values, errors) is printed as
    plain text with its control characters escaped (:func:`safe_text`): never as rich
    markup, never as a terminal escape sequence."""
    from poptune._cli_remote import as_uri
    from poptune.dashboard.data import ExperimentView

    view = ExperimentView(exp_dir)
    view.refresh()
    problem = journal_problem(view)
    if problem is not None:
        raise CommandFailed(as_uri(problem, exp_dir, uri) if uri else problem)
    if args.metric:
        reported = _metric_reported(view, args.metric)
        if reported is not None:
            _check_metric(args.metric, *reported, uri or view.path)
    s = view.summary(args.metric, args.mode)
    metric, mode = s["metric"], s["mode"]
    trials = view.trial_rows(metric)
    if metric and mode:
        sign = -1 if mode == "max" else 1
        trials.sort(key=lambda t: (t["metric"] is None, sign * (t["metric"] or 0), t["id"]))
    keys: dict[str, None] = {}
    for t in trials:
        keys.update(dict.fromkeys(t["config"] or {}))
    console = _console()
    best = (f"; best {metric}={_fmt(s['best']['value'])} ({s['best']['trial']})"
            if s["best"] else "")
    status = "damaged" if view.damage else s["status"]
    _print_line(console, (s["name"], "bold"), f"  {status}  {uri or view.path}")
    _print_line(console, f"{s['num_trials']} trials ({_counts(s['counts'])}), "
                f"{s['num_results']} results, "
                f"{s['num_exploits']} exploits; started {_when(s['start'], s['clock'])}{best}")
    # a silence is measured only while the experiment runs: in an interrupted one, RUNNING
    # is the status its trials had when it stopped
    silences = _silences(trials, s["clock"]) if s["status"] == "running" else None
    fixed = ["trial", "status", *(["silent"] if silences else []), "iter",
             f"{metric} ({mode})" if metric else "metric",
             *(["exploits"] if s["num_exploits"] else [])]
    rows = []
    for t in trials:
        row = [t["name"], t["status"], *([silences[t["id"]]] if silences else []),
               _fmt(t["iteration"]), _fmt(t["metric"])]
        if s["num_exploits"]:
            row.append(str(t["num_exploits"]))
        row += [_fmt((t["config"] or {}).get(k)) for k in keys]
        rows.append([_plain(c) for c in row])
    _print_trials(console, fixed, [str(k) for k in keys], rows)
    if s["status"] == "interrupted" and any(t["status"] == "RUNNING" for t in trials):
        _print_line(console, "Trials shown RUNNING were running when the experiment was "
                    "interrupted (poptune resume continues them).")
    if view.damage:
        damage = view.damage + repair_hint(uri or view.path)
        _print_line(console, f"Warning: {as_uri(damage, exp_dir, uri) if uri else damage}")

    def errors(title: str, rows: list[dict[str, Any]], label: Any) -> None:
        if rows:
            _print_line(console, (title, "bold"))
        for t in rows:
            path = (posixpath.join(uri, t["dirname"], "error.txt") if uri
                    else os.path.join(view.path, t["dirname"], "error.txt"))
            _print_line(console, f"  {t['name']} ({label(t)}): {t['error'] or '?'}  [{path}]")

    # a trial that failed and was retried or restarted (--restart-errored) is no longer in
    # ERROR: its error is history, listed apart from the trials in ERROR now
    errors("Errors", [t for t in trials if t["status"] == "ERROR"], lambda t: "error")
    errors("Earlier errors (trials no longer in ERROR)",
           [t for t in trials if t["status"] != "ERROR" and t["error"]],
           lambda t: f"now {t['status'].lower()}, failed {t['failures']} time"
                     f"{'s' if t['failures'] != 1 else ''} before")
    return EXIT_OK


def _print_trials(console: Any, fixed: list[str], keys: list[str], rows: list[list[Any]]
                  ) -> None:
    """The trial table: the ``fixed`` columns (trial, status, iteration, metric...), then one
    per hyperparameter in ``keys``; ``rows`` hold rich ``Text`` cells in that order.

    Nothing is cut. Into a file or a pipe it is one table at its natural width. On a
    terminal the trial name folds, the short columns keep their width, and hyperparameters
    that do not fit beside them continue in further tables, each led by the trial column
    (as pandas wraps a wide frame)."""
    from rich.cells import cell_len
    from rich.table import Table

    headers = fixed + keys
    natural = [_natural_width(h, rows, i) for i, h in enumerate(headers)]
    blocks: list[list[int]] = [list(range(len(fixed)))]
    if console.is_terminal:
        def fits(cols: list[int]) -> bool:  # rich's default box: 3 columns of frame per cell
            return sum(natural[c] + 3 for c in cols) + 1 <= console.width

        for c in range(len(fixed), len(headers)):
            if fits(blocks[-1] + [c]):
                blocks[-1].append(c)
            else:  # (a continuation holds one hyperparameter even if it does not fit)
                blocks.append([0, c])
    else:
        blocks[0] += range(len(fixed), len(headers))
    # a block wider than the terminal: the metric's header may wrap, its numbers not; status,
    # iteration, silence and exploit counts keep their width; the trial name and the
    # hyperparameters wrap or fold in what those leave (only a terminal too narrow even for
    # the columns kept whole cuts anything)
    metric_col = fixed.index(next(h for h in fixed if h not in ("trial", "status", "silent",
                                                                  "iter")))
    numbers = max([1, *(cell_len(r[metric_col].plain) for r in rows)])
    for n, cols in enumerate(blocks):
        title = None
        if n:
            first, last = cols[1] - len(fixed) + 1, cols[-1] - len(fixed) + 1
            title = _plain(f"hyperparameters {first}-{last} of {len(keys)}, continued")
        table = Table(title=title, title_justify="left")
        widths: dict[int, int] = {}
        if console.is_terminal and sum(natural[c] + 3 for c in cols) + 1 > console.width:
            least = {c: numbers if c == metric_col else natural[c] if 0 < c < len(fixed)
                     else 1 for c in cols}
            widths = _share(console.width - 3 * len(cols) - 1, least,
                            {c: natural[c] for c in cols})
        for c in cols:
            table.add_column(_plain(headers[c]), width=widths.get(c), overflow="fold",
                             no_wrap=0 < c < len(fixed) and c != metric_col,
                             justify="left" if c < 2 else "right")
        for row in rows:
            table.add_row(*(row[c] for c in cols))
        _print_table(console, table)


def cmd_plot(args: argparse.Namespace) -> int:
    from poptune._cli_remote import remote_copy, remote_experiment
    from poptune._imports import require

    uri = remote_experiment(args.experiment, args.storage)
    if uri is None:
        exp_dir = resolve_experiment(args.experiment, args.storage)
    elif not args.out:
        raise UsageError(f"--out DIR is required for an experiment on remote storage "
                         f"(EXPERIMENT {uri}): the plots are written to a local directory")
    if args.out:
        from poptune.plot import out_dir_problem

        problem = out_dir_problem(args.out)
        if problem is not None:
            raise UsageError(f"--out must be a directory (or a path where one can be made), "
                             f"got {args.out}: {problem}")
    require("matplotlib", "poptune plot")
    if uri is None:
        return _plot(exp_dir, args.out or os.path.join(exp_dir, "plots"), args)
    with remote_copy(uri, "all") as local:
        return _plot(local, args.out, args, uri)


def _plot(exp_dir: str, out: str, args: argparse.Namespace, uri: str | None = None) -> int:
    """Write the plots; a plot that cannot be drawn (a :class:`~poptune.plot.PlotWarning`)
    is said on stderr after the paths of the others, and the exit code is 1."""
    import warnings

    from poptune._cli_remote import as_uri
    from poptune.plot import PlotWarning, plot_all

    def where(text: str) -> str:
        return as_uri(text, exp_dir, uri) if uri else text

    with warnings.catch_warnings(record=True) as caught, _warnings_said("poptune.lineage"):
        warnings.simplefilter("always", PlotWarning)
        try:
            paths = plot_all(exp_dir, out, metric=args.metric, mode=args.mode,
                             over_time=args.over_time)
        except ValueError as exc:  # no metric given and none recorded, or never reported
            raise UsageError(where(_option_message(str(exc), uri or exp_dir))) from None
        except OSError as exc:
            target = os.path.abspath(exc.filename) if isinstance(exc.filename, str) else ""
            if target and os.path.commonpath([target, os.path.abspath(out)]) in (
                    target, os.path.abspath(out)):  # --out, a directory above it or a plot
                raise CommandFailed(f"--out {out}: cannot write {target}: "
                                    f"{exc.strerror or exc}") from None
            raise
    failed = []
    for w in caught:
        if issubclass(w.category, PlotWarning):
            failed.append(where(str(w.message)))
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    for path in paths:
        print(path)
    for message in failed:
        print(f"poptune plot: error: {safe_text(message)}", file=sys.stderr)
    return EXIT_FAILURE if failed else EXIT_OK


@contextlib.contextmanager
def _warnings_said(logger: str) -> Iterator[None]:
    """While inside, the warnings of ``logger`` (a file of the experiment left unread) go to
    stderr as ``poptune plot: warning: ...`` lines."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("poptune plot: warning: %(message)s"))
    log = logging.getLogger(logger)
    propagate, log.propagate = log.propagate, False
    log.addHandler(handler)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.propagate = propagate


def _option_message(message: str, where: str) -> str:
    """:func:`poptune.plot.plot_all`'s message about its ``metric`` argument, said about the
    command's ``--metric`` option."""
    if message.startswith("`metric` must be given"):
        return (f"--metric must be given: the experiment's metric could not be inferred from "
                f"{where} (TuneConfig(metric=...) was not set there); pass --metric NAME "
                "(and --mode min or max)")
    if message.startswith("`metric` must be"):
        return "--metric" + message[len("`metric`"):]
    return message


def cmd_dashboard(args: argparse.Namespace) -> int:
    from poptune._cli_remote import storage_uri
    from poptune.dashboard.app import serve
    from poptune.dashboard.data import experiment_names

    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be in [1, 65535], got {args.port}")
    uri = storage_uri(args.storage)
    if uri is not None:
        return _dashboard_remote(uri, args)
    root = local_storage(args.storage)
    check_storage_dir(root)
    print_fn: Any = print
    if os.path.isfile(os.path.join(root, "journal.jsonl")):
        # one experiment's directory: serve its storage, the page opened on it
        real = os.path.realpath(root)
        root, name = os.path.dirname(real), os.path.basename(real)
        print_fn = _select_experiment(name)
    elif not experiment_names(root):
        print(f"poptune dashboard: note: {_no_experiment_hint(root)}", file=sys.stderr)
    with _bind_errors():
        serve(root, host=args.host, port=args.port, token=args.token, print_fn=print_fn)
    return EXIT_OK


def _select_experiment(name: str) -> Any:
    """A ``print_fn`` for :func:`~poptune.dashboard.app.serve` whose announced URL opens the
    page on experiment ``name``."""
    from urllib.parse import quote

    def announce(line: str) -> None:
        print(re.sub(r"(https?://\S+)", lambda m: f"{m.group(1)}#/exp/{quote(name, safe='')}",
                     line, count=1))

    return announce


def _no_experiment_hint(root: str) -> str:
    """Why the dashboard of ``root`` starts empty, and what to pass instead."""
    if any(os.path.isfile(os.path.join(root, f)) for f in ("result.json", "params.json")):
        parent = os.path.dirname(os.path.dirname(os.path.abspath(root)))
        return (f"{root} is a trial directory; pass its experiment's storage directory "
                f"(e.g. {parent}) as STORAGE")
    return (f"no experiment (a directory holding journal.jsonl) in {root} yet; the page lists "
            "experiments as they appear")


@contextlib.contextmanager
def _bind_errors() -> Iterator[None]:
    """The dashboard's :class:`~poptune.dashboard.app.BindError` said with the option to
    change (exit code 1: the command line is fine, the machine's state is not)."""
    from poptune.dashboard.app import BindError

    try:
        yield
    except BindError as exc:
        if exc.what == "port":
            raise CommandFailed(f"--port {exc.port} cannot be used on {exc.host}: "
                                f"{exc.reason}; choose another --port") from None
        raise CommandFailed(f"--host {exc.host} cannot be used: {exc.reason}; pass an "
                            "address of this machine (default: 127.0.0.1)") from None


def _dashboard_remote(uri: str, args: argparse.Namespace) -> int:
    """Serve a local mirror of the experiments at ``uri`` (see :func:`dashboard.serve`)."""
    from poptune._cli_remote import one_line, open_remote
    from poptune.dashboard.app import serve

    fs = open_remote(uri).fs  # a missing s3fs/gcsfs or an unknown protocol: said here
    try:
        with _bind_errors():
            serve(uri, host=args.host, port=args.port, token=args.token, filesystem=fs)
    except StorageError as exc:
        raise one_line(exc) from exc
    return EXIT_OK


def load_trainable(spec: str) -> Any:
    """``module:function`` or ``path/to/file.py:function`` → the object it names."""
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"--trainable must look like module:function, got {spec!r}")
    if module_name.endswith(".py"):
        path = os.path.abspath(module_name)
        if not os.path.isfile(path):
            raise UsageError(f"--trainable: no file {path}")
        folder, name = os.path.dirname(path), os.path.splitext(os.path.basename(path))[0]
    else:
        folder, name = os.getcwd(), module_name
    if folder not in sys.path:
        sys.path.insert(0, folder)
    # trial workers are separate processes: let them import the module too
    parts = [folder, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise UsageError(f"--trainable: cannot import {name!r}: {exc}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UsageError(f"--trainable: module {name!r} has no attribute {attr!r}") from None


def cmd_resume(args: argparse.Namespace) -> int:
    from poptune._cli_remote import remote_experiment
    from poptune.tuner import Tuner

    # on remote storage Tuner.restore takes the URI itself (it stages the experiment)
    exp_dir = (remote_experiment(args.experiment, args.storage)
               or resolve_experiment(args.experiment, args.storage))
    if not Tuner.can_restore(exp_dir):
        raise UsageError(f"{exp_dir} cannot be resumed (it has no tuner.pkl)")
    trainable = load_trainable(args.trainable)
    tuner = Tuner.restore(exp_dir, trainable=trainable, resume_errored=args.resume_errored,
                          restart_errored=args.restart_errored)
    grid = tuner.fit()
    errors = grid.num_errors
    print(f"{exp_dir}: {len(grid)} trials, {grid.num_terminated} terminated, {errors} errored")
    return EXIT_FAILURE if errors else EXIT_OK


def cmd_repair(args: argparse.Namespace) -> int:
    from poptune.storage.remote import is_remote

    if is_remote(args.experiment):
        return _repair_remote(args)
    from poptune.storage.lock import LocalLock

    exp_dir = resolve_experiment(args.experiment, args.storage)
    path = os.path.join(exp_dir, "journal.jsonl")
    with LocalLock(exp_dir):  # never under a live driver (ExperimentLockedError: exit 1)
        return _repair(path, args, _truncate_local(path), exp_dir)


def _repair(path: str, args: argparse.Namespace, truncate: Any, exp_dir: str,
            check_path: str | None = None) -> int:
    """Show the damage of the journal at ``path`` (read from ``check_path``) and, when
    confirmed, ``truncate(good_end)``; the shared half of a local and a remote repair."""
    from poptune.storage.replay import check_journal

    check = check_journal(check_path or path)  # RestoreError (no header, newer schema): exit 1
    if check.damage is None:
        msg = f"{path}: {check.commits} commits verify, no damage"
        if check.tail is not None:
            msg += (f"; an unacknowledged tail of {check.tail.size} bytes at byte "
                    f"{check.tail.offset} is dropped on replay (normal after a crash)")
        print(msg)
        return EXIT_OK
    d = check.damage
    print(safe_text(d.describe().replace(check_path, path) if check_path else d.describe()))
    print(f"{check.commits} commits before it verify; the journal has {check.size} bytes.")
    if not args.yes:
        if not sys.stdin.isatty():
            print("Not truncated: run with --yes to truncate without asking.")
            return EXIT_FAILURE
        try:
            answer = input(f"Truncate {path} to byte {d.good_end}? (a backup is kept) [y/N] ")
        except EOFError:  # Ctrl-D: no answer is "no"
            print()
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("Not truncated.")
            return EXIT_FAILURE
    backup = truncate(d.good_end)
    print(f"Truncated {path} to byte {d.good_end}; the damaged journal is kept as {backup}.")
    print(f"Resume with: poptune resume {exp_dir} --trainable MODULE:FUNCTION")
    return EXIT_OK


def _truncate_local(path: str) -> Any:
    def truncate(good_end: int) -> str:
        import shutil

        backup = f"{path}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
        shutil.copy2(path, backup)
        with open(path, "rb+") as f:
            f.truncate(good_end)
        return backup

    return truncate


def _repair_remote(args: argparse.Namespace) -> int:
    """``poptune repair s3://...``: the journal's segments are checked as one file; a cut
    moves the segments past the last good commit to ``journal-damaged-<time>/``."""
    import tempfile

    from poptune.storage.lock import check_remote_free
    from poptune.storage.remote import JOURNAL_SEGMENTS, RemoteStorage

    remote = RemoteStorage(args.experiment)
    if not remote.journal_length():
        raise UsageError(f"{args.experiment} is not a poptune experiment (it has no "
                         f"{JOURNAL_SEGMENTS}/ segments)")
    check_remote_free(remote)  # never under a live driver (ExperimentLockedError: exit 1)
    where = f"{remote.uri}/{JOURNAL_SEGMENTS}/"

    def truncate(good_end: int) -> str:
        check_remote_free(remote)  # a driver may have started while we asked
        suffix = f"damaged-{time.strftime('%Y%m%d-%H%M%S')}"
        remote.cut_journal(good_end, suffix)
        return f"{remote.uri}/{JOURNAL_SEGMENTS}-{suffix}/"

    with tempfile.TemporaryDirectory(prefix="poptune_repair_") as tmp:
        local = os.path.join(tmp, "journal.jsonl")
        with open(local, "wb") as f:
            f.write(remote.read_journal())
        return _repair(where, args, truncate, remote.uri, check_path=local)


# -- parser -----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="poptune", description="Inspect, plot, serve and resume poptune experiments.",
        epilog="Exit codes: 0 ok, 1 runtime failure, 2 usage error.")
    from poptune import __version__

    parser.add_argument("--version", action="version", version=f"poptune {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    storage_help = "storage directory for EXPERIMENT names (default: $POPTUNE_STORAGE_PATH " \
                   "or ~/poptune_results)"
    remote_help = "storage directory or URI (e.g. s3://bucket/runs) for EXPERIMENT names " \
                  "(default: $POPTUNE_STORAGE_PATH or ~/poptune_results)"
    remote_note = (" On remote storage (EXPERIMENT a URI such as s3://bucket/runs/my_exp, or a "
                   "name under a storage URI) its files, never its checkpoints, are downloaded "
                   "to a temporary directory, removed afterwards.")

    def storage_args(p: argparse.ArgumentParser, help: str) -> None:
        """STORAGE as a positional argument, or as ``--storage`` like the other commands."""
        p.add_argument("storage", nargs="?", metavar="STORAGE", help=help)
        p.add_argument("--storage", dest="storage_option", metavar="STORAGE",
                       help="the same as STORAGE")

    def metric_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--metric", help="metric to rank by (default: the experiment's); one "
                       "no trial reported is a usage error")
        p.add_argument("--mode", choices=("min", "max"), help="whether lower or higher is better")

    p = sub.add_parser("ls", help="list experiments", description=(
        "List the experiments in a storage directory: status (running, finished, "
        "interrupted; damaged: its journal is damaged part-way and is shown up to the damage, "
        "`poptune repair` truncates it; unreadable: nothing can be read from its journal; "
        "a line below the table says why), trial counts by status, best metric and start "
        "time. With --metric, a metric no listed experiment reported is a usage error. "
        "STORAGE may be "
        "a URI (e.g. s3://bucket/runs): each experiment's journal is downloaded to a "
        "temporary directory, removed afterwards."))
    storage_args(p, remote_help)
    metric_args(p)
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("show", help="show an experiment's trials", description=(
        "Show the trial table of an experiment (status, iterations, metric, final "
        "hyperparameters) and the first line of the error of each trial in ERROR; trials "
        "that failed before and were retried or restarted (resume --restart-errored) are "
        "listed apart, under 'Earlier errors'. A journal nothing can be read from (empty, "
        "not a poptune journal) is an error (exit 1)." + remote_note))
    p.add_argument("experiment", metavar="EXPERIMENT",
                   help="experiment path or name, or its URI on remote storage")
    p.add_argument("--storage", help=remote_help)
    metric_args(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("plot", help="write an experiment's plots as PNG", description=(
        "Write the metric curves, PBT schedules and family tree, and metric-vs-hyperparameter "
        "scatter plots of an experiment as PNG files (needs matplotlib: "
        "pip install 'poptune[plot]')." + remote_note))
    p.add_argument("experiment", metavar="EXPERIMENT",
                   help="experiment path or name, or its URI on remote storage")
    p.add_argument("--out", metavar="DIR", help=(
        "output directory, created if missing (default: EXPERIMENT/plots; required for "
        "remote storage)"))
    p.add_argument("--over-time", action="store_true", help=(
        "also plot against wall-clock time: trials_over_time.png (one bar per trial, coloured "
        "by its final metric) and best_over_time.png (best metric so far)"))
    p.add_argument("--storage", help=remote_help)
    metric_args(p)
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("dashboard", help="serve the live web dashboard", description=(
        "Serve the read-only web dashboard for every experiment in STORAGE (a directory, or "
        "a storage URI such as s3://bucket/runs, read every few seconds). STORAGE may also "
        "be one experiment's directory: its storage directory is served, and the printed "
        "URL opens the page on that experiment. It binds "
        "127.0.0.1 by default; any other --host requires a token (generated and printed "
        "unless --token is given). A --port in use (or a --host that cannot be bound) is an "
        "error (exit 1), said before anything is served. Needs pip install "
        "'poptune[dashboard]'."))
    storage_args(p, "storage directory of experiments, or one experiment's directory, or a "
                    "storage URI (e.g. s3://bucket/runs, or one experiment's) (default: "
                    "$POPTUNE_STORAGE_PATH or ~/poptune_results)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8265, help="port (default: 8265)")
    p.add_argument("--token", help="token requests must carry (?token=...)")
    p.set_defaults(func=cmd_dashboard)

    p = sub.add_parser("resume", help="resume an interrupted experiment", description=(
        "Continue an interrupted or crashed experiment with Tuner.restore(...).fit(). "
        "Finished trials never re-run. Exits 1 if trials end in ERROR."))
    p.add_argument("experiment", metavar="EXPERIMENT",
                   help="experiment path, name, or URI on remote storage (s3://...)")
    p.add_argument("--trainable", required=True, metavar="MODULE:FUNCTION",
                   help="the trainable, e.g. train:objective or path/to/train.py:objective")
    p.add_argument("--resume-errored", action="store_true",
                   help="resume errored trials from their latest checkpoint")
    p.add_argument("--restart-errored", action="store_true",
                   help="restart errored trials from scratch")
    p.add_argument("--storage", help=storage_help)
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("repair", help="show and truncate a damaged journal", description=(
        "Verify an experiment's journal. If a record in the middle is damaged, show where "
        "and what truncating the journal to its last good commit would lose, then truncate "
        "it on confirmation (a backup journal.jsonl.damaged-TIMESTAMP is kept; on remote "
        "storage, e.g. s3://bucket/exp, the segments past the cut move to "
        "journal-damaged-TIMESTAMP/). Refuses while a driver holds the experiment. Exits 1 "
        "if the journal stays damaged."))
    p.add_argument("experiment", metavar="EXPERIMENT",
                   help="experiment path or name, or its URI on remote storage")
    p.add_argument("--yes", "-y", action="store_true", help="truncate without asking")
    p.add_argument("--storage", help=storage_help)
    p.set_defaults(func=cmd_repair)
    for p in sub.choices.values():  # a usage error found after parsing shows its usage
        p.set_defaults(command_parser=p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``poptune`` command; returns the exit code (argparse errors exit with 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    option = getattr(args, "storage_option", None)
    if option is not None:
        if args.storage is not None and args.storage != option:
            args.command_parser.error(f"STORAGE given twice ({args.storage!r} and --storage "
                                      f"{option!r}): give one")
        args.storage = option
    if getattr(args, "resume_errored", False) and getattr(args, "restart_errored", False):
        print(f"poptune {args.command}: error: --resume-errored and --restart-errored "
              "exclude each other: give one", file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except UsageError as exc:  # (messages may quote names from an experiment's files)
        print(f"poptune {args.command}: error: {safe_text(exc, True)}", file=sys.stderr)
        return EXIT_USAGE
    except CommandFailed as exc:
        print(f"poptune {args.command}: error: {safe_text(exc, True)}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"poptune {args.command}: interrupted", file=sys.stderr)
        return 130
    except (TuneError, OSError) as exc:
        print(f"poptune {args.command}: error: {safe_text(exc, True)}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
