"""Input validation shared by the simulate modules (clear ValueErrors naming the problem).

Checks run only on concrete values; under ``jax.jit``/``vmap`` tracing they are skipped (a traced value cannot be
inspected), so validate at the public entry points before tracing.
"""

from __future__ import annotations

import jax
import numpy as np


def is_concrete(x) -> bool:
    """True when ``x`` holds concrete values (not a JAX tracer)."""
    leaves = jax.tree_util.tree_leaves(x)
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in leaves)


def check_sizes(classes: int, per_class: int, dim: int) -> None:
    """Sizes of the unconstrained-features model: C >= 2, N >= 2, p >= C-1 and Sigma_W invertible (p <= C(N-1))."""
    for name, v in (("classes", classes), ("per_class", per_class), ("dim", dim)):
        if int(v) != v:
            raise ValueError(f"{name} must be an integer, got {v!r}")
    if classes < 2:
        raise ValueError(f"need at least 2 classes (C >= 2), got classes={classes}")
    if per_class < 2:
        raise ValueError(
            f"need at least 2 examples per class (N >= 2) for an invertible within-class covariance Sigma_W, "
            f"got per_class={per_class}"
        )
    if dim < classes - 1:
        raise ValueError(
            f"feature dimension p={dim} < C-1={classes - 1}: the SNR matrix cannot have C-1 nonzero singular "
            "values (spec 6.4 needs p >= C-1)"
        )
    if dim > classes * (per_class - 1):
        raise ValueError(
            f"Sigma_W would be singular: rank(Sigma_W) <= n - C = C(N-1) = {classes * (per_class - 1)} < p={dim}; "
            "increase per_class or decrease dim"
        )


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


def check_features(features, labels, num_classes: int) -> None:
    """Finite features (n, p), labels (n,) in [0, C), balanced classes with >= 2 examples, invertible Sigma_W."""
    if not is_concrete((features, labels)):
        return
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"shape mismatch: features {x.shape} (n, p) and labels {y.shape} (n,)")
    if not np.all(np.isfinite(x)):
        raise ValueError("features contain non-finite values (NaN or Inf)")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels out of range [0, {num_classes})")
    counts = np.bincount(y, minlength=num_classes)
    if np.any(counts < 2):
        raise ValueError(f"every class needs >= 2 examples (N >= 2); class counts {counts.tolist()}")
    if np.any(counts != counts[0]):
        raise ValueError(f"the central-path dynamics assume balanced classes; class counts {counts.tolist()}")
    p = x.shape[1]
    if p < num_classes - 1:
        raise ValueError(f"feature dimension p={p} < C-1={num_classes - 1}")
    import theory

    ev = np.linalg.eigvalsh(np.asarray(theory.class_stats(x, y, num_classes).sigma_w))
    if ev[0] <= 1e-12 * max(ev[-1], np.finfo(float).tiny):
        raise ValueError(
            f"initial Sigma_W is singular (smallest/largest eigenvalue {ev[0]:.3e}/{ev[-1]:.3e}); "
            "the renormalised flow needs an invertible within-class covariance"
        )
