"""Rank-deficient features (``docs/rank_deficient.md``), exactly at small sizes: the SNR on the support of
``Sigma_W`` equals the reduced SNR (its §2, §3; with math §3.4's central-path loss at the minimum-norm classifier),
and with a singular ``A`` the minimum-norm ``W~ = B A^+`` solves ``W~ A = B`` and keeps the three-term identity
(its §5; math §3.2, §3.3b).
"""

from __future__ import annotations

from functools import partial

import sympy as sp

from theory import laws

from ._core import Checks, CheckSpec, Outcome, verdict
from .central_path import central_loss_from_gram
from .invariance import transform
from .model import (
    SymbolicData,
    class_stats,
    classifier_symbols,
    decomposition_terms,
    is_zero,
    matrix_is_zero,
    nc_terms,
    quadratic_terms,
    rational_data,
    sample_loss,
)

__all__ = ["specs", "rational_rotation", "plane_data", "min_norm_classifier"]

SECTION = "rank"
CHECKS = Checks()


def rational_rotation() -> sp.Matrix:
    """An orthogonal ``3 x 3`` matrix with rational entries (two Pythagorean rotations)."""
    R1 = sp.Matrix([[3, -4, 0], [4, 3, 0], [0, 0, 5]]) / 5
    R2 = sp.Matrix([[13, 0, 0], [0, 5, -12], [0, 12, 5]]) / 13
    return R1 * R2


def plane_data(counts: tuple[int, ...], seed: int) -> tuple[SymbolicData, SymbolicData, sp.Matrix]:
    """Rational features ``h = Q_2 z + c`` in an affine plane of ``R^3`` (``Q_2``: two orthonormal columns,
    ``c`` a rational offset) and their plane coordinates ``z`` (``R^2``): ``(data_h, data_z, Q_2)``."""
    Z = rational_data(counts, 2, seed=seed)
    Q2 = rational_rotation()[:, :2]
    return transform(Z, Q2, sp.Matrix([sp.Rational(1, 3), -2, sp.Rational(5, 2)])), Z, Q2


def min_norm_classifier(st, bias: bool = True, lam=sp.Integer(0)) -> tuple[sp.Matrix, sp.Matrix, sp.Matrix]:
    """``(W~ = B A^+, A, B)``: the minimum-norm solution of the normal equations (math §3.3 step 1), with
    SymPy's exact Moore-Penrose pseudo-inverse."""
    A, B = quadratic_terms(st, lam, bias)
    return B * A.pinv(), A, B


def _penrose(X: sp.Matrix, Xp: sp.Matrix) -> bool:
    """The four Moore-Penrose conditions: ``X Xp X = X``, ``Xp X Xp = Xp``, ``(X Xp)^T = X Xp``, ``(Xp X)^T = Xp X``."""
    conds = (X * Xp * X - X, Xp * X * Xp - Xp, (X * Xp).T - X * Xp, (Xp * X).T - Xp * X)
    return all(matrix_is_zero(M) for M in conds)


@CHECKS.add(SECTION, "support SNR = reduced SNR: Sigma_W = Q diag(Lambda_r, 0) Q^T, Mbar in its range [p=3,r=2,C=3]",
            "symbolic size", "Mbar^T Sigma_W^+ Mbar = A^T Lambda_r^-1 A")
def support_snr_symbolic() -> Outcome:
    """``p = 3``, ``r = 2``, ``C = 3``: ``Sigma_W = Q diag(l1, l2, 0) Q^T`` with symbolic ``l1, l2 > 0`` and
    ``Mbar = Q [A; 0]`` with symbolic ``A`` (``2 x 3``, columns summing to zero)."""
    Q = rational_rotation()
    l1, l2 = sp.symbols("lambda_1 lambda_2", positive=True)
    a = sp.symbols("a_0:4", real=True)
    A = sp.Matrix([[a[0], a[1], -a[0] - a[1]], [a[2], a[3], -a[2] - a[3]]])
    Sw = Q * sp.diag(l1, l2, 0) * Q.T
    Swp = Q * sp.diag(1 / l1, 1 / l2, 0) * Q.T
    Mbar = Q * sp.Matrix.vstack(A, sp.zeros(1, 3))
    root = sp.diag(1 / sp.sqrt(l1), 1 / sp.sqrt(l2))  # Lambda_r^{-1/2}; U_r = Q[:, :2]
    steps = {
        "Q diag(1/l1, 1/l2, 0) Q^T is the Moore-Penrose inverse of Sigma_W": _penrose(Sw, Swp),
        "Mbar in range(Sigma_W)": matrix_is_zero(Mbar - Sw * Swp * Mbar),
        "Lambda_r^(-1/2) U_r^T Mbar = Lambda_r^(-1/2) A": matrix_is_zero(root * Q[:, :2].T * Mbar - root * A),
        "Mbar^T Sigma_W^+ Mbar = A^T Lambda_r^-1 A (same omega_j^2)":
            matrix_is_zero(Mbar.T * Swp * Mbar - A.T * sp.diag(1 / l1, 1 / l2) * A),
    }
    return verdict(steps,
                   r"\bar M^\top \Sigma_W^{+} \bar M = A^\top \Lambda_r^{-1} A,\quad "
                   r"\Sigma_W^{+} = Q\,\mathrm{diag}(\Lambda_r^{-1}, 0)\,Q^\top")


