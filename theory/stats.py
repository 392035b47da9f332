"""Class statistics of last-layer features: the one definition used everywhere.

Spec sections 1 and 3.3b.  With ``n_c`` samples in class ``c``, ``n = sum_c n_c`` and
``pi_c = n_c / n``:

* class means ``mu_c = (1/n_c) sum_i h_{i,c}``;
* sample (count-weighted) global mean ``mu_G = sum_c pi_c mu_c``;
* pooled within-class covariance ``Sigma_W = (1/n) sum_{c,i} (h_{i,c}-mu_c)(h_{i,c}-mu_c)^T``
  (divisor ``n``, not ``n-1``);
* between-class covariance ``Sigma_B = sum_c pi_c (mu_c-mu_G)(mu_c-mu_G)^T``
  (``= (1/C) Mbar Mbar^T`` for balanced classes);
* total covariance ``Sigma_T = Sigma_W + Sigma_B``, exact for any class counts.

Everything is accumulated in float64 with GEMMs (one-hot matrix products), never per-sample
loops or ``B x p x p`` tensors.  :class:`ClassStatsAccumulator` streams batches and merges
partial results exactly with the pairwise update of Chan, Golub & LeVeque (1979):
for two groups with counts ``n_a, n_b``, means ``m_a, m_b`` and scatters ``S_a, S_b``,
``S = S_a + S_b + (n_a n_b / (n_a + n_b)) (m_b - m_a)(m_b - m_a)^T``.
"""

from __future__ import annotations

from typing import NamedTuple

from ._backend import Array, as_float64, device_of, gram, is_concrete, namespace
from ._validation import check_features_labels, check_labels, infer_num_classes


#: Row-block size for streaming large inputs through :func:`class_stats`.
CHUNK_ROWS = 4096


