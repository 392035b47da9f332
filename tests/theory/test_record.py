"""``theory.metrics_record``: one definition of a metrics record, the same from NumPy, JAX and torch inputs, and
equal key by key to what ``empirical.measurement.metrics_from_pass`` writes for the same features and classifier."""

import math

import numpy as np
import pytest
import torch

import theory
from empirical.measurement import FeaturePass, metrics_from_pass, stream_features

C, P, N = 4, 7, 15
WD = 5e-4


def _problem(seed: int = 0, collapsed: bool = False):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(C), N)
    means = 3.0 * rng.standard_normal((C, P))
    h = means[y] if collapsed else means[y] + rng.standard_normal((C * N, P))
    W, b = rng.standard_normal((C, P)), rng.standard_normal(C)
    return h, y, W, b


def _numpy_record(h, y, W, b, errors):
    stats = theory.class_stats(h, y, C)
    totals = theory.sample_totals(h, y, W, b, stats.means, num_classes=C)
    return theory.metrics_record(stats, W, b, totals, errors, lam=C * WD / 2, lam_notebook=WD / 2)


def _empirical_record(h, y, W, b, errors):
    """metrics_from_pass on torch batches streamed as a network measurement streams them (two batches)."""
    ht, yt = torch.from_numpy(h), torch.from_numpy(y)
    acc, kept = stream_features([(ht[:25], yt[:25]), (ht[25:], yt[25:])], C)
    fp = FeaturePass(acc, kept, errors, len(y))
    return metrics_from_pass(fp, torch.from_numpy(W), torch.from_numpy(b), C, weight_decay=WD, loss_reduction="mean")


def _assert_same(a: dict, b: dict, rel: float):
    assert list(a) == list(b)
    for key in a:
        x, z = a[key], b[key]
        if isinstance(x, float):
            assert z == pytest.approx(x, rel=rel, abs=rel * 1e-3), key
        elif isinstance(x, list) and x and isinstance(x[0], float):
            np.testing.assert_allclose(z, x, rtol=rel, err_msg=key)
        else:
            assert x == z, key


def test_record_equals_empirical_metrics_from_pass():
    """Parity to 1e-12 relative: streamed torch statistics against NumPy's one-shot statistics, the same formulas
    (float64 sums in a different order differ by ~1e-15 relative; the terms are all of order 1e-2 to 10)."""
    h, y, W, b = _problem()
    errors = int(np.sum(np.argmax(h @ W.T + b, axis=1) != y))
    a, e = _numpy_record(h, y, W, b, errors), _empirical_record(h, y, W, b, errors)
    assert set(theory.RECORD_KEYS) == set(a) and "warnings" not in a
    _assert_same(a, e, rel=1e-12)
    assert a["lam"] == C * WD / 2 and a["lam_notebook"] == WD / 2 and a["train_count"] == C * N
    assert a["train_error"] == errors / (C * N) and a["class_counts"] == [N] * C


@pytest.mark.slow  # ~20 s on two CPU cores: eager JAX compiles each of the record's many small operations
def test_record_is_backend_independent():
    """JAX (x64) arrays give the NumPy record (1e-12 relative)."""
    jnp = pytest.importorskip("jax.numpy")
    import jax

    jax.config.update("jax_enable_x64", True)
    h, y, W, b = _problem(1)
    a = _numpy_record(h, y, W, b, 3)
    j = _numpy_record(jnp.asarray(h), jnp.asarray(y), jnp.asarray(W), jnp.asarray(b), 3)
    _assert_same(a, j, rel=1e-12)


def test_tr_sigma_w_and_the_identity():
    h, y, W, b = _problem(2)
    r = _numpy_record(h, y, W, b, 0)
    Z = h - np.stack([h[y == c].mean(0) for c in range(C)])[y]
    assert r["tr_sigma_w"] == pytest.approx(np.sum(Z * Z) / len(y), rel=1e-12)  # tr Sigma_W, divisor n (math §1)
    assert r["identity_residual"] < 1e-12  # loss from the samples = l_nc1 + l_nc23 + l_perp (math §3.2)


def test_collapsed_features_give_none_and_a_warning_in_both():
    """Every class at its mean: Sigma_W = 0, the SNR is undefined; the rest of the record is still there."""
    h, y, W, b = _problem(3, collapsed=True)
    a, e = _numpy_record(h, y, W, b, 0), _empirical_record(h, y, W, b, 0)
    for r in (a, e):
        assert r["snr_singular_values"] is None and r["snr_rank"] is None and r["tr_sigma_w"] < 1e-25  # round-off
        assert any("Sigma_W is zero" in w for w in r["warnings"])
        assert math.isfinite(r["loss"]) and r["l_nc1_lam0"] is not None
    _assert_same(a, e, rel=1e-12)


def test_round_off_spread_is_collapse():
    """Within-class deviations at float64 round-off (1e-15 on features of size ~3) pass a relative singularity
    test but are no spread at all: the SNR is None, not a value of order 1e16."""
    h, y, W, b = _problem(4, collapsed=True)
    h = h + 1e-15 * np.random.default_rng(0).standard_normal(h.shape)
    r = _numpy_record(h, y, W, b, 0)
    assert r["snr_singular_values"] is None


def test_totals_without_means_refused():
    h, y, W, b = _problem()
    stats = theory.class_stats(h, y, C)
    with pytest.raises(ValueError, match="ncc_mismatches"):
        theory.metrics_record(stats, W, b, theory.sample_totals(h, y, W, b), 0, lam=0.0, lam_notebook=0.0)
