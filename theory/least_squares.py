"""The least-squares (ridge) classifier of the features: the central path's classifier.

Spec 3.1 (and 3.3b for any class counts).  The paper's loss
``L(W, b, H) = (1/(2n)) sum ||W h + b - e_c||^2 + (lam/2)(||W||_F^2 + ||b||^2)`` is quadratic in
``W~ = [W b]`` with Hessian ``A = (1/n) H~ H~^T + lam I`` and linear term ``B = (1/n) Y H~^T``
``= [pi_c mu~_c^T]_c``; the minimiser solves ``W~ A = B``.  Eliminating ``b`` from the two
block rows gives the non-augmented normal equations solved here (spec 3.1, "Equivalent
non-augmented form", generalised to class weights ``pi_c``):

``W_LS K = Pi M - (1/(1+lam)) pi mu_G^T``, ``K = Sigma_T + lam I + (lam/(1+lam)) mu_G mu_G^T``,
``b_LS = (pi - W_LS mu_G) / (1 + lam)``;

at ``lam = 0``: ``W_LS = Pi Mbar Sigma_T^{-1}`` (``(1/C) Mbar^T Sigma_T^{-1}`` when balanced).
Without bias: ``W_LS (Sigma_T + mu_G mu_G^T + lam I) = Pi M``.  Solved through a symmetric
eigendecomposition of ``K`` (also the singularity test), never an explicit inverse.
"""

from __future__ import annotations

from typing import NamedTuple

from ._backend import Array, eye, is_concrete, is_nonsingular, namespace, spd_eigh, to_float
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


def solve_spd_right(rhs: Array, K: Array, xp, what: str) -> Array:
    """Solve ``X K = rhs`` for symmetric positive definite ``K`` through ``eigh`` (no inverse).

    Raises ``ValueError`` naming ``what`` when ``K`` is numerically singular.
    """
    try:
        evals, evecs = spd_eigh(K, xp, what)
    except ValueError as exc:
        raise ValueError(f"{exc}; use a ridge coefficient lam > 0 or more samples than dimensions") from None
    return ((rhs @ evecs) / evals[None, :]) @ evecs.T


def least_squares_classifier(
    stats: ClassStats, lam: float = 0.0, bias: bool = True, spectrum: TotalSpectrum | None = None
) -> tuple[Array, Array | None]:
    """``(W_LS, b_LS)`` minimising the paper's ridge MSE for these features (spec 3.1, 3.3b).

    ``W_LS`` has shape ``(C, p)``; ``b_LS`` has shape ``(C,)`` or is ``None`` when
    ``bias=False``.  At ``lam = 0`` with bias, ``Sigma_T`` must be invertible; without bias,
    ``Sigma_T + mu_G mu_G^T`` must be.

    ``spectrum`` (:func:`total_spectrum` of the same ``stats``) lets several ridges share one
    eigendecomposition: the normal matrix is ``Sigma_T + lam I + c mu_G mu_G^T`` with
    ``c = lam / (1 + lam)`` (bias) or ``c = 1`` (no bias), solved by Sherman-Morrison.  When
    ``Sigma_T + lam I`` is singular the direct solve is used instead: it succeeds when the normal
    matrix is not singular (without bias, e.g. a constant feature at ``lam = 0``) and otherwise
    raises the ``ValueError`` naming it.
    """
    check_lam(lam)
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
        W = solve_spd_right(rhs, K, xp, what)
    return W, ((pi - W @ mu) / (1.0 + lam) if bias else None)
