"""Tiles: every ``C x C`` quantity in blocks of ``tile`` rows, so that memory stays ``O(tile * C)`` (math §2.3).

``C`` in the tens of thousands (language models, ImageNet-scale classification) makes a ``C x C`` float64
matrix 18.6 GiB at ``C = 50,000``.  The class statistics are ``O(Cp + p^2)``; the quantities over pairs of
classes (cosines, the ETF distance, CDNV, kernels, the NCC rule) are reduced here one block of ``tile``
rows at a time, ``rows[lo:hi] @ rows[lo:].T`` (only the upper triangle of a symmetric matrix: half the
products), and the block results are combined exactly: sums add, and means and variances merge with the
pairwise update of Chan, Golub & LeVeque (1979), so a tiled value equals the untiled one to rounding.

Memory: a few float64 temporaries of ``tile x C`` entries (``tile = 1024``, ``C = 50,000``: 0.4 GB each).
"""

from __future__ import annotations

import numbers
from typing import Callable, NamedTuple

from ._backend import Array, device_of

#: Rows per tile of a ``C x C`` computation (math §2.3): each float64 temporary holds at most ``tile * C`` entries.
DEFAULT_TILE = 1024


def check_tile(tile) -> int:
    """``int(tile)``, or ``ValueError`` naming ``tile`` unless it is a positive integer."""
    if isinstance(tile, bool) or not isinstance(tile, numbers.Integral) or tile < 1:
        raise ValueError(f"tile must be a positive integer (rows per tile of a C x C computation), got {tile!r}")
    return int(tile)


def row_tiles(n: int, tile: int) -> list[tuple[int, int]]:
    """``[(lo, hi), ...]`` covering ``range(n)`` in blocks of at most ``tile`` rows."""
    return [(lo, min(lo + tile, n)) for lo in range(0, n, tile)]


class Moments(NamedTuple):
    """Count, mean and sum of squared deviations of a set of values (mergeable: :func:`merge_moments`)."""

    count: float
    mean: Array
    m2: Array


def block_moments(values: Array, weights: Array | None, count: int, xp) -> Moments:
    """:class:`Moments` of the entries of ``values`` selected by the 0/1 ``weights`` (all when ``None``),
    ``count`` of them; two passes over the block (the mean, then the squared deviations)."""
    if weights is None:
        mean = xp.sum(values) / count
        dev = values - mean
    else:
        mean = xp.sum(values * weights) / count
        dev = (values - mean) * weights
    m2 = xp.linalg.vector_norm(dev)  # over all entries: one read, no squared temporary
    return Moments(float(count), mean, m2 * m2)


def merge_moments(a: Moments | None, b: Moments) -> Moments:
    """Chan et al.'s exact merge: ``m2 = m2_a + m2_b + delta^2 n_a n_b / (n_a + n_b)``, ``delta = mean_b - mean_a``."""
    if a is None or a.count == 0:
        return b
    if b.count == 0:
        return a
    n = a.count + b.count
    delta = b.mean - a.mean
    return Moments(n, a.mean + delta * (b.count / n), a.m2 + b.m2 + delta * delta * (a.count * b.count / n))


def moments_std(m: Moments, xp, ddof: int = 1) -> Array:
    """``sqrt(m2 / max(count - ddof, 1))`` (``ddof = 1``: the unbiased variance, zero for a single value)."""
    return xp.sqrt(m.m2 / max(m.count - ddof, 1))


def upper_pairs(rows: Array, tile: int, xp, visit: Callable[[Array, Array | None, int, int, int], None]) -> None:
    """Visit the strict upper triangle ``c < c'`` of ``rows rows^T`` in blocks of at most ``tile`` rows.

    For each row tile ``[lo, hi)`` two blocks are visited: the square ``rows[lo:hi] @ rows[lo:hi].T`` with its
    strict-upper 0/1 mask, and the rectangle ``rows[lo:hi] @ rows[hi:].T`` (all its entries are pairs
    ``c < c'``, no mask).  ``visit(block, mask, count, lo, col0)`` gets the block, the mask (``None`` for a
    rectangle), the number of pairs in it, its first row and its first column.
    """
    C = int(rows.shape[0])
    for lo, hi in row_tiles(C, tile):
        head = rows[lo:hi]
        square = head @ head.T
        k = hi - lo
        idx = xp.arange(k, device=device_of(rows))
        mask = xp.astype(idx[:, None] < idx[None, :], xp.float64)
        if k > 1:
            visit(square, mask, k * (k - 1) // 2, lo, lo)
        if hi < C:
            visit(head @ rows[hi:].T, None, k * (C - hi), lo, hi)
