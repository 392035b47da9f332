"""Scalar laws of the central-path dynamics, derived with SymPy and lambdified (math §3.4, §6.1-6.4).

Everything numeric that :mod:`simulate` and :mod:`paper_checks` integrate or fit is made here from SymPy
expressions, so a change in a derivation flows into the numerics mechanically: the per-singular-value terms of the
central-path loss (``lam = 0``, balanced classes, math §3.4), the reduced flow
``dw/dt = -(kappa/N) dl_central/dw`` (math §6.2, §6.3 table), its implicit closed form
``c1 log w + c2 w^2 + c3 w^4 = a + t`` (derived by ``sympy.integrate``, math §6.3) and the retraction flow's law
``n (C log w + w^2/2) = a + t`` (math §6.1 "Contrast").
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import sympy as sp

w, t, a = sp.symbols("omega t a", positive=True)
C, N, K = sp.symbols("C N kappa", positive=True)  # K: the time scale kappa
n = C * N

#: Per-singular-value terms of the central-path loss (math §3.4).
L_CENTRAL = 1 / (2 * (C + w**2))
L_NC1 = w**2 / (2 * (C + w**2) ** 2)
L_NC23 = C / (2 * (C + w**2) ** 2)
#: ``(1/C) Tr(Sigma_W Sigma_B^+) = sum_j w_j^{-2}`` in renormalised coordinates (math §5.1, §6.4).
NC1_RENORMALIZED = w**-2

#: Time-scale conventions of math §6.3's table: ``dX/dt = -kappa Proj grad L``.
KAPPA: dict[str, Callable[[float, float], float]] = {
    "projected": lambda N_, C_: 1.0,
    "sum": lambda N_, C_: float(C_) * float(N_),
    "means": lambda N_, C_: float(N_),
}


def kappa_value(convention: str | float, N_: float, C_: float) -> float:
    """Numeric ``kappa`` for a named convention (``"projected"``, ``"sum"``, ``"means"``) or a number."""
    if isinstance(convention, str):
        if convention not in KAPPA:
            raise ValueError(f"unknown time-scale convention {convention!r}; choose one of {sorted(KAPPA)} or a number")
        return KAPPA[convention](N_, C_)
    value = float(convention)
    if not value > 0:
        raise ValueError(f"kappa must be positive, got {convention}")
    return value


kappa = kappa_value  # public name in the API contract: theory.laws.kappa(convention, N, C)


def _antiderivative(rhs: sp.Expr, x: sp.Symbol) -> sp.Expr:
    """``int dx / rhs(x)``: the time a scalar flow ``dx/dt = rhs(x)`` takes, up to a constant (math §6.3, §6.1)."""
    return sp.expand(sp.integrate(sp.apart(1 / rhs, x), x))


def _closed_form_constants(rhs: sp.Expr, x: sp.Symbol) -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """The coefficients of ``log x``, ``x^2`` and ``x^4`` in the antiderivative of ``1 / rhs`` (math §6.3)."""
    lhs = _antiderivative(rhs, x)
    return sp.simplify(lhs.coeff(sp.log(x))), sp.simplify(lhs.coeff(x, 2)), sp.simplify(lhs.coeff(x, 4))


def _derive() -> dict[str, sp.Expr]:
    """Derive the flow, closed form and retraction law from the loss (math §6.2, §6.3, §6.1)."""
    rate = K / N
    omega_rhs = sp.simplify(-rate * sp.diff(L_CENTRAL, w))
    c1, c2, c3 = _closed_form_constants(omega_rhs, w)
    closed = c1 * sp.log(w) + c2 * w**2 + c3 * w**4
    if sp.simplify(sp.diff(closed, w) * omega_rhs - 1) != 0:  # d/dt closed(w(t)) = 1
        raise AssertionError("closed form does not integrate the flow")
    retraction_rhs = w / (n * (C + w**2))
    retraction_lhs = _antiderivative(retraction_rhs, w)
    if sp.simplify(sp.diff(retraction_lhs, w) * retraction_rhs - 1) != 0:
        raise AssertionError("retraction closed form does not integrate its flow")
    return {
        "omega_rhs": omega_rhs,
        "closed_form_lhs": closed,
        "closed_form_residual": closed - a - t,
        "c1": c1,
        "c2": c2,
        "c3": c3,
        "retraction_rhs": retraction_rhs,
        "retraction_lhs": retraction_lhs,
        "l_central": L_CENTRAL,
        "l_nc1": L_NC1,
        "l_nc23": L_NC23,
        "nc1_renormalized": NC1_RENORMALIZED,
        "growth": (t / c3) ** sp.Rational(1, 4),
    }


@functools.cache
def expressions() -> dict[str, sp.Expr]:
    """The derived SymPy expressions, keyed by name (cached)."""
    return _derive()


#: Argument lists of the numeric functions (elementwise in ``w`` / ``t`` / ``a``).
SIGNATURES: dict[str, tuple] = {
    "omega_rhs": (w, N, C, K),
    "closed_form_lhs": (w, N, C, K),
    "closed_form_residual": (w, t, a, N, C, K),
    "retraction_rhs": (w, N, C),
    "retraction_lhs": (w, N, C),
    "l_central": (w, C),
    "l_nc1": (w, C),
    "l_nc23": (w, C),
    "nc1_renormalized": (w,),
    "growth": (t, N, C, K),
}


@functools.cache
def numeric(name: str, backend: str = "numpy") -> Callable:
    """Lambdified law ``name`` for ``backend`` in ``{"numpy", "jax"}`` (arguments: :data:`SIGNATURES`)."""
    if name not in SIGNATURES:
        raise ValueError(f"unknown law {name!r}; available: {sorted(SIGNATURES)}")
    if backend not in ("numpy", "jax"):
        raise ValueError(f"unknown backend {backend!r}; use 'numpy' or 'jax'")
    return sp.lambdify(SIGNATURES[name], expressions()[name], modules=backend)


def constants(N_: float, C_: float, kappa_: float | str = 1.0, snr_scale: str = "paper") -> tuple[float, float, float]:
    """``(c1, c2, c3)`` of the closed form (math §6.3 table).

    ``snr_scale="paper"``: ``SNR = Sigma_W^{-1/2} Mbar`` and ``(c1, c2, c3) = (N/kappa)(C^2, C, 1/4)``.
    ``snr_scale="per_class"``: the SNR divided by ``sqrt(C)`` (``w' = w/sqrt(C)``), for which the
    derived constants are ``(C^2 N/kappa)(1, 1, 1/4)`` (math §6.3, [AMB]).
    """
    if snr_scale not in ("paper", "per_class"):
        raise ValueError(f"unknown snr_scale {snr_scale!r}; use 'paper' or 'per_class'")
    ex = expressions()
    exprs = (ex["c1"], ex["c2"], ex["c3"]) if snr_scale == "paper" else per_class_constants()
    subs = {N: N_, C: C_, K: kappa_value(kappa_, N_, C_)}
    c1, c2, c3 = (float(e.subs(subs)) for e in exprs)
    return c1, c2, c3


@functools.cache
def per_class_constants() -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """Constants of the closed form in ``w' = w / sqrt(C)``, derived by substitution (math §6.3 [AMB])."""
    wp = sp.Symbol("omega_prime", positive=True)
    rhs = expressions()["omega_rhs"]
    rhs_prime = sp.simplify(rhs.subs(w, sp.sqrt(C) * wp) / sp.sqrt(C))  # dw'/dt
    return _closed_form_constants(rhs_prime, wp)
