"""Tiled C x C quantities (math §2.3): equal to the dense definitions to rounding, bounded memory, bad tiles.

References are the dense formulas written out here with NumPy (the whole ``C x C`` matrices), independent of
the tiled code.  Tolerance: relative 1e-12 (float64 sums of at most ~10^4 terms in another order; observed
below 1e-14), unless stated.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import theory
from theory.decomposition import means_residual
from theory.metrics import etf_distance, pair_statistics

REL = 1e-12


def _data(C, p, n, imbalanced, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n) if imbalanced else np.arange(n) % C
    y[:C] = np.arange(C)  # every class present
    X = 3.0 * rng.standard_normal((C, p))[y] + rng.standard_normal((n, p))
    W = rng.standard_normal((C, p))
    b = rng.standard_normal(C)
    return X, y, W, b


def _dense_cosines(R):
    U = R / np.linalg.norm(R, axis=1, keepdims=True)
    return U @ U.T


def _dense_equiangular(R):
    G = _dense_cosines(R)
    return np.std(G[np.triu_indices(len(R), 1)], ddof=1)


def _dense_maxangle(R):
    C = len(R)
    G = _dense_cosines(R)
    off = ~np.eye(C, dtype=bool)
    return np.abs(G[off] + 1 / (C - 1)).mean()


def _dense_etf(Mc):
    C = len(Mc)
    G = Mc @ Mc.T
    J = np.eye(C) - 1 / C
    return np.linalg.norm(G / np.linalg.norm(G) - J / np.linalg.norm(J))


def _dense_means_residual(stats, W, b):
    R = stats.means @ W.T + (0 if b is None else b[None, :]) - np.eye(stats.num_classes)
    return np.sum(stats.weights[:, None] * R * R)


def _close(a, b, rel=REL):
    assert abs(float(a) - float(b)) <= rel * max(abs(float(b)), 1e-300), (float(a), float(b))


@pytest.mark.parametrize("tile", [1, 3, 7, 1024])
def test_pair_statistics_equal_dense(tile):
    X, y, W, _ = _data(23, 6, 400, imbalanced=True)
    Mc = theory.class_stats(X, y).centered_means
    for R in (Mc, W):
        out = pair_statistics(R, np, tile=tile)
        _close(out["equiangular"], _dense_equiangular(R))
        _close(out["maxangle"], _dense_maxangle(R))
    _close(etf_distance(Mc, np, tile=tile), _dense_etf(Mc))


def test_pair_statistics_near_etf_keeps_small_values():
    """Near a Simplex ETF the equiangularity and ETF distance are ~1e-9: the tiled pass keeps them to ~1e-6
    relative (absolute rounding ~1e-16 on values ~1e-9), where a one-pass E[g^2] - E[g]^2 would not."""
    C = 12
    E = theory.simplex_etf(C, 20, seed=1)
    R = E + 1e-9 * np.random.default_rng(0).standard_normal(E.shape)
    R = R - R.mean(axis=0)
    out = pair_statistics(R, np, etf=True, tile=5)
    _close(out["equiangular"], _dense_equiangular(R), rel=1e-6)
    _close(out["etf_distance"], _dense_etf(R), rel=1e-6)
    assert 1e-11 < float(out["equiangular"]) < 1e-7


@pytest.mark.parametrize("C,p", [(9, 20), (40, 6)])  # C <= p + 1: residual tiles; C > p + 1: the p x p form
@pytest.mark.parametrize("imbalanced", [False, True])
def test_means_residual_equal_dense(C, p, imbalanced):
    X, y, W, b = _data(C, p, 30 * C, imbalanced)
    stats = theory.class_stats(X, y)
    W_ls, b_ls = theory.least_squares_classifier(stats, lam=0.0)
    for Wk, bk in ((W, b), (W, None), (W_ls, b_ls)):
        _close(means_residual(stats, Wk, bk, tile=4), _dense_means_residual(stats, Wk, bk))


@pytest.mark.parametrize("imbalanced", [False, True])
def test_nc_metrics_and_decompose_tiled_equal_untiled(imbalanced):
    X, y, W, b = _data(17, 5, 700, imbalanced)
    stats = theory.class_stats(X, y)
    small = theory.nc_metrics(stats, W, b, tile=4)
    whole = theory.nc_metrics(stats, W, b, tile=10_000)
    assert set(small) == set(whole)
    for k in whole:
        _close(small[k], whole[k])
    _close(whole["nc2_equiangular_classifiers"], _dense_equiangular(W))
    _close(whole["nc2_etf_distance"], _dense_etf(stats.centered_means))
    d_small = theory.decompose(stats, W, b, lam=0.01, tile=3)
    d_whole = theory.decompose(stats, W, b, lam=0.01, tile=10_000)
    for k in d_whole:
        _close(d_small[k], d_whole[k])
    # the identity L = L_NC1 + L_NC2/3 + L_perp (math §3.2) still holds against the loss from the samples
    direct = theory.mse_loss(X, y, W, b, lam=0.01)
    _close(d_small["l_nc1"] + d_small["l_nc23"] + d_small["l_perp"], direct, rel=1e-10)


def test_torch_tiled_equals_numpy():
    torch = pytest.importorskip("torch")
    X, y, W, b = _data(15, 4, 300, imbalanced=True)
    ref = theory.nc_metrics(theory.class_stats(X, y), W, b, tile=4)
    st = theory.class_stats(torch.from_numpy(X), torch.from_numpy(y))
    got = theory.nc_metrics(st, torch.from_numpy(W), torch.from_numpy(b), tile=4)
    for k in ref:
        _close(got[k].item(), ref[k], rel=1e-10)


def test_class_stats_many_classes_match_one_hot_reference():
    """The O(np) class sums (bincount, sparse indicator) against the dense one-hot product, C > n per block."""
    rng = np.random.default_rng(3)
    C, p, n = 3000, 4, 9000
    y = rng.permutation(np.arange(n) % C)
    X = rng.standard_normal((n, p)).astype(np.float32)
    stats = theory.class_stats(X, y)
    Y = np.zeros((n, C))
    Y[np.arange(n), y] = 1
    means = (Y.T @ X.astype(np.float64)) / Y.sum(0)[:, None]
    D = X - means[y]
    np.testing.assert_allclose(stats.means, means, rtol=0, atol=1e-12)
    np.testing.assert_allclose(stats.sigma_w, D.T @ D / n, rtol=0, atol=1e-12)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "8"])
def test_bad_tile_is_a_one_line_value_error(bad):
    X, y, W, b = _data(5, 3, 50, False)
    stats = theory.class_stats(X, y)
    calls = (
        lambda: theory.nc_metrics(stats, W, b, tile=bad),
        lambda: theory.decompose(stats, W, b, tile=bad),
        lambda: theory.ncc_mismatch(X, y, stats, W, b, tile=bad),
        lambda: theory.sample_totals(X, y, W, b, tile=bad),
        lambda: theory.cdnv(stats, np.ones(5), tile=bad),
        lambda: theory.kernel_statistics(stats, tile=bad),
    )
    for call in calls:
        with pytest.raises(ValueError, match=r"^tile must be a positive integer") as info:
            call()
        assert "\n" not in str(info.value)


def test_ncc_mismatch_tiled_equals_untiled():
    X, y, W, b = _data(30, 5, 900, True)
    stats = theory.class_stats(X, y)
    a = theory.sample_totals(X, y, W, b, stats.means, tile=7)
    c = theory.sample_totals(X, y, W, b, stats.means, tile=10_000)
    assert float(a["ncc_mismatches"]) == float(c["ncc_mismatches"])
    _close(a["sq_residual"], c["sq_residual"])


def test_memory_stays_bounded_at_two_thousand_classes():
    """C = 2,000: a C x C float64 matrix is 32 MB; nc_metrics + decompose with tile = 64 must peak well below
    it (traced NumPy allocations; bound 12 MB = statistics ~2 MB + a few 64 x 2000 tiles ~1 MB each + slack)."""
    C, p = 2000, 32
    rng = np.random.default_rng(5)
    means = rng.standard_normal((C, p))
    stats = theory.ClassStats(
        counts=np.full(C, 10.0), means=means, global_mean=means.mean(0),
        sigma_w=np.eye(p) * 0.1, sigma_b=np.cov(means.T, bias=True),
        sigma_t=np.eye(p) * 0.1 + np.cov(means.T, bias=True),
    )
    W = rng.standard_normal((C, p))
    b = rng.standard_normal(C)
    tracemalloc.start()
    try:
        out = theory.nc_metrics(stats, W, b, tile=64)
        dec = theory.decompose(stats, W, b, tile=64)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "unavailable" not in out and np.isfinite(float(dec["loss"]))
    assert peak < 12e6, f"peak traced memory {peak / 1e6:.1f} MB"


def test_cosine_ddof_selects_the_biased_std():
    """``cosine_ddof=0``: the biased std of the cosines over pairs (some implementations' convention, math §2.3)."""
    X, y, W, b = _data(13, 4, 300, True)
    stats = theory.class_stats(X, y)
    out = theory.nc_metrics(stats, W, b, tile=5, cosine_ddof=0)
    G = _dense_cosines(W)
    _close(out["nc2_equiangular_classifiers"], np.std(G[np.triu_indices(13, 1)], ddof=0))
    with pytest.raises(ValueError, match="cosine_ddof"):
        theory.nc_metrics(stats, W, b, cosine_ddof=-1)
