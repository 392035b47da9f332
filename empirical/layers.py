"""Neural collapse at every layer: the outputs of named modules, measured in the last layer's pass (math §2, §3.5).

The features "at layer L" are the **output** of module ``L`` (Rangamani et al. 2023, He & Su 2023).  A
:class:`LayerTap` hooks each named module during the training-set pass of
:func:`empirical.measurement.measure_passes` (no second forward pass) and reduces its output at once
(:func:`reduce_output`): ``(n, p)`` as it is, ``(n,)`` as one feature, ``(n, C, ...)`` maps by ``"gap"``
(global average pooling, ``p = C``) or ``"flatten"`` (``p = C H W``).  Each layer's record
(:func:`layer_record`, keys :data:`LAYER_KEYS`) is composed of theory's functions only:

* ``nc1``, ``nc1_notebook``, ``nc2_*_means``, ``nc2_etf_distance`` (:func:`theory.nc_metrics`, math §2.1, §2.2);
* ``cdnv`` (:func:`theory.cdnv`, math §2.3) with ``Var_c = s_c / n_c``;
* the least-squares probe ``(W_LS, b_LS)`` at ridge ``probe_lam`` (:func:`theory.min_norm_least_squares`,
  math §3.1) and its decomposition ``probe_loss = L_NC1 + L_NC2/3``, ``l_perp = 0`` (math §3.5);
  ``identity_residual`` is relative to ``L(0) = 1/2``, the zero readout's loss (the probe may interpolate);
* ``nc4`` (nearest class centre against the probe's prediction), ``ncc_error``, ``probe_error``;
* ``dim`` (``p``), ``means_rank`` (rank of ``Sigma_B``) and ``ls_rank`` (the probe's normal matrix).

``all-blocks`` (:func:`block_names`): every residual block of a ``ResNet``, every hidden activation of an ``MLP``
or ``VGG``, every dense layer of a ``DenseNet``; other models name their modules.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

import theory

from .distributed import SINGLE, DistInfo, all_reduce_sum, merge_accumulator

__all__ = ["ALL_BLOCKS", "LAYER_KEYS", "LAYER_REDUCES", "LayerTap", "block_names", "layer_record", "reduce_output",
           "resolve_layers"]

#: Values of ``layer_reduce`` (``--layer-reduce``): how an ``(n, C, ...)`` map becomes ``(n, p)`` features.
LAYER_REDUCES: tuple[str, ...] = ("gap", "flatten")

#: The ``layers`` / ``--measure-layers`` value naming every block of an :mod:`empirical.models` network.
ALL_BLOCKS = "all-blocks"

#: Keys of one layer's record (``warnings`` comes on top when some quantity is undefined).
LAYER_KEYS: tuple[str, ...] = (
    "dim", "means_rank", "nc1", "nc1_notebook", "nc2_equinorm_means", "nc2_equiangular_means",
    "nc2_maxangle_means", "nc2_etf_distance", "nc4", "ncc_error", "cdnv", "tr_sigma_w",
    "probe_lam", "probe_loss", "probe_error", "l_nc1", "l_nc23", "l_perp", "identity_residual", "ls_rank",
)

_NC_KEYS = ("nc1", "nc1_notebook", "nc2_equinorm_means", "nc2_equiangular_means", "nc2_maxangle_means",
            "nc2_etf_distance")


def _unwrapped(model: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` / ``DataParallel`` wrapper (the names users see)."""
    inner = getattr(model, "module", None)
    return inner if isinstance(inner, nn.Module) else model


def block_names(model: nn.Module) -> list[str]:
    """The modules that ``all-blocks`` measures, in forward order; ``ValueError`` for a model without a rule."""
    from .models import MLP, VGG, DenseNet, ResNet
    from .models.densenet import _DenseLayer
    from .models.resnet import BasicBlock, Bottleneck

    model = _unwrapped(model)
    if isinstance(model, ResNet):
        kinds: tuple[type, ...] = (BasicBlock, Bottleneck)
    elif isinstance(model, DenseNet):
        kinds = (_DenseLayer,)
    elif isinstance(model, (MLP, VGG)):
        skip = (nn.Flatten, nn.Linear, nn.Conv2d, nn.MaxPool2d, nn.modules.batchnorm._BatchNorm)
        body = model.body
        return [f"body.{name}" for name, m in body.named_children()
                if not isinstance(m, skip) and type(m).__name__ != "GlobalAvgPool"]
    else:
        raise ValueError(f"layers={ALL_BLOCKS!r}: no block rule for a {type(model).__name__} (rules exist for "
                         "empirical's ResNet, MLP, VGG and DenseNet): name the modules")
    return [name for name, m in model.named_modules() if isinstance(m, kinds)]


