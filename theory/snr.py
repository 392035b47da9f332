"""SNR matrix, its singular values and the renormalised features (spec 1 "SNR matrix", 5.1, 5.2).

``SNR = Sigma_W^{-1/2} Mbar`` (``p x C``, ``Mbar`` = count-weighted-centred class means as
columns); its nonzero singular values ``omega_1 >= ... >= omega_{C-1}`` drive the dynamics.
``Sigma_W^{-1/2}`` comes from ``eigh(Sigma_W)``, which also tests invertibility; the singular
values alone come from a Cholesky factor (same values, a fraction of the cost).
"""

from __future__ import annotations

from ._backend import (
    Array,
    as_float64,
    check_nonsingular,
    device_of,
    is_concrete,
    namespace,
    solve_lower_triangular,
    spd_eigh,
    to_float,
)
from .stats import ClassStats

#: What the singularity errors name, and the advice they give.
_WITHIN = "singular Sigma_W: the within-class covariance"
_ADVICE = ("the SNR and the renormalised features need an invertible within-class covariance "
           "(more samples per class than feature dimensions, and no exact collapse)")


def inverse_sqrt_within(stats: ClassStats) -> Array:
    """``Sigma_W^{-1/2}`` (symmetric), raising ``ValueError`` when ``Sigma_W`` is singular."""
    xp = namespace(stats.sigma_w)
    try:
        evals, evecs = spd_eigh(stats.sigma_w, xp, _WITHIN)
    except ValueError as exc:
        raise ValueError(f"{exc}; {_ADVICE}") from None
    return (evecs / xp.sqrt(evals)[None, :]) @ evecs.T


def snr_matrix(stats: ClassStats) -> Array:
    """``SNR = Sigma_W^{-1/2} Mbar`` with shape ``(p, C)`` (spec 1)."""
    return inverse_sqrt_within(stats) @ stats.centered_means.T


def _within_cholesky(stats: ClassStats) -> Array:
    """Lower Cholesky factor ``L`` of ``Sigma_W``, raising ``ValueError`` when ``Sigma_W`` is singular.

    Singular means: the factorisation fails (not positive definite; NaN under JAX) or its
    smallest pivot ``L_ii^2`` is not above ``p eps max_i (Sigma_W)_ii`` (a rank-deficient
    covariance leaves a round-off-sized pivot).
    """
    xp = namespace(stats.sigma_w)
    try:
        L = xp.linalg.cholesky(stats.sigma_w)
    except (ValueError, RuntimeError, ArithmeticError) as exc:  # numpy's and torch's LinAlgError
        raise ValueError(f"{_WITHIN} is not positive definite ({exc}); {_ADVICE}") from None
    if is_concrete(L):
        pivots = xp.linalg.diagonal(L)
        low = to_float(xp.min(pivots * pivots))
        top = to_float(xp.max(xp.linalg.diagonal(stats.sigma_w)))
        try:  # a NaN pivot (JAX's failed factorisation) is singular too
            check_nonsingular(low, top, stats.dim, _WITHIN,
                              "smallest Cholesky pivot {low:.3e}, largest variance {top:.3e}")
        except ValueError as exc:
            raise ValueError(f"{exc}; {_ADVICE}") from None
    return L


def snr_singular_values(stats: ClassStats) -> Array:
    """The ``C-1`` SNR singular values ``omega_j``, descending; zeros pad a rank below ``C-1`` (spec 1, 3.4).

    Computed as the singular values of ``L^{-1} Mbar`` with ``Sigma_W = L L^T`` (Cholesky): since
    ``L^{-1} Sigma_W^{1/2}`` is orthogonal, they equal those of ``SNR = Sigma_W^{-1/2} Mbar``,
    at a Cholesky factorisation and a triangular solve instead of an eigendecomposition.
    """
    xp = namespace(stats.means)
    s = xp.linalg.svdvals(solve_lower_triangular(_within_cholesky(stats), stats.centered_means.T, xp))
    s = xp.flip(xp.sort(s))
    C = stats.num_classes
    if s.shape[0] >= C - 1:
        return s[: C - 1]
    pad = xp.zeros((C - 1 - s.shape[0],), dtype=s.dtype, device=device_of(s))
    return xp.concat([s, pad])


def renormalize(features: Array, stats: ClassStats) -> Array:
    """Renormalised features ``X = Sigma_W^{-1/2} (H - mu_G 1^T)`` as rows: ``(H - mu_G) Sigma_W^{-1/2}`` (spec 5.2).

    Then ``Sigma_W(X) = I``, ``mu_G(X) = 0`` and ``SNR(X) = Mbar(X)``.
    """
    xp = namespace(features)
    X = as_float64(features, xp)
    if len(X.shape) != 2 or X.shape[1] != stats.dim:
        raise ValueError(f"shape mismatch: features must be (n, {stats.dim}), got {tuple(X.shape)}")
    return (X - stats.global_mean[None, :]) @ inverse_sqrt_within(stats)
