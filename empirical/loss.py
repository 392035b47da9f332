"""The training criterion and the forward pass that feeds it: one definition for runs, sweeps and the
sweep's memory estimate.  The MSE takes Hui & Belkin's rescaling ``mse_scale = (k, M)`` (math §3.6).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["PLAIN_MSE_SCALE", "check_mse_scale", "forward_loss", "network_loss", "parse_mse_scale",
           "scaled_mse_loss"]

#: ``(k, M)`` of the plain MSE (``nn.MSELoss()`` against one-hot targets).
PLAIN_MSE_SCALE: tuple[float, float] = (1.0, 1.0)


def check_mse_scale(value: Any, loss: str = "mse") -> tuple[float, float]:
    """``(k, M)`` as floats: two finite numbers > 0, ``(1, 1)`` unless ``loss == "mse"`` (else a ``ValueError``)."""
    if (isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise ValueError(f"mse_scale must be two numbers k,M, got {value!r}")
    for name, v in zip("kM", value):
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"mse_scale: {name} must be a finite number > 0, got {v!r}")
    k, M = float(value[0]), float(value[1])
    if loss != "mse" and (k, M) != PLAIN_MSE_SCALE:
        raise ValueError(f"mse_scale {k:g},{M:g} applies to loss 'mse' only, not {loss!r}")
    return k, M


def parse_mse_scale(text: str) -> tuple[float, float]:
    """``"k,M"`` (``--mse-scale``) as two numbers > 0 (:func:`check_mse_scale`); a one-line ``ValueError``."""
    try:
        k, M = (float(t) for t in text.split(","))
    except ValueError:
        raise ValueError(f"cannot parse --mse-scale {text!r}: expected two numbers k,M (e.g. 1,1)") from None
    return check_mse_scale((k, M))


def scaled_mse_loss(logits: torch.Tensor, y: torch.Tensor, num_classes: int, k: float = 1.0,
                    M: float = 1.0) -> torch.Tensor:
    """Hui & Belkin's rescaled square loss (math §3.6): the batch mean of
    ``(1/C) [k (f_c(x) - M)^2 + sum_{j != c} f_j(x)^2]`` for a sample ``x`` of class ``c``
    (``k = M = 1``: exactly ``nn.MSELoss()`` against one-hot targets).
    """
    targets = F.one_hot(y, num_classes).float()
    logits = logits.float()
    if k == 1.0 and M == 1.0:
        return F.mse_loss(logits, targets)
    weights = 1.0 + (float(k) - 1.0) * targets  # k on the true class's output, 1 elsewhere
    return torch.mean(weights * (logits - float(M) * targets) ** 2)


def network_loss(logits: torch.Tensor, y: torch.Tensor, num_classes: int, kind: str,
                 mse_scale: Sequence[float] = PLAIN_MSE_SCALE) -> torch.Tensor:
    """Training criterion: ``nn.MSELoss()`` against one-hot targets (math §7.1) with ``mse_scale = (k, M)``
    (math §3.6), or cross-entropy (``kind="ce"``, ``mse_scale`` then ``(1, 1)``)."""
    if kind not in ("mse", "ce"):
        raise ValueError(f"unknown loss {kind!r}: expected 'mse' or 'ce'")
    k, M = check_mse_scale(mse_scale, kind)
    if kind == "mse":
        return scaled_mse_loss(logits, y, num_classes, k, M)
    return F.cross_entropy(logits.float(), y)


def forward_loss(
    net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int, kind: str,
    autocast: Callable[[], AbstractContextManager[Any]] = nullcontext,
    mse_scale: Sequence[float] = PLAIN_MSE_SCALE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, logits)``: ``net(x)`` under ``autocast()`` (a context factory), :func:`network_loss` outside it."""
    with autocast():
        logits = net(x)
    return network_loss(logits, y, num_classes, kind, mse_scale), logits
