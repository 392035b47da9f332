"""SNR matrix ``Sigma_W^{-1/2} Mbar``, its singular values and the renormalised features (math §1, §5.1, §5.2).

Every function takes ``support`` (math §5.3; ``docs/rank_deficient.md`` §1-§3): ``"full"``, the whole space
(``ValueError`` when ``Sigma_W`` is singular); ``"range"``, the range of ``Sigma_W`` (rank ``r >= 1``); ``"auto"``,
``"full"`` when ``Sigma_W`` passes the singularity test, else ``"range"`` (inside a JAX trace ``"full"``, unchecked).
"""

from __future__ import annotations

from dataclasses import dataclass

from ._backend import (
    EPS,
    Array,
    SingularMatrixError,
    as_float64,
    check_nonsingular,
    device_of,
    is_concrete,
    namespace,
    numerical_rank,
    solve_lower_triangular,
    spd_eigh,
    to_float,
)
from .stats import ClassStats

#: Values of the ``support`` argument.
SUPPORTS = ("auto", "full", "range")

#: What the singularity errors name, and the advice they give.
_WITHIN = "singular Sigma_W: the within-class covariance"
_ADVICE = ("the SNR and the renormalised features need an invertible within-class covariance "
           "(more samples per class than feature dimensions, and no exact collapse); "
           "support='range' (or 'auto') restricts them to the range of Sigma_W")


#: The error of an SNR on statistics whose ``Sigma_W`` is zero to round-off.
ZERO_WITHIN = ("Sigma_W is zero (every class collapsed to its mean, or p = 0): the SNR is undefined "
               "on every support")


def round_off_scale(stats: ClassStats) -> float:
    """``tr Sigma_T + ||mu_G||^2 = (1/n) sum_i ||h_i||^2``: the scale of the rounding error of the scatter."""
    xp = namespace(stats.sigma_t)
    return to_float(xp.sum(xp.linalg.diagonal(stats.sigma_t)) + xp.sum(stats.global_mean * stats.global_mean))


def _check_support(support: str) -> None:
    if support not in SUPPORTS:
        raise ValueError(f"unknown support {support!r}; choose one of {SUPPORTS}")


@dataclass(frozen=True)
class WithinRange:
    """``eigh(Sigma_W)`` split at the support tolerance (rank_deficient.md §2).

    ``evals`` ascending ``(p,)``, ``evecs`` ``(p, p)``; the last ``rank`` eigenpairs span the range
    (eigenvalue ``> tolerance = p * eps * lambda_max``), the first ``p - rank`` the numerical null space.
    """

    evals: Array
    evecs: Array
    rank: int
    tolerance: float

    @property
    def dim(self) -> int:
        return int(self.evals.shape[0])

    @property
    def basis(self) -> Array:
        """``U_r`` (``p x r``): orthonormal basis of ``range(Sigma_W)``."""
        return self.evecs[:, self.dim - self.rank:]

    @property
    def null_basis(self) -> Array:
        """``U_0`` (``p x (p - r)``): orthonormal basis of the numerical ``null(Sigma_W)``."""
        return self.evecs[:, : self.dim - self.rank]

    @property
    def inv_sqrt_evals(self) -> Array:
        """``Lambda_r^{-1/2}`` as a vector ``(r,)``."""
        return 1.0 / namespace(self.evals).sqrt(self.evals[self.dim - self.rank:])


def within_range(stats: ClassStats) -> WithinRange:
    """``eigh(Sigma_W)`` with its numerical rank: eigenvalues ``> p * eps * lambda_max`` are kept
    (:func:`theory._backend.is_nonsingular`'s rule, so ``rank == p`` exactly when that test passes).

    Raises ``ValueError`` when ``Sigma_W`` is zero to round-off (no support: its largest eigenvalue is at
    most ``p * eps`` times :func:`round_off_scale`), or inside a JAX trace (the rank is a value).
    """
    xp = namespace(stats.sigma_w)
    evals, evecs = xp.linalg.eigh(stats.sigma_w)
    if not is_concrete(evals):
        raise ValueError("the support of Sigma_W (its numerical rank) cannot be computed inside a JAX trace; "
                         "use support='full'")
    p = stats.dim
    rank, tol = numerical_rank(evals, xp)
    if rank == 0 or to_float(xp.max(xp.abs(evals))) <= p * EPS * round_off_scale(stats):
        raise ValueError(ZERO_WITHIN)
    return WithinRange(evals, evecs, rank, tol)


