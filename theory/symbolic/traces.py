"""Size-free matrix algebra for the general (any C, p, n) arguments.

SymPy's ``MatrixSymbol`` expressions are expanded into polynomials over *words* of letters ``(name, transposed)``
(``word -> scalar coefficient``); this module adds only what SymPy does not know: a trace is canonical under
rotation and ``Tr(X) = Tr(X^T)``, symmetric letters lose their transpose flag, and rewriting rules replace
adjacent letter pairs (``E Y^T -> 0``, ``X X^{-1} -> I``; the transposed rule is added, and inside a trace rules
apply across the wrap-around). An identity is proved in general when both sides' difference reduces to zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import product

import sympy as sp
from sympy.matrices.expressions import (
    Identity,
    Inverse,
    MatAdd,
    MatMul,
    MatrixSymbol,
    Trace,
    Transpose,
    ZeroMatrix,
)

__all__ = ["Letter", "MatrixAlgebra"]

Letter = tuple[str, bool]
Word = tuple[Letter, ...]
Poly = dict[Word, sp.Expr]

#: key used in a trace polynomial for a pure scalar constant (not a trace)
CONST: Word = (("1", False),)


def _add(into: Poly, word: Word, coef: sp.Expr) -> None:
    val = sp.expand(into.get(word, 0) + coef)
    if val == 0:
        into.pop(word, None)
    else:
        into[word] = val


def _poly(terms) -> Poly:
    """The word polynomial summing ``(word, coefficient)`` pairs (zero coefficients dropped)."""
    out: Poly = {}
    for w, c in terms:
        _add(out, w, c)
    return out


@dataclass
class MatrixAlgebra:
    """Words in matrix letters with symmetric letters, inverse pairs and pair-rewriting rules.

    ``symmetric``: names with ``X^T = X``. ``inverses``: names ``X`` for which a letter
    ``X^-1`` exists with ``X X^-1 = X^-1 X = I``. ``rules``: ``(left, right) -> poly`` with
    letters given as ``"E"`` or ``"E'"`` (transposed). ``trace_values``: canonical single-letter
    traces with known values, e.g. ``{"Pi": 1}`` for ``Tr(Pi) = sum_c pi_c = 1``.
    """

    symmetric: set[str] = field(default_factory=set)
    inverses: set[str] = field(default_factory=set)
    rules: dict[tuple[Letter, Letter], Poly] = field(default_factory=dict)
    trace_values: dict[Word, sp.Expr] = field(default_factory=dict)

    def letter(self, name: str, transposed: bool = False) -> Letter:
        return (name, transposed and name.removesuffix("^-1") not in self.symmetric)

    def parse(self, s: str) -> Word:
        """``"E Y'"`` -> ``(("E", False), ("Y", True))``; ``"I"`` or ``""`` -> empty word."""
        return tuple(self.letter(tok.rstrip("'"), tok.endswith("'")) for tok in s.split() if tok != "I")

    def transpose_word(self, w: Word) -> Word:
        return tuple(self.letter(n, not t) for n, t in reversed(w))

    def add_rule(self, left: str, right: str, result: Mapping[str, sp.Expr] | None) -> None:
        """Add ``left right -> result`` and its transpose (``result`` maps word strings to coefficients)."""
        (a,) = self.parse(left)
        (b,) = self.parse(right)
        poly = _poly((self.parse(ws), sp.sympify(c)) for ws, c in (result or {}).items())
        self.rules[(a, b)] = poly
        ta, tb = self.transpose_word((a, b))
        self.rules[(ta, tb)] = {self.transpose_word(w): c for w, c in poly.items()}

    def _pair_rules(self) -> dict[tuple[Letter, Letter], Poly]:
        rules = dict(self.rules)
        for name, t in product(self.inverses, (False, True)):
            x, xi = self.letter(name, t), self.letter(name + "^-1", t)
            rules[(x, xi)] = rules[(xi, x)] = {(): sp.Integer(1)}
        return rules

    def from_expr(self, expr) -> Poly:
        """Convert a SymPy matrix expression (built from MatrixSymbols) to a word polynomial."""
        if isinstance(expr, MatrixSymbol):
            return {(self.letter(expr.name),): sp.Integer(1)}
        if isinstance(expr, Identity):
            return {(): sp.Integer(1)}
        if isinstance(expr, ZeroMatrix):
            return {}
        if isinstance(expr, Inverse):
            arg = expr.arg
            if not isinstance(arg, MatrixSymbol):
                raise TypeError(f"only inverses of matrix symbols are supported, got {expr}")
            return {(self.letter(arg.name + "^-1"),): sp.Integer(1)}
        if isinstance(expr, Transpose):
            return {self.transpose_word(w): c for w, c in self.from_expr(expr.arg).items()}
        if isinstance(expr, MatAdd):
            return _poly((w, c) for a in expr.args for w, c in self.from_expr(a).items())
        if isinstance(expr, MatMul):
            out: Poly = {(): sp.Integer(1)}
            for a in expr.args:  # scalar factors multiply the coefficients
                rhs = self.from_expr(a) if getattr(a, "is_Matrix", False) else {(): a}
                out = _poly((w1 + w2, c1 * c2) for w1, c1 in out.items() for w2, c2 in rhs.items())
            return out
        raise TypeError(f"unsupported matrix expression {type(expr).__name__}: {expr}")

    def reduce(self, poly: Poly, cyclic: bool = False) -> Poly:
        """Apply pair rules until none applies (``cyclic``: also across the wrap-around of a trace)."""
        rules = self._pair_rules()
        out: Poly = {}
        todo = list(poly.items())
        for _ in range(200000):
            if not todo:
                return out
            w, c = todo.pop()
            L = len(w)
            pairs = range(L if (cyclic and L > 1) else max(L - 1, 0))
            i = next((i for i in pairs if (w[i], w[(i + 1) % L]) in rules), None)
            if i is None:
                _add(out, w, c)
            elif i + 1 < L:
                todo += [(w[:i] + rw + w[i + 2 :], c * rc) for rw, rc in rules[(w[i], w[i + 1])].items()]
            else:  # wrap-around pair (last, first): rotate so they are adjacent
                todo += [(rw + w[1:i], c * rc) for rw, rc in rules[(w[i], w[0])].items()]
        raise RuntimeError("rewriting did not terminate")

    def canonical_trace_word(self, w: Word) -> Word:
        return min(base[k:] + base[:k] for base in (w, self.transpose_word(w)) for k in range(max(len(base), 1)))

    def trace(self, poly: Poly) -> Poly:
        """``Tr`` of a word polynomial in canonical (rotation/transpose-reduced) form."""
        words = ((self.canonical_trace_word(w), c) for w, c in self.reduce(poly, cyclic=True).items())
        return _poly((CONST, c * self.trace_values[w]) if w in self.trace_values else (w, c) for w, c in words)

    def scalar(self, expr) -> Poly:
        """A scalar SymPy expression built from ``Trace(...)`` terms and scalars -> canonical trace polynomial."""
        out: Poly = {}
        for term in sp.Add.make_args(sp.expand(expr)):
            traces = [f for f in sp.Mul.make_args(term) if isinstance(f, Trace)]
            coef = sp.Mul(*[f for f in sp.Mul.make_args(term) if not isinstance(f, Trace)])
            if not traces:
                _add(out, CONST, coef)
                continue
            if len(traces) != 1:
                raise TypeError(f"products of traces are not supported: {term}")
            for w, c in self.trace(self.from_expr(traces[0].arg.expand())).items():
                _add(out, w, coef * c)
        return out

    def matrix(self, expr) -> Poly:
        """A matrix expression reduced by the (non-cyclic) rules."""
        return self.reduce(self.from_expr(expr.expand()))

    @staticmethod
    def show(poly: Poly) -> str:
        if not poly:
            return "0"
        parts = []
        for w, c in sorted(poly.items(), key=lambda kv: str(kv[0])):
            ws = " ".join(n + ("'" if t else "") for n, t in w) or "I"
            parts.append(f"({c})*{ws}")
        return " + ".join(parts)
