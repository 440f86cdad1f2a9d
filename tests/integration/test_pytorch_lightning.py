"""poptune.integration.pytorch_lightning: a Lightning ``Trainer`` inside real trials reports
through the callback; its checkpoints reload, and PBT exploits resume the donor's trainer."""

from __future__ import annotations

import json
import logging
import os
import sys

import pytest

pl = pytest.importorskip("lightning.pytorch")
pytest.importorskip("sklearn")

import torch  # noqa: E402

import poptune as tune  # noqa: E402
from poptune.exceptions import TuneConfigError  # noqa: E402
from poptune.integration import pytorch_lightning as ptl  # noqa: E402
from poptune.integration.pytorch_lightning import (  # noqa: E402
    TuneReportCallback,
    TuneReportCheckpointCallback,
)
from poptune.schedulers import PopulationBasedTraining  # noqa: E402
from tests.integration._helpers import FakeReport, fit_fail_fast, result_rows  # noqa: E402

pytestmark = [
    # Lightning's advice for real jobs (more dataloader workers, a logger): not for a toy
    pytest.mark.filterwarnings("ignore:.*does not have many workers"),
    pytest.mark.filterwarnings("ignore:.*LightningModule.log"),
    pytest.mark.filterwarnings("ignore:.*small number of batches"),
    pytest.mark.filterwarnings("ignore:.*isinstance\\(treespec, LeafSpec\\)` is deprecated"),
]


def _loaders(batch_size: int = 128):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    train = torch.utils.data.TensorDataset(x[:1400], y[:1400])
    val = torch.utils.data.TensorDataset(x[1400:], y[1400:])
    return (torch.utils.data.DataLoader(train, batch_size=batch_size, shuffle=True),
            torch.utils.data.DataLoader(val, batch_size=512))


class _DigitsSteps:
    """A small MLP on scikit-learn's digits (the LightningModule's methods)."""

    def __init__(self, lr: float = 0.05):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(),
                                       torch.nn.Linear(32, 10))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.net(x)
        self.log("val_loss", torch.nn.functional.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(-1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)


class Digits(_DigitsSteps, pl.LightningModule):
    pass


def _trainer(callbacks, epochs: int, module=pl) -> "pl.Trainer":
    return module.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False,
                          enable_checkpointing=False, enable_progress_bar=False,
                          enable_model_summary=False, callbacks=callbacks)


def train_digits(config):
    """Ray's Lightning example shape: resume from ``tune.get_checkpoint()`` with ``ckpt_path``
    (the trial's own checkpoint, or a PBT donor's), with the explored learning rate."""
    torch.set_num_threads(1)
    train, val = _loaders()
    model = Digits(config["lr"])
    callback = TuneReportCheckpointCallback(
        {"mean_accuracy": "val_acc", "loss": "val_loss"}, on="validation_end")
    trainer = _trainer([callback], config["epochs"])
    ckpt = tune.get_checkpoint()
    if ckpt is None:
        trainer.fit(model, train, val)
        return
    with ckpt.as_directory() as d:
        path = os.path.join(d, "checkpoint")
        donor_epoch = torch.load(path, weights_only=False)["epoch"]
        with open(os.path.join(tune.get_context().get_trial_dir(), "restores.jsonl"), "a") as f:
            f.write(json.dumps({"from": ckpt.path, "epoch": donor_epoch}) + "\n")
        trainer.fit(model, train, val, ckpt_path=path)


# -- unit behaviour (no trial) ------------------------------------------------------------


def _fit(callback, epochs=2, module=pl):
    torch.manual_seed(0)
    train, val = _loaders()
    model = Digits() if module is pl else type("Digits", (_DigitsSteps, module.LightningModule),
                                               {})()
    _trainer([callback], epochs, module).fit(model, train, val)


def test_classes_are_lightning_callbacks_built_on_first_use():
    assert issubclass(TuneReportCheckpointCallback, pl.Callback)
    assert issubclass(TuneReportCallback, TuneReportCheckpointCallback)
    assert issubclass(ptl.TuneCallback, pl.Callback)
    assert TuneReportCheckpointCallback.__module__ == "poptune.integration.pytorch_lightning"
    assert ptl.TuneReportCheckpointCallback is TuneReportCheckpointCallback  # built once


def test_reports_each_validation_end_with_a_checkpoint_not_the_sanity_check(monkeypatch):
    fake = FakeReport(monkeypatch)
    _fit(TuneReportCheckpointCallback({"acc": "val_acc"}), epochs=3)
    assert [files for _, files in fake.calls] == [["checkpoint"]] * 3
    assert all(set(m) == {"acc"} and type(m["acc"]) is float for m, _ in fake.calls)


def test_without_metrics_everything_logged_is_reported(monkeypatch):
    fake = FakeReport(monkeypatch)
    _fit(TuneReportCheckpointCallback(filename="trainer.ckpt", on="train_epoch_end"), epochs=1)
    ((metrics, files),) = fake.calls
    assert set(metrics) == {"train_loss", "val_loss", "val_acc"} and files == ["trainer.ckpt"]


