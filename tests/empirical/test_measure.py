"""Measurement of a network: streamed float64 statistics equal one-shot theory values."""

from __future__ import annotations

import math

import pytest
import torch

import theory
from empirical.measure import METRIC_KEYS, classifier_of, feature_pass, measure, network_loss
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
        if isinstance(va, list):
            assert va == pytest.approx(vb, rel=1e-6)
        else:
            assert va == pytest.approx(vb, rel=1e-6, abs=1e-12), key
    assert 0 <= a["test_error"] <= 1 and a["test_loss_nowd"] > 0


def test_singular_covariances_give_none_and_warnings():
    """p > n per class: Sigma_W singular (no SNR); wd = 0: lam = 0 and Sigma_T singular."""
    model, x, y, C = _setup(n_per_class=3, widths=(32, 24))
    m = measure(model, x, y, C, weight_decay=0.0)
    assert m["snr_singular_values"] is None
    assert m["l_nc1"] is None and m["identity_residual"] is None
    assert any("snr" in w for w in m["warnings"]) and any("decomposition" in w for w in m["warnings"])
    assert math.isfinite(m["nc1"]) and math.isfinite(m["loss"])  # the rest is still measured
    m = measure(model, x, y, C, weight_decay=5e-4)  # ridge lam > 0 keeps W_LS defined
    # looser than elsewhere (1e-12) on purpose: Sigma_T is near-singular here (p > n per class), the
    # ridge lam = 2.5e-3 alone keeps W_LS defined, and its condition amplifies float64 rounding
    assert m["l_nc1"] is not None and m["identity_residual"] < 1e-8


def test_feature_pass_counts():
    model, x, y, C = _setup()
    fp = feature_pass(model, x, y, C, batch_size=9)
    # the batches are kept as the network computed them (float32), in order, 9 rows at most
    assert fp.count == x.shape[0] and fp.features.shape == (x.shape[0], 6) and fp.features.dtype == torch.float32
    assert [int(yb.shape[0]) for _, yb in fp.batches] == [9] * (x.shape[0] // 9) + ([x.shape[0] % 9] if x.shape[0] % 9 else [])
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
    from empirical.measure import float32_precision, resolve_precision
    from empirical.train import TrainConfig

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
