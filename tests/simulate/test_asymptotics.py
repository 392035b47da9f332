"""Long-time behaviour of the projected flow (math §6.4, math §9 items 21-22), reduced ODE to t = 1e8."""

import numpy as np

import simulate
import theory.laws

from .conftest import C, N


def _slope(t, y):
    return np.polyfit(np.log(t), np.log(y), 1)[0]


def test_reduced_ode_matches_closed_form_up_to_1e8(long_reduced):
    assert np.max(np.abs(long_reduced.omega / long_reduced.closed_form_omega - 1)) < 1e-8


def test_growth_rate_quarter_power(long_reduced):
    """omega_j(t) / (t/c3)^{1/4} -> 1 (slowly); at t = 1e8 within 1e-3 (math §6.4 item 1)."""
    t, w = long_reduced.times, long_reduced.omega
    c3 = theory.laws.constants(N, C, 1.0)[2]
    ratio = w[1:] / ((t[1:] / c3) ** 0.25)[:, None]
    assert np.max(np.abs(ratio[-1] - 1)) < 1e-3
    tail = np.abs(ratio[-8:] - 1)
    assert np.all(np.diff(tail, axis=0) < 0)  # approaching 1 monotonically on the tail
    assert abs(_slope(t[-6:], w[-6:, -1]) - 0.25) < 5e-3  # measured 0.2511 on [6.7e5, 1e8]
    print("omega/(t/c3)^(1/4) at t=1e8:", ratio[-1])


def test_max_min_ratio_is_one_plus_order_one_over_t(long_reduced):
    """(max/min - 1) t -> (a_1 - a_{C-1})/4 with a_j = lhs(omega_j(0)) (math §6.4 item 2, derived from 6.3)."""
    t, w = long_reduced.times, long_reduced.omega
    r = long_reduced.metrics["omega_ratio"]
    cf = long_reduced.closed_form_omega
    np.testing.assert_allclose(r, cf[:, 0] / cf[:, -1], rtol=1e-9)  # the closed form's ratio; measured 4.1e-10
    assert np.all(np.diff(r) < 0)
    a = theory.laws.numeric("closed_form_lhs")(w[0], N, C, 1.0)
    limit = (a[0] - a[-1]) / 4
    prod = (r[1:] - 1) * t[1:]
    assert abs(prod[-1] / limit - 1) < 1e-2
    assert np.max(prod) < 1.5 * limit  # bounded
    print("(max/min-1) t at t=1e8:", prod[-1], "predicted limit:", limit)


def test_nc1_decays_like_inverse_sqrt_t(long_reduced):
    t, m = long_reduced.times, long_reduced.metrics
    tail = slice(-6, None)  # t in [~5e5, 1e8]
    assert abs(_slope(t[tail], m["nc1"][tail]) + 0.5) < 0.01
    # NC1 = sum_j 1/omega_j^2 on X_set (theory "nc1_renormalized"), at the closed-form omega; its leading order
    # (C-1) sqrt(c3/t) (spec: 3.674 for C=4, N=6) is reached only to O(t^{-1/2}) (9.7e-4 at t = 1e8)
    nc1_cf = np.sum(np.asarray(theory.laws.numeric("nc1_renormalized")(long_reduced.closed_form_omega)), axis=1)
    np.testing.assert_allclose(m["nc1"], nc1_cf, rtol=1e-8)
    assert np.all(np.diff(m["nc1"]) < 0)


def test_limit_is_simplex_etf(long_reduced):
    m = long_reduced.metrics
    assert m["gram_etf_distance"][-1] < 1e-3
    assert m["gram_etf_distance"][-1] < 1e-2 * m["gram_etf_distance"][0]
    assert abs(_slope(long_reduced.times[-6:], m["gram_etf_distance"][-6:]) + 1) < 0.05  # O(1/t)
    g = long_reduced.gram_end / np.linalg.norm(long_reduced.gram_end)
    e = np.asarray(theory.etf_gram(C))
    np.testing.assert_allclose(g, e / np.linalg.norm(e), atol=1e-3)
    assert m["nc3"][-1] < 1e-8
    assert m["nc2_maxangle_means"][-1] < 1e-3
    assert m["nc4"][-1] == 0.0
    assert np.all(np.diff(m["l_central"]) < 0)


def test_summary_reports_rates(long_reduced):
    s = long_reduced.summary()
    assert abs(s["tail_loglog_slopes"]["nc1"] + 0.5) < 0.02
    assert abs(s["tail_loglog_slopes"]["omega_min"] - 0.25) < 0.01
    assert abs(s["tail_loglog_slopes"]["max_min_ratio_minus_1"] + 1) < 0.05
    assert s["closed_form_max_rel_error"] < 1e-8
    assert abs(s["omega_min_over_asymptote_final"] - 1) < 1e-3


def test_closed_form_asymptote_directly():
    """Closed form alone (no ODE) to t = 1e12: omega / (t/c3)^{1/4} -> 1 like O(t^{-1/2})."""
    import jax.numpy as jnp

    t = jnp.array([0.0, 1e4, 1e8, 1e12])
    w = np.asarray(simulate.closed_form_omega(jnp.array([3.0, 1.0, 0.3]), t, N, C))
    r = w[1:] / np.asarray(simulate.asymptotic_omega(t[1:], N, C))[:, None]
    assert np.all(np.abs(r[-1] - 1) < 1e-5)
    assert np.all(np.abs(r[-1] - 1) < np.abs(r[-2] - 1))


def test_tail_loglog_slope_window_and_power_law():
    """tail_loglog_slope: exact on a pure power law; only the last max(3, n // 3) times count."""
    t = np.concatenate([[0.0], np.geomspace(1e-2, 1e4, 59)])
    assert abs(simulate.tail_loglog_slope(t, t ** 0.25) - 0.25) < 1e-12
    y = np.where(np.arange(60) < 40, 1.0, 1.0 / np.where(t > 0, t, 1.0))  # flat, then 1/t on the last 20 = 60 // 3
    assert abs(simulate.tail_loglog_slope(t, y) + 1.0) < 1e-12
    assert np.isnan(simulate.tail_loglog_slope(t, -np.ones(60)))
