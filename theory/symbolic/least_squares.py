"""Math §3.1 and §3.3 steps 1, 2, 6: the least-squares classifier derived from the normal equations.

The sample loss is the quadratic in ``W~`` (step 1), its gradient ``W~ A - B`` (step 2) gives
``W~_LS = B A^{-1}``, which equals the non-augmented ``(W_LS, b_LS)`` (step 6, by size and in general via the
Schur complement of ``1 + lambda``) and at ``lambda = 0`` is ``W_LS = Pi Mbar^T Sigma_T^{-1}``, ``1^T W_LS = 0``.
"""

from __future__ import annotations

from functools import cache, partial

import sympy as sp
from sympy import MatrixSymbol

from ._core import CheckSpec, Outcome, reduced, verdict
from .model import (
    LAMBDA,
    augment,
    class_stats,
    classifier_symbols,
    ls_non_augmented,
    matrix_is_zero,
    poly_ring,
    quadratic_terms,
    rational_data,
    sample_loss,
    symbolic_data,
)
from .traces import MatrixAlgebra

__all__ = ["specs", "SYMBOLIC_SIZES", "RATIONAL_SIZES", "context"]

#: (C, p, counts): fully symbolic per-sample features; balanced and imbalanced counts.
SYMBOLIC_SIZES: tuple[tuple[int, int, tuple[int, ...]], ...] = (
    (2, 1, (2, 2)),
    (2, 1, (1, 3)),
    (2, 2, (2, 2)),
    (2, 2, (1, 3)),
    (3, 1, (2, 2, 2)),
    (3, 1, (1, 2, 3)),
    (3, 2, (2, 2, 2)),
    (3, 2, (1, 2, 3)),
)

#: (C, p, counts): exact random rational features (larger sizes).
RATIONAL_SIZES: tuple[tuple[int, int, tuple[int, ...]], ...] = (
    (3, 2, (2, 2, 2)),
    (3, 2, (1, 2, 3)),
    (4, 3, (2, 2, 2, 2)),
    (4, 3, (1, 2, 3, 2)),
)


def size_label(C: int, p: int, counts, bias: bool) -> str:
    bal = "balanced" if len(set(counts)) == 1 else "imbalanced"
    return f"C={C},p={p},n_c={'/'.join(map(str, counts))} ({bal}),{'bias' if bias else 'no bias'}"


@cache
def context(C: int, p: int, counts: tuple[int, ...], bias: bool, rational_seed: int | None = None):
    """Cached per-size objects: data, statistics, classifier symbols, sample loss, ``A``, ``B``."""
    data = symbolic_data(counts, p) if rational_seed is None else rational_data(counts, p, rational_seed)
    st = class_stats(data)
    q = p + 1 if bias else p
    W = classifier_symbols(C, q)
    loss = sp.expand(sample_loss(data, W, LAMBDA, bias))
    A, B = quadratic_terms(st, LAMBDA, bias)
    return data, st, W, loss, A, B


def _check_quadratic(C, p, counts, bias) -> Outcome:
    data, st, W, loss, A, B = context(C, p, counts, bias)
    quad = (W * A * W.T).trace() / 2 - (W * B.T).trace() + sp.Rational(1, 2)
    Ht = sp.Matrix.hstack(*(augment(h) if bias else h for _, h in data.samples()))  # H~, one column per sample
    Y = sp.Matrix.hstack(*(sp.eye(C)[:, c] for c, _ in data.samples()))  # one-hot targets
    return verdict({"expand(L_samples - [tr(WAW^T)/2 - tr(WB^T) + 1/2]) == 0": sp.expand(loss - quad) == 0,
                    "(1/n)H~H~^T + lambda I == A":
                        matrix_is_zero(Ht * Ht.T / data.n + LAMBDA * sp.eye(A.rows) - A, rational=False),
                    "(1/n)Y H~^T == B": matrix_is_zero(Y * Ht.T / data.n - B, rational=False)})


def _check_gradient(C, p, counts, bias) -> Outcome:
    data, st, W, loss, A, B = context(C, p, counts, bias)
    ok_grad = matrix_is_zero(W.applyfunc(loss.diff) - (W * A - B), rational=False)
    # over the row-major entries of W~, the Hessian is A on each output row's block and 0 between rows
    ok_hess = matrix_is_zero(sp.hessian(loss, list(W)) - sp.kronecker_product(sp.eye(C), A), rational=False)
    return verdict({"dL/dW~ == W~A - B": ok_grad, "Hessian of each output row == A, rows decoupled": ok_hess})


