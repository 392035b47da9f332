"""Hui & Belkin's scaled MSE in the theory (math §3.6): the decomposition with targets ``M e_c`` and the per-row
split of the class-weighted loss (``k != 1``), both against the loss computed from the outputs."""

from __future__ import annotations

import numpy as np
import pytest

import theory

#: float64 sums of O(n C) terms of size O(M^2): the identity holds to a few ulps of the loss.
REL = 1e-12


def _data(counts, p=5, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(counts)), counts)
    means = 2.0 * rng.normal(size=(len(counts), p))
    H = means[labels] + rng.normal(size=(labels.size, p))
    return H, labels


def _direct(H, labels, W, b, lam, M, k=1.0):
    """``(1/(2n)) sum_i sum_j omega_ij (w_j . h_i + b_j - M delta_ij)^2 + (lam/2)||W~||^2`` from the outputs
    (math §3.6), with the class weights ``omega_ij = k`` on the true class and 1 elsewhere."""
    C = W.shape[0]
    T = np.eye(C)[labels]
    omega = 1.0 + (k - 1.0) * T
    out = H @ W.T + (0.0 if b is None else b)
    ridge = np.sum(W * W) + (0.0 if b is None else np.sum(b * b))
    return 0.5 * np.mean(np.sum(omega * (out - M * T) ** 2, axis=1)) + 0.5 * lam * ridge


@pytest.mark.parametrize("counts", [[12, 12, 12, 12], [5, 17, 9, 11]], ids=["balanced", "imbalanced"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("lam", [0.0, 0.03])
@pytest.mark.parametrize("M", [3.0, 0.4])
def test_scaled_targets_terms_sum_to_the_scaled_loss(counts, bias, lam, M):
    H, labels = _data(counts)
    C, p = len(counts), H.shape[1]
    rng = np.random.default_rng(1)
    W, b = rng.normal(size=(C, p)), (rng.normal(size=C) if bias else None)
    stats = theory.class_stats(H, labels, num_classes=C)
    d = theory.decompose(stats, W, b, lam, target_scale=M)
    direct = _direct(H, labels, W, b, lam, M)
    assert abs(float(d["loss"]) - direct) <= REL * direct
    parts = float(d["l_nc1"] + d["l_nc23"] + d["l_perp"])
    assert abs(parts - direct) <= REL * direct
    assert abs(float(theory.mse_loss(H, labels, W, b, lam, num_classes=C, target_scale=M)) - direct) <= REL * direct
    # every energy term is M^2 times the plain one at W / M; the ratios are scale-free
    plain = theory.decompose(stats, W / M, None if b is None else b / M, lam)
    for key in ("l_nc1", "l_nc23", "l_perp", "l_central"):
        assert float(d[key]) == pytest.approx(M * M * float(plain[key]), rel=REL)
    for key in ("rho_perp", "central_path_distance", "ls_rank"):
        assert float(d[key]) == pytest.approx(float(plain[key]), rel=REL)


def test_the_scaled_least_squares_classifier_is_m_times_the_plain_one():
    """At W~ = M W~_LS the scaled L_perp vanishes and the loss is M^2 times the plain central-path loss."""
    H, labels = _data([10, 10, 10])
    stats = theory.class_stats(H, labels, num_classes=3)
    M, lam = 5.0, 0.01
    W_ls, b_ls = theory.least_squares_classifier(stats, lam=lam)
    d = theory.decompose(stats, M * W_ls, M * b_ls, lam, target_scale=M)
    plain = theory.decompose(stats, W_ls, b_ls, lam)
    assert float(d["l_perp"]) <= REL * float(d["loss"])
    assert float(d["loss"]) == pytest.approx(M * M * float(plain["l_central"]), rel=REL)
    # the plain decomposition of the same classifier sees it far from W_LS: what the claims must not read
    assert float(theory.decompose(stats, M * W_ls, M * b_ls, lam)["rho_perp"]) > 0.5


def test_target_scale_one_is_the_plain_decomposition_exactly():
    H, labels = _data([7, 8, 9])
    stats = theory.class_stats(H, labels, num_classes=3)
    W, b = np.ones((3, H.shape[1])), np.zeros(3)
    a, c = theory.decompose(stats, W, b, 0.1), theory.decompose(stats, W, b, 0.1, target_scale=1.0)
    assert all(float(a[k]) == float(c[k]) for k in a)


@pytest.mark.parametrize("bad", [0, -2.0, float("nan"), float("inf"), "2", True, None])
def test_bad_target_scale_is_a_value_error_naming_it(bad):
    H, labels = _data([4, 4])
    stats = theory.class_stats(H, labels, num_classes=2)
    with pytest.raises(ValueError, match="target_scale"):
        theory.decompose(stats, np.zeros((2, H.shape[1])), None, target_scale=bad)
    with pytest.raises(ValueError, match="target_scale"):
        theory.mse_loss(H, labels, np.zeros((2, H.shape[1])), target_scale=bad)


def test_class_weighted_loss_splits_per_row_as_math_3_6_states():
    """k != 1 (math §3.6): per row j, the normal matrix A_j = A + (k-1) pi_j (Sigma~_j + mu~_j mu~_j^T) and the
    within-class matrix Sigma_W + (k-1) pi_j Sigma_j give L_NC1 + L_NC2/3 + L_perp = L_{k,M} exactly.
    Computed from the definitions with NumPy (the toolkit does not implement this case: out of its scope)."""
    counts, k, M, lam = [6, 11, 8], 4.0, 2.5, 0.02
    H, labels = _data(counts, p=4, seed=3)
    C, n = len(counts), labels.size
    rng = np.random.default_rng(5)
    Wt = rng.normal(size=(C, H.shape[1] + 1))  # augmented [W, b]
    Ht = np.hstack([H, np.ones((n, 1))])
    pi = np.bincount(labels) / n
    mu_t = np.stack([Ht[labels == c].mean(axis=0) for c in range(C)])
    cov_t = [np.cov(Ht[labels == c].T, bias=True) for c in range(C)]  # augmented: zero last row and column
    A = Ht.T @ Ht / n + lam * np.eye(Ht.shape[1])
    sigma_w = sum(pi[c] * cov_t[c] for c in range(C))
    l_nc1 = l_nc23 = l_perp = 0.0
    for j in range(C):
        omega = np.where(np.arange(C) == j, k, 1.0)
        A_j = A + (k - 1.0) * pi[j] * (cov_t[j] + np.outer(mu_t[j], mu_t[j]))
        w_ls = np.linalg.solve(A_j, k * M * pi[j] * mu_t[j])  # A_j symmetric: w_ls^T A_j = k M pi_j mu~_j^T
        l_nc1 += 0.5 * w_ls @ (sigma_w + (k - 1.0) * pi[j] * cov_t[j] + lam * np.eye(len(w_ls))) @ w_ls
        l_nc23 += 0.5 * np.sum(omega * pi * (mu_t @ w_ls - M * (np.arange(C) == j)) ** 2)
        dw = Wt[j] - w_ls
        l_perp += 0.5 * dw @ A_j @ dw
    direct = _direct(H, labels, Wt[:, :-1], Wt[:, -1], lam, M, k=k)
    assert abs(l_nc1 + l_nc23 + l_perp - direct) <= REL * direct
    assert l_perp > 0 and l_nc1 > 0 and l_nc23 > 0