def _resolve(stats: ClassStats, support: str) -> str:
    """``"full"`` or ``"range"`` for ``support`` (``"auto"``: full unless :func:`_within_cholesky` finds
    ``Sigma_W`` singular; inside a JAX trace, full)."""
    _check_support(support)
    if support != "auto" or not is_concrete(stats.sigma_w):
        return "full" if support == "auto" else support
    try:
        _within_cholesky(stats)
    except SingularMatrixError:
        return "range"
    return "full"


def inverse_sqrt_within(stats: ClassStats, *, support: str = "full") -> Array:
    """``Sigma_W^{-1/2}`` (symmetric, ``p x p``); on ``support="range"`` the pseudo-inverse square root
    ``(Sigma_W^+)^{1/2} = U_r Lambda_r^{-1/2} U_r^T`` (rank_deficient.md §2).

    The default ``"full"`` raises ``ValueError`` when ``Sigma_W`` is singular (callers such as the
    simulator rely on it as the invertibility test).
    """
    xp = namespace(stats.sigma_w)
    if _resolve(stats, support) == "range":
        rng = within_range(stats)
        U = rng.basis
        return (U * rng.inv_sqrt_evals[None, :]) @ U.T
    evals, evecs = spd_eigh(stats.sigma_w, xp, _WITHIN, _ADVICE)
    return (evecs / xp.sqrt(evals)[None, :]) @ evecs.T


def snr_matrix(stats: ClassStats, *, support: str = "full") -> Array:
    """``SNR = Sigma_W^{-1/2} Mbar`` with shape ``(p, C)`` (math §1); on ``support="range"``
    ``(Sigma_W^+)^{1/2} Mbar = U_r (Lambda_r^{-1/2} U_r^T Mbar)`` (rank_deficient.md §2), same singular values
    as the ``r x C`` SNR of the support."""
    return inverse_sqrt_within(stats, support=support) @ stats.centered_means.T


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
        raise SingularMatrixError(f"{_WITHIN} is not positive definite ({exc}); {_ADVICE}") from None
    if is_concrete(L):  # a NaN pivot (JAX's failed factorisation) is singular too
        pivots = xp.linalg.diagonal(L)
        low = to_float(xp.min(pivots * pivots))
        top = to_float(xp.max(xp.linalg.diagonal(stats.sigma_w)))
        check_nonsingular(low, top, stats.dim, _WITHIN, "smallest Cholesky pivot {low:.3e}, largest variance {top:.3e}",
                          _ADVICE)
    return L


def _top_singular_values(M: Array, C: int, xp) -> Array:
    """The ``C-1`` largest singular values of ``M``, descending, zero-padded to ``C-1``."""
    s = xp.flip(xp.sort(xp.linalg.svdvals(M)))
    if s.shape[0] >= C - 1:
        return s[: C - 1]
    pad = xp.zeros((C - 1 - s.shape[0],), dtype=s.dtype, device=device_of(s))
    return xp.concat([s, pad])


@dataclass(frozen=True)
class SNRSupport:
    """The SNR singular values and the support they were computed on (rank_deficient.md §2).

    * ``values``: the ``C-1`` SNR singular values on the support, descending (zero-padded);
    * ``rank``: ``r = rank(Sigma_W)`` used (``dim`` on the full space);
    * ``dim``: the feature dimension ``p``;
    * ``dropped_fraction``: ``||(I - U_r U_r^T) Mbar||_F^2 / ||Mbar||_F^2``, the share of the
      between-class energy in ``null(Sigma_W)`` (infinite SNR, not represented); 0 on the full space
      and when ``Mbar = 0``;
    * ``support``: ``"full"`` or ``"range"``;
    * ``tolerance``: the eigenvalue threshold ``p * eps * lambda_max`` (range), or ``0.0`` (full).
    """

    values: Array
    rank: int
    dim: int
    dropped_fraction: float
    support: str
    tolerance: float


