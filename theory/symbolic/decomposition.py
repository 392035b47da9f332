"""Math §3.2, §3.3 (steps 3-5) and 3.3b: the certificate ``L = L_NC1 + L_NC2/3 + L_perp``.

In general (size-free, :mod:`theory.symbolic.traces`, with ``H~ = M~ Y + E``, ``E Y^T = 0``): steps 1, 3, 4 and 5
combine into ``L(W~) - L_NC1 - L_NC2/3 - L_perp = tr((W~ - V)(V A - B)^T)`` for every ``V``; by size with symbolic
or rational features, including the single-shot certificate at the least-squares classifier in closed form; and
the negative control of math §9 item 7 (the notebook's unweighted mean of class means).
"""

from __future__ import annotations

from functools import partial

import sympy as sp
from sympy import MatrixSymbol

from ._core import CheckSpec, Outcome, reduced
from .least_squares import RATIONAL_SIZES, SYMBOLIC_SIZES, context, size_label
from .model import (
    LAMBDA,
    classifier_symbols,
    cleared_decomposition_residual,
    decomposition_terms,
    ls_non_augmented,
    nc_terms,
    notebook_stats,
    rational_data,
    sample_loss,
)
from .traces import MatrixAlgebra

__all__ = ["specs", "general_decomposition", "notebook_residual", "direct_certificate"]


def _algebra() -> MatrixAlgebra:
    n = sp.Symbol("n", positive=True)
    alg = MatrixAlgebra(symmetric={"Pi", "SW", "A"}, inverses={"A"})
    alg.add_rule("E", "Y'", None)  # deviations sum to zero in every class
    alg.add_rule("E", "E'", {"SW": n})  # pooled within-class scatter
    alg.add_rule("Y", "Y'", {"Pi": n})  # diag(n_c)
    alg.trace_values[(("Pi", False),)] = sp.Integer(1)  # sum_c pi_c = 1
    return alg


def general_decomposition() -> Outcome:
    """Steps 1, 3, 4, 5 of math §3.3 (with 3.3b weights) for all sizes."""
    C, q = sp.symbols("C q", positive=True, integer=True)
    n, lam = sp.Symbol("n", positive=True), LAMBDA
    W, V, Mt = MatrixSymbol("W", C, q), MatrixSymbol("V", C, q), MatrixSymbol("Mt", q, C)
    Y, E, Pi = MatrixSymbol("Y", C, n), MatrixSymbol("E", q, n), MatrixSymbol("Pi", C, C)
    SW, A = MatrixSymbol("SW", q, q), MatrixSymbol("A", q, q)
    I = sp.Identity(C)  # noqa: E741 - the identity, in the write-up's notation
    Iq = sp.Identity(q)
    alg = _algebra()
    H = Mt * Y + E

    def loss(X):  # paper loss from the samples: (1/2n)||X H~ - Y||^2 + (lambda/2)||X||^2
        R = X * H - Y
        return sp.trace(R * R.T) / (2 * n) + lam / 2 * sp.trace(X * X.T)

    A_def = Mt * Pi * Mt.T + SW + lam * Iq
    B_def = Pi * Mt.T

    def quad(X, AA):  # step 1's quadratic form
        return sp.trace(X * AA * X.T) / 2 - sp.trace(X * B_def.T) + sp.Rational(1, 2)

    def nc1(X):
        return sp.trace(X * (SW + lam * Iq) * X.T) / 2

    def nc23(X):
        return sp.trace((X * Mt - I) * Pi * (X * Mt - I).T) / 2

    perp = sp.trace((W - V) * A_def * (W - V).T) / 2
    parts = {
        "step 1: (1/n)H~H~^T + lambda I - A": alg.matrix(H * H.T / n + lam * Iq - A_def),
        "(1/n)YH~^T - B": alg.matrix(Y * H.T / n - B_def),
        "L(W~) - quadratic": alg.scalar(loss(W) - quad(W, A_def)),
        "step 4 (Huygens): L(W~) - L_NC1(W~) - L_NC2/3(W~)": alg.scalar(loss(W) - nc1(W) - nc23(W)),
        "step 3 (complete the square, symmetric A), any V": alg.scalar(
            quad(W, A) - quad(V, A) - sp.trace((W - V) * A * (W - V).T) / 2 - sp.trace((W - V) * (V * A - B_def).T)),
        "step 5: L(W~) - L_NC1(V) - L_NC2/3(V) - L_perp - tr((W~-V)(VA-B)^T)":
            alg.scalar(loss(W) - nc1(V) - nc23(V) - perp - sp.trace((W - V) * (V * A_def - B_def).T)),
        "normal equations at V = B A^-1": alg.matrix(B_def * A.I * A - B_def),
    }
    return reduced(parts, (
        r"\tilde H = \tilde M Y + E,\ EY^T = 0,\ EE^T = n\tilde\Sigma_W,\ YY^T = n\Pi:\quad "
        r"L(\tilde W) - L_{NC1}(V) - L_{NC2/3}(V) - L^\perp_{LS}(\tilde W, V) = "
        r"\operatorname{tr}\big((\tilde W - V)(VA - B)^T\big) \;\; \forall V,"
        r"\quad A = \tilde M\Pi\tilde M^T + \tilde\Sigma_W + \lambda I,\ B = \Pi\tilde M^T"
    ))


