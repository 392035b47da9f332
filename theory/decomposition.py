"""The MSE decomposition ``L = L_NC1 + L_NC2/3 + L_LS^perp`` (math §3.2, §3.3, §3.3b) and the loss.

The Huygens split (math §3.3 step 4) gives the first two terms at ``W~_LS``, completing the square (step 3)
``L_perp``; targets ``M e_c`` (``target_scale``, math §3.6) scale every term by ``M^2`` at ``W~ / M``.
"""

from __future__ import annotations

import math

from ._backend import Array, as_float64, device_of, namespace
from ._validation import check_classifier, check_lam
from .least_squares import TotalSpectrum, least_squares_solution
from .outputs import _sq_norm, loss_from_totals, sample_totals
from .stats import ClassStats
from .tiling import DEFAULT_TILE, check_tile, row_tiles


def huygens_split(
    stats: ClassStats, W: Array, b: Array | None, lam: float, *, tile: int = DEFAULT_TILE
) -> tuple[Array, Array]:
    """``((1/2) tr(W~(Sigma~_W + lam I)W~^T), (1/2) sum_c pi_c ||W mu_c + b - e_c||^2)`` (math §3.3 step 4).

    The second term never forms the ``C x C`` residual ``M W^T + 1 b^T - I`` whole (math §2.3):
    see :func:`means_residual`.
    """
    xp = namespace(stats.means)
    within = 0.5 * xp.sum((W @ stats.sigma_w) * W) + 0.5 * lam * _sq_norm(W, b, xp)
    return within, 0.5 * means_residual(stats, W, b, tile=tile)


def means_residual(stats: ClassStats, W: Array, b: Array | None, *, tile: int = DEFAULT_TILE) -> Array:
    """``sum_c pi_c ||W mu_c + b - e_c||^2`` in ``O(tile * C + C p + p^2)`` memory (math §2.3, §3.3 step 4).

    * ``C <= p + 1``: the residual rows directly, ``tile`` classes at a time (``O(C^2 p)`` flops, no
      cancellation: the value can be arbitrarily small when ``W~ M~`` fits ``I``).
    * ``C > p + 1``: through ``p x p`` quantities.  With ``sum_c pi_c (mu_c - mu_G) = 0``,
      ``sum_c pi_c ||W mu_c + b||^2 = tr(W Sigma_B' W^T) + ||W mu_G + b||^2`` where
      ``Sigma_B' = sum_c pi_c (mu_c - mu_G)(mu_c - mu_G)^T`` (recomputed from the means), so
      ``sum = tr(W Sigma_B' W^T) + ||W mu_G + b||^2 - 2 sum_c pi_c (w_c . mu_c + b_c) + 1``
      (``O(C p^2)`` flops).  The expansion cancels only when the value is small against 1, and here it
      cannot be: ``M~ W~^T`` has rank ``<= p + 1 < C``, so the value is at least the sum of the
      ``C - p - 1`` smallest ``pi_c`` (the best approximation of ``Pi^{1/2}`` of that rank), at least
      ``(C - p - 1)/n`` (Eckart-Young); the rounding error is ``~ eps`` times the terms, which are at most
      of the order of the value plus 1.
    """
    xp = namespace(stats.means)
    tile = check_tile(tile)
    C, p = stats.num_classes, stats.dim
    M, pi = stats.means, stats.weights
    if C > p + 1:
        centered = (M - stats.global_mean[None, :]) * xp.sqrt(pi)[:, None]
        spread = xp.sum((W @ (centered.T @ centered)) * W)
        offset = W @ stats.global_mean
        if b is not None:
            offset = offset + b
        diag = xp.sum(W * M, axis=1)
        if b is not None:
            diag = diag + b
        return spread + xp.sum(offset * offset) - 2.0 * xp.sum(pi * diag) + xp.sum(pi)
    total = xp.zeros((), dtype=xp.float64, device=device_of(M))
    cols = xp.arange(C, device=device_of(M))
    for lo, hi in row_tiles(C, tile):
        rows = xp.arange(lo, hi, device=device_of(M))
        residual = M[lo:hi] @ W.T - xp.astype(rows[:, None] == cols[None, :], xp.float64)
        if b is not None:
            residual = residual + b[None, :]
        total = total + xp.sum(pi[lo:hi, None] * residual * residual)
    return total


def _unscaled(W: Array, b: Array | None, target_scale: float) -> tuple[float, Array, Array | None]:
    """``(M, W / M, b / M)`` for targets ``M e_c`` (math §3.6); ``ValueError`` naming ``target_scale = M`` unless
    it is a finite number > 0."""
    if (isinstance(target_scale, bool) or not isinstance(target_scale, (int, float))
            or not (math.isfinite(target_scale) and target_scale > 0)):
        raise ValueError(f"target_scale must be a finite number > 0, got {target_scale!r}")
    M = float(target_scale)
    if M == 1.0:  # the plain MSE: no rescaling (mse_loss is differentiated on the flows' right-hand side)
        return M, W, b
    return M, W / M, None if b is None else b / M


