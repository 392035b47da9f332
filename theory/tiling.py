"""Tiles: every ``C x C`` quantity in blocks of ``tile`` rows, so that memory stays bounded whatever ``C`` (math §2.3).

A ``C x C`` float64 matrix is 18.6 GiB at ``C = 50,000``.  The quantities over pairs of classes (cosines, the ETF
distance, CDNV, kernels) are reduced one ``tile x tile`` block at a time over the upper triangle of the symmetric
matrix, and the block results merge exactly (sums add; means and variances by Chan, Golub & LeVeque 1979), so a
tiled value equals the untiled one to rounding.  Memory: a few ``tile x tile`` temporaries (8 MiB each at
``tile = 1024``), or ``tile x C`` where a row needs all classes at once (the NCC argmin, the decomposition's rows).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import NamedTuple

from ._backend import Array, device_of

#: Rows per tile of a ``C x C`` computation (math §2.3): blocks of ``tile x tile`` (pairs) or ``tile x C`` entries.
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

    count: float  # type: ignore[assignment]  # a field named as the statistic; it shadows tuple.count by design
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


def upper_pairs(rows: Array, tile: int, xp, visit: Callable[[Array, Array | None, int, int, int], None]) -> None:
    """Visit the strict upper triangle ``c < c'`` of ``rows rows^T`` in ``tile x tile`` blocks.

    Block ``(i, j)`` (``j >= i``) is ``rows[lo_i:hi_i] @ rows[lo_j:hi_j].T``; a diagonal block (``j = i``) comes
    with its strict-upper 0/1 mask, the others (all their entries are pairs ``c < c'``) with ``None``.
    ``visit(block, mask, count, row0, col0)`` gets the block, the mask, the number of pairs in it, and the
    block's first row and first column.  Square blocks keep every temporary at ``tile^2`` entries (8 MiB at
    ``tile = 1024``): reused by the allocator, where ``tile x C`` slabs were fresh pages each time.
    """
    C = int(rows.shape[0])
    tiles = row_tiles(C, tile)
    for i, (lo, hi) in enumerate(tiles):
        head = rows[lo:hi]
        k = hi - lo
        if k > 1:
            idx = xp.arange(k, device=device_of(rows))
            mask = xp.astype(idx[:, None] < idx[None, :], xp.float64)
            visit(head @ head.T, mask, k * (k - 1) // 2, lo, lo)
        for lo2, hi2 in tiles[i + 1 :]:
            visit(head @ rows[lo2:hi2].T, None, k * (hi2 - lo2), lo, lo2)
