"""The numeric side of :mod:`theory.laws` (its expressions are certified in :mod:`.central_path` and :mod:`.flow`).

Every ``SIGNATURES`` entry lists all free symbols of its expression (else lambdify would silently build a function
of the wrong arguments), ``constants(N, C, kappa)`` (both SNR scales) equals the expressions, and
``numeric(name, "numpy" | "jax")`` equals them evaluated in multiprecision (mpmath) at sample points.
"""

from __future__ import annotations

import contextlib
from functools import partial

import numpy as np
import sympy as sp

from theory import laws

from ._core import Checks, CheckSpec, Outcome, close

__all__ = ["specs"]

CHECKS = Checks()

#: sample points, by symbol of :mod:`theory.laws`
_POINTS = [
    {laws.w: 0.3, laws.t: 1.5, laws.a: 0.2, laws.N: 6.0, laws.C: 4.0, laws.K: 1.0},
    {laws.w: 1.7, laws.t: 20.0, laws.a: 3.0, laws.N: 5.0, laws.C: 10.0, laws.K: 50.0},
    {laws.w: 4.2, laws.t: 300.0, laws.a: 1.0, laws.N: 2.0, laws.C: 3.0, laws.K: 2.0},
]
_CONSTANT_POINTS = ((6, 4, 1), (5, 10, 50), (2, 3, 2.5))


@CHECKS.add("laws", "theory.laws bookkeeping: SIGNATURES and constants() match its expressions", "numeric",
             "lambdify arguments, constants(N, C, kappa)")
def bookkeeping() -> Outcome:
    ex = laws.expressions()
    bad = []
    for name, sig in laws.SIGNATURES.items():
        missing = ex[name].free_symbols - set(sig)
        if missing:
            bad.append(f"{name} misses {sorted(map(str, missing))} in SIGNATURES")
    pc = laws.per_class_constants()
    for N_, C_, k_ in _CONSTANT_POINTS:
        subs = {laws.N: N_, laws.C: C_, laws.K: k_}
        for scale, exprs in (("paper", [ex[c] for c in ("c1", "c2", "c3")]), ("per_class", pc)):
            got = laws.constants(N_, C_, k_, snr_scale=scale)
            want = [float(e.subs(subs)) for e in exprs]
            if not close(got, want):
                bad.append(f"constants{(N_, C_, k_)} {scale}: {got} vs {want}")
    return Outcome(not bad, f"SIGNATURES cover the free symbols of all {len(laws.SIGNATURES)} laws; constants(N, C, "
                            f"kappa) == c1..c3 and per_class_constants() at {len(_CONSTANT_POINTS)} points (both SNR "
                            "scales)" if not bad else f"inconsistent: {bad}")


def numeric_agreement(backend: str) -> Outcome:
    ctx = contextlib.nullcontext()
    tol = 1e-12
    if backend == "jax":
        import jax

        if hasattr(jax, "enable_x64"):
            ctx = jax.enable_x64(True)  # float64 locally, global config untouched
        elif not jax.config.jax_enable_x64:  # type: ignore[attr-defined]  # a flag JAX's stubs do not declare
            tol = 1e-5  # float32 evaluation
    with ctx:
        worst, where = _worst(backend)
    return Outcome(worst < tol, f"{backend}: max relative difference of theory.laws.numeric(name) vs its SymPy "
                                f"expression (mpmath) over {len(laws.SIGNATURES)} laws x {len(_POINTS)} points "
                                f"= {worst:.2e}{f' ({where})' if worst > 0 else ''} (tolerance {tol:g})")


def _worst(backend: str) -> tuple[float, str]:
    worst, where = 0.0, "-"
    ex = laws.expressions()
    for name, sig in laws.SIGNATURES.items():
        f_num = laws.numeric(name, backend)
        f_ref = sp.lambdify(sig, ex[name], "mpmath")
        for pt in _POINTS:
            xs = [pt[s] for s in sig]
            got = float(np.asarray(f_num(*[np.float64(x) for x in xs])))
            want = float(f_ref(*xs))
            err = abs(got - want) / max(abs(want), 1e-300)
            if not err <= worst:  # also catches NaN
                worst, where = (err if err == err else float("inf")), name
    return worst, where


for _backend in ("numpy", "jax"):
    CHECKS.append(CheckSpec("laws", f"theory.laws {_backend} lambdified == its SymPy expressions (sample points)",
                            partial(numeric_agreement, _backend), "numeric", f"{_backend} backend"))


def specs() -> list[CheckSpec]:
    return list(CHECKS)
