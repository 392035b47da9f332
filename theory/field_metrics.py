"""The field's other collapse metrics (math §2.3): CDNV, hyperspherical uniformity, interference, OOD orthogonality.

Each is defined once here, on the Python array API (NumPy, JAX with x64, torch), in float64, and every
quantity over pairs of classes is reduced in tiles of ``tile`` rows (:mod:`theory.tiling`), so memory stays
``O(tile^2)`` beyond the class statistics whatever ``C``.  Where a convention is a choice (the variance's
divisor, the centring) it is a named argument; the docstrings say where common implementations (e.g.
rhubarbwu/neural-collapse) choose differently.
"""

from __future__ import annotations

from ._backend import Array, as_float64, device_of, host_block_rows, namespace, to_list
from ._validation import check_ddof, check_features_labels, check_finite_result, check_labels, infer_num_classes
from .metrics import _centered
from .stats import ClassStats, _class_counts, _class_sums
from .tiling import DEFAULT_TILE, Moments, block_moments, check_tile, merge_moments, upper_pairs

#: Values of :func:`kernel_statistics`'s ``kernel``.
KERNELS = ("log", "riesz")


def class_deviation_sums(features: Array, labels: Array, means: Array) -> tuple[Array, Array]:
    """``(s, n)``: per class ``s_c = sum_{i in c} ||h_i - mu_c||^2`` and the counts ``n_c`` (math §2.3, CDNV).

    ``means (C, p)`` are the class means of the whole set (e.g. ``stats.means``): a second pass over the
    data, as every CDNV needs, since the pooled ``Sigma_W`` does not keep the per-class spreads.  Both
    outputs add over batches (or ranks).  Float64, in row blocks; memory ``O(Cp)``.
    """
    xp = namespace(features, labels)
    check_features_labels(features, labels, xp, finite=False)
    means = as_float64(means, xp, like=features)
    if len(means.shape) != 2 or int(means.shape[1]) != int(features.shape[1]):
        raise ValueError(f"shape mismatch: means must have shape (C, p) with p = {features.shape[1]}, "
                         f"got {tuple(means.shape)}")
    C = infer_num_classes(labels, xp, int(means.shape[0]))
    check_labels(labels, xp, C)
    n = int(features.shape[0])
    step = host_block_rows(features) or max(n, 1)
    sums = xp.zeros((C,), dtype=xp.float64, device=device_of(features))
    for lo in range(0, n, step):
        y = labels[lo : lo + step]
        D = as_float64(features[lo : lo + step], xp) - xp.take(means, y, axis=0)
        sq = xp.sum(D * D, axis=1)
        sums = sums + _class_sums(sq[:, None], y, C, xp)[:, 0]
    check_finite_result(sums, features, xp)
    return sums, _class_counts(labels, C, xp)


def class_variances(features: Array, labels: Array, means: Array, *, ddof: int = 0) -> Array:
    """``Var_c = s_c / (n_c - ddof)``, the within-class variance of class ``c`` (math §2.3).

    ``s_c = sum_{i in c} ||h_i - mu_c||^2`` (:func:`class_deviation_sums`).  ``ddof=0`` (default) is the
    toolkit's divisor ``n_c``, the one of ``Sigma_W`` (math §1): then ``sum_c pi_c Var_c = tr(Sigma_W)``.
    ``ddof=1`` is the unbiased divisor ``n_c - 1`` (``torch.var``'s default).  ``ValueError`` when a class
    has ``n_c <= ddof`` samples.
    """
    ddof = check_ddof(ddof)
    sums, counts = class_deviation_sums(features, labels, means)
    few = [c for c, v in enumerate(to_list(counts)) if v <= ddof]
    if few:
        raise ValueError(f"class(es) {few[:10]} have at most ddof = {ddof} samples: their variance is undefined")
    return sums / (counts - ddof)


def _check_variances(variances: Array, stats: ClassStats, xp) -> Array:
    v = as_float64(variances, xp, like=stats.means)
    if tuple(v.shape) != (stats.num_classes,):
        raise ValueError(f"shape mismatch: variances must have shape (C,) = ({stats.num_classes},), "
                         f"got {tuple(v.shape)}")
    return v


def _pair_geometry(stats: ClassStats, xp) -> tuple[Array, Array]:
    """Means centred at their unweighted average (distances do not change; smaller norms, less cancellation
    in ``||a||^2 + ||b||^2 - 2 a.b``) and their squared norms."""
    centred = stats.means - xp.mean(stats.means, axis=0)[None, :]
    return centred, xp.sum(centred * centred, axis=1)


