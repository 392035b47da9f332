"""NCMonitorCallback in a real (tiny) Lightning fit on digits, CPU: the lines equal empirical.measurement.measure."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

pl = pytest.importorskip("lightning.pytorch", reason="PyTorch Lightning not installed (optional extra "
                         "'lightning': pip install -e '.[lightning]')")

# below the skip: these imports need Lightning (E402 on purpose)
from empirical import runs  # noqa: E402
from empirical.lightning import NCMonitorCallback  # noqa: E402
from empirical.measurement import measure  # noqa: E402
from empirical.schema import read_run_log  # noqa: E402

C = 10


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = torch.tensor((X - X.mean(0)) / (X.std(0) + 1e-8), dtype=torch.float32)[:800]
    return X, torch.tensor(y)[:800]


class Module(pl.LightningModule):
    def __init__(self, lr=0.05, wd=5e-4):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 48), nn.ReLU())
        self.fc = nn.Linear(48, C)
        self.lr, self.wd = lr, wd

    def forward(self, x):
        return self.fc(self.net(x))

    def forward_with_features(self, x):  # only for the reference, empirical.measurement.measure
        h = self.net(x)
        return self.fc(h), h

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self(x), nn.functional.one_hot(y, C).float())

    def validation_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self(x), nn.functional.one_hot(y, C).float())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9, weight_decay=self.wd)


def _fit(module, loader, callback, epochs):
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[callback])
    trainer.fit(module, loader)
    return trainer


def test_callback_lines_equal_measure(digits, tmp_path):
    X, y = digits
    torch.manual_seed(0)
    module = Module()
    loader = DataLoader(TensorDataset(X, y), batch_size=100, shuffle=True, generator=torch.Generator().manual_seed(0))
    cb = NCMonitorCallback(classifier_attr="fc", out=tmp_path / "run", epochs=[0, 2, 3], train=(X, y), loss="mse")
    trainer = _fit(module, loader, cb, 3)
    log = read_run_log(tmp_path / "run")
    assert [r["epoch"] for r in log.records] == [0, 2, 3]
    last = log.records[-1]
    # after fit the weights are those measured at the end of epoch 3: same data, same code -> equal keys
    ref = measure(module, X, y, C, weight_decay=5e-4)
    for k in set(ref) - {"measure_time_s"}:
        assert last[k] == ref[k], k
    assert last["step"] == trainer.global_step == 24
    assert last["lr_weighted_steps"] == pytest.approx(0.05 * 24, rel=1e-12)  # constant lr: lr * steps
    assert log.records[0]["step"] == 0 and log.records[0]["lr_weighted_steps"] == 0.0
    assert log.config_value("weight_decay") == 5e-4  # read from the optimiser
    assert log.config_value("model") == "Module"
    assert log.config_value("loss") == "mse" and log.config_value("loss_reduction") == "mean"
    # a fresh fit into the same directory would measure epochs 0, 2, 3 again: refused before training
    again = NCMonitorCallback(classifier_attr="fc", out=tmp_path / "run", epochs=[0, 2, 3], train=(X, y), loss="mse")
    with pytest.raises(ValueError, match=r"metrics.jsonl already holds epoch\(s\) \[0, 2, 3\] that this fit would "
                                         r"measure again"):
        _fit(Module(), loader, again, 3)
    assert [r["epoch"] for r in read_run_log(tmp_path / "run").records] == [0, 2, 3]


def test_lr_weighted_steps_counts_optimiser_steps(digits, tmp_path):
    """With accumulate_grad_batches=2, 8 batches per epoch take 4 optimiser steps: the flow time is lr * steps."""
    X, y = digits
    torch.manual_seed(0)
    cb = NCMonitorCallback(classifier_attr="fc", out=tmp_path / "run", epochs=[2], train=(X[:200], y[:200]))
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[cb],
                         accumulate_grad_batches=2)
    trainer.fit(Module(), DataLoader(TensorDataset(X, y), batch_size=100))
    last = runs.read_metrics(tmp_path / "run")[-1]
    assert last["step"] == trainer.global_step == 8
    assert last["lr_weighted_steps"] == pytest.approx(0.05 * 8, rel=1e-12)  # constant lr: lr * steps


def test_callback_default_dataloaders_every_n(digits, tmp_path):
    """Measured on the Trainer's own training and validation dataloaders, every 2nd epoch."""
    X, y = digits
    torch.manual_seed(0)
    module = Module()
    ordered = DataLoader(TensorDataset(X, y), batch_size=100)
    cb = NCMonitorCallback(classifier_attr="fc", out=tmp_path / "run", every_n_epochs=2, test="val")
    trainer = pl.Trainer(max_epochs=4, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[cb])
    trainer.fit(module, ordered, DataLoader(TensorDataset(X[:200], y[:200]), batch_size=100))
    recs = runs.read_metrics(tmp_path / "run")
    assert [r["epoch"] for r in recs] == [2, 4]
    ref = measure(module, X, y, C, weight_decay=5e-4, test_x=X[:200], test_y=y[:200], batch_size=100)
    for k in ("loss", "l_nc1", "nc1", "train_error", "test_error", "snr_singular_values"):
        assert recs[-1][k] == ref[k], k  # same batches in the same order: exact


def test_callback_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="not both"):
        NCMonitorCallback(classifier_attr="fc", out=tmp_path, every_n_epochs=2, epochs=[1])
    with pytest.raises(ValueError, match="every_n_epochs must be a positive integer"):
        NCMonitorCallback(classifier_attr="fc", out=tmp_path, every_n_epochs=0)
    cb = NCMonitorCallback(classifier_attr="net.1", out=tmp_path)
    with pytest.raises(ValueError, match="classifier_attr 'net.1' is a ReLU, not the network's last nn.Linear"):
        cb.setup(None, Module())
    with pytest.raises(ValueError, match="loss must be one of 'mse', 'ce', 'unknown'"):
        NCMonitorCallback(classifier_attr="fc", out=tmp_path, loss="l2")
    cb = NCMonitorCallback(classifier_attr="head", out=tmp_path)
    with pytest.raises(ValueError, match="classifier_attr 'head': no such submodule in Module"):
        cb.setup(None, Module())


def test_empirical_imports_without_lightning():
    code = ("import sys; sys.modules['lightning'] = None; sys.modules['pytorch_lightning'] = None; "
            "import empirical, empirical.monitor, empirical.schema; "
            "sys.exit(1 if any(m.startswith('lightning') for m in sys.modules if sys.modules[m]) else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
