"""PyTorch Lightning callbacks that report to poptune and save checkpoints (Ray's
``ray.tune.integration.pytorch_lightning``).

Lightning is imported the first time a class is used. The classes derive from
``lightning.pytorch.Callback``, or ``pytorch_lightning.Callback`` where only the
``pytorch-lightning`` package is installed (as Ray's do).

Example (inside a trainable)::

    import lightning.pytorch as pl
    import poptune as tune
    from poptune.integration.pytorch_lightning import TuneReportCheckpointCallback

    def train(config):
        model = LitModel(config)
        callback = TuneReportCheckpointCallback({"loss": "val_loss"}, on="validation_end")
        trainer = pl.Trainer(max_epochs=10, callbacks=[callback], enable_progress_bar=False)
        checkpoint = tune.get_checkpoint()  # a PBT donor's, or this trial's after a restart
        if checkpoint:
            with checkpoint.as_directory() as d:
                trainer.fit(model, ckpt_path=os.path.join(d, "checkpoint"))
        else:
            trainer.fit(model)

Each report carries the metrics Lightning logged (``trainer.callback_metrics``) and, unless
``save_checkpoints=False``, a checkpoint directory holding ``trainer.save_checkpoint``'s file
(named ``filename``). Nothing is reported during Lightning's sanity check.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import os
import shutil
import tempfile
import warnings
from typing import TYPE_CHECKING, Any, Sequence, Union

from poptune._imports import require
from poptune.checkpoint import Checkpoint
from poptune.exceptions import TuneConfigError
from poptune.integration import MetricsSpec, _normalize_metrics, _to_python

__all__ = ["TuneCallback", "TuneReportCheckpointCallback", "TuneReportCallback"]

logger = logging.getLogger("poptune")

Events = Union[str, Sequence[str]]


def _lightning() -> Any:
    """``lightning.pytorch``, or ``pytorch_lightning`` where only that package is installed."""
    if importlib.util.find_spec("lightning") is not None:
        return importlib.import_module("lightning.pytorch")
    return require("pytorch_lightning", "poptune's PyTorch Lightning callbacks")


def _hooks(callback_base: type) -> list[str]:
    """The ``on_*`` hooks of the installed Lightning's ``Callback``, less the ``on_``."""
    return sorted(name[3:] for name, _ in inspect.getmembers(callback_base, inspect.isfunction)
                  if name.startswith("on_"))


class _TuneCallback:
    """Calls ``self._handle(trainer)`` on each Lightning hook named in ``on``."""

    #: hooks a callback may be triggered on (set when the public class is built)
    HOOKS: tuple[str, ...] = ()

    def __init__(self, on: Events = "validation_end") -> None:
        super().__init__()  # Lightning's Callback
        events = [on] if isinstance(on, str) else list(on)
        bad = [e for e in events if e not in self.HOOKS]
        if bad or not events:
            raise TuneConfigError(
                f"`on` must be one or more of the Lightning hooks {', '.join(self.HOOKS)} "
                f"(without the `on_`), got {on!r}")
        self._on = frozenset(events)

    def _handle(self, trainer: Any) -> None:
        raise NotImplementedError


def _hook(event: str) -> Any:
    def hook(self: _TuneCallback, trainer: Any, *args: Any, **kwargs: Any) -> None:
        if event in self._on:
            self._handle(trainer)

    hook.__name__ = hook.__qualname__ = f"on_{event}"
    return hook


