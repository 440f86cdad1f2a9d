"""Keras callbacks that report to poptune and save checkpoints (Ray's
``ray.tune.integration.keras`` and ``ray.air.integrations.keras`` names).

They work with Keras 3 on any backend (``KERAS_BACKEND=torch`` needs no TensorFlow) and with
``tf.keras``. Keras is imported the first time a class is used.

Example (inside a trainable)::

    import os
    os.environ["KERAS_BACKEND"] = "torch"
    import keras
    import poptune as tune
    from poptune.integration.keras import TuneReportCheckpointCallback

    def train(config):
        ckpt = tune.get_checkpoint()
        if ckpt:
            model = TuneReportCheckpointCallback.get_model(ckpt)
        else:
            model = build_model(config)
        model.fit(x, y, epochs=10, validation_data=(xv, yv), verbose=0,
                  callbacks=[TuneReportCheckpointCallback({"mean_accuracy": "val_accuracy"})])

``filename`` decides the format: ``*.keras`` (default) a Keras 3 archive, ``*.h5`` legacy HDF5,
and a name without an extension (``filename="model"``, as older Ray scripts use) an unzipped
Keras 3 model directory that ``keras.models.load_model(os.path.join(dir, "model"))`` reads.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections import Counter
from typing import TYPE_CHECKING, Any, Sequence, Union

from poptune._imports import MissingDependencyError, require
from poptune.checkpoint import Checkpoint
from poptune.exceptions import TuneConfigError
from poptune.integration import MetricsSpec, _normalize_metrics, _select_metrics

__all__ = ["TuneReportCallback", "TuneReportCheckpointCallback", "ReportCheckpointCallback"]

#: Keras event hooks (less the ``on_``) a callback can be triggered on.
ALLOWED_EVENTS = (
    "epoch_begin", "epoch_end",
    "train_batch_begin", "train_batch_end",
    "test_batch_begin", "test_batch_end",
    "predict_batch_begin", "predict_batch_end",
    "train_begin", "train_end",
    "test_begin", "test_end",
    "predict_begin", "predict_end",
)

Events = Union[str, Sequence[str]]


def _import_keras(purpose: str) -> Any:
    """Import keras; a backend that fails to import gets its own message, not an install hint."""
    try:
        import keras
    except ImportError as exc:
        if importlib.util.find_spec("keras") is None:
            return require("keras", purpose)  # raises with the install command
        raise MissingDependencyError(
            f"keras is installed but its backend failed to import ({exc}); set "
            "os.environ['KERAS_BACKEND'] = 'torch' (or 'jax'/'tensorflow', whichever is "
            f"installed) before keras is first imported, for {purpose}") from exc
    return keras


def _events(name: str, on: Events) -> list[str]:
    events = [on] if isinstance(on, str) else list(on)
    bad = [e for e in events if e not in ALLOWED_EVENTS]
    if bad or not events:
        raise TuneConfigError(
            f"`{name}` must be one or more of {', '.join(ALLOWED_EVENTS)}, got {on!r}")
    return events


def _save_model(model: Any, path: str) -> None:
    if path.endswith((".keras", ".h5", ".hdf5")):
        model.save(path)
        return
    keras = _import_keras("saving a model")
    if int(str(keras.__version__).split(".")[0]) >= 3:
        model.save(path, zipped=False)  # a model directory that keras.models.load_model reads
    else:  # tf.keras 2: a SavedModel directory
        model.save(path)


class _TuneCallback:
    """Dispatches the Keras hooks listed in ``self._on`` to ``_handle(logs, when)``."""

    def __init__(self, on: Events = "epoch_end") -> None:
        super().__init__()  # keras.callbacks.Callback
        self._on = _events("on", on)
        self._on_set = frozenset(self._on)

    def _handle(self, logs: dict[str, Any] | None, when: str) -> None:
        raise NotImplementedError

    def _dispatch(self, when: str, logs: dict[str, Any] | None) -> None:
        if when in self._on_set:
            self._handle(logs, when)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._dispatch("epoch_begin", logs)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._dispatch("epoch_end", logs)

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._dispatch("train_batch_begin", logs)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._dispatch("train_batch_end", logs)

    def on_test_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._dispatch("test_batch_begin", logs)

    def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._dispatch("test_batch_end", logs)

    def on_predict_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._dispatch("predict_batch_begin", logs)

    def on_predict_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._dispatch("predict_batch_end", logs)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._dispatch("train_begin", logs)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._dispatch("train_end", logs)

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._dispatch("test_begin", logs)

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        self._dispatch("test_end", logs)

    def on_predict_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._dispatch("predict_begin", logs)

    def on_predict_end(self, logs: dict[str, Any] | None = None) -> None:
        self._dispatch("predict_end", logs)

    @staticmethod
    def get_model(checkpoint: Checkpoint, filename: str = "model.keras", **load_kwargs: Any) -> Any:
        """Load the Keras model a callback saved into ``checkpoint``.

        Args:
            checkpoint: a checkpoint reported by the callback (``tune.get_checkpoint()``,
                ``result.checkpoint``).
            filename: the callback's ``filename``.
            **load_kwargs: passed to ``keras.models.load_model`` (e.g. ``custom_objects``).
        """
        keras = _import_keras("loading a Keras checkpoint")
        with checkpoint.as_directory() as path:
            return keras.models.load_model(os.path.join(path, filename), **load_kwargs)


class _TuneReportCallback(_TuneCallback):
    """Keras callback that reports metrics to poptune (Ray's ``TuneReportCallback``).

    Args:
        metrics: what to report. ``None``: every value Keras logs. A str or list: those
            Keras log keys under the same names. A dict: ``{reported_name: keras_key}``.
        on: the Keras event(s) to report on, less the ``on_`` (``"epoch_end"``,
            ``"train_batch_end"``, ...; see :data:`ALLOWED_EVENTS`).

    Example::

        model.fit(x, y, epochs=5, verbose=0, validation_data=(xv, yv),
                  callbacks=[TuneReportCallback({"mean_accuracy": "accuracy"})])
    """

    def __init__(self, metrics: MetricsSpec = None, on: Events = "epoch_end") -> None:
        super().__init__(on)
        self._metrics = _normalize_metrics(metrics)

    def _handle(self, logs: dict[str, Any] | None, when: str) -> None:
        from poptune.session import report

        report(_select_metrics(self._metrics, logs))


class _TuneReportCheckpointCallback(_TuneCallback):
    """Keras callback that saves the model and reports it with the metrics (Ray's
    ``TuneReportCheckpointCallback``): the checkpoint PBT exploits copy and restore from.

    Args:
        metrics: what to report (see :class:`TuneReportCallback`).
        filename: the model file in the checkpoint directory. ``*.keras`` (default) is a
            Keras 3 archive, ``*.h5`` legacy HDF5, a name without extension an unzipped
            model directory (what ``filename="model"`` in older Ray scripts loads from).
        frequency: save every ``frequency``-th time a ``checkpoint_on`` event fires (a list
            gives one frequency per ``checkpoint_on`` event). Metrics are reported on every
            ``on`` event; a checkpoint is always reported together with the metrics.
        on: the Keras event(s) to report on (default ``"epoch_end"``).
        checkpoint_on: the event(s) to count for checkpoints; defaults to ``on``.

    Example::

        model.fit(x, y, epochs=10, verbose=0, validation_data=(xv, yv), callbacks=[
            TuneReportCheckpointCallback(metrics={"mean_accuracy": "accuracy"},
                                         filename="model", frequency=5)])
    """

    def __init__(
        self,
        metrics: MetricsSpec = None,
        filename: str = "model.keras",
        frequency: int | Sequence[int] = 1,
        on: Events = "epoch_end",
        checkpoint_on: Events | None = None,
    ) -> None:
        report_on = _events("on", on)
        ckpt_on = _events("checkpoint_on", checkpoint_on) if checkpoint_on is not None else report_on
        super().__init__(list(dict.fromkeys(report_on + ckpt_on)))
        if not isinstance(filename, str) or not filename or os.path.isabs(filename):
            raise TuneConfigError(f"`filename` must be a relative file name, got {filename!r}")
        if isinstance(frequency, (list, tuple)):
            if len(frequency) != len(ckpt_on):
                raise TuneConfigError(
                    f"`frequency` as a list needs one entry per `checkpoint_on` event "
                    f"({len(ckpt_on)}), got {frequency!r}")
            freqs = dict(zip(ckpt_on, frequency))
        else:
            freqs = {e: frequency for e in ckpt_on}
        for f in freqs.values():
            if isinstance(f, bool) or not isinstance(f, int) or f < 1:
                raise TuneConfigError(f"`frequency` must be an int >= 1 (or a list of them), "
                                      f"got {frequency!r}")
        self._metrics = _normalize_metrics(metrics)
        self._filename = filename
        self._report_on = frozenset(report_on)
        self._frequency = freqs
        self._counter: Counter[str] = Counter()

    def _handle(self, logs: dict[str, Any] | None, when: str) -> None:
        due = False
        if when in self._frequency:
            self._counter[when] += 1
            due = self._counter[when] % self._frequency[when] == 0
        if not due and when not in self._report_on:
            return
        from poptune.session import report

        metrics = _select_metrics(self._metrics, logs)
        if not due:
            report(metrics)
            return
        tmp = tempfile.mkdtemp(prefix="poptune_keras_ckpt_")
        try:
            _save_model(self.model, os.path.join(tmp, self._filename))  # type: ignore[attr-defined]
            report(metrics, checkpoint=Checkpoint.from_directory(tmp))
        finally:  # report() moved the directory, or copied it when across filesystems
            shutil.rmtree(tmp, ignore_errors=True)


class _ReportCheckpointCallback(_TuneReportCheckpointCallback):
    """Ray AIR's ``ReportCheckpointCallback``: report on ``report_metrics_on``, save the model
    (``model.keras``) on every ``checkpoint_on`` event.

    Example::

        model.fit(x, y, epochs=3, callbacks=[ReportCheckpointCallback(metrics=["loss"])])
    """

    def __init__(self, checkpoint_on: Events = "epoch_end",
                 report_metrics_on: Events = "epoch_end", metrics: MetricsSpec = None) -> None:
        super().__init__(metrics=metrics, filename="model.keras", frequency=1,
                         on=report_metrics_on, checkpoint_on=checkpoint_on)


_MIXINS: dict[str, type] = {
    "TuneReportCallback": _TuneReportCallback,
    "TuneReportCheckpointCallback": _TuneReportCheckpointCallback,
    "ReportCheckpointCallback": _ReportCheckpointCallback,
}

if TYPE_CHECKING:  # the real classes also derive from keras.callbacks.Callback
    TuneReportCallback = _TuneReportCallback
    TuneReportCheckpointCallback = _TuneReportCheckpointCallback
    ReportCheckpointCallback = _ReportCheckpointCallback


def __getattr__(name: str) -> type:
    """Build the public classes on first use, deriving from ``keras.callbacks.Callback``."""
    mixin = _MIXINS.get(name)
    if mixin is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    keras = _import_keras(name)
    cls = type(name, (mixin, keras.callbacks.Callback),
               {"__module__": __name__, "__qualname__": name, "__doc__": mixin.__doc__})
    globals()[name] = cls
    return cls


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
