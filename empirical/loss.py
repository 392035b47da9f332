"""The training criterion and the forward pass that feeds it: one definition for single runs
(:class:`empirical.step.TrainStep`), sweeps (whose members run that step) and the sweep's memory
estimate (:func:`empirical.sweep.memory.member_training_bytes`)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["forward_loss", "network_loss"]


def network_loss(logits: torch.Tensor, y: torch.Tensor, num_classes: int, kind: str) -> torch.Tensor:
    """Training criterion: ``nn.MSELoss()`` (mean over batch and ``C`` outputs) against one-hot
    targets (math §7.1, no target scaling), or cross-entropy (``kind="ce"``, for comparison)."""
    if kind == "mse":
        return F.mse_loss(logits.float(), F.one_hot(y, num_classes).float())
    if kind == "ce":
        return F.cross_entropy(logits.float(), y)
    raise ValueError(f"unknown loss {kind!r}: expected 'mse' or 'ce'")


def forward_loss(
    net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int, kind: str,
    autocast: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, logits)``: the forward pass of ``net`` on ``x`` under ``autocast()`` (a context factory:
    ``torch.autocast(...)`` or ``nullcontext``), the criterion :func:`network_loss` outside it (in float32)."""
    with autocast():
        logits = net(x)
    return network_loss(logits, y, num_classes, kind), logits