def test_a_metric_not_logged_is_left_out_with_one_warning(monkeypatch, caplog):
    fake = FakeReport(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="poptune"):
        _fit(TuneReportCheckpointCallback(["val_acc", "val_f1"], save_checkpoints=False), epochs=2)
        _fit(TuneReportCheckpointCallback({"f1": "val_f1"}), epochs=1)  # nothing left: no report
    assert [(set(m), files) for m, files in fake.calls] == [({"val_acc"}, None)] * 2
    said = [r.getMessage() for r in caplog.records if "'val_f1'" in r.getMessage()]
    assert len(said) == 2  # once per callback, not once per epoch
    assert "train_loss, val_acc, val_loss" in said[0]


def test_report_callback_is_deprecated_and_reports_metrics_alone(monkeypatch):
    fake = FakeReport(monkeypatch)
    monkeypatch.setattr(ptl._TuneReportCallback, "_warned", False)
    with pytest.warns(UserWarning, match="`TuneReportCallback` is deprecated"):
        callback = TuneReportCallback("val_loss")
    _fit(callback, epochs=2)
    assert [files for _, files in fake.calls] == [None, None]


def test_bad_arguments_are_named():
    with pytest.raises(TuneConfigError, match=r"`on` must be one or more of the Lightning hooks "
                                              r".*validation_end.* got 'epoch_end'"):
        TuneReportCheckpointCallback(on="epoch_end")  # Keras's name, not Lightning's
    with pytest.raises(TuneConfigError, match="would trigger the hook again"):
        TuneReportCheckpointCallback(on=["validation_end", "save_checkpoint"])
    with pytest.raises(TuneConfigError, match="`filename` must be a plain file name"):
        TuneReportCheckpointCallback(filename="sub/ckpt")


def test_with_only_pytorch_lightning_installed_the_classes_derive_from_it(monkeypatch):
    import pytorch_lightning

    find_spec = ptl.importlib.util.find_spec
    monkeypatch.setattr(ptl.importlib.util, "find_spec",
                        lambda name: None if name == "lightning" else find_spec(name))
    cls = ptl.TuneReportCheckpointCallback
    monkeypatch.undo()
    assert issubclass(cls, pytorch_lightning.Callback) and not issubclass(cls, pl.Callback)
    fake = FakeReport(monkeypatch)
    _fit(cls({"acc": "val_acc"}), epochs=1, module=pytorch_lightning)
    assert [files for _, files in fake.calls] == [["checkpoint"]]


def test_reporting_outside_a_trial_warns_and_trains_on(monkeypatch):
    from poptune import session

    monkeypatch.setattr(session, "_warned_outside", set())
    with pytest.warns(UserWarning, match="`report` is meant to only be called inside"):
        _fit(TuneReportCheckpointCallback(), epochs=1)


def test_missing_lightning_gives_the_install_command(monkeypatch):
    from poptune._imports import MissingDependencyError

    for name in ("lightning", "lightning.pytorch", "pytorch_lightning"):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    monkeypatch.setattr(ptl.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'poptune\[lightning\]'"):
        ptl.TuneReportCheckpointCallback  # noqa: B018


# -- real trials --------------------------------------------------------------------------
@pytest.mark.slow
def test_fit_in_a_trial_reports_metrics_and_checkpoints_that_reload(tmp_path):
    grid = fit_fail_fast(tmp_path, train_digits, {"lr": 0.05, "epochs": 3}, "ptl",
                         metric="mean_accuracy", mode="max")
    assert grid.num_errors == 0
    result = grid[0]
    rows = result_rows(result.path)
    assert [r["training_iteration"] for r in rows] == [1, 2, 3]
    assert [r["checkpoint_dir_name"] for r in rows] == [
        "checkpoint_000000", "checkpoint_000001", "checkpoint_000002"]
    assert result.metrics["mean_accuracy"] == rows[-1]["mean_accuracy"] > 0.5
    with result.checkpoint.as_directory() as d:
        model = Digits.load_from_checkpoint(os.path.join(d, "checkpoint"))
    _, val = _loaders()
    x, y = val.dataset.tensors
    with torch.no_grad():
        acc = (model.net(x).argmax(-1) == y).float().mean().item()
    assert acc == pytest.approx(rows[-1]["mean_accuracy"], abs=1e-6)


@pytest.mark.slow
def test_pbt_exploits_resume_the_donors_trainer(tmp_path):
    pbt = PopulationBasedTraining(
        time_attr="training_iteration", perturbation_interval=2, seed=1, quantile_fraction=0.5,
        hyperparam_mutations={"lr": tune.uniform(0.001, 0.3)},
        synch=True)  # decide when both reached the boundary: the slow learner always copies
    grid = fit_fail_fast(tmp_path, train_digits,
                         {"lr": tune.grid_search([0.0005, 0.2]), "epochs": 6}, "ptlpbt",
                         scheduler=pbt, metric="mean_accuracy", mode="max")
    assert grid.num_errors == 0 and len(grid) == 2
    from_donor = 0
    for r in grid:
        path = os.path.join(r.path, "restores.jsonl")
        records = [json.loads(line) for line in open(path)] if os.path.exists(path) else []
        for rec in records:
            donor_dir, name = os.path.split(rec["from"])
            from_donor += donor_dir != r.path
            # the checkpoint holds the donor trainer's state after the epoch it reported with
            donor_rows = [row for row in result_rows(donor_dir)
                          if row["checkpoint_dir_name"] == name]
            assert [row["training_iteration"] for row in donor_rows] == [rec["epoch"] + 1]
        assert r.metrics["training_iteration"] == 6
    assert from_donor >= 1  # the slow learner copied the fast one's trainer
    assert min(r.metrics["mean_accuracy"] for r in grid) > 0.5
