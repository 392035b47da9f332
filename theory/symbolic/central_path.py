"""Math §3.4: the central-path loss and its two terms as functions of the SNR singular values.

Derived on the renormalised manifold (math §5.2: ``Sigma_W = I``, ``mu_G = 0``, balanced, ``lambda = 0``) with
``Mbar = Omega V^T``, ``V`` the Helmert basis of ``1^perp`` (WLOG by math §5.1 and a symbolic rotation of ``V``):
for symbolic ``omega_j`` the terms from the normal equations (:func:`central_path_terms`) equal the sums over
``j`` of :mod:`theory.laws`' ``L_NC1``, ``L_NC23``, ``L_CENTRAL``, ``NC1_RENORMALIZED`` (:func:`closed_forms`).
"""

from __future__ import annotations

from functools import cache, partial

import sympy as sp

from theory import laws

from ._core import CheckSpec, Outcome, vanishes, verdict
from .model import SymbolicStats, class_stats, ls_augmented, nc_terms, rational_data

__all__ = ["specs", "helmert", "renormalised_stats", "central_path_terms", "closed_forms"]


def helmert(C: int) -> sp.Matrix:
    """Orthonormal basis of ``1^perp`` in ``R^C`` (columns): the Helmert contrasts (``C x (C-1)``)."""
    cols = [sp.Matrix([1] * k + [-k] + [0] * (C - k - 1)) / sp.sqrt(k * (k + 1)) for k in range(1, C)]
    return sp.Matrix.hstack(*cols)


def omegas(C: int) -> tuple[sp.Symbol, ...]:
    return tuple(sp.Symbol(f"omega_{j + 1}", positive=True) for j in range(C - 1))


def renormalised_stats(C: int, V: sp.Matrix | None = None) -> SymbolicStats:
    """Statistics on the renormalised manifold: ``p = C-1``, ``Sigma_W = I``, ``mu_G = 0``, ``Mbar = Omega V^T``."""
    M = sp.diag(*omegas(C)) * (helmert(C) if V is None else V).T
    sw, sb = sp.eye(C - 1), M * M.T / C
    means = tuple(M[:, c] for c in range(C))
    return SymbolicStats((1,) * C, (sp.Rational(1, C),) * C, means, sp.zeros(C - 1, 1), sw, sb, sw + sb)


def closed_forms(C: int) -> dict[str, sp.Expr]:
    """``theory.laws``' per-singular-value terms summed over ``j = 1..C-1`` at concrete ``C`` (the expressions
    certified here): ``L_NC1``, ``L_NC2/3``, ``L_central`` and ``NC1 = sum_j omega_j^-2``."""
    laws_terms = {"l_nc1": laws.L_NC1, "l_nc23": laws.L_NC23, "l_central": laws.L_CENTRAL,
                  "nc1_renormalized": laws.NC1_RENORMALIZED}
    return {k: sum(e.subs({laws.w: w, laws.C: C}) for w in omegas(C)) for k, e in laws_terms.items()}


@cache
def central_path_terms(C: int) -> dict[str, sp.Expr]:
    """``W~_LS`` from the normal equations and the math §3.2 terms, on the renormalised manifold at ``lambda = 0``."""
    st = renormalised_stats(C)
    V = ls_augmented(st, 0)[0].applyfunc(sp.simplify)
    l1, l23 = nc_terms(st, V, 0)
    return {"V": V, "l_nc1": sp.simplify(l1), "l_nc23": sp.simplify(l23), "st": st}


def _check_terms(C: int) -> Outcome:
    got, ref = central_path_terms(C), closed_forms(C)
    V, H = got["V"], helmert(C)
    D = sp.diag(*[w**2 / (C + w**2) for w in omegas(C)])
    steps = {
        "L_NC1 == sum_j L_NC1(w_j)": vanishes(got["l_nc1"] - ref["l_nc1"]),
        "L_NC2/3 == sum_j L_NC23(w_j)": vanishes(got["l_nc23"] - ref["l_nc23"]),
        "L_NC1 + L_NC2/3 == sum_j L_CENTRAL(w_j)": vanishes(got["l_nc1"] + got["l_nc23"] - ref["l_central"]),
        "W_LS Mbar = V diag(w^2/(C+w^2)) V^T": vanishes(V[:, : C - 1] * got["st"].means_matrix() - H * D * H.T),
        "b_LS = 1/C": vanishes(V[:, C - 1] - sp.ones(C, 1) / C),
    }
    latex = (rf"L_{{NC1}} = {sp.latex(ref['l_nc1'])},\quad L_{{NC2/3}} = {sp.latex(ref['l_nc23'])},"
             rf"\quad L_{{central}} = {sp.latex(ref['l_central'])}")
    return verdict(steps, latex, f"C={C}, symbolic omegas, terms from the normal equations vs theory.laws: ")


