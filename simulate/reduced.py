"""Reduced dynamics on the SNR singular values and its closed form (spec 6.2, 6.3, 6.4).

    d omega_j/dt = (kappa/N) omega_j / (C + omega_j^2)^2                          (spec 6.2, 6.3 table)
    c1 log omega_j(t) + c2 omega_j(t)^2 + c3 omega_j(t)^4 = a_j + t,  a_j = lhs(omega_j(0))  (spec 6.3)
    (c1, c2, c3) = (N/kappa)(C^2, C, 1/4);  omega_j(t) ~ (t/c3)^{1/4}                       (spec 6.4 item 1)

The right-hand side, the left-hand side of the implicit relation and its residual are ``theory.laws``' lambdified
SymPy expressions ("omega_rhs", "closed_form_lhs", "closed_form_residual"); the constants are
``theory.laws.constants``. Nothing is retyped.
"""

from __future__ import annotations

import functools

import diffrax
import jax
import jax.numpy as jnp
import optimistix as optx

import theory
import theory.laws

from ._checks import check_omega0, check_times
from ._laws import kappa_value, law

SOLVERS = {"tsit5": diffrax.Tsit5, "dopri5": diffrax.Dopri5, "dopri8": diffrax.Dopri8}


def solver_from_name(name: str) -> diffrax.AbstractSolver:
    """A Diffrax Runge-Kutta solver by name: "tsit5", "dopri5" or "dopri8"."""
    if name not in SOLVERS:
        raise ValueError(f"unknown solver {name!r}; choose one of {sorted(SOLVERS)}")
    return SOLVERS[name]()


def reduced_rhs(t, omega: jax.Array, args) -> jax.Array:
    """d omega_j/dt = (kappa/N) omega_j/(C + omega_j^2)^2, ``args = (N, C, kappa)`` (spec 6.2; theory "omega_rhs")."""
    N, C, kappa = args
    return law("omega_rhs")(omega, N, C, kappa)


NORMS = {"rms": optx.rms_norm, "max": optx.max_norm}


def solve_ode(rhs, y0, times, args, *, rtol, atol, solver="tsit5", max_steps=1_000_000, error_norm="rms"):
    """Integrate dy/dt = rhs(t, y, args) from times[0] with Diffrax and a PID controller, saving at ``times``.

    ``error_norm``: "rms" (Diffrax's default) or "max" (every component's local error within atol + rtol |y|).
    Returns ``(ys, num_steps)``; ``ys`` has a leading axis of length len(times) on every leaf.
    """
    if error_norm not in NORMS:
        raise ValueError(f"unknown error_norm {error_norm!r}; choose one of {sorted(NORMS)}")
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(rhs),
        solver_from_name(solver),
        t0=times[0],
        t1=times[-1],
        dt0=None,
        y0=y0,
        args=args,
        saveat=diffrax.SaveAt(ts=times),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol, norm=NORMS[error_norm]),
        max_steps=max_steps,
    )
    return sol.ys, sol.stats["num_steps"]


@functools.partial(jax.jit, static_argnames=("rtol", "atol", "solver", "max_steps", "error_norm"))
def _integrate_reduced(omega0, times, N, C, kappa, rtol, atol, solver, max_steps, error_norm="rms"):
    ys, steps = solve_ode(reduced_rhs, omega0, times, (N, C, kappa), rtol=rtol, atol=atol, solver=solver,
                          max_steps=max_steps, error_norm=error_norm)
    return ys, steps


def integrate_reduced(
    omega0: jax.Array,
    times: jax.Array,
    N: int,
    C: int,
    kappa: float | str = 1.0,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    *,
    solver: str = "tsit5",
    max_steps: int = 1_000_000,
    return_steps: bool = False,
    error_norm: str = "rms",
):
    """Solve the reduced ODE d omega_j/dt = (kappa/N) omega_j/(C + omega_j^2)^2 (spec 6.2, 6.3 table).

    ``omega0`` (C-1,) holds the SNR singular values at ``times[0]``; returns omega (len(times), C-1) (and the
    number of accepted+rejected solver steps if ``return_steps``). Zero singular values stay zero (spec 6.4 item 5).
    jit-able (tolerances and solver static) and vmap-able over ``omega0`` and ``times``.
    The law is elementwise, so ``omega0`` may also be a batch (K, C-1) integrated as one system with a shared
    step; pass ``error_norm="max"`` then, so that every trajectory's local error stays within atol + rtol |omega|
    (faster than vmap on CPU; see benchmarks/bench_simulate.py).
    ``kappa``: number, or "projected" (1), "sum" (C N), "means" (N).
    """
    check_times(times)
    check_omega0(omega0)
    k = kappa_value(kappa, N, C)
    omega0 = jnp.asarray(omega0, dtype=jnp.float64)
    times = jnp.asarray(times, dtype=jnp.float64)
    ys, steps = _integrate_reduced(omega0, times, float(N), float(C), k, float(rtol), float(atol), solver,
                                   int(max_steps), error_norm)
    return (ys, steps) if return_steps else ys


