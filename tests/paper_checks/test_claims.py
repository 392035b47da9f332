"""The claims registry passes on data that satisfy a claim and fails on data that violate it."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from paper_checks.claims import TOLERANCES, Claim, all_passed, dynamics_claims, empirical_claims, symbolic_claims
from paper_checks.compare import compare_records, public
from paper_checks.report import claims_table, write_report
from paper_checks.synthetic import synthetic_metrics_log


def _by_id(claims):
    return {c.id: c for c in claims}


@pytest.fixture(scope="module")
def good_log():
    return synthetic_metrics_log(C=6, epochs=40, scale=20.0, noise=0.0, zero_error_epoch=5, seed=4)[0]


def test_empirical_claims_pass_on_a_log_that_follows_the_theory(good_log):
    cmp = public(compare_records(good_log, time="epoch"))
    claims = empirical_claims(good_log, cmp)
    failed = [(c.id, c.measured) for c in claims if not c.passed]
    assert not failed
    assert {c.status for c in claims} == {"pass"}
    assert all_passed(claims)


def test_large_l_perp_fails_the_proximity_claim(good_log):
    bad = synthetic_metrics_log(C=6, epochs=40, scale=20.0, noise=0.0, zero_error_epoch=5, seed=4,
                                perp_fraction=0.5)[0]
    c = _by_id(empirical_claims(bad, None))["empirical.l_perp_negligible"]
    assert c.status == "fail"
    assert c.measured["max_ratio_terminal_phase"] == pytest.approx(0.5)
    ok = _by_id(empirical_claims(good_log, None))["empirical.l_perp_negligible"]
    assert ok.status == "pass" and ok.measured["max_ratio_terminal_phase"] <= TOLERANCES["perp_ratio_max"]


def test_broken_identity_fails(good_log):
    bad = [dict(r, loss=r["loss"] * (1 + 1e-3)) for r in good_log]
    assert _by_id(empirical_claims(bad, None))["empirical.decomposition_identity"].status == "fail"


def test_increasing_nc1_fails_and_missing_terminal_phase_fails(good_log):
    bad = [dict(r, nc1=1.0 + r["epoch"]) for r in good_log]
    assert _by_id(empirical_claims(bad, None))["empirical.nc1_decreases"].status == "fail"
    no_tpt = [dict(r, train_error=0.01) for r in good_log]
    by = _by_id(empirical_claims(no_tpt, None))
    assert by["empirical.terminal_phase_reached"].status == "fail"
    assert by["empirical.nc1_decreases"].status == "fail"
    assert "terminal phase" in by["empirical.nc1_decreases"].measured["error"]


def test_snr_not_following_theory_fails_the_fit_claims(good_log):
    # SNR values that shrink and spread apart (the theory has them grow and merge): the ratio claim and the fit claims must fail.
    bad = []
    for r in good_log:
        e = r["epoch"]
        w = np.array([3.0, 2.5, 2.0, 1.5, 1.0]) * np.exp(-0.05 * e * np.arange(5))
        bad.append(dict(r, snr_singular_values=[float(v) for v in w]))
    cmp = public(compare_records(bad, time="epoch"))
    by = _by_id(empirical_claims(bad, cmp))
    assert by["empirical.snr_ratio_toward_1"].status == "fail"
    assert by["empirical.snr_follows_closed_form"].status == "fail"


def test_symbolic_claims_group_the_certificate_by_section():
    cert = SimpleNamespace(checks=[
        {"name": "decomposition identity", "passed": True, "section": "3.3", "detail": "0", "seconds": 0.1,
         "kind": "general"},
        {"name": "closed form", "passed": True, "section": "6.3", "detail": "ok", "seconds": 0.2},
        {"name": "closed form, other size", "passed": False, "section": "6.3", "detail": "residual x", "seconds": 0.2},
    ])
    by = _by_id(symbolic_claims(cert))
    assert by["symbolic.3.3"].status == "pass" and by["symbolic.3.3"].source == "spec 3.3"
    assert by["symbolic.6.3"].status == "fail"
    assert by["symbolic.6.3"].measured["failed"] == [{"name": "closed form, other size", "detail": "residual x"}]
    assert by["symbolic.6.3"].measured["checks"] == 2
    assert symbolic_claims(SimpleNamespace(checks=[]))[0].status == "fail"


def _fake_traj(omega, times, *, cf=None, metrics=None, kappa=1.0):
    return SimpleNamespace(times=times, omega=omega, closed_form_omega=omega if cf is None else cf,
                           metrics=metrics or {}, gram_start=None, gram_end=None, params={"kappa_value": kappa})


def test_dynamics_closed_form_claim_fails_when_ode_disagrees():
    from paper_checks.synthetic import closed_form_snr

    N, C = 6, 4
    t = np.concatenate([[0.0], np.geomspace(1e-2, 1e4, 40)])
    # Exact projected-flow solution in flow time t: G(omega) = G(omega0) + t / N  (kappa = 1).
    w = closed_form_snr(t / N + 1.0, np.array([2.0, 1.0, 0.5]), C=C, scale=1.0)
    etf = np.concatenate([[1.0], np.geomspace(0.5, 0.01, 40)])
    good = _by_id(dynamics_claims(_fake_traj(w, t, metrics={"gram_etf_distance": etf}), None, per_class=N))
    assert good["dynamics.closed_form"].status == "pass"
    assert good["dynamics.omega_to_infinity"].status == "pass"
    assert good["dynamics.max_min_ratio_to_1"].status == "pass"
    assert good["dynamics.simplex_etf_limit"].status == "pass"
    bad = _by_id(dynamics_claims(_fake_traj(w, t, cf=w * 1.01, metrics={"gram_etf_distance": etf[::-1]}), None,
                                 per_class=N))
    assert bad["dynamics.closed_form"].status == "fail"
    assert bad["dynamics.simplex_etf_limit"].status == "fail"


def _exact_projected_traj(N=6, C=4):
    """Exact projected-flow solution in flow time t (kappa = 1): G(omega) = G(omega0) + t / N, 41 log-spaced times."""
    from paper_checks.synthetic import closed_form_snr

    t = np.concatenate([[0.0], np.geomspace(1e-2, 1e4, 40)])
    w = closed_form_snr(t / N + 1.0, np.array([2.0, 1.0, 0.5]), C=C, scale=1.0)
    return t, w


def test_nc1_rate_fails_when_omega_is_off_the_growth_law():
    N = 6
    t, w = _exact_projected_traj(N)
    good = _by_id(dynamics_claims(_fake_traj(w, t), per_class=N))["dynamics.nc1_rate"]
    assert good.status == "pass", good.measured
    # omega 1.5 times too large: NC1 * sqrt(t) is 1/2.25 of (C-1) sqrt(c3), a relative gap of 0.56.
    bad = _by_id(dynamics_claims(_fake_traj(1.5 * w, t), per_class=N))["dynamics.nc1_rate"]
    assert bad.status == "fail"
    assert bad.measured["rel_gap_end"] > TOLERANCES["nc1_rate_rel"]


def test_max_min_ratio_claim_fails_on_a_slower_tail_or_an_increase():
    N = 6
    t, w = _exact_projected_traj(N)
    good = _by_id(dynamics_claims(_fake_traj(w, t), per_class=N))["dynamics.max_min_ratio_to_1"]
    assert good.status == "pass", good.measured
    # ratio - 1 ~ t^(-1/2) (not O(1/t)): still decreasing, but (ratio-1)*t grows ~10x over the last third.
    slow = w.copy()
    slow[1:, 0] = slow[1:, -1] * (1.0 + 3.0 / np.sqrt(t[1:]))
    slow[0, 0] = slow[1, 0]
    c = _by_id(dynamics_claims(_fake_traj(slow, t), per_class=N))["dynamics.max_min_ratio_to_1"]
    assert c.status == "fail"
    assert c.measured["max/min of (ratio-1)*t over the last third of saved times"] > TOLERANCES["ratio_tail_spread_max"]
    # One increase of the ratio on the saved grid breaks monotonicity.
    bump = w.copy()
    bump[20, 0] *= 1.5
    assert _by_id(dynamics_claims(_fake_traj(bump, t), per_class=N))["dynamics.max_min_ratio_to_1"].status == "fail"


def test_report_files(tmp_path, good_log, capsys):
    cmp = public(compare_records(good_log, time="epoch"))
    claims = empirical_claims(good_log, cmp) + [Claim(id="x.fail", statement="s", source="spec 0", check="c",
                                                      tolerance="t", status="fail", measured={"v": 1.0})]
    paths = write_report(tmp_path, claims, figures=[], context={"k": "v"})
    data = json.loads(paths["claims"].read_text())
    assert {"id", "statement", "source", "status", "measured", "tolerance"} <= set(data[0])
    assert data[-1]["status"] == "fail"
    assert "x.fail" in paths["md"].read_text()
    assert paths["html"].read_text().startswith("<!DOCTYPE html>")
    table = claims_table(claims)
    assert "FAIL" in table and f"{len(claims) - 1}/{len(claims)} claims pass" in table


def test_perturbed_lambda0_term_fails_the_exact_closed_form_claim_and_the_exit_code(good_log):
    from paper_checks.main import exit_code

    cmp_ok = public(compare_records(good_log, time="epoch"))
    ok = _by_id(empirical_claims(good_log, cmp_ok))["empirical.central_path_closed_forms"]
    assert ok.status == "pass"
    # A relative error of 1e-6 in one logged lambda = 0 term is far above rounding: the identity claim must fail.
    bad = [dict(r, l_nc1_lam0=r["l_nc1_lam0"] * (1 + 1e-6)) for r in good_log]
    claims = empirical_claims(bad, public(compare_records(bad, time="epoch")))
    c = _by_id(claims)["empirical.central_path_closed_forms"]
    assert c.status == "fail"
    assert c.measured["l_nc1"]["max_rel_error"] == pytest.approx(1e-6, rel=1e-3)
    assert exit_code(claims) == 1
    assert exit_code(empirical_claims(good_log, cmp_ok)) == 0


def test_missing_lambda0_terms_fail_the_exact_closed_form_claim_with_a_reason(good_log):
    from paper_checks.main import exit_code

    bad = [{k: v for k, v in r.items() if not k.endswith("_lam0")} for r in good_log]
    claims = empirical_claims(bad, public(compare_records(bad, time="epoch")))
    c = _by_id(claims)["empirical.central_path_closed_forms"]
    assert c.status == "fail"
    assert "lambda = 0" in c.measured["error"]
    assert exit_code(claims) == 1


def test_dynamics_claims_read_kappa_from_the_trajectory_and_need_the_etf_metric():
    from paper_checks.synthetic import closed_form_snr

    N, C, kappa = 6, 4, 3.0
    t = np.concatenate([[0.0], np.geomspace(1e-2, 1e4, 40)])
    # Projected flow at speed kappa: G(omega) = G(omega0) + (kappa/N) t.
    w = closed_form_snr(kappa * t / N + 1.0, np.array([2.0, 1.0, 0.5]), C=C, scale=1.0)
    etf = np.concatenate([[1.0], np.geomspace(0.5, 0.01, 40)])
    by = _by_id(dynamics_claims(_fake_traj(w, t, metrics={"gram_etf_distance": etf}, kappa=kappa), per_class=N))
    assert by["dynamics.closed_form"].status == "pass"
    assert by["dynamics.closed_form"].measured["kappa"] == kappa
    assert by["dynamics.omega_to_infinity"].measured["(c1, c2, c3)"] == pytest.approx(
        [N / kappa * C**2, N / kappa * C, N / kappa / 4])
    # The same trajectory read with the wrong speed (kappa = 1) violates the law.
    wrong = _by_id(dynamics_claims(_fake_traj(w, t, metrics={"gram_etf_distance": etf}, kappa=1.0), per_class=N))
    assert wrong["dynamics.closed_form"].measured["max_rel_residual_c1logw+c2w2+c3w4-a-t"] > 1e-3
    no_etf = _by_id(dynamics_claims(_fake_traj(w, t, kappa=kappa), per_class=N))["dynamics.simplex_etf_limit"]
    assert no_etf.status == "fail" and "gram_etf_distance" in no_etf.measured["error"]
    no_kappa = SimpleNamespace(times=t, omega=w, closed_form_omega=w, metrics={"gram_etf_distance": etf}, params={})
    by = _by_id(dynamics_claims(no_kappa, per_class=N))
    for cid in ("dynamics.closed_form", "dynamics.omega_to_infinity", "dynamics.nc1_rate"):
        assert by[cid].status == "fail" and "kappa_value" in by[cid].measured["error"]
    assert by["dynamics.simplex_etf_limit"].status == "pass"


@pytest.fixture(scope="module")
def retraction_runs():
    simulate = pytest.importorskip("simulate")
    sizes = dict(classes=4, per_class=6, dim=9, seed=12, t_max=500.0, num_times=20)
    return (simulate.run("retraction", step=0.5, **sizes), simulate.run("retraction", step=0.25, **sizes),
            simulate.run("retraction", step=0.125, **sizes))


def test_retraction_claim_checks_first_order_in_the_step(retraction_runs):
    from paper_checks.claims import retraction_claims

    h, h2, h4 = retraction_runs
    c = retraction_claims(h, h2, None, per_class=6)[0]
    assert c.status == "pass", c.measured
    ratio = c.measured["own_law_residual_ratio_h_over_h/2"]
    assert TOLERANCES["retraction_order_ratio_min"] <= ratio <= TOLERANCES["retraction_order_ratio_max"]
    assert c.measured["retraction_residual_projected_law"] >= TOLERANCES["retraction_vs_projected_min_rel"]
    # The step guard: a second run whose step is not h/2 is refused with the reason.
    guarded = retraction_claims(h, h4, None, per_class=6)[0]
    assert guarded.status == "fail" and "not h/2" in guarded.measured["error"]
    # The order-ratio window: the quarter-step run labelled as the half step passes the guard, and its own-law
    # residual ratio is ~4 (first order at a step ratio of 4), outside the window; the same run twice is ratio 1.
    quarter = SimpleNamespace(times=h4.times, omega=h4.omega, params=dict(h4.params, step=0.25))
    c4 = retraction_claims(h, quarter, None, per_class=6)[0]
    assert c4.status == "fail"
    assert c4.measured["own_law_residual_ratio_h_over_h/2"] == pytest.approx(4.0, rel=0.1)
    same = SimpleNamespace(times=h.times, omega=h.omega, params=dict(h.params, step=0.25))
    c1 = retraction_claims(h, same, None, per_class=6)[0]
    assert c1.status == "fail"
    assert c1.measured["own_law_residual_ratio_h_over_h/2"] == pytest.approx(1.0)
    missing = retraction_claims(h, None, None, per_class=6)[0]
    assert missing.status == "fail" and "half-step" in missing.measured["error"]
