"""One Diffrax solve shared by every flow (reduced, matrix, feature-level, free), its argument preparation and
the flows' access to ``theory.laws`` (math §6.1-§6.3).

``solve`` is ``equinox.filter_jit`` of ``solve_ode`` (the un-jitted solve, for other traced code): array leaves (y0,
times, the arrays in ``args``) are traced, everything else (the right-hand side, the fields of the frozen
:class:`SolverOptions`, Python ints in ``args`` such as C) is static, so each flow compiles once per shape and
settings; ``prepare`` passes kappa as a 0-d array, so the time-scale convention does not recompile.
``integrate`` (``prepare``, then ``solve``) is what every flow's public function calls.
"""

from __future__ import annotations

import dataclasses
import math

import diffrax
import equinox as eqx
import jax.numpy as jnp
import optimistix as optx

import theory.laws

from ._checks import check_times, is_concrete


def law(name: str):
    """The lambdified JAX function ``theory.laws.numeric(name, backend="jax")`` (cached there): every scalar law
    the flows integrate or compare with comes from ``theory.laws``, nothing is retyped."""
    return theory.laws.numeric(name, backend="jax")


def kappa_value(kappa, N: float, C: int) -> float:
    """Time-scale factor kappa of the flow dX/dt = -kappa Proj grad L (math §6.3 table): a positive number, or a
    convention name "projected" (1), "sum" (C N), "means" (N); ``theory.laws.kappa``."""
    if not isinstance(kappa, str) and not is_concrete(kappa):
        return kappa  # traced (inside jit/vmap): used as is
    return float(theory.laws.kappa(kappa, N, C))


SOLVERS = {"tsit5": diffrax.Tsit5, "dopri5": diffrax.Dopri5, "dopri8": diffrax.Dopri8}
NORMS = {"rms": optx.rms_norm, "max": optx.max_norm}


@dataclasses.dataclass(frozen=True)
class SolverOptions:
    """Settings of one Diffrax solve (every ``integrate_*`` function's ``options=``), validated on creation.

    rtol, atol: tolerances of the PID step-size controller (local error <= atol + rtol |y| in ``error_norm``);
    solver: "tsit5", "dopri5" or "dopri8"; max_steps: step budget (Diffrax raises when it is exhausted);
    error_norm: "rms" (Diffrax's default) or "max" (every component within its tolerance).
    Frozen and hashable: a jit-static argument.  ``options.replace(rtol=1e-12)`` gives a modified copy.
    """

    rtol: float = 1e-10
    atol: float = 1e-12
    solver: str = "tsit5"
    max_steps: int = 1_000_000
    error_norm: str = "rms"

    def __post_init__(self):
        for name in ("rtol", "atol"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
            object.__setattr__(self, name, float(v))
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise ValueError(f"max_steps must be a positive integer, got {self.max_steps!r}")
        for name, table in (("solver", SOLVERS), ("error_norm", NORMS)):
            if getattr(self, name) not in table:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; choose one of {sorted(table)}")

    def replace(self, **changes) -> SolverOptions:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)


def solve_ode(rhs, y0, times, args, options: SolverOptions):
    """Integrate dy/dt = rhs(t, y, args) from times[0] with Diffrax and a PID controller set by ``options``,
    saving at ``times``.  Returns ``(ys, num_steps)``; ``ys`` has a leading axis of length len(times) on every leaf.
    """
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(rhs),
        SOLVERS[options.solver](),
        t0=times[0],
        t1=times[-1],
        dt0=None,
        y0=y0,
        args=args,
        saveat=diffrax.SaveAt(ts=times),
        stepsize_controller=diffrax.PIDController(rtol=options.rtol, atol=options.atol,
                                                  norm=NORMS[options.error_norm]),
        max_steps=options.max_steps,
    )
    return sol.ys, sol.stats["num_steps"]


solve = eqx.filter_jit(solve_ode)
"""``solve_ode`` compiled: arrays traced; rhs, the (hashable) options and Python scalars static."""


def check_options(options) -> SolverOptions:
    """``options`` if it is a :class:`SolverOptions`, else a one-line ``TypeError``."""
    if not isinstance(options, SolverOptions):
        raise TypeError(f"options must be a simulate.SolverOptions, got {type(options).__name__}")
    return options


def prepare(times, kappa, N, C, options: SolverOptions):
    """Check the arguments every flow shares (``options`` too); returns ``(times, kappa)``: float64 times (finite,
    strictly increasing) and ``kappa_value(kappa, N, C)`` as a 0-d float64 array (traced by ``solve``)."""
    check_times(times)
    check_options(options)
    return jnp.asarray(times, dtype=jnp.float64), jnp.asarray(kappa_value(kappa, N, C), dtype=jnp.float64)


def integrate(rhs, y0, times, kappa, N, C, *, labels=None, extra=(), options: SolverOptions,
              return_steps=False):
    """``prepare`` then ``solve`` with the argument layout every flow's right-hand side reads:
    ``args = (N, C, kappa, *extra)`` when ``labels`` is None (reduced, matrix ODEs), else
    ``(labels, C, kappa, *extra)`` (feature-level flows).

    Without labels, N and C are passed as 0-d float64 arrays, so they are traced and a new N or C does not
    recompile; with labels, C stays a Python int (static: it sizes the segment sums) and N only enters kappa.
    ``extra`` values (e.g. weight decays) become float64 arrays, traced for the same reason.
    Returns ys at ``times`` (leading axis len(times)), or ``(ys, num_steps)`` if ``return_steps``.
    """
    times, k = prepare(times, kappa, N, C, options)
    if labels is None:
        NC = jnp.asarray([N, C], dtype=jnp.float64)  # arrays: traced, no recompilation per size
        head = (NC[0], NC[1])
    else:
        head = (labels, C)
    tail = tuple(jnp.asarray(v, dtype=jnp.float64) for v in extra)
    ys, steps = solve(rhs, y0, times, (*head, k, *tail), options)
    return (ys, steps) if return_steps else ys
