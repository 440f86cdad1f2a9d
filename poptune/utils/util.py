"""The helpers of ``ray.tune.utils`` that scripts import: dict merging and flattening,
``date_str``, ``warn_if_slow``, ``diagnose_serialization``, ``wait_for_gpu`` and
``UtilMonitor``.

Example:
    >>> merge_dicts({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}, "d": 4})
    {'a': {'b': 1, 'c': 3}, 'd': 4}
    >>> flatten_dict({"a": {"b": 1}, "l": [1, {"x": 2}]}, flatten_list=True)
    {'a/b': 1, 'l/0': 1, 'l/1/x': 2}
    >>> unflattened_lookup("l/1/x", {"l": [1, {"x": 2}]})
    2
"""

from __future__ import annotations

import copy
import inspect
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Callable

from poptune._dicts import flatten_dict as _flatten_dict
from poptune._imports import require

__all__ = ["UtilMonitor", "date_str", "deep_update", "diagnose_serialization", "flatten_dict", "merge_dicts",
           "unflattened_lookup", "wait_for_gpu", "warn_if_slow"]

logger = logging.getLogger("poptune")

#: when this module was imported: ``warn_if_slow`` stays quiet during the first minute (Ray's
#: rule: start-up is slow anyway)
_START = time.time()


def merge_dicts(d1: dict[Any, Any], d2: dict[Any, Any]) -> dict[Any, Any]:
    """A new dict: a deep copy of ``d1`` with ``d2`` merged into it, nested dicts included."""
    merged = copy.deepcopy(d1)
    deep_update(merged, d2, new_keys_allowed=True)
    return merged


def deep_update(
    original: dict[Any, Any],
    new_dict: dict[Any, Any],
    new_keys_allowed: bool = False,
    allow_new_subkey_list: list[str] | None = None,
    override_all_if_type_changes: list[str] | None = None,
    override_all_key_list: list[str] | None = None,
) -> dict[Any, Any]:
    """Update ``original`` in place with ``new_dict``, recursing into dicts (Ray's rules).

    Args:
        original: the dict to update (returned).
        new_dict: the values to put in.
        new_keys_allowed: a key ``original`` lacks is an error unless True.
        allow_new_subkey_list: top-level keys whose dicts may gain new keys.
        override_all_if_type_changes: top-level keys whose dict is replaced whole when its
            ``"type"`` changes.
        override_all_key_list: keys whose value is replaced whole, never merged.

    Raises:
        KeyError: a new key where none is allowed, naming it.
    """
    subkeys_allowed = set(allow_new_subkey_list or ())
    type_switch = set(override_all_if_type_changes or ())
    whole = list(override_all_key_list or ())
    for key, value in new_dict.items():
        if key not in original and not new_keys_allowed:
            raise KeyError(f"Unknown config parameter `{key}` (new keys are not allowed here; "
                           f"known: {sorted(map(str, original))})")
        old = original.get(key)
        if not (isinstance(old, dict) and isinstance(value, dict)) or key in whole:
            original[key] = value
        elif key in type_switch and "type" in value and "type" in old \
                and value["type"] != old["type"]:
            original[key] = value
        else:
            deep_update(old, value, key in subkeys_allowed or new_keys_allowed,
                        override_all_key_list=whole)
    return original


def flatten_dict(dt: Mapping[Any, Any], delimiter: str = "/", prevent_delimiter: bool = False,
                 flatten_list: bool = False) -> dict[str, Any]:
    """Nested dicts (and with ``flatten_list``, lists) as one level of ``"a/b/0"`` keys; the
    input is not changed. ``prevent_delimiter`` raises ``ValueError`` for a key holding the
    delimiter."""
    if not flatten_list:
        return _flatten_dict(dt, delimiter, prevent_delimiter)

    def expand(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: expand(v) for k, v in value.items()}
        if isinstance(value, list):
            return {str(i): expand(v) for i, v in enumerate(value)}
        return value

    return _flatten_dict(expand(dict(dt)), delimiter, prevent_delimiter)


def unflattened_lookup(flat_key: str, lookup: Mapping[Any, Any] | Sequence[Any],
                       delimiter: str = "/", **kwargs: Any) -> Any:
    """``lookup["a"][0]["b"]`` for ``flat_key="a/0/b"`` (a key holding the delimiter itself is
    looked up first). ``default=`` is returned when a part is missing; else ``KeyError``."""
    if isinstance(lookup, Mapping) and flat_key in lookup:
        return lookup[flat_key]
    node: Any = lookup
    for part in flat_key.split(delimiter):
        try:
            if isinstance(node, Mapping):
                node = node[part]
            elif isinstance(node, Sequence) and not isinstance(node, str):
                node = node[int(part)]
            else:
                raise KeyError(part)
        except (KeyError, IndexError, ValueError) as exc:
            if "default" in kwargs:
                return kwargs["default"]
            raise KeyError(f"{flat_key!r}: no {part!r} at that level") from exc
    return node


