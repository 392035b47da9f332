"""PyTorch Lightning callback: neural-collapse measurements at epoch ends through :class:`empirical.NCMonitor`.

Optional extra (``pip install -e '.[lightning]'``); ``import empirical`` never imports Lightning.  Works with the
``lightning`` package (``lightning.pytorch``) and, when that is absent, with ``pytorch_lightning``: use the
callback with the Trainer of the same package.

Example::

    from empirical.lightning import NCMonitorCallback
    cb = NCMonitorCallback(classifier_attr="net.fc", out="runs/pl", every_n_epochs=5, loss="mse")
    Trainer(max_epochs=100, callbacks=[cb]).fit(module, datamodule)
    # python -m paper_checks compare runs/pl

One line per measured epoch in ``out/metrics.jsonl``, as :func:`empirical.train` records (math §2, §3, §4, §8).
The LightningModule's ``forward`` must run the network; the batches must be ``(x, y)`` pairs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

try:
    import lightning.pytorch as pl
except ImportError:  # pragma: no cover - the older package name
    try:
        import pytorch_lightning as pl  # type: ignore[no-redef]  # the same API under the older name
    except ImportError:
        raise ImportError("empirical.lightning needs PyTorch Lightning: pip install -e '.[lightning]' "
                          "(or pip install lightning)") from None

from torch import nn

from .monitor import LOSSES, NCMonitor, _is_tensor_pair

__all__ = ["NCMonitorCallback"]


class NCMonitorCallback(pl.Callback):
    """Measure neural collapse with :class:`~empirical.NCMonitor` at the end of chosen training epochs.

    Args:
        classifier_attr: path of the last ``nn.Linear`` inside the LightningModule (``"fc"``, ``"net.fc"``,
            ``"net.2"`` for an ``nn.Sequential``), resolved by ``get_submodule``.
        out: run directory (``config.json`` written once, ``metrics.jsonl`` appended).
        every_n_epochs: measure after every ``n``-th epoch (epochs counted from 1; default 1); or
        epochs: the epochs to measure (0 = before training starts).  Give one of the two.
        train: ``(x, y)`` tensors or an iterable of ``(x, y)`` batches; default the Trainer's training
            dataloader (under DDP its ``DistributedSampler`` pads the last batches with repeated samples).
        test: test data likewise, or ``"val"``: the Trainer's (first) validation dataloader; default none.
        num_classes: ``C`` (default: the classifier's ``out_features``).
        weight_decay: the optimiser's ``wd`` (default: the first optimiser's first parameter group's).
        loss, output, reduction, batch_size, precision: as :class:`~empirical.NCMonitor`.

    A fit that would measure an epoch already in ``out/metrics.jsonl`` stops at its start with a one-line
    ``ValueError``.  Each line also holds ``step``, ``lr`` and ``lr_weighted_steps`` (the flow time of
    ``paper_checks compare``).
    """

    def __init__(self, *, classifier_attr: str, out: str | os.PathLike, every_n_epochs: int | None = None,
                 epochs: Sequence[int] | None = None, train: Any = None, test: Any = None,
                 num_classes: int | None = None, weight_decay: float | None = None, reduction: str = "mean",
                 loss: str = "unknown", output: Any = None, batch_size: int = 1024, precision: str | None = None):
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(map(repr, LOSSES))} (the training loss), got {loss!r}")
        if every_n_epochs is not None and epochs is not None:
            raise ValueError("give every_n_epochs or epochs, not both")
        if epochs is not None:
            bad = [e for e in epochs if isinstance(e, bool) or int(e) != e or e < 0]
            if bad:
                raise ValueError(f"epochs must be non-negative integers, got {bad}")
            self.epochs: set[int] | None = {int(e) for e in epochs}
            self.every_n_epochs = None
        else:
            n = 1 if every_n_epochs is None else every_n_epochs
            if isinstance(n, bool) or int(n) != n or n < 1:
                raise ValueError(f"every_n_epochs must be a positive integer, got {every_n_epochs!r}")
            self.epochs, self.every_n_epochs = None, int(n)
        if not isinstance(classifier_attr, str) or not classifier_attr:
            raise ValueError(f"classifier_attr must name a submodule (e.g. 'net.fc'), got {classifier_attr!r}")
        self.classifier_attr, self.out = classifier_attr, out
        self.train_data, self.test_data = train, test
        self.num_classes, self.weight_decay = num_classes, weight_decay
        self.monitor_options = {"reduction": reduction, "loss": loss, "output": output, "batch_size": batch_size,
                                "precision": precision}  # passed to NCMonitor as they are
        self.monitor: NCMonitor | None = None
        self.lr_weighted_steps = 0.0
        self._seen_step = 0

    def due(self, epoch: int) -> bool:
        """Whether ``epoch`` (completed epochs; 0 = before training) is measured."""
        if self.epochs is not None:
            return epoch in self.epochs
        return epoch > 0 and self.every_n_epochs is not None and epoch % self.every_n_epochs == 0

    # ---- Lightning hooks
    def setup(self, trainer, pl_module, stage: str | None = None) -> None:
        try:
            classifier = pl_module.get_submodule(self.classifier_attr)
        except AttributeError:
            raise ValueError(f"classifier_attr {self.classifier_attr!r}: no such submodule in "
                             f"{type(pl_module).__name__}") from None
        if not isinstance(classifier, nn.Linear):
            raise ValueError(f"classifier_attr {self.classifier_attr!r} is a {type(classifier).__name__}, "
                             "not the network's last nn.Linear")
        self._classifier = classifier

    def on_train_start(self, trainer, pl_module) -> None:
        self._seen_step = int(trainer.global_step)  # resumed runs start from the restored step
        wd = self.weight_decay
        if wd is None:
            wd = float(trainer.optimizers[0].param_groups[0].get("weight_decay", 0.0)) if trainer.optimizers else 0.0
        C = self.num_classes if self.num_classes is not None else self._classifier.out_features
        self.monitor = NCMonitor(pl_module, self._classifier, num_classes=C, out=self.out, weight_decay=wd,
                                 **self.monitor_options)
        done = trainer.current_epoch
        again = sorted(e for e in self.monitor.logged_epochs
                       if self.due(e) and (e > done or (e == 0 and done == 0)))
        if again:
            raise ValueError(f"{self.monitor.metrics_path} already holds epoch(s) {again} that this fit would measure "
                             "again (a fresh fit into an old run directory, or a resume from an older checkpoint): "
                             "pass another out, or remove those lines")
        if self.due(0) and trainer.current_epoch == 0:
            self._measure(trainer, 0)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # optimiser steps, not batches: with accumulate_grad_batches > 1 a batch may take no step
        step = int(trainer.global_step)
        self.lr_weighted_steps += self._lr(trainer) * (step - self._seen_step)
        self._seen_step = step

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch + 1
        if self.due(epoch):
            self._measure(trainer, epoch)

    def state_dict(self) -> dict[str, Any]:
        return {"lr_weighted_steps": self.lr_weighted_steps}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.lr_weighted_steps = float(state_dict.get("lr_weighted_steps", 0.0))

    # ---- helpers
    @staticmethod
    def _lr(trainer) -> float:
        return float(trainer.optimizers[0].param_groups[0]["lr"]) if trainer.optimizers else 0.0

    def _data(self, trainer, which: str):
        data = self.train_data if which == "train" else self.test_data
        if which == "train" and data is None:
            data = trainer.train_dataloader
            if data is None:
                raise ValueError("the Trainer has no training dataloader yet: pass train=(x, y) or a DataLoader")
        if which == "test" and isinstance(data, str):
            if data != "val":
                raise ValueError(f"test must be data or 'val', got {data!r}")
            data = trainer.val_dataloaders
            if isinstance(data, (list, tuple)) and data and not _is_tensor_pair(data, "test"):
                data = data[0]
            if data is None:
                raise ValueError("test='val' but the Trainer has no validation dataloader (and a validation_step)")
        if isinstance(data, Iterable) and hasattr(data, "iterables"):  # Lightning's CombinedLoader
            data = data.iterables
        return data

    def _measure(self, trainer, epoch: int) -> None:
        train = self._data(trainer, "train")
        test = self._data(trainer, "test") if self.test_data is not None else None
        if self.monitor is None:  # setup() builds it, before the first measured epoch
            raise RuntimeError("NCCallback: an epoch measured before setup()")
        self.monitor.measure(epoch, train, test, step=int(trainer.global_step), lr=self._lr(trainer),
                             lr_weighted_steps=self.lr_weighted_steps)

