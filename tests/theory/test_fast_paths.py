"""The measurement's fast paths against plain references.

* ``ClassStatsAccumulator`` (shifted data, in-place ``syrk``, host blocks) against a two-pass
  float64 computation: exact in real arithmetic; float64 sums of ~1e4 terms give relative
  errors of ~1e-15 per entry, asserted at 1e-12 (three orders of margin), also in deep collapse
  where the class means are 1e4 times the within-class spread.
* ``least_squares_classifier(..., spectrum=)`` (one ``eigh(Sigma_T)``, Sherman-Morrison) against
  the direct solve: both are backward stable solves of the same system; the features below have
  ``cond(Sigma_T)`` ~1e2, so they agree to ~1e-13, asserted at 1e-10.  ``b_LS`` is compared
  relative to ``||W_LS||`` because ``b = (pi - W mu_G)/(1 + lam)`` cancels.
* ``sample_totals`` against a per-sample Python loop: the same float64 sums in another order.
* ``snr_singular_values`` (Cholesky) against the singular values of ``snr_matrix`` (eigh).
"""

import numpy as np
import pytest
import torch

import theory
from theory._backend import gram_accumulate, host_block_rows, namespace, symmetric_from_upper, zeros_gram


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def two_pass(H, y, C):
    """Reference statistics: class means, then centred scatter (float64 NumPy)."""
    H = np.asarray(H, dtype=np.float64)
    means = np.stack([H[y == c].mean(0) for c in range(C)])
    D = H - means[y]
    return means, D.T @ D / len(y)


def collapsed(n=3000, p=24, C=5, spread=1e-4, offset=50.0, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n)
    M = offset + 10 * rng.standard_normal((C, p))
    return M[y] + spread * rng.standard_normal((n, p)), y


@pytest.mark.parametrize("spread", [1.0, 1e-4])
@pytest.mark.parametrize("backend", ["numpy", "torch32", "torch64"])
def test_accumulator_matches_two_pass(spread, backend):
    H, y = collapsed(spread=spread)
    if backend == "torch32":
        Ht = torch.tensor(H, dtype=torch.float32)
        H = Ht.double().numpy()  # the reference sees the same float32 values
        feed, labels = Ht, torch.tensor(y)
    elif backend == "torch64":
        feed, labels = torch.tensor(H), torch.tensor(y)
    else:
        feed, labels = H, y
    acc = theory.ClassStatsAccumulator(5)
    for lo in range(0, len(y), 701):  # uneven batches
        acc.update(feed[lo:lo + 701], labels[lo:lo + 701])
    stats = acc.finalize()
    means, sw = two_pass(H, y, 5)
    assert rel(stats.means, means) < 1e-12
    assert rel(stats.sigma_w, sw) < 1e-12
    assert np.array_equal(np.asarray(stats.sigma_w), np.asarray(stats.sigma_w).T)


def test_accumulator_blocks_and_late_classes():
    """A batch longer than the host block is split; a class missing from the first batches gets its
    reference when it first appears; the caller's float64 array is left untouched."""
    rng = np.random.default_rng(1)
    n = 2 * host_block_rows(np.zeros((1, 1))) + 77
    y = np.where(np.arange(n) < 1500, rng.integers(0, 3, n), rng.integers(0, 4, n))  # class 3 only late
    H = rng.standard_normal((n, 9)) + 3 * np.eye(4, 9)[y]
    H_before = H.copy()
    stats = theory.ClassStatsAccumulator(4).update(H, y).finalize()
    assert np.array_equal(H, H_before)
    means, sw = two_pass(H, y, 4)
    assert rel(stats.means, means) < 1e-12 and rel(stats.sigma_w, sw) < 1e-12
    one_shot = theory.class_stats(H[:100], y[:100], 3)  # small input (classes 0-2): the one-shot path
    m100, s100 = two_pass(H[:100], y[:100], 3)
    assert rel(one_shot.sigma_w, s100) < 1e-12 and rel(one_shot.means, m100) < 1e-12


def test_accumulator_state_merge_roundtrip():
    H, y = collapsed(n=2000, spread=0.1)
    a, b = theory.ClassStatsAccumulator(5), theory.ClassStatsAccumulator(5)
    a.update(H[:900], y[:900])
    b.update(H[900:], y[900:])
    moved = theory.ClassStatsAccumulator.from_state(5, a.state())
    moved.merge(b)
    moved.update(H[:10], y[:10])  # updates after a merge continue from the merged moments
    H2, y2 = np.vstack([H, H[:10]]), np.concatenate([y, y[:10]])
    means, sw = two_pass(H2, y2, 5)
    stats = moved.finalize()
    assert rel(stats.means, means) < 1e-12 and rel(stats.sigma_w, sw) < 1e-12
    assert moved.count == len(y2)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # NumPy on the NaN batch
