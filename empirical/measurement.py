"""Neural-collapse measurement of a network at one epoch (math §2, §3, §4, §7.2, §8).

One eval-mode pass over the training set computes, per batch, the network's outputs and
the last-layer features ``h`` (the input of ``model.fc``).  The pass

* streams float64 class statistics into :class:`theory.ClassStatsAccumulator`
  (counts, means, pooled within-class scatter; one pass, in-place ``syrk`` updates);
* counts the network's errors ``argmax_c f(x)_c != y``;
* keeps the feature batches on the training device as the network computed them (float32;
  ``n x p`` in all), so nothing is recomputed or lost.

With the class means known after the pass, NC4 and the loss computed directly from the
outputs come from one more sweep over the kept batches (``theory.sample_totals``: one GEMM
with ``[W; M]`` per block, float64), without a second forward pass.  Three ridges share one
eigendecomposition of ``Sigma_T`` (``theory.total_spectrum``).  Every formula is
:mod:`theory`'s; this module only gathers inputs and names the outputs:

* ``loss`` = paper ``L`` (math §1) with ``lam = theory.lam_from_weight_decay(wd, reduction,
  C)`` (math §8 item 2; ``nn.MSELoss()`` is reduction ``"mean"``: ``lam = C wd / 2``),
  computed directly from the features and ``(W, b)``; ``loss_nowd`` the same with ``lam = 0``;
* ``l_nc1``, ``l_nc23``, ``l_perp``, ``l_central``, ``rho_perp``, ``central_path_distance``
  from ``theory.decompose`` (math §3.2, §3.3b, §4) at that ``lam``;
  ``identity_residual = |loss - (l_nc1 + l_nc23 + l_perp)| / loss``, a real check because
  ``loss`` is a sum over samples of the network's outputs and the three terms come from the
  streamed statistics;
* ``lam_notebook`` = ``wd / 2`` and ``l_*_notebook``: the same decomposition at the
  notebook's reading of ``lambda`` (math §8);
* ``l_*_lam0``: the decomposition at ``lambda = 0``, the theory's central path (math §3.4), whose
  terms equal the closed forms in the SNR singular values;
* ``nc1``, ``nc1_notebook``, ``nc2_*``, ``nc3`` from ``theory.nc_metrics`` (math §2.1, §2.2),
  ``nc4`` = NCC mismatch fraction (math §2.1), ``snr_singular_values`` (math §1, §5);
* ``snr_support`` (``"full"``, or ``"range"`` when ``Sigma_W`` is singular, e.g. dead ReLU units or
  ``p >= n - C``), ``snr_rank`` (``r = rank Sigma_W`` used), ``snr_dim`` (``p``) and
  ``snr_dropped_fraction`` (the share of the between-class energy in ``null(Sigma_W)``) from
  ``theory.snr.snr_support`` (rank_deficient.md §2): the SNR singular values are those on the support of
  ``Sigma_W``, equal to the full-space values whenever ``Sigma_W`` is invertible;
* ``ls_rank_lam0``: the rank of the ``lambda = 0`` normal matrix (``p + 1`` with bias when ``Sigma_T``
  is invertible; fewer when it is singular, where ``W_LS`` is the minimum-norm minimiser and the
  decomposition stays exact, rank_deficient.md §5);
* ``tr_sigma_w``: ``tr Sigma_W`` (math §1);
* ``layers`` (only when named modules are measured, :class:`empirical.layers.LayerTap`): ``{module name: record}``
  from the outputs of those modules in the same training-set pass (math §3.5; :mod:`empirical.layers`).

The record itself is composed by :func:`theory.metrics_record` (the same for every writer of a run,
``simulate``'s flows included); this module gathers its inputs in torch terms.

A quantity that cannot be computed (``Sigma_W = 0``; an NC quantity ``theory.nc_metrics`` names
as unavailable) is recorded as ``None`` with an entry in ``warnings``.
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
    """What a measurement reads of a model: the toolkit's networks (:class:`empirical.models.base.FeatureClassifier`)
    and the monitor's view of any module through its classifier (``forward_with_features``, ``fc``, the mode)."""

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
        if not self.batches:
            return torch.zeros((0, 0))
        return torch.cat([h for h, _ in self.batches])

    @property
    def labels(self) -> torch.Tensor:
        if not self.batches:
            return torch.zeros((0,), dtype=torch.int64)
        return torch.cat([y for _, y in self.batches])

    def totals(self, W: torch.Tensor, b: torch.Tensor | None, num_classes: int, means=None,
               info: DistInfo = SINGLE) -> dict:
        """``theory.sample_totals`` over this rank's batches, summed over ranks (float64 tensors).

        Off the CPU (CUDA) the kept batches are concatenated on the device first and
        ``sample_totals`` runs once: each call validates the labels and ``W`` (host
        synchronisations), which per batch would stall the device dozens of times per
        measurement, while the copy is cheap in device memory (n x p float32).  On the CPU the
        batches stay separate: the validation costs no synchronisation there, and a
        concatenated copy (123 MB for 60,000 x 512) would only cost memory and time.
        """
        sq = torch.zeros((), dtype=torch.float64, device=W.device)
        mism = torch.zeros((), dtype=torch.float64, device=W.device)
        count = torch.zeros((), dtype=torch.float64, device=W.device)
        batches = self.batches
        if len(batches) > 1 and batches[0][0].device.type != "cpu":
            batches = [(self.features, self.labels)]
        for h, y in batches:
            t = theory.sample_totals(h, y, W, b, means, num_classes=num_classes)
            sq, count = sq + t["sq_residual"], count + t["count"]
            if means is not None:
                mism = mism + t["ncc_mismatches"]
        summed = all_reduce_sum(torch.stack([sq, mism, count]), info)
        return {"sq_residual": summed[0], "ncc_mismatches": summed[1] if means is not None else None,
                "count": summed[2]}


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
    """Inside the block, CUDA float32 convolutions and matmuls run on TF32 tensor cores (``"tf32"``)
    or in IEEE float32 (``"fp32"``); ``None`` leaves the global flags alone.  Restored afterwards.

    Measured on an H100 (benchmarks/RESULTS.md, "GPU"): one measurement of a ResNet-18 (60,000
    images) takes 0.61 s with TF32 and 3.17 s without; TF32 moves the measured metrics by up to
    4e-4 relative (true float32 against the CPU: 1.2e-6).  The CPU has no TF32: both modes are float32.
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


def _local_slices(n: int, batch_size: int, info: DistInfo):
    """Contiguous eval batches over ``range(n)``; each rank gets its share of every batch."""
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(start + batch_size, n))
        idx = shard(idx, info)
        if idx.numel():
            yield int(idx[0]), int(idx[-1]) + 1


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
    """One eval-mode pass: float64 class statistics, network errors and cached features.

    ``model`` must provide ``forward_with_features(x) -> (logits, features)``.  The model is
    put in eval mode (and restored to its previous mode afterwards).  With ``statistics``
    false, only errors (and features) are collected (e.g. for the test set).
    """
    slices = ((x[lo:hi], y[lo:hi]) for lo, hi in _local_slices(int(x.shape[0]), batch_size, info))
    return batches_pass(model, slices, num_classes, device=x.device, info=info, statistics=statistics)


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
    """:func:`feature_pass` over this rank's ``(x, y)`` batches, as given (each already on ``device``).

    The model (``forward_with_features``) runs in eval mode, restored afterwards; errors, counts and the
    statistics are reduced over ranks.  ``ValueError`` when no rank had a sample.
    """
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
    count = torch.tensor(sum(int(yb.shape[0]) for _, yb in kept), dtype=torch.int64, device=device)
    all_reduce_sum(errors, info)
    all_reduce_sum(count, info)
    if int(count) == 0:
        raise ValueError("the data gave no samples")
    if acc is not None:
        acc = merge_accumulator(acc, info)
    return FeaturePass(acc, kept, int(errors), int(count))


def stream_features(batches, num_classes: int, *, statistics: bool = True):
    """Accumulate ``(features, labels)`` batches into float64 class statistics
    (``theory.ClassStatsAccumulator``) and keep the batches, as given, for NC4 and the direct loss.

    Returns ``(accumulator or None, [(features (b, p), labels (b,)), ...])``.
    """
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
    """Every training-set metric from one :class:`FeaturePass` and the classifier ``(W, b)``.

    The record is :func:`theory.metrics_record`'s (see the module docstring for the keys); this function
    gathers its inputs: the class statistics, the sample totals over the kept batches (summed over ranks),
    the network's error count and the two ridges of the weight decay.  Quantities that are undefined for
    these features are ``None`` and explained in ``warnings``.
    """
    C = int(num_classes)
    stats = fp.accumulator.finalize()
    lam = float(theory.lam_from_weight_decay(weight_decay, reduction=loss_reduction, num_classes=C))
    lam_nb = float(theory.lam_from_weight_decay(weight_decay, reduction="notebook"))
    # the loss straight from the samples' outputs and NC4: one sweep over the kept batches
    totals = fp.totals(W, b, C, means=stats.means, info=info)
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

    ``precision`` (``"auto"``, ``"tf32"``, ``"fp32"``; ``None``: the global flags) sets the float32
    arithmetic of the forward passes on CUDA (:func:`float32_precision`); the statistics are float64
    either way.

    ``lam = theory.lam_from_weight_decay(weight_decay, reduction=loss_reduction,
    num_classes=C)`` is the ridge of the paper's loss matching the optimiser (math §8 item 2);
    the notebook's reading ``wd / 2`` is reported alongside.  Returns a dict with the keys
    of :data:`METRIC_KEYS` (plus ``test_error`` / ``test_loss_nowd`` with a test set,
    ``measure_time_s``, and ``warnings`` when some quantity was undefined).  ``layers`` (an
    :class:`empirical.layers.LayerTap`) adds the ``layers`` key: the named modules' records from the same pass.
    ``tile``: rows per tile of the ``C x C`` computations (math §2.3; memory ``O(tile^2)``, not ``O(C^2)``).
    """
    with float32_precision(resolve_precision(precision, train_x.device)):
        return _measure(model, train_x, train_y, num_classes, weight_decay=weight_decay,
                        loss_reduction=loss_reduction, test_x=test_x, test_y=test_y, batch_size=batch_size, info=info,
                        layers=layers, tile=tile)