def resolve_layers(model: nn.Module, layers: str | Sequence[str] | None) -> list[str]:
    """The module names to measure (``None``, ``"all-blocks"``, comma-separated or a sequence of names), checked
    against ``model`` (a one-line ``ValueError`` listing its module names)."""
    if layers is None:
        return []
    if isinstance(layers, str):
        if layers.strip() == ALL_BLOCKS:
            return block_names(model)
        layers = [name.strip() for name in layers.split(",") if name.strip()]
    names = list(layers)
    if not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"layers must be {ALL_BLOCKS!r} or module names, got {layers!r}")
    modules = dict(_unwrapped(model).named_modules())
    unknown = [n for n in names if n not in modules or n == ""]
    if unknown:
        known = ", ".join(n for n in modules if n)
        raise ValueError(f"layers: no module named {', '.join(map(repr, unknown))} in the model; its modules are: "
                         f"{known}")
    if len(set(names)) != len(names):
        raise ValueError(f"layers: a module is named twice in {names}")
    return names


def reduce_output(output: Any, reduce: str, name: str) -> torch.Tensor:
    """``(n, p)`` features of one module output; a non-tensor output raises a one-line ``ValueError``."""
    if not isinstance(output, torch.Tensor):
        raise ValueError(f"layers: module {name!r} returns a {type(output).__name__}, not a tensor: name a module "
                         "whose output is a tensor")
    if output.ndim == 0:
        raise ValueError(f"layers: module {name!r} returns a scalar, not per-sample features")
    h = output.detach()
    if h.ndim > 2 and reduce == "gap":
        return h.mean(dim=tuple(range(2, h.ndim)))  # a new tensor already
    return h.reshape(h.shape[0], -1).clone()  # a copy: later in-place modules (ReLU(inplace=True)) must not change it


def check_reduce(reduce: str) -> str:
    if reduce not in LAYER_REDUCES:
        raise ValueError(f"layer_reduce must be one of {list(LAYER_REDUCES)}, got {reduce!r}")
    return reduce


def check_ridge(ridge: float) -> float:
    if isinstance(ridge, bool) or not isinstance(ridge, (int, float)) or not ridge >= 0 or ridge == float("inf"):
        raise ValueError(f"layer_ridge must be a finite number >= 0 (the probe's lambda), got {ridge!r}")
    return float(ridge)


class LayerTap:
    """Forward hooks on named modules (:func:`resolve_layers`) keeping each batch's reduced outputs.

    ``with tap.attached(): <one pass>``, then :meth:`records` with the pass's labels; ``ridge``: the probe's
    ``lambda >= 0`` (math §3.5).
    """

    def __init__(self, model: nn.Module, names: str | Sequence[str], *, reduce: str = "gap", ridge: float = 0.0):
        self.names = resolve_layers(model, names)
        self.reduce, self.ridge = check_reduce(reduce), check_ridge(ridge)
        self._modules = dict(_unwrapped(model).named_modules())
        self.outputs: dict[str, list[torch.Tensor]] = {n: [] for n in self.names}

    def _hook(self, name: str):
        def hook(module, inputs, output) -> None:
            self.outputs[name].append(reduce_output(output, self.reduce, name))
        return hook

    @contextmanager
    def attached(self) -> Iterator[LayerTap]:
        """Hooks on while the block runs (the outputs of an earlier pass are dropped first)."""
        self.outputs = {n: [] for n in self.names}
        handles = [self._modules[n].register_forward_hook(self._hook(n)) for n in self.names]
        try:
            yield self
        finally:
            for h in handles:
                h.remove()

    @torch.no_grad()
    def check(self, model: nn.Module, x: torch.Tensor) -> None:
        """Run ``model`` (eval mode, restored) on the sample batch ``x``: a module that returns no tensor, or does
        not run exactly once, raises its one-line ``ValueError`` before a run writes anything."""
        was_training = model.training
        model.eval()
        try:
            with self.attached():
                model(x)
            self._check_ran(1)
        finally:
            model.train(was_training)
            self.outputs = {n: [] for n in self.names}

    def _check_ran(self, forwards: int) -> None:
        for name, outs in self.outputs.items():
            if len(outs) != forwards:
                raise ValueError(f"layers: module {name!r} ran {len(outs)} times in {forwards} forward pass(es): "
                                 "name a module that runs once per forward")

    def records(self, labels: Sequence[torch.Tensor], num_classes: int, info: DistInfo = SINGLE,
                tile: int = theory.DEFAULT_TILE) -> dict[str, dict[str, Any]]:
        """``{name: layer_record}`` of the last attached pass; ``labels``: that pass's label batches, in order."""
        self._check_ran(len(labels))
        out = {name: layer_record(list(zip(self.outputs[name], labels)), num_classes, ridge=self.ridge, info=info,
                                  tile=tile) for name in self.names}
        self.outputs = {n: [] for n in self.names}  # free the features
        return out


