"""NC measurements along a trajectory, all computed with ``theory``'s functions on JAX arrays.

Per saved time: SNR singular values omega_j (``theory.snr_singular_values``), their max/min ratio, NC1-NC4
(``theory.nc_metrics``, ``theory.ncc_mismatch``), the decomposition L = L_NC1 + L_NC2/3 + L_perp
(``theory.decompose``, math §3.2), the distance of the class-mean Gram matrix to the Simplex ETF's
(|| G/||G||_F - J/||J||_F ||_F with G = Mbar^T Mbar: ``theory.nc_metrics``' ``nc2_etf_distance``, math §6.4 item 3), the
manifold constraints (max |Sigma_W - I|, max |mu_G|) and the drift of the SNR singular vectors (math §9 item 17).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

import theory
from theory.record import sigma_w_is_zero

from ._solve import law


def feature_metrics(
    X: jax.Array,
    labels: jax.Array,
    num_classes: int,
    W: jax.Array | None = None,
    b: jax.Array | None = None,
    lam: float = 0.0,
    U0: jax.Array | None = None,
    V0: jax.Array | None = None,
) -> tuple[dict[str, jax.Array], jax.Array]:
    """Metrics of one feature configuration X (n, p); (W, b) = the least-squares classifier when W is None.

    Returns ``(metrics, G)``: ``metrics`` maps names to 0-d arrays plus "omega" (C-1,); G is the class-mean Gram
    matrix. If U0 (p, C-1), V0 (C, C-1) (initial SNR singular vectors) are given, "singular_vector_drift" is
    ||S - U0 diag(U0^T S V0) V0^T||_F / ||S||_F with S = Mbar (p, C), the SNR matrix on X_set (math §6.2: zero
    along the projected flow).
    """
    C = num_classes
    stats = theory.class_stats(X, labels, C)
    # one eigendecomposition of Sigma_T shared by the least-squares solve here and the one inside decompose
    spectrum = theory.total_spectrum(stats)
    if W is None:
        W, b = theory.least_squares_classifier(stats, lam=lam, spectrum=spectrum)
    out: dict[str, jax.Array] = {}
    omega = theory.snr_singular_values(stats)
    out["omega"] = omega
    out["omega_ratio"] = omega[0] / omega[-1]
    out.update(theory.nc_metrics(stats, W, b, lam=lam, central_path=False))
    out.update(theory.decompose(stats, W, b, lam=lam, spectrum=spectrum))  # includes central_path_distance
    out["nc4"] = theory.ncc_mismatch(X, labels, stats, W, b)
    out["l_central_law"] = jnp.sum(law("l_central")(omega, C))
    out["nc1_law"] = jnp.sum(law("nc1_renormalized")(omega))
    G = stats.centered_means @ stats.centered_means.T  # Mbar^T Mbar (C, C), math §1
    out["gram_etf_distance"] = out["nc2_etf_distance"]  # theory's ||G/||G|| - J/||J|| ||_F
    p = stats.sigma_w.shape[0]
    out["sigma_w_deviation"] = jnp.max(jnp.abs(stats.sigma_w - jnp.eye(p)))
    out["global_mean_norm"] = jnp.max(jnp.abs(stats.global_mean))
    if U0 is not None and V0 is not None:
        S = stats.centered_means.T
        d = jnp.diagonal(U0.T @ S @ V0)
        out["singular_vector_drift"] = jnp.linalg.norm(S - (U0 * d) @ V0.T) / jnp.linalg.norm(S)
    return out, G


@functools.partial(jax.jit, static_argnames=("num_classes",))
def trajectory_metrics(
    Xs: jax.Array,
    labels: jax.Array,
    num_classes: int,
    Ws: jax.Array | None = None,
    bs: jax.Array | None = None,
    lam: float = 0.0,
    U0: jax.Array | None = None,
    V0: jax.Array | None = None,
) -> tuple[dict[str, jax.Array], jax.Array]:
    """``feature_metrics`` at every saved time of Xs (T, n, p) (and Ws (T, C, p), bs (T, C) if given).

    One compiled program, a ``lax.map`` over time. Returns (metrics with a leading T axis, Gram matrices (T, C, C)).
    """
    # lax.map, not vmap: vmap over time makes every decomposition (Cholesky, SVD, eigh) one batched LAPACK call, and
    # jaxlib 0.10's CPU runtime runs independent batched calls at once, each splitting its batch over the same
    # thread pool and waiting for it; on a 2-core machine both waited for ever at 0% CPU (seen in 2 of 3 free-flow
    # runs, gdb: two pool threads in ParallelBatchMap's BlockingCounter::Wait).  Unbatched calls do not split.
    return jax.lax.map(lambda XWb: feature_metrics(XWb[0], labels, num_classes, XWb[1], XWb[2], lam, U0, V0),
                       (Xs, Ws, bs))


def snr_undefined(Xs, labels, num_classes: int) -> tuple[np.ndarray, str | None]:
    """Saved times at which the full-space SNR ``Sigma_W^{-1/2} Mbar`` (math §1) is undefined: ``Sigma_W`` is zero to
    round-off (``theory.record.sigma_w_is_zero``) or fails theory's singularity test (``theory.snr_support(stats,
    support="full")`` raises), e.g. when the free flow's feature decay collapses the within-class deviations.
    Concrete values only (NumPy, float64).

    Returns ``(mask (T,) bool, reason or None)``: the reason, one sentence, describes the first such time.
    """
    labels = np.asarray(labels)
    mask = np.zeros(len(Xs), dtype=bool)
    reason = None
    for k, X in enumerate(Xs):
        stats = theory.class_stats(np.asarray(X, dtype=np.float64), labels, num_classes)
        try:
            if sigma_w_is_zero(stats):
                raise ValueError("Sigma_W is zero to round-off")
            theory.snr_support(stats, support="full")
        except ValueError:
            mask[k] = True
            if reason is None:
                evals = np.linalg.eigvalsh(stats.sigma_w)
                reason = (f"Sigma_W is singular at time index {k} (the within-class deviations collapsed: its "
                          f"eigenvalues lie in [{evals[0]:.3g}, {evals[-1]:.3g}], tr Sigma_T = "
                          f"{np.trace(stats.sigma_t):.3g})")
    return mask, reason