def _check_webb_lowe(C: int) -> Outcome:
    st = renormalised_stats(C)
    ref = closed_forms(C)
    expr = (C - 1 - (st.sigma_t.inv() * st.sigma_b).trace()) / (2 * C)
    sbp = sp.diag(*[C / w**2 for w in omegas(C)])  # Sigma_B^+ (Sigma_B = diag(w^2/C))
    steps = {
        "(1/(2C))(C-1-Tr(Sigma_T^-1 Sigma_B)) == sum_j theory.laws.L_CENTRAL(omega_j)":
            vanishes(expr - ref["l_central"]),
        "Sigma_B = diag(w^2/C)": vanishes(st.sigma_b - sp.diag(*[w**2 / C for w in omegas(C)])),
        "(1/C) Tr(Sigma_W Sigma_B^+) == sum_j theory.laws.NC1_RENORMALIZED(omega_j)":
            vanishes((st.sigma_w * sbp).trace() / C - ref["nc1_renormalized"]),
    }
    return verdict(steps,
                   r"L_{central} = \frac{1}{2C}\Big(C-1-\operatorname{Tr}(\Sigma_T^{-1}\Sigma_B)\Big),\quad "
                   r"\tfrac1C\operatorname{Tr}(\Sigma_W\Sigma_B^{+}) = \sum_j \omega_j^{-2}", f"C={C}: ")


def _check_basis_independence() -> Outcome:
    """C = 3: rotate the basis of 1^perp by a symbolic (Cayley) parameter; the terms do not change."""
    C = 3
    s = sp.Symbol("s", real=True)
    R = sp.Matrix([[1 - s**2, -2 * s], [2 * s, 1 - s**2]]) / (1 + s**2)
    V = helmert(C) * R
    st = renormalised_stats(C, V)
    l1, l23 = nc_terms(st, ls_augmented(st, 0)[0], 0)
    ref = closed_forms(C)
    ok = vanishes(l1 - ref["l_nc1"], l23 - ref["l_nc23"])
    return Outcome(ok, f"Mbar = Omega (V R(s))^T with symbolic rotation R(s) of 1^perp: L_NC1, "
                       f"L_NC2/3 independent of s: {ok}")


def central_loss_from_gram(G: sp.Matrix) -> sp.Expr:
    """``(1/2) sum_j 1/(C + omega_j^2) = (1/2) [Tr((C I + G)^{-1}) - 1/C]`` (math §3.4) from the ``C x C`` Gram
    matrix ``G = Mbar^T Sigma_W^{-1} Mbar`` (``Sigma_W^+`` on a support), whose eigenvalues are the ``C-1``
    ``omega_j^2`` and ``0`` (``G 1 = 0``: the eigenvalue ``0`` adds the ``1/C`` removed)."""
    C = G.shape[0]
    return ((C * sp.eye(C) + G).inv().trace() - sp.Rational(1, C)) / 2


def _check_from_data() -> Outcome:
    """Arbitrary (non-renormalised) balanced data, lambda = 0: L_NC1 + L_NC2/3 at W_LS == the Webb-Lowe form,
    and == 1/2 [Tr((C I + G)^{-1}) - 1/C] with G = Mbar^T Sigma_W^{-1} Mbar (eigenvalues omega_j^2 and 0)."""
    C, p = 3, 2
    data = rational_data((3, 3, 3), p, seed=31)
    st = class_stats(data)
    l1, l23 = nc_terms(st, ls_augmented(st, 0)[0], 0)
    wl = (C - 1 - (st.sigma_t.inv() * st.sigma_b).trace()) / (2 * C)
    Mbar = st.centred_means()
    via_g = central_loss_from_gram(Mbar.T * st.sigma_w.inv() * Mbar)
    ok = sp.nsimplify(l1 + l23 - wl) == 0 and sp.nsimplify(l1 + l23 - via_g) == 0
    return Outcome(ok, f"C=3, p=2, 3 per class, exact rationals: L_NC1 + L_NC2/3 = {sp.nsimplify(l1 + l23)} "
                       f"= Webb-Lowe form = 1/2 sum 1/(C+w_j^2): {ok}")


def specs() -> list[CheckSpec]:
    out = []
    for C in (3, 4):
        out += [
            CheckSpec("3.4", f"L_NC1, L_NC2/3, L_central from the normal equations, symbolic omegas [C={C}]",
                      partial(_check_terms, C), "symbolic size", "math §3.4 closed forms", quick=C < 4),
            CheckSpec("3.4", f"Webb-Lowe form and NC1 = sum omega^-2 [C={C}]", partial(_check_webb_lowe, C),
                      "symbolic size", "L_central = (1/(2C))(C-1-Tr(Sigma_T^-1 Sigma_B))"),
        ]
    return out + [
        CheckSpec("3.4", "independence of the basis of 1^perp (symbolic rotation) [C=3]", _check_basis_independence,
                  "symbolic size", "WLOG diagonal SNR"),
        CheckSpec("3.4", "closed form on raw (non-renormalised) balanced data [C=3,p=2, rational]", _check_from_data,
                  "rational size", "L_central = 1/2 sum 1/(C+w^2)"),
    ]
