"""Negative controls: a deliberately wrong identity must NOT reduce to zero.

If the symbolic machinery returned zero for everything, the certificate would be worthless; these
tests feed it wrong variants and demand a nonzero residual.
"""

from __future__ import annotations

import sympy as sp
from sympy import MatrixSymbol

from theory import laws
from theory.symbolic import CheckSpec, Outcome, central_path, flow, laws_check, least_squares, run_specs
from theory.symbolic.decomposition import _algebra, notebook_residual
from theory.symbolic.model import (
    LAMBDA,
    class_stats,
    classifier_symbols,
    cleared_decomposition_residual,
    notebook_stats,
    quadratic_terms,
    rational_data,
    symbolic_data,
)
from theory.symbolic.traces import MatrixAlgebra


def test_notebook_unweighted_mean_breaks_identity_on_imbalanced_data():
    """math §9 item 7: nonzero on imbalanced counts, zero on balanced counts."""
    for lam in (sp.Integer(0), sp.Rational(1, 10)):
        assert notebook_residual(3, 2, (1, 2, 3), lam=lam) != 0
        assert notebook_residual(4, 3, (1, 2, 3, 2), lam=lam) != 0
        assert notebook_residual(3, 2, (2, 2, 2), lam=lam) == 0


def test_notebook_stats_in_exact_certificate_gives_nonzero_polynomial():
    """The single-shot certificate with the notebook's (unweighted) A, B is NOT the zero polynomial."""
    data = symbolic_data((1, 2), 1)
    st_nb = notebook_stats(data)
    W = classifier_symbols(2, 2)
    A, B = quadratic_terms(st_nb, LAMBDA, True)
    R, K = cleared_decomposition_residual(data, st_nb, W, LAMBDA, True, A, B)
    assert R != K.zero
    # ... while the count-weighted statistics give exactly zero on the same data
    st = class_stats(data)
    R2, K2 = cleared_decomposition_residual(data, st, W, LAMBDA, True)
    assert R2 == K2.zero


def test_wrong_classifier_breaks_certificate():
    """Perturbing B (so V = B' A^{-1} is not the LS classifier) leaves a nonzero residual."""
    data = rational_data((2, 2, 2), 2, seed=5)
    st = class_stats(data)
    W = classifier_symbols(3, 3)
    A, B = quadratic_terms(st, LAMBDA, True)
    Bp = B.copy()
    Bp[0, 0] += sp.Rational(1, 100)
    R, K = cleared_decomposition_residual(data, st, W, LAMBDA, True, A, Bp)
    assert R != K.zero


def test_trace_algebra_rejects_wrong_identities():
    C, q, n = sp.symbols("C q n", positive=True)
    W, V, A, B = (MatrixSymbol(s, *sh) for s, sh in (("W", (C, q)), ("V", (C, q)), ("A", (q, q)), ("B", (C, q))))
    alg = MatrixAlgebra(symmetric={"A"}, inverses={"A"})

    def quad(X):
        return sp.trace(X * A * X.T) / 2 - sp.trace(X * B.T)

    right = quad(W) - quad(V) - sp.trace((W - V) * A * (W - V).T) / 2 - sp.trace((W - V) * (V * A - B).T)
    assert alg.scalar(right) == {}
    wrong = quad(W) - quad(V) - sp.trace((W - V) * A * (W - V).T) / 2  # cross term dropped
    assert alg.scalar(wrong) != {}
    # A not symmetric: completing the square fails
    alg_ns = MatrixAlgebra(inverses={"A"})
    assert alg_ns.scalar(right) != {}


def test_trace_algebra_canonical_forms():
    p = sp.Symbol("p", positive=True)
    X, Y, Z = (MatrixSymbol(s, p, p) for s in "XYZ")
    alg = MatrixAlgebra()
    assert alg.scalar(sp.trace(X * Y * Z) - sp.trace(Z * X * Y)) == {}
    assert alg.scalar(sp.trace(X * Y) - sp.trace((X * Y).T)) == {}
    assert alg.scalar(sp.trace(X * Y * Z) - sp.trace(X * Z * Y)) != {}  # not cyclic: must differ