def decompose(
    stats: ClassStats,
    W: Array,
    b: Array | None = None,
    lam: float = 0.0,
    spectrum: TotalSpectrum | None = None,
    *,
    on_singular: str = "pinv",
    tile: int = DEFAULT_TILE,
    target_scale: float = 1.0,
) -> dict:
    """``loss``, ``l_nc1``, ``l_nc23``, ``l_perp`` and derived scalars (math §3.2, §3.3b, §4).

    * ``loss`` — the paper's ``L(W, b, H)`` from the class statistics (Huygens split);
    * ``l_nc1 = (1/2) tr(W~_LS (Sigma~_W + lam I) W~_LS^T)``;
    * ``l_nc23 = (1/2) sum_c pi_c ||W~_LS mu~_c - e_c||^2`` (``= (1/(2C))||W~_LS M~ - I||_F^2`` balanced);
    * ``l_perp = (1/2) tr((W~ - W~_LS) A (W~ - W~_LS)^T) >= 0``;
    * ``l_central = l_nc1 + l_nc23``, ``rho_perp = l_perp / loss``,
      ``central_path_distance = ||W~ - W~_LS||_F / ||W~_LS||_F`` (math §4, toolkit additions);
    * ``ls_rank``: the rank of the normal matrix ``A`` used for ``W~_LS`` (``p + 1`` with bias, ``p`` without,
      fewer when ``A`` is singular and ``W~_LS = B A^+`` is the minimum-norm minimiser, rank_deficient.md §5).

    ``b=None`` selects the no-bias model.  Exact for any class counts and any ``lam >= 0``, a singular ``A``
    included; ``on_singular="raise"`` raises ``ValueError`` there instead (:func:`theory.least_squares_solution`).
    ``spectrum`` (:func:`theory.total_spectrum` of ``stats``) shares one eigendecomposition between several
    ``lam``.  No ``C x C`` matrix is formed (math §2.3; ``tile`` rows at a time).

    ``target_scale = M``: the targets are ``M e_c`` (Hui & Belkin, math §3.6); the energies are ``M^2`` times the
    plain terms at ``W~ / M``, and ``rho_perp``, ``central_path_distance`` and ``ls_rank`` do not change.
    """
    check_lam(lam)
    tile = check_tile(tile)
    xp = namespace(stats.means)
    W = as_float64(W, xp, like=stats.means)
    b = None if b is None else as_float64(b, xp, like=stats.means)
    check_classifier(W, b, stats.num_classes, stats.dim, xp)
    scale, W, b = _unscaled(W, b, target_scale)  # math §3.6: decompose W~ / M against e_c, energies times M^2
    sol = least_squares_solution(stats, lam=lam, bias=b is not None, spectrum=spectrum, on_singular=on_singular)
    W_ls, b_ls = sol.W, sol.b
    within, means_part = huygens_split(stats, W, b, lam, tile=tile)
    l_nc1, l_nc23 = huygens_split(stats, W_ls, b_ls, lam, tile=tile)
    dW = W - W_ls
    db = None if b is None else b - b_ls
    dist2 = _sq_norm(dW, db, xp)
    # l_perp = (1/2) tr(D A D^T) for D = [dW db] without forming A (math §3.2); dist2 is its lam I part
    shift = dW @ stats.global_mean if db is None else dW @ stats.global_mean + db
    l_perp = 0.5 * (xp.sum((dW @ stats.sigma_t) * dW) + lam * dist2 + xp.sum(shift * shift))
    loss = within + means_part
    norm2 = _sq_norm(W_ls, b_ls, xp)
    s2 = scale * scale
    return {
        "loss": s2 * loss,
        "l_nc1": s2 * l_nc1,
        "l_nc23": s2 * l_nc23,
        "l_perp": s2 * l_perp,
        "l_central": s2 * (l_nc1 + l_nc23),
        "rho_perp": l_perp / loss,
        "central_path_distance": xp.sqrt(dist2 / norm2),
        "ls_rank": xp.asarray(float(sol.rank), dtype=xp.float64, device=device_of(stats.means)),
    }


def mse_loss(
    features: Array, labels: Array, W: Array, b: Array | None = None, lam: float = 0.0, num_classes: int | None = None,
    *, target_scale: float = 1.0,
) -> Array:
    """The paper's loss computed directly from the outputs (math §1, "Loss"):

    ``L = (1/(2n)) sum_i ||W h_i + b - e_{y_i}||^2 + (lam/2)(||W||_F^2 + ||b||^2)``
    (:func:`theory.outputs.sample_totals` and :func:`theory.outputs.loss_from_totals`).
    ``target_scale = M``: the targets are ``M e_{y_i}`` (math §3.6), computed as ``M^2 L(W / M, b / M)``.
    """
    check_lam(lam)
    scale, W, b = _unscaled(W, b, target_scale)
    loss = loss_from_totals(sample_totals(features, labels, W, b, num_classes=num_classes), W, b, lam)
    return loss if scale == 1.0 else (scale * scale) * loss
