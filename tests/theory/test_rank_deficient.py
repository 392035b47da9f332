"""Rank-deficient features (docs/rank_deficient.md): the SNR on the support of Sigma_W, the
minimum-norm least-squares classifier at lambda = 0, and nc_metrics naming what it cannot compute.

Real data: scikit-learn's handwritten digits (1797 x 64), whose 3 always-blank pixels are exactly the
"dead units" of a ReLU network (identically zero features), and 4 images per class (n = 40 < p = 64).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from sklearn.datasets import load_digits

import theory
from theory.least_squares import least_squares_solution, min_norm_least_squares
from theory.snr import snr_support

C = 10


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X.astype(np.float64), y.astype(np.int64)


@pytest.fixture(scope="module")
def few(digits):
    """4 images per class: n = 40 samples in p = 64 dimensions (Sigma_W rank <= n - C = 30)."""
    X, y = digits
    idx = np.concatenate([np.flatnonzero(y == c)[:4] for c in range(C)])
    return X[idx], y[idx]


def _reduced_snr(H, y):
    """Independent reference: the features written in an orthonormal basis of range(Sigma_W) (an SVD of the
    within-class-centred features, rank by a 1e-8 relative gap), then the full-space SNR there."""
    means = np.stack([H[y == c].mean(0) for c in range(C)])
    _, s, Vt = np.linalg.svd(H - means[y], full_matrices=False)
    r = int(np.sum(s > 1e-8 * s[0]))
    stats = theory.class_stats(H @ Vt[:r].T, y, C)
    return np.asarray(theory.snr_singular_values(stats, support="full")), r


def test_dead_pixels_give_the_snr_of_the_live_ones(digits):
    """Zero columns: Mbar lies in range(Sigma_W) and
    the support SNR is the SNR of the live columns (rank_deficient.md §3).
    Both routes are float64 factorisations of matrices with cond ~1e4 on the support: agreement ~1e-12,
    asserted at 1e-10."""
    X, y = digits
    live = X.std(0) > 0
    assert int((~live).sum()) == 3
    stats = theory.class_stats(X, y, C)
    sup = snr_support(stats)
    assert (sup.support, sup.rank, sup.dim) == ("range", 61, 64)
    assert sup.dropped_fraction < 1e-28  # Mbar is exactly zero there; eigh mixes the null space at round-off
    evals = np.linalg.eigvalsh(np.asarray(stats.sigma_w))
    assert sup.tolerance == pytest.approx(64 * np.finfo(float).eps * evals.max(), rel=1e-12)
    assert evals[3] > 1e6 * sup.tolerance and abs(evals[2]) < 1e-3 * sup.tolerance  # a clean gap around the rule
    ref = theory.snr_singular_values(theory.class_stats(X[:, live], y, C), support="full")
    assert rel(sup.values, ref) < 1e-10
    with pytest.raises(ValueError, match="singular Sigma_W"):
        theory.snr_singular_values(theory.class_stats(X, y, C), support="full")


def test_affine_subspace_gives_the_snr_of_its_coordinates(digits):
    """Features confined to a fixed affine subspace (H = Z Q^T + c, Q orthonormal 80 x 61): the support SNR is
    the SNR of the coordinates Z (affine invariance, math §5.1); the renormalised features on the range have
    Sigma_W = I_r, mu_G = 0 and their class means have the SNR values as singular values."""
    X, y = digits
    Z = X[:, X.std(0) > 0]
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((80, 61)))
    H = Z @ Q.T + 3.0 * rng.standard_normal(80)
    stats = theory.class_stats(H, y, C)
    sup = snr_support(stats)
    ref = theory.snr_singular_values(theory.class_stats(Z, y, C), support="full")
    assert (sup.support, sup.rank) == ("range", 61) and sup.dropped_fraction < 1e-20
    assert rel(sup.values, ref) < 1e-9
    Xr = np.asarray(theory.renormalize(H, stats, support="range"))
    assert Xr.shape == (H.shape[0], 61)
    rs = theory.class_stats(Xr, y, C)
    assert np.abs(np.asarray(rs.sigma_w) - np.eye(61)).max() < 1e-10
    assert np.abs(np.asarray(rs.global_mean)).max() < 1e-10
    assert rel(np.linalg.svd(np.asarray(rs.centered_means), compute_uv=False)[: C - 1], ref) < 1e-9
    # the p x p pseudo-inverse square root whitens the range: S Sigma_W S = U_r U_r^T, and the p x C SNR matrix
    # on the range has the same singular values
    S = np.asarray(theory.inverse_sqrt_within(stats, support="range"))
    P = S @ np.asarray(stats.sigma_w) @ S
    assert np.abs(P @ P - P).max() < 1e-9 and np.trace(P) == pytest.approx(61, abs=1e-8)
    snr = np.asarray(theory.snr_matrix(stats, support="range"))
    assert rel(np.linalg.svd(snr, compute_uv=False)[: C - 1], ref) < 1e-9


def test_invertible_case_bit_for_bit(digits):
    """An invertible Sigma_W: "auto" is the Cholesky path of before, bit for bit; "range" agrees to round-off."""
    X, y = digits
    H = X[:, X.std(0) > 0]
    stats = theory.class_stats(H, y, C)
    L = np.linalg.cholesky(np.asarray(stats.sigma_w))
    old = np.sort(np.linalg.svd(scipy.linalg.solve_triangular(L, np.asarray(stats.centered_means).T, lower=True),
                                compute_uv=False))[::-1][: C - 1]
    sup = snr_support(stats)
    assert sup.support == "full" and sup.rank == sup.dim == 61 and sup.dropped_fraction == 0.0
    assert np.array_equal(np.asarray(theory.snr_singular_values(stats)), old)
    assert rel(theory.snr_singular_values(stats, support="range"), old) < 1e-10
    Xf = theory.renormalize(H, stats)  # default "full": p coordinates, unchanged
    assert np.array_equal(Xf, theory.renormalize(H, stats, support="auto"))


def test_p_at_least_n(few):
    """n = 40 < p = 64: Mbar has a component in null(Sigma_W) (exact collapse directions), which is recorded;
    the support values are those of the features on range(Sigma_W); nc_metrics returns every quantity."""
    H, y = few
    stats = theory.class_stats(H, y, C)
    sup = snr_support(stats)
    ref, r = _reduced_snr(H, y)
    assert sup.support == "range" and sup.rank == r == 30 and sup.dim == 64
    assert 0.05 < sup.dropped_fraction < 1  # measured 0.162
    means = np.asarray(stats.centered_means).T
    U = np.linalg.svd(H - np.stack([H[y == c].mean(0) for c in range(C)])[y], full_matrices=False)[2][:r].T
    assert sup.dropped_fraction == pytest.approx(np.sum((means - U @ (U.T @ means)) ** 2) / np.sum(means**2), rel=1e-9)
    # cond(Sigma_W on its range) ~ 2e3 here: ~1e-12 agreement, asserted at 1e-9
    assert rel(sup.values, ref) < 1e-9
    rng = np.random.default_rng(1)
    W, b = rng.standard_normal((C, 64)), rng.standard_normal(C)
    nc = theory.nc_metrics(stats, W, b)
    assert "unavailable" not in nc
    for k in ("nc1", "nc2_equinorm_means", "nc2_etf_distance", "nc2_maxangle_classifiers", "nc3",
              "central_path_distance"):
        assert np.isfinite(float(nc[k])), k
    strict = theory.nc_metrics(stats, W, b, on_singular="raise")  # no minimum-norm fallback: named, not raised
    assert set(strict["unavailable"]) == {"central_path_distance"}
    assert "singular" in strict["unavailable"]["central_path_distance"]
    assert float(strict["nc3"]) == float(nc["nc3"])


@pytest.mark.parametrize("which", ["dead", "few"])
def test_lambda0_decomposition_with_singular_sigma_t(digits, few, which):
    """lam = 0 with a singular Sigma_T: the minimum-norm W~ = B A^+ solves the normal equations W~ A = B, equals
    NumPy's minimum-norm lstsq on the samples, and L = L_NC1 + L_NC2/3 + L_perp holds to ~1e-14 (asserted 1e-12)."""
    H, y = digits if which == "dead" else few
    n, p = H.shape
    stats = theory.class_stats(H, y, C)
    sol = least_squares_solution(stats, 0.0)
    assert sol.dim == p + 1 and sol.rank == (62 if which == "dead" else n)
    Ht = np.hstack([H, np.ones((n, 1))])
    Y = np.eye(C)[y]
    A, B = Ht.T @ Ht / n, Y.T @ Ht / n
    Wt = np.hstack([sol.W, sol.b[:, None]])
    assert np.abs(Wt @ A - B).max() / np.abs(B).max() < 1e-12
    ref = np.linalg.lstsq(Ht, Y, rcond=None)[0].T  # the minimum-norm least-squares solution
    assert rel(Wt, ref) < 1e-8  # cond(A on its range) ~1e5-1e7 amplifies round-off of either route
    rng = np.random.default_rng(2)
    W, b = sol.W + 0.05 * rng.standard_normal((C, p)), sol.b + 0.05 * rng.standard_normal(C)
    d = theory.decompose(stats, W, b, lam=0.0)
    direct = float(theory.mse_loss(H, y, W, b, lam=0.0, num_classes=C))
    assert abs(direct - float(d["l_nc1"] + d["l_nc23"] + d["l_perp"])) / direct < 1e-12
    assert float(d["ls_rank"]) == sol.rank and float(d["l_perp"]) > 0
    with pytest.raises(ValueError, match="singular"):
        theory.decompose(stats, W, b, lam=0.0, on_singular="raise")
    nb = min_norm_least_squares(stats, 0.0, bias=False)  # no bias: A = Sigma_T + mu_G mu_G^T
    # relative residual of the normal equations, as with bias above (measured 1.6e-14 and 3.3e-14)
    assert np.abs(nb.W @ (H.T @ H / n) - Y.T @ H / n).max() / np.abs(Y.T @ H / n).max() < 1e-12


