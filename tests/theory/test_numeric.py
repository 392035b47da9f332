"""The numeric core of `theory` against float64 NumPy references (math §9).

Tolerances: every identity here is exact in real arithmetic; float64 evaluation of
O(10)-term sums of O(1..1e3) numbers gives relative errors of a few 1e-14, so "exact" is
asserted at 1e-10 relative (math §9 preamble), leaving four orders of margin.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import theory
from theory import laws

RTOL = 1e-10


def make_data(seed=0, counts=(7, 7, 7, 7, 7), p=12, spread=2.0, shift=0.0):
    rng = np.random.default_rng(seed)
    C = len(counts)
    y = np.concatenate([np.full(k, c) for c, k in enumerate(counts)])
    means = spread * rng.standard_normal((C, p)) + shift
    H = means[y] + rng.standard_normal((len(y), p))
    return H, y


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def reference_ridge(H, y, lam, bias=True):
    """Ridge least squares by numpy.linalg.lstsq on stacked rows (math §9 item 4)."""
    n, p = H.shape
    C = y.max() + 1
    X = np.hstack([H, np.ones((n, 1))]) if bias else H
    Y = np.eye(C)[y]
    # (1/(2n))||X W^T - Y||^2 + (lam/2)||W||^2  <=>  lstsq on [X/sqrt(n); sqrt(lam) I]
    A = np.vstack([X / np.sqrt(n), np.sqrt(lam) * np.eye(X.shape[1])])
    B = np.vstack([Y / np.sqrt(n), np.zeros((X.shape[1], C))])
    sol = np.linalg.lstsq(A, B, rcond=None)[0].T
    return (sol[:, :p], sol[:, p]) if bias else (sol, None)


# ---------------------------------------------------------------- decomposition (items 1-7)


@settings(max_examples=25, deadline=None)
@given(
    counts=st.lists(st.integers(2, 9), min_size=2, max_size=5),
    p=st.integers(1, 8),
    lam=st.sampled_from([0.0, 1e-3, 0.5, 3.0]),
    bias=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_decomposition_is_exact_for_any_counts(counts, p, lam, bias, seed):
    H, y = make_data(seed, counts, p)
    n = len(y)
    if lam == 0.0 and n <= p + 1:
        lam = 0.1  # Sigma_T singular without ridge: not the identity under test
    rng = np.random.default_rng(seed + 1)
    W = rng.standard_normal((len(counts), p))
    b = rng.standard_normal(len(counts)) if bias else None
    stats = theory.class_stats(H, y)
    d = theory.decompose(stats, W, b, lam)
    direct = float(theory.mse_loss(H, y, W, b, lam))
    total = float(d["l_nc1"] + d["l_nc23"] + d["l_perp"])
    assert abs(total - direct) <= RTOL * direct
    assert abs(float(d["loss"]) - direct) <= RTOL * direct
    assert float(d["l_perp"]) >= 0.0
    # At an independently computed ridge classifier (lstsq on stacked rows, not theory's solver):
    # l_perp is quadratic in the gap between two backward-stable solutions (each off by ~cond * eps),
    # i.e. at round-off squared: asserted at 1e-14 * loss, measured <= 4e-24 over 300 random cases.
    # The directly evaluated loss there equals l_central to RTOL (measured <= 4e-14).
    W_ref, b_ref = reference_ridge(H, y, lam, bias)
    at_ls = theory.decompose(stats, W_ref, b_ref, lam)
    loss_ref = float(theory.mse_loss(H, y, W_ref, b_ref, lam))
    assert abs(float(at_ls["l_perp"])) <= 1e-14 * loss_ref
    assert abs(loss_ref - float(at_ls["l_central"])) <= RTOL * loss_ref


@pytest.mark.parametrize("lam", [0.0, 0.05, 2.0])
@pytest.mark.parametrize("bias", [True, False])
def test_least_squares_matches_lstsq(lam, bias):
    H, y = make_data(3, (6, 4, 8), 5, shift=3.0)
    W, b = theory.least_squares_classifier(theory.class_stats(H, y), lam, bias)
    W_ref, b_ref = reference_ridge(H, y, lam, bias)
    assert rel(W, W_ref) < 1e-9
    if bias:
        assert rel(b, b_ref) < 1e-9


@pytest.mark.parametrize("lam", [0.0, 0.7])
def test_augmented_formula_and_gradient_at_optimum(lam):
    """Math §3.1 augmented ``W~_LS = (1/C) M~^T A^{-1}`` (balanced) and grad L = 0 there (items 3, 5)."""
    H, y = make_data(4, (6, 6, 6), 4)
    C, n, p = 3, len(y), 4
    stats = theory.class_stats(H, y)
    mu = H.mean(0)
    Sig_T = (H - mu).T @ (H - mu) / n
    A = np.block([[Sig_T + np.outer(mu, mu) + lam * np.eye(p), mu[:, None]], [mu[None, :], np.array([[1 + lam]])]])
    M_aug = np.vstack([np.stack([H[y == c].mean(0) for c in range(C)], 1), np.ones((1, C))])
    W_aug = M_aug.T @ np.linalg.inv(A) / C
    W, b = theory.least_squares_classifier(stats, lam)
    assert rel(np.hstack([W, b[:, None]]), W_aug) < 1e-10
    Ht = np.hstack([H, np.ones((n, 1))])
    Wt = np.hstack([W, b[:, None]])
    grad = (Wt @ Ht.T - np.eye(C)[y].T) @ Ht / n + lam * Wt
    assert np.max(np.abs(grad)) < 1e-12
    assert np.allclose(A, Ht.T @ Ht / n + lam * np.eye(p + 1))  # math §3.3 step 1: A = (1/n) H~H~^T + lam I


def notebook_decomposition(H, y, W, b, lam):
    """The authors' notebook formulas (math §8): unweighted mean of class means, (1/C) M^T."""
    C = y.max() + 1
    n, p = H.shape
    M = np.stack([H[y == c].mean(0) for c in range(C)], 1)
    muG = M.mean(1)
    Sw = sum((H[y == c] - M[:, c]).T @ (H[y == c] - M[:, c]) for c in range(C)) / n
    Mc = M - muG[:, None]
    St = Sw + Mc @ Mc.T / C
    A = np.block([[St + np.outer(muG, muG) + lam * np.eye(p), muG[:, None]], [muG[None, :], np.array([[1 + lam]])]])
    K = St + lam / (1 + lam) * np.outer(muG, muG) + lam * np.eye(p)
    W_ls = (M.T - np.outer(np.ones(C), muG) / (1 + lam)) @ np.linalg.inv(K) / C
    b_ls = (np.ones(C) / C - W_ls @ muG) / (1 + lam)
    l1 = 0.5 * (np.trace(W_ls @ (Sw + lam * np.eye(p)) @ W_ls.T) + lam * b_ls @ b_ls)
    l23 = np.sum((W_ls @ M + b_ls[:, None] - np.eye(C)) ** 2) / (2 * C)
    D = np.hstack([W - W_ls, (b - b_ls)[:, None]])
    lp = 0.5 * np.trace(D @ A @ D.T)
    return l1 + l23 + lp