def date_str() -> str:
    """Now, as Ray names things: ``2026-12-04_18-45-25``."""
    return datetime.today().strftime("%Y-%m-%d_%H-%M-%S")


class warn_if_slow:
    """Log a warning when the ``with`` block takes longer than ``threshold`` seconds (default
    ``TUNE_WARN_THRESHOLD_S``, 0.5); quiet during the first minute after import, as Ray's.

    Example:
        >>> with warn_if_slow("loading the data", threshold=10.0) as timer:
        ...     pass
        >>> timer.too_slow
        False
    """

    DEFAULT_THRESHOLD = float(os.environ.get("TUNE_WARN_THRESHOLD_S", 0.5))
    DEFAULT_MESSAGE = ("The `{name}` operation took {duration:.3f} s, which may be a "
                       "performance bottleneck.")

    def __init__(self, name: str, threshold: float | None = None, message: str | None = None,
                 disable: bool = False) -> None:
        self.name = name
        self.threshold = threshold or self.DEFAULT_THRESHOLD
        self.message = message or self.DEFAULT_MESSAGE
        self.disable = disable
        self.too_slow = False

    def __enter__(self) -> warn_if_slow:
        self.start = time.time()
        return self

    def __exit__(self, *exc: Any) -> None:
        now = time.time()
        duration = now - self.start
        if not self.disable and duration > self.threshold and now - _START > 60.0:
            self.too_slow = True
            logger.warning(self.message.format(name=self.name, duration=duration))


def diagnose_serialization(trainable: Callable[..., Any]) -> bool | set[str]:
    """Find what keeps ``trainable`` (a function) from being shipped to worker processes.

    Prints what it tries. Returns True when the trainable pickles; otherwise the names of the
    global and closure variables it uses that do not (empty when none of them is the cause).

    Example::

        lock = threading.Lock()
        def train(config):
            with lock: ...
        diagnose_serialization(train)   # {'lock'}: create it inside `train`
    """
    import cloudpickle

    print(f"Trying to serialize {trainable}...")
    try:
        cloudpickle.dumps(trainable)
        print("Serialization succeeded!")
        return True
    except Exception as exc:  # noqa: BLE001 - whatever pickling raises is the finding
        print(f"Serialization failed: {exc}")
    print(f"Inspecting the scope of the trainable by running "
          f"`inspect.getclosurevars({trainable})`...")
    scope = inspect.getclosurevars(trainable)
    failed: set[str] = set()
    for kind, variables in (("global", scope.globals), ("nonlocal", scope.nonlocals)):
        if not variables:
            continue
        print(f"Detected {len(variables)} {kind} variables. Checking serializability...")
        for name, value in variables.items():
            try:
                cloudpickle.dumps(value)
                print(f"   {value}[name='{name}']... PASSED")
            except Exception as exc:  # noqa: BLE001
                failed.add(name)
                print(f"   {value}[name='{name}']... FAILED")
                print(f"   {type(exc).__name__}: {exc}")
    if failed:
        print(f"Variable(s) {failed} was found to be non-serializable. Consider either removing "
              "the instantiation/imports of these objects or moving them into the scope of "
              "the trainable.")
    else:
        print("Nothing was found to have failed the diagnostic test, though serialization did "
              "not succeed.")
    return failed