def _check_solve(q: int) -> Outcome:
    C = 2
    a = sp.Matrix(q, q, lambda i, j: sp.Symbol(f"a_{min(i, j)}{max(i, j)}", real=True))
    b = classifier_symbols(C, q, "b")
    V = classifier_symbols(C, q, "v")
    eqs = list(V * a - b)
    (sol,) = sp.linsolve(eqs, list(V))
    Vsol = sp.Matrix(C, q, list(sol))
    latex = r"\nabla_{\tilde W} L = \tilde W A - B = 0 \;\Longrightarrow\; \tilde W_{LS} = B A^{-1}"
    if q == 2:
        latex += r",\qquad \text{e.g. } (q=2):\ \tilde W_{LS} = " + sp.latex(Vsol.applyfunc(sp.factor))
    steps = {"unique solution (det A != 0 generically)": sp.expand(a.det()) != 0,
             "solves the equations": matrix_is_zero(Vsol * a - b), "equals B A^-1": matrix_is_zero(Vsol - b * a.inv())}
    return verdict(steps, latex, f"linsolve(V A = B) for generic symmetric {q}x{q} A: ")


def _check_augmented(C, p, counts, rational_seed) -> Outcome:
    """The non-augmented ``(W_LS, b_LS)`` of :func:`~theory.symbolic.model.ls_non_augmented` solve the
    augmented normal equations, checked division-free: ``W_LS = W_num/den``, ``b_LS = b_num/den`` and
    ``[W_num b_num] A - den B`` must be the zero polynomial matrix (symbolic lambda)."""
    data, st, W, loss, A, B = context(C, p, counts, True, rational_seed)
    W_num, b_num, den, dm = ls_non_augmented(st, LAMBDA, cleared=True)
    Ad = dm(A)
    return verdict({
        "den ([W_LS b_LS] A - B) == 0 for the non-augmented formula (polynomial, symbolic lambda)":
            (W_num.hstack(b_num) * Ad - dm(B) * den).is_zero_matrix,
        "det A and den not identically 0": Ad.det() != Ad.domain.zero and den != Ad.domain.zero,
    })


def _check_lambda0(C, p, counts, rational_seed) -> Outcome:
    """At lambda = 0: [Pi Mbar^T Sigma_T^{-1}, pi - W mu_G] solves the normal equations, and 1^T W_LS = 0."""
    data, st, W, loss, A, B = context(C, p, counts, True, rational_seed)
    A0 = A.subs(LAMBDA, 0)
    M = st.means_matrix()
    Mbar = st.centred_means()
    Pi = sp.diag(*st.pis)
    pi = sp.Matrix(st.pis)
    R, dm = poly_ring(A0, B, M, st.sigma_t)
    adj, det = dm(st.sigma_t).adj_det()
    Wnum = dm(Pi * Mbar.T) * adj  # W_LS * det(Sigma_T)
    bnum = dm(pi) * det - Wnum * dm(st.mu_g)
    ok_ne = (Wnum.hstack(bnum) * dm(A0) - dm(B) * det).is_zero_matrix
    return verdict({"lambda=0: det(Sigma_T)([Pi Mbar^T Sigma_T^-1, pi - W mu_G] A - B) == 0": ok_ne,
                    "1^T Pi Mbar^T == 0 (so 1^T W_LS = 0)": matrix_is_zero(sp.ones(1, C) * Pi * Mbar.T, rational=False),
                    "det(Sigma_T) != 0": det != R.zero})


def schur_general() -> Outcome:
    """Math §3.3 step 6 for all sizes: the non-augmented pair solves the augmented normal equations blockwise,
    with ``K = S - mu mu^T/s`` the Schur complement of ``s = 1 + lambda`` in ``A = [[S, mu], [mu^T, s]]``."""
    p, C = sp.symbols("p C", positive=True, integer=True)
    s = 1 + LAMBDA
    K = MatrixSymbol("K", p, p)
    mu = MatrixSymbol("mu", p, 1)
    M = MatrixSymbol("M", p, C)
    Pi = MatrixSymbol("Pi", C, C)
    pi = MatrixSymbol("pi", C, 1)
    alg = MatrixAlgebra(symmetric={"K", "Pi"}, inverses={"K"})
    S = K + mu * mu.T / s  # definition of K as the Schur complement
    X = Pi * M.T - pi * mu.T / s
    W = X * K.I
    b = (pi - W * mu) / s
    parts = {
        "[W b] A - B, first block column": alg.matrix(W * S + b * mu.T - Pi * M.T),
        "last column": alg.matrix(W * mu + b * s - pi),
        # the Schur complement is the write-up's matrix: S - mu mu^T/s - (Sigma_T + lambda/s mu mu^T + lambda I) = 0
        "1 - 1/(1+lambda) - lambda/(1+lambda)": alg.scalar(sp.cancel(1 - 1 / s - LAMBDA / s)),
    }
    return reduced(
        parts,
        r"\begin{bmatrix}W & b\end{bmatrix}\begin{bmatrix} K + \tfrac{\mu\mu^T}{1+\lambda} & \mu \\ \mu^T & "
        r"1+\lambda\end{bmatrix}"
        r" = \begin{bmatrix}\Pi M^T & \pi\end{bmatrix},\quad W = \Big(\Pi M^T - \tfrac{\pi\mu^T}{1+\lambda}\Big)K^{-1},"
        r"\ b = \tfrac{\pi - W\mu}{1+\lambda},\ K = \Sigma_T + \tfrac{\lambda}{1+\lambda}\mu\mu^T + \lambda I",
    )


