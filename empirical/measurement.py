"""Neural-collapse measurement of a network at one epoch (math §2, §3, §4, §7.2, §8).

One eval-mode pass over the training set streams the last-layer features ``h`` (the input of ``model.fc``)
into float64 class statistics (:class:`theory.ClassStatsAccumulator`), counts the network's errors and keeps
the feature batches, so NC4 and the loss computed from the outputs need no second forward pass
(``theory.sample_totals``).  The record is :func:`theory.metrics_record`'s (the same for every writer of a
run); every formula is :mod:`theory`'s:

* ``loss`` = paper ``L`` (math §1) at ``lam = theory.lam_from_weight_decay(wd, reduction, C)`` (math §8
  item 2; ``nn.MSELoss()``: ``lam = C wd / 2``), ``loss_nowd`` at ``lam = 0``;
* ``l_nc1``, ``l_nc23``, ``l_perp``, ``l_central``, ``rho_perp``, ``central_path_distance`` from
  ``theory.decompose`` (math §3.2, §3.3b, §4), and ``identity_residual``, a real check since ``loss`` comes
  from the samples and the terms from the streamed statistics;
* ``l_*_notebook`` at the notebook's ``lam_notebook = wd / 2`` (math §8); ``l_*_lam0`` at ``lambda = 0``
  (math §3.4), with ``ls_rank_lam0`` (rank_deficient.md §5);
* ``nc1``, ``nc2_*``, ``nc3`` (math §2.1, §2.2), ``nc4`` (NCC mismatch, math §2.1), ``tr_sigma_w`` (math §1),
  ``snr_singular_values`` (math §1, §5) on the support of ``Sigma_W`` (``snr_support``, ``snr_rank``,
  ``snr_dim``, ``snr_dropped_fraction``: rank_deficient.md §2);
* ``layers``: the records of :class:`empirical.layers.LayerTap`'s modules from the same pass (math §3.5).

A quantity that cannot be computed is recorded as ``None`` with an entry in ``warnings``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import torch

import theory

from .distributed import SINGLE, DistInfo, all_reduce_sum, merge_accumulator, shard


class FeatureModel(Protocol):
    """What a measurement reads of a model (the toolkit's networks, and the monitor's view of any module)."""

    @property
    def fc(self) -> torch.nn.Linear: ...

    @property
    def training(self) -> bool: ...

    def eval(self) -> Any: ...

    def train(self, mode: bool = True) -> Any: ...

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

#: Keys of one metrics record written by :func:`measure` (besides bookkeeping keys).
METRIC_KEYS: tuple[str, ...] = (
    "train_error", "train_count", "class_counts", "loss", "loss_nowd", "lam",
    "l_nc1", "l_nc23", "l_perp", "l_central", "rho_perp", "identity_residual", "central_path_distance",
    "nc1", "nc1_notebook",
    "nc2_equinorm_means", "nc2_equinorm_classifiers",
    "nc2_equiangular_means", "nc2_equiangular_classifiers",
    "nc2_maxangle_means", "nc2_maxangle_classifiers",
    "nc3", "nc4", "snr_singular_values", "snr_support", "snr_rank", "snr_dim", "snr_dropped_fraction",
    "lam_notebook", "l_nc1_notebook", "l_nc23_notebook", "l_perp_notebook",
    "l_nc1_lam0", "l_nc23_lam0", "l_perp_lam0", "l_central_lam0", "ls_rank_lam0",
)
@dataclass
class FeaturePass:
    """Result of one eval-mode pass over a (possibly sharded) dataset."""

    accumulator: Any  # theory.ClassStatsAccumulator merged over ranks (None without statistics)
    batches: list  # this rank's [(features (b, p) as the network computed them, labels (b,))]
    errors: int  # network errors, summed over ranks
    count: int  # samples, summed over ranks

    @property
    def features(self) -> torch.Tensor:
        """This rank's ``(n_local, p)`` features, concatenated (a copy)."""
        return torch.cat([h for h, _ in self.batches])

    @property
    def labels(self) -> torch.Tensor:
        return torch.cat([y for _, y in self.batches])

    def totals(self, W: torch.Tensor, b: torch.Tensor | None, num_classes: int, means=None,
               tile: int = theory.DEFAULT_TILE, info: DistInfo = SINGLE) -> dict:
        """``theory.sample_totals`` over this rank's batches, summed over ranks (float64 tensors).

        On CUDA the batches are concatenated first so the label / ``W`` validation (a host synchronisation)
        runs once, not per batch; on the CPU they stay separate (no synchronisation, no copy).
        """
        keys = ["sq_residual", "count"] + (["ncc_mismatches"] if means is not None else [])
        total = torch.zeros(len(keys), dtype=torch.float64, device=W.device)
        batches = self.batches
        if len(batches) > 1 and batches[0][0].device.type != "cpu":
            batches = [(self.features, self.labels)]
        for h, y in batches:
            t = theory.sample_totals(h, y, W, b, means, num_classes=num_classes, tile=tile)
            total = total + torch.stack([t[k] for k in keys])
        return {"ncc_mismatches": None, **dict(zip(keys, all_reduce_sum(total, info)))}


