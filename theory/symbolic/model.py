"""Symbolic building blocks: per-sample features, class statistics, the paper's loss and its terms.

The formulas of ``docs/math.md`` as SymPy matrices at a concrete number of classes ``C``, feature dimension
``p`` and class counts ``n_c`` (math §1 notation: ``h~ = [h; 1]``, ``W~ = [W, b]``, one-hot ``e_c``, ridge ``lambda``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import sympy as sp

from ._core import vanishes

__all__ = [
    "LAMBDA",
    "SymbolicData",
    "SymbolicStats",
    "symbolic_data",
    "rational_data",
    "class_stats",
    "notebook_stats",
    "augment",
    "classifier_symbols",
    "sample_loss",
    "quadratic_terms",
    "ls_augmented",
    "ls_non_augmented",
    "nc_terms",
    "decomposition_terms",
    "is_zero",
    "matrix_is_zero",
    "lifter",
]

#: The ridge coefficient ``lambda`` of the paper's loss (math §1), kept symbolic.
LAMBDA = sp.Symbol("lambda", nonnegative=True)


@dataclass(frozen=True)
class SymbolicData:
    """Features grouped by class: ``features[c][i]`` is the ``p x 1`` column ``h_{i,c}``."""

    counts: tuple[int, ...]
    p: int
    features: tuple[tuple[sp.Matrix, ...], ...]

    @property
    def num_classes(self) -> int:
        return len(self.counts)

    @property
    def n(self) -> int:
        return sum(self.counts)

    def samples(self):
        """``(c, h_{i,c})`` over all samples."""
        return ((c, h) for c, col in enumerate(self.features) for h in col)

    def free_symbols(self) -> set:
        return set().union(*(h.free_symbols for _, h in self.samples()))


@dataclass(frozen=True)
class SymbolicStats:
    """Class statistics of math §1, §3.3b (count-weighted unless built by ``notebook_stats``)."""

    counts: tuple[int, ...]
    pis: tuple[sp.Expr, ...]
    means: tuple[sp.Matrix, ...]
    mu_g: sp.Matrix
    sigma_w: sp.Matrix
    sigma_b: sp.Matrix
    sigma_t: sp.Matrix

    @property
    def num_classes(self) -> int:
        return len(self.counts)

    @property
    def p(self) -> int:
        return self.mu_g.shape[0]

    def means_matrix(self) -> sp.Matrix:
        """``M = [mu_1 ... mu_C]`` (``p x C``)."""
        return sp.Matrix.hstack(*self.means)

    def centred_means(self) -> sp.Matrix:
        """``Mbar = M - mu_G 1^T`` (``p x C``): the class means centred at these statistics' ``mu_G``."""
        return self.means_matrix() - self.mu_g * sp.ones(1, self.num_classes)


def _data(counts: Sequence[int], p: int, entry) -> SymbolicData:
    """Features whose ``k``-th entry of ``h_{i,c}`` is ``entry(c, i, k)`` (called in the order ``c, i, k``)."""
    feats = tuple(
        tuple(sp.Matrix([entry(c, i, k) for k in range(p)]) for i in range(n_c)) for c, n_c in enumerate(counts)
    )
    return SymbolicData(tuple(int(k) for k in counts), int(p), feats)


def symbolic_data(counts: Sequence[int], p: int, prefix: str = "h") -> SymbolicData:
    """Fully symbolic features: ``h_{i,c}`` has entries ``h_{c,i,k}`` (independent real symbols)."""
    return _data(counts, p, lambda c, i, k: sp.Symbol(f"{prefix}_{c}{i}{k}", real=True))


def rational_data(counts: Sequence[int], p: int, seed: int = 0, span: int = 9) -> SymbolicData:
    """Random small rational features (exact arithmetic), reproducible from ``seed``."""
    rng = random.Random(seed)
    return _data(counts, p, lambda c, i, k: sp.Rational(rng.randint(-span, span), rng.randint(1, 4)))