def lambda0_general() -> Outcome:
    """Math §3.1 at ``lambda = 0`` for all sizes: ``K = Sigma_T``, ``Pi M^T - pi mu_G^T = Pi Mbar^T`` and
    ``1^T W_LS = 0``, using only ``pi = Pi 1``, ``mu_G = M pi`` and ``1^T pi = 1``."""
    p, C = sp.symbols("p C", positive=True, integer=True)
    M = MatrixSymbol("M", p, C)
    Pi = MatrixSymbol("Pi", C, C)
    one = MatrixSymbol("one", C, 1)
    mu = MatrixSymbol("mu", p, 1)
    pi = MatrixSymbol("pi", C, 1)
    Sinv = MatrixSymbol("K", p, p)  # Sigma_T^{-1}; only its presence as a right factor matters
    alg = MatrixAlgebra(symmetric={"Pi", "K"})
    alg.add_rule("Pi", "one", {"pi": 1})  # pi = Pi 1
    alg.add_rule("M", "pi", {"mu": 1})  # mu_G = sum_c pi_c mu_c
    alg.add_rule("one'", "pi", {"I": 1})  # sum_c pi_c = 1
    Mbar = M - mu * one.T
    return reduced({"Pi M^T - pi mu_G^T - Pi Mbar^T": alg.matrix(Pi * M.T - pi * mu.T - Pi * Mbar.T),
                    "1^T Pi Mbar^T Sigma_T^-1 (with pi = Pi 1, mu_G = M pi, 1^T pi = 1)":
                        alg.matrix(one.T * Pi * Mbar.T * Sinv)},
                   r"\lambda = 0:\ W_{LS} = (\Pi M^T - \pi\mu_G^T)\Sigma_T^{-1} = \Pi\bar "
                   r"M^T\Sigma_T^{-1},\quad 1^TW_{LS} = 0")


def specs() -> list[CheckSpec]:
    out: list[CheckSpec] = []
    for C, p, counts in SYMBOLIC_SIZES:
        for bias in (True, False):
            lab = size_label(C, p, counts, bias)
            out += [
                CheckSpec("3.1", f"step 1: sample loss = quadratic in W~ [{lab}]",
                          partial(_check_quadratic, C, p, counts, bias), "symbolic size",
                          "L = tr(W~AW~^T)/2 - tr(W~B^T) + 1/2, A = (1/n)H~H~^T + lambda I, B = (1/n)YH~^T"),
                CheckSpec("3.1", f"step 2: gradient = W~A - B, Hessian = A [{lab}]",
                          partial(_check_gradient, C, p, counts, bias), "symbolic size", "normal equations W~ A = B"),
            ]
    for q in (2, 3):
        out.append(CheckSpec("3.1", f"solve the normal equations, generic symmetric A ({q}x{q})",
                             partial(_check_solve, q), "symbolic size", "W~_LS = B A^{-1}"))
    six = "step 6: augmented = non-augmented"
    for general, title, check, statement, seed in (
        (CheckSpec("3.1", f"{six} (Schur complement), all sizes", schur_general, "general", "W~_LS = [W_LS, b_LS]"),
         six, _check_augmented, "W~_LS = [W_LS, b_LS]", 11),
        (CheckSpec("3.1", "lambda=0 closed form, all sizes (matrix symbols)", lambda0_general, "general",
                   "W_LS = Pi Mbar^T Sigma_T^-1, 1^T W_LS = 0"),
         "lambda=0 closed form", _check_lambda0, "W_LS = Pi Mbar^T Sigma_T^-1", 12),
    ):
        out.append(general)
        for sizes, rseed, kind, tag in ((SYMBOLIC_SIZES, None, "symbolic size", ""),
                                        (RATIONAL_SIZES, seed, "rational size", ", rational features")):
            for C, p, counts in sizes:
                out.append(CheckSpec("3.1", f"{title} [{size_label(C, p, counts, True)}{tag}]",
                                     partial(check, C, p, counts, rseed), kind, statement))
    return out
