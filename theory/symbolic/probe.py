"""Math §3.5: the decomposition of a least-squares linear probe ``V = B A^{-1}`` at any layer.

Two checks, each written from the samples here rather than through :mod:`.decomposition`'s code, so that they
cross-check it:

* **general** (any C, p, n, class counts, symbolic ``lambda``), in the size-free matrix algebra of
  :mod:`theory.symbolic.traces` with the facts of :mod:`theory.symbolic.decomposition` (``H~ = M~ Y + E``,
  ``E Y^T = 0``, ``E E^T = n Sigma~_W``, ``Y Y^T = n Pi``): ``L(V) = L_NC1(V) + L_NC2/3(V)`` from the samples'
  loss (the Huygens split, true for every readout); at ``V = B A^{-1}`` the probe's loss is
  ``1/2 - tr(B A^{-1} B^T) / 2``; and every readout ``W~`` loses ``L(W~) - L(V) = L_perp(W~)`` more than the probe.
* **rational size**: ``C = 3`` classes and ``p = 1`` feature (fewer features than ``C - 1``, the case a layer may
  be in), exact rational features, imbalanced counts, symbolic ``lambda``: the per-sample loss of ``V`` equals
  ``L_NC1 + L_NC2/3`` exactly, with ``V``, the scatter and the class means computed here from the samples.
"""

from __future__ import annotations

import sympy as sp
from sympy import MatrixSymbol

from ._core import CheckSpec, Outcome, reduced
from .decomposition import _algebra
from .model import LAMBDA

__all__ = ["general_probe", "rational_probe", "specs"]


def general_probe() -> Outcome:
    """``L(V) = L_NC1 + L_NC2/3 = 1/2 - tr(B A^{-1} B^T)/2`` and ``L(W~) - L(V) = L_perp(W~)`` (all sizes)."""
    C, q = sp.Symbol("C", positive=True, integer=True), sp.Symbol("q", positive=True, integer=True)
    n, lam = sp.Symbol("n", positive=True), LAMBDA
    W, Mt, Y = MatrixSymbol("W", C, q), MatrixSymbol("Mt", q, C), MatrixSymbol("Y", C, n)
    E, Pi, SW, A = MatrixSymbol("E", q, n), MatrixSymbol("Pi", C, C), MatrixSymbol("SW", q, q), MatrixSymbol("A", q, q)
    I, Iq = sp.Identity(C), sp.Identity(q)  # noqa: E741 - the identity, in the write-up's notation
    alg = _algebra()
    H, B = Mt * Y + E, Pi * Mt.T
    P = MatrixSymbol("V", C, q)  # any readout: the Huygens split holds at every V (step 4 of math §3.3)
    V, Vt = B * A.I, A.I * B.T  # the probe: the normal equations V A = B, A symmetric and invertible (A^-T = A^-1)

    def loss(X):  # (1/2n)||X H~ - Y||^2 + (lambda/2)||X||^2, a readout's loss from its samples
        R = X * H - Y
        return sp.trace(R * R.T) / (2 * n) + lam / 2 * sp.trace(X * X.T)

    def quad(X, Xt):  # step 1 of math §3.3 with the letter A (A = M~ Pi M~^T + Sigma~_W + lambda I there)
        return sp.trace(X * A * Xt) / 2 - sp.trace(X * B.T) + sp.Rational(1, 2)

    l_nc1 = sp.trace(P * (SW + lam * Iq) * P.T) / 2
    l_nc23 = sp.trace((P * Mt - I) * Pi * (P * Mt - I).T) / 2
    excess = quad(W, W.T) - quad(V, Vt) - sp.trace((W - V) * A * (W.T - Vt)) / 2  # L_perp of W~ (math §3.2)
    return reduced({
        "L(V) = L_NC1(V) + L_NC2/3(V)": alg.scalar(loss(P) - l_nc1 - l_nc23),
        "L(V) = 1/2 - tr(B A^-1 B^T)/2 at V = B A^-1": alg.scalar(quad(V, Vt) - sp.Rational(1, 2)
                                                                  + sp.trace(B * A.I * B.T) / 2),
        "L(W) - L(V) = L_perp(W) at V = B A^-1": alg.scalar(excess),
    }, r"V = BA^{-1}:\quad L(V) = L_{NC1} + L_{NC2/3} = \tfrac12 - \tfrac12\operatorname{tr}(BA^{-1}B^T),\quad "
       r"L(\tilde W) - L(V) = \tfrac12\operatorname{tr}\big((\tilde W - V)A(\tilde W - V)^T\big)")


def rational_probe() -> Outcome:
    """``C = 3``, ``p = 1`` (``p < C - 1``), counts (2, 3, 2), exact features, symbolic ``lambda``:
    the per-sample loss of the probe ``V = B A^{-1}`` equals ``L_NC1 + L_NC2/3`` (math §3.5)."""
    lam = LAMBDA
    labels = [0, 0, 1, 1, 1, 2, 2]
    h = [sp.Rational(v) for v in ("1", "3/2", "-2", "-1/3", "-5/2", "7/4", "1/5")]
    n, C = len(labels), 3
    Ht = sp.Matrix([h, [1] * n])  # augmented features (p + 1 = 2 rows)
    Y = sp.Matrix(C, n, lambda c, i: 1 if labels[i] == c else 0)
    A = Ht * Ht.T / n + lam * sp.eye(2)
    V = Y * Ht.T / n * A.inv()
    R = V * Ht - Y
    loss = (R * R.T).trace() / (2 * n) + lam / 2 * (V * V.T).trace()
    counts = [labels.count(c) for c in range(C)]
    means = [sum((Ht[:, i] for i in range(n) if labels[i] == c), sp.zeros(2, 1)) / counts[c] for c in range(C)]
    dev = sp.Matrix.hstack(*[Ht[:, i] - means[labels[i]] for i in range(n)])
    sw = dev * dev.T / n  # pooled within-class scatter of the augmented features (its last row and column are 0)
    l_nc1 = (V * (sw + lam * sp.eye(2)) * V.T).trace() / 2
    l_nc23 = sum(sp.Rational(counts[c], n) * ((V * means[c] - sp.eye(C)[:, c]).T * (V * means[c] - sp.eye(C)[:, c]))[0]
                 for c in range(C)) / 2
    residual = sp.simplify(sp.together(loss - l_nc1 - l_nc23))
    return Outcome(residual == 0, f"L(V) - L_NC1 - L_NC2/3 = {residual} (p = 1 < C - 1 = 2, counts {counts})",
                   r"L(V) - L_{NC1} - L_{NC2/3} = 0\ \ (C = 3,\ p = 1)")


def specs() -> list[CheckSpec]:
    return [
        CheckSpec("3.5", "probe at any layer: its loss and its excess over other readouts, all sizes (matrix symbols)",
                  general_probe, "general",
                  "V = B A^-1: L(V) = L_NC1 + L_NC2/3 = 1/2 - tr(B A^-1 B^T)/2, L(W) - L(V) = L_perp(W)"),
        CheckSpec("3.5", "probe with fewer features than C - 1 [C=3,p=1 (imbalanced),bias]", rational_probe,
                  "rational size", "per-sample L(W_LS) == L_NC1 + L_NC2/3 with symbolic lambda"),
    ]
