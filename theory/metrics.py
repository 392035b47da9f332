"""NC1-NC4 and the central-path distance (math §2.1, §2.2, §4), under the ``"paper"`` or the authors'
``"notebook"`` convention of centring and weighting (math §2.2, §8)."""

from __future__ import annotations

from array_api_compat import is_numpy_array, is_torch_array

from ._backend import EPS, Array, as_float64, is_concrete, namespace, to_bool, to_float, to_list
from ._validation import check_classifier, check_ddof, check_lam
from .decomposition import decompose
from .least_squares import ON_SINGULAR
from .outputs import sample_totals
from .stats import ClassStats
from .tiling import DEFAULT_TILE, block_moments, check_tile, merge_moments, upper_pairs

CONVENTIONS = ("paper", "notebook")


def _centered(stats: ClassStats, convention: str, xp) -> tuple[Array, Array]:
    """Centred means (rows ``mu_c - mu_G``) and the class weights of ``Sigma_B``."""
    if convention == "paper":
        return stats.centered_means, stats.weights
    if convention == "notebook":
        C = stats.num_classes
        mu = xp.mean(stats.means, axis=0)
        return stats.means - mu[None, :], xp.ones_like(stats.counts) / C
    raise ValueError(f"unknown convention {convention!r}; choose one of {CONVENTIONS}")


def _right_factor(B: Array) -> Array:
    """``R (p x p)`` with ``R^T R = B^T B`` (the triangular factor of ``B = QR``) when ``B`` is tall (``C > p``) on
    NumPy or torch, else ``B``: same singular values and right singular vectors, without the ``C x p`` factor
    that a thin SVD of ``B`` builds (math §2.3)."""
    C, p = int(B.shape[0]), int(B.shape[1])
    if C <= p:
        return B
    if is_numpy_array(B):
        import numpy as np

        return np.linalg.qr(B, mode="r")
    if is_torch_array(B):
        import torch

        return torch.linalg.qr(B, mode="r")[1]
    return B


def nc1_trace(stats: ClassStats, convention: str = "paper") -> tuple[Array, Array]:
    """``Tr(Sigma_W Sigma_B^+)`` and the rank used for the pseudo-inverse (math §2.1, §2.2).

    ``Sigma_B = B^T B`` with ``B = diag(sqrt(w_c)) Mbar^T`` (``C x p``).  From the thin SVD
    ``B = U diag(s) V^T`` (taken as the SVD of ``B``'s triangular factor ``R`` when ``C > p``: the same ``s`` and
    ``V``), ``Sigma_B^+ = V diag(s^-2) V^T`` on the singular values above
    ``max(C, p) * eps * s_max`` (NumPy's ``pinv`` rule), so
    ``Tr(Sigma_W Sigma_B^+) = sum_j v_j^T Sigma_W v_j / s_j^2`` — linear in ``Sigma_W``, hence
    accurate near collapse, and never a ``p x p`` pseudo-inverse.
    """
    xp = namespace(stats.means)
    centered, w = _centered(stats, convention, xp)
    B = xp.sqrt(w)[:, None] * centered
    _, s, Vt = xp.linalg.svd(_right_factor(B), full_matrices=False)
    tol = max(B.shape) * EPS * xp.max(s)
    keep = s > tol
    safe = xp.where(keep, s, xp.ones_like(s))
    quad = xp.sum((Vt @ stats.sigma_w) * Vt, axis=1)
    value = xp.sum(xp.where(keep, quad / (safe * safe), xp.zeros_like(s)))
    return value, xp.sum(xp.astype(keep, xp.float64))


def equinorm(rows: Array, xp) -> Array:
    """``std_c ||r_c|| / avg_c ||r_c||`` with the unbiased std (notebook's ``torch.std``, math §2.2)."""
    norms = xp.linalg.vector_norm(rows, axis=1)
    return xp.std(norms, correction=1) / xp.mean(norms)


