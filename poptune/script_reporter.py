"""The script side of :func:`poptune.script`: report metrics from any training script.

This module imports only the standard library (``json``, ``os``, ``sys``), so a script may
import it cheaply, copy it next to itself, or skip it and print the lines by hand.

A metric line is ``[poptune-metric]: {json object}`` (Syne Tune's ``[tune-metric]: {...}``
is accepted too); every other line a script prints goes to the trial's ``stdout.txt``::

    from poptune import script_reporter as pt   # or: from poptune import script_report

    config = pt.config()                     # the whole config (POPTUNE_CONFIG)
    ckpt = pt.checkpoint_dir()               # POPTUNE_CHECKPOINT_DIR: restore from it if non-empty
    for epoch in range(10):
        ...
        # save into `ckpt`, then report with checkpoint=True: poptune copies the directory
        pt.script_report(loss=0.1, epoch=epoch, checkpoint=True)

Reserved keys in a ``[poptune-metric]`` object: ``checkpoint`` (``true``: the checkpoint
directory holds a checkpoint for this result) and ``poptune_wait`` (set by
:func:`script_report` when run under poptune: the script waits for the driver's decision
before it continues, so a checkpoint is never overwritten while it is copied, and a stopped
trial stops right after its report).

>>> print(format_line({"loss": 0.5}, checkpoint=True))
[poptune-metric]: {"loss": 0.5, "checkpoint": true}
>>> parse_line('epoch 3 [tune-metric]: {"acc": 0.9}')
('tune-metric', {'acc': 0.9})
>>> parse_line("an ordinary line") is None
True
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Mapping

#: the marker of poptune's metric lines
POPTUNE_MARKER = "[poptune-metric]:"
#: the marker of Syne Tune's ``Reporter`` lines
SYNE_TUNE_MARKER = "[tune-metric]:"

#: environment variables set for a script run by :func:`poptune.script`
ENV_CONFIG = "POPTUNE_CONFIG"
ENV_CHECKPOINT_DIR = "POPTUNE_CHECKPOINT_DIR"
ENV_TRIAL_DIR = "POPTUNE_TRIAL_DIR"
ENV_TRIAL_ID = "POPTUNE_TRIAL_ID"
#: a file descriptor the reporter reads one byte from after each report (the driver's go-on)
ENV_ACK_FD = "POPTUNE_ACK_FD"

CHECKPOINT_KEY = "checkpoint"
WAIT_KEY = "poptune_wait"

__all__ = ["script_report", "config", "checkpoint_dir", "format_line", "parse_line",
           "MetricLineError"]


class MetricLineError(ValueError):
    """A line carries a metric marker but no JSON object after it."""


def _json_default(obj: Any) -> Any:
    item = getattr(obj, "item", None)  # numpy / torch scalars
    if callable(item):
        try:
            return item()
        except (ValueError, TypeError):
            pass
    tolist = getattr(obj, "tolist", None)  # small arrays
    if callable(tolist):
        return tolist()
    raise TypeError(f"metric value {obj!r} of type {type(obj).__name__} is not JSON serializable")


def format_line(metrics: Mapping[str, Any], checkpoint: bool = False, wait: bool = False) -> str:
    """The ``[poptune-metric]: {...}`` line for ``metrics`` (no trailing newline)."""
    payload = dict(metrics)
    if checkpoint:
        payload[CHECKPOINT_KEY] = True
    if wait:
        payload[WAIT_KEY] = True
    return f"{POPTUNE_MARKER} {json.dumps(payload, default=_json_default)}"


def parse_line(line: str) -> tuple[str, dict[str, Any]] | None:
    """``(kind, object)`` for a metric line (kind ``"poptune-metric"`` or ``"tune-metric"``),
    None for any other line; a marker followed by anything but a JSON object raises
    :class:`MetricLineError`. The marker may follow a prefix (e.g. a logging format)."""
    for marker in (POPTUNE_MARKER, SYNE_TUNE_MARKER):
        at = line.find(marker)
        if at < 0:
            continue
        text = line[at + len(marker):].strip()
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise MetricLineError(f"not a JSON object after {marker!r}: {exc}") from None
        if not isinstance(obj, dict):
            raise MetricLineError(
                f"not a JSON object after {marker!r}: got {type(obj).__name__}")
        return marker[1:-2], obj
    return None


def _ack_fd() -> int | None:
    raw = os.environ.get(ENV_ACK_FD)
    if not raw:
        return None
    try:
        fd = int(raw)
        os.fstat(fd)
    except (ValueError, OSError):
        return None
    return fd


def script_report(metrics: Mapping[str, Any] | None = None, /, *, checkpoint: bool = False,
                  **kwargs: Any) -> None:
    """Report one result: print a ``[poptune-metric]`` line and, under poptune, wait until
    the driver lets the script go on.

    Args:
        metrics: a dict of metrics (and/or keyword arguments).
        checkpoint: True when the script has just saved a checkpoint into
            :func:`checkpoint_dir`; poptune copies the directory and records it with this
            result (so PBT exploits and pause/resume restart from it).

    When poptune stops the trial while the script waits, the script exits (``SystemExit(0)``);
    run without poptune, the line is only printed.
    """
    values: dict[str, Any] = dict(metrics or {})
    values.update(kwargs)
    if CHECKPOINT_KEY in values:
        raise TypeError(f"`{CHECKPOINT_KEY}` is reserved: pass checkpoint=True as a keyword")
    fd = _ack_fd()
    line = format_line(values, checkpoint=checkpoint, wait=fd is not None)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    if fd is not None:
        try:
            answer = os.read(fd, 1)
        except OSError:
            answer = b""
        if not answer:  # poptune closed the channel: the trial is over
            raise SystemExit(0)


def config() -> dict[str, Any]:
    """The trial's whole config (nested dicts included), from ``POPTUNE_CONFIG``; ``{}`` when
    the script runs outside poptune."""
    raw = os.environ.get(ENV_CONFIG)
    return json.loads(raw) if raw else {}


def checkpoint_dir() -> str | None:
    """The directory to save checkpoints into and restore from (``POPTUNE_CHECKPOINT_DIR``):
    it holds the checkpoint to resume from when the trial is restored or exploited."""
    return os.environ.get(ENV_CHECKPOINT_DIR) or None
