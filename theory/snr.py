"""SNR matrix, its singular values and the renormalised features (spec 1 "SNR matrix", 5.1, 5.2).

``SNR = Sigma_W^{-1/2} Mbar`` (``p x C``, ``Mbar`` = count-weighted-centred class means as
columns); its nonzero singular values ``omega_1 >= ... >= omega_{C-1}`` drive the dynamics.
``Sigma_W^{-1/2}`` comes from ``eigh(Sigma_W)``, which also tests invertibility.
"""

from __future__ import annotations

from ._backend import Array, as_float64, device_of, namespace, spd_eigh
from ._validation import check_features_labels
from .stats import ClassStats



def inverse_sqrt_within(stats: ClassStats) -> Array:
    """``Sigma_W^{-1/2}`` (symmetric), raising ``ValueError`` when ``Sigma_W`` is singular."""
    xp = namespace(stats.sigma_w)
    try:
        evals, evecs = spd_eigh(stats.sigma_w, xp, "singular Sigma_W: the within-class covariance")
    except ValueError as exc:
        raise ValueError(
            f"{exc}; the SNR matrix and the renormalised features need an invertible within-class covariance "
            "(more samples per class than feature dimensions, and no exact collapse)"
        ) from None
    return (evecs / xp.sqrt(evals)[None, :]) @ evecs.T


def snr_matrix(stats: ClassStats) -> Array:
    """``SNR = Sigma_W^{-1/2} Mbar`` with shape ``(p, C)`` (spec 1)."""
    return inverse_sqrt_within(stats) @ stats.centered_means.T


def snr_singular_values(stats: ClassStats) -> Array:
    """The ``C-1`` SNR singular values ``omega_j``, descending; zeros pad a rank below ``C-1`` (spec 1, 3.4)."""
    xp = namespace(stats.means)
    s = xp.linalg.svdvals(snr_matrix(stats))
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
