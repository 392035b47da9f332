"""Measurement of a network: streamed float64 statistics equal one-shot theory values."""

from __future__ import annotations

import pytest
import torch

import theory
from empirical.loss import network_loss
from empirical.measurement import METRIC_KEYS, classifier_of, feature_pass, measure
from empirical.models import build_model


def _setup(n_per_class=25, C=4, d=10, widths=(16, 6), seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(C).repeat_interleave(n_per_class)
    means = 2.0 * torch.randn(C, d, generator=g)
    x = means[y] + torch.randn(y.numel(), d, generator=g)
    torch.manual_seed(seed)
    model = build_model("mlp", num_classes=C, input_shape=(d,), widths=list(widths), batch_norm=True)
    model.train()
    with torch.no_grad():  # give BatchNorm non-trivial running statistics
        for _ in range(3):
            model(x)
    return model, x, y, C


def test_streamed_equals_one_shot():
    """measure() (batches of 7, streamed statistics) against an independent one-shot reference:
    one eval-mode forward pass of the whole set, then theory's functions on those features.
    The two forward passes differ only in float32 BLAS rounding (~1e-7 relative per feature),
    so metrics agree to ~1e-6; the identity within one measurement stays at rounding level."""
    model, x, y, C = _setup()
    m = measure(model, x, y, C, weight_decay=5e-4, batch_size=7)
    assert model.training  # mode restored
    model.eval()
    with torch.no_grad():
        logits, h = model.forward_with_features(x)
    model.train()
    h = h.double()
    stats = theory.class_stats(h, y, C)
    W, b = classifier_of(model)
    lam = C * 5e-4 / 2
    ref = theory.to_float_dict(theory.nc_metrics(stats, W, b, lam=lam))
    ref.update(theory.to_float_dict(theory.decompose(stats, W, b, lam=lam)))
    ref_0 = theory.to_float_dict(theory.decompose(stats, W, b, lam=0.0))
    for key in ("nc1", "nc1_notebook", "nc2_equinorm_means", "nc2_maxangle_classifiers", "nc3",
                "l_nc1", "l_nc23", "l_perp", "central_path_distance"):
        assert m[key] == pytest.approx(ref[key], rel=1e-5, abs=1e-12), key
    for key in ("l_nc1", "l_nc23", "l_perp"):
        assert m[f"{key}_lam0"] == pytest.approx(ref_0[key], rel=1e-5, abs=1e-12), key
    assert m["train_error"] == pytest.approx(float((logits.argmax(1) != y).double().mean()))
    assert m["nc4"] == pytest.approx(float(theory.ncc_mismatch(h, y, stats, W, b)))
    assert m["loss"] == pytest.approx(float(theory.mse_loss(h, y, W, b, lam=lam)), rel=1e-6)
    assert m["loss_nowd"] == pytest.approx(float(theory.mse_loss(h, y, W, b, lam=0.0)), rel=1e-6)
    assert m["identity_residual"] < 1e-10
    assert set(METRIC_KEYS) <= set(m) and "warnings" not in m


def test_batch_size_does_not_matter():
    """Only the float32 forward pass depends on the batch shape (BLAS rounding, ~1e-7)."""
    model, x, y, C = _setup(seed=1)
    a = measure(model, x, y, C, weight_decay=5e-4, batch_size=3, test_x=x[:10], test_y=y[:10])
    b = measure(model, x, y, C, weight_decay=5e-4, batch_size=1000, test_x=x[:10], test_y=y[:10])
    for key in METRIC_KEYS:
        va, vb = a[key], b[key]
        if isinstance(va, (str, int)):
            assert va == vb, key
        elif isinstance(va, list):
            assert va == pytest.approx(vb, rel=1e-6)
        else:
            assert va == pytest.approx(vb, rel=1e-6, abs=1e-12), key
    assert 0 <= a["test_error"] <= 1 and a["test_loss_nowd"] > 0


def test_singular_covariances_measured_on_their_support():
    """p > n per class (Sigma_W singular, rank <= n - C) and wd = 0 (lam = 0, Sigma_T singular): nothing is
    None any more.  The SNR is the one on the support of Sigma_W, equal to the SNR of the features written in
    an orthonormal basis of range(Sigma_W) (computed independently here, from an SVD of the centred features);
    the lam = 0 decomposition uses the minimum-norm least-squares classifier and stays exact."""
    model, x, y, C = _setup(n_per_class=3, widths=(32, 24))
    m = measure(model, x, y, C, weight_decay=0.0)
    assert "warnings" not in m and all(m[k] is not None for k in METRIC_KEYS)
    n, p = x.shape[0], 24
    assert m["snr_support"] == "range" and m["snr_dim"] == p and m["snr_rank"] <= n - C
    assert m["ls_rank_lam0"] <= n < p + 1  # A = (1/n) H~ H~^T has rank <= n
    # reference: within-class-centred features -> orthonormal basis of range(Sigma_W) -> SNR there
    model.eval()
    with torch.no_grad():
        h = model.forward_with_features(x)[1].double()
    model.train()
    means = torch.stack([h[y == c].mean(0) for c in range(C)])
    _, s, Vt = torch.linalg.svd(h - means[y], full_matrices=False)
    basis = Vt[: m["snr_rank"]].T  # the rank measured is the number of singular values well above round-off
    assert float(s[m["snr_rank"] - 1] / s[0]) > 1e-6 and (
        m["snr_rank"] == len(s) or float(s[m["snr_rank"]] / s[0]) < 1e-6
    )
    ref = theory.snr_singular_values(theory.class_stats(h @ basis, y, C), support="full")
    # the same float32 features (n = 12: one batch in both), so only float64 round-off of the two routes (eigh of
    # Sigma_W against an SVD of the samples) differs, amplified by cond(Sigma_W on its range) ~ 30: measured 8e-16
    assert m["snr_singular_values"] == pytest.approx(ref.tolist(), rel=1e-12)
    assert 0.0 <= m["snr_dropped_fraction"] <= 1.0
    assert m["identity_residual"] < 1e-8
    # PSD quadratic forms that vanish here in exact arithmetic (the features are interpolated): >= 0 up to the
    # float64 rounding of the solve, a few ulps of the loss
    assert m["l_nc1_lam0"] >= -1e-14 * m["loss"] and m["l_perp_lam0"] >= -1e-14 * m["loss"]


def test_dead_units_give_the_reduced_features_snr():
    """Real network features with dead ReLU units (BatchNorm shift -100 before the ReLU: the units output exactly
    0 on every input): Sigma_W has exact zero rows, so the SNR on its support equals the SNR of the live units
    (rank_deficient.md §3) and nothing is dropped; without dead units the record is the full-space one."""
    model, x, y, C = _setup(n_per_class=40, widths=(16, 12))
    full = measure(model, x, y, C, weight_decay=5e-4)
    assert full["snr_support"] == "full" and full["snr_rank"] == full["snr_dim"] == 12
    bn = model.body[-2]
    dead = [1, 4, 7]
    with torch.no_grad():
        bn.weight[dead] = 0.0
        bn.bias[dead] = -100.0
    m = measure(model, x, y, C, weight_decay=5e-4)
    assert "warnings" not in m
    assert m["snr_support"] == "range" and m["snr_rank"] == 12 - len(dead) and m["snr_dim"] == 12
    assert m["snr_dropped_fraction"] < 1e-20  # Mbar is exactly 0 on the dead units; eigh mixes at round-off
    model.eval()
    with torch.no_grad():
        h = model.forward_with_features(x)[1].double()
    model.train()
    assert torch.all(h[:, dead] == 0)
    live = [j for j in range(12) if j not in dead]
    ref = theory.snr_singular_values(theory.class_stats(h[:, live], y, C), support="full")
    # the same float32 features (n = 160: one batch in both); float64 round-off only (measured 4e-16)
    assert m["snr_singular_values"] == pytest.approx(ref.tolist(), rel=1e-12)
    assert m["ls_rank_lam0"] == 12 + 1 - len(dead) and m["identity_residual"] < 1e-10


def test_feature_pass_counts():
    model, x, y, C = _setup()
    fp = feature_pass(model, x, y, C, batch_size=9)
    # the batches are kept as the network computed them (float32), in order, 9 rows at most
    assert fp.count == x.shape[0] and fp.features.shape == (x.shape[0], 6) and fp.features.dtype == torch.float32
    assert [int(yb.shape[0]) for _, yb in fp.batches] == [9] * (x.shape[0] // 9) + (
        [x.shape[0] % 9] if x.shape[0] % 9 else []
    )
    assert torch.equal(fp.labels, y)
    with torch.no_grad():
        model.eval()
        torch.testing.assert_close(fp.features, model.forward_with_features(x)[1], rtol=1e-6, atol=1e-6)
    assert fp.accumulator.count == x.shape[0]


def test_network_loss():
    logits = torch.randn(5, 3)
    y = torch.tensor([0, 2, 1, 1, 0])
    mse = network_loss(logits, y, 3, "mse")
    assert torch.allclose(mse, torch.nn.MSELoss()(logits, torch.eye(3)[y]))
    assert torch.allclose(network_loss(logits, y, 3, "ce"), torch.nn.functional.cross_entropy(logits, y))
    with pytest.raises(ValueError, match="unknown loss"):
        network_loss(logits, y, 3, "l1")


def test_measure_precision_option():
    """``precision`` sets the CUDA float32 flags only inside measure() and restores them; on the CPU
    the modes are the same float32 arithmetic, so the metrics are identical; bad values are refused.

    The flags are recorded from inside the model's forward pass (where they act on CUDA), so this
    fails on the CPU too if measure() ever stops applying them; the flags are set to the opposite of
    each mode beforehand, so a mode that leaves them alone is caught."""
    from empirical.measurement import float32_precision, resolve_precision
    from empirical.training import TrainConfig

    before = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    with float32_precision("fp32"):
        assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == (False, False)
        with float32_precision("tf32"):
            assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == (True, True)
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == before
    assert resolve_precision("auto", torch.device("cuda")) == "tf32"
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    model, x, y, C = _setup()
    seen = []
    forward = model.forward_with_features

    def recording_forward(xb):
        seen.append((torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32))
        return forward(xb)

    model.forward_with_features = recording_forward
    try:
        for precision, flag in (("tf32", True), ("fp32", False)):
            outside = (not flag, not flag)
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = outside
            seen.clear()
            measure(model, x, y, C, weight_decay=5e-4, precision=precision, test_x=x[:5], test_y=y[:5])
            assert seen and set(seen) == {(flag, flag)}, (precision, seen)  # training and test passes
            assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == outside  # restored
            seen.clear()
            measure(model, x, y, C, weight_decay=5e-4, precision=None)  # None: the global flags, untouched
            assert set(seen) == {outside}
    finally:
        del model.forward_with_features
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before
    a = measure(model, x, y, C, weight_decay=5e-4)
    b = measure(model, x, y, C, weight_decay=5e-4, precision="tf32")
    for k in ("loss", "l_nc1", "nc1", "nc4"):
        assert a[k] == b[k]
    with pytest.raises(ValueError, match="unknown measure_precision"):
        measure(model, x, y, C, weight_decay=5e-4, precision="fp16")
    with pytest.raises(ValueError, match="unknown measure_precision"):
        TrainConfig(measure_precision="fast").resolved()


def test_trained_digits_mlp_with_dead_units():
    """Real training: an MLP (64-64 ReLU) trained 5 epochs with MSE on scikit-learn's digits (SGD lr 0.2, momentum
    0.9, wd 5e-4) ends with dead ReLU units (measured: 2 of 64).  The metrics line records the SNR on the support of
    Sigma_W, equal to the SNR of the live units (rank_deficient.md §3), the lambda = 0 terms with rank(A) = r + 1,
    and an exact decomposition."""
    from empirical.data.loader import load_train_test

    train_set, _ = load_train_test("digits", with_test=False, seed=0)
    x, y, C = train_set.x, train_set.y, 10
    torch.manual_seed(0)
    model = build_model("mlp", num_classes=C, input_shape=tuple(x.shape[1:]), widths=[64, 64])
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9, weight_decay=5e-4)
    for _ in range(5):
        perm = torch.randperm(len(y))
        for i in range(0, len(y) - 127, 128):
            idx = perm[i:i + 128]
            opt.zero_grad()
            network_loss(model(x[idx]), y[idx], C, "mse").backward()
            opt.step()
    m = measure(model, x, y, C, weight_decay=5e-4, batch_size=1024)
    model.eval()
    with torch.no_grad():  # the batches measure() forwards, so the float32 features are the same bits
        h = torch.cat([model.forward_with_features(x[i:i + 1024])[1] for i in range(0, len(y), 1024)]).double()
    dead = (h.abs().max(0).values == 0)
    assert int(dead.sum()) >= 1, "no dead unit: the test needs one"
    assert "warnings" not in m and m["snr_support"] == "range"
    assert m["snr_rank"] == 64 - int(dead.sum()) and m["snr_dropped_fraction"] < 1e-20
    ref = theory.snr_singular_values(theory.class_stats(h[:, ~dead], y, C), support="full")
    # same features, float64 round-off of the two routes only (measured 1.5e-15)
    assert m["snr_singular_values"] == pytest.approx(ref.tolist(), rel=1e-12)
    assert m["ls_rank_lam0"] == m["snr_rank"] + 1 and m["l_central_lam0"] is not None
    assert m["identity_residual"] < 1e-12
