"""theory.laws: the derived flow against the write-up's hand-written form, the constants table and a real ODE solve.

The lambdified functions against their SymPy expressions are checked by the certificate
(theory.symbolic.laws_check.numeric_agreement, run in tests/theory/test_symbolic_certificate.py).
"""

import numpy as np
import pytest
import sympy as sp
from scipy.integrate import solve_ivp

from theory import laws


def test_constants_follow_the_spec_table():
    """Math §6.3 table: (N C^2, N C, N/4)/kappa; 'sum' -> (C, 1, 1/(4C)); 'means' -> (C^2, C, 1/4)."""
    N, C = 6, 4
    assert laws.constants(N, C) == pytest.approx((N * C**2, N * C, N / 4))
    assert laws.constants(N, C, "sum") == pytest.approx((C, 1, 1 / (4 * C)))
    assert laws.constants(N, C, "means") == pytest.approx((C**2, C, 0.25))
    assert laws.constants(N, C, 2.0) == pytest.approx((N * C**2 / 2, N * C / 2, N / 8))
    assert laws.constants(N, C, snr_scale="per_class") == pytest.approx(tuple(C**2 * N * v for v in (1, 1, 0.25)))
    with pytest.raises(ValueError, match="unknown time-scale"):
        laws.constants(N, C, "bogus")
    with pytest.raises(ValueError, match="unknown law"):
        laws.numeric("nope")


def test_flow_is_the_spec_flow():
    """Math §6.2: ``d omega/dt = (1/N) omega/(C + omega^2)^2`` at unit speed (kappa = 1), scaled by kappa
    for the other time scales of the 6.3 table; typed here by hand, not taken from theory.laws."""
    e = laws.expressions()
    w, N, C, k = laws.w, laws.N, laws.C, laws.K
    assert sp.simplify(e["omega_rhs"] - (k / N) * w / (C + w**2) ** 2) == 0
    assert sp.simplify(e["l_nc1"] + e["l_nc23"] - e["l_central"]) == 0
    assert e["retraction_lhs"].coeff(laws.w, 4) == 0  # no quartic term (math §6.1 "Contrast")


@pytest.mark.parametrize("convention", ["projected", "sum", "means"])
def test_closed_form_is_conserved_along_an_ode_solution(convention):
    """Integrate dw/dt with an adaptive RK (rtol 1e-11): the closed-form residual stays at its initial value."""
    N, C = 6, 4
    k = laws.kappa(convention, N, C)
    rhs = laws.numeric("omega_rhs")
    residual = laws.numeric("closed_form_residual")
    lhs = laws.numeric("closed_form_lhs")
    w0 = np.array([0.3, 1.0, 2.5])
    a = lhs(w0, N, C, k)
    t_end = 2000.0 * (1.0 if convention == "projected" else 0.1)
    sol = solve_ivp(lambda t, y: rhs(y, N, C, k), (0, t_end), w0, rtol=1e-11, atol=1e-13, dense_output=True)
    for t in np.linspace(0, t_end, 7):
        r = residual(sol.sol(t), t, a, N, C, k)
        # measured max |r| / max(1, t) = 1.2e-10 (projected), 1.1e-10 (sum), 7.6e-11 (means)
        assert np.max(np.abs(r)) < 1e-9 * max(1.0, t)
    assert np.all(np.diff(sol.y, axis=1) > 0)  # strictly increasing (math §6.4 item 1)


def test_retraction_law_differs_from_projected_law():
    N, C = 6, 4
    rhs_r = laws.numeric("retraction_rhs")
    lhs_r = laws.numeric("retraction_lhs")
    lhs_p = laws.numeric("closed_form_lhs")
    w0 = np.array([1.5])
    sol = solve_ivp(lambda t, y: rhs_r(y, N, C), (0, 500.0), w0, rtol=1e-11, atol=1e-13)
    w_end = sol.y[:, -1]
    assert abs(lhs_r(w_end, N, C) - lhs_r(w0, N, C) - 500.0)[0] < 1e-6
    assert abs(lhs_p(w_end, N, C, 1.0) - lhs_p(w0, N, C, 1.0) - 500.0)[0] > 1.0