def _outer(x: sp.Matrix) -> sp.Matrix:
    return x * x.T


def class_stats(data: SymbolicData) -> SymbolicStats:
    """Count-weighted class statistics (math §3.3b): ``pi_c = n_c/n``, ``mu_G`` the sample mean."""
    n = data.n
    p = data.p
    pis = tuple(sp.Rational(k, n) for k in data.counts)
    means = tuple(sum(col, sp.zeros(p, 1)) / len(col) for col in data.features)
    mu_g = sum((pi * m for pi, m in zip(pis, means)), sp.zeros(p, 1))
    sw = sum((_outer(h - means[c]) for c, h in data.samples()), sp.zeros(p, p)) / n
    sb = sum((pi * _outer(m - mu_g) for pi, m in zip(pis, means)), sp.zeros(p, p))
    return SymbolicStats(data.counts, pis, means, mu_g, sw, sb, sw + sb)


def notebook_stats(data: SymbolicData) -> SymbolicStats:
    """The authors' notebook statistics (math §2.2, §8 caveat 1): ``pi_c = 1/C``, ``mu_G`` the *unweighted* mean
    of class means; identical to :func:`class_stats` for balanced counts, wrong (math §9 item 7) otherwise."""
    st = class_stats(data)
    C = data.num_classes
    mu_g = sum(st.means, sp.zeros(data.p, 1)) / C
    sb = sum((_outer(m - mu_g) for m in st.means), sp.zeros(data.p, data.p)) / C
    pis = tuple(sp.Rational(1, C) for _ in range(C))
    return SymbolicStats(data.counts, pis, st.means, mu_g, st.sigma_w, sb, st.sigma_w + sb)


def augment(x: sp.Matrix) -> sp.Matrix:
    """``x~ = [x; 1]`` (math §1, bias augmentation)."""
    return sp.Matrix.vstack(x, sp.Matrix([[1]]))


def classifier_symbols(C: int, q: int, prefix: str = "w") -> sp.Matrix:
    """A ``C x q`` matrix of independent real symbols ``prefix_ij`` (a generic classifier ``W~`` or ``W``, or map)."""
    return sp.Matrix(C, q, lambda i, j: sp.Symbol(f"{prefix}_{i}{j}", real=True))


def _embed(x: sp.Matrix, bias: bool) -> sp.Matrix:
    return augment(x) if bias else x


def sample_loss(data: SymbolicData, Wt: sp.Matrix, lam: sp.Expr = LAMBDA, bias: bool = True) -> sp.Expr:
    """Paper loss from the samples (math §1):
    ``L = (1/(2n)) sum_{c,i} ||W~ h~_{i,c} - e_c||^2 + (lambda/2) ||W~||_F^2``."""
    eye = sp.eye(data.num_classes)
    residuals = (Wt * _embed(h, bias) - eye[:, c] for c, h in data.samples())
    total = sum(((r.T * r)[0, 0] for r in residuals), sp.Integer(0))
    return total / (2 * data.n) + lam / 2 * sum(x**2 for x in Wt)


def quadratic_terms(st: SymbolicStats, lam: sp.Expr = LAMBDA, bias: bool = True) -> tuple[sp.Matrix, sp.Matrix]:
    """``A`` and ``B`` of math §3.3 step 1 / 3.3b, built from the statistics (with or without the bias row)."""
    A = st.sigma_t + st.mu_g * st.mu_g.T + lam * sp.eye(st.p)  # (1/n) H H^T + lambda I
    B = sp.Matrix.vstack(*[pi * _embed(m, bias).T for pi, m in zip(st.pis, st.means)])
    if bias:
        A = sp.Matrix.vstack(A.row_join(st.mu_g), st.mu_g.T.row_join(sp.Matrix([[1 + lam]])))
    return A, B


