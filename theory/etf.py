"""The Simplex ETF (math §1): columns of ``sqrt(C/(C-1)) U J``, ``U^T U = I``, ``J = I - (1/C) 1 1^T``."""

from __future__ import annotations

import numpy as np


def _centering(C: int) -> np.ndarray:
    """``J = I - (1/C) 1 1^T``, the projection onto ``1^perp`` (math §1)."""
    return np.eye(C) - 1.0 / C


def etf_gram(num_classes: int, normalize: str = "unit") -> np.ndarray:
    """Gram matrix of a Simplex ETF.

    ``normalize="unit"``: ``(C/(C-1)) J`` — unit diagonal, off-diagonal ``-1/(C-1)``;
    ``normalize="trace"``: ``J/(C-1)`` — the limit of ``Mbar^T Mbar / ||Mbar||_F^2`` (math §9 item 22).
    """
    C = int(num_classes)
    if C < 2:
        raise ValueError(f"a Simplex ETF needs at least 2 classes, got {C}")
    J = _centering(C)
    if normalize == "unit":
        return J * C / (C - 1)
    if normalize == "trace":
        return J / (C - 1)
    raise ValueError(f"unknown normalize {normalize!r}; use 'unit' or 'trace'")


def simplex_etf(num_classes: int, dim: int, seed: int | None = None) -> np.ndarray:
    """``(C, p)`` rows forming a Simplex ETF in ``R^p`` (unit norms, cosines ``-1/(C-1)``); needs ``p >= C-1``.

    Built as ``sqrt(C/(C-1)) J Q`` with ``Q (C, C-1)`` an orthonormal basis of ``1^perp``, then
    embedded in ``R^p`` by a fixed (``seed=None``) or random orthonormal map.
    """
    C, p = int(num_classes), int(dim)
    if p < C - 1:
        raise ValueError(f"a Simplex ETF of {C} classes needs dimension p >= C-1 = {C - 1}, got {p}")
    J = _centering(C)
    evals, evecs = np.linalg.eigh(J)
    Q = evecs[:, 1:]  # eigenvalue 1 eigenvectors span 1^perp (eigenvalue 0 first)
    rows = np.sqrt(C / (C - 1)) * (J @ Q)  # (C, C-1)
    if seed is None:
        embed = np.eye(C - 1, p)
    else:
        rng = np.random.default_rng(seed)
        embed = np.linalg.qr(rng.standard_normal((p, C - 1)))[0].T
    return rows @ embed