def test_bad_batch_leaves_the_accumulator_intact():
    H, y = collapsed(n=600, spread=0.5)
    acc = theory.ClassStatsAccumulator(5).update(H[:300], y[:300])
    before = acc.finalize()
    bad = H[300:].copy()
    bad[17, 3] = np.nan
    with pytest.raises(ValueError, match="features contains NaN or Inf"):
        acc.update(bad, y[300:])
    bad[17, 3] = np.inf
    with pytest.raises(ValueError, match="NaN or Inf"):
        acc.update(bad, y[300:])
    with pytest.raises(ValueError, match="holds .*numpy arrays"):  # one backend per accumulator
        acc.update(torch.tensor(H[300:]), torch.tensor(y[300:]))
    after = acc.finalize()
    assert np.array_equal(after.sigma_w, before.sigma_w) and np.array_equal(after.counts, before.counts)
    with pytest.raises(ValueError, match="labels out of range"):
        acc.update(H[:5], np.array([0, 1, 2, 3, 5]))
    # a first batch that is bad must not leave NaN references behind
    fresh = theory.ClassStatsAccumulator(5)
    with pytest.raises(ValueError):
        fresh.update(bad, y[300:])
    fresh.update(H, y)
    means, sw = two_pass(H, y, 5)
    assert rel(fresh.finalize().sigma_w, sw) < 1e-12


def test_gram_accumulate_in_place_upper_triangle():
    rng = np.random.default_rng(2)
    D1, D2 = rng.standard_normal((50, 7)), rng.standard_normal((30, 7))
    for like in (D1, torch.tensor(D1)):
        xp = namespace(like)
        S = zeros_gram(7, xp, like)
        S = gram_accumulate(S, D1 if isinstance(like, np.ndarray) else torch.tensor(D1))
        S2 = gram_accumulate(S, D2 if isinstance(like, np.ndarray) else torch.tensor(D2))
        assert S2 is S  # updated in place on the host
        full = symmetric_from_upper(S2, xp)
        assert rel(full, D1.T @ D1 + D2.T @ D2) < 1e-14
    S_c = np.zeros((7, 7))  # C-ordered: falls back to a plain sum, still correct
    assert rel(symmetric_from_upper(gram_accumulate(S_c, D1), np), D1.T @ D1) < 1e-14


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("lam", [0.0, 2.5e-4, 0.025, 0.5, 3.0])
def test_shared_spectrum_least_squares(bias, lam):
    rng = np.random.default_rng(3)
    counts = (40, 90, 55, 70)  # imbalanced
    y = np.concatenate([np.full(k, c) for c, k in enumerate(counts)])
    H = 2 * rng.standard_normal((4, 15))[y] + rng.standard_normal((len(y), 15)) + 4.0
    stats = theory.class_stats(H, y, 4)
    spectrum = theory.total_spectrum(stats)
    W1, b1 = theory.least_squares_classifier(stats, lam, bias)
    W2, b2 = theory.least_squares_classifier(stats, lam, bias, spectrum=spectrum)
    assert rel(W2, W1) < 1e-10
    if bias:
        assert np.max(np.abs(b2 - b1)) / np.max(np.abs(W1)) < 1e-10
    W = W1 + 0.01 * rng.standard_normal(W1.shape)
    b = None if not bias else b1 + 0.01
    d1 = theory.decompose(stats, W, b, lam=lam)
    d2 = theory.decompose(stats, W, b, lam=lam, spectrum=spectrum)
    for k in ("l_nc1", "l_nc23", "l_perp", "loss"):
        assert abs(float(d2[k]) - float(d1[k])) <= 1e-10 * abs(float(d1["loss"]))


def test_shared_spectrum_singular_cases():
    rng = np.random.default_rng(4)
    y = np.arange(12) % 3
    H = rng.standard_normal((12, 20))  # p > n: Sigma_T singular
    stats = theory.class_stats(H, y, 3)
    spectrum = theory.total_spectrum(stats)
    with pytest.raises(ValueError, match="singular"):
        theory.least_squares_classifier(stats, 0.0, True, spectrum=spectrum, on_singular="raise")
    W, b = theory.least_squares_classifier(stats, 0.1, True, spectrum=spectrum)  # ridge: well posed
    assert rel(W, theory.least_squares_classifier(stats, 0.1, True)[0]) < 1e-9
    # no bias, a constant feature: Sigma_T singular but Sigma_T + mu mu^T is not -> direct solve
    Hc = np.hstack([rng.standard_normal((300, 5)), np.full((300, 1), 2.0)])
    yc = np.arange(300) % 3
    sc = theory.class_stats(Hc, yc, 3)
    Wd, _ = theory.least_squares_classifier(sc, 0.0, False)
    Ws, _ = theory.least_squares_classifier(sc, 0.0, False, spectrum=theory.total_spectrum(sc))
    assert rel(Ws, Wd) < 1e-10