class _TuneReportCheckpointCallback(_TuneCallback):
    """Lightning callback that reports the logged metrics to poptune with a checkpoint of the
    trainer (Ray's ``TuneReportCheckpointCallback``): the checkpoint PBT exploits copy.

    Args:
        metrics: what to report. ``None``: everything in ``trainer.callback_metrics``. A str
            or list: those logged names. A dict: ``{reported_name: logged_name}``. A name not
            logged at that point is left out with a warning (once per name), as in Ray; with
            nothing left, nothing is reported.
        filename: the checkpoint file inside the reported directory (``"checkpoint"``, as
            in Ray).
        save_checkpoints: False reports the metrics alone.
        on: the Lightning hook(s) to report on, less the ``on_`` (default
            ``"validation_end"``; ``"train_epoch_end"``, ``"train_batch_end"``, ...).

    Example::

        trainer = pl.Trainer(callbacks=[TuneReportCheckpointCallback(
            metrics={"loss": "val_loss", "mean_accuracy": "val_acc"}, on="validation_end")])
    """

    def __init__(self, metrics: MetricsSpec = None, filename: str = "checkpoint",
                 save_checkpoints: bool = True, on: Events = "validation_end") -> None:
        super().__init__(on)
        if save_checkpoints and "save_checkpoint" in self._on:
            raise TuneConfigError(
                "`on` cannot hold 'save_checkpoint' while `save_checkpoints=True`: saving the "
                "checkpoint would trigger the hook again")
        if not isinstance(filename, str) or not filename or os.path.isabs(filename) \
                or os.sep in filename:
            raise TuneConfigError(f"`filename` must be a plain file name, got {filename!r}")
        self._metrics = _normalize_metrics(metrics)
        self._filename = filename
        self._save_checkpoints = bool(save_checkpoints)
        self._said_missing: set[str] = set()

    def _metrics_now(self, trainer: Any) -> dict[str, Any]:
        logged = trainer.callback_metrics
        if self._metrics is None:
            return {k: _to_python(v) for k, v in logged.items()}
        out: dict[str, Any] = {}
        for reported, name in self._metrics.items():
            if name in logged:
                out[reported] = _to_python(logged[name])
            elif name not in self._said_missing:
                self._said_missing.add(name)
                logger.warning("poptune: metric %r is not in trainer.callback_metrics (%s) at "
                               "this hook; it is left out of the report", name,
                               ", ".join(sorted(logged)) or "nothing logged")
        return out

    def _handle(self, trainer: Any) -> None:
        if trainer.sanity_checking:
            return
        metrics = self._metrics_now(trainer)
        if not metrics:
            return
        from poptune.session import report

        if not self._save_checkpoints:
            report(metrics)
            return
        tmp = tempfile.mkdtemp(prefix="poptune_lightning_ckpt_")
        try:
            trainer.save_checkpoint(os.path.join(tmp, self._filename))
            report(metrics, checkpoint=Checkpoint.from_directory(tmp))
        finally:  # report() moved the directory, or copied it when across filesystems
            shutil.rmtree(tmp, ignore_errors=True)


class _TuneReportCallback(_TuneReportCheckpointCallback):
    """Reports metrics only: ``TuneReportCheckpointCallback(save_checkpoints=False)``
    (deprecated in Ray, which warns once; so does poptune).

    Example::

        trainer = pl.Trainer(callbacks=[TuneReportCallback({"loss": "val_loss"})])
    """

    _warned = False

    def __init__(self, metrics: MetricsSpec = None, on: Events = "validation_end") -> None:
        if not _TuneReportCallback._warned:
            _TuneReportCallback._warned = True
            warnings.warn("`TuneReportCallback` is deprecated. Use "
                          "`TuneReportCheckpointCallback` instead.", stacklevel=2)
        super().__init__(metrics=metrics, save_checkpoints=False, on=on)


_MIXINS: dict[str, type] = {
    "TuneCallback": _TuneCallback,
    "TuneReportCheckpointCallback": _TuneReportCheckpointCallback,
    "TuneReportCallback": _TuneReportCallback,
}

if TYPE_CHECKING:  # the real classes also derive from Lightning's Callback
    TuneCallback = _TuneCallback
    TuneReportCheckpointCallback = _TuneReportCheckpointCallback
    TuneReportCallback = _TuneReportCallback

#: the public classes built so far, per Lightning package (``lightning.pytorch`` and
#: ``pytorch_lightning`` have distinct ``Callback`` classes)
_BUILT: dict[tuple[str, str], type] = {}


#: each public class's public parent (the first derives from Lightning's ``Callback``)
_PARENT = {"TuneReportCheckpointCallback": "TuneCallback",
           "TuneReportCallback": "TuneReportCheckpointCallback"}


def _build(name: str, pl: Any) -> type:
    key = (pl.__name__, name)
    if key in _BUILT:
        return _BUILT[key]
    body: dict[str, Any] = {"__module__": __name__, "__qualname__": name,
                            "__doc__": _MIXINS[name].__doc__}
    if name == "TuneCallback":
        hooks = _hooks(pl.Callback)
        body.update({f"on_{e}": _hook(e) for e in hooks}, HOOKS=tuple(hooks))
        parent = pl.Callback
    else:
        parent = _build(_PARENT[name], pl)
    cls = _BUILT[key] = type(name, (_MIXINS[name], parent), body)
    return cls


def __getattr__(name: str) -> type:
    """Build the public classes on first use, deriving from Lightning's ``Callback``."""
    if name not in _MIXINS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _build(name, _lightning())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