def cdnv_pairs(stats: ClassStats, variances: Array, *, rows: Array | None = None) -> Array:
    """The CDNV grid ``V_cc' = (Var_c + Var_c') / (2 ||mu_c - mu_c'||^2)`` (Galanti et al. 2022; math §2.3).

    ``rows`` (integer indices, default all ``C``) selects the rows: the result is ``(len(rows), C)``, so the
    full grid costs ``C^2`` entries; for large ``C`` ask for a few rows, or for the average (:func:`cdnv`).
    The diagonal (``c = c'``) is undefined and returned as NaN.  ``variances``: :func:`class_variances`.
    Squared distances are ``||a||^2 + ||b||^2 - 2 a.b`` of the means centred at their average (clipped at 0):
    relative error ``~ eps ||mu||^2 / ||mu_c - mu_c'||^2``; implementations that subtract the vectors
    (rhubarbwu/neural-collapse) differ by that much.  Two equal means give ``inf``.
    """
    xp = namespace(stats.means)
    v = _check_variances(variances, stats, xp)
    centred, sq = _pair_geometry(stats, xp)
    C = stats.num_classes
    idx = xp.arange(C, device=device_of(v)) if rows is None else xp.asarray(rows, device=device_of(v))
    head = xp.take(centred, idx, axis=0)
    d2 = xp.take(sq, idx)[:, None] + sq[None, :] - 2.0 * (head @ centred.T)
    d2 = xp.where(d2 > 0, d2, xp.zeros_like(d2))
    same = idx[:, None] == xp.arange(C, device=device_of(v))[None, :]
    grid = (xp.take(v, idx)[:, None] + v[None, :]) / (2.0 * xp.where(same, xp.ones_like(d2), d2))
    return xp.where(same, xp.full_like(grid, float("nan")), grid)


