"""Input validation shared by the simulate modules (clear ValueErrors naming the problem).

Checks run only on concrete values; under ``jax.jit``/``vmap`` tracing they are skipped (a traced value cannot be
inspected), so validate at the public entry points before tracing.
"""

from __future__ import annotations

import jax
import numpy as np

import theory
from theory._backend import is_concrete as _leaf_is_concrete


def is_concrete(x) -> bool:
    """True when no leaf of the pytree ``x`` is a JAX tracer (``theory._backend.is_concrete`` per leaf)."""
    return all(_leaf_is_concrete(leaf) for leaf in jax.tree_util.tree_leaves(x))


class SizeError(ValueError):
    """A size rule of :func:`check_sizes` broken; ``argument`` and ``requirement`` say it in the CLI's words."""

    def __init__(self, message: str, argument: str, requirement: str):
        super().__init__(message)
        self.argument, self.requirement = argument, requirement


def check_sizes(num_classes: int, per_class: int, dim: int, class_counts=None) -> None:
    """Sizes of the unconstrained-features model: C >= 2, N >= 2, p >= C-1 and Sigma_W invertible (p <= C(N-1)).

    With ``class_counts`` (C integers, unequal: the free flow) every count must be >= 2 and p <= n - C.
    A broken rule of counts or ``dim`` raises :class:`SizeError`."""
    for name, v in (("num_classes", num_classes), ("per_class", per_class), ("dim", dim)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer)) or int(v) != v:
            raise ValueError(f"{name} must be an integer, got {v!r}")
    classes = num_classes
    if classes < 2:
        raise ValueError(f"need at least 2 classes (C >= 2), got num_classes={classes}")
    counts = [per_class] * classes if class_counts is None else list(class_counts)
    if min(counts) < 2:
        what = f"per_class={per_class}" if class_counts is None else f"class_counts={counts}"
        raise SizeError(f"need at least 2 examples per class (N >= 2) for an invertible within-class covariance "
                        f"Sigma_W, got {what}", "class-counts", f"every class needs >= 2 samples, got {counts}")
    if dim < classes - 1:
        raise SizeError(f"feature dimension p={dim} < C-1={classes - 1}: the SNR matrix cannot have C-1 nonzero "
                        "singular values (math §6.4 needs p >= C-1)", "dim",
                        f"must be >= C-1 = {classes - 1} (the SNR matrix has C-1 singular values), got {dim}")
    room = sum(counts) - classes
    if dim > room:
        bound = "C(N-1)" if class_counts is None else "n - C"
        why = ("every flow starts on X_set (Sigma_W = I_p, math §5.2, §6.1), and the within-class deviations of n "
               "samples in C classes span at most n - C dimensions")
        raise SizeError(f"dim={dim} > {bound} = {room}: Sigma_W would be singular: {why}; increase per_class or "
                        f"decrease dim", "dim", f"must be <= {bound} = {room}, got {dim}: {why} (raise --per-class "
                        "or lower --dim)")


def check_times(times) -> None:
    """Times must be a finite, strictly increasing 1-D array with at least 2 entries."""
    if not is_concrete(times):
        return
    t = np.asarray(times, dtype=np.float64)
    if t.ndim != 1 or t.size < 2:
        raise ValueError(f"times must be a 1-D array with at least 2 entries, got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError("times contain non-finite values (NaN or Inf)")
    if not np.all(np.diff(t) > 0):
        raise ValueError("times must be strictly increasing")


def check_omega0(omega0) -> None:
    """Initial SNR singular values: finite and >= 0."""
    if not is_concrete(omega0):
        return
    w = np.asarray(omega0, dtype=np.float64)
    if not np.all(np.isfinite(w)):
        raise ValueError("omega0 contains non-finite values (NaN or Inf)")
    if np.any(w < 0):
        raise ValueError("omega0 must be >= 0 (singular values)")


def check_features(stats, *, balanced: bool = True) -> None:
    """Simulate-specific conditions on ``theory.class_stats`` output (which already rejected bad shapes, non-finite
    features and out-of-range labels): balanced classes (unless ``balanced`` is false: the free flow takes any
    counts), :func:`check_sizes` of its counts and dimension, and an invertible Sigma_W
    (``theory.inverse_sqrt_within`` raises on a singular one)."""
    if not is_concrete(stats.counts):
        return
    counts = [int(c) for c in np.asarray(stats.counts)]
    if balanced and len(set(counts)) != 1:
        raise ValueError(f"the central-path dynamics assume balanced classes; class counts {counts}")
    check_sizes(stats.num_classes, counts[0], stats.dim, counts)
    if is_concrete(stats.sigma_w):
        theory.inverse_sqrt_within(stats)
