"""Feature-level dynamics of the unconstrained-features model (math §6.1): the projected gradient flow on X_set
(``integrate_features``), its Euler-and-re-whitening contrast (``integrate_retraction``, math §9 item 19), and
(W, b, H) trained jointly off the central path (``integrate_free``, math §1, §4).

Loss, class statistics, least-squares classifier and renormalisation are ``theory``'s functions.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

import theory

from ._checks import check_features, check_times, is_concrete
from ._solve import SolverOptions, integrate, kappa_value
from .initial import class_means


def central_path_gradient(X: jax.Array, labels: jax.Array, num_classes: int) -> jax.Array:
    """Euclidean gradient of the central-path loss at X (n, p):  (1/n) W_LS^T (W_LS x_{i,c} + b_LS - e_c) per row.

    Computed as ``jax.grad`` of ``theory.mse_loss(X, labels, W, b)`` at the least-squares classifier
    ``theory.least_squares_classifier(theory.class_stats(X))`` held fixed: by the envelope theorem (math §6.1,
    math §9 item 12) this is the full derivative of X -> L(W_LS(X), b_LS(X), X).
    """
    C = num_classes
    W, b = theory.least_squares_classifier(theory.class_stats(X, labels, C))
    W, b = jax.lax.stop_gradient((W, b))
    return jax.grad(lambda x: theory.mse_loss(x, labels, W, b, num_classes=C))(X)


def project_tangent(X: jax.Array, labels: jax.Array, num_classes: int, D: jax.Array) -> jax.Array:
    """Orthogonal projection of a direction D (n, p) onto the tangent space at X of {Sigma_W = const, mu_G = const}.

    Split D = D_mean (rows replaced by their class means) + D_w (within-class part). The constraint
    mu_G = const removes the global mean of D_mean; Sigma_W = const (dSigma_W = (1/n) sym(Z^T D_w) = 0,
    Z = within-class deviations of X) removes the normal component Z S, S symmetric solving
    Sigma_W S + S Sigma_W = (2/n) sym(Z^T D_w) (a Lyapunov equation, solved in the eigenbasis of Sigma_W).
    At Sigma_W = I this is S = sym(Z^T D_w)/n. For the central-path gradient D_w is itself of the form Z S
    (math §6.1), so within-class deviations are frozen and only class means move (``projected_rhs`` uses that
    shortcut).
    """
    C, n = num_classes, X.shape[0]
    stats = theory.class_stats(X, labels, C)
    Z = X - stats.means[labels]
    Dm = class_means(D, labels, C)
    Dw = D - Dm[labels]
    R = Z.T @ Dw / n
    R = R + R.T
    lam, Q = jnp.linalg.eigh(stats.sigma_w)
    S = Q @ ((Q.T @ R @ Q) / (lam[:, None] + lam[None, :])) @ Q.T
    mean_part = Dm[labels] - jnp.mean(D, axis=0)
    return mean_part + Dw - Z @ S


def projected_rhs(t, X: jax.Array, args) -> jax.Array:
    """dX/dt = -kappa Proj_{T_X X_set} grad_X L_central(X); ``args = (labels, C, kappa)`` (math §6.1).

    The within-class part of the central-path gradient D is exactly Z (W_LS^T W_LS / n) (Z the within-class
    deviations), i.e. of the normal form Z S with S symmetric, which ``project_tangent`` removes exactly; so the
    projection keeps only the class-mean part minus its global mean (no Lyapunov solve, no n p^2 GEMMs).
    ``project_tangent(X, labels, C, D)`` gives the same result (tests/simulate/test_flows.py).
    """
    labels, C, kappa = args
    D = central_path_gradient(X, labels, C)
    return -kappa * (class_means(D, labels, C)[labels] - jnp.mean(D, axis=0))


def _prepare_features(X0, labels, C, renormalize, balanced=True):
    """float64 X0, labels; one ``theory.class_stats`` (its validation) + simulate's checks; optional renormalisation."""
    X0 = jnp.asarray(X0, dtype=jnp.float64)
    labels = jnp.asarray(labels)
    stats = theory.class_stats(X0, labels, C)
    check_features(stats, balanced=balanced)
    if renormalize:
        X0 = theory.renormalize(X0, stats)
    return X0, labels


def integrate_features(
    X0: jax.Array,
    labels: jax.Array,
    times: jax.Array,
    num_classes: int,
    kappa: float | str = 1.0,
    *,
    renormalize: bool = True,
    options: SolverOptions = SolverOptions(),
    return_steps: bool = False,
):
    """Projected gradient flow dX/dt = -kappa Proj grad_X L_central on X_set (math §6.1), X0 (n, p).

    With ``renormalize`` X0 is first mapped onto X_set by ``theory.renormalize`` (which leaves the central-path
    loss and the SNR singular values unchanged, math §5.1). Returns X at ``times``, shape (len(times), n, p)
    (and the solver step count if ``return_steps``). jit-able; vmap-able over X0. ``options``: :class:`SolverOptions`.
    """
    C = num_classes
    X0, labels = _prepare_features(X0, labels, C, renormalize)
    return integrate(projected_rhs, X0, times, kappa, X0.shape[0] // C, C, labels=labels, options=options,
                     return_steps=return_steps)