def pair_statistics(
    rows: Array, xp, *, cosines: bool = True, etf: bool = False, tile: int = DEFAULT_TILE, ddof: int = 1
) -> dict:
    """The ``C x C`` quantities of NC2 in one tiled pass over ``rows rows^T`` (math §2.1, §2.3).

    Over the ``m = C(C-1)/2`` pairs ``c < c'`` of cosines ``cos_cc'``:

    * ``cosines``: ``"equiangular"``, their std with divisor ``m - ddof`` (``ddof = 1``: unbiased, the toolkit's
      convention; the divisor is at least 1), and ``"maxangle"``, ``(1/m) sum_{c<c'} |cos_cc' + 1/(C-1)|``;
    * ``etf``: ``"etf_distance"``, ``||G/||G||_F - J/||J||_F||_F`` with ``G = rows rows^T``.

    Memory ``O(tile^2)`` (:func:`theory.tiling.upper_pairs`); the blocks merge exactly, so the result equals the
    untiled one to rounding.  ``cosines`` needs every row nonzero.
    """
    tile = check_tile(tile)
    C = int(rows.shape[0])
    norms = xp.linalg.vector_norm(rows, axis=1)
    unit = rows / xp.where(norms > 0, norms, xp.ones_like(norms))[:, None]  # zero rows stay zero
    m = C * (C - 1) // 2
    state: dict = {"moments": None, "abs": 0.0, "etf": 0.0}
    if etf:
        small = rows @ rows.T if C <= int(rows.shape[1]) else rows.T @ rows
        g_norm = xp.linalg.vector_norm(xp.reshape(small, (-1,)))
        j_norm = (C - 1) ** 0.5
        diag = norms * norms / g_norm - (1.0 - 1.0 / C) / j_norm
        state["etf"] = xp.sum(diag * diag)
        scaled = norms / g_norm

    def visit(cos: Array, mask: Array | None, count: int, lo: int, col0: int) -> None:
        k, width = int(cos.shape[0]), int(cos.shape[1])
        # G_cc' / ||G|| - J_cc' / ||J||, with G_cc' = cos_cc' ||r_c|| ||r_c'|| and J_cc' = -1/C off the diagonal
        if etf:
            diff = cos * scaled[lo : lo + k, None]
            diff = diff * norms[None, col0 : col0 + width] + (1.0 / C) / j_norm
            if mask is not None:
                diff = diff * mask
            sq = xp.linalg.vector_norm(diff)
            state["etf"] = state["etf"] + 2.0 * sq * sq
        if cosines:
            state["moments"] = merge_moments(state["moments"], block_moments(cos, mask, count, xp))
            dev = cos + 1.0 / (C - 1)
            if mask is not None:
                dev = dev * mask
            state["abs"] = state["abs"] + xp.linalg.vector_norm(dev, ord=1)

    upper_pairs(unit, tile, xp, visit)
    out = {}
    if cosines:
        moments = state["moments"]
        out["equiangular"] = xp.sqrt(moments.m2 / max(moments.count - ddof, 1))  # divisor m - ddof, at least 1
        out["maxangle"] = state["abs"] / m
    if etf:
        out["etf_distance"] = xp.sqrt(state["etf"])
    return out


def self_duality(W: Array, centered: Array, xp) -> Array:
    """NC3: ``|| W^T/||W||_F - Mbar/||Mbar||_F ||_F^2`` (math §2.1)."""
    diff = W / xp.linalg.vector_norm(xp.reshape(W, (-1,))) - centered / xp.linalg.vector_norm(
        xp.reshape(centered, (-1,))
    )
    return xp.sum(diff * diff)


def etf_distance(centered: Array, xp, *, tile: int = DEFAULT_TILE) -> Array:
    """``|| G/||G||_F - J/||J||_F ||_F`` for the Gram matrix ``G = Mbar^T Mbar`` of the centred means.

    Zero exactly when the centred means form a Simplex ETF (Gram proportional to ``J``, math §1); tiled
    (:func:`pair_statistics`, memory ``O(tile^2)``).
    """
    return pair_statistics(centered, xp, cosines=False, etf=True, tile=tile)["etf_distance"]


#: Failures of one quantity that :func:`nc_metrics` records under ``"unavailable"`` instead of raising.
_UNAVAILABLE_ERRORS = (ValueError, ArithmeticError)


def _zero_rows(rows: Array, scale_rows: Array, xp) -> list[int] | None:
    """Indices of the rows of ``rows`` whose norm is at most ``p * eps * max_c ||scale_rows_c||`` (zero to
    round-off), or ``None`` when there are none or the values are not concrete (inside a JAX trace)."""
    if not is_concrete(rows):
        return None
    norms = xp.linalg.vector_norm(rows, axis=1)
    scale = to_float(xp.max(xp.linalg.vector_norm(scale_rows, axis=1)))
    small = [i for i, v in enumerate(to_list(norms)) if v <= rows.shape[1] * EPS * scale]
    return small or None