def test_notebook_formulas_break_on_imbalanced_classes():
    """Math §9 item 7 / math §8 caveat 1: exact when balanced, not when imbalanced; ours is exact in both."""
    rng = np.random.default_rng(5)
    for counts, should_match in [((6, 6, 6, 6), True), ((3, 9, 5, 12), False)]:
        H, y = make_data(6, counts, 4)
        W, b = rng.standard_normal((4, 4)), rng.standard_normal(4)
        direct = float(theory.mse_loss(H, y, W, b, 0.1))
        nb = notebook_decomposition(H, y, W, b, 0.1)
        ours = theory.decompose(theory.class_stats(H, y), W, b, 0.1)
        assert abs(float(ours["l_nc1"] + ours["l_nc23"] + ours["l_perp"]) - direct) < RTOL * direct
        if should_match:
            assert abs(nb - direct) < RTOL * direct
        else:
            assert abs(nb - direct) > 1e-3 * direct


# ---------------------------------------------------------------- central path (items 9-12)


def test_central_path_closed_forms_in_snr_singular_values():
    H, y = make_data(7, (8,) * 5, 9)
    C = 5
    stats = theory.class_stats(H, y)
    omega = np.asarray(theory.snr_singular_values(stats))
    W, b = theory.least_squares_classifier(stats)
    d = theory.decompose(stats, W, b)
    assert rel(d["l_central"], laws.numeric("l_central")(omega, C).sum()) < RTOL
    assert rel(d["l_nc1"], laws.numeric("l_nc1")(omega, C).sum()) < RTOL
    assert rel(d["l_nc23"], laws.numeric("l_nc23")(omega, C).sum()) < RTOL
    webb_lowe = (C - 1 - np.trace(np.linalg.solve(stats.sigma_t, stats.sigma_b))) / (2 * C)
    assert rel(d["l_central"], webb_lowe) < RTOL
    # item 11: 1^T W_LS = 0, b_LS = (1/C) 1 - W_LS mu_G
    assert np.max(np.abs(W.sum(0))) < 1e-12 * np.max(np.abs(W))
    assert rel(b, np.ones(C) / C - W @ stats.global_mean) < RTOL