def _newton_log_omega(omega0, t, N, C, kappa, c1, c3, rtol, atol, max_steps):
    """Solve lhs(omega) = lhs(omega0) + t for one omega0 > 0 by Newton in u = log omega (spec 6.3).

    g(u) = c1 u + c2 e^{2u} + c3 e^{4u} - a - t is increasing and convex in u, so Newton started at an upper bound
    converges monotonically; omega_up^4 = omega0^4 + t/c3 is one (each term of lhs is increasing).
    The residual is divided by (|a| + t + c1) so that the stopping rule is relative.
    (c1, c3) = theory.laws.constants(N, C, kappa)[0, 2], passed in so that N, C, kappa may be traced.
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
    return jnp.where(positive, jnp.exp(sol.value), 0.0)


@functools.partial(jax.jit, static_argnames=("rtol", "atol", "max_steps"))
def _closed_form(omega0, times, N, C, kappa, c1, c3, rtol, atol, max_steps):
    t = times - times[0]
    f = jax.vmap(jax.vmap(_newton_log_omega, (0, None) + (None,) * 8), (None, 0) + (None,) * 8)
    return f(omega0, t, N, C, kappa, c1, c3, rtol, atol, max_steps)


def closed_form_omega(
    omega0: jax.Array,
    times: jax.Array,
    N: int,
    C: int,
    kappa: float | str = 1.0,
    *,
    rtol: float = 1e-14,
    atol: float = 1e-14,
    max_steps: int = 100,
) -> jax.Array:
    """omega_j(t) from the implicit closed form c1 log w + c2 w^2 + c3 w^4 = a_j + (t - t_0) (spec 6.3).

    a_j = c1 log omega_j(t_0) + c2 omega_j(t_0)^2 + c3 omega_j(t_0)^4, t_0 = times[0]. Inverted by Optimistix
    Newton in log w (vmapped over j and t). A zero initial singular value stays zero. Returns (len(times), C-1).
    """
    check_times(times)
    check_omega0(omega0)
    k = kappa_value(kappa, N, C)
    omega0 = jnp.asarray(omega0, dtype=jnp.float64)
    times = jnp.asarray(times, dtype=jnp.float64)
    c1, _, c3 = theory.laws.constants(N, C, k)
    return _closed_form(omega0, times, float(N), float(C), k, c1, c3, float(rtol), float(atol), int(max_steps))


def asymptotic_omega(times: jax.Array, N: int, C: int, kappa: float | str = 1.0) -> jax.Array:
    """Leading-order growth omega(t) ~ (t/c3)^{1/4} (spec 6.4 item 1; theory.laws "growth")."""
    return law("growth")(jnp.asarray(times, dtype=jnp.float64), N, C, float(kappa_value(kappa, N, C)))


def integrate_reduced_ensemble(
    omega0: jax.Array,
    times: jax.Array,
    N: int,
    C: int,
    kappa: float | str = 1.0,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    *,
    batch_size: int = 256,
    solver: str = "tsit5",
    max_steps: int = 1_000_000,
    return_steps: bool = False,
):
    """``integrate_reduced`` for many initial conditions omega0 (K, C-1), each with its own adaptive steps.

    ``jax.lax.map`` over chunks of ``batch_size`` trajectories, each chunk vmapped: same answers as K separate
    solves, but a vmapped while loop runs until its slowest member finishes and large batches leave the CPU cache,
    so moderate chunks are faster than one vmap over all K (benchmarks/bench_simulate.py). Returns (K, T, C-1).
    """
    check_times(times)
    check_omega0(omega0)
    k = kappa_value(kappa, N, C)
    times = jnp.asarray(times, dtype=jnp.float64)
    omega0 = jnp.asarray(omega0, dtype=jnp.float64)
    if omega0.ndim != 2:
        raise ValueError(f"omega0 must have shape (K, C-1), got {omega0.shape}")

    def one(w):
        return _integrate_reduced(w, times, float(N), float(C), k, float(rtol), float(atol), solver, int(max_steps))

    ys, steps = _map_chunks(one, omega0, int(batch_size))
    return (ys, steps) if return_steps else ys


@functools.partial(jax.jit, static_argnums=(0, 2))
def _map_chunks(fn, xs, batch_size):
    return jax.lax.map(fn, xs, batch_size=min(batch_size, xs.shape[0]))