@pytest.mark.parametrize("backend", ["numpy", "torch32"])
def test_sample_totals_against_a_loop(backend):
    rng = np.random.default_rng(5)
    n, p, C = 2500, 11, 4
    y = rng.integers(0, C, n)
    H = rng.standard_normal((C, p))[y] * 0.8 + rng.standard_normal((n, p))
    W, b = rng.standard_normal((C, p)), rng.standard_normal(C)
    if backend == "torch32":
        Ht = torch.tensor(H, dtype=torch.float32)
        H = Ht.double().numpy()
        feed, labels, Wf, bf = Ht, torch.tensor(y), torch.tensor(W), torch.tensor(b)
    else:
        feed, labels, Wf, bf = H, y, W, b
    means = np.stack([H[y == c].mean(0) for c in range(C)])
    sq, mism, ncc_err, err = 0.0, 0, 0, 0
    for i in range(n):  # the per-sample definitions (math §1 "Loss", math §2.1 NC4)
        out = W @ H[i] + b
        sq += float(np.sum((out - np.eye(C)[y[i]]) ** 2))
        ncc = np.argmin(np.linalg.norm(H[i] - means, axis=1))
        mism += int(np.argmax(out) != ncc)
        ncc_err += int(ncc != y[i])
        err += int(np.argmax(out) != y[i])
    meansf = torch.tensor(means) if backend == "torch32" else means
    t = theory.sample_totals(feed, labels, Wf, bf, meansf)
    assert float(t["count"]) == n
    assert abs(float(t["sq_residual"]) - sq) < 1e-12 * sq
    assert float(t["ncc_mismatches"]) == mism and 0 < mism < n  # the loop's count, and a non-trivial one
    assert float(t["ncc_errors"]) == ncc_err and float(t["errors"]) == err and 0 < ncc_err < n and 0 < err < n
    # additive over batches; the loss is the paper's
    halves = [theory.sample_totals(feed[s], labels[s], Wf, bf, meansf) for s in (slice(0, 999), slice(999, n))]
    assert abs(sum(float(h["sq_residual"]) for h in halves) - sq) < 1e-12 * sq
    lam = 0.3
    loss = sq / (2 * n) + 0.5 * lam * (np.sum(W**2) + np.sum(b**2))
    assert abs(float(theory.loss_from_totals(t, Wf, bf, lam)) - loss) < 1e-12 * loss
    assert abs(float(theory.mse_loss(feed, labels, Wf, bf, lam)) - loss) < 1e-12 * loss


def test_sample_totals_bad_input():
    rng = np.random.default_rng(6)
    H, y = rng.standard_normal((40, 5)), np.arange(40) % 4
    W, b = rng.standard_normal((4, 5)), np.zeros(4)
    bad = H.copy()
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="features contains NaN or Inf"):
        theory.sample_totals(bad, y, W, b)
    with pytest.raises(ValueError, match="means must have shape"):
        theory.sample_totals(H, y, W, b, np.zeros((3, 5)))
    with pytest.raises(ValueError, match="labels out of range"):
        theory.sample_totals(H, np.arange(40) % 5, W, b)


def test_snr_singular_values_by_cholesky():
    rng = np.random.default_rng(7)
    n, p, C = 4000, 30, 6
    y = rng.integers(0, C, n)
    A = rng.standard_normal((p, p)) * 0.3
    H = 3 * rng.standard_normal((C, p))[y] + rng.standard_normal((n, p)) @ A + 5.0
    stats = theory.class_stats(H, y, C)
    via_eigh = np.linalg.svd(np.asarray(theory.snr_matrix(stats)), compute_uv=False)[: C - 1]
    # cond(Sigma_W) here is ~1e4: both routes are accurate to ~cond * eps ~ 1e-12
    assert rel(theory.snr_singular_values(stats), via_eigh) < 1e-9
    ts = theory.class_stats(torch.tensor(H), torch.tensor(y), C)
    assert rel(theory.snr_singular_values(ts).numpy(), via_eigh) < 1e-9
    y3 = np.arange(30) % 3
    singular = theory.class_stats(rng.standard_normal((30, 64)), y3, 3)  # p > n
    with pytest.raises(ValueError, match="singular Sigma_W"):
        theory.snr_singular_values(singular, support="full")