def test_invertible_least_squares_unchanged(digits):
    """Invertible normal matrix: the solution and ls_rank are those of the unique solve."""
    X, y = digits
    H = X[:, X.std(0) > 0]
    stats = theory.class_stats(H, y, C)
    sol = least_squares_solution(stats, 0.0)
    W, b = theory.least_squares_classifier(stats, 0.0, on_singular="raise")
    assert sol.rank == sol.dim == 62 and np.array_equal(sol.W, W) and np.array_equal(sol.b, b)
    mn = min_norm_least_squares(stats, 0.0)  # the pseudo-inverse route is the same solution when A is invertible
    assert rel(mn.W, W) < 1e-8 and mn.rank == 62


def test_backends_agree(digits, few):
    """torch (and JAX with x64) give the NumPy values of the support SNR and the minimum-norm classifier."""
    for H, y in (digits, few):
        ns = theory.class_stats(H, y, C)
        ts = theory.class_stats(torch.tensor(H), torch.tensor(y), C)
        a, t = snr_support(ns), snr_support(ts)
        assert (a.rank, a.support) == (t.rank, t.support)
        assert rel(t.values.numpy(), a.values) < 1e-10
        assert t.dropped_fraction == pytest.approx(a.dropped_fraction, rel=1e-8, abs=1e-25)
        assert rel(least_squares_solution(ts, 0.0).W.numpy(), least_squares_solution(ns, 0.0).W) < 1e-8
        assert theory.renormalize(torch.tensor(H), ts, support="range").shape == (H.shape[0], a.rank)
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    H, y = few
    js = theory.class_stats(jnp.asarray(H), jnp.asarray(y), C)
    j, a = snr_support(js), snr_support(theory.class_stats(H, y, C))
    assert j.rank == a.rank and rel(np.asarray(j.values), a.values) < 1e-10
    # inside jit the rank is not a value: "auto" is the unchecked full-space path of before (invertible features)
    X, yd = digits
    live = jnp.asarray(X[:, X.std(0) > 0])
    jitted = jax.jit(lambda h: theory.snr_singular_values(theory.class_stats(h, jnp.asarray(yd), C)))(live)
    eager = theory.snr_singular_values(theory.class_stats(live, jnp.asarray(yd), C))
    assert rel(np.asarray(jitted), np.asarray(eager)) < 1e-12
    with pytest.raises(ValueError, match="JAX trace"):
        jax.jit(lambda h: snr_support(theory.class_stats(h, jnp.asarray(yd), C), support="range").values)(live)


