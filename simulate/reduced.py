"""Reduced dynamics on the SNR singular values and its closed form (math §6.2, §6.3, §6.4).

    d omega_j/dt = (kappa/N) omega_j / (C + omega_j^2)^2                          (math §6.2, §6.3 table)
    c1 log omega_j(t) + c2 omega_j(t)^2 + c3 omega_j(t)^4 = a_j + t,  a_j = lhs(omega_j(0))  (math §6.3)
    (c1, c2, c3) = (N/kappa)(C^2, C, 1/4);  omega_j(t) ~ (t/c3)^{1/4}                       (math §6.4 item 1)

The right-hand side, the left-hand side of the implicit relation and its residual are ``theory.laws``' lambdified
SymPy expressions ("omega_rhs", "closed_form_lhs", "closed_form_residual"); the constants are
``theory.laws.constants``. Nothing is retyped.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optimistix as optx

import theory
import theory.laws

from ._checks import check_omega0, check_times
from ._solve import SolverOptions, integrate, kappa_value, law, prepare, solve_ode


def reduced_rhs(t, omega: jax.Array, args) -> jax.Array:
    """d omega_j/dt = (kappa/N) omega_j/(C + omega_j^2)^2, ``args = (N, C, kappa)`` (math §6.2; theory "omega_rhs")."""
    N, C, kappa = args
    return law("omega_rhs")(omega, N, C, kappa)


def integrate_reduced(
    omega0: jax.Array,
    times: jax.Array,
    per_class: int,
    num_classes: int,
    kappa: float | str = 1.0,
    *,
    options: SolverOptions = SolverOptions(),
    return_steps: bool = False,
):
    """Solve the reduced ODE d omega_j/dt = (kappa/N) omega_j/(C + omega_j^2)^2 (math §6.2, §6.3 table).

    ``omega0`` (C-1,) holds the SNR singular values at ``times[0]``; returns omega (len(times), C-1) (and the
    number of accepted+rejected solver steps if ``return_steps``). Zero singular values stay zero (math §6.4 item 5).
    jit-able (tolerances and solver static) and vmap-able over ``omega0`` and ``times``.
    The law is elementwise, so ``omega0`` may also be a batch (K, C-1) integrated as one system with a shared
    step; pass ``options=SolverOptions(error_norm="max")`` then, so that every trajectory's local error stays within
    atol + rtol |omega| (faster than vmap on CPU; see benchmarks/bench_simulate.py).
    ``per_class`` N, ``num_classes`` C; ``kappa``: number, or "projected" (1), "sum" (C N), "means" (N);
    ``options``: the solver settings (:class:`SolverOptions`; default rtol 1e-10, atol 1e-12, Tsit5).
    """
    N, C = per_class, num_classes
    check_omega0(omega0)
    return integrate(reduced_rhs, jnp.asarray(omega0, dtype=jnp.float64), times, kappa, N, C, options=options,
                     return_steps=return_steps)


def _newton_log_omega(omega0, t, N, C, kappa, c1, c3, rtol, atol, max_steps):
    """Solve lhs(omega) = lhs(omega0) + t for one omega0 > 0 by Newton in u = log omega (math §6.3).

    g(u) = c1 u + c2 e^{2u} + c3 e^{4u} - a - t is increasing and convex in u, so Newton started at an upper bound
    converges monotonically; omega_up^4 = omega0^4 + t/c3 is one (each term of lhs is increasing).
    The residual is divided by (|a| + t + c1) so that the stopping rule is relative.
    (c1, c3) = theory.laws.constants(N, C, kappa)[0, 2] are evaluated eagerly by the caller (SymPy
    substitution), so N, C, kappa must be concrete at the public entry point. Where Newton does not report
    success (max_steps reached, non-finite iterate) the result is NaN, never a silently unconverged value.
    """
    lhs = law("closed_form_lhs")
    res = law("closed_form_residual")
    positive = omega0 > 0
    w0 = jnp.where(positive, omega0, 1.0)
    a = lhs(w0, N, C, kappa)
    scale = jnp.abs(a) + jnp.abs(t) + c1

    def fn(u, args):
        return res(jnp.exp(u), t, a, N, C, kappa) / scale

    u_up = 0.25 * jnp.log(w0**4 + t / c3)
    sol = optx.root_find(fn, optx.Newton(rtol=rtol, atol=atol), u_up, max_steps=max_steps, throw=False)
    ok = sol.result == optx.RESULTS.successful
    return jnp.where(positive, jnp.where(ok, jnp.exp(sol.value), jnp.nan), 0.0)


@functools.partial(jax.jit, static_argnames=("rtol", "atol", "max_steps"))
def _closed_form(omega0, times, N, C, kappa, c1, c3, rtol, atol, max_steps):
    t = times - times[0]
    f = jax.vmap(jax.vmap(_newton_log_omega, (0, None) + (None,) * 8), (None, 0) + (None,) * 8)
    return f(omega0, t, N, C, kappa, c1, c3, rtol, atol, max_steps)


def closed_form_omega(
    omega0: jax.Array,
    times: jax.Array,
    per_class: float,
    num_classes: int,
    kappa: float | str = 1.0,
    *,
    rtol: float = 1e-14,
    atol: float = 1e-14,
    max_steps: int = 100,
) -> jax.Array:
    """omega_j(t) from the implicit closed form c1 log w + c2 w^2 + c3 w^4 = a_j + (t - t_0) (math §6.3).

    a_j = c1 log omega_j(t_0) + c2 omega_j(t_0)^2 + c3 omega_j(t_0)^4, t_0 = times[0]. Inverted by Optimistix
    Newton in log w (vmapped over j and t). A zero initial singular value stays zero. Returns (len(times), C-1);
    NaN where Newton did not converge within ``max_steps``. N, C and kappa must be concrete (the constants
    c1, c3 come from ``theory.laws.constants``); omega0 and times may be traced (jit/vmap).
    ``rtol``, ``atol``, ``max_steps``: Newton's stopping rule (keyword-only).
    """
    N, C = per_class, num_classes
    check_times(times)
    check_omega0(omega0)
    k = kappa_value(kappa, N, C)
    omega0 = jnp.asarray(omega0, dtype=jnp.float64)
    times = jnp.asarray(times, dtype=jnp.float64)
    c1, _, c3 = theory.laws.constants(N, C, k)
    return _closed_form(omega0, times, float(N), float(C), k, c1, c3, float(rtol), float(atol), int(max_steps))


def asymptotic_omega(times: jax.Array, per_class: float, num_classes: int, kappa: float | str = 1.0) -> jax.Array:
    """Leading-order growth omega(t) ~ (t/c3)^{1/4} (math §6.4 item 1; theory.laws "growth"); N = per_class, C =
    num_classes."""
    N, C = per_class, num_classes
    return law("growth")(jnp.asarray(times, dtype=jnp.float64), N, C, float(kappa_value(kappa, N, C)))


@functools.partial(jax.jit, static_argnames=("options", "batch_size"))
def _integrate_ensemble(omega0, times, N, C, kappa, options, batch_size):
    """lax.map over chunks of ``batch_size`` vmapped reduced solves; one compiled program per shape/settings."""

    def one(w):
        return solve_ode(reduced_rhs, w, times, (N, C, kappa), options)

    return jax.lax.map(one, omega0, batch_size=min(batch_size, omega0.shape[0]))


def integrate_reduced_ensemble(
    omega0: jax.Array,
    times: jax.Array,
    per_class: int,
    num_classes: int,
    kappa: float | str = 1.0,
    *,
    batch_size: int = 256,
    options: SolverOptions = SolverOptions(),
    return_steps: bool = False,
):
    """``integrate_reduced`` for many initial conditions omega0 (K, C-1), each with its own adaptive steps.

    ``jax.lax.map`` over chunks of ``batch_size`` trajectories, each chunk vmapped: same answers as K separate
    solves. Chunking bounds the memory of a batch; it is not faster than one vmap, and the (K, C-1) batch as one
    max-norm system (:func:`integrate_reduced`) is ~3x faster (benchmarks/RESULTS.md). Returns (K, T, C-1).
    Compiled once per (shape, options, batch_size); later calls do not retrace.
    """
    N, C = per_class, num_classes
    check_omega0(omega0)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    times, k = prepare(times, kappa, N, C, options)
    omega0 = jnp.asarray(omega0, dtype=jnp.float64)
    if omega0.ndim != 2:
        raise ValueError(f"omega0 must have shape (K, C-1), got {omega0.shape}")
    ys, steps = _integrate_ensemble(omega0, times, float(N), float(C), k, options, int(batch_size))
    return (ys, steps) if return_steps else ys