def test_huygens_needs_the_within_class_rule():
    """Without E Y^T = 0 (deviations summing to zero per class) the general Huygens split fails."""
    C, q, n = sp.Symbol("C", positive=True), sp.Symbol("q", positive=True), sp.Symbol("n", positive=True)
    W, Mt, Y, E = MatrixSymbol("W", C, q), MatrixSymbol("Mt", q, C), MatrixSymbol("Y", C, n), MatrixSymbol("E", q, n)
    Pi, SW = MatrixSymbol("Pi", C, C), MatrixSymbol("SW", q, q)
    I = sp.Identity(C)  # noqa: E741 - the identity, in the write-up's notation
    R = W * (Mt * Y + E) - Y
    expr = sp.trace(R * R.T) / (2 * n) - sp.trace(W * SW * W.T) / 2 - sp.trace((W * Mt - I) * Pi * (W * Mt - I).T) / 2
    assert _algebra().scalar(expr) == {}
    broken = _algebra()
    for key in [
        k for k in broken.rules if ("E", False) in k and ("Y", True) in k or ("Y", False) in k and ("E", True) in k
    ]:
        del broken.rules[key]
    assert broken.scalar(expr) != {}


def test_wrong_flow_constant_fails_differentiation():
    ex = laws.expressions()
    w = laws.w
    wrong = ex["c1"] * sp.log(w) + ex["c2"] * w**2 + 2 * ex["c3"] * w**4
    assert sp.simplify(sp.diff(wrong, w) * ex["omega_rhs"] - 1) != 0
    assert sp.simplify(sp.diff(ex["closed_form_lhs"], w) * ex["omega_rhs"] - 1) == 0
    # the retraction law has no quartic term: it does NOT integrate the projected flow
    assert sp.simplify(sp.diff(ex["retraction_lhs"], w) * ex["omega_rhs"] - 1) != 0


def test_wrong_theory_laws_term_fails_the_central_path_check(monkeypatch):
    """The math §3.4 check certifies theory.laws' own L_NC1: a wrong one makes it fail."""
    assert central_path._check_terms(3).passed
    monkeypatch.setattr(laws, "L_NC1", laws.w**2 / (2 * (laws.C + laws.w**2)))
    assert not central_path._check_terms(3).passed


def test_wrong_theory_laws_flow_fails_the_flow_checks(monkeypatch):
    """The math §6.1-6.3 checks certify theory.laws.expressions(): a wrong omega_rhs or c3 makes them fail."""
    good = dict(laws.expressions())
    wrong_rhs = dict(good, omega_rhs=good["omega_rhs"] * 2)
    monkeypatch.setattr(laws, "expressions", lambda: wrong_rhs)
    assert not flow.singular_value_ode(3).passed
    assert not flow.dmdt_svd(3).passed
    assert not flow.closed_form().passed
    wrong_c3 = dict(good, c3=good["c3"] * 2)
    monkeypatch.setattr(laws, "expressions", lambda: wrong_c3)
    assert not flow.closed_form().passed
    assert not flow.asymptotics().passed


def test_wrong_lambdified_law_fails_numeric_check(monkeypatch):
    real = laws.numeric

    def numeric(name, backend="numpy"):
        f = real(name, backend)
        return (lambda *xs: 1.001 * f(*xs)) if name == "l_nc23" else f

    monkeypatch.setattr(laws, "numeric", numeric)
    assert not laws_check.numeric_agreement("numpy").passed


def test_wrong_non_augmented_formula_fails_step6(monkeypatch):
    """The step-6 check certifies model.ls_non_augmented: perturbing its bias makes it fail."""
    real = least_squares.ls_non_augmented

    def wrong(st, lam, cleared=False):
        W_num, b_num, den, dm = real(st, lam, cleared=True)
        return W_num, b_num + dm(sp.ones(*b_num.shape)), den, dm

    assert least_squares._check_augmented(2, 1, (1, 3), None).passed
    monkeypatch.setattr(least_squares, "ls_non_augmented", wrong)
    assert not least_squares._check_augmented(2, 1, (1, 3), None).passed


def test_runner_turns_failures_and_exceptions_into_fail():
    def boom() -> Outcome:
        raise RuntimeError("derivation crashed")

    cert = run_specs([
        CheckSpec("3.3", "ok", lambda: Outcome(True, "fine")),
        CheckSpec("3.3", "wrong", lambda: Outcome(False, "residual 1")),
        CheckSpec("3.3", "crash", boom),
    ])
    assert not cert.passed
    assert [c["passed"] for c in cert.checks] == [True, False, False]
    assert "RuntimeError" in cert.checks[2]["detail"]


def test_probe_checks_fail_on_a_readout_that_is_not_least_squares():
    """§3.5 at C = 3, p = 1: the Huygens split holds for any readout, so the rational check must also pin the
    probe down as the minimiser; an arbitrary V fails it while its Huygens step still passes."""
    from theory.symbolic import probe

    assert probe.rational_probe().passed
    wrong = probe.rational_probe(readout=sp.Matrix([[1, 2], [sp.Rational(-3, 7), 5], [0, 9]]))
    assert not wrong.passed
    assert "(V least squares): False" in wrong.detail and "L(V) = L_NC1 + L_NC2/3: True" in wrong.detail
