"""Math §5.1: invariance of the least-squares fit under maps of feature space.

In general (size-free): ``H~' = T H~`` with ``T = [[A, c], [0, 1]]`` keeps the fit at ``lambda = 0``
(``V' = V T^{-1}``), and at ``lambda > 0`` only when ``T T^T = I``. By size: symbolic ``A``, ``c`` on rational
features, a rotation with a symbolic parameter at symbolic ``lambda``, an exact counterexample at ``lambda > 0``,
and the invariance of the SNR Gram matrix ``Mbar^T Sigma_W^{-1} Mbar`` (eigenvalues ``omega_j^2``).
"""

from __future__ import annotations

import sympy as sp
from sympy import MatrixSymbol

from ._core import Checks, CheckSpec, Outcome, reduced, vanishes, verdict
from .model import (
    LAMBDA,
    SymbolicData,
    augment,
    class_stats,
    classifier_symbols,
    lifter,
    ls_augmented,
    nc_terms,
    quadratic_terms,
    rational_data,
)
from .traces import MatrixAlgebra

__all__ = ["specs", "transform", "ls_fit"]

CHECKS = Checks()


def transform(data: SymbolicData, Amat: sp.Matrix, c: sp.Matrix) -> SymbolicData:
    """Features ``h -> A h + c`` (math §5.1; ``A`` may be rectangular)."""
    return SymbolicData(data.counts, Amat.rows, tuple(tuple(Amat * h + c for h in col) for col in data.features))


def ls_fit(data: SymbolicData, lam, field=None):
    """Least-squares classifier ``V = B A^{-1}`` (augmented, math §3.1), ``L_NC1``, ``L_NC2/3`` and fitted outputs.

    With ``field`` (e.g. ``QQ.frac_field(s, lambda)``) computed in that field with ``DomainMatrix`` (canonical form,
    so ``==`` is an exact test); otherwise with plain SymPy matrices.
    """
    st = class_stats(data)
    lift = lifter(field)[0]
    if field is None:
        V, _ = ls_augmented(st, lam)
    else:
        A, B = quadratic_terms(st, lam, True)
        adj, det = lift(A).adj_det()  # Cramer's rule (much faster than elimination over the field)
        if det == field.zero:
            raise ZeroDivisionError("A is singular: the least-squares classifier is not unique")
        V = lift(B) * adj * (field.one / det)
    l1, l23 = nc_terms(st, V, lam, True, domain=field)
    outs = [V * lift(augment(h)) for _, h in data.samples()]
    return V, l1, l23, outs


@CHECKS.add("5.1", "invariance: lambda=0 affine maps, lambda>0 orthogonal maps (matrix symbols)", "general",
             "W_LS' = W_LS A^-1, b' = b - W A^-1 c, outputs unchanged")
def general_invariance() -> Outcome:
    q, C, n = sp.symbols("q C n", positive=True, integer=True)
    T, A = MatrixSymbol("T", q, q), MatrixSymbol("A", q, q)  # A: data part (1/n) H~H~^T at lambda = 0 (symmetric)
    B, V, H = MatrixSymbol("B", C, q), MatrixSymbol("V", C, q), MatrixSymbol("H", q, n)
    alg = MatrixAlgebra(symmetric={"A"}, inverses={"T"})
    # lambda = 0: A' = T A T^T, B' = B T^T
    # lambda > 0 with T T^T = I (orthogonal, no translation): A'+lam I = T (A + lam I) T^T
    algq = MatrixAlgebra(symmetric={"A"}, inverses={"T"})
    algq.add_rule("T", "T'", {"I": 1})
    algq.add_rule("T'", "T", {"I": 1})
    Aq = A + LAMBDA * sp.Identity(q)
    # (that invariance fails without T T^T = I is shown by an exact counterexample: non_invariance_lambda)
    return reduced(
        {"lambda=0: V'A'-B' - (VA-B)T^T": alg.matrix(V * T.I * (T * A * T.T) - B * T.T - (V * A - B) * T.T),
         "V'H~' - VH~": alg.matrix(V * T.I * (T * H) - V * H),
         "lambda>0, TT^T=I: A'-T(A+lam I)T^T": algq.matrix(T * A * T.T + LAMBDA * sp.Identity(q) - T * Aq * T.T),
         "normal eqs": algq.matrix(V * T.T * (T * Aq * T.T) - B * T.T - (V * Aq - B) * T.T)},
        r"\tilde H' = T\tilde H:\ A' = TAT^T,\ B' = BT^T \Rightarrow \tilde W_{LS}' = \tilde W_{LS}T^{-1},\ "
        r"\tilde W_{LS}'\tilde H' = \tilde W_{LS}\tilde H\ (\lambda=0);\quad \lambda>0:\ "
        r"A' = T(A-\lambda I)T^T + \lambda I = TAT^T\ \text{if}\ TT^T = I",
    )


@CHECKS.add("5.1", "lambda=0: H -> AH + c1^T with symbolic A, c [C=3,p=2, imbalanced, rational features]",
             "rational size", "W_LS' = W_LS A^-1, b' = b - W A^-1 c, outputs and L terms unchanged")
