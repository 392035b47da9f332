"""Fit recovery on synthetic logs made from the math §6.3 closed form with a known time map."""

from __future__ import annotations

import numpy as np
import pytest

from paper_checks.compare import column, compare_records, snr_matrix_of
from paper_checks.fit import closed_form_G, fit_snr_dynamics, invert_closed_form
from paper_checks.synthetic import synthetic_metrics_log


@pytest.mark.parametrize("C", [2, 4, 10])
def test_invert_closed_form_roundtrip(C):
    y = np.array([-50.0, -1.0, 0.0, 0.5, 3.0, 1e2, 1e5, 1e12])
    w = invert_closed_form(y, C)
    assert np.all(w > 0)
    np.testing.assert_allclose(closed_form_G(w, C), y, rtol=1e-12, atol=1e-10)


def test_closed_form_G_matches_theory_law():
    from theory import laws

    w = np.linspace(0.1, 7.0, 13)
    N, C = 6, 4
    # G is closed_form_lhs at N = kappa = 1; the law scales with N/kappa (math §6.3 table).
    np.testing.assert_allclose(N * closed_form_G(w, C), laws.numeric("closed_form_lhs")(w, N, C, 1.0), rtol=1e-13)


@pytest.mark.parametrize(
    "beta, noise, time_key",
    [(1.0, 0.0, "epoch"), (1.0, 0.01, "lr_weighted_steps"), (0.5, 0.01, "epoch"), (2.0, 0.01, "epoch")],
)
def test_fit_recovers_time_map_and_constants(beta, noise, time_key):
    """Tolerances: noiseless -> 1e-8 relative; 1% log-normal noise on 60 epochs x 9 values ->
    s within 5%, beta within 0.05, fitted omega within 1% of the noiseless truth in the median
    and 5% at worst (the first epochs, where b_j is pinned by a few noisy points)."""
    recs, truth = synthetic_metrics_log(C=10, epochs=60, scale=40.0, beta=beta, noise=noise, time_key=time_key, seed=3)
    T = column(recs, time_key)
    fit = fit_snr_dynamics(T, snr_matrix_of(recs), fit_exponent=True, time_key=time_key)
    assert fit.success
    if noise == 0.0:
        assert fit.scale == pytest.approx(truth["scale"], rel=1e-8)
        assert fit.beta == pytest.approx(beta, abs=1e-8)
        np.testing.assert_allclose(fit.offsets, truth["offsets"], rtol=1e-7, atol=1e-6)
        assert np.min(fit.r2_log) > 1 - 1e-12
    else:
        assert fit.scale == pytest.approx(truth["scale"], rel=0.05)
        assert fit.beta == pytest.approx(beta, abs=0.05)
        assert np.min(fit.r2_log) > 0.9
    rel = np.abs(fit.predict(T) / truth["omega"] - 1)
    if noise == 0.0:
        assert rel.max() < 1e-8
    else:
        assert np.median(rel) < 0.01 and rel.max() < 0.05


def test_linear_fit_when_exponent_fixed():
    recs, truth = synthetic_metrics_log(C=5, epochs=30, scale=10.0, beta=1.0, noise=0.0, seed=1)
    fit = fit_snr_dynamics(column(recs, "epoch"), snr_matrix_of(recs), fit_exponent=False)
    assert fit.beta == 1.0
    assert fit.scale == pytest.approx(10.0, rel=1e-8)


def test_fit_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 3"):
        fit_snr_dynamics([1.0, 2.0], [[1.0], [2.0]])
    with pytest.raises(ValueError, match="positive"):
        fit_snr_dynamics([0.0, 1.0, 2.0], [[1.0], [2.0], [3.0]])
    with pytest.raises(ValueError, match="C-1"):
        fit_snr_dynamics([1.0, 2.0, 3.0], [[1.0], [2.0], [3.0]], num_classes=4)


def test_compare_on_synthetic_log_is_exact_and_forward_matches():
    recs, _ = synthetic_metrics_log(C=6, epochs=40, scale=20.0, beta=1.0, noise=0.0, zero_error_epoch=5, seed=2)
    res = compare_records(recs, time="lr_steps")
    assert res.terminal_phase_start_epoch == 5
    assert res.fit_window["epochs"][0] == 5
    for key in ("l_nc1", "l_nc23", "l_central", "nc1"):
        q = res.quantities[key]
        assert q.at_lambda_zero
        assert q.rel_error_fit.max < 1e-7
        assert q.rel_error_at_measured_snr.max < 1e-12
        assert q.rel_error_forward.max < 1e-6
    assert res.forward.method == "simulate.integrate_reduced"
    assert res.forward.snr_rel_error.max < 1e-6
    assert res.snr_ratio.observed_moves_toward_1 and res.snr_ratio.predicted_moves_toward_1
    hold = res.forward.holdout
    assert hold["forward_ode_rel_error"]["max"] < 1e-6 and hold["closed_form_rel_error"]["max"] < 1e-6
    data = res.to_json()  # compare.json: strict JSON with the same numbers
    assert data["quantities"]["l_nc1"]["rel_error_fit"]["max"] == res.quantities["l_nc1"].rel_error_fit.max
    assert data["fit"]["beta"] == res.fit.beta and data["snr_ratio"]["observed_moves_toward_1"] is True


def test_terminal_phase_starts_after_the_last_nonzero_training_error():
    from paper_checks.compare import terminal_phase_start

    def recs(errs):
        return [{"epoch": k, "train_error": e} for k, e in enumerate(errs)]

    # zero at epoch 2, back above zero at 4: the phase where the error stays zero starts at 5
    assert terminal_phase_start(recs([0.3, 0.1, 0.0, 0.0, 0.01, 0.0, 0.0])) == 5
    assert terminal_phase_start(recs([0.0, 0.0])) == 0
    assert terminal_phase_start(recs([0.2, 0.0, 0.1])) is None
    assert terminal_phase_start(recs([0.2, 0.0, None, 0.0])) == 3  # a missing value is not a known zero
    assert terminal_phase_start([]) is None


def test_terminal_phase_threshold_tolerates_a_few_persistent_misfits():
    """Label noise: 3 of 49,920 samples stay misfit (6e-5) from epoch 121 on; threshold 0 finds no terminal phase,
    a threshold of 1e-4 finds it at epoch 121, and exactly-zero runs give the same answer at any threshold."""
    from empirical.runs import misfit_count
    from paper_checks.compare import terminal_phase_start

    n = 49_920
    errs = [0.5, 0.01, 0.002, 3 / n, 3 / n, 3 / n]
    recs = [{"epoch": e, "train_error": v, "train_count": n} for e, v in zip([0, 10, 50, 121, 200, 350], errs)]
    assert terminal_phase_start(recs) is None
    assert terminal_phase_start(recs, 1e-4) == 3 and recs[3]["epoch"] == 121
    assert terminal_phase_start(recs, 2e-3) == 2  # 0.002 <= 2e-3 from epoch 50 on
    assert [misfit_count(r) for r in recs[3:]] == [3, 3, 3]
    zero = [{"epoch": k, "train_error": e} for k, e in enumerate([0.3, 0.0, 0.01, 0.0, 0.0])]
    assert terminal_phase_start(zero) == 3
    assert terminal_phase_start(zero, 1e-3) == 3  # 0.01 > 1e-3: the bounce still counts
    assert terminal_phase_start(zero, 0.02) == 1
    for bad in (-1e-3, 1.0, float("nan"), "x"):
        with pytest.raises(ValueError, match="threshold"):
            terminal_phase_start(zero, bad)