def test_envelope_gradient_of_central_path_loss():
    """Math §9 item 12: d L_central / d h_i = (1/n) W_LS^T (W_LS h_i + b_LS - e_{y_i})."""
    H, y = make_data(8, (5, 5, 5), 3)
    n, C = len(y), 3

    def l_central(Hm):
        return float(theory.decompose(theory.class_stats(Hm, y), np.zeros((C, 3)), np.zeros(C))["l_central"])

    stats = theory.class_stats(H, y)
    W, b = theory.least_squares_classifier(stats)
    analytic = (H @ W.T + b - np.eye(C)[y]) @ W / n
    eps = 1e-6
    for i, j in [(0, 0), (7, 2), (14, 1)]:
        Hp, Hm = H.copy(), H.copy()
        Hp[i, j] += eps
        Hm[i, j] -= eps
        fd = (l_central(Hp) - l_central(Hm)) / (2 * eps)
        # central difference at eps = 1e-6: truncation ~eps^2, round-off ~1e-16 / eps; measured
        # |fd - g| <= 3.5e-12 (relative <= 1e-9) for |g| ~ 3e-3..5e-3
        assert abs(fd - analytic[i, j]) < 1e-7 * abs(analytic[i, j]) + 1e-12


# ---------------------------------------------------------------- invariance (items 13-16)


def test_affine_invariance_at_zero_ridge():
    H, y = make_data(9, (6,) * 4, 5)
    rng = np.random.default_rng(9)
    Q1, Q2 = (np.linalg.qr(rng.standard_normal((5, 5)))[0] for _ in range(2))
    A = Q1 @ np.diag([0.2, 0.5, 1.0, 3.0, 8.0]) @ Q2  # generic, condition number 40
    c = rng.standard_normal(5)
    s1, s2 = theory.class_stats(H, y), theory.class_stats(H @ A.T + c, y)
    W1, b1 = theory.least_squares_classifier(s1)
    W2, b2 = theory.least_squares_classifier(s2)
    d1, d2 = theory.decompose(s1, W1, b1), theory.decompose(s2, W2, b2)
    for k in ("l_nc1", "l_nc23", "l_central"):
        assert rel(d2[k], d1[k]) < 1e-9
    assert rel(W2, W1 @ np.linalg.inv(A)) < 1e-9
    assert rel((H @ A.T + c) @ W2.T + b2, H @ W1.T + b1) < 1e-9  # fitted outputs unchanged
    assert rel(theory.snr_singular_values(s2), theory.snr_singular_values(s1)) < 1e-9


def test_ridge_breaks_general_but_keeps_orthogonal_invariance():
    H, y = make_data(10, (6,) * 4, 5)
    rng = np.random.default_rng(10)
    lam = 0.3
    Q = np.linalg.qr(rng.standard_normal((5, 5)))[0]
    A = rng.standard_normal((5, 5)) + 3 * np.eye(5)
    base = theory.class_stats(H, y)
    W, b = theory.least_squares_classifier(base, lam)
    ref = theory.decompose(base, W, b, lam)

    def terms(Hm):
        s = theory.class_stats(Hm, y)
        return theory.decompose(s, *theory.least_squares_classifier(s, lam), lam)

    rot = terms(H @ Q.T)
    assert rel(rot["l_nc1"], ref["l_nc1"]) < 1e-9 and rel(rot["l_nc23"], ref["l_nc23"]) < 1e-9
    for Hm in (H @ A.T, H + 1.5):
        other = terms(Hm)
        assert rel(other["l_central"], ref["l_central"]) > 1e-4