def snr_support(stats: ClassStats, *, support: str = "auto") -> SNRSupport:
    """The SNR singular values with their support, rank and dropped between-class energy (rank_deficient.md §2).

    On ``"full"`` (``"auto"`` with an invertible ``Sigma_W``) the values are those of
    :func:`snr_singular_values` on the Cholesky path, bit for bit.  On ``"range"`` they are the
    singular values of ``Lambda_r^{-1/2} U_r^T Mbar`` (``eigh`` of ``Sigma_W``, eigenvalues above
    ``p * eps * lambda_max``).  Inside a JAX trace ``"auto"`` is ``"full"`` (unchecked) and ``"range"`` raises.
    """
    _check_support(support)
    xp = namespace(stats.means)
    C, p = stats.num_classes, stats.dim
    if support != "range":
        try:  # one Cholesky factorisation: the singularity test of "auto" and the full-space values
            L = _within_cholesky(stats)
        except SingularMatrixError:
            if support == "full":
                raise
        else:
            values = _top_singular_values(solve_lower_triangular(L, stats.centered_means.T, xp), C, xp)
            return SNRSupport(values, p, p, 0.0, "full", 0.0)
    rng = within_range(stats)
    Mbar = stats.centered_means.T  # (p, C)
    reduced = rng.inv_sqrt_evals[:, None] * (rng.basis.T @ Mbar)  # Lambda_r^{-1/2} U_r^T Mbar  (r, C)
    total = to_float(xp.sum(Mbar * Mbar))
    null_part = rng.null_basis.T @ Mbar
    dropped = to_float(xp.sum(null_part * null_part)) / total if total > 0 else 0.0
    dropped = min(max(dropped, 0.0), 1.0)  # a share: rounding can put it a few ulps past 1 when all of Mbar is dropped
    return SNRSupport(_top_singular_values(reduced, C, xp), rng.rank, p, dropped, "range", rng.tolerance)


def snr_singular_values(stats: ClassStats, *, support: str = "auto") -> Array:
    """The ``C-1`` SNR singular values ``omega_j``, descending; zeros pad a rank below ``C-1`` (math §1, §3.4).

    Full space (``Sigma_W`` invertible): the singular values of ``L^{-1} Mbar`` with ``Sigma_W = L L^T``
    (Cholesky): since ``L^{-1} Sigma_W^{1/2}`` is orthogonal, they equal those of
    ``SNR = Sigma_W^{-1/2} Mbar``, at a Cholesky factorisation and a triangular solve instead of an
    eigendecomposition.  On the range of a singular ``Sigma_W`` (``support="range"``, or ``"auto"``):
    those of ``Lambda_r^{-1/2} U_r^T Mbar`` (rank_deficient.md §2; :func:`snr_support` also returns the rank and
    the dropped between-class energy).  ``support="full"`` raises ``ValueError`` on a singular ``Sigma_W``.
    """
    return snr_support(stats, support=support).values


def renormalize(features: Array, stats: ClassStats, *, support: str = "full") -> Array:
    """Renormalised features (math §5.2), as rows.

    * ``"full"``: ``X = (H - mu_G 1^T)^T Sigma_W^{-1/2}`` (``n x p``), so ``Sigma_W(X) = I_p``,
      ``mu_G(X) = 0`` and ``SNR(X) = Mbar(X)``; raises ``ValueError`` when ``Sigma_W`` is singular;
    * ``"range"``: ``r`` coordinates ``X = (H - mu_G) U_r Lambda_r^{-1/2}`` (``n x r``), so
      ``Sigma_W(X) = I_r``, ``mu_G(X) = 0`` and ``Mbar(X) = Lambda_r^{-1/2} U_r^T Mbar``, the SNR on the
      support (rank_deficient.md §2);
    * ``"auto"``: ``"full"`` when ``Sigma_W`` is invertible, else ``"range"``.
    """
    xp = namespace(features)
    X = as_float64(features, xp)
    if len(X.shape) != 2 or X.shape[1] != stats.dim:
        raise ValueError(f"shape mismatch: features must be (n, {stats.dim}), got {tuple(X.shape)}")
    centred = X - stats.global_mean[None, :]
    if _resolve(stats, support) == "range":
        rng = within_range(stats)
        return (centred @ rng.basis) * rng.inv_sqrt_evals[None, :]
    return centred @ inverse_sqrt_within(stats)