def test_named_unavailable_and_bad_input(digits):
    """A zero classifier row and a class whose centred mean is zero: those cosines are named, the rest returned;
    bad input still raises; Sigma_W = 0 has no support; an unknown support is refused."""
    X, y = digits
    H = X[:, X.std(0) > 0]
    H = H.copy()
    stats0 = theory.class_stats(H, y, C)
    pi3 = np.mean(y == 3)  # shift class 3 by d: its mean moves by d, the global mean by pi_3 d; equal when
    H[y == 3] += (np.asarray(stats0.global_mean) - np.asarray(stats0.means)[3]) / (
        1 - pi3
    )  # d = (mu_G - mu_3)/(1 - pi_3)
    stats = theory.class_stats(H, y, C)
    W = np.random.default_rng(3).standard_normal((C, H.shape[1]))
    W[5] = 0.0
    nc = theory.nc_metrics(stats, W, np.zeros(C))
    assert set(nc["unavailable"]) == {"nc2_equinorm_means", "nc2_equiangular_means", "nc2_maxangle_means",
                                      "nc2_equinorm_classifiers", "nc2_equiangular_classifiers",
                                      "nc2_maxangle_classifiers"}
    assert "row(s) [5] of W are zero" in nc["unavailable"]["nc2_equinorm_classifiers"]
    assert "class(es) [3]" in nc["unavailable"]["nc2_maxangle_means"]
    for k in ("nc1", "nc2_etf_distance", "nc3", "central_path_distance"):
        assert np.isfinite(float(nc[k])), k
    with pytest.raises(ValueError, match="W"):
        theory.nc_metrics(stats, W[:, :5])
    # bad arguments raise even when only the central-path distance would use them (not named "unavailable")
    with pytest.raises(ValueError, match="lam must be >= 0"):
        theory.nc_metrics(stats, W, np.zeros(C), lam=-1.0)
    with pytest.raises(ValueError, match="unknown on_singular"):
        theory.nc_metrics(stats, W, np.zeros(C), on_singular="lstsq")
    with pytest.raises(ValueError, match="unknown support"):
        theory.snr_singular_values(stats, support="kernel")
    collapsed = theory.class_stats(np.eye(C)[y] @ np.random.default_rng(4).standard_normal((C, 12)), y, C)
    with pytest.raises(ValueError, match="Sigma_W is zero"):
        snr_support(collapsed)


