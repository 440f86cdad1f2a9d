"""``Reporter``: report metrics from a Syne Tune objective or training script.

Inside a trial run by poptune (a :class:`~poptune.syne_tune.PythonBackend` function) a call
goes straight to the trial's session, one round trip to the driver. Anywhere else (a script
run by :class:`~poptune.syne_tune.LocalBackend`, ``poptune.script`` or Syne Tune itself) it
prints Syne Tune's line ``[tune-metric]: {...json...}`` on stdout, which the driver parses.

Example:
    >>> from poptune.syne_tune import Reporter
    >>> report = Reporter(add_time=False)
    >>> report(epoch=1, loss=0.5)  # doctest: +ELLIPSIS
    [tune-metric]: {"epoch": 1, "loss": 0.5, "st_worker_timestamp": ..., "st_worker_iter": 0}
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from poptune._validation import bad_value

__all__ = ["Reporter", "ST_METRIC_TAG", "retrieve"]

ST_METRIC_TAG = "tune-metric"
ST_WORKER_TIMESTAMP = "st_worker_timestamp"
ST_WORKER_TIME = "st_worker_time"
ST_WORKER_ITER = "st_worker_iter"

#: the session attribute where the PythonBackend wrapper keeps the ``st_checkpoint_dir`` it
#: handed to the objective (per trial: several trials may share a process); a non-empty
#: directory is reported as the trial's checkpoint
SESSION_ATTR = "_syne_checkpoint_dir"


def _jsonable(value: Any) -> Any:
    """Numpy scalars (and one-element arrays) as Python numbers, larger arrays as lists."""
    if getattr(value, "size", 1) == 1 and callable(getattr(value, "item", None)):
        return value.item()
    if callable(getattr(value, "tolist", None)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


@dataclass
class Reporter:
    """Callback reporting metrics: ``report(epoch=1, loss=0.2)``.

    Args:
        add_time: add ``st_worker_time``, the seconds since this reporter was created.

    Each report also carries ``st_worker_timestamp`` (epoch seconds) and ``st_worker_iter``
    (0, 1, ...), as in Syne Tune. Metric names starting with ``st_`` are reserved.
    """

    add_time: bool = True
    start: float = field(default=0.0, init=False, repr=False)
    iter: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self, **kwargs: Any) -> None:
        for key, value in kwargs.items():
            if key.startswith("st_"):
                raise bad_value("metric name", key, "a name not starting with 'st_' "
                                "(reserved for Syne Tune's own fields)")
            if value is None:
                raise bad_value(key, value, "a JSON-serialisable value, not None")
        from poptune.session import current_session

        session = current_session()
        metrics = dict(kwargs)
        # the trial's clock: simulated seconds on the simulated backend
        metrics[ST_WORKER_TIMESTAMP] = session._clock() if session is not None and (
            session._clock is not None) else time.time()
        if self.add_time:
            metrics[ST_WORKER_TIME] = time.perf_counter() - self.start
        metrics[ST_WORKER_ITER] = self.iter
        self.iter += 1
        if session is None:
            print(f"[{ST_METRIC_TAG}]: {json.dumps(metrics, default=_jsonable)}")
            sys.stdout.flush()
            return
        checkpoint = None
        ckpt_dir = getattr(session, SESSION_ATTR, None)
        if ckpt_dir is not None and os.path.isdir(ckpt_dir) and os.listdir(ckpt_dir):
            from poptune.checkpoint import Checkpoint

            checkpoint = Checkpoint.from_directory(ckpt_dir)
        session.report({k: _plain(v) for k, v in metrics.items()}, checkpoint)


def _plain(value: Any) -> Any:
    try:
        return _jsonable(value)
    except TypeError:
        return value


#: Syne Tune's pattern: the JSON object runs from the first ``{`` to the line's last ``}``
_METRIC_LINE = re.compile(r"\[" + ST_METRIC_TAG + r"\]: (\{.*\})")


def retrieve(log_lines: list[str]) -> list[dict[str, Any]]:
    """The metrics reported in ``log_lines`` by ``[tune-metric]: {...}`` lines (text after
    the object's closing brace is ignored, as in Syne Tune).

    Example:
        >>> retrieve(['noise', '[tune-metric]: {"loss": 1.5} (epoch 1)'])
        [{'loss': 1.5}]
    """
    return [json.loads(m) for m in _METRIC_LINE.findall("\n".join(log_lines))]