#: Values of ``measure(..., precision=)`` / ``TrainConfig.measure_precision``.
MEASURE_PRECISIONS: tuple[str, ...] = ("auto", "tf32", "fp32")


def resolve_precision(precision: str | None, device: torch.device) -> str | None:
    """``"auto"`` -> ``"tf32"`` on CUDA (PyTorch's default for convolutions), ``"fp32"`` elsewhere."""
    if precision is None:
        return None
    if precision not in MEASURE_PRECISIONS:
        raise ValueError(f"unknown measure_precision {precision!r}: expected one of {list(MEASURE_PRECISIONS)}")
    if precision == "auto":
        return "tf32" if device.type == "cuda" else "fp32"
    return precision


@contextmanager
def float32_precision(precision: str | None):
    """Inside the block, CUDA float32 convolutions and matmuls run on TF32 (``"tf32"``) or in IEEE float32
    (``"fp32"``); ``None`` leaves the global flags alone.  Restored afterwards.

    On an H100 TF32 makes a ResNet-18 measurement ~5x faster and moves the metrics by up to 4e-4 relative
    (benchmarks/RESULTS.md, "GPU").
    """
    if precision is None:
        yield
        return
    flags = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    on = precision == "tf32"
    torch.backends.cudnn.allow_tf32 = on
    torch.backends.cuda.matmul.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = flags


