"""The least-squares (ridge) classifier of the features: the central path's classifier.

Math §3.1 (and §3.3b for any class counts): the non-augmented normal equations, the bias eliminated by the
Schur complement of ``1 + lam``, solved through a symmetric eigendecomposition of their matrix ``K`` (also the
singularity test), never an explicit inverse.  A singular normal matrix (``lam = 0`` with ``p >= n`` or dead
units) gets the minimum-norm minimiser ``W~_LS = B A^+``, for which ``L = L_NC1 + L_NC2/3 + L_perp`` stays exact
(``docs/rank_deficient.md`` §5).
"""

from __future__ import annotations

from typing import NamedTuple

from ._backend import (
    Array,
    SingularMatrixError,
    device_of,
    eye,
    is_concrete,
    is_nonsingular,
    namespace,
    numerical_rank,
    spd_eigh,
    to_float,
)
from ._validation import check_lam
from .stats import ClassStats


class TotalSpectrum(NamedTuple):
    """``eigh(Sigma_T)``: ascending eigenvalues ``(p,)`` and eigenvectors ``(p, p)`` as columns.

    One decomposition serves the least-squares classifier at every ridge ``lam``
    (:func:`least_squares_classifier`'s ``spectrum=``): ``Sigma_T + lam I`` has the same
    eigenvectors and eigenvalues shifted by ``lam``, and the rank-one term
    ``c mu_G mu_G^T`` of the normal matrix is applied by the Sherman-Morrison formula.
    """

    evals: Array
    evecs: Array


def total_spectrum(stats: ClassStats) -> TotalSpectrum:
    """The eigendecomposition of ``Sigma_T`` shared by the ridge solves (see :class:`TotalSpectrum`)."""
    xp = namespace(stats.sigma_t)
    evals, evecs = xp.linalg.eigh(stats.sigma_t)
    return TotalSpectrum(evals, evecs)


def _solve_shifted_rank_one(
    rhs: Array, spectrum: TotalSpectrum, lam: float, mu: Array, c: float, xp
) -> Array | None:
    """Solve ``X (Sigma_T + lam I + c mu mu^T) = rhs`` from ``eigh(Sigma_T)`` (Sherman-Morrison).

    With ``S = Sigma_T + lam I = V diag(e + lam) V^T`` and ``u = S^{-1} mu``:
    ``(S + c mu mu^T)^{-1} = S^{-1} - c u u^T / (1 + c mu^T u)``, so
    ``X = rhs S^{-1} - (c / (1 + c mu^T u)) (rhs S^{-1} mu) u^T``.  The denominator is at least 1
    (``c >= 0``, ``S`` positive definite), so the update is stable.  Returns ``None`` when ``S``
    is numerically singular (smallest shifted eigenvalue not above ``p eps`` times the largest).
    """
    shifted = spectrum.evals + lam
    if is_concrete(shifted):
        low, top = to_float(xp.min(shifted)), to_float(xp.max(xp.abs(shifted)))
        if not is_nonsingular(low, top, shifted.shape[0]):
            return None
    V = spectrum.evecs

    def right_solve(R: Array) -> Array:  # R S^{-1}
        return ((R @ V) / shifted[None, :]) @ V.T

    X = right_solve(rhs)
    u = right_solve(mu[None, :])[0]  # (c = 0 at lam = 0 with bias: the update vanishes exactly)
    return X - (c / (1.0 + c * xp.sum(mu * u))) * (X @ mu)[:, None] * u[None, :]


#: Values of ``least_squares_classifier(..., on_singular=)``.
ON_SINGULAR = ("pinv", "raise")


class LeastSquaresSolution(NamedTuple):
    """The least-squares classifier with the rank of the normal matrix it was solved with.

    ``W (C, p)``, ``b (C,)`` or ``None``; ``rank``: the rank of ``A`` used (``dim`` when ``A`` is
    invertible, fewer for the minimum-norm pseudo-inverse solution); ``dim``: the size ``q`` of ``A``
    (``p + 1`` with bias, ``p`` without).
    """

    W: Array
    b: Array | None
    rank: int
    dim: int


def min_norm_least_squares(stats: ClassStats, lam: float = 0.0, bias: bool = True) -> LeastSquaresSolution:
    """The minimum-norm solution ``W~ = B A^+`` of the normal equations ``W~ A = B`` (math §3.1; rank_deficient.md §5).

    ``A^+ = U_r Lambda_r^{-1} U_r^T`` from ``eigh(A)``, keeping the eigenvalues above ``q * eps *
    lambda_max(A)`` (the toolkit's singularity rule, :func:`theory._backend.is_nonsingular`).  Equal to the
    unique solution when ``A`` is invertible; with a singular ``A`` it still satisfies ``W~ A = B``
    (the rows of ``B`` lie in ``range(A)``), so the decomposition stays exact.  Needs concrete values
    (not inside a JAX trace).
    """
    check_lam(lam)
    xp = namespace(stats.means)
    pi, M, mu = stats.weights, stats.means, stats.global_mean
    # math §3.3 step 1 / §3.3b: A = [[Sigma_T + mu_G mu_G^T + lam I, mu_G], [mu_G^T, 1 + lam]], B = [pi_c mu~_c^T]_c
    # (C x (p+1)); without bias the top-left block and [pi_c mu_c^T]_c
    A = stats.sigma_t + mu[:, None] * mu[None, :] + lam * eye(stats.dim, xp, M)
    B = pi[:, None] * M
    if bias:
        corner = xp.full((1, 1), 1.0 + lam, dtype=xp.float64, device=device_of(M))
        A = xp.concat([xp.concat([A, mu[:, None]], axis=1), xp.concat([mu[None, :], corner], axis=1)], axis=0)
        B = xp.concat([B, pi[:, None]], axis=1)
    evals, evecs = xp.linalg.eigh(A)
    q = int(A.shape[0])
    if not is_concrete(evals):
        raise ValueError("the minimum-norm least-squares classifier needs concrete values (not a JAX trace)")
    rank, tol = numerical_rank(evals, xp)
    keep = evals > tol
    inv = xp.where(keep, 1.0 / xp.where(keep, evals, xp.ones_like(evals)), xp.zeros_like(evals))
    Wt = ((B @ evecs) * inv[None, :]) @ evecs.T
    return LeastSquaresSolution(Wt[:, :-1], Wt[:, -1], rank, q) if bias else LeastSquaresSolution(Wt, None, rank, q)