@CHECKS.add(SECTION, "support SNR of features in an affine plane = SNR of its coordinates [C=3,p=3, rational]",
            "rational size", "affine invariance on the support (math §5.1)")
def support_snr_plane() -> Outcome:
    """Rational features in an affine plane of ``R^3`` (3 classes of 3): ``Mbar^T Sigma_W^+ Mbar`` of the
    3-d features equals ``Mbar^T Sigma_W^{-1} Mbar`` of the plane coordinates, and ``Mbar`` is in the range."""
    H, Z, _ = plane_data((3, 3, 3), seed=11)
    sh, sz = class_stats(H), class_stats(Z)
    Mh, Mz = sh.centred_means(), sz.centred_means()
    Swp = sh.sigma_w.pinv()
    rank = sh.sigma_w.rank()
    in_range = matrix_is_zero(Mh - sh.sigma_w * Swp * Mh)
    ok = matrix_is_zero(Mh.T * Swp * Mh - Mz.T * sz.sigma_w.inv() * Mz)
    return Outcome(rank == 2 and in_range and ok,
                   f"rank Sigma_W = {rank} (p = 3); Mbar in range(Sigma_W): {in_range}; "
                   f"G = Mbar^T Sigma_W^+ Mbar equals the plane coordinates' Mbar^T Sigma_W^-1 Mbar: {ok}")


@CHECKS.add(SECTION, "lambda = 0 central-path loss via pseudo-inverses = 1/2 sum 1/(C+w^2) [C=3,p=3 plane, rational]",
            "rational size", "math §3.4 closed form on the support")
def central_path_plane() -> Outcome:
    """Balanced rational features in an affine plane of ``R^3`` (``A`` singular at ``lambda = 0``): the
    central-path loss ``L_NC1 + L_NC2/3`` at the minimum-norm ``W~ = B A^+`` equals
    ``(1/2) sum_j 1/(C + omega_j^2)`` with the support ``omega_j`` (``theory.laws.L_CENTRAL`` summed through
    ``G = Mbar^T Sigma_W^+ Mbar``), and equals the central-path loss of the plane coordinates."""
    C = 3
    H, Z, _ = plane_data((3, 3, 3), seed=11)
    sh, sz = class_stats(H), class_stats(Z)
    V, A, B = min_norm_classifier(sh)
    rank_a = A.rank()
    l1, l23 = nc_terms(sh, V, 0)
    Mh = sh.centred_means()
    via_g = central_loss_from_gram(Mh.T * sh.sigma_w.pinv() * Mh)
    law_ok = is_zero(laws.L_CENTRAL.subs(laws.C, C) - 1 / (2 * (C + laws.w**2)))
    z1, z23 = nc_terms(sz, min_norm_classifier(sz)[0], 0)
    ok = is_zero(l1 + l23 - via_g) and is_zero(l1 + l23 - z1 - z23)
    return Outcome(rank_a == 3 and law_ok and ok,
                   f"C=3, p=3 (plane), 3 per class: rank A = {rank_a} of 4; L_NC1 + L_NC2/3 at B A^+ = "
                   f"{sp.nsimplify(l1 + l23)} = 1/2 sum_j 1/(C+w_j^2) (theory.laws.L_CENTRAL: {law_ok}) "
                   f"= the plane coordinates' value: {ok}",
                   r"L_{NC1} + L_{NC2/3}\big|_{\tilde W = BA^{+}} = \frac12\sum_{j=1}^{C-1}\frac{1}{C+\omega_j^2}")


def _normal_and_identity(data: SymbolicData, bias: bool, label: str) -> Outcome:
    st = class_stats(data)
    V, A, B = min_norm_classifier(st, bias)
    q = A.shape[0]
    rank_a = A.rank()
    Wt = classifier_symbols(st.num_classes, q)
    l1, l23, lp = decomposition_terms(st, Wt, V, 0, bias, A)
    loss = sample_loss(data, Wt, sp.Integer(0), bias)
    steps = {
        f"rank A = {rank_a} < {q}": rank_a < q,
        "rows of B in range(A)": matrix_is_zero(B - B * A.pinv() * A),
        "B A^+ solves W~ A = B": matrix_is_zero(V * A - B),
        # a polynomial identity in the symbolic classifier: compared as polynomials over QQ
        "L(W~) = L_NC1 + L_NC2/3 + L_perp for symbolic W~": sp.Poly(sp.expand(loss - l1 - l23 - lp), *Wt).is_zero,
    }
    return verdict(steps, head=f"{label}: ")


def specs() -> list[CheckSpec]:
    out = list(CHECKS)
    cases = [
        (plane_data((3, 3, 3), seed=11)[0], True, "features in an affine plane, C=3,p=3,n_c=3/3/3,bias"),
        (plane_data((2, 3, 4), seed=5)[0], True, "features in an affine plane, C=3,p=3,n_c=2/3/4 (imbalanced),bias"),
        (rational_data((1, 2), 3, seed=7), True, "p >= n, C=2,p=3,n_c=1/2,bias"),
        (rational_data((1, 2), 4, seed=7), False, "p >= n, C=2,p=4,n_c=1/2,no bias"),
    ]
    for data, bias, label in cases:
        out.append(CheckSpec(SECTION, f"minimum-norm LS with singular A: normal equations and "
                                      f"three-term identity [{label}]",
                             partial(_normal_and_identity, data, bias, label), "rational size",
                             "W~_LS = B A^+ satisfies W~_LS A = B; L = L_NC1 + L_NC2/3 + L_perp"))
    return out