def ls_augmented(st: SymbolicStats, lam: sp.Expr = LAMBDA) -> tuple[sp.Matrix, sp.Matrix]:
    """``(W~_LS, A)``: the augmented least-squares classifier ``W~_LS = B A^{-1}`` (math §3.1, with bias)
    and the matrix ``A`` of :func:`quadratic_terms` it solves with."""
    A, B = quadratic_terms(st, lam, True)
    return B * A.inv(), A


def lifter(domain):
    """Arithmetic helpers for plain SymPy matrices (``domain=None``) or ``DomainMatrix`` over ``domain``.

    Returns ``(lift, num, zero)``: ``lift`` turns a SymPy matrix into the working matrix type, ``num``
    a SymPy scalar into a scalar of that type, ``zero`` is the scalar zero.
    """
    if domain is None:
        return (lambda M: M), sp.sympify, sp.Integer(0)
    from sympy.polys.matrices import DomainMatrix

    return (lambda M: DomainMatrix.from_Matrix(sp.Matrix(M)).convert_to(domain)), domain.from_sympy, domain.zero


def _trace(M, zero):
    return sum(M.diagonal(), zero)


def ls_non_augmented(st: SymbolicStats, lam: sp.Expr = LAMBDA, cleared: bool = False):
    """Non-augmented least-squares classifier ``(W_LS, b_LS)`` (math §3.1 with weights ``pi_c``, math §3.3b).

    Solved by Cramer's rule in polynomial arithmetic (``K' = (1 + lambda) K``, ``W_LS = X' adj(K') / det(K')``).
    Returns SymPy matrices ``(W, b)`` (``C x p``, ``C x 1``), or with ``cleared=True`` the division-free form
    ``(W_num, b_num, den, dm)``: ``W_LS = W_num/den``, ``b_LS = b_num/den`` as ``DomainMatrix`` over a
    polynomial ring, and ``dm`` converting SymPy matrices into that ring.
    """
    p = st.p
    pi = sp.Matrix(st.pis)
    Pi = sp.diag(*st.pis)
    M = st.means_matrix()
    s = 1 + lam
    K = st.sigma_t + lam / s * st.mu_g * st.mu_g.T + lam * sp.eye(p)
    X = Pi * M.T - pi * st.mu_g.T / s
    Kp, Xp = (s * K).applyfunc(sp.cancel), (s * X).applyfunc(sp.cancel)
    R, dm = poly_ring(Kp, Xp, pi, st.mu_g, extra=tuple(sp.sympify(lam).free_symbols))
    adj, det = dm(Kp).adj_det()
    WX = dm(Xp) * adj  # det(K') W_LS
    s_r = R.from_sympy(sp.sympify(s))
    W_num, b_num, den = WX * s_r, dm(pi) * det - WX * dm(st.mu_g), s_r * det
    if cleared:
        return W_num, b_num, den, dm
    d = R.to_sympy(den)
    return (W_num.to_Matrix() / d).applyfunc(sp.cancel), (b_num.to_Matrix() / d).applyfunc(sp.cancel)


def nc_terms(st: SymbolicStats, V, lam: sp.Expr = LAMBDA, bias: bool = True, domain=None, scale=None):
    """``(L_NC1, L_NC2/3)`` of math §3.2 / 3.3b at classifier ``V`` (the one place these are written).

    ``V`` is a SymPy matrix (``domain=None``) or a ``DomainMatrix`` over ``domain``. With ``scale = d``
    (a scalar of ``V``'s type), ``V`` stands for ``d`` times the classifier: the targets are scaled too and
    both terms come out multiplied by ``d^2`` (division-free form used by the single-shot certificate).
    """
    lift, num, zero = lifter(domain)
    p, C = st.p, st.num_classes
    q = p + 1 if bias else p
    sw = sp.zeros(q, q)
    sw[:p, :p] = st.sigma_w
    half = num(sp.Rational(1, 2))
    l_nc1 = half * _trace(V * lift(sw + lam * sp.eye(q)) * V.transpose(), zero)
    eye = sp.eye(C)
    l_nc23 = zero
    for c, (pi, m) in enumerate(zip(st.pis, st.means)):
        target = lift(eye[:, c]) if scale is None else lift(eye[:, c]) * scale
        r = V * lift(_embed(m, bias)) - target
        l_nc23 += num(pi) * _trace(r.transpose() * r, zero)
    return l_nc1, half * l_nc23


