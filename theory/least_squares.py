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

from ._backend import Array, eye, namespace, spd_eigh
from ._validation import check_lam
from .stats import ClassStats


def solve_spd_right(rhs: Array, K: Array, xp, what: str) -> Array:
    """Solve ``X K = rhs`` for symmetric positive definite ``K`` through ``eigh`` (no inverse).

    Raises ``ValueError`` naming ``what`` when ``K`` is numerically singular.
    """
    try:
        evals, evecs = spd_eigh(K, xp, what)
    except ValueError as exc:
        raise ValueError(f"{exc}; use a ridge coefficient lam > 0 or more samples than dimensions") from None
    return ((rhs @ evecs) / evals[None, :]) @ evecs.T


def least_squares_classifier(stats: ClassStats, lam: float = 0.0, bias: bool = True) -> tuple[Array, Array | None]:
    """``(W_LS, b_LS)`` minimising the paper's ridge MSE for these features (spec 3.1, 3.3b).

    ``W_LS`` has shape ``(C, p)``; ``b_LS`` has shape ``(C,)`` or is ``None`` when
    ``bias=False``.  At ``lam = 0`` with bias, ``Sigma_T`` must be invertible; without bias,
    ``Sigma_T + mu_G mu_G^T`` must be.
    """
    check_lam(lam)
    xp = namespace(stats.means)
    pi = stats.weights
    M = stats.means
    mu = stats.global_mean
    p = stats.dim
    identity = eye(p, xp, M)
    if bias:
        K = stats.sigma_t + lam * identity + (lam / (1.0 + lam)) * (mu[:, None] * mu[None, :])
        rhs = pi[:, None] * M - (pi[:, None] * mu[None, :]) / (1.0 + lam)
        W = solve_spd_right(rhs, K, xp, "Sigma_T + lam I (the least-squares normal matrix)")
        b = (pi - W @ mu) / (1.0 + lam)
        return W, b
    K = stats.sigma_t + mu[:, None] * mu[None, :] + lam * identity
    W = solve_spd_right(pi[:, None] * M, K, xp, "Sigma_T + mu_G mu_G^T + lam I (no-bias normal matrix)")
    return W, None
