"""Math §3.5: the decomposition of a least-squares linear probe ``V = B A^{-1}`` at any layer.

At ``W~ = V``, ``L_perp = 0`` and ``L = L_NC1 + L_NC2/3`` (math §3.3 step 4, :mod:`.decomposition`). New here: in
general, the probe's loss is ``L(V) = 1/2 - tr(B A^{-1} B^T) / 2`` (the layer's ``probe_loss``), and the math §3.3
certificate holds with fewer features than ``C - 1`` (``C = 3``, ``p = 1``), the case a layer may be in.
"""

from __future__ import annotations

from functools import partial

import sympy as sp
from sympy import MatrixSymbol

from ._core import CheckSpec, Outcome, reduced
from .decomposition import _algebra, direct_certificate

__all__ = ["general_probe", "specs"]


def general_probe() -> Outcome:
    """``L(V) = 1/2 - tr(B A^{-1} B^T)/2`` at the probe ``V = B A^{-1}`` (all sizes; math §3.5)."""
    C, q = sp.Symbol("C", positive=True, integer=True), sp.Symbol("q", positive=True, integer=True)
    Mt, Pi, A = MatrixSymbol("Mt", q, C), MatrixSymbol("Pi", C, C), MatrixSymbol("A", q, q)
    B = Pi * Mt.T
    V, Vt = B * A.I, A.I * B.T  # the normal equations V A = B with the symmetric, invertible A (A^-T = A^-1)
    # step 1 of math §3.3: L(W~) = tr(W~ A W~^T)/2 - tr(W~ B^T) + 1/2
    loss = sp.trace(V * A * Vt) / 2 - sp.trace(V * B.T) + sp.Rational(1, 2)
    residual = _algebra().scalar(loss - sp.Rational(1, 2) + sp.trace(B * A.I * B.T) / 2)
    return reduced({"L(V) - 1/2 + tr(B A^-1 B^T)/2": residual},
                   r"V = BA^{-1}:\quad L(V) = \tfrac12 - \tfrac12\operatorname{tr}(BA^{-1}B^T)")


def specs() -> list[CheckSpec]:
    return [
        CheckSpec("3.5", "probe at any layer: its loss 1/2 - tr(B A^-1 B^T)/2, all sizes (matrix symbols)",
                  general_probe, "general",
                  "V = B A^-1: L(V) = 1/2 - tr(B A^-1 B^T)/2 (its split L_NC1 + L_NC2/3: math §3.3 steps 3-5)"),
        CheckSpec("3.5", "probe with fewer features than C - 1 [C=3,p=1 (imbalanced),bias]",
                  partial(direct_certificate, 3, 1, (2, 3, 2), True, rational_seed=5), "rational size",
                  "L - (L_NC1 + L_NC2/3 + L_perp) == 0 at W~_LS with symbolic lambda"),
    ]