def affine_lambda0() -> Outcome:
    """lambda = 0, C = 3, p = 2, imbalanced rational features, symbolic A (2x2) and c.

    The transformed data are fitted from scratch (their own normal equations, :func:`ls_fit`) and the
    result is compared with math §5.1's prediction ``W' = W A^{-1}``, ``b' = b - W A^{-1} c``.
    """
    data = rational_data((1, 2, 3), 2, seed=21)
    Amat, c = classifier_symbols(2, 2, "a"), classifier_symbols(2, 1, "c")
    F = sp.QQ.frac_field(*sorted(Amat.free_symbols | c.free_symbols, key=str))
    dm = lifter(F)[0]
    V, l1, l23, outs = ls_fit(data, 0, F)
    V2, l1b, l23b, outs2 = ls_fit(transform(data, Amat, c), 0, F)
    rows = list(range(3))
    W, b = V.extract(rows, [0, 1]), V.extract(rows, [2])
    WAinv = W * dm(Amat).inv()
    steps = {"W_LS' == W_LS A^-1": V2.extract(rows, [0, 1]) == WAinv,
             "b_LS' == b_LS - W_LS A^-1 c": V2.extract(rows, [2]) == b - WAinv * dm(c),
             "outputs unchanged": outs == outs2,
             "L_NC1, L_NC2/3 unchanged": l1 == l1b and l23 == l23b}
    return verdict(steps, head="H -> AH + c1^T (symbolic A, c), transformed data fitted from their own normal "
                               "equations: ")


@CHECKS.add("5.1", "lambda>0 symbolic: rotation with symbolic parameter keeps the fit [C=3,p=2, rational features]",
             "rational size", "orthogonal invariance at lambda > 0")
def rotation_lambda() -> Outcome:
    """lambda > 0 symbolic, rotation Q(s) = ((1-s^2) I + 2 s J)/(1+s^2) (every rotation but pi), p = 2."""
    s = sp.Symbol("s", real=True)
    Q = sp.Matrix([[1 - s**2, -2 * s], [2 * s, 1 - s**2]]) / (1 + s**2)
    ok_orth = vanishes(Q * Q.T - sp.eye(2), how=sp.cancel)
    data = rational_data((2, 1, 2), 2, seed=22)
    F = sp.QQ.frac_field(s, LAMBDA)
    V, l1, l23, outs = ls_fit(data, LAMBDA, F)
    V2, l1b, l23b, outs2 = ls_fit(transform(data, Q, sp.zeros(2, 1)), LAMBDA, F)
    return verdict({"Q Q^T = I": ok_orth,
                    "symbolic lambda, symbolic rotation parameter s: outputs unchanged": outs == outs2,
                    "L_NC1, L_NC2/3 unchanged": l1 == l1b and l23 == l23b})


@CHECKS.add("5.1", "lambda>0: generic linear map / translation change the fit [C=3,p=2]", "rational size",
             "no invariance beyond orthogonal maps at lambda > 0")
def non_invariance_lambda() -> Outcome:
    """lambda = 1/2: a generic linear map and a translation change L_NC1 and the outputs (exact nonzero differences)."""
    lam = sp.Rational(1, 2)
    data = rational_data((2, 1, 2), 2, seed=23)
    V, l1, l23, outs = ls_fit(data, lam)
    Ag = sp.Matrix([[2, 1], [0, 1]])
    _, l1a, l23a, outsa = ls_fit(transform(data, Ag, sp.zeros(2, 1)), lam)
    _, l1t, l23t, outst = ls_fit(transform(data, sp.eye(2), sp.Matrix([3, -1])), lam)
    da = sp.nsimplify(l1a + l23a - l1 - l23)
    dt = sp.nsimplify(l1t + l23t - l1 - l23)
    oa = max(abs(float(x)) for o, o2 in zip(outs, outsa) for x in (o2 - o))
    ot = max(abs(float(x)) for o, o2 in zip(outs, outst) for x in (o2 - o))
    ok = da != 0 and dt != 0 and oa > 0 and ot > 0
    return Outcome(ok, f"lambda=1/2: Delta(L_NC1+L_NC2/3) = {float(da):.4g} (A=[[2,1],[0,1]]), "
                       f"{float(dt):.4g} (c=(3,-1)); "
                       f"max output change {oa:.3g}, {ot:.3g} -- not invariant, as math §5.1 says")


@CHECKS.add("5.1", "SNR singular values invariant under AH + c1^T (symbolic A, c)", "rational size",
             "omega_j invariant")
def snr_gram_invariance() -> Outcome:
    """``G = Mbar^T Sigma_W^{-1} Mbar`` (C x C, eigenvalues omega_j^2 and 0) is invariant under A H + c 1^T."""
    data = rational_data((2, 2, 2), 2, seed=24)
    Amat, c = classifier_symbols(2, 2, "a"), classifier_symbols(2, 1, "c")

    def gram(d):
        st = class_stats(d)
        Mbar = st.centred_means()
        return Mbar.T * st.sigma_w.adjugate() * Mbar / st.sigma_w.det()

    G1, G2 = gram(data), gram(transform(data, Amat, c))
    ok = vanishes(G2 - G1, how=sp.cancel)
    return Outcome(ok, f"Mbar'^T Sigma_W'^-1 Mbar' == Mbar^T Sigma_W^-1 Mbar for symbolic A, c: {ok} "
                       "(so SNR' = Q SNR with Q orthogonal on the range, and the omega_j are invariant)",
                   r"\bar M'^T\Sigma_W'^{-1}\bar M' = \bar M^T A^T A^{-T}\Sigma_W^{-1}A^{-1}A\bar M = \bar "
                   r"M^T\Sigma_W^{-1}\bar M")


def specs() -> list[CheckSpec]:
    return list(CHECKS)
