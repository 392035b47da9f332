"""Random initial conditions on the renormalised feature manifold X_set = {Sigma_W = I, mu_G = 0} (math §5.2)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

import theory

from ._checks import check_sizes


def class_labels(num_classes: int, per_class: int) -> jax.Array:
    """Balanced labels ``(n,)``, n = C N, grouped by class: [0]*N + [1]*N + ... (math §1)."""
    return jnp.repeat(jnp.arange(num_classes), per_class)


def labels_from_counts(class_counts) -> jax.Array:
    """Labels ``(n,)`` grouped by class with ``class_counts[c]`` samples of class ``c`` (any counts)."""
    counts = np.asarray(class_counts, dtype=np.int64)
    return jnp.repeat(jnp.arange(len(counts)), counts, total_repeat_length=int(counts.sum()))


def class_means(D: jax.Array, labels: jax.Array, num_classes: int) -> jax.Array:
    """Per-class row means (C, p) of D (n, p): plain segment averages, for any array D (a direction, a gradient),
    without ``theory.class_stats``' covariances and validation. jit-able with C static."""
    C = num_classes
    counts = jax.ops.segment_sum(jnp.ones(D.shape[0], D.dtype), labels, C)
    return jax.ops.segment_sum(D, labels, C) / counts[:, None]


def random_initial_features(
    key: jax.Array,
    num_classes: int,
    per_class: int,
    dim: int,
    *,
    rank: int | None = None,
    mean_scale: float = 1.0,
    class_counts=None,
) -> jax.Array:
    """A random point X (n, p) of X_set = {X : Sigma_W(X) = I_p, mu_G(X) = 0} (math §5.2), rows grouped by class.

    Draws Gaussian within-class noise and class means ``mean_scale * G`` (rank ``rank`` <= C-1 if given, so that
    the SNR matrix has C-1-rank zero singular values, math §6.4 item 5), then maps H -> X = (H - mu_G) Sigma_W^{-1/2}
    with ``theory.renormalize`` (math §5.2). Labels are ``class_labels(num_classes, per_class)``, or
    ``labels_from_counts(class_counts)`` with ``class_counts`` (unequal counts: X_set with the count-weighted
    global mean, math §3.3b).
    """
    check_sizes(num_classes, per_class, dim, class_counts)
    if rank is not None and (isinstance(rank, bool) or int(rank) != rank or not (0 <= rank <= num_classes - 1)):
        raise ValueError(f"rank must be an integer in [0, C-1] = [0, {num_classes - 1}], got {rank}")
    counts = (int(per_class),) * int(num_classes) if class_counts is None else tuple(int(c) for c in class_counts)
    return _random_initial_features(key, counts, int(dim), None if rank is None else int(rank), float(mean_scale))


@functools.partial(jax.jit, static_argnames=("counts", "dim", "rank", "mean_scale"))
def _random_initial_features(key, counts, dim, rank, mean_scale):
    k_noise, k_a, k_b = jax.random.split(key, 3)
    classes = len(counts)
    labels = labels_from_counts(counts)
    noise = jax.random.normal(k_noise, (sum(counts), dim), dtype=jnp.float64)
    if rank is None:
        means = jax.random.normal(k_a, (classes, dim), dtype=jnp.float64)
    else:
        a = jax.random.normal(k_a, (classes, rank), dtype=jnp.float64)
        b = jax.random.normal(k_b, (rank, dim), dtype=jnp.float64)
        a = a - a.mean(0)  # centred coefficients: Mbar = A B has rank <= rank
        means = a @ b / jnp.sqrt(max(rank, 1))
    # remove the noise's own class means so that the class means are exactly `means`
    noise = noise - class_means(noise, labels, classes)[labels]
    h = mean_scale * means[labels] + noise
    return theory.renormalize(h, theory.class_stats(h, labels, classes))