def test_snr_rotates_by_an_orthogonal_matrix():
    """Math §9 item 15: SNR(A H) = Q SNR(H) with Q = (A Sw A^T)^{-1/2} A Sw^{1/2} orthogonal."""
    H, y = make_data(11, (7,) * 4, 6)
    A = np.random.default_rng(11).standard_normal((6, 6)) + 2 * np.eye(6)
    s1, s2 = theory.class_stats(H, y), theory.class_stats(H @ A.T, y)
    isqrt2 = np.asarray(theory.inverse_sqrt_within(s2))
    sqrt1 = np.linalg.inv(np.asarray(theory.inverse_sqrt_within(s1)))
    Q = isqrt2 @ A @ sqrt1
    assert np.max(np.abs(Q @ Q.T - np.eye(6))) < 1e-10
    assert rel(theory.snr_matrix(s2), Q @ np.asarray(theory.snr_matrix(s1))) < 1e-9


def test_renormalized_features():
    """Math §9 item 16: Sigma_W(X) = I, mu_G(X) = 0, (1/C) Tr(Sigma_W Sigma_B^+) = sum omega^-2."""
    H, y = make_data(12, (9, 5, 7, 6), 5, shift=4.0)
    stats = theory.class_stats(H, y)
    X = theory.renormalize(H, stats)
    sx = theory.class_stats(X, y)
    assert np.max(np.abs(sx.sigma_w - np.eye(5))) < 1e-12
    assert np.max(np.abs(sx.global_mean)) < 1e-12
    assert rel(theory.snr_singular_values(sx), theory.snr_singular_values(stats)) < 1e-10
    # Sigma_B is count-weighted: with weights pi_c, (1/C)Tr(...) = sum omega^-2 holds for pi = 1/C only.
    balanced_H, balanced_y = make_data(12, (6,) * 4, 5)
    sb = theory.class_stats(balanced_H, balanced_y)
    xb = theory.class_stats(theory.renormalize(balanced_H, sb), balanced_y)
    omega_b = np.asarray(theory.snr_singular_values(sb))
    assert rel(theory.nc_metrics(xb)["nc1"], np.sum(omega_b**-2.0)) < 1e-10


# ---------------------------------------------------------------- metrics (items 24-27)