def _check_huygens(C, p, counts, bias) -> Outcome:
    data, st, W, loss, A, B = context(C, p, counts, bias)
    nc1, nc23 = nc_terms(st, W, LAMBDA, bias)  # the math §3.2 terms evaluated at the generic W~
    ok = sp.expand(loss - nc1 - nc23) == 0
    return Outcome(ok, f"expand(L_samples(W~) - tr(W~(Sigma~_W + lambda I)W~^T)/2 - sum_c pi_c||W~ mu~_c - "
                       f"e_c||^2/2) == 0: {ok}")


def _check_factorisation(C, p, counts, bias) -> Outcome:
    data, st, W, loss, A, B = context(C, p, counts, bias)
    V = classifier_symbols(C, W.shape[1], "v")
    n1, n23, perp = decomposition_terms(st, W, V, LAMBDA, bias, A)
    ok = sp.expand(loss - n1 - n23 - perp - ((W - V) * (V * A - B).T).trace()) == 0
    return Outcome(ok, f"expand(L(W~) - L_NC1(V) - L_NC2/3(V) - L_perp(W~,V) - tr((W~-V)(VA-B)^T)) == 0 for "
                       f"symbolic V: {ok} (so the residual vanishes exactly on the normal equations VA = B)")


def direct_certificate(C, p, counts, bias, rational_seed=None) -> Outcome:
    """Single-shot certificate: ``det(A)^2 (L - L_NC1 - L_NC2/3 - L_perp)``
    at ``V = B adj(A)/det(A)`` is the zero polynomial."""
    data, st, W, loss, A, B = context(C, p, counts, bias, rational_seed)
    R, K = cleared_decomposition_residual(data, st, W, LAMBDA, bias, A, B)
    ok = R == K.zero
    return Outcome(ok, f"det(A)^2 * (L - L_NC1 - L_NC2/3 - L_perp) at W~_LS = B adj(A)/det(A) is the zero polynomial "
                       f"in {len(K.symbols)} variables (features, classifier, lambda): {ok}")


def notebook_residual(C, p, counts, seed: int = 3, lam=sp.Integer(0)) -> sp.Expr:
    """Residual ``L - (L_NC1 + L_NC2/3 + L_perp)`` with the notebook's statistics (math §2.2, §8 caveat 1:
    :func:`~theory.symbolic.model.notebook_stats`) at the notebook's own least-squares classifier, with exact
    rational features and ``lambda``: an exact rational number."""
    data = rational_data(counts, p, seed)
    nb = notebook_stats(data)
    Wn, bn = ls_non_augmented(nb, lam)
    V = Wn.row_join(bn)
    loss = sample_loss(data, V, lam, True)
    l1, l23, lp = decomposition_terms(nb, V, V, lam, True)
    return sp.cancel(sp.together(loss - l1 - l23 - lp))