class ClassStats(NamedTuple):
    """Float64 class statistics (spec 1, 3.3b).  A NamedTuple, hence a JAX pytree.

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


def _batch_moments(features: Array, labels: Array, num_classes: int, xp):
    """Per-class counts, means (0 for absent classes) and pooled scatter of one batch.

    ``scatter = sum_{c,i} (h_{i,c} - m_c)(h_{i,c} - m_c)^T`` with the batch's own class means,
    computed as ``D^T D`` with ``D = H - Y^T M`` (one GEMM).
    """
    X = as_float64(features, xp)
    Y = _one_hot(labels, num_classes, xp)  # (n, C)
    counts = xp.sum(Y, axis=0)
    sums = Y.T @ X  # (C, p)
    safe = xp.where(counts > 0, counts, xp.ones_like(counts))
    means = sums / safe[:, None]
    D = X - Y @ means
    scatter = gram(D)
    return counts, means, scatter


def _merge_moments(a, b, xp):
    """Exact pairwise merge (Chan et al.) of ``(counts, means, scatter)`` triples."""
    n_a, m_a, s_a = a
    n_b, m_b, s_b = b
    n = n_a + n_b
    safe = xp.where(n > 0, n, xp.ones_like(n))
    delta = m_b - m_a
    means = m_a + delta * (n_b / safe)[:, None]
    w = n_a * n_b / safe
    scatter = s_a + s_b + (delta * w[:, None]).T @ delta
    return n, means, scatter


def _check_no_empty_class(counts: Array, xp) -> None:
    if not is_concrete(counts):
        return
    empty = [int(i) for i in range(counts.shape[0]) if float(counts[i]) == 0.0]
    if empty:
        raise ValueError(f"empty class: no samples for class(es) {empty}")


def _finalize(counts: Array, means: Array, scatter: Array, xp) -> ClassStats:
    """Turn counts, means and pooled scatter into :class:`ClassStats` (spec 3.3b)."""
    _check_no_empty_class(counts, xp)
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
    """Float64 class statistics of ``features (n, p)`` with integer ``labels (n,)`` (spec 1, 3.3b).

    ``num_classes`` defaults to ``max(labels) + 1``; every class must have a sample.
    Raises ``ValueError`` for NaN/Inf features, labels out of range, an empty class,
    fewer than 2 classes, or mismatched shapes.
    """
    xp = namespace(features, labels)
    check_features_labels(features, labels, xp)
    C = infer_num_classes(labels, xp, num_classes)
    check_labels(labels, xp, C)
    n = features.shape[0]
    if n <= CHUNK_ROWS or not is_concrete(features):  # one shot (and inside jax traces)
        return _finalize(*_batch_moments(features, labels, C, xp), xp)
    # Large inputs: stream row blocks (cache-sized float64 temporaries) and merge exactly.
    moments = None
    for lo in range(0, n, CHUNK_ROWS):
        batch = _batch_moments(features[lo : lo + CHUNK_ROWS], labels[lo : lo + CHUNK_ROWS], C, xp)
        moments = batch if moments is None else _merge_moments(moments, batch, xp)
    return _finalize(*moments, xp)


class ClassStatsAccumulator:
    """Streaming, mergeable float64 class statistics (spec 3.3b; Chan et al. pairwise update).

    ``update(features, labels)`` per batch, ``merge(other)`` to combine accumulators exactly
    (e.g. across DDP ranks), ``finalize()`` for :class:`ClassStats`.  ``state()`` /
    :meth:`from_state` expose ``counts``, ``means`` and the pooled within-class ``scatter``
    (``n * Sigma_W``) for transport.
    """

    def __init__(self, num_classes: int):
        if int(num_classes) < 2:
            raise ValueError(f"at least 2 classes are needed, got num_classes={num_classes}")
        self.num_classes = int(num_classes)
        self._moments = None
        self._xp = None

    @property
    def count(self) -> int:
        if self._moments is None:
            return 0
        return int(float(self._xp.sum(self._moments[0])))

    def update(self, features: Array, labels: Array) -> "ClassStatsAccumulator":
        xp = namespace(features, labels)
        check_features_labels(features, labels, xp)
        check_labels(labels, xp, self.num_classes)
        if self._moments is not None and features.shape[1] != self._moments[1].shape[1]:
            raise ValueError(
                f"shape mismatch: this accumulator holds {self._moments[1].shape[1]}-dim features, "
                f"got a batch of dimension {features.shape[1]}"
            )
        batch = _batch_moments(features, labels, self.num_classes, xp)
        self._xp = xp
        self._moments = batch if self._moments is None else _merge_moments(self._moments, batch, xp)
        return self

    def merge(self, other: "ClassStatsAccumulator") -> "ClassStatsAccumulator":
        if other.num_classes != self.num_classes:
            raise ValueError(
                f"cannot merge accumulators with {self.num_classes} and {other.num_classes} classes"
            )
        if other._moments is None:
            return self
        if self._moments is None:
            self._xp, self._moments = other._xp, other._moments
            return self
        if other._moments[1].shape[1] != self._moments[1].shape[1]:
            raise ValueError("shape mismatch: cannot merge accumulators of different feature dimensions")
        self._moments = _merge_moments(self._moments, other._moments, self._xp)
        return self

    def finalize(self) -> ClassStats:
        if self._moments is None:
            raise ValueError("no samples accumulated: call update() before finalize()")
        return _finalize(*self._moments, self._xp)

    def state(self) -> dict:
        if self._moments is None:
            raise ValueError("no samples accumulated: the state of an empty accumulator is undefined")
        counts, means, scatter = self._moments
        return {"counts": counts, "means": means, "scatter": scatter}

    @classmethod
    def from_state(cls, num_classes: int, state: dict) -> "ClassStatsAccumulator":
        acc = cls(num_classes)
        xp = namespace(state["counts"], state["means"], state["scatter"])
        counts = as_float64(state["counts"], xp)
        if counts.shape[0] != acc.num_classes:
            raise ValueError(f"state has {counts.shape[0]} classes, expected {acc.num_classes}")
        acc._xp = xp
        acc._moments = (counts, as_float64(state["means"], xp), as_float64(state["scatter"], xp))
        return acc