def nc_metrics(
    stats: ClassStats,
    W: Array | None = None,
    b: Array | None = None,
    *,
    convention: str = "paper",
    lam: float = 0.0,
    central_path: bool = True,
    on_singular: str = "pinv",
    tile: int = DEFAULT_TILE,
    cosine_ddof: int = 1,
) -> dict:
    """Neural Collapse metrics on the training statistics (math §2.1, §2.2, §4; unavailable ones: rank_deficient.md §6).

    * ``nc1 = (1/C) Tr(Sigma_W Sigma_B^+)`` (paper); under ``convention="notebook"``
      ``nc1`` is the notebook's ``Tr(Sigma_W Sigma_B^+)``.  ``nc1_notebook`` is always the
      trace without ``1/C`` (so ``nc1_notebook = C * nc1`` under the paper convention);
      ``nc1_rank`` is the rank of the pseudo-inverse.
    * ``nc2_equinorm_means``, ``nc2_equiangular_means``, ``nc2_maxangle_means``,
      ``nc2_etf_distance`` on the centred means; the ``_classifiers`` variants on rows of ``W``.
    * ``nc3 = ||W^T/||W|| - Mbar/||Mbar|| ||_F^2``.
    * ``central_path_distance = ||[W b] - [W_LS b_LS]||_F / ||[W_LS b_LS]||_F`` at ridge ``lam``
      (when ``central_path`` and ``W`` is given); ``W_LS`` the minimum-norm minimiser when the normal matrix is
      singular (``on_singular="pinv"``, rank_deficient.md §5), unavailable with ``on_singular="raise"``.

    A quantity that cannot be computed (``Sigma_B = 0`` for NC1, a zero centred class mean or classifier row for
    the cosines, a zero ``W`` or ``Mbar`` for NC3, no least-squares classifier) is left out and named with the
    reason in ``out["unavailable"]`` (``{name: reason}``, present only then).  Bad input (wrong shapes, NaN, an
    unknown convention, ``tile < 1``) raises ``ValueError``.

    Conventions where implementations differ (math §2.3): the equiangularity's std divides by
    ``C(C-1)/2 - cosine_ddof`` (default 1, unbiased; 0 biased); the equinorm's std is unbiased (``torch.std``);
    ``central_path_distance`` includes ``b`` when given.  The ``C x C`` quantities are tiled (math §2.3,
    :func:`pair_statistics`): memory ``O(tile^2)`` beyond the statistics (``O(tile * C)`` for the decomposition).
    """
    xp = namespace(stats.means)
    centered, _ = _centered(stats, convention, xp)
    C = stats.num_classes
    check_lam(lam)  # bad arguments raise here, never end up under "unavailable"
    tile = check_tile(tile)
    check_ddof(cosine_ddof, "cosine_ddof")
    if on_singular not in ON_SINGULAR:
        raise ValueError(f"unknown on_singular {on_singular!r}; choose one of {ON_SINGULAR}")
    if W is not None:
        W = as_float64(W, xp, like=stats.means)
        b = None if b is None else as_float64(b, xp, like=stats.means)
        check_classifier(W, b, C, stats.dim, xp)
    put = _Collector(xp)

    def nc1():  # NC1 under the convention, the notebook's trace and the pseudo-inverse's rank (math §2.1, §2.2)
        trace_value, rank = nc1_trace(stats, convention)
        if is_concrete(rank) and to_float(rank) == 0:
            raise ValueError("Sigma_B = 0 (all class means are equal): NC1 = Tr(Sigma_W Sigma_B^+) has no support")
        return (trace_value / C if convention == "paper" else trace_value), trace_value, rank

    put(("nc1", "nc1_notebook", "nc1_rank"), nc1, "non-finite NC1")
    # a centred mean is zero to round-off when its norm is below p eps times the largest uncentred norm
    # (the size of the centring's cancellation error)
    zero_means = _zero_rows(centered, stats.means, xp)
    no_means = zero_means is not None and len(zero_means) == C
    means_pass = _put_rows(put, centered, "means", zero_means, tile, cosine_ddof, etf=not no_means,
                           reason=f"the centred mean of class(es) {zero_means} is zero")
    put(("nc2_etf_distance",), lambda: (means_pass()["etf_distance"],),
        "the centred class means are all zero (to round-off): no between-class structure", no_means)
    if W is not None:
        zero_rows = _zero_rows(W, W, xp)
        _put_rows(put, W, "classifiers", zero_rows, tile, cosine_ddof, reason=f"row(s) {zero_rows} of W are zero")
        degenerate = no_means or (zero_rows is not None and len(zero_rows) == C)
        put(("nc3",), lambda: (self_duality(W, centered, xp),), "W = 0 or Mbar = 0: NC3 normalises by both norms",
            degenerate)
        if central_path:
            put(("central_path_distance",),
                lambda: (decompose(stats, W, b, lam=lam, on_singular=on_singular, tile=tile)["central_path_distance"],),
                "the least-squares classifier is zero")
    return put.result()


