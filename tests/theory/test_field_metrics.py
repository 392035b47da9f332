"""The field's other metrics (math §2.3) against independent references and exact configurations.

References: per-pair loops with explicit vector differences (``np.linalg.norm(a - b)``) and SciPy's ``pdist``;
exact values on a Simplex ETF.  Tolerances: relative 1e-10 against the references (float64 sums in another
order, squared distances through inner products: relative error ~ eps ||mu||^2 / d^2, here below 1e-13), and
1e-12 absolute on the ETF (exact in exact arithmetic).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist

import theory

REL = 1e-10


def _data(C=9, p=6, n=500, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n)
    y[:C] = np.arange(C)
    X = 2.0 * rng.standard_normal((C, p))[y] + rng.standard_normal((n, p)) * (1 + np.arange(C))[y, None] / C
    return X, y


def _loop_variances(X, y, means, ddof):
    return np.array([np.sum((X[y == c] - means[c]) ** 2) / ((y == c).sum() - ddof) for c in range(len(means))])


@pytest.mark.parametrize("ddof", [0, 1])
def test_class_variances_against_a_loop_and_sigma_w(ddof):
    X, y = _data()
    stats = theory.class_stats(X, y)
    v = theory.class_variances(X, y, stats.means, ddof=ddof)
    np.testing.assert_allclose(v, _loop_variances(X, y, stats.means, ddof), rtol=REL)
    if ddof == 0:  # sum_c pi_c Var_c = tr(Sigma_W) (math §1, §2.3)
        assert abs(float(stats.weights @ v) - np.trace(stats.sigma_w)) <= REL * np.trace(stats.sigma_w)


def test_class_deviation_sums_add_over_batches():
    X, y = _data()
    means = theory.class_stats(X, y).means
    s_all, n_all = theory.class_deviation_sums(X, y, means)
    parts = [theory.class_deviation_sums(X[s], y[s], means) for s in (slice(0, 123), slice(123, None))]
    np.testing.assert_allclose(parts[0][0] + parts[1][0], s_all, rtol=REL)
    np.testing.assert_array_equal(parts[0][1] + parts[1][1], n_all)


def test_cdnv_grid_and_average_against_loops():
    X, y = _data()
    stats = theory.class_stats(X, y)
    v = theory.class_variances(X, y, stats.means)
    C, M = stats.num_classes, stats.means
    ref = np.full((C, C), np.nan)
    for i in range(C):
        for j in range(C):
            if i != j:
                ref[i, j] = (v[i] + v[j]) / (2 * np.linalg.norm(M[i] - M[j]) ** 2)
    grid = theory.cdnv_pairs(stats, v)
    np.testing.assert_allclose(grid, ref, rtol=REL)  # NaN on the diagonal in both
    np.testing.assert_allclose(theory.cdnv_pairs(stats, v, rows=[2, 5]), ref[[2, 5]], rtol=REL)
    off = ref[~np.isnan(ref)]
    for tile in (1, 2, 4, 1024):
        assert abs(float(theory.cdnv(stats, v, tile=tile)) - off.mean()) <= REL * off.mean()


def _etf_stats(C=7, p=10, scale=3.0):
    """Class statistics whose centred means are exactly a scaled Simplex ETF (balanced counts)."""
    means = scale * theory.simplex_etf(C, p, seed=2) + 0.5  # an offset: centring must remove it
    gm = means.mean(0)
    Mc = means - gm
    sb = Mc.T @ Mc / C
    return theory.ClassStats(np.full(C, 10.0), means, gm, 0.1 * np.eye(p), sb, 0.1 * np.eye(p) + sb)


@pytest.mark.parametrize("tile", [1, 3, 1024])
def test_kernels_on_a_simplex_etf(tile):
    """All pairwise distances of a unit ETF equal sqrt(2C/(C-1)): the kernels are constant (variance 0)."""
    C = 7
    stats = _etf_stats(C)
    d = np.sqrt(2 * C / (C - 1))
    log = theory.kernel_statistics(stats, "log", tile=tile)
    assert abs(float(log["mean"]) + np.log(d)) < 1e-12 and abs(float(log["var"])) < 1e-24
    riesz = theory.kernel_statistics(stats, "riesz", s=3.0, tile=tile)
    assert abs(float(riesz["mean"]) - d ** -3.0) < 1e-12 and abs(float(riesz["var"])) < 1e-24


@pytest.mark.parametrize("ddof", [0, 1])
def test_kernels_against_pdist(ddof):
    X, y = _data(C=11, p=5)
    stats = theory.class_stats(X, y)
    Mc = stats.centered_means
    U = Mc / np.linalg.norm(Mc, axis=1, keepdims=True)
    d = pdist(U)
    s = float(U.shape[1] - 2)  # the default Riesz exponent p - 2
    for kernel, k in (("log", -np.log(d)), ("riesz", d ** -s)):
        for tile in (2, 1024):
            out = theory.kernel_statistics(stats, kernel, ddof=ddof, tile=tile)
            assert abs(float(out["mean"]) - k.mean()) <= REL * abs(k.mean())
            assert abs(float(out["var"]) - k.var(ddof=ddof)) <= REL * k.var(ddof=ddof)


def test_interference_grid():
    stats = _etf_stats(C=6)
    G = theory.interference_grid(stats.means, center=stats.global_mean)
    expected = np.full((6, 6), -1 / 5) + np.eye(6) * (1 + 1 / 5)
    np.testing.assert_allclose(G, expected, atol=1e-12)
    W = np.random.default_rng(1).standard_normal((6, 4))
    U = W / np.linalg.norm(W, axis=1, keepdims=True)
    np.testing.assert_allclose(theory.interference_grid(W, rows=[0, 3]), (U @ U.T)[[0, 3]], rtol=1e-13, atol=1e-15)


def test_ood_orthogonality():
    stats = _etf_stats(C=4, p=6)  # centred means in a 3-dim subspace of R^6
    Mc = stats.centered_means
    basis = np.linalg.svd(Mc)[2]  # rows 3..5 span the complement of the means
    mu_o = stats.global_mean + 2.0 * basis[4]
    assert abs(float(theory.ood_orthogonality(stats, ood_mean=mu_o))) < 1e-12
    along = stats.global_mean + Mc[0]  # along class 0: |cos| = 1 for class 0, 1/(C-1) for the others
    assert abs(float(theory.ood_orthogonality(stats, ood_mean=along)) - (1 + 3 * (1 / 3)) / 4) < 1e-12
    rng = np.random.default_rng(0)
    F = rng.standard_normal((300, 6)) * 0.01 + mu_o  # the mean of held-out features
    direct = theory.ood_orthogonality(stats, ood_mean=F.mean(0))
    assert abs(float(theory.ood_orthogonality(stats, F)) - float(direct)) < 1e-13


def test_torch_equals_numpy():
    torch = pytest.importorskip("torch")
    X, y = _data()
    stats = theory.class_stats(X, y)
    v = theory.class_variances(X, y, stats.means)
    st = theory.class_stats(torch.from_numpy(X), torch.from_numpy(y))
    vt = theory.class_variances(torch.from_numpy(X), torch.from_numpy(y), st.means)
    np.testing.assert_allclose(vt.numpy(), v, rtol=1e-12)
    ref = float(theory.cdnv(stats, v))
    assert abs(theory.cdnv(st, vt, tile=3).item() - ref) <= 1e-12 * ref
    a, b = theory.kernel_statistics(st, "log", tile=2), theory.kernel_statistics(stats, "log")
    assert abs(a["var"].item() - float(b["var"])) <= 1e-12 * float(b["var"])


def test_bad_input():
    X, y = _data()
    stats = theory.class_stats(X, y)
    with pytest.raises(ValueError, match="ddof"):
        theory.class_variances(X, y, stats.means, ddof=-1)
    with pytest.raises(ValueError, match="variance is undefined"):
        theory.class_variances(X[:9], y[:9], stats.means, ddof=1)  # one sample per class
    with pytest.raises(ValueError, match="shape mismatch: means"):
        theory.class_variances(X, y, stats.means[:, :3])
    with pytest.raises(ValueError, match="shape mismatch: variances"):
        theory.cdnv(stats, np.ones(3))
    with pytest.raises(ValueError, match="unknown kernel"):
        theory.kernel_statistics(stats, "gauss")
    with pytest.raises(ValueError, match="s = 0"):
        theory.kernel_statistics(stats, "riesz", s=0)
    with pytest.raises(ValueError, match="exactly one"):
        theory.ood_orthogonality(stats)
    with pytest.raises(ValueError, match="shape mismatch: ood_features"):
        theory.ood_orthogonality(stats, X[:, :2])
    with pytest.raises(ValueError, match="OOD mean equals the global mean"):
        theory.ood_orthogonality(stats, ood_mean=stats.global_mean)
