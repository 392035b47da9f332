"""Per-sample quantities of the classifier's outputs, summed over the samples: the loss's data term and NC4.

Both need the samples themselves (not only the class statistics): one pass over the features, one matrix
product per block (``W`` and the means stacked: one GEMM of width ``2C`` gives the scores and the distances).
The totals add over the batches of a stream (or DDP ranks).  Features may be float32; each block is converted
to float64 once, in row blocks on the host (:func:`theory._backend.host_block_rows`) that stay in cache.
"""

from __future__ import annotations

from ._backend import Array, as_float64, device_of, host_block_rows, namespace
from ._validation import (
    check_classifier,
    check_features_labels,
    check_finite_result,
    check_labels,
    check_lam,
    infer_num_classes,
)
from .stats import _one_hot
from .tiling import DEFAULT_TILE, check_tile


def _sq_norm(W: Array, b: Array | None, xp) -> Array:
    """``||W||_F^2 + ||b||^2`` (``||W||_F^2`` when ``b`` is ``None``): the ridge penalty's norm, and the
    squared distance of two classifiers when given their difference."""
    total = xp.sum(W * W)
    return total if b is None else total + xp.sum(b * b)


def ridge_penalty(W: Array, b: Array | None = None, lam: float = 0.0) -> Array:
    """``(lam/2)(||W||_F^2 + ||b||^2)``: the paper's weight-decay term of ``L`` (math §1, "Loss")."""
    check_lam(lam)
    xp = namespace(W, b)
    W = as_float64(W, xp)
    b = None if b is None else as_float64(b, xp, like=W)
    return 0.5 * lam * _sq_norm(W, b, xp)


def loss_from_totals(totals: dict, W: Array, b: Array | None = None, lam: float = 0.0) -> Array:
    """The paper's ``L = sq_residual / (2n) + (lam/2)(||W||_F^2 + ||b||^2)`` (math §1, "Loss") from
    :func:`sample_totals` (possibly summed over batches or ranks)."""
    return 0.5 * totals["sq_residual"] / totals["count"] + ridge_penalty(W, b, lam)


def sample_totals(
    features: Array,
    labels: Array,
    W: Array,
    b: Array | None = None,
    means: Array | None = None,
    *,
    num_classes: int | None = None,
    tile: int = DEFAULT_TILE,
) -> dict:
    """``{"count", "sq_residual", "ncc_mismatches", "ncc_errors", "errors"}`` of ``features (n, p)``.

    * ``sq_residual = sum_i ||W h_i + b - e_{y_i}||^2``, the data term of the paper's loss (math §1, "Loss");
    * ``ncc_mismatches = #{i : argmax_c (W h_i + b)_c != argmin_c ||h_i - mu_c||}`` (NC4, math §2.1);
    * ``ncc_errors``: the samples whose nearest class mean is not their class; ``errors``: those the classifier
      gets wrong (``argmax_c (W h_i + b)_c != y_i``).

    ``ncc_mismatches``, ``ncc_errors`` and ``errors`` are ``None`` unless the class ``means (C, p)`` are given.
    Every value is a float64 0-d array on the features' device.  With more than ``tile`` classes the row blocks
    have at most ``tile`` rows, so the ``2C x block`` temporaries stay ``O(tile * C)`` (math §2.3).
    """
    tile = check_tile(tile)
    xp = namespace(features, labels)
    check_features_labels(features, labels, xp, finite=False)  # NaN/Inf show in the sums (checked below)
    C = infer_num_classes(labels, xp, num_classes if num_classes is not None else W.shape[0])
    check_labels(labels, xp, C)
    n, p = int(features.shape[0]), int(features.shape[1])
    W = as_float64(W, xp, like=features)
    b = None if b is None else as_float64(b, xp, like=features)
    check_classifier(W, b, C, p, xp)
    V = W
    if means is not None:
        means = as_float64(means, xp, like=features)
        if tuple(means.shape) != (C, p):
            raise ValueError(f"shape mismatch: means must have shape (C, p) = ({C}, {p}), got {tuple(means.shape)}")
        V = xp.concat([W, means], axis=0)
        mean_sq = xp.sum(means * means, axis=1)
    sq, mism, ncc_err, err = (xp.zeros((), dtype=xp.float64, device=device_of(features)) for _ in range(4))
    step = host_block_rows(features) or max(n, 1)
    if C > tile:
        step = min(step, tile)
    for lo in range(0, n, step):
        X = as_float64(features[lo : lo + step], xp)
        y = labels[lo : lo + step]
        Zt = V @ X.T  # (C or 2C, block): the wide orientation runs ~2x faster than X @ V.T on CPU BLAS
        scores = Zt[:C, :]
        if b is not None:
            scores = scores + b[:, None]
        residual = scores - _one_hot(y, C, xp).T
        sq = sq + xp.sum(residual * residual)
        if means is not None:
            net = xp.argmax(scores, axis=0)
            ncc = xp.argmin(mean_sq[:, None] - 2.0 * Zt[C:, :], axis=0)
            mism = mism + xp.sum(xp.astype(net != ncc, xp.float64))
            ncc_err = ncc_err + xp.sum(xp.astype(ncc != y, xp.float64))
            err = err + xp.sum(xp.astype(net != y, xp.float64))
    check_finite_result(sq, features, xp)
    count = xp.asarray(float(n), dtype=xp.float64, device=device_of(features))
    if means is None:
        return {"count": count, "sq_residual": sq, "ncc_mismatches": None, "ncc_errors": None, "errors": None}
    return {"count": count, "sq_residual": sq, "ncc_mismatches": mism, "ncc_errors": ncc_err, "errors": err}
