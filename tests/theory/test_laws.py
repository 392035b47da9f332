"""theory.laws: the lambdified scalar laws against their SymPy expressions and a real ODE solve."""

import numpy as np
import pytest
import sympy as sp
from scipy.integrate import solve_ivp

from theory import laws

POINTS = [(0.3, 6, 4, 1.0), (2.0, 5, 10, 3.5), (11.0, 100, 3, 0.25)]


@pytest.mark.parametrize("name", sorted(laws.SIGNATURES))
def test_numpy_and_jax_match_sympy(name):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    args = laws.SIGNATURES[name]
    expr = laws.expressions()[name]
    f_np, f_jax = laws.numeric(name, "numpy"), laws.numeric(name, "jax")
    rng = np.random.default_rng(0)
    for _ in range(4):
        values = [float(v) for v in rng.uniform(0.2, 9.0, len(args))]
        exact = float(expr.subs(dict(zip(args, values))).evalf(30))
        assert f_np(*values) == pytest.approx(exact, rel=1e-12)
        assert float(f_jax(*[jnp.asarray(v) for v in values])) == pytest.approx(exact, rel=1e-12)


def test_constants_follow_the_spec_table():
    """Spec 6.3 table: (N C^2, N C, N/4)/kappa; 'sum' -> (C, 1, 1/(4C)); 'means' -> (C^2, C, 1/4)."""
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


def test_flow_is_the_gradient_flow_of_the_central_loss():
    e = laws.expressions()
    lhs = e["omega_rhs"]
    rhs = -(laws.K / laws.N) * sp.diff(e["l_central"], laws.w)
    assert sp.simplify(lhs - rhs) == 0
    assert sp.simplify(e["l_nc1"] + e["l_nc23"] - e["l_central"]) == 0
    assert e["retraction_lhs"].coeff(laws.w, 4) == 0  # no quartic term (spec 6.1 "Contrast")


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
        assert np.max(np.abs(r)) < 1e-7 * max(1.0, t)
    assert np.all(np.diff(sol.y, axis=1) > 0)  # strictly increasing (spec 6.4 item 1)


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
