"""Mapping an optimiser's weight decay and a loss's reduction to the paper's ``lam`` (math §8 item 2).

The paper's objective is ``(1/(2n)) sum_i ||W h_i + b - y_i||^2 + (lam/2)||[W b]||^2``.  A
training objective ``R(reduction) + (wd/2)||theta||^2`` is a positive multiple ``k`` of the
paper's (same minimiser, time-rescaled flow) when ``k R = (1/(2n)) sum ||.||^2``:

* ``"mean"`` (``nn.MSELoss()``: mean over the batch and the ``C`` outputs): ``R = (1/(nC)) sum``,
  ``k = C/2``, so ``lam = C * wd / 2``;
* ``"batch_mean"`` (sum over outputs, mean over the batch): ``k = 1/2``, ``lam = wd / 2``;
* ``"half_batch_mean"`` (the paper's own ``(1/(2n)) sum``): ``k = 1``, ``lam = wd``;
* ``"sum"`` (``reduction='sum'`` per batch of size ``B``): ``k = 1/(2B)``, ``lam = wd / (2B)``;
* ``"notebook"``: the authors' notebook's reading ``lam = wd / 2`` (math §8; equal to
  ``"batch_mean"``, but the notebook trains with ``"mean"``, so it differs from the exact map by ``C``).
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