def classifier_of(model: FeatureModel) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Last-layer ``(W (C, p), b (C,) or None)`` of a model with an ``fc`` ``nn.Linear``, detached float64."""
    fc = model.fc
    W = fc.weight.detach().to(torch.float64)
    b = None if fc.bias is None else fc.bias.detach().to(torch.float64)
    return W, b


@torch.no_grad()
def feature_pass(
    model: FeatureModel,
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    *,
    batch_size: int = 1024,
    info: DistInfo = SINGLE,
    statistics: bool = True,
) -> FeaturePass:
    """One eval-mode pass (mode restored): network errors, cached features and, with ``statistics`` (not for
    the test set), float64 class statistics."""
    # contiguous eval batches; each rank takes its share of every batch
    shares = ((shard(x[lo:lo + batch_size], info), shard(y[lo:lo + batch_size], info))
              for lo in range(0, int(x.shape[0]), batch_size))
    return batches_pass(model, ((xb, yb) for xb, yb in shares if yb.numel()), num_classes, device=x.device,
                        info=info, statistics=statistics)


@torch.no_grad()
def batches_pass(
    model: FeatureModel,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    num_classes: int,
    *,
    device: torch.device,
    info: DistInfo = SINGLE,
    statistics: bool = True,
) -> FeaturePass:
    """:func:`feature_pass` over this rank's ``(x, y)`` batches, as given (each already on ``device``);
    ``ValueError`` when no rank had a sample."""
    was_training = model.training
    model.eval()
    errors = torch.zeros((), dtype=torch.int64, device=device)

    def forward_batches():
        nonlocal errors
        for xb, yb in batches:
            logits, h = model.forward_with_features(xb)
            errors += (logits.argmax(dim=1) != yb).sum()
            yield h, yb

    try:
        acc, kept = stream_features(forward_batches(), num_classes, statistics=statistics)
    finally:
        model.train(was_training)
    local = torch.stack([errors, torch.tensor(sum(int(yb.shape[0]) for _, yb in kept), device=device)])
    wrong, count = (int(v) for v in all_reduce_sum(local, info))  # summed over ranks in one collective
    if count == 0:
        raise ValueError("the data gave no samples")
    if acc is not None:
        acc = merge_accumulator(acc, info)
    return FeaturePass(acc, kept, wrong, count)


def stream_features(batches, num_classes: int, *, statistics: bool = True):
    """``(accumulator or None, [(features (b, p), labels (b,)), ...])``: float64 class statistics of the
    batches, and the batches kept as given (for NC4 and the direct loss)."""
    acc = theory.ClassStatsAccumulator(num_classes) if statistics else None
    kept = []
    for h, yb in batches:
        h = h.reshape(h.shape[0], -1)
        if acc is not None:
            acc.update(h, yb)
        kept.append((h, yb))
    return acc, kept


def metrics_from_pass(
    fp: FeaturePass,
    W: torch.Tensor,
    b: torch.Tensor | None,
    num_classes: int,
    *,
    weight_decay: float,
    loss_reduction: str = "mean",
    info: DistInfo = SINGLE,
    tile: int = theory.DEFAULT_TILE,
) -> dict[str, Any]:
    """Every training-set metric (:func:`theory.metrics_record`) from one :class:`FeaturePass` and ``(W, b)``."""
    C = int(num_classes)
    stats = fp.accumulator.finalize()
    lam = float(theory.lam_from_weight_decay(weight_decay, reduction=loss_reduction, num_classes=C))
    lam_nb = float(theory.lam_from_weight_decay(weight_decay, reduction="notebook"))
    totals = fp.totals(W, b, C, means=stats.means, tile=tile, info=info)
    return theory.metrics_record(stats, W, b, totals, fp.errors, lam=lam, lam_notebook=lam_nb, tile=tile)


def measure(
    model: FeatureModel,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    num_classes: int,
    *,
    weight_decay: float,
    loss_reduction: str = "mean",
    test_x: torch.Tensor | None = None,
    test_y: torch.Tensor | None = None,
    batch_size: int = 1024,
    info: DistInfo = SINGLE,
    precision: str | None = None,
    layers: Any = None,
    tile: int = theory.DEFAULT_TILE,
) -> dict[str, Any]:
    """All NC metrics of ``model`` on the training set (and the test error), as Python values.

    The decomposition is at ``lam = theory.lam_from_weight_decay(weight_decay, loss_reduction, C)`` (math §8
    item 2) and at the notebook's ``wd / 2``.  Returns the keys of :data:`METRIC_KEYS`, plus ``test_error`` /
    ``test_loss_nowd`` with a test set, ``measure_time_s``, ``warnings`` when some quantity was undefined and
    ``layers`` with a :class:`empirical.layers.LayerTap`.  ``precision`` (``"auto"``, ``"tf32"``, ``"fp32"``;
    ``None``: the global flags): :func:`float32_precision`.  ``tile``: rows per tile of the ``C x C``
    computations (math §2.3; memory ``O(tile^2)``).
    """
    C = int(num_classes)

    def passes(x: torch.Tensor, y: torch.Tensor, statistics: bool) -> Callable[[], FeaturePass]:
        return lambda: feature_pass(model, x, y, C, batch_size=batch_size, info=info, statistics=statistics)

    test = passes(test_x, test_y, False) if test_x is not None and test_y is not None else None
    return measure_passes(model, passes(train_x, train_y, True), test, C, weight_decay=weight_decay,
                          loss_reduction=loss_reduction, info=info, precision=precision, layers=layers, tile=tile)


def measure_passes(
    model: FeatureModel,
    train_pass: Callable[[], FeaturePass],
    test_pass: Callable[[], FeaturePass] | None,
    num_classes: int,
    *,
    weight_decay: float,
    loss_reduction: str,
    info: DistInfo = SINGLE,
    precision: str | None = None,
    layers: Any = None,
    tile: int = theory.DEFAULT_TILE,
) -> dict[str, Any]:
    """One metrics record (as :func:`measure`) from the passes that feed it; shared with ``empirical.NCMonitor``.

    ``train_pass()`` / ``test_pass()`` give the :class:`FeaturePass` of each set; ``layers``' hooks are on
    during the training pass only (math §3.5).
    """
    t0 = time.perf_counter()
    C = int(num_classes)
    W, b = classifier_of(model)
    with float32_precision(resolve_precision(precision, W.device)):
        with layers.attached() if layers is not None else nullcontext():
            fp = train_pass()
        out = metrics_from_pass(fp, W, b, C, weight_decay=weight_decay, loss_reduction=loss_reduction, info=info,
                                tile=tile)
        warnings = out.pop("warnings", [])
        if layers is not None:
            out["layers"] = layers.records([y for _, y in fp.batches], C, info=info, tile=tile)
        if test_pass is not None:
            tp = test_pass()
            out["test_error"] = tp.errors / tp.count
            test_totals = tp.totals(W, b, C, tile=tile, info=info)
            out["test_loss_nowd"] = float(theory.loss_from_totals(test_totals, W, b, lam=0.0))
    out["measure_time_s"] = time.perf_counter() - t0
    if warnings:
        out["warnings"] = warnings
    return out