def _check_notebook(C, p, counts) -> Outcome:
    r0 = notebook_residual(C, p, counts, lam=sp.Integer(0))
    r1 = notebook_residual(C, p, counts, lam=sp.Rational(1, 10))
    if len(set(counts)) == 1:  # balanced
        return Outcome(r0 == 0 and r1 == 0, f"balanced: notebook formulas coincide with the weighted ones, "
                                            f"residual = {r0} (lambda=0), {r1} (lambda=1/10)")
    return Outcome(r0 != 0 and r1 != 0,
                   f"imbalanced: notebook residual L - (L_NC1 + L_NC2/3 + L_perp) at its own W_LS is NOT zero "
                   f"(math §9 item 7): {float(r0):.4g} at lambda=0, {float(r1):.4g} at lambda=1/10 (exact rationals)",
                   r"\Big[L - (L_{NC1}+L_{NC2/3}+L^\perp)\Big]_{\text{notebook},\,\lambda=0} = "
                   + sp.latex(r0) + r" \ne 0")


#: fully symbolic single-shot certificates that run in about a second or less
_DIRECT_SYMBOLIC = tuple(
    (C, p, counts, bias)
    for C, p, counts in SYMBOLIC_SIZES
    for bias in (True, False)
    if (p + int(bias)) <= 2 and not (C == 3 and p == 2)
)

#: fully symbolic single-shot certificates that take 10-60 s each (run with ``--exhaustive``)
_DIRECT_SYMBOLIC_SLOW = ((2, 2, (2, 2), True), (2, 2, (1, 3), True), (3, 2, (2, 2, 2), False), (3, 2, (1, 2, 3), False))


def specs(exhaustive: bool = False) -> list[CheckSpec]:
    """The section's checks; ``exhaustive`` adds the fully symbolic single-shot certificates that take 10-60 s each."""
    out = [CheckSpec("3.3", "steps 1,3,4,5 + normal equations, all sizes (matrix symbols)", general_decomposition,
                     "general", "L - (L_NC1 + L_NC2/3 + L_perp) = tr((W~-V)(VA-B)^T) = 0 at V = B A^-1")]
    for C, p, counts in SYMBOLIC_SIZES:
        for bias in (True, False):
            lab = size_label(C, p, counts, bias)
            out += [
                CheckSpec("3.3", f"step 4: Huygens split [{lab}]", partial(_check_huygens, C, p, counts, bias),
                          "symbolic size", "L(W~) = tr(W~(Sigma~_W+lambda I)W~^T)/2 + sum_c pi_c||W~mu~_c - e_c||^2/2"),
                CheckSpec("3.3", f"steps 3+5: residual = tr((W~-V)(VA-B)^T) [{lab}]",
                          partial(_check_factorisation, C, p, counts, bias), "symbolic size",
                          "L - (L_NC1 + L_NC2/3 + L_perp) vanishes on V A = B"),
            ]

    def certificate(C, p, counts, bias, end="]", kind="symbolic size", quick=True, seed=None) -> CheckSpec:
        return CheckSpec("3.3", f"certificate L = L_NC1 + L_NC2/3 + L_perp [{size_label(C, p, counts, bias)}{end}",
                         partial(direct_certificate, C, p, counts, bias, rational_seed=seed), kind,
                         "L - (L_NC1 + L_NC2/3 + L_perp) == 0 at W~_LS", quick)

    out += [certificate(*size) for size in _DIRECT_SYMBOLIC]
    out += [certificate(C, p, counts, bias, ", rational features]", "rational size", C < 4, 5)
            for C, p, counts in RATIONAL_SIZES for bias in (True, False)]
    for C, p, counts in ((3, 2, (2, 2, 2)), (3, 2, (1, 2, 3)), (4, 3, (1, 2, 3, 2))):
        out.append(CheckSpec("3.3", f"negative control: notebook formulas [{size_label(C, p, counts, True)}]",
                             partial(_check_notebook, C, p, counts), "rational size",
                             "notebook residual = 0 if balanced, != 0 if imbalanced (math §9 item 7)", quick=C < 4))
    return out + [certificate(C, p, counts, bias, "] (exhaustive)", quick=False)
                  for C, p, counts, bias in _DIRECT_SYMBOLIC_SLOW if exhaustive]