def wait_for_gpu(gpu_id: int | str | None = None, target_util: float = 0.01, retry: int = 20,
                 delay_s: float = 5, gpu_memory_limit: float | None = None) -> bool:
    """Wait until a GPU's memory use is at most ``target_util`` (a fraction), checking
    ``retry`` times ``delay_s`` seconds apart; True once it is. Needs ``GPUtil``.

    Args:
        gpu_id: the GPU's index or UUID; default the trial's first GPU
            (:func:`poptune.get_gpu_ids`).
        target_util: the memory use to wait for (0 waits for a free GPU).
        retry, delay_s: how many checks, and the pause between them.
        gpu_memory_limit: Ray's deprecated argument, ignored.

    Raises:
        RuntimeError: the trial has no GPU, or the memory was not freed in time.
        ValueError: ``gpu_id`` is not among the GPUs GPUtil sees.

    Example::

        def train(config):
            tune.utils.wait_for_gpu()  # a previous trial's memory may still be in use
            ...
    """
    gputil = require("GPUtil", "wait_for_gpu")
    if gpu_id is None:
        from poptune._compat import get_gpu_ids

        ids = get_gpu_ids()
        if not ids:
            raise RuntimeError("No GPU ids found from `get_gpu_ids()`: give the trial a GPU, "
                               "e.g. tune.with_resources(train, {'gpu': 1})")
        gpu_id = ids[0]
    attr = "id"
    if isinstance(gpu_id, str):
        if gpu_id.isdigit():
            gpu_id = int(gpu_id)
        else:
            attr = "uuid"  # e.g. 'GPU-04546190-b68d-65ac-101b-035f8faed77d'
    elif isinstance(gpu_id, bool) or not isinstance(gpu_id, int):
        raise ValueError(f"`gpu_id` must be an int index or a str UUID, got {gpu_id!r} of type "
                         f"{type(gpu_id).__name__}")
    known = {getattr(g, attr) for g in gputil.getGPUs()}
    if gpu_id not in known:
        raise ValueError(f"`gpu_id` {gpu_id!r} is not among the GPUs found: {sorted(known)}; "
                         "pass an index (e.g. 0) or a UUID")
    for _ in range(int(retry)):
        gpu = next(g for g in gputil.getGPUs() if getattr(g, attr) == gpu_id)
        if gpu.memoryUtil <= target_util:
            return True
        logger.info("Waiting for GPU util to reach %s. Util: %.3f", target_util, gpu.memoryUtil)
        time.sleep(delay_s)
    raise RuntimeError(f"GPU memory was not freed: GPU {gpu_id} stayed above "
                       f"target_util={target_util} for {retry} checks {delay_s} s apart")


def _optional(module: str) -> Any:
    """``module``, or None when it is not installed."""
    try:
        return __import__(module)
    except ImportError:
        return None


class UtilMonitor(threading.Thread):
    """A daemon thread that samples CPU and RAM use (psutil) and each GPU's load and memory
    use (GPUtil) every ``delay`` seconds; :meth:`get_data` returns the means since the last
    call, under ``"perf"``, as Ray's.

    A trial whose config has ``"log_sys_usage": True`` runs one, and each of its results
    carries the ``perf`` dict (``cpu_util_percent``, ``ram_util_percent``,
    ``gpu_util_percent0``, ``vram_util_percent0``, ...).

    Args:
        start: start sampling now.
        delay: seconds between samples.

    Example:
        >>> monitor = UtilMonitor(delay=0.01)
        >>> time.sleep(0.05)
        >>> sorted(monitor.get_data()["perf"])
        ['cpu_util_percent', 'ram_util_percent']
        >>> monitor.stop(); monitor.join()
        >>> monitor.get_data()
        {}
    """

    def __init__(self, start: bool = True, delay: float = 0.7) -> None:
        super().__init__(name="poptune-util-monitor", daemon=True)
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not delay > 0:
            raise ValueError(f"`delay` must be a positive number of seconds, got {delay!r}")
        self.delay = float(delay)
        self.stopped = True
        self.values: dict[str, list[float]] = {}
        self.lock = threading.Lock()
        self._wake = threading.Event()
        self._psutil = _optional("psutil")
        self.GPUtil = _optional("GPUtil")
        if start and self._psutil is None:
            logger.warning("Install psutil to monitor system performance.")
        if start and self.GPUtil is None:
            logger.warning("Install gputil for GPU system monitoring.")
        if self._psutil is not None:
            self._psutil.cpu_percent(interval=None)  # the first call only starts the count
        if start and (self._psutil is not None or self.GPUtil is not None):
            self.stopped = False
            self.start()

    def _sample(self) -> dict[str, float]:
        sample: dict[str, float] = {}
        if self._psutil is not None:
            sample["cpu_util_percent"] = float(self._psutil.cpu_percent(interval=None))
            sample["ram_util_percent"] = float(self._psutil.virtual_memory().percent)
        if self.GPUtil is not None:
            try:
                gpus = self.GPUtil.getGPUs()
            except Exception:  # noqa: BLE001 - no driver (nvidia-smi) here: no GPU figures
                gpus = []
            for gpu in gpus:
                sample[f"gpu_util_percent{gpu.id}"] = float(gpu.load)
                sample[f"vram_util_percent{gpu.id}"] = float(gpu.memoryUtil)
        return sample

    def run(self) -> None:
        while not self.stopped:
            sample = self._sample()
            with self.lock:
                for key, value in sample.items():
                    self.values.setdefault(key, []).append(value)
            self._wake.wait(self.delay)

    def get_data(self) -> dict[str, Any]:
        """``{"perf": {name: mean}}`` over the samples since the last call; ``{}`` once
        stopped (or never started)."""
        if self.stopped:
            return {}
        with self.lock:
            values, self.values = self.values, {}
        return {"perf": {k: sum(v) / len(v) for k, v in values.items() if v}}

    def stop(self) -> None:
        """Stop sampling (the thread ends within a moment: :meth:`join` waits for it)."""
        self.stopped = True
        self._wake.set()