def cdnv(stats: ClassStats, variances: Array, *, tile: int = DEFAULT_TILE) -> Array:
    """The average CDNV over the ``C(C-1)/2`` unordered pairs ``c < c'`` (math §2.3), in tiles of ``tile`` rows.

    Equal to the mean of the off-diagonal entries of :func:`cdnv_pairs` (the grid is symmetric), in memory
    ``O(tile^2)``.  Galanti et al. (2022) average over ordered pairs ``c != c'``: the same number.
    """
    tile = check_tile(tile)
    xp = namespace(stats.means)
    v = _check_variances(variances, stats, xp)
    centred, sq = _pair_geometry(stats, xp)
    C = stats.num_classes
    total = {"sum": xp.zeros((), dtype=xp.float64, device=device_of(v))}

    def visit(block: Array, mask: Array | None, count: int, lo: int, col0: int) -> None:
        k, width = int(block.shape[0]), int(block.shape[1])
        d2 = sq[lo : lo + k, None] + sq[None, col0 : col0 + width] - 2.0 * block
        d2 = xp.where(d2 > 0, d2, xp.zeros_like(d2))
        if mask is not None:  # the diagonal and below: a finite placeholder, weighted by 0
            d2 = xp.where(mask > 0, d2, xp.ones_like(d2))
        vals = (v[lo : lo + k, None] + v[None, col0 : col0 + width]) / (2.0 * d2)
        if mask is not None:
            vals = vals * mask
        total["sum"] = total["sum"] + xp.sum(vals)

    upper_pairs(centred, tile, xp, visit)
    return total["sum"] / (C * (C - 1) // 2)


def _unit_centred_means(stats: ClassStats, convention: str, xp) -> Array:
    centred, _ = _centered(stats, convention, xp)
    norms = xp.linalg.vector_norm(centred, axis=1)
    if bool(xp.any(norms == 0)):
        raise ValueError("a centred class mean is zero: it has no direction on the sphere")
    return centred / norms[:, None]


def kernel_statistics(
    stats: ClassStats,
    kernel: str = "log",
    *,
    s: float | None = None,
    ddof: int = 1,
    convention: str = "paper",
    tile: int = DEFAULT_TILE,
) -> dict:
    """Hyperspherical uniformity: mean and variance of a kernel over pairs of normalised centred means (math §2.3).

    Points ``u_c = (mu_c - mu_G) / ||mu_c - mu_G||`` (centring by ``convention``, as in :func:`theory.nc_metrics`),
    distances ``d_cc' = ||u_c - u_c'|| = sqrt(2 - 2 u_c.u_c')``, and over the unordered pairs ``c < c'``:

    * ``kernel="log"``: ``k = log(1 / d)``;
    * ``kernel="riesz"``: ``k = sign(s) d^(-s)``, with ``s = p - 2`` by default (Liu et al. 2023, the
      energy of the Riesz ``s``-kernel on ``S^(p-1)``); ``s = 0`` is refused (its limit is the log kernel).

    Returns ``{"mean", "var"}``; ``var`` divides by ``m - ddof`` (``m = C(C-1)/2``): ``ddof=1`` (default, the
    toolkit's unbiased convention, as for NC2 equiangularity); ``ddof=0`` is the divisor ``m`` that common
    implementations use.  Tiled, memory ``O(tile^2)``; the block statistics merge exactly (Chan et al.).
    Near-coincident points (``d -> 0``) lose relative precision in ``d^2`` (``~ eps / d^2``); a pair with
    ``d = 0`` gives ``inf``.  Large ``s`` overflows float64 to ``inf`` for ``d < 10^(-308/s)``.
    """
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {KERNELS}")
    ddof = check_ddof(ddof)
    tile = check_tile(tile)
    xp = namespace(stats.means)
    if kernel == "riesz":
        s = float(stats.dim - 2) if s is None else float(s)
        if s == 0.0:
            raise ValueError("s = 0: the Riesz kernel degenerates (its limit is kernel='log'); give s != 0")
    unit = _unit_centred_means(stats, convention, xp)
    C = stats.num_classes
    state: dict = {"m": None}
    power = 0.0 if s is None else float(s)  # the Riesz exponent (set above for kernel="riesz")

    def visit(cos: Array, mask: Array | None, count: int, lo: int, col0: int) -> None:
        d2 = 2.0 - 2.0 * cos
        d2 = xp.where(d2 > 0, d2, xp.zeros_like(d2))
        if mask is not None:  # keep the masked-out entries finite (they are weighted by 0)
            d2 = xp.where(mask > 0, d2, xp.ones_like(d2))
        k = -0.5 * xp.log(d2) if kernel == "log" else (1.0 if power > 0 else -1.0) * d2 ** (-0.5 * power)
        state["m"] = merge_moments(state["m"], block_moments(k, mask, count, xp))

    upper_pairs(unit, tile, xp, visit)
    m: Moments = state["m"]
    pairs = C * (C - 1) // 2
    if pairs - ddof <= 0:
        raise ValueError(f"{pairs} pair(s) of classes: the variance with ddof = {ddof} is undefined")
    return {"mean": m.mean, "var": m.m2 / (pairs - ddof)}


def interference_grid(vectors: Array, *, center: Array | None = None, rows: Array | None = None) -> Array:
    """Cosines ``cos(v_c - z, v_c' - z)`` between rows of ``vectors (C, p)`` (math §2.3): the interference grid.

    ``vectors`` are the classifier rows ``W`` (``center=None``) or the class means with ``center=stats.global_mean``
    (the centred means of NC2).  ``rows`` (integer indices, default all) selects the grid's rows: the result
    is ``(len(rows), C)``, so the full grid holds ``C^2`` entries; the statistics of the whole grid for large
    ``C`` come tiled from :func:`theory.nc_metrics` (equiangularity, max-angle).  ``ValueError`` for a zero row.
    """
    xp = namespace(vectors)
    V = as_float64(vectors, xp)
    if len(V.shape) != 2:
        raise ValueError(f"vectors must be a 2-D array (C, p), got shape {tuple(V.shape)}")
    if center is not None:
        V = V - as_float64(center, xp, like=V)[None, :]
    norms = xp.linalg.vector_norm(V, axis=1)
    if bool(xp.any(norms == 0)):
        raise ValueError("a row of vectors (after centring) is zero: its cosines are undefined")
    unit = V / norms[:, None]
    head = unit if rows is None else xp.take(unit, xp.asarray(rows, device=device_of(V)), axis=0)
    return head @ unit.T


def ood_orthogonality(
    stats: ClassStats,
    ood_features: Array | None = None,
    *,
    ood_mean: Array | None = None,
    convention: str = "paper",
) -> Array:
    """Out-of-distribution orthogonality (NC5 of Ammar et al. 2024; math §2.3):
    ``avg_c |cos(mu_c - mu_G, mu_O - mu_G)|``.

    ``mu_O`` is the mean of the features of held-out (out-of-distribution) inputs, given as ``ood_features
    (n_O, p)`` (averaged here in float64) or directly as ``ood_mean (p,)`` (e.g. summed over a stream);
    ``mu_G`` and the class means ``mu_c`` are the in-distribution training statistics, centred by ``convention``.
    Zero when the OOD features' mean is orthogonal to every centred class mean; ``ValueError`` when
    ``mu_O = mu_G`` or a centred class mean is zero (no direction).
    """
    xp = namespace(stats.means)
    if (ood_features is None) == (ood_mean is None):
        raise ValueError("give exactly one of ood_features (n_O, p) and ood_mean (p,)")
    p = stats.dim
    if ood_features is not None:
        F = ood_features
        if len(F.shape) != 2 or int(F.shape[1]) != p or int(F.shape[0]) == 0:
            raise ValueError(f"shape mismatch: ood_features must have shape (n_O, p) with n_O >= 1, p = {p}; "
                             f"got {tuple(F.shape)}")
        fx = namespace(F)
        total = fx.zeros((p,), dtype=fx.float64, device=device_of(F))
        step = host_block_rows(F) or int(F.shape[0])
        for lo in range(0, int(F.shape[0]), step):
            total = total + fx.sum(as_float64(F[lo : lo + step], fx), axis=0)
        ood_mean = total / int(F.shape[0])
    mu_o = as_float64(ood_mean, xp, like=stats.means)
    if tuple(mu_o.shape) != (p,):
        raise ValueError(f"shape mismatch: ood_mean must have shape (p,) = ({p},), got {tuple(mu_o.shape)}")
    unit = _unit_centred_means(stats, convention, xp)
    centre = stats.global_mean if convention == "paper" else xp.mean(stats.means, axis=0)
    direction = mu_o - centre
    norm = xp.linalg.vector_norm(direction)
    if bool(norm == 0):
        raise ValueError("the OOD mean equals the global mean: it has no direction")
    return xp.mean(xp.abs(unit @ (direction / norm)))
