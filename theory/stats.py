"""Class statistics of last-layer features, the one definition used everywhere (math §1, §3.3b).

Counts, class means, the count-weighted global mean ``mu_G``, ``Sigma_W`` (divisor ``n``), ``Sigma_B`` and
``Sigma_T = Sigma_W + Sigma_B``, in float64 with matrix products (BLAS ``syrk`` for the scatter), never per-sample
loops.  :class:`ClassStatsAccumulator` streams batches and merges accumulators exactly (Chan, Golub & LeVeque 1979).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from array_api_compat import is_numpy_array, is_torch_array

from ._backend import (
    Array,
    as_float64,
    device_of,
    gram,
    gram_accumulate,
    host_block_rows,
    host_threads_for_blas,
    is_concrete,
    namespace,
    on_host,
    symmetric_from_upper,
    to_list,
    zeros_gram,
)
from ._validation import (
    check_features_labels,
    check_finite_result,
    check_labels,
    check_num_classes,
    infer_num_classes,
)
from .tiling import DEFAULT_TILE

#: Inputs longer than this go through :class:`ClassStatsAccumulator` in :func:`class_stats`.
CHUNK_ROWS = 4096


class ClassStats(NamedTuple):
    """Float64 class statistics (math §1, §3.3b).  A NamedTuple, hence a JAX pytree.

    Fields: ``counts (C,)``, ``means (C, p)`` (row ``c`` is ``mu_c``), ``global_mean (p,)``
    (count-weighted ``mu_G``), ``sigma_w``, ``sigma_b``, ``sigma_t`` (each ``(p, p)``).
    """

    counts: Array
    means: Array
    global_mean: Array
    sigma_w: Array
    sigma_b: Array
    sigma_t: Array

    @property
    def num_classes(self) -> int:
        return int(self.means.shape[0])

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    @property
    def n(self) -> Array:
        """Total number of samples ``n = sum_c n_c`` (0-d array)."""
        xp = namespace(self.counts)
        return xp.sum(self.counts)

    @property
    def weights(self) -> Array:
        """Class proportions ``pi_c = n_c / n``."""
        xp = namespace(self.counts)
        return self.counts / xp.sum(self.counts)

    @property
    def centered_means(self) -> Array:
        """``Mbar^T``: rows ``mu_c - mu_G`` (shape ``(C, p)``)."""
        return self.means - self.global_mean[None, :]


def _one_hot(labels: Array, num_classes: int, xp) -> Array:
    """``(n, C)`` float64 indicator matrix ``Y^T`` of the labels."""
    classes = xp.arange(num_classes, device=device_of(labels))
    return xp.astype(labels[:, None] == classes[None, :], xp.float64)


def _class_counts(labels: Array, num_classes: int, xp) -> Array:
    """``(C,)`` float64 label counts: ``bincount`` for NumPy and torch, :func:`_class_sums` of ones elsewhere."""
    if is_torch_array(labels):
        import torch

        return torch.bincount(labels, minlength=num_classes).to(torch.float64)
    if is_numpy_array(labels):
        import numpy as np

        return np.bincount(labels, minlength=num_classes).astype(np.float64)
    ones = xp.ones((int(labels.shape[0]), 1), dtype=xp.float64, device=device_of(labels))
    return _class_sums(ones, labels, num_classes, xp)[:, 0]


def _class_sums(X: Array, labels: Array, num_classes: int, xp) -> Array:
    """``(C, p)`` row sums per class in ``O(n p)`` work on the host, whatever ``C`` (math §2.3).

    CPU torch: ``index_add_`` (one pass, no GEMM); NumPy: the sparse ``C x n`` indicator times ``X``
    (SciPy); elsewhere (GPU tensors, JAX) the one-hot product ``Y X`` in row blocks of bounded size
    (deterministic on GPUs, where ``index_add_`` uses atomics), ``max(tile, tile^2 / C)`` rows per block."""
    if is_torch_array(X) and X.device.type == "cpu":
        import torch

        out = torch.zeros((num_classes, X.shape[1]), dtype=X.dtype, device=X.device)
        return out.index_add_(0, labels, X)
    if is_numpy_array(X):
        import numpy as np
        import scipy.sparse

        n = int(X.shape[0])
        indicator = scipy.sparse.csr_array((np.ones(n), labels, np.arange(n + 1)), shape=(n, num_classes))
        return np.asarray(indicator.T @ X)
    step = max(DEFAULT_TILE, (DEFAULT_TILE * DEFAULT_TILE) // num_classes)
    total = xp.zeros((num_classes, int(X.shape[1])), dtype=X.dtype, device=device_of(X))
    for lo in range(0, int(X.shape[0]), step):
        total = total + _one_hot(labels[lo : lo + step], num_classes, xp).T @ X[lo : lo + step]
    return total


def _batch_moments(features: Array, labels: Array, num_classes: int, xp):
    """Per-class counts, means (0 for absent classes) and pooled scatter of one batch.

    ``scatter = sum_{c,i} (h_{i,c} - m_c)(h_{i,c} - m_c)^T`` with the batch's own class means,
    computed as ``D^T D`` with ``D = H - M[y]`` (:func:`theory._backend.gram`: BLAS ``syrk`` on the host; no ``n x C``
    indicator).
    """
    X = as_float64(features, xp)
    counts = _class_counts(labels, num_classes, xp)
    sums = _class_sums(X, labels, num_classes, xp)  # (C, p)
    safe = xp.where(counts > 0, counts, xp.ones_like(counts))
    means = sums / safe[:, None]
    D = X - xp.take(means, labels, axis=0)
    scatter = gram(D)
    return counts, means, scatter


def _finalize(counts: Array, means: Array, scatter: Array, xp) -> ClassStats:
    """Turn counts, means and pooled scatter into :class:`ClassStats` (math §3.3b)."""
    if is_concrete(counts):
        empty = [i for i, v in enumerate(to_list(counts)) if v == 0.0]  # one device-to-host copy
        if empty:
            raise ValueError(f"empty class: no samples for class(es) {empty}")
    n = xp.sum(counts)
    pi = counts / n
    global_mean = pi @ means
    centered = means - global_mean[None, :]
    weighted = centered * xp.sqrt(pi)[:, None]
    sigma_w = scatter / n
    sigma_w = (sigma_w + sigma_w.T) / 2
    sigma_b = weighted.T @ weighted
    return ClassStats(counts, means, global_mean, sigma_w, sigma_b, sigma_w + sigma_b)


def class_stats(features: Array, labels: Array, num_classes: int | None = None) -> ClassStats:
    """Float64 class statistics of ``features (n, p)`` with integer ``labels (n,)`` (math §1, §3.3b).

    ``num_classes`` defaults to ``max(labels) + 1``; every class must have a sample.
    Raises ``ValueError`` for NaN/Inf features, labels out of range, an empty class,
    fewer than 2 classes, or mismatched shapes.
    """
    xp = namespace(features, labels)
    C = infer_num_classes(labels, xp, num_classes)
    n = features.shape[0]
    if n <= CHUNK_ROWS or not is_concrete(features):  # one shot (and inside jax traces)
        check_features_labels(features, labels, xp)
        check_labels(labels, xp, C)
        counts, means, scatter = _batch_moments(features, labels, C, xp)
        return _finalize(counts, means, scatter, xp)
    # Large inputs: the streaming accumulator (cache-sized float64 blocks, in-place syrk), which
    # validates each block itself (NaN/Inf from its class sums: no separate pass over the data).
    return ClassStatsAccumulator(C).update(features, labels).finalize()


class ClassStatsAccumulator:
    """Streaming, mergeable float64 class statistics (math §3.3b).

    ``update(features, labels)`` per batch, ``merge(other)`` to combine accumulators exactly
    (e.g. across DDP ranks), ``finalize()`` for :class:`ClassStats`.  ``state()`` /
    :meth:`from_state` expose ``counts``, ``means`` and the pooled within-class ``scatter``
    (``n * Sigma_W``) for transport.

    Within one accumulator the data are shifted by a fixed per-class reference ``r_c`` (the mean of class ``c``
    in the first batch that holds it): with ``d_i = h_i - r_{y_i}``, ``s_c = sum_{i in c} d_i`` and
    ``S = sum_i d_i d_i^T``, the pooled scatter is ``S - sum_c s_c s_c^T / n_c`` and ``mu_c = r_c + s_c / n_c``
    (the correction is a small fraction of ``S``: no precision is lost).  Each batch costs one in-place BLAS
    ``syrk`` update of ``S`` (:func:`theory._backend.gram_accumulate`) and a class-wise row sum, in host row
    blocks that stay in cache (:func:`theory._backend.host_block_rows`).
    """

    def __init__(self, num_classes: int):
        self.num_classes = check_num_classes(num_classes)
        self._xp = None
        self._counts = None  # (C,) float64
        self._ref = None  # (C, p) per-class shift r_c
        self._sums = None  # (C, p) sum over class c of (h - r_c)
        self._scatter: Any = None  # (p, p): upper triangle of sum (h - r_y)(h - r_y)^T
        self._has_ref: list[bool] = [False] * self.num_classes

    @property
    def count(self) -> int:
        if self._counts is None:
            return 0
        return int(float(self._xp.sum(self._counts)))

    @property
    def dim(self) -> int | None:
        return None if self._ref is None else int(self._ref.shape[1])

    def _start(self, p: int, xp, like: Array) -> None:
        C = self.num_classes
        self._xp = xp
        # as_float64 refuses backends without float64 (JAX without x64) with a clear error
        self._counts = as_float64(xp.zeros((C,), device=device_of(like)), xp)
        self._ref = xp.zeros((C, p), dtype=xp.float64, device=device_of(like))
        self._sums = xp.zeros((C, p), dtype=xp.float64, device=device_of(like))
        self._scatter = zeros_gram(p, xp, like)
        self._has_ref = [False] * C

    def update(self, features: Array, labels: Array) -> ClassStatsAccumulator:
        xp = namespace(features, labels)
        check_features_labels(features, labels, xp, finite=False)  # NaN/Inf: from the class sums, below
        check_labels(labels, xp, self.num_classes)
        p = int(features.shape[1])
        if self._ref is not None and p != self.dim:
            raise ValueError(
                f"shape mismatch: this accumulator holds {self.dim}-dim features, got a batch of dimension {p}"
            )
        if self._ref is None:
            self._start(p, xp, features)
        elif xp is not self._xp or device_of(features) != device_of(self._ref):
            raise ValueError(
                f"this accumulator holds {self._xp.__name__} arrays on {device_of(self._ref)}; got a batch of "
                f"{xp.__name__} arrays on {device_of(features)} (convert the batch first)"
            )
        if features.dtype not in (xp.float32, xp.float64):
            features = as_float64(features, xp)
        n = int(features.shape[0])
        step = host_block_rows(features) or max(n, 1)
        with host_threads_for_blas(features):
            for lo in range(0, n, step):
                self._update_block(features[lo : lo + step], labels[lo : lo + step], xp)
        return self

    def _update_block(self, X: Array, y: Array, xp) -> None:
        C = self.num_classes
        counts = _class_counts(y, C, xp)
        ref, new = self._ref, []
        if not all(self._has_ref):
            fresh = [float(v) > 0 and not had for v, had in zip(to_list(counts), self._has_ref)]  # first seen here
            new = [c for c in range(C) if fresh[c]]
            if new:
                safe = xp.where(counts > 0, counts, xp.ones_like(counts))
                means = _class_sums(as_float64(X, xp), y, C, xp) / safe[:, None]
                ref = xp.where(xp.asarray(fresh, device=device_of(counts))[:, None], means, ref)
        shift = xp.take(ref, y, axis=0)
        if X.dtype == xp.float64:
            D = X - shift  # never modify the caller's array
        else:  # a fresh float64 copy, shifted in place (a promoting subtraction is ~3x slower in torch)
            D = as_float64(X, xp)
            D -= shift
        sums = _class_sums(D, y, C, xp)
        check_finite_result(sums, X, xp)  # before anything is stored: a bad batch leaves the state intact
        self._ref = ref
        for c in new:
            self._has_ref[c] = True
        self._counts = self._counts + counts
        self._sums = self._sums + sums
        self._scatter = gram_accumulate(self._scatter, D)

    def _moments(self):
        """``(counts, means, scatter)`` of everything accumulated (scatter symmetric)."""
        xp = self._xp
        safe = xp.where(self._counts > 0, self._counts, xp.ones_like(self._counts))
        means = self._ref + self._sums / safe[:, None]
        scaled = self._sums / xp.sqrt(safe)[:, None]
        scatter = symmetric_from_upper(self._scatter, xp) - scaled.T @ scaled
        return self._counts, means, scatter

    def _set_moments(self, counts: Array, means: Array, scatter: Array, xp) -> None:
        """Restart from exact moments: reference = the means, shifted sums zero."""
        self._start(int(means.shape[1]), xp, means)
        self._counts = counts
        self._ref = xp.where((counts > 0)[:, None], means, xp.zeros_like(means))
        self._has_ref = [float(v) > 0 for v in to_list(counts)]
        if on_host(self._scatter):
            self._scatter[...] = scatter
        else:
            self._scatter = scatter

    def merge(self, other: ClassStatsAccumulator) -> ClassStatsAccumulator:
        if other.num_classes != self.num_classes:
            raise ValueError(
                f"cannot merge accumulators with {self.num_classes} and {other.num_classes} classes"
            )
        if other._counts is None:
            return self
        if self._counts is None:
            self._set_moments(*other._moments(), other._xp)
            return self
        if other.dim != self.dim:
            raise ValueError("shape mismatch: cannot merge accumulators of different feature dimensions")
        # exact pairwise merge of (counts, means, scatter) (Chan et al.)
        xp = self._xp
        (n_a, m_a, s_a), (n_b, m_b, s_b) = self._moments(), other._moments()
        n = n_a + n_b
        safe = xp.where(n > 0, n, xp.ones_like(n))
        delta = m_b - m_a
        w = n_a * n_b / safe
        self._set_moments(n, m_a + delta * (n_b / safe)[:, None], s_a + s_b + (delta * w[:, None]).T @ delta, xp)
        return self

    def finalize(self) -> ClassStats:
        if self._counts is None:
            raise ValueError("no samples accumulated: call update() before finalize()")
        return _finalize(*self._moments(), self._xp)

    def state(self) -> dict:
        if self._counts is None:
            raise ValueError("no samples accumulated: the state of an empty accumulator is undefined")
        counts, means, scatter = self._moments()
        return {"counts": counts, "means": means, "scatter": scatter}

    @classmethod
    def from_state(cls, num_classes: int, state: dict) -> ClassStatsAccumulator:
        acc = cls(num_classes)
        xp = namespace(state["counts"], state["means"], state["scatter"])
        counts = as_float64(state["counts"], xp)
        if counts.shape[0] != acc.num_classes:
            raise ValueError(f"state has {counts.shape[0]} classes, expected {acc.num_classes}")
        acc._set_moments(counts, as_float64(state["means"], xp), as_float64(state["scatter"], xp), xp)
        return acc