def test_symbolic_rank_checks_can_fail():
    """Negative controls for the certificate's rank-deficient section: a classifier off the normal equations
    (B A^+ plus a row-space perturbation) breaks the three-term identity, and dropping the projection onto the
    support (an Mbar with a null(Sigma_W) component) breaks 'Mbar in range(Sigma_W)'."""
    import sympy as sp

    from theory.symbolic import rank_deficient as rd
    from theory.symbolic.model import class_stats, classifier_symbols, decomposition_terms, sample_loss

    data = rd.plane_data((3, 3, 3), seed=11)[0]
    st = class_stats(data)
    V, A, B = rd.min_norm_classifier(st)
    Wt = classifier_symbols(3, 4)
    bad = V + sp.Matrix(3, 4, lambda i, j: sp.Rational(i + 1, j + 2))
    assert (bad * A - B) != sp.zeros(3, 4)
    for cls, ok in ((V, True), (bad, False)):
        l1, l23, lp = decomposition_terms(st, Wt, cls, 0, True, A)
        assert (sp.expand(sample_loss(data, Wt, 0, True) - l1 - l23 - lp) == 0) is ok
    Q = rd.rational_rotation()
    Sw = Q * sp.diag(2, 3, 0) * Q.T
    Mbar = Q * sp.Matrix([[1, -1, 0], [0, 1, -1], [1, 0, -1]])  # third row: a null(Sigma_W) component
    assert Mbar - Sw * Sw.pinv() * Mbar != sp.zeros(3, 3)
    assert all(spec.run()["passed"] for spec in rd.specs())


def test_closed_forms_on_the_support(digits, few):
    """Balanced digits, 20 per class (11 blank pixels: r = 53 of 64, nothing dropped): the math §3.4 closed forms hold
    with the support omegas and pseudo-inverses (rank_deficient.md §3); 4 per class (dropped fraction 0.16, n < p):
    the formula is only an upper bound, and least squares interpolates (rank_deficient.md §4).
    Tolerance 1e-10: every side is a float64 factorisation of matrices with condition <= 1e7 on their range."""
    X, y = digits
    idx = np.concatenate([np.flatnonzero(y == c)[:20] for c in range(C)])
    H, yy = X[idx], y[idx]
    stats = theory.class_stats(H, yy, C)
    sup = snr_support(stats)
    assert sup.support == "range" and sup.rank == 53 and sup.dropped_fraction < 1e-25
    om = np.asarray(sup.values)
    W, b = theory.least_squares_classifier(stats, 0.0)
    d = theory.decompose(stats, W, b, lam=0.0)
    assert float(d["l_central"]) == pytest.approx(0.5 * np.sum(1 / (C + om**2)), rel=1e-10)
    assert float(d["l_nc1"]) == pytest.approx(0.5 * np.sum(om**2 / (C + om**2) ** 2), rel=1e-10)
    assert float(d["l_nc23"]) == pytest.approx(C / 2 * np.sum(1 / (C + om**2) ** 2), rel=1e-10)
    webb_lowe = (C - 1 - np.trace(np.linalg.pinv(np.asarray(stats.sigma_t)) @ np.asarray(stats.sigma_b))) / (2 * C)
    assert webb_lowe == pytest.approx(float(d["l_central"]), rel=1e-10)
    renorm = theory.class_stats(theory.renormalize(H, stats, support="range"), yy, C)
    assert float(theory.nc_metrics(renorm)["nc1"]) == pytest.approx(np.sum(om**-2.0), rel=1e-10)
    Hf, yf = few
    sf = theory.class_stats(Hf, yf, C)
    omf = np.asarray(snr_support(sf).values)
    Wf, bf = theory.least_squares_classifier(sf, 0.0)
    l_central = float(theory.decompose(sf, Wf, bf, lam=0.0)["l_central"])
    assert l_central < 1e-12 < 0.05 < 0.5 * np.sum(1 / (C + omf**2))  # measured 3.9e-18 against 0.0653