def retraction_step(X: jax.Array, labels: jax.Array, C: int, h) -> jax.Array:
    """One step of the retraction scheme (math §6.1 "Contrast"): X <- X - h grad_X L_central(X) on all features,
    then re-whiten and recentre, X <- (X - mu_G) Sigma_W^{-1/2} (``theory.renormalize``)."""
    X = X - h * central_path_gradient(X, labels, C)
    return theory.renormalize(X, theory.class_stats(X, labels, C))


@functools.partial(jax.jit, static_argnames=("C",))
def _retraction(X0, labels, times, C, step, kappa):
    """``lax.scan`` over the saved-time intervals; within each, ``fori_loop`` over its m = ceil(dt/step) steps
    of size kappa dt/m (m is a traced count: the loop lowers to a while loop). One compiled program per shape."""

    def interval(X, dt):
        m = jnp.maximum(1.0, -jnp.floor_divide(-dt, step))  # ceil(dt/step), the float // of Python
        h = kappa * dt / m
        X = jax.lax.fori_loop(0, m.astype(jnp.int32), lambda i, x: retraction_step(x, labels, C, h), X)
        return X, X

    _, Xs = jax.lax.scan(interval, X0, jnp.diff(times))
    return jnp.concatenate([X0[None], Xs])


def integrate_retraction(
    X0: jax.Array,
    labels: jax.Array,
    times: jax.Array,
    num_classes: int,
    step: float = 0.5,
    kappa: float | str = 1.0,
    *,
    renormalize: bool = True,
) -> jax.Array:
    """Discrete retraction flow (math §6.1 "Contrast", math §9 item 19): Euler steps of size <= ``step`` (in time
    units of dX/dt = -kappa grad L) on all features, each followed by re-whitening. Between consecutive saved
    times the interval is split into ceil(dt/step) equal steps. Returns X at ``times``, (len(times), n, p).
    Its SNR singular values follow theory.laws "retraction_rhs" (1/n) w/(C + w^2) up to O(step).
    One compiled program (``lax.scan`` over the intervals, C static): jit-able, and vmap-able over X0.
    """
    C = num_classes
    check_times(times)
    if is_concrete(step) and not (step > 0):
        raise ValueError(f"step must be > 0, got {step}")
    X0, labels = _prepare_features(X0, labels, C, renormalize)
    k = kappa_value(kappa, int(X0.shape[0] // C), C)
    t = jnp.asarray(times, dtype=jnp.float64)
    return _retraction(X0, labels, t, C, jnp.asarray(step, dtype=jnp.float64), jnp.asarray(k, dtype=jnp.float64))


#: Default solver settings of :func:`integrate_free` (looser than the central-path flows': the free model's
#: loss plateaus, and 1e-8 / 1e-10 resolves its terms far below the quantities compared).
FREE_OPTIONS = SolverOptions(rtol=1e-8, atol=1e-10)


def free_loss(params, labels: jax.Array, C: int, lam, lam_h) -> jax.Array:
    """L(W, b, H) + (lam_H/(2n)) ||H||_F^2 with L = ``theory.mse_loss`` (the paper's loss, math §1)."""
    W, b, X = params
    reg_h = 0.5 * lam_h * jnp.sum(X**2) / X.shape[0]
    return theory.mse_loss(X, labels, W, b, lam=lam, num_classes=C) + reg_h


def free_rhs(t, params, args):
    """d(W, b, H)/dt = -kappa grad free_loss; ``args = (labels, C, kappa, lam, lam_H)``."""
    labels, C, kappa, lam, lam_h = args
    g = jax.grad(free_loss)(params, labels, C, lam, lam_h)
    return jax.tree_util.tree_map(lambda v: -kappa * v, g)


def integrate_free(
    X0: jax.Array,
    labels: jax.Array,
    times: jax.Array,
    num_classes: int,
    W0: jax.Array,
    b0: jax.Array,
    *,
    lam: float = 1e-3,
    lam_h: float = 0.0,
    kappa: float | str = 1.0,
    options: SolverOptions = FREE_OPTIONS,
    return_steps: bool = False,
):
    """Gradient flow of the unconstrained-features model with W (C, p), b (C,) and features X (n, p) all free:
    d(W, b, X)/dt = -kappa grad [ L(W, b, X) + (lam_H/(2n))||X||_F^2 ] (the loss of math §1, ridge lam on W and b).

    Any class counts (the loss is a mean over samples, math §1).
    Returns ``(W, b, X)`` at ``times`` with leading axis len(times). No renormalisation: this is the off-central-
    path comparison of math §4. ``options``: :class:`SolverOptions`
    (default :data:`FREE_OPTIONS`, rtol 1e-8, atol 1e-10).
    """
    C = num_classes
    if is_concrete((lam, lam_h)) and (lam < 0 or lam_h < 0):
        raise ValueError(f"weight decays must be >= 0, got lam={lam}, lam_h={lam_h}")
    X0, labels = _prepare_features(X0, labels, C, renormalize=False, balanced=False)
    params0 = (jnp.asarray(W0, jnp.float64), jnp.asarray(b0, jnp.float64), X0)
    # weight decays as arrays (integrate's extra): traced, no recompilation per value; N = n / C enters only a
    # named kappa ("sum": n, "means": the mean class count)
    return integrate(free_rhs, params0, times, kappa, X0.shape[0] / C, C, labels=labels, extra=(lam, lam_h),
                     options=options, return_steps=return_steps)