class _Collector:
    """The metrics computed so far and the ``{name: reason}`` of those unavailable (:func:`nc_metrics`)."""

    def __init__(self, xp) -> None:
        self.xp = xp
        self.out: dict = {}
        self.unavailable: dict[str, str] = {}

    def __call__(self, names: tuple[str, ...], fn, reason: str, refuse=None) -> None:
        """Store ``fn()``'s values under ``names``, or why they are unavailable: ``reason`` when ``refuse`` is set
        (not ``None``/empty, ``fn`` is not called) or a value is not finite, else the error ``fn`` raised."""
        if refuse:
            self.unavailable.update({k: f"ValueError: {reason}" for k in names})
            return
        try:
            values = fn()
        except _UNAVAILABLE_ERRORS as exc:
            self.unavailable.update({k: f"{type(exc).__name__}: {exc}" for k in names})
            return
        if any(is_concrete(v) and not to_bool(self.xp.all(self.xp.isfinite(v))) for v in values):  # traced: unknown
            self.unavailable.update({k: reason for k in names})
            return
        self.out.update(zip(names, values))

    def result(self) -> dict:
        """The metrics, with ``"unavailable"`` only when something is."""
        if self.unavailable:
            self.out["unavailable"] = self.unavailable
        return self.out


def _put_rows(
    put: _Collector, rows: Array, kind: str, zero: list[int] | None, tile: int, ddof: int, *, reason: str,
    etf: bool = False,
):
    """NC2's ``nc2_{equinorm,equiangular,maxangle}_{kind}`` of ``rows`` (math §2.1), refused with ``reason`` when
    some row is ``zero``; returns the getter of their one tiled pass (:func:`pair_statistics`, with ``etf``)."""
    xp = put.xp
    passes: dict = {}
    reason = f"{reason}: norm ratios and cosines are undefined"

    def pair_pass() -> dict:
        if not passes:
            passes.update(pair_statistics(rows, xp, cosines=not zero, etf=etf, tile=tile, ddof=ddof))
        return passes

    put((f"nc2_equinorm_{kind}",), lambda: (equinorm(rows, xp),), reason, zero)
    for key in ("equiangular", "maxangle"):
        put((f"nc2_{key}_{kind}",), lambda key=key: (pair_pass()[key],), reason, zero)
    return pair_pass


def ncc_mismatch_count(
    features: Array, labels: Array, stats: ClassStats, W: Array, b: Array | None = None, *, tile: int = DEFAULT_TILE
) -> tuple[Array, Array]:
    """NC4 counts: ``#{i : argmax_c (W h_i + b)_c != argmin_c ||h_i - mu_c||}`` and ``n`` (math §2.1, §2.2).

    Uses the uncentred class means of ``stats`` (centring does not change the argmin) through
    :func:`theory.outputs.sample_totals` (one GEMM per block).  Sum the counts over batches
    for a stream.  Memory ``O(tile * C)`` beyond the inputs (math §2.3).
    """
    totals = sample_totals(features, labels, W, b, stats.means, num_classes=stats.num_classes, tile=tile)
    return totals["ncc_mismatches"], totals["count"]


def ncc_mismatch(
    features: Array, labels: Array, stats: ClassStats, W: Array, b: Array | None = None, *, tile: int = DEFAULT_TILE
) -> Array:
    """NC4: the fraction of samples whose network prediction differs from the nearest class centre's."""
    mismatches, total = ncc_mismatch_count(features, labels, stats, W, b, tile=tile)
    return mismatches / total