def _measure(model, train_x, train_y, num_classes, *, weight_decay, loss_reduction, test_x, test_y, batch_size,
             info, layers, tile) -> dict[str, Any]:
    C = int(num_classes)
    test = None
    if test_x is not None and test_y is not None:
        def test():
            return feature_pass(model, test_x, test_y, C, batch_size=batch_size, info=info, statistics=False)
    return measure_passes(model, lambda: feature_pass(model, train_x, train_y, C, batch_size=batch_size, info=info),
                          test, C, weight_decay=weight_decay, loss_reduction=loss_reduction, info=info, layers=layers,
                          tile=tile)


def measure_passes(
    model: FeatureModel,
    train_pass: Callable[[], FeaturePass],
    test_pass: Callable[[], FeaturePass] | None,
    num_classes: int,
    *,
    weight_decay: float,
    loss_reduction: str,
    info: DistInfo = SINGLE,
    layers: Any = None,
    tile: int = theory.DEFAULT_TILE,
) -> dict[str, Any]:
    """One metrics record from the passes that feed it (shared by :func:`measure` and ``empirical.NCMonitor``).

    ``train_pass()`` gives the training set's :class:`FeaturePass` (with statistics), ``test_pass()`` (optional)
    the test set's; ``model.fc`` is the classifier (:func:`classifier_of`).  Returns the keys of
    :data:`METRIC_KEYS` (:func:`metrics_from_pass`), ``test_error`` / ``test_loss_nowd`` with a test pass,
    ``measure_time_s`` (both passes and the metrics) and ``warnings`` when some quantity was undefined.
    ``layers`` (:class:`empirical.layers.LayerTap` or ``None``): its hooks are on during the training pass only,
    and its records are the line's ``layers`` key (math §3.5).
    """
    t0 = time.perf_counter()
    C = int(num_classes)
    with layers.attached() if layers is not None else nullcontext():
        fp = train_pass()
    W, b = classifier_of(model)
    out = metrics_from_pass(fp, W, b, C, weight_decay=weight_decay, loss_reduction=loss_reduction, info=info,
                            tile=tile)
    warnings = out.pop("warnings", [])
    if layers is not None:
        out["layers"] = layers.records([y for _, y in fp.batches], C, info=info, tile=tile)
    if test_pass is not None:
        tp = test_pass()
        out["test_error"] = tp.errors / tp.count
        out["test_loss_nowd"] = float(theory.loss_from_totals(tp.totals(W, b, C, info=info), W, b, lam=0.0))
    out["measure_time_s"] = time.perf_counter() - t0
    if warnings:
        out["warnings"] = warnings
    return out
