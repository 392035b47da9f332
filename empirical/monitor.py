"""Measure neural collapse in your own training loop (math §2, §3, §4, §7.2, §8).

:class:`NCMonitor` wraps any ``nn.Module`` whose last layer is an ``nn.Linear`` classifier
``f(x) = W h(x) + b``; the features ``h`` are that layer's *input*, captured by a forward hook while the
monitor measures.  Each :meth:`NCMonitor.measure` is one eval-mode pass over the training data computing
exactly what :func:`empirical.train` records, through the same code (:func:`empirical.measurement.measure_passes`);
one JSON line is appended to ``out/metrics.jsonl`` and ``out/config.json`` is written once, so
``python -m paper_checks compare out`` reads the directory::

    net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    mon = NCMonitor(net, net[-1], num_classes=10, out="runs/mine", weight_decay=5e-4, loss="mse")
    for epoch in range(1, 101):
        ...  # your training epoch
        mon.measure(epoch, train_loader, test_loader, lr=opt.param_groups[0]["lr"])

The forward may return the logits, a tuple, a dict or an object with ``.logits`` (:func:`select_logits`).
Under ``torchrun`` every rank calls :meth:`~NCMonitor.measure` and only rank 0 writes; tensor input ``(x, y)``
must then be the whole data set on every rank, an iterable (a DataLoader with a ``DistributedSampler``) gives
each rank its own samples.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

import theory
from theory.tiling import check_tile

from . import runs
from .distributed import DistInfo, current_dist_info
from .layers import LayerTap, _unwrapped
from .measurement import (
    METRIC_KEYS,
    FeaturePass,
    batches_pass,
    feature_pass,
    measure_passes,
    resolve_precision,
)

__all__ = ["LOSSES", "NCMonitor", "current_dist_info", "select_logits"]

#: The values of ``NCMonitor(loss=...)``, recorded as ``config.loss`` (the run schema's enum).
LOSSES: tuple[str, ...] = ("mse", "ce", "unknown")

#: Keys a monitor line always has besides :data:`empirical.measurement.METRIC_KEYS` (``**extra`` may not use them).
RESERVED_KEYS: frozenset[str] = frozenset(
    ("epoch", "test_error", "test_loss_nowd", "measure_time_s", "warnings", "layers") + METRIC_KEYS
)


class _FeatureTap:
    """Any module as a :class:`empirical.measurement.FeatureModel`: ``forward_with_features(x) -> (logits, h)``."""

    def __init__(self, model: nn.Module, classifier: nn.Linear, output: Any = None):
        self.model, self.fc, self.output = model, classifier, output

    @property
    def training(self) -> bool:
        return self.model.training

    def eval(self) -> None:
        self.model.eval()

    def train(self, mode: bool = True) -> None:
        self.model.train(mode)

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        calls: list[tuple[torch.Tensor, Any]] = []  # (the classifier's input, its output) per call
        handle = self.fc.register_forward_hook(lambda module, inputs, output: calls.append((inputs[0], output)))
        try:
            out = self.model(x)
        finally:
            handle.remove()
        if not calls:
            raise RuntimeError("the classifier was not called by the model's forward: pass the layer that computes "
                               "the model's output")
        h, fc_out = calls[-1]
        logits = select_logits(out, self.output)
        if self.output is None and isinstance(out, (tuple, list)) and logits is not fc_out:
            at = [i for i, t in enumerate(out) if t is fc_out]
            if at:  # e.g. forward returns (features, logits): the auto rule's first element is the wrong one
                raise ValueError(f"the model's tuple output holds the classifier's output at index {at[0]}, not 0: "
                                 f"pass output={at[0]} to NCMonitor")
        if logits.ndim != 2 or logits.shape != (h.shape[0], self.fc.out_features):
            raise ValueError(f"the selected model output has shape {tuple(logits.shape)}, expected the logits "
                             f"({h.shape[0]}, {self.fc.out_features}): pass output= naming the logits")
        return logits, h


def select_logits(output: Any, selector: Any = None) -> torch.Tensor:
    """The logits in a model's output.

    ``selector``: ``None`` (auto: a tensor itself; a tuple's first element; a mapping's ``"logits"``; an
    object's ``.logits``, as timm and Hugging Face outputs), a key or attribute name, a tuple index, or a
    callable ``output -> logits``.  Anything else, or a selection that is not a tensor, raises a one-line error.
    """
    if callable(selector):
        chosen, how = selector(output), "output=<callable>"
    elif selector is None:
        if isinstance(output, torch.Tensor):
            return output
        if isinstance(output, (tuple, list)) and output:
            chosen, how = output[0], "the first element of the model's tuple output"
        elif isinstance(output, Mapping):
            if "logits" not in output:
                raise ValueError(f"the model returns a dict without a 'logits' key (keys: {sorted(map(str, output))}): "
                                 "pass output='<key of the logits>' to NCMonitor")
            chosen, how = output["logits"], "the model output's 'logits'"
        elif hasattr(output, "logits"):
            chosen, how = output.logits, "the model output's .logits"
        else:
            raise ValueError(f"cannot find the logits in a model output of type {type(output).__name__}: pass "
                             "output= (a key, attribute name, index or callable) to NCMonitor")
    elif isinstance(selector, str):
        if isinstance(output, Mapping):
            if selector not in output:
                raise ValueError(f"output={selector!r}: the model's dict output has no such key "
                                 f"(keys: {sorted(map(str, output))})")
            chosen = output[selector]
        elif hasattr(output, selector):
            chosen = getattr(output, selector)
        else:
            raise ValueError(f"output={selector!r}: the model output ({type(output).__name__}) has no such key or "
                             "attribute")
        how = f"output={selector!r}"
    elif isinstance(selector, int) and not isinstance(selector, bool):
        if not (isinstance(output, (tuple, list)) and -len(output) <= selector < len(output)):
            raise ValueError(f"output={selector}: the model output is a {type(output).__name__}, not a tuple with "
                             "that index")
        chosen, how = output[selector], f"output={selector}"
    else:
        raise ValueError(f"output must be None, a key or attribute name, an index or a callable, got {selector!r}")
    if not isinstance(chosen, torch.Tensor):
        raise ValueError(f"{how} is a {type(chosen).__name__}, not the logits tensor: pass output= selecting them")
    return chosen


def check_labels(y: torch.Tensor, what: str) -> None:
    """Labels must be integer class indices of shape ``(n,)``: a one-line ``ValueError`` saying what to pass."""
    if y.ndim == 2:
        raise ValueError(f"{what}: labels must be integer class indices of shape (n,); got {y.dtype} labels of "
                         f"shape {tuple(y.shape)} (one-hot or scores?): pass y.argmax(1)")
    if y.ndim != 1:
        raise ValueError(f"{what}: labels must be integer class indices of shape (n,); got shape {tuple(y.shape)}")
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise ValueError(f"{what}: labels must be integer class indices of shape (n,); got {y.dtype}: pass "
                         "y.long() (class indices) or, for one-hot rows, y.argmax(1)")


def _is_tensor_pair(data: Any, what: str) -> bool:
    """True for ``(x, y)`` tensors, checked: ``x`` of shape ``(n, ...)``, integer labels ``(n,)``."""
    if not (isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data)):
        return False
    x, y = data
    check_labels(y, what)
    if x.ndim < 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"{what}: x of shape {tuple(x.shape)} and y of shape {tuple(y.shape)} do not match "
                         "(expected x (n, ...) and labels y (n,))")
    return True


def _logged_epochs(path: Path) -> set[int]:
    """The epochs of an existing ``metrics.jsonl`` (lines that do not parse are skipped)."""
    if not path.is_file():
        return set()
    records = (rec for _, rec, _ in runs.parse_jsonl(path.read_text(encoding="utf-8").splitlines())[0])
    epochs = (rec.get("epoch") for rec in records if isinstance(rec, dict))
    return {e for e in epochs if isinstance(e, int) and not isinstance(e, bool)}


class NCMonitor:
    """Neural-collapse measurements of any network with a last ``nn.Linear`` layer, one JSON line per call.

    Args:
        model: the network (any ``nn.Module``, DDP-wrapped too); its output is ``classifier``'s output.
        classifier: the model's last ``nn.Linear`` ``(W (C, p), b)``; its input is the feature vector ``h``.
        num_classes: ``C``.
        out: the run directory (created); ``metrics.jsonl`` is appended to, ``config.json`` written once.
        weight_decay: the optimiser's ``wd``; the decomposition is at ``lam = theory.lam_from_weight_decay(wd,
            reduction, C)`` (math §8), at the notebook's ``wd / 2`` and at ``lam = 0`` (math §3.4).
        reduction: the training loss's reduction (:data:`theory.REDUCTIONS`).
        loss: ``"mse"``, ``"ce"`` or ``"unknown"`` (default), recorded as ``config.loss``: claims of the MSE
            theory apply to ``"mse"`` runs only.
        output: where the logits are in the model's output (:func:`select_logits`).
        batch_size: evaluation batch size for tensor input.
        precision: ``"auto"``, ``"tf32"``, ``"fp32"`` or ``None``, as :func:`empirical.measurement.measure`.
        info: rank and world size; default: the current ``torch.distributed`` process group, if any.
        layers: modules whose *outputs* are measured too (:mod:`empirical.layers`, math §3.5): names, a
            comma-separated string or ``"all-blocks"``; each line then has a ``layers`` key ``{name: record}``.
        layer_reduce: ``"gap"`` (default) or ``"flatten"``; layer_ridge: the layer probes' ``lambda >= 0``.
        tile: rows per tile of the ``C x C`` computations (math §2.3; memory ``O(tile^2)``).

    ``out`` may hold an earlier run of the same settings (lines are appended); an ``out`` that is a file,
    other settings, or an epoch already logged raise a one-line error.
    """

    def __init__(self, model: nn.Module, classifier: nn.Linear, *, num_classes: int, out: str | os.PathLike,
                 weight_decay: float = 0.0, reduction: str = "mean", loss: str = "unknown", output: Any = None,
                 batch_size: int = 1024, precision: str | None = None, info: DistInfo | None = None,
                 layers: str | list[str] | None = None, layer_reduce: str = "gap", layer_ridge: float = 0.0,
                 tile: int = theory.DEFAULT_TILE):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(classifier, nn.Linear):
            raise TypeError(f"classifier must be the model's last torch.nn.Linear layer, got "
                            f"{type(classifier).__name__}")
        if not any(m is classifier for m in model.modules()):
            raise ValueError("classifier is not a submodule of model: pass the model's own last nn.Linear layer")
        if isinstance(num_classes, bool) or int(num_classes) != num_classes or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        if classifier.out_features != num_classes:
            raise ValueError(f"classifier has {classifier.out_features} outputs but num_classes={num_classes}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(map(repr, LOSSES))} (the training loss), got {loss!r}")
        if not (output is None or callable(output) or isinstance(output, str)
                or (isinstance(output, int) and not isinstance(output, bool))):
            raise ValueError(f"output must be None, a key or attribute name, an index or a callable, got {output!r}")
        if Path(out).exists() and not Path(out).is_dir():
            raise ValueError(f"out={str(out)!r} is an existing file; out is the run directory (config.json and "
                             "metrics.jsonl go inside it): pass a directory path")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.num_classes = int(num_classes)
        # validates weight_decay and reduction with their own one-line errors
        self.lam = float(theory.lam_from_weight_decay(weight_decay, reduction=reduction, num_classes=self.num_classes))
        self.lam_notebook = float(theory.lam_from_weight_decay(weight_decay, reduction="notebook"))
        self.model, self.classifier = model, classifier
        self.weight_decay, self.reduction, self.loss = float(weight_decay), reduction, loss
        self.batch_size, self.precision = int(batch_size), precision
        self.tile = check_tile(tile)
        resolve_precision(precision, torch.device("cpu"))  # the name is checked now, not at the first measurement
        self.out = Path(out)
        self.info = current_dist_info() if info is None else info
        self._tap = _FeatureTap(model, classifier, output)
        self._layers = None if layers is None else LayerTap(model, layers, reduce=layer_reduce,
                                                            ridge=layer_ridge)
        self.layers_rule = layers if isinstance(layers, str) else None
        self._config_written = (self.out / runs.CONFIG_FILE).is_file()
        if self._config_written:
            self._check_existing_config()
        self.logged_epochs: set[int] = _logged_epochs(self.metrics_path)  # read on every rank (one decision)

    @property
    def device(self) -> torch.device:
        """The device of the classifier's weight (where the model runs)."""
        return self.classifier.weight.device

    @property
    def metrics_path(self) -> Path:
        return self.out / runs.METRICS_FILE

    def config(self, per_class: int | None = None) -> dict[str, Any]:
        """The ``config.json`` this monitor writes (``config`` + ``environment``, as :func:`empirical.train`)."""
        from .schema import SCHEMA_VERSION

        cfg = {"num_classes": self.num_classes, "weight_decay": self.weight_decay, "loss": self.loss,
               "loss_reduction": self.reduction, "lam": self.lam, "lam_notebook": self.lam_notebook,
               "model": type(_unwrapped(self.model)).__name__,
               "feature_dim": self.classifier.in_features, "per_class": per_class}
        out = {"schema_version": SCHEMA_VERSION, "source": "empirical.NCMonitor", "config": cfg,
               "environment": {**runs.environment_info(str(self.device)), "world_size": self.info.world_size}}
        if self._layers is not None:
            cfg.update(measure_layers=self.layers_rule or self._layers.names, layer_reduce=self._layers.reduce,
                       layer_ridge=self._layers.ridge)
            out["layers"] = {"names": self._layers.names, "rule": self.layers_rule, "reduce": self._layers.reduce,
                             "ridge": self._layers.ridge}
        return out

    def _check_existing_config(self) -> None:
        stored = runs.read_config(self.out).get("config", {})
        for key, mine in (("num_classes", self.num_classes), ("weight_decay", self.weight_decay),
                          ("loss_reduction", self.reduction), ("loss", self.loss)):
            if key == "loss" and "unknown" in (stored.get(key), mine):
                continue  # not a contradiction: one of the two does not know
            if key in stored and stored[key] != mine:
                raise runs.RunError(f"{self.out / runs.CONFIG_FILE} records {key}={stored[key]!r} but this monitor "
                                    f"has {key}={mine!r}: use another out directory")

    def _pass(self, data: Any, what: str, statistics: bool) -> FeaturePass:
        """One :class:`FeaturePass` over ``(x, y)`` tensors or over ``(x, y)`` batches, each checked and moved to
        the model's device."""
        device, C = self.device, self.num_classes

        def checked():
            for i, item in enumerate(data):
                if not (isinstance(item, (tuple, list)) and len(item) >= 2 and isinstance(item[0], torch.Tensor)
                        and isinstance(item[1], torch.Tensor)):
                    raise TypeError(f"{what}: batch {i} is not an (x, y) pair of tensors (got {type(item).__name__})")
                check_labels(item[1], f"{what}: batch {i}")
                yield item[0].to(device), item[1].to(device)

        try:
            if _is_tensor_pair(data, what):
                x, y = (t.to(device) for t in data)
                return feature_pass(self._tap, x, y, C, batch_size=self.batch_size, info=self.info,
                                    statistics=statistics)
            if isinstance(data, (str, bytes, torch.Tensor)) or not isinstance(data, Iterable):
                raise TypeError(f"{what} must be a pair of tensors (x, y) with y of shape (n,), or an iterable of "
                                f"(x, y) batches, got {type(data).__name__}")
            return batches_pass(self._tap, checked(), C, device=device, info=self.info, statistics=statistics)
        except ValueError as exc:
            if "gave no samples" in str(exc):
                raise ValueError(f"{what}: the data gave no samples") from None
            raise

    @torch.no_grad()
    def measure(self, epoch: int, train: Any, test: Any = None, **extra: Any) -> dict[str, Any]:
        """Measure every NC quantity on ``train`` (and the test error on ``test``); append one line; return it.

        ``train`` / ``test``: a pair of tensors ``(x, y)`` or an iterable of ``(x, y)`` batches (a DataLoader).
        The line holds ``epoch``, the ``extra`` keywords (e.g. ``lr=...``, ``lr_weighted_steps=...``) and the
        keys of :func:`empirical.measurement.measure`.  Every rank returns the line; rank 0 writes it.
        Non-finite eval-mode features (a diverged network) raise :class:`theory.NonFiniteError`; nothing is written.
        """
        if isinstance(epoch, bool) or int(epoch) != epoch or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
        if int(epoch) in self.logged_epochs:
            raise ValueError(f"epoch {int(epoch)} is already in {self.metrics_path}: measure each epoch once (another "
                             "epoch number, or another out directory for a new run); nothing appended")
        clash = sorted(set(extra) & RESERVED_KEYS)
        if clash:
            raise ValueError(f"extra key(s) {clash} would overwrite measured keys; rename them")
        test_pass = None if test is None else (lambda: self._pass(test, "test", statistics=False))
        try:
            m = measure_passes(self._tap, lambda: self._pass(train, "train", statistics=True), test_pass,
                               self.num_classes, weight_decay=self.weight_decay, loss_reduction=self.reduction,
                               info=self.info, precision=self.precision, layers=self._layers, tile=self.tile)
        except theory.NonFiniteError as exc:
            earlier = (f"the earlier lines are kept in {self.metrics_path}" if self.metrics_path.is_file()
                       else "none written before")
            raise theory.NonFiniteError(
                f"epoch {int(epoch)}: {exc} in eval mode: the network has diverged; no line written for this "
                f"epoch ({earlier})"
            ) from None
        record = {"epoch": int(epoch), **extra, **m}
        if self.info.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            if not self._config_written:
                counts = m["class_counts"]
                per_class = counts[0] if len(set(counts)) == 1 else None
                runs.write_config(self.out, self.config(per_class))
                self._config_written = True
            runs.append_jsonl(self.metrics_path, record)
        self.logged_epochs.add(int(epoch))
        return record