def decomposition_terms(
    st: SymbolicStats,
    Wt: sp.Matrix,
    V: sp.Matrix,
    lam: sp.Expr = LAMBDA,
    bias: bool = True,
    A: sp.Matrix | None = None,
    domain=None,
    scale=None,
):
    """The three terms of math §3.2 / 3.3b at classifier ``Wt`` with least-squares classifier ``V``:
    ``L_NC1``, ``L_NC2/3`` (:func:`nc_terms` at ``V``) and ``L_perp = (1/2) tr((W~ - V) A (W~ - V)^T)``;
    ``domain`` and ``scale`` as in :func:`nc_terms` (``Wt``, ``A`` stay SymPy matrices; all three terms times ``d^2``).
    """
    lift, num, zero = lifter(domain)
    if A is None:
        A, _ = quadratic_terms(st, lam, bias)
    l_nc1, l_nc23 = nc_terms(st, V, lam, bias, domain, scale)
    D = lift(Wt) - V if scale is None else lift(Wt) * scale - V
    return l_nc1, l_nc23, num(sp.Rational(1, 2)) * _trace(D * lift(A) * D.transpose(), zero)


def is_zero(x, rational: bool = True) -> bool:
    """Exact zero test of a scalar or (entrywise) a matrix: ``cancel(together(x)) == 0`` (rational) or
    ``expand(x) == 0`` (polynomial)."""
    return vanishes(x, how=(lambda e: sp.cancel(sp.together(e))) if rational else sp.expand)


matrix_is_zero = is_zero


# Fast exact polynomial arithmetic (SymPy DomainMatrix over QQ[symbols]).


def cleared_decomposition_residual(
    data: SymbolicData,
    st: SymbolicStats,
    Wt: sp.Matrix,
    lam: sp.Expr = LAMBDA,
    bias: bool = True,
    A: sp.Matrix | None = None,
    B: sp.Matrix | None = None,
):
    """``(R, K)``: ``R = det(A)^2 (L - L_NC1 - L_NC2/3 - L_perp)`` at ``V = W~_LS = B adj(A)/det(A)`` (Cramer's
    rule), a polynomial in the ring ``K = QQ[features, classifier, lambda]``, zero iff the identity holds exactly.

    ``L`` is computed from the samples, the three terms from the statistics (math §3.2, §3.3b), in SymPy's
    ``DomainMatrix`` (sparse polynomial arithmetic, far faster than expanding ``Expr`` trees).
    """
    if A is None or B is None:
        A, B = quadratic_terms(st, lam, bias)
    K, dm = poly_ring(Wt, extra=(lam, *data.free_symbols()))
    adj, d = dm(A).adj_det()
    terms = decomposition_terms(st, Wt, dm(B) * adj, lam, bias, A, domain=K, scale=d)  # at d W~_LS: d^2 times each
    return d**2 * K.from_sympy(sp.expand(sample_loss(data, Wt, lam, bias))) - sum(terms, K.zero), K


def poly_ring(*mats: sp.Matrix, extra: Sequence[sp.Symbol] = ()):
    """The exact polynomial ring ``QQ[free symbols of mats + extra]`` and its converter Matrix -> DomainMatrix
    (:func:`lifter`)."""
    syms = set(extra).union(*(m.free_symbols for m in mats))
    K = sp.QQ[tuple(sorted(syms, key=str)) or (sp.Symbol("_unused"),)]
    return K, lifter(K)[0]