def least_squares_solution(
    stats: ClassStats,
    lam: float = 0.0,
    bias: bool = True,
    spectrum: TotalSpectrum | None = None,
    *,
    on_singular: str = "pinv",
) -> LeastSquaresSolution:
    """:func:`least_squares_classifier` with the rank of the normal matrix it used (math §3.1, §3.3b;
    rank_deficient.md §5).

    The unique solution when the normal matrix is invertible (rank ``q``); when it is numerically
    singular, ``on_singular="pinv"`` (default) returns :func:`min_norm_least_squares` (rank ``< q``)
    and ``"raise"`` raises the ``ValueError`` naming the singular matrix.
    """
    if on_singular not in ON_SINGULAR:
        raise ValueError(f"unknown on_singular {on_singular!r}; choose one of {ON_SINGULAR}")
    check_lam(lam)
    q = stats.dim + (1 if bias else 0)
    try:
        W, b = _unique_least_squares(stats, lam, bias, spectrum)
    except SingularMatrixError:
        if on_singular == "raise":
            raise
        return min_norm_least_squares(stats, lam, bias)
    return LeastSquaresSolution(W, b, q, q)


def least_squares_classifier(
    stats: ClassStats,
    lam: float = 0.0,
    bias: bool = True,
    spectrum: TotalSpectrum | None = None,
    *,
    on_singular: str = "pinv",
) -> tuple[Array, Array | None]:
    """``(W_LS, b_LS)`` minimising the paper's ridge MSE for these features (math §3.1, §3.3b).

    ``W_LS`` has shape ``(C, p)``; ``b_LS`` has shape ``(C,)`` or is ``None`` when ``bias=False``.
    When the normal matrix is singular (``lam = 0`` with ``Sigma_T`` singular, with bias; without bias
    ``Sigma_T + mu_G mu_G^T``) the minimiser is not unique: ``on_singular="pinv"`` (default) returns the
    minimum-norm one (:func:`min_norm_least_squares`, rank_deficient.md §5), ``"raise"`` raises ``ValueError``.
    :func:`least_squares_solution` also returns the rank used.  ``spectrum``: :func:`total_spectrum` of the same
    ``stats``, shared by several ridges (see :class:`TotalSpectrum`).
    """
    sol = least_squares_solution(stats, lam, bias, spectrum, on_singular=on_singular)
    return sol.W, sol.b


def _unique_least_squares(
    stats: ClassStats, lam: float = 0.0, bias: bool = True, spectrum: TotalSpectrum | None = None
) -> tuple[Array, Array | None]:
    """The unique ``(W_LS, b_LS)`` (math §3.1, §3.3b); :class:`SingularMatrixError` naming a singular normal matrix.

    The normal matrix is ``Sigma_T + lam I + c mu_G mu_G^T`` with ``c = lam / (1 + lam)`` (bias) or ``c = 1`` (no
    bias): with ``spectrum`` (:func:`total_spectrum` of the same ``stats``) solved by Sherman-Morrison, so that
    several ridges share one eigendecomposition; without it, or when ``Sigma_T + lam I`` is singular, through
    ``eigh`` of the normal matrix itself (which succeeds when only ``Sigma_T + lam I`` is singular).
    """
    xp = namespace(stats.means)
    pi, M, mu = stats.weights, stats.means, stats.global_mean
    c = lam / (1.0 + lam) if bias else 1.0  # the normal matrix is Sigma_T + lam I + c mu_G mu_G^T
    rhs = pi[:, None] * M
    if bias:
        rhs = rhs - (pi[:, None] * mu[None, :]) / (1.0 + lam)
    W = None if spectrum is None else _solve_shifted_rank_one(rhs, spectrum, lam, mu, c, xp)
    if W is None:  # no spectrum, or Sigma_T + lam I singular: the direct solve (which names a singular K)
        K = stats.sigma_t + lam * eye(stats.dim, xp, M) + c * (mu[:, None] * mu[None, :])
        what = ("Sigma_T + lam I (the least-squares normal matrix)" if bias
                else "Sigma_T + mu_G mu_G^T + lam I (no-bias normal matrix)")
        evals, evecs = spd_eigh(K, xp, what, "use a ridge coefficient lam > 0 or more samples than dimensions")
        W = ((rhs @ evecs) / evals[None, :]) @ evecs.T
    return W, ((pi - W @ mu) / (1.0 + lam) if bias else None)
