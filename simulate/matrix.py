"""Matrix ODE on the SNR matrix (math §6.1):  dS/dt = (kappa/N) (C I_p + S S^T)^{-2} S,
S = Sigma_W^{-1/2} Mbar (p x C).

Since Mbar 1_C = 0, S J = S with J = I_C - 1 1^T/C; the right-hand side is evaluated as (kappa/N)(C I + S S^T)^{-2} S J,
identical on that invariant set, so that S 1_C stays exactly 0. (Without J, round-off along 1_C grows like
exp(kappa t/(N C^2)): a zero singular value is an unstable equilibrium of the ODE.)

On X_set this is the class-mean part of the projected flow written for the means; math §6.2 shows that its
singular vectors stay fixed and its singular values follow the reduced ODE, which the tests check. This matrix
law is not a ``theory.laws`` scalar law, so it is written here once (two Cholesky solves, no inverse).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

from ._checks import is_concrete
from ._solve import SolverOptions, integrate


def matrix_rhs(t, S: jax.Array, args) -> jax.Array:
    """dS/dt = (kappa/N) (C I + S S^T)^{-2} S J for S (p, C), J the centring matrix;
    ``args = (N, C, kappa)`` (math §6.1)."""
    N, C, kappa = args
    p = S.shape[0]
    A = C * jnp.eye(p, dtype=S.dtype) + S @ S.T
    cho = jsl.cho_factor(A, lower=True)
    SJ = S - jnp.mean(S, axis=1, keepdims=True)
    return (kappa / N) * jsl.cho_solve(cho, jsl.cho_solve(cho, SJ))


def integrate_matrix(
    S0: jax.Array,
    times: jax.Array,
    per_class: int,
    kappa: float | str = 1.0,
    *,
    options: SolverOptions = SolverOptions(),
    return_steps: bool = False,
):
    """Integrate dS/dt = (kappa/N)(C I + S S^T)^{-2} S from S(times[0]) = S0 (p, C) (math §6.1).

    Returns S at ``times`` with shape (len(times), p, C) (and the solver step count if ``return_steps``).
    jit-able and vmap-able over ``S0``. ``per_class`` N; ``options``: :class:`SolverOptions`.
    """
    N = per_class
    if is_concrete(S0) and not bool(jnp.all(jnp.isfinite(S0))):
        raise ValueError("S0 contains non-finite values (NaN or Inf)")
    S0 = jnp.asarray(S0, dtype=jnp.float64)
    if S0.ndim != 2:
        raise ValueError(f"S0 must be a (p, C) matrix, got shape {S0.shape}")
    return integrate(matrix_rhs, S0, times, kappa, N, int(S0.shape[1]), options=options,
                     return_steps=return_steps)
