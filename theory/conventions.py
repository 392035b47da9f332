"""Mapping an optimiser's weight decay and a loss's reduction to the paper's ``lam`` (math §8 item 2).

A training objective ``R(reduction) + (wd/2)||theta||^2`` is a positive multiple ``k`` of the paper's (same
minimiser, time-rescaled flow); each of :data:`REDUCTIONS` fixes ``k`` and so ``lam`` (the table of math §8).
"""

from __future__ import annotations

REDUCTIONS = ("mean", "batch_mean", "half_batch_mean", "sum", "notebook")


def lam_from_weight_decay(
    weight_decay: float, *, reduction: str = "mean", num_classes: int | None = None, batch_size: int | None = None
) -> float:
    """The paper's ridge coefficient ``lam`` for weight decay ``wd`` under a loss reduction (math §8 item 2)."""
    wd = float(weight_decay)
    if not wd >= 0.0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    if reduction == "mean":
        if num_classes is None or int(num_classes) < 1:
            raise ValueError("reduction='mean' needs num_classes (the loss averages over the C outputs)")
        return int(num_classes) * wd / 2.0
    if reduction in ("batch_mean", "notebook"):
        return wd / 2.0
    if reduction == "half_batch_mean":
        return wd
    if reduction == "sum":
        if batch_size is None or int(batch_size) < 1:
            raise ValueError("reduction='sum' needs batch_size (the loss sums over the batch)")
        return wd / (2.0 * int(batch_size))
    raise ValueError(f"unknown reduction {reduction!r}; choose one of {REDUCTIONS}")


def flow_time_per_lr(
    *, reduction: str = "mean", num_classes: int | None = None, batch_size: int | None = None, momentum: float = 0.0
) -> float:
    """Flow time per unit of learning rate, ``dt / d(sum_k eta_k) = alpha / (1 - mu)`` (math §6.5 items 1-2).

    ``alpha = wd / lam(wd)`` is the factor by which the training loss of ``reduction`` exceeds the paper's
    ``L`` (math §8), and ``mu`` the heavy-ball momentum: a run's flow time at unit speed on the raw features
    (``kappa = 1``) is ``flow_time_per_lr(...) * lr_weighted_steps``, to first order in the learning rate.
    """
    mu = float(momentum)
    if not 0.0 <= mu < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
    if reduction == "notebook":
        raise ValueError("reduction='notebook' is a reading of lambda, not a loss: name the loss's reduction")
    alpha = 1.0 / lam_from_weight_decay(1.0, reduction=reduction, num_classes=num_classes, batch_size=batch_size)
    return alpha / (1.0 - mu)
