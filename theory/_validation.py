"""Input validation with messages that name the problem (docs/index.md)."""

from __future__ import annotations

import argparse

from ._backend import Array, is_concrete, to_bool


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line, ``PROG: error: argument --dim: ...``, and exit status 2 (the CLIs')."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


class NonFiniteError(ValueError):
    """An input holds NaN/Inf (or gives non-finite float64 sums): e.g. the features of a network whose
    weights have diverged.  A ``ValueError``; callers that train networks catch it to stop a diverged run."""


def check_finite(x: Array, xp, name: str) -> None:
    """Raise if ``x`` holds NaN/Inf.  One reduction first (NaN/Inf propagate through a sum);
    only when the sum is not finite (or overflowed) is the elementwise test run."""
    if not is_concrete(x):
        return
    total = xp.sum(x)
    if to_bool(xp.isfinite(total)) in (True, None):
        return
    bad = to_bool(xp.any(~xp.isfinite(x)))
    if bad:
        raise NonFiniteError(f"{name} contains NaN or Inf values")


def check_features_labels(features: Array, labels: Array, xp, finite: bool = True) -> None:
    """Shapes of ``features (n, p)`` and ``labels (n,)``; with ``finite``, no NaN/Inf in the features
    (callers that detect non-finite values more cheaply from a reduction they compute anyway
    pass ``finite=False`` and call :func:`check_finite_result`)."""
    if len(features.shape) != 2:
        raise ValueError(f"features must be a 2-D array (n, p) with samples as rows, got shape {tuple(features.shape)}")
    if len(labels.shape) != 1:
        raise ValueError(f"labels must be a 1-D array (n,), got shape {tuple(labels.shape)}")
    if features.shape[0] != labels.shape[0]:
        raise ValueError(
            f"shape mismatch: features have {features.shape[0]} rows but labels have {labels.shape[0]} entries"
        )
    if finite:
        check_finite(features, xp, "features")


def check_finite_result(result: Array, features: Array, xp) -> None:
    """Raise if ``result`` (a reduction over ``features``, e.g. per-class sums or squared residuals) is
    not finite: NaN/Inf in the features always reach such sums (``Inf - Inf``, ``0 * Inf`` and
    anything with NaN give NaN), so the elementwise scan runs only then, to name the problem."""
    if not is_concrete(result):
        return
    if to_bool(xp.all(xp.isfinite(result))) in (True, None):
        return
    check_finite(features, xp, "features")
    raise NonFiniteError("features give non-finite sums (values too large for float64?)")


def infer_num_classes(labels: Array, xp, num_classes: int | None) -> int:
    if num_classes is None:
        if labels.shape[0] == 0:
            raise ValueError("cannot infer num_classes from an empty label array")
        top = xp.max(labels)
        if not (is_concrete(labels) and is_concrete(top)):
            raise ValueError("num_classes must be given when labels are traced (inside jit/vmap)")
        num_classes = int(top) + 1
    return check_num_classes(num_classes)


def check_num_classes(num_classes: int) -> int:
    """``int(num_classes)``, raising unless it is at least 2."""
    value = int(num_classes)
    if value < 2:
        raise ValueError(f"at least 2 classes are needed, got num_classes={num_classes}")
    return value


def check_labels(labels: Array, xp, num_classes: int) -> None:
    if not is_concrete(labels) or labels.shape[0] == 0:
        return
    lo, hi = xp.min(labels), xp.max(labels)
    if not (is_concrete(lo) and is_concrete(hi)):  # e.g. constants captured inside jax.jit
        return
    lo, hi = int(lo), int(hi)
    if lo < 0 or hi >= num_classes:
        raise ValueError(f"labels out of range: found labels in [{lo}, {hi}] but num_classes={num_classes}")


def check_classifier(W: Array, b: Array | None, num_classes: int, dim: int, xp) -> None:
    if len(W.shape) != 2 or W.shape[0] != num_classes or W.shape[1] != dim:
        raise ValueError(
            f"shape mismatch: W must have shape (C, p) = ({num_classes}, {dim}), got {tuple(W.shape)}"
        )
    check_finite(W, xp, "W")
    if b is not None:
        if tuple(b.shape) != (num_classes,):
            raise ValueError(f"shape mismatch: b must have shape (C,) = ({num_classes},), got {tuple(b.shape)}")
        check_finite(b, xp, "b")


def check_ddof(ddof, name: str = "ddof") -> int:
    """``ddof``, raising unless it is a non-negative integer."""
    if isinstance(ddof, bool) or not isinstance(ddof, int) or ddof < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {ddof!r}")
    return ddof


def check_lam(lam: float) -> None:
    try:
        value = float(lam)
    except TypeError:  # traced lam: cannot check
        return
    if not value >= 0.0:
        raise ValueError(f"the ridge coefficient lam must be >= 0, got {lam}")
