"""Agreement of :mod:`theory.laws` (lambdified numeric laws, numpy and jax) with the derivations here.

``theory.laws`` derives its scalar laws independently from the per-singular-value loss; this module
derived them from the normal equations, the manifold projection and the SVD (:mod:`.flow`,
:mod:`.central_path`). Both are compared: symbolically (difference simplifies to 0) and numerically
(lambdified callables at sample points, both backends), plus the sums of the per-singular-value
terms against the central-path terms derived from the normal equations at ``C = 3``.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ._core import CheckSpec, Outcome
from .central_path import central_path_terms, omegas
from .flow import A_SYM, C_SYM, KAPPA_SYM, N_SYM, T_SYM, W_SYM, laws

__all__ = ["specs"]

#: sample points (omega, t, a, N, C, kappa)
_POINTS = [(0.3, 1.5, -0.2, 6.0, 4.0, 1.0), (1.7, 20.0, 3.0, 5.0, 10.0, 50.0), (4.2, 300.0, 1.0, 2.0, 3.0, 2.0)]

_ARGS = {
    "omega_rhs": ("w", "N", "C", "k"),
    "closed_form_lhs": ("w", "N", "C", "k"),
    "closed_form_residual": ("w", "t", "a", "N", "C", "k"),
    "retraction_rhs": ("w", "N", "C"),
    "retraction_lhs": ("w", "N", "C"),
    "l_central": ("w", "C"),
    "l_nc1": ("w", "C"),
    "l_nc23": ("w", "C"),
    "nc1_renormalized": ("w",),
}
_MINE = {"w": W_SYM, "t": T_SYM, "a": A_SYM, "N": N_SYM, "C": C_SYM, "k": KAPPA_SYM}


def _laws_module():
    try:
        from theory import laws as L  # noqa: PLC0415
    except Exception as exc:  # pragma: no cover - only before theory.laws exists
        return None, f"theory.laws not importable: {exc}"
    return L, ""


def symbolic_agreement() -> Outcome:
    L, err = _laws_module()
    if L is None:
        return Outcome(False, err)
    theirs = L.expressions()
    mine = laws()
    bad = []
    for name, args in _ARGS.items():
        sig = L.SIGNATURES[name]
        subs = {s: _MINE[a] for s, a in zip(sig, args)}
        diff = sp.simplify(theirs[name].xreplace(subs) - mine[name])
        if diff != 0:
            bad.append(f"{name}: {diff}")
    # constants and growth
    sig = L.SIGNATURES["growth"]
    subs = {s: _MINE[a] for s, a in zip(sig, ("t", "N", "C", "k"))}
    g_mine = (T_SYM / mine["c3"]) ** sp.Rational(1, 4)
    if sp.simplify(theirs["growth"].xreplace(subs) - g_mine) != 0:
        bad.append("growth")
    for N_, C_, k_ in ((6, 4, 1), (5, 10, 50)):
        got = L.constants(N_, C_, k_)
        want = [float(mine[c].subs({N_SYM: N_, C_SYM: C_, KAPPA_SYM: k_})) for c in ("c1", "c2", "c3")]
        if not np.allclose(got, want, rtol=1e-14, atol=0):
            bad.append(f"constants{(N_, C_, k_)}: {got} vs {want}")
    return Outcome(not bad, "theory.laws expressions == derived ones (omega_rhs, closed form, retraction, loss terms, "
                            "growth, constants)" if not bad else f"disagree: {bad}")


def numeric_agreement(backend: str):
    def fn() -> Outcome:
        L, err = _laws_module()
        if L is None:
            return Outcome(False, err)
        import contextlib  # noqa: PLC0415

        mine = laws()
        worst = 0.0
        ctx = contextlib.nullcontext()
        tol = 1e-12
        if backend == "jax":
            import jax  # noqa: PLC0415

            if hasattr(jax, "enable_x64"):
                ctx = jax.enable_x64(True)  # float64 locally, global config untouched
            elif not jax.config.jax_enable_x64:
                tol = 1e-5  # float32 evaluation
        with ctx:
            worst = _worst(L, mine, backend)
        return Outcome(worst < tol, f"{backend}: max relative difference over {len(_ARGS)} laws x {len(_POINTS)} points "
                                    f"= {worst:.2e} (tolerance {tol:g})")

    return fn


def _worst(L, mine, backend: str) -> float:
    worst = 0.0
    for name, args in _ARGS.items():
        f_theirs = L.numeric(name, backend)
        f_mine = sp.lambdify([_MINE[a] for a in args], mine[name], "mpmath")
        for pt in _POINTS:
            vals = dict(zip(("w", "t", "a", "N", "C", "k"), pt))
            xs = [vals[a] for a in args]
            got = float(np.asarray(f_theirs(*[np.float64(x) for x in xs])))
            want = float(f_mine(*xs))
            worst = max(worst, abs(got - want) / max(abs(want), 1e-300))
    return worst


def central_terms_agreement() -> Outcome:
    """sum_j theory.laws l_nc1/l_nc23/l_central(omega_j, C) == terms derived from the normal equations (C = 3)."""
    L, err = _laws_module()
    if L is None:
        return Outcome(False, err)
    got = central_path_terms(3)
    om = omegas(3)
    worst = 0.0
    for pt in ((0.4, 2.5), (1.0, 1.0), (7.0, 0.2)):
        subs = dict(zip(om, pt))
        for name, key in (("l_nc1", "l_nc1"), ("l_nc23", "l_nc23")):
            want = float(got[key].subs(subs))
            have = float(sum(L.numeric(name, "numpy")(x, 3.0) for x in pt))
            worst = max(worst, abs(have - want) / abs(want))
        want = float((got["l_nc1"] + got["l_nc23"]).subs(subs))
        have = float(sum(L.numeric("l_central", "numpy")(x, 3.0) for x in pt))
        worst = max(worst, abs(have - want) / abs(want))
    return Outcome(worst < 1e-13, f"C=3: sum_j laws terms vs normal-equation terms, max rel. difference {worst:.2e}")


def specs(quick: bool = False) -> list[CheckSpec]:
    return [
        CheckSpec("laws", "theory.laws expressions == derived expressions", symbolic_agreement, "general",
                  "same SymPy expressions"),
        CheckSpec("laws", "theory.laws numpy lambdified == derived (sample points)", numeric_agreement("numpy"), "numeric",
                  "numpy backend"),
        CheckSpec("laws", "theory.laws jax lambdified == derived (sample points)", numeric_agreement("jax"), "numeric",
                  "jax backend"),
        CheckSpec("laws", "sum of per-singular-value laws == central-path terms from the normal equations [C=3]",
                  central_terms_agreement, "numeric", "l_nc1, l_nc23, l_central"),
    ]