def _guarded(warnings: list[str], what: str, keys: Sequence[str], fn) -> dict[str, Any]:
    """``fn()``, or ``{key: None}`` with a warning when the quantity is undefined for these features."""
    try:
        return fn()
    except (ValueError, ArithmeticError, torch.linalg.LinAlgError) as exc:
        warnings.append(f"{what}: {exc}")
        return {k: None for k in keys}


def layer_record(batches: list[tuple[torch.Tensor, torch.Tensor]], num_classes: int, *, ridge: float = 0.0,
                 info: DistInfo = SINGLE, tile: int = theory.DEFAULT_TILE) -> dict[str, Any]:
    """The record of one layer from its ``(features (b, p), labels (b,))`` batches (keys :data:`LAYER_KEYS`;
    math §2.1-§2.3, §3.1, §3.5)."""
    from .measurement import stream_features

    C = int(num_classes)
    acc, kept = stream_features(iter(batches), C)
    stats = merge_accumulator(acc, info).finalize()
    warnings: list[str] = []
    rec: dict[str, Any] = {"dim": stats.dim}

    def nc() -> dict[str, Any]:
        values = theory.nc_metrics(stats, convention="paper", tile=tile)
        for key, reason in values.pop("unavailable", {}).items():
            warnings.append(f"nc_metrics: {key} unavailable: {reason}")
        return theory.to_float_dict(values)

    values = _guarded(warnings, "nc_metrics", _NC_KEYS + ("nc1_rank",), nc)
    rec.update({k: values.get(k) for k in _NC_KEYS})
    rec["means_rank"] = None if values.get("nc1_rank") is None else int(values["nc1_rank"])
    rec["tr_sigma_w"] = float(torch.trace(stats.sigma_w))  # tr Sigma_W (math §1)
    rec.update(_guarded(warnings, "cdnv", ("cdnv",), lambda: {"cdnv": _cdnv(stats, kept, info, tile)}))
    rec.update(_guarded(warnings, "probe", ("probe_loss", "l_nc1", "l_nc23", "l_perp", "identity_residual",
                                            "ls_rank", "nc4", "ncc_error", "probe_error"),
                              lambda: _probe(stats, kept, C, ridge, info, tile)))
    rec["probe_lam"] = ridge
    ordered = {k: rec[k] for k in LAYER_KEYS}
    if warnings:
        ordered["warnings"] = warnings
    return ordered


def _cdnv(stats, kept, info: DistInfo, tile: int) -> float:
    """Average CDNV (math §2.3) with ``Var_c = s_c / n_c`` summed over the kept batches and the ranks."""
    sums = torch.zeros(stats.num_classes, dtype=torch.float64, device=stats.means.device)
    for h, y in kept:
        sums = sums + theory.class_deviation_sums(h, y, stats.means)[0]
    all_reduce_sum(sums, info)
    return float(theory.cdnv(stats, sums / stats.counts, tile=tile))


def _probe(stats, kept, C: int, ridge: float, info: DistInfo, tile: int) -> dict[str, Any]:
    """The least-squares probe at ``ridge`` and its decomposition (math §3.5); ``nc4`` against its predictions."""
    # W~ = B A^+ from one eigh of A: the unique W_LS when A is invertible, the minimum-norm one otherwise (math §3.1,
    # rank_deficient.md §5); least_squares_solution would try a solve first and, on a singular A, eigh it again
    sol = theory.min_norm_least_squares(stats, lam=ridge, bias=True)
    # theory.decompose at W = W_LS without solving for W_LS again: its Huygens split at W_LS is (L_NC1, L_NC2/3)
    # and L_perp = (1/2) tr(0 A 0) = 0 exactly (math §3.5 step 1)
    l_nc1, l_nc23 = (float(v) for v in theory.huygens_split(stats, sol.W, sol.b, ridge, tile=tile))
    total = torch.zeros(5, dtype=torch.float64, device=stats.means.device)
    for h, y in kept:
        t = theory.sample_totals(h, y, sol.W, sol.b, stats.means, num_classes=C, tile=tile)
        total = total + torch.stack([t["sq_residual"], t["ncc_mismatches"], t["count"], t["ncc_errors"], t["errors"]])
    all_reduce_sum(total, info)
    totals = {"sq_residual": total[0], "count": total[2]}
    loss = float(theory.loss_from_totals(totals, sol.W, sol.b, lam=ridge))
    return {"probe_loss": loss, "l_nc1": l_nc1, "l_nc23": l_nc23, "l_perp": 0.0,
            "identity_residual": abs(loss - (l_nc1 + l_nc23)) / 0.5,  # relative to L(0) = 1/2 (math §3.5)
            "ls_rank": int(sol.rank), "nc4": float(total[1] / total[2]), "ncc_error": float(total[3] / total[2]),
            "probe_error": float(total[4] / total[2])}