def etf_configuration(C=5, p=8, N=6, noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    means = 3.0 * theory.simplex_etf(C, p, seed=seed) + rng.standard_normal(p)  # arbitrary global mean
    y = np.repeat(np.arange(C), N)
    dev = noise * rng.standard_normal((C * N, p))
    dev -= np.stack([dev[y == c].mean(0) for c in range(C)])[y]  # exact class means
    return means[y] + dev, y, means


def test_golden_values_on_a_simplex_etf():
    C = 5
    H, y, means = etf_configuration(C)
    stats = theory.class_stats(H, y)
    centered = means - means.mean(0)
    m = theory.nc_metrics(stats, 0.7 * centered, np.zeros(C), central_path=False)
    for k in ("nc2_equinorm_means", "nc2_equiangular_means", "nc2_maxangle_means", "nc2_etf_distance",
              "nc2_equinorm_classifiers", "nc2_equiangular_classifiers", "nc2_maxangle_classifiers", "nc3"):
        assert abs(float(m[k])) < 1e-12, k
    cos = centered @ centered.T / np.outer(np.linalg.norm(centered, axis=1), np.linalg.norm(centered, axis=1))
    assert np.allclose(cos[~np.eye(C, dtype=bool)], -1 / (C - 1), atol=1e-13)
    assert np.allclose(theory.etf_gram(C), cos, atol=1e-13)


def test_nc1_collapse_and_scale_invariance():
    H, y, means = etf_configuration(noise=0.0)
    m = theory.nc_metrics(theory.class_stats(H, y))
    # features of size ~3 carry rounding deviations ~1e-16, so Sigma_W ~ 1e-32: NC1 is zero to that level
    assert abs(float(m["nc1"])) < 1e-28 and int(m["nc1_rank"]) == 4
    Hn, yn, _ = etf_configuration(noise=0.3)
    a = float(theory.nc_metrics(theory.class_stats(Hn, yn))["nc1"])
    b = float(theory.nc_metrics(theory.class_stats(17.0 * Hn, yn))["nc1"])
    assert a > 0 and abs(a - b) < 1e-12 * a


def test_notebook_parity():
    """Math §9 item 26 against a direct transcription of the notebook's computation (math §2.2)."""
    H, y = make_data(13, (6,) * 4, 7)
    C = 4
    W, b = np.random.default_rng(13).standard_normal((C, 7)), np.zeros(C)
    stats = theory.class_stats(H, y)
    paper = theory.nc_metrics(stats, W, b, central_path=False)
    nb = theory.nc_metrics(stats, W, b, convention="notebook", central_path=False)
    M = np.stack([H[y == c].mean(0) for c in range(C)], 1)
    Mc = M - M.mean(1, keepdims=True)
    Sb = Mc @ Mc.T / C
    Sw = sum((H[y == c] - M[:, c]).T @ (H[y == c] - M[:, c]) for c in range(C)) / len(y)
    U, s, _ = np.linalg.svd(Sb)
    inv_Sb = U[:, : C - 1] @ np.diag(1 / s[: C - 1]) @ U[:, : C - 1].T
    assert rel(nb["nc1"], np.trace(Sw @ inv_Sb)) < 1e-9
    assert rel(paper["nc1"], np.trace(Sw @ inv_Sb) / C) < 1e-9  # balanced: the paper's Sigma_B is the notebook's
    norms = np.linalg.norm(Mc, axis=0)
    assert rel(nb["nc2_equinorm_means"], norms.std(ddof=1) / norms.mean()) < 1e-12
    V = Mc / norms
    G = V.T @ V + 1 / (C - 1)
    G -= np.diag(np.diag(G))
    assert rel(nb["nc2_maxangle_means"], np.abs(G).sum() / (C * (C - 1))) < 1e-12
    cos = (V.T @ V)[np.triu_indices(C, 1)]  # cosines of the centred means over unordered pairs
    assert rel(nb["nc2_equiangular_means"], cos.std(ddof=1)) < 1e-12
    nW, nM = W / np.linalg.norm(W), Mc.T / np.linalg.norm(Mc)
    assert rel(nb["nc3"], np.sum((nW - nM) ** 2)) < 1e-12


def test_paper_nc1_against_count_weighted_pinv():
    """Paper NC1 ``(1/C) Tr(Sigma_W pinv(Sigma_B))`` with count-weighted ``mu_G`` and ``Sigma_B`` (math §1, §2.1),
    on imbalanced classes, against NumPy's ``pinv`` of the explicitly formed ``Sigma_B``; the notebook's
    trace (``nc1_notebook``) is the same trace without ``1/C``."""
    counts = (3, 9, 5, 12)
    H, y = make_data(31, counts, 7)
    C, n = len(counts), len(y)
    m = theory.nc_metrics(theory.class_stats(H, y))
    pi = np.bincount(y) / n
    M = np.stack([H[y == c].mean(0) for c in range(C)])  # (C, p)
    Mc = M - pi @ M
    Sb = (Mc * pi[:, None]).T @ Mc
    Sw = sum((H[y == c] - M[c]).T @ (H[y == c] - M[c]) for c in range(C)) / n
    trace = np.trace(Sw @ np.linalg.pinv(Sb, rcond=1e-10, hermitian=True))
    # Sigma_B's nonzero eigenvalues span one decade here, so both routes agree to round-off (measured 1e-15)
    assert rel(m["nc1"], trace / C) < 1e-12
    assert rel(m["nc1_notebook"], trace) < 1e-12
    assert int(m["nc1_rank"]) == C - 1


def test_ncc_mismatch_against_loop_and_centering():
    H, y = make_data(14, (10,) * 4, 6, spread=0.6)
    rng = np.random.default_rng(14)
    W, b = rng.standard_normal((4, 6)), rng.standard_normal(4)
    stats = theory.class_stats(H, y)
    means = stats.means
    loop = np.mean([np.argmax(W @ h + b) != np.argmin([np.linalg.norm(h - m) for m in means]) for h in H])
    assert float(theory.ncc_mismatch(H, y, stats, W, b)) == pytest.approx(loop, abs=1e-15)
    assert 0 < loop < 1
    shift = rng.standard_normal(6)
    s2 = theory.class_stats(H + shift, y)
    b2 = b - W @ shift  # same network outputs on the shifted features
    assert float(theory.ncc_mismatch(H + shift, y, s2, W, b2)) == pytest.approx(loop, abs=1e-15)


# ---------------------------------------------------------------- streaming, backends, precision


def test_accumulator_merge_is_exact():
    H, y = make_data(15, (13, 4, 9, 11), 6, shift=100.0)  # large mean: tests cancellation
    rng = np.random.default_rng(15)
    order = rng.permutation(len(y))
    H, y = H[order], y[order]
    one_shot = theory.class_stats(H, y)
    parts = []
    for lo, hi in [(0, 3), (3, 4), (4, 20), (20, 37)]:  # includes batches missing classes
        parts.append(theory.ClassStatsAccumulator(4).update(H[lo:hi], y[lo:hi]))
    merged = parts[0]
    for acc in parts[1:]:
        merged.merge(theory.ClassStatsAccumulator.from_state(4, acc.state()))
    for a, b in zip(merged.finalize(), one_shot):
        assert rel(a, b) < 1e-11


def test_backends_agree():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    torch = pytest.importorskip("torch")
    H, y = make_data(16, (6, 8, 5), 6)
    W, b = np.random.default_rng(16).standard_normal((3, 6)), np.zeros(3)
    results = []
    for conv in (lambda a: a, jnp.asarray, torch.as_tensor):
        stats = theory.class_stats(conv(H), conv(y))
        out = {**theory.nc_metrics(stats, conv(W), conv(b)), **theory.decompose(stats, conv(W), conv(b), 0.1)}
        out["omega"] = theory.snr_singular_values(stats)
        out["nc4"] = theory.ncc_mismatch(conv(H), conv(y), stats, conv(W), conv(b))
        results.append(theory.to_float_dict(out))
    for other in results[1:]:
        for k, v in results[0].items():
            assert rel(other[k], v) < 1e-10, k


def test_jit_and_vmap_through_theory():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    H, y = make_data(17, (5,) * 3, 4)
    stacked = jnp.stack([jnp.asarray(H), jnp.asarray(2 * H + 1)])

    @jax.jit
    def nc1(h):
        return theory.nc_metrics(theory.class_stats(h, jnp.asarray(y), num_classes=3))["nc1"]

    values = jax.vmap(nc1)(stacked)
    # labels captured as a constant inside jit (values concrete outside, staged inside)
    captured = jax.jit(lambda h: theory.class_stats(h, jnp.asarray(y), 3).sigma_w)(jnp.asarray(H))
    assert rel(captured, theory.class_stats(H, y).sigma_w) < 1e-12
    expected = float(theory.nc_metrics(theory.class_stats(H, y))["nc1"])
    assert np.allclose(np.asarray(values), expected, rtol=1e-10)


def test_near_collapse_accuracy():
    """Sigma_W = (eps^2/p) I exactly, eps = 1e-6 relative to unit-norm ETF means (spec design "Numerics").

    Closed forms: NC1 = (C-1)^2 eps^2 / (C p), omega_j = sqrt(C/(C-1)) sqrt(p) / eps.
    Deviations of 1e-6 on O(1) features carry ~1e-16/1e-6 = 1e-10 relative rounding: assert 1e-8.
    """
    C, p, eps = 4, 6, 1e-6
    means = theory.simplex_etf(C, p, seed=3)
    dev = np.vstack([eps * np.eye(p), -eps * np.eye(p)])
    H = np.vstack([means[c] + dev for c in range(C)])
    y = np.repeat(np.arange(C), 2 * p)
    stats = theory.class_stats(H, y)
    m = theory.nc_metrics(stats)
    assert rel(m["nc1"], (C - 1) ** 2 * eps**2 / (C * p)) < 1e-8
    assert rel(theory.snr_singular_values(stats), np.full(C - 1, np.sqrt(C / (C - 1) * p) / eps)) < 1e-8
    assert float(m["nc2_etf_distance"]) < 1e-9


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda H, y: theory.class_stats(np.where(np.arange(H.size).reshape(H.shape) == 3, np.nan, H), y), "NaN"),
        (lambda H, y: theory.class_stats(H, y, num_classes=6), "empty class"),
        (lambda H, y: theory.class_stats(H, y + 1, num_classes=5), "out of range"),
        (lambda H, y: theory.class_stats(H, np.zeros_like(y)), "at least 2 classes"),
        (lambda H, y: theory.class_stats(H[:-1], y), "shape mismatch"),
        (lambda H, y: theory.class_stats(H[:, 0], y), "2-D"),
        (lambda H, y: theory.decompose(theory.class_stats(H, y), np.zeros((5, 3))), "shape mismatch"),
        (lambda H, y: theory.decompose(theory.class_stats(H, y), np.zeros((5, 4)), lam=-1.0), "lam"),
        (lambda H, y: theory.nc_metrics(theory.class_stats(H, y), convention="other"), "unknown convention"),
        (lambda H, y: theory.lam_from_weight_decay(5e-4, reduction="mean"), "num_classes"),
        (lambda H, y: theory.lam_from_weight_decay(5e-4, reduction="nope"), "unknown reduction"),
        (lambda H, y: theory.ClassStatsAccumulator(5).finalize(), "no samples"),
    ],
)
def test_bad_input_names_the_problem(make, message):
    H, y = make_data(18, (4,) * 5, 4)
    with pytest.raises(ValueError, match=message):
        make(H, y)


