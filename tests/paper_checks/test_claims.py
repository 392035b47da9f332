"""The claims registry passes on data that satisfy a claim and fails on data that violate it."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from paper_checks.claims import TOLERANCES, Claim, all_passed, dynamics_claims, empirical_claims, symbolic_claims
from paper_checks.compare import compare_records
from paper_checks.report import claims_table, write_report
from paper_checks.synthetic import synthetic_metrics_log

#: The synthetic logs stand for MSE runs: the MSE-theory claims apply only to a log whose config says so.
MSE = {"config": {"loss": "mse"}}


def mse_claims(records, comparison=None, **kw):
    return empirical_claims(records, comparison, config=kw.pop("config", MSE), **kw)


def _by_id(claims):
    return {c.id: c for c in claims}


@pytest.fixture(scope="module")
def good_log():
    return synthetic_metrics_log(C=6, epochs=40, scale=20.0, noise=0.0, zero_error_epoch=5, seed=4)[0]


def test_empirical_claims_pass_on_a_log_that_follows_the_theory(good_log):
    cmp = (compare_records(good_log, time="epoch"))
    claims = mse_claims(good_log, cmp)
    failed = [(c.id, c.measured) for c in claims if not c.passed]
    assert not failed
    assert {c.status for c in claims} == {"pass"}
    assert all_passed(claims)


def test_large_l_perp_fails_the_proximity_claim(good_log):
    bad = synthetic_metrics_log(C=6, epochs=40, scale=20.0, noise=0.0, zero_error_epoch=5, seed=4,
                                perp_fraction=0.5)[0]
    c = _by_id(mse_claims(bad, None))["empirical.l_perp_negligible"]
    assert c.status == "fail"
    assert c.measured["max_ratio_terminal_phase"] == pytest.approx(0.5)
    ok = _by_id(mse_claims(good_log, None))["empirical.l_perp_negligible"]
    assert ok.status == "pass" and ok.measured["max_ratio_terminal_phase"] <= TOLERANCES["perp_ratio_max"]


def test_broken_identity_fails(good_log):
    bad = [dict(r, loss=r["loss"] * (1 + 1e-3)) for r in good_log]
    assert _by_id(mse_claims(bad, None))["empirical.decomposition_identity"].status == "fail"


def test_increasing_nc1_fails_and_missing_terminal_phase_fails(good_log):
    bad = [dict(r, nc1=1.0 + r["epoch"]) for r in good_log]
    assert _by_id(mse_claims(bad, None))["empirical.nc1_decreases"].status == "fail"
    no_tpt = [dict(r, train_error=0.01) for r in good_log]
    by = _by_id(mse_claims(no_tpt, None))
    assert by["empirical.terminal_phase_reached"].status == "fail"  # an observation: not supported, with numbers
    assert by["empirical.terminal_phase_reached"].measured["final_train_error"] == pytest.approx(0.01)
    assert by["empirical.nc1_decreases"].status == "n/a"  # cannot be evaluated without a terminal phase
    assert "no terminal phase" in by["empirical.nc1_decreases"].detail


def test_snr_not_following_theory_fails_the_fit_claims(good_log):
    # SNR values that shrink and spread apart (the theory has them grow and merge): the ratio claim and the fit
    # claims must fail.
    bad = []
    for r in good_log:
        e = r["epoch"]
        w = np.array([3.0, 2.5, 2.0, 1.5, 1.0]) * np.exp(-0.05 * e * np.arange(5))
        bad.append(dict(r, snr_singular_values=[float(v) for v in w]))
    cmp = (compare_records(bad, time="epoch"))
    by = _by_id(mse_claims(bad, cmp))
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
    assert by["symbolic.3.3"].status == "pass" and by["symbolic.3.3"].source == "math §3.3"
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
    cmp = (compare_records(good_log, time="epoch"))
    claims = mse_claims(good_log, cmp) + [Claim(id="x.fail", statement="s", source="math §0", check="c",
                                                      tolerance="t", status="fail", measured={"v": 1.0})]
    claims += [
        Claim(id="x.na", statement="s", source="s", check="c", tolerance="t", status="n/a", detail="no data"),
        Claim(
            id="x.err",
            statement="s",
            source="s",
            check="c",
            tolerance="t",
            status="error",
            measured={"error": "TypeError: boom"},
            detail="Traceback (most recent call last):\nTypeError: boom",
        ),
    ]
    paths = write_report(tmp_path, claims, figures=[], context={"k": "v"})
    data = json.loads(paths["claims"].read_text())
    assert {"id", "statement", "source", "status", "measured", "tolerance"} <= set(data[0])
    assert [d["status"] for d in data[-3:]] == ["fail", "n/a", "error"]
    md = paths["md"].read_text()
    assert "x.fail" in md and "n/a: no data" in md
    assert "## Errors (toolkit bugs)" in md and "TypeError: boom" in md  # the traceback is saved in the report
    assert paths["html"].read_text().startswith("<!DOCTYPE html>")
    table = claims_table(claims)
    assert "FAIL" in table and f"{len(claims) - 3}/{len(claims)} claims pass (1 fail, 1 n/a, 1 error)" in table


def test_perturbed_lambda0_term_fails_the_exact_closed_form_claim_and_the_exit_code(good_log):
    from paper_checks.main import exit_code

    cmp_ok = (compare_records(good_log, time="epoch"))
    ok = _by_id(mse_claims(good_log, cmp_ok))["empirical.central_path_closed_forms"]
    assert ok.status == "pass"
    # A relative error of 1e-6 in one logged lambda = 0 term is far above rounding: the identity claim must fail.
    bad = [dict(r, l_nc1_lam0=r["l_nc1_lam0"] * (1 + 1e-6)) for r in good_log]
    claims = mse_claims(bad, (compare_records(bad, time="epoch")))
    c = _by_id(claims)["empirical.central_path_closed_forms"]
    assert c.status == "fail"
    assert c.measured["l_nc1"]["max_rel_error"] == pytest.approx(1e-6, rel=1e-3)
    assert exit_code(claims) == 1
    assert exit_code(mse_claims(good_log, cmp_ok)) == 0


def test_missing_lambda0_terms_make_the_exact_closed_form_claim_not_applicable(good_log):
    from paper_checks.main import exit_code

    bad = [{k: v for k, v in r.items() if not k.endswith("_lam0")} for r in good_log]
    # terms at a nonzero ridge are never held against the lambda = 0 laws silently
    ridged = [dict(r, lam=0.0025) for r in bad]
    claims = mse_claims(ridged, (compare_records(ridged, time="epoch")))
    by = _by_id(claims)
    c = by["empirical.central_path_closed_forms"]
    assert c.status == "n/a" and "lambda = 0" in c.detail
    assert exit_code(claims) == 0  # n/a never gates
    assert by["empirical.decomposition_tracks_theory"].status == "n/a"
    assert "not at lambda = 0" in by["empirical.decomposition_tracks_theory"].detail
    # a log that says its ridge is 0 is at lambda = 0: the laws apply
    zero = [dict(r, lam=0.0) for r in bad]
    by = _by_id(mse_claims(zero, compare_records(zero, time="epoch")))
    assert by["empirical.decomposition_tracks_theory"].status == "pass"
    assert by["empirical.central_path_closed_forms"].status == "pass"


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
    assert no_etf.status == "n/a" and "gram_etf_distance" in no_etf.detail
    no_kappa = SimpleNamespace(times=t, omega=w, closed_form_omega=w, metrics={"gram_etf_distance": etf}, params={})
    by = _by_id(dynamics_claims(no_kappa, per_class=N))
    for cid in ("dynamics.closed_form", "dynamics.omega_to_infinity", "dynamics.nc1_rate"):
        assert by[cid].status == "n/a" and "kappa_value" in by[cid].detail
    assert by["dynamics.simplex_etf_limit"].status == "pass"


@pytest.fixture(scope="module")
def retraction_runs():
    simulate = pytest.importorskip("simulate")
    sizes = dict(num_classes=4, per_class=6, dim=9, seed=12, t_max=500.0, num_times=20)
    return (simulate.simulate("retraction", step=0.5, **sizes), simulate.simulate("retraction", step=0.25, **sizes),
            simulate.simulate("retraction", step=0.125, **sizes))


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
    assert guarded.status == "n/a" and "not h/2" in guarded.detail
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
    assert missing.status == "n/a" and "half-step" in missing.detail


# ----------------------------------------------------------------------------- issue: real runs at paper scale


def test_persistent_misfit_samples_terminal_phase_found_at_threshold_and_every_nc_claim_measured(good_log):
    """A run with k = 3 never-fitted samples (label noise): no terminal phase at threshold 0, so the NC claims are
    n/a with the reason; at a threshold of 1e-3 the terminal phase is found and every NC claim is measured."""
    n = 3000
    noisy = [dict(r, train_count=n, train_error=(3 / n if r["train_error"] == 0 else r["train_error"]))
             for r in good_log]
    strict = _by_id(mse_claims(noisy, compare_records(noisy, time="epoch")))
    assert strict["empirical.terminal_phase_reached"].status == "fail"
    assert strict["empirical.terminal_phase_reached"].measured["misfit_final"] == 3
    nc_ids = [cid for cid in strict if cid.startswith("empirical.nc")]
    assert len(nc_ids) == 7 and all(strict[c].status == "n/a" for c in nc_ids)
    assert "never stays <= 0" in strict["empirical.nc1_decreases"].detail and "3 samples misfit" in \
        strict["empirical.nc1_decreases"].detail

    cmp = compare_records(noisy, time="epoch", tpt_threshold=1e-3)
    assert cmp.terminal_phase_start_epoch == 5 and "<= 0.001" in cmp.fit_window["reason"]
    by = _by_id(mse_claims(noisy, cmp, tpt_threshold=1e-3))
    tpt = by["empirical.terminal_phase_reached"]
    assert tpt.status == "pass" and tpt.measured["terminal_phase_start_epoch"] == 5
    assert tpt.measured["tpt_threshold"] == 1e-3 and tpt.measured["misfit_final"] == 3
    for cid in nc_ids:
        assert by[cid].status == "pass", (cid, by[cid].measured)
        assert by[cid].measured["tpt_threshold"] == 1e-3 and by[cid].measured["misfit_final"] == 3
    assert {c.status for c in by.values()} == {"pass"}


def test_imbalanced_classes_make_the_balanced_only_closed_forms_not_applicable(good_log):
    from paper_checks.main import exit_code

    imbalanced = [dict(r, class_counts=[180, 170, 178, 183, 181, 182]) for r in good_log]
    claims = mse_claims(imbalanced, compare_records(imbalanced, time="epoch"))
    by = _by_id(claims)
    c = by["empirical.central_path_closed_forms"]
    assert c.status == "n/a" and "imbalanced" in c.detail and "170..183" in c.detail
    assert by["empirical.decomposition_identity"].status == "pass"  # exact for any class counts (math §3.3b)
    assert exit_code(claims) == 0
    balanced = [dict(r, class_counts=[130] * 6) for r in good_log]
    assert _by_id(mse_claims(balanced, compare_records(balanced, time="epoch")))[
        "empirical.central_path_closed_forms"].status == "pass"


def test_a_bug_inside_a_claim_is_an_error_with_its_traceback_and_exit_code_1():
    from paper_checks.claims import REGISTRY, NotApplicable, claim, evaluate, exit_code

    @claim("testgroup.buggy", "s", "src", "tol", check="c")
    def _buggy(ev):
        return ev["missing"] + 1  # TypeError on the evidence below: a coding error, not an observation

    @claim("testgroup.not_applicable", "s", "src", "tol", check="c")
    def _na(ev):
        raise NotApplicable("no such quantity in this log")

    @claim("testgroup.fails", "s", "src", "tol", check="c")
    def _fails(ev):
        return False, {"value": 2.0}

    try:
        by = _by_id(evaluate("testgroup", None))
    finally:
        for cid in ("testgroup.buggy", "testgroup.not_applicable", "testgroup.fails"):
            REGISTRY.pop(cid)
    assert by["testgroup.buggy"].status == "error"
    assert "TypeError" in by["testgroup.buggy"].measured["error"] and "Traceback" in by["testgroup.buggy"].detail
    assert by["testgroup.not_applicable"].status == "n/a"
    assert by["testgroup.not_applicable"].detail == "no such quantity in this log"
    assert by["testgroup.fails"].status == "fail" and by["testgroup.fails"].measured == {"value": 2.0}
    assert exit_code([by["testgroup.fails"], by["testgroup.not_applicable"]]) == 0  # an observation fails: 0
    assert exit_code([by["testgroup.fails"]], strict=True) == 1
    assert exit_code([by["testgroup.buggy"]]) == 1
    with pytest.raises(ValueError, match="registered twice"):
        claim("empirical.nc1_decreases", "s", "src", "tol", check="c")(lambda ev: (True, {}))


def test_a_registered_claim_keeps_its_verification_flag_in_every_group():
    """``verification=False`` at registration holds in the dynamics group too (whose unregistered claims default to
    verification), on the template and on the evaluated claim; ``True`` holds in any group."""
    from paper_checks.claims import REGISTRY, claim, evaluate

    claim("dynamics.zz_observation", "s", "src", "tol", check="c", verification=False)(lambda ev: (True, {}))
    claim("zzgroup.zz_verification", "s", "src", "tol", check="c", verification=True)(lambda ev: (True, {}))
    try:
        got = {c.id: c.verification for c in evaluate("dynamics", None) + evaluate("zzgroup", None)
               if c.id.split(".")[1].startswith("zz_")}
        templates = {cid: REGISTRY[cid].template.verification for cid in got}
    finally:
        REGISTRY.pop("dynamics.zz_observation")
        REGISTRY.pop("zzgroup.zz_verification")
    assert got == templates == {"dynamics.zz_observation": False, "zzgroup.zz_verification": True}


def test_l_perp_claim_reports_the_three_lambdas_and_the_phase_before_the_first_decay(good_log):
    # a larger L_perp at the notebook's lambda and at 0, and while the learning rate is high
    recs = []
    for r in good_log:
        hi = r["epoch"] < 20
        l_a = r["l_nc1"] + r["l_nc23"]
        recs.append(dict(r, lr=0.1 if hi else 0.01, l_perp=l_a * (0.5 if hi else 0.03),
                         l_nc1_notebook=r["l_nc1"], l_nc23_notebook=r["l_nc23"], l_perp_notebook=l_a * 0.15,
                         l_perp_lam0=(r["l_nc1_lam0"] + r["l_nc23_lam0"]) * 1.5))
    c = _by_id(mse_claims(recs, None))["empirical.l_perp_negligible"]
    assert c.status == "fail"  # 0.5 before epoch 20 is in the terminal phase here (it starts at epoch 5)
    tp = c.measured["terminal_phase"]
    assert tp["optimiser C*wd/2"]["max"] == pytest.approx(0.5)
    assert tp["notebook wd/2"]["max"] == pytest.approx(0.15)
    assert tp["lambda = 0"]["max"] == pytest.approx(1.5)
    assert c.measured["before_first_lr_decay"]["optimiser C*wd/2"]["median"] == pytest.approx(0.5)
    late = [dict(r, train_error=0.01 if r["epoch"] < 20 else 0.0) for r in recs]
    c = _by_id(mse_claims(late, None))["empirical.l_perp_negligible"]
    assert c.status == "pass" and c.measured["terminal_phase"]["optimiser C*wd/2"]["max"] == pytest.approx(0.03)
    assert "lambda = 0: max 1.5" in report_headline(c)


def report_headline(c):
    from paper_checks.report import headline

    return headline(c, 400)


def test_mse_theory_claims_are_not_applicable_on_ce_and_unknown_loss_runs(good_log):
    """A CE run (or one whose loss nobody recorded) is held to NC1-NC4 only: the MSE-theory claims are n/a, with why."""
    mse_only = ("empirical.l_perp_negligible", "empirical.snr_follows_closed_form", "empirical.snr_ratio_toward_1",
                "empirical.decomposition_tracks_theory", "empirical.forward_prediction")
    for loss, word in (("ce", "loss is ce"), (None, "loss is unknown")):
        config = {"config": {"loss": loss}} if loss else {}
        by = _by_id(empirical_claims(good_log, compare_records(good_log, time="epoch", config=config), config=config))
        for cid in mse_only:
            assert by[cid].status == "n/a" and word in by[cid].measured["reason"], (loss, cid)
        assert by["empirical.nc1_decreases"].status == "pass"  # NC1-NC4 still apply
        assert by["empirical.decomposition_identity"].status == "pass"  # an identity of any (W, b, H)


def test_a_fit_from_too_few_epochs_is_never_a_pass(good_log):
    """4 epochs in the window (the fit's own minimum) make the fit-based claims n/a, not pass."""
    start = good_log[-4]["epoch"]
    cmp = compare_records(good_log, time="epoch", fit_from_epoch=start, config=MSE)
    assert cmp.fit is not None and len(cmp.fit_window["epochs"]) == 4
    by = _by_id(mse_claims(good_log, cmp))
    for cid in ("empirical.snr_follows_closed_form", "empirical.forward_prediction",
                "empirical.decomposition_tracks_theory", "empirical.snr_ratio_toward_1"):
        assert by[cid].status == "n/a" and "fewer than" in by[cid].measured["reason"], cid


def test_forward_prediction_from_a_fit_with_negative_r2_fails(good_log):
    """The smallest SNR value shrinks while the theory has it grow: the shared time map explains it worse than a
    constant (negative R^2), so the forward prediction cannot pass."""
    bad = [dict(r) for r in good_log]
    for k, r in enumerate(bad):
        sv = list(r["snr_singular_values"])
        sv[-1] = float(sv[-1] * np.exp(-0.3 * k))
        r["snr_singular_values"] = sv
    cmp = compare_records(bad, time="epoch", config=MSE)
    assert cmp.fit.to_dict()["r2_log_omega_min"] < 0
    c = _by_id(mse_claims(bad, cmp))["empirical.forward_prediction"]
    assert c.status == "fail"
