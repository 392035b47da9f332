"""Math §3.5: the decomposition of a least-squares linear probe ``V = B A^{-1}`` at any layer.

``L(V) = L_NC1 + L_NC2/3`` at the probe is the Huygens split of math §3.3 step 4, true for every readout and
certified there (:mod:`.decomposition`).  What is new here:

* **general** (any C, p, n, class counts, symbolic ``lambda``), in the size-free matrix algebra of
  :mod:`theory.symbolic.traces`, on step 1's quadratic form of math §3.3 (``L(W~) = tr(W~ A W~^T)/2 - tr(W~ B^T)
  + 1/2``, certified there): at ``V = B A^{-1}`` the probe's loss is ``1/2 - tr(B A^{-1} B^T) / 2``, and every
  readout ``W~`` loses ``L(W~) - L(V) = L_perp(W~)`` more.
* **rational size**: ``C = 3`` classes and ``p = 1`` feature (fewer features than ``C - 1``, the case a layer may
  be in), exact rational features, imbalanced counts, symbolic ``lambda``, everything written from the samples
  here rather than through :mod:`.decomposition`'s code: ``V`` from the normal equations is the least-squares
  readout (any symbolic readout ``W~`` loses exactly ``tr((W~ - V) A (W~ - V)^T)/2`` more, which fails for any other
  ``V``), its loss equals ``L_NC1 + L_NC2/3``, and ``L_NC2/3 > 0`` (at ``lambda = 0``: rank 2 cannot map 3 means
  to their one-hot targets).
"""

from __future__ import annotations

import sympy as sp
from sympy import MatrixSymbol

from ._core import CheckSpec, Outcome, reduced, vanishes, verdict
from .decomposition import _algebra
from .model import LAMBDA, classifier_symbols

__all__ = ["general_probe", "rational_probe", "specs"]


def general_probe() -> Outcome:
    """``L(V) = 1/2 - tr(B A^{-1} B^T)/2`` and ``L(W~) - L(V) = L_perp(W~)`` at ``V = B A^{-1}`` (all sizes), on
    math §3.3 step 1's quadratic form."""
    C, q = sp.Symbol("C", positive=True, integer=True), sp.Symbol("q", positive=True, integer=True)
    W, Mt, A = MatrixSymbol("W", C, q), MatrixSymbol("Mt", q, C), MatrixSymbol("A", q, q)
    B = MatrixSymbol("Pi", C, C) * Mt.T
    alg = _algebra()
    V, Vt = B * A.I, A.I * B.T  # the probe: the normal equations V A = B, A symmetric and invertible (A^-T = A^-1)

    def quad(X, Xt):  # step 1 of math §3.3 with the letter A (A = M~ Pi M~^T + Sigma~_W + lambda I there)
        return sp.trace(X * A * Xt) / 2 - sp.trace(X * B.T) + sp.Rational(1, 2)

    excess = quad(W, W.T) - quad(V, Vt) - sp.trace((W - V) * A * (W.T - Vt)) / 2  # L_perp of W~ (math §3.2)
    return reduced({
        "L(V) = 1/2 - tr(B A^-1 B^T)/2 at V = B A^-1": alg.scalar(quad(V, Vt) - sp.Rational(1, 2)
                                                                  + sp.trace(B * A.I * B.T) / 2),
        "L(W) - L(V) = L_perp(W) at V = B A^-1": alg.scalar(excess),
    }, r"V = BA^{-1}:\quad L(V) = L_{NC1} + L_{NC2/3} = \tfrac12 - \tfrac12\operatorname{tr}(BA^{-1}B^T),\quad "
       r"L(\tilde W) - L(V) = \tfrac12\operatorname{tr}\big((\tilde W - V)A(\tilde W - V)^T\big)")


def rational_probe(readout: sp.Matrix | None = None) -> Outcome:
    """``C = 3``, ``p = 1`` (``p < C - 1``), counts (2, 3, 2), exact features, symbolic ``lambda``, from the samples:
    the probe ``V`` (``readout``; default: from the normal equations) is least squares, its per-sample loss equals
    ``L_NC1 + L_NC2/3``, and ``L_NC2/3 > 0`` (math §3.5)."""
    labels = [0, 0, 1, 1, 1, 2, 2]
    h = [sp.Rational(v) for v in ("1", "3/2", "-2", "-1/3", "-5/2", "7/4", "1/5")]
    lam, n, C = LAMBDA, len(labels), 3
    Ht = sp.Matrix([h, [1] * n])  # augmented features (p + 1 = 2 rows)
    Y = sp.Matrix(C, n, lambda c, i: 1 if labels[i] == c else 0)
    A = Ht * Ht.T / n + lam * sp.eye(2)
    V = Y * Ht.T / n * A.inv() if readout is None else readout

    def loss(X):  # (1/2n)||X H~ - Y||^2 + (lambda/2)||X||^2, a readout's loss from its samples
        R = X * Ht - Y
        return (R * R.T).trace() / (2 * n) + lam / 2 * (X * X.T).trace()

    counts = [labels.count(c) for c in range(C)]
    means = [sum((Ht[:, i] for i in range(n) if labels[i] == c), sp.zeros(2, 1)) / counts[c] for c in range(C)]
    dev = sp.Matrix.hstack(*[Ht[:, i] - means[labels[i]] for i in range(n)])
    sw = dev * dev.T / n  # pooled within-class scatter of the augmented features (its last row and column are 0)
    l_nc1 = (V * (sw + lam * sp.eye(2)) * V.T).trace() / 2
    l_nc23 = sum(sp.Rational(counts[c], n) * ((V * means[c] - sp.eye(C)[:, c]).T * (V * means[c] - sp.eye(C)[:, c]))[0]
                 for c in range(C)) / 2
    W = classifier_symbols(C, 2)
    return verdict({
        "L(W) - L(V) = tr((W - V) A (W - V)^T)/2 for a symbolic W (V least squares)":
            vanishes(loss(W) - loss(V) - ((W - V) * A * (W - V).T).trace() / 2,
                     how=lambda e: sp.cancel(sp.together(sp.expand(e)))),
        "L(V) = L_NC1 + L_NC2/3": vanishes(sp.together(loss(V) - l_nc1 - l_nc23)),
        "L_NC2/3 > 0 at lambda = 0 (p < C - 1)": bool(sp.simplify(l_nc23.subs(lam, 0)) > 0),
    }, r"L(V) - L_{NC1} - L_{NC2/3} = 0,\ L_{NC2/3} > 0\ \ (C = 3,\ p = 1)", head=f"counts {counts}: ")


def specs() -> list[CheckSpec]:
    return [
        CheckSpec("3.5", "probe at any layer: its loss and its excess over other readouts, all sizes (matrix symbols)",
                  general_probe, "general",
                  "V = B A^-1: L(V) = L_NC1 + L_NC2/3 = 1/2 - tr(B A^-1 B^T)/2, L(W) - L(V) = L_perp(W)"),
        CheckSpec("3.5", "probe with fewer features than C - 1 [C=3,p=1 (imbalanced),bias]", rational_probe,
                  "rational size", "V least squares; per-sample L(V) == L_NC1 + L_NC2/3 > L_NC1 with symbolic lambda"),
    ]