def test_singular_covariances_raise():
    H, y, _ = etf_configuration(noise=0.0)  # Sigma_W = 0, Sigma_T rank C-1 < p
    stats = theory.class_stats(H, y)
    with pytest.raises(ValueError, match="singular Sigma_W"):
        theory.snr_singular_values(stats, support="full")
    with pytest.raises(ValueError, match="Sigma_W is zero"):  # no support at all: never a silent value
        theory.snr_singular_values(stats)
    with pytest.raises(ValueError, match="singular"):
        theory.least_squares_classifier(stats, lam=0.0, on_singular="raise")
    W, b = theory.least_squares_classifier(stats, lam=0.1)  # ridge keeps it defined
    assert np.all(np.isfinite(W)) and np.all(np.isfinite(b))


def test_lam_mapping():
    """Math §8 item 2: nn.MSELoss() (mean over batch and C outputs) with wd maps to lam = C wd / 2."""
    wd, C, B = 5e-4, 10, 128
    assert theory.lam_from_weight_decay(wd, reduction="mean", num_classes=C) == pytest.approx(C * wd / 2)
    assert theory.lam_from_weight_decay(wd, reduction="notebook") == pytest.approx(wd / 2)
    assert theory.lam_from_weight_decay(wd, reduction="sum", batch_size=B) == pytest.approx(wd / (2 * B))
    # The mapping is what makes the minimisers coincide: check on a ridge problem.
    H, y = make_data(19, (5,) * 3, 4)
    n = len(y)
    lam = theory.lam_from_weight_decay(wd * 100, reduction="mean", num_classes=3)
    W, b = theory.least_squares_classifier(theory.class_stats(H, y), lam)
    # gradient of mean-MSE + (wd/2)||theta||^2 vanishes at the same point
    Ht = np.hstack([H, np.ones((n, 1))])
    Wt = np.hstack([W, b[:, None]])
    grad = 2 * (Wt @ Ht.T - np.eye(3)[y].T) @ Ht / (n * 3) + wd * 100 * Wt
    assert np.max(np.abs(grad)) < 1e-12


def test_class_stats_streams_large_inputs_exactly():
    """Inputs above theory.stats.CHUNK_ROWS go through the block merge: same statistics as one shot."""
    from theory.stats import CHUNK_ROWS, _batch_moments, _finalize

    rng = np.random.default_rng(20)
    n = 2 * CHUNK_ROWS + 123
    y = rng.integers(0, 7, n)
    H = rng.standard_normal((n, 9)) + 100.0  # large mean: cancellation would show
    chunked = theory.class_stats(H, y)
    one_shot = _finalize(*_batch_moments(H, y, 7, np), np)
    for a, b in zip(chunked, one_shot):
        assert rel(a, b) < 1e-11
