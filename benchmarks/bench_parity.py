"""Parity with rhubarbwu/neural-collapse: every metric both libraries have, on the same float64 arrays (math §2.3).

``python -m benchmarks.bench_parity --reference /tmp/nc-ref [--C 12 --p 32 --n 3000] [--tile 5]``
``python -m benchmarks.bench_parity --reference /tmp/nc-ref --speed 1000,2048,200000 [--tile 1024] [--ref-tile 64]``

``--reference`` is a checkout of https://github.com/rhubarbwu/neural-collapse (its ``neural_collapse`` package is
imported from there; it needs only torch, NumPy and SciPy).  Synthetic features ``h = 3 mu_y + noise``, balanced
and imbalanced labels, a random classifier ``(W, b)`` and held-out features; the reference runs in float64
(accumulators with ``dtype=torch.float64``, and torch's default dtype set to float64 while it runs, see below).

Each row prints ours, the reference's, and their max abs / rel difference.  ``expect = agree``: the definitions
are the same (after the alignment named in the row) and the difference must be rounding (rel <= ``AGREE_REL``);
``expect = differ``: the row uses each library's own default convention, which differ (the reason is stated), and
the row after it aligns the convention and agrees.  :func:`compare` holds the whole comparison; the test
``tests/theory/test_parity_reference.py`` runs it on small arrays when ``NC_REFERENCE`` names a checkout.

Differences found (math §2.3): NC4 ignores the classifier bias; the variances of the kernels (and of any kernel
of cosines) divide by ``m`` (biased); NC1's ``Sigma_B`` and the default centre are the unweighted average of the
class means (our ``convention="notebook"``); the interference grid is the Gram matrix, not the cosines; OOD
orthogonality centres nothing (ours centres both means by ``mu_G``); its NC3 (``self_duality_error``, Kothapalli
2023) is another quantity than ours (Papyan et al. 2020); its tiled grids are stored in torch's default dtype
(float32 unless changed: rounding ~1e-7 whatever the input's dtype) and hold all ``C^2`` entries; its
``compute(weighted=True)`` fails for means, and its CDNV fails when the last tile has one row (``C mod tile = 1``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator

import numpy as np

#: Relative difference below which two values count as equal to rounding (float64; the longest chains here are
#: an SVD-based pseudo-inverse and ARPACK's ``svds``, whose results agree to ~1e-12).
AGREE_REL = 1e-9


def make_data(C: int, p: int, n: int, *, imbalanced: bool, seed: int = 0) -> dict:
    """Synthetic float64 features, labels, a classifier and held-out features (every class present)."""
    rng = np.random.default_rng(seed)
    if imbalanced:
        w = 1.0 + (np.arange(C) % 4) * 2.0
        y = rng.choice(C, size=n, p=w / w.sum())
        y[:C] = np.arange(C)
    else:
        y = rng.permutation(np.arange(n) % C)
    M = 3.0 * rng.standard_normal((C, p))
    X = M[y] + rng.standard_normal((n, p))
    W = rng.standard_normal((C, p)) / np.sqrt(p)
    b = 5.0 * rng.standard_normal(C)  # large enough that argmax(W h + b) differs from argmax(W h)
    X_ood = rng.standard_normal((n // 4, p)) + rng.standard_normal(p)
    return {"X": X, "y": y, "W": W, "b": b, "X_ood": X_ood}


def import_reference(path: str):
    """The ``neural_collapse`` package of the checkout at ``path`` (``ValueError`` naming it if absent)."""
    if not os.path.isfile(os.path.join(path, "neural_collapse", "measure.py")):
        raise ValueError(f"reference: {path!r} has no neural_collapse/measure.py "
                         "(a rhubarbwu/neural-collapse checkout)")
    if path not in sys.path:
        sys.path.insert(0, path)
    import neural_collapse.accumulate
    import neural_collapse.kernels
    import neural_collapse.measure
    import neural_collapse.util

    return neural_collapse


@contextlib.contextmanager
def torch_default_dtype(dtype) -> Iterator[None]:
    """Set torch's default dtype for the block (the reference's grids are allocated in it), then restore it."""
    import torch

    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def _diff(ours, ref, scale: float) -> tuple[float, float]:
    a, r = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    abs_diff = float(np.max(np.abs(a - r)))
    return abs_diff, abs_diff / max(float(np.max(np.abs(r))), scale)


def _row(rows: list, data: str, metric: str, alignment: str, ours, ref, expect: str = "agree",
         scale: float = 1e-300) -> None:
    """Append one comparison; ``rel`` = max abs diff / max(max |ref|, ``scale``) (``scale``: the size of the
    quantity where the exact value is 0)."""
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    abs_diff, rel_diff = _diff(ours, ref, scale)
    scalar = ours.ndim == 0
    rows.append({"data": data, "metric": metric, "alignment": alignment, "expect": expect,
                 "ours": float(ours) if scalar else f"array {ours.shape}",
                 "reference": float(ref) if scalar else f"array {ref.shape}",
                 "abs": abs_diff, "rel": rel_diff})


def _reference_stats(nc, d: dict) -> dict:
    """The reference's accumulators over the data in float64 (batches of 1024, as a data loader would)."""
    import torch

    acc = nc.accumulate
    X, y = torch.from_numpy(d["X"]), torch.from_numpy(d["y"]).long()
    C, p = int(d["W"].shape[0]), int(X.shape[1])
    W = torch.from_numpy(d["W"])
    batches = [(X[i : i + 1024], y[i : i + 1024]) for i in range(0, len(y), 1024)]
    mean_acc = acc.MeanAccumulator(C, p, "cpu", dtype=torch.float64)
    for xb, yb in batches:
        mean_acc.accumulate(xb, yb)
    means, mG = mean_acc.compute()  # mG: the unweighted average of the class means (its default)
    # its compute(weighted=True) fails on (K, D) totals (the counts become (K, 1) before a matrix product),
    # so the count-weighted global mean is formed here from its counts and means
    counts = mean_acc.ns_samples.to(torch.float64)
    mG_weighted = counts @ means / counts.sum()
    cov_acc = acc.CovarAccumulator(C, p, "cpu", dtype=torch.float64, M=means)
    var_acc = acc.VarNormAccumulator(C, p, "cpu", dtype=torch.float64, M=means)
    dec_acc = acc.DecAccumulator(C, p, "cpu", dtype=torch.float64, M=means, W=W)
    for xb, yb in batches:
        cov_acc.accumulate(xb, yb, means)
        var_acc.accumulate(xb, yb, means)
        dec_acc.accumulate(xb, yb, W, means)
    ood = acc.MeanAccumulator(1, p, "cpu", dtype=torch.float64)
    X_ood = torch.from_numpy(d["X_ood"])
    ood.accumulate(X_ood, torch.zeros(len(X_ood), dtype=torch.long))
    return {"means": means, "mG": mG, "mG_weighted": mG_weighted, "sigma_w": cov_acc.compute(),
            "var_norms": var_acc.compute()[0], "dec": dec_acc, "mG_ood": ood.compute()[1], "W": W}


def _cosine_kernel(nc):
    """A kernel for the reference's ``kernel_stats``: the inner products of its normalised rows (the cosines; its
    docstring names the inner product as the default kernel), on its own ``tiling``."""
    return lambda data, tile_size=None: nc.util.tiling(data, lambda a, b: a @ b.mT, tile_size)


def _compare_statistics(rows, name, d, stats, ref) -> None:
    import theory

    _row(rows, name, "class means", "", stats.means, ref["means"])
    _row(rows, name, "global mean", "its counts @ means / n (compute(weighted=True) fails)",
         stats.global_mean, ref["mG_weighted"])
    _row(rows, name, "Sigma_W (pooled, divisor n)", "", stats.sigma_w, ref["sigma_w"])
    ours_var = theory.class_variances(d["X"], d["y"], stats.means, ddof=0)
    _row(rows, name, "within-class variances Var_c", "ours ddof=0 (default)", ours_var, ref["var_norms"])


def _compare_nc1(rows, name, stats, ref, balanced: bool) -> None:
    import theory

    nc, m = ref["nc"], ref["means"]
    C = stats.num_classes
    nc_paper = theory.nc_metrics(stats, central_path=False)
    nc_nb = theory.nc_metrics(stats, convention="notebook", central_path=False)
    for metric in ("pinv", "svd"):
        value = nc.measure.covariance_ratio(ref["sigma_w"], m, ref["mG"], metric)
        _row(rows, name, f"NC1 covariance_ratio {metric!r}", "ours paper (pi-weighted Sigma_B, mu_G weighted)",
             nc_paper["nc1"], value, "agree" if balanced else "differ")
        _row(rows, name, f"NC1 covariance_ratio {metric!r}", "ours convention='notebook', nc1 / C",
             nc_nb["nc1"] / C, value)
    quotient = nc.measure.covariance_ratio(ref["sigma_w"], m, ref["mG"], "quotient")
    centred = stats.means - np.mean(stats.means, axis=0)
    ours_quot = np.trace(stats.sigma_w) / (np.sum(centred * centred) / C)  # from our statistics (no named metric)
    _row(rows, name, "NC1 covariance_ratio 'quotient'", "tr(Sigma_W) / tr(Sigma_B unweighted) from our stats",
         ours_quot, quotient)


def _compare_nc2(rows, name, stats, ref, tile: int) -> None:
    import torch

    import theory

    nc, m = ref["nc"], ref["means"]
    nc_paper = theory.nc_metrics(stats, central_path=False, tile=tile)
    nc_nb = theory.nc_metrics(stats, convention="notebook", central_path=False, tile=tile, cosine_ddof=0)
    _row(rows, name, "NC2 simplex_etf_error", "ours paper; its mG weighted",
         nc_paper["nc2_etf_distance"], nc.measure.simplex_etf_error(m, ref["mG_weighted"]))
    _row(rows, name, "NC2 simplex_etf_error", "ours notebook; its mG (unweighted)",
         nc_nb["nc2_etf_distance"], nc.measure.simplex_etf_error(m, ref["mG"]))
    norms = nc.measure.mean_norms(m, ref["mG"])
    _row(rows, name, "NC2 equinorm (std/mean of mean_norms, torch.std)", "ours notebook",
         nc_nb["nc2_equinorm_means"], float(norms.std() / norms.mean()))
    _, var = nc.kernels.kernel_stats(m, ref["mG"], _cosine_kernel(nc), tile)
    _row(rows, name, "NC2 std of cosines (kernel_stats var, sqrt)", "ours notebook, cosine_ddof=1 (default)",
         theory.nc_metrics(stats, convention="notebook", central_path=False, tile=tile)["nc2_equiangular_means"],
         var ** 0.5, "differ")
    _row(rows, name, "NC2 std of cosines (kernel_stats var, sqrt)", "ours notebook, cosine_ddof=0",
         nc_nb["nc2_equiangular_means"], var**0.5)
    _, var_w = nc.kernels.kernel_stats(ref["W"], 0, _cosine_kernel(nc), tile)
    _row(rows, name, "NC2 std of cosines of W rows", "ours cosine_ddof=0",
         theory.nc_metrics(stats, np.asarray(ref["W"]), central_path=False, tile=tile,
                           cosine_ddof=0)["nc2_equiangular_classifiers"], var_w**0.5)
    grid = nc.measure.interference_grid(m, ref["mG_weighted"])
    ours_grid = theory.interference_grid(stats.means, center=stats.global_mean)
    _row(rows, name, "interference grid (means)", "as returned (its Gram, ours cosines)", ours_grid, grid, "differ")
    g_norms = torch.sqrt(torch.diagonal(grid))
    _row(rows, name, "interference grid (means)", "its Gram / (||a|| ||b||)", ours_grid,
         grid / (g_norms[:, None] * g_norms[None, :]))
    unit_w = nc.util.normalize(ref["W"])
    _row(rows, name, "interference grid (W)", "its grid of normalize(W)",
         theory.interference_grid(np.asarray(ref["W"])), nc.measure.interference_grid(unit_w))


def _compare_field(rows, name, d, stats, ref, tile: int) -> None:
    import torch

    import theory

    nc, m = ref["nc"], ref["means"]
    variances = theory.class_variances(d["X"], d["y"], stats.means)
    _row(rows, name, "CDNV average (variability_cdnv)", "ours ddof=0 (default)",
         theory.cdnv(stats, variances, tile=tile), nc.measure.variability_cdnv(ref["var_norms"], m, tile_size=tile))
    with torch_default_dtype(torch.float32):
        cdnv32 = nc.measure.variability_cdnv(ref["var_norms"], m, tile_size=tile)
        grid32 = nc.kernels.class_dist_norm_vars(ref["var_norms"], m, tile_size=tile)
    grid = nc.kernels.class_dist_norm_vars(ref["var_norms"], m, tile_size=tile)
    ours_pairs = theory.cdnv_pairs(stats, variances)
    off = ~np.eye(stats.num_classes, dtype=bool)
    _row(rows, name, "CDNV grid (off-diagonal)", "", ours_pairs[off], grid.numpy()[off])
    _row(rows, name, "CDNV grid, torch's default dtype float32", "its tiling allocates the grid in the default dtype",
         ours_pairs[off], grid32.numpy()[off], "differ")
    _row(rows, name, "CDNV average, torch's default dtype float32", "(informative: float32 rounding, averaged)",
         theory.cdnv(stats, variances, tile=tile), cdnv32, "float32")
    for kernel, ref_kernel in (("log", nc.kernels.log_kernel), ("riesz", nc.kernels.riesz_kernel)):
        mean, var = nc.kernels.kernel_stats(m, ref["mG"], ref_kernel, tile)
        ours1 = theory.kernel_statistics(stats, kernel, convention="notebook", tile=tile)
        ours0 = theory.kernel_statistics(stats, kernel, convention="notebook", ddof=0, tile=tile)
        _row(rows, name, f"{kernel} kernel mean", "ours notebook", ours0["mean"], mean)
        _row(rows, name, f"{kernel} kernel variance", "ours notebook, ddof=1 (default)", ours1["var"], var, "differ")
        _row(rows, name, f"{kernel} kernel variance", "ours notebook, ddof=0", ours0["var"], var)
    ood_ours = theory.ood_orthogonality(stats, d["X_ood"])
    _row(rows, name, "OOD orthogonality_deviation", "as documented: its (means, mG_ood), uncentred",
         ood_ours, nc.measure.orthogonality_deviation(m, ref["mG_ood"]), "differ")
    mG = ref["mG_weighted"]
    _row(rows, name, "OOD orthogonality_deviation", "its (means - mG, mG_ood - mG), mG weighted; ours paper",
         ood_ours, nc.measure.orthogonality_deviation(m - mG, ref["mG_ood"] - mG))


def _compare_nc4(rows, name, d, stats, ref) -> None:
    import theory

    nc = ref["nc"]
    agree = nc.measure.clf_ncc_agreement(ref["dec"])
    _row(rows, name, "NC4 clf_ncc_agreement", "ours 1 - ncc_mismatch(..., b)",
         1.0 - float(theory.ncc_mismatch(d["X"], d["y"], stats, d["W"], d["b"])), agree, "differ")
    _row(rows, name, "NC4 clf_ncc_agreement", "ours 1 - ncc_mismatch(..., b=None)",
         1.0 - float(theory.ncc_mismatch(d["X"], d["y"], stats, d["W"])), agree)


def _compare_nc3_at_collapse(rows, nc, C: int, p: int) -> None:
    """Its NC3 (``self_duality_error``, Kothapalli 2023: ``W Mbar^T`` against the Simplex ETF) is another quantity
    than ours (Papyan et al. 2020: ``||W/||W|| - Mbar/||Mbar|| ||^2``): compared only at exact collapse (centred
    means a Simplex ETF, ``W = 2 Mbar``), where both are 0."""
    import torch

    import theory

    basis = np.linalg.qr(np.random.default_rng(1).standard_normal((p, C)))[0]
    M = (np.eye(C) - 1.0 / C) @ basis.T  # centred Simplex ETF rows (C, p), mean zero
    etf_stats = theory.class_stats(np.repeat(M, 2, axis=0), np.repeat(np.arange(C), 2))
    ours = theory.nc_metrics(etf_stats, 2.0 * M, central_path=False)["nc3"]
    theirs = nc.measure.self_duality_error(torch.from_numpy(2.0 * M), torch.from_numpy(M), 0)
    _row(rows, "exact collapse", "NC3 (different definitions; both 0 at collapse)",
         "ours nc3 vs its self_duality_error", ours, theirs, scale=1.0)


def compare(reference: str, *, C: int = 12, p: int = 32, n: int = 3000, tile: int = 5) -> list[dict]:
    """Every metric both libraries have, on balanced and imbalanced data; one dict per row (see the module doc).

    ``tile`` is passed to both libraries' tiled functions (smaller than ``C``, so that the tiles are exercised;
    ``C mod tile = 1`` breaks the reference's CDNV: a one-row tile is squeezed to a vector and broadcast wrongly).
    The reference runs with torch's default dtype set to float64 (restored afterwards).
    """
    import torch

    import theory

    nc = import_reference(reference)
    rows: list[dict] = []
    for imbalanced in (False, True):
        name = "imbalanced" if imbalanced else "balanced"
        d = make_data(C, p, n, imbalanced=imbalanced)
        stats = theory.class_stats(d["X"], d["y"])
        with torch_default_dtype(torch.float64):
            ref = _reference_stats(nc, d)
            ref["nc"] = nc
            _compare_statistics(rows, name, d, stats, ref)
            _compare_nc1(rows, name, stats, ref, balanced=not imbalanced)
            _compare_nc2(rows, name, stats, ref, tile)
            _compare_field(rows, name, d, stats, ref, tile)
            _compare_nc4(rows, name, d, stats, ref)
    with torch_default_dtype(torch.float64):
        _compare_nc3_at_collapse(rows, nc, C, p)
    return rows


def check(rows: list[dict], rel: float = AGREE_REL) -> list[str]:
    """The rows that break their expectation: ``agree`` rows above ``rel``, ``differ`` rows at or below it."""
    bad = []
    for r in rows:
        if r["expect"] not in ("agree", "differ"):
            continue
        close = r["rel"] <= rel
        if close != (r["expect"] == "agree"):
            bad.append(f"{r['data']}: {r['metric']} [{r['alignment']}] expected to {r['expect']}, "
                       f"rel diff {r['rel']:.2e}")
    return bad


# --- The Numbers: time and peak memory of the two pipelines, each in its own interpreter ----------------------


def _speed_data(C: int, p: int, n: int, seed: int = 0) -> dict:
    """Synthetic float32 features ``h = mu_y + N(0, I)`` (means ``N(0, I)``), balanced labels, a classifier, and
    ``n // 10`` held-out features; the same arrays in every child (same seed)."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % C)
    M = rng.standard_normal((C, p), dtype=np.float32)
    X = np.empty((n, p), dtype=np.float32)
    for lo in range(0, n, 8192):  # in blocks: no n x p temporaries beside X
        X[lo : lo + 8192] = M[y[lo : lo + 8192]] + rng.standard_normal((len(y[lo : lo + 8192]), p), dtype=np.float32)
    W = rng.standard_normal((C, p), dtype=np.float32) / np.float32(p**0.5)
    b = rng.standard_normal(C, dtype=np.float32) / np.float32(10.0)
    X_ood = rng.standard_normal((n // 10, p), dtype=np.float32)
    return {"X": X, "y": y, "W": W, "b": b, "X_ood": X_ood}


def _ours(d: dict, tile: int) -> dict:
    """The toolkit: streaming statistics, nc_metrics (central-path distance included), decompose, NC4, and the
    field metrics (variances pass, CDNV, log and Riesz kernels, OOD orthogonality, interference grid), tiled."""
    import time

    import theory

    t = [time.perf_counter()]
    stats = theory.class_stats(d["X"], d["y"])
    t.append(time.perf_counter())
    nc = theory.nc_metrics(stats, d["W"], d["b"], tile=tile)
    dec = theory.decompose(stats, d["W"], d["b"], tile=tile)
    nc4 = theory.ncc_mismatch(d["X"], d["y"], stats, d["W"], d["b"], tile=tile)
    t.append(time.perf_counter())
    variances = theory.class_variances(d["X"], d["y"], stats.means)
    field = {"cdnv": theory.cdnv(stats, variances, tile=tile),
             "log": theory.kernel_statistics(stats, "log", tile=tile)["var"],
             "riesz": theory.kernel_statistics(stats, "riesz", tile=tile)["var"],
             "ood": theory.ood_orthogonality(stats, d["X_ood"]),
             "grid": float(theory.interference_grid(stats.means, center=stats.global_mean)[0, 1])}
    t.append(time.perf_counter())
    return {"stats_s": t[1] - t[0], "nc_s": t[2] - t[1], "field_s": t[3] - t[2],
            "values": {"nc1": float(nc["nc1"]), "loss": float(dec["loss"]), "nc4": float(nc4),
                       **{k: float(v) for k, v in field.items()}}}


def _reference(nc, d: dict, tile: int, dtype_name: str) -> dict:
    """rhubarbwu/neural-collapse as its README runs it: accumulators over batches of 1024 (``dtype_name``), then
    every metric of its README's results (NC1 pinv / svd / quotient, CDNV, ETF error, distance, log and Riesz
    kernel statistics, NC3 errors, NC4 agreement, OOD deviation) plus equinorm and the interference grid;
    ``tile_size=tile`` where it tiles."""
    import time

    import torch

    acc, ms, kn = nc.accumulate, nc.measure, nc.kernels
    dtype = getattr(torch, dtype_name)
    C, p = d["W"].shape
    X, y = torch.from_numpy(d["X"]), torch.from_numpy(d["y"]).long()
    W = torch.from_numpy(d["W"]).to(dtype)
    batches = [(X[i : i + 1024], y[i : i + 1024]) for i in range(0, len(y), 1024)]
    t = [time.perf_counter()]
    mean_acc = acc.MeanAccumulator(C, p, "cpu", dtype=dtype)
    for xb, yb in batches:
        mean_acc.accumulate(xb, yb)
    means, mG = mean_acc.compute()
    cov_acc = acc.CovarAccumulator(C, p, "cpu", dtype=dtype, M=means)
    var_acc = acc.VarNormAccumulator(C, p, "cpu", dtype=dtype, M=means)
    for xb, yb in batches:
        cov_acc.accumulate(xb.to(dtype), yb, means)
        var_acc.accumulate(xb.to(dtype), yb, means)
    sigma_w, var_norms = cov_acc.compute(), var_acc.compute()[0]
    t.append(time.perf_counter())
    dec_acc = acc.DecAccumulator(C, p, "cpu", dtype=dtype, M=means, W=W)
    for xb, yb in batches:
        dec_acc.accumulate(xb, yb, W, means)
    values = {"nc1_pinv": ms.covariance_ratio(sigma_w, means, mG),
              "nc1_svd": ms.covariance_ratio(sigma_w, means, mG, "svd"),
              "nc1_quot": ms.covariance_ratio(sigma_w, means, mG, "quotient"),
              "nc2_etf": ms.simplex_etf_error(means, mG),
              "equinorm": float(ms.mean_norms(means, mG).std() / ms.mean_norms(means, mG).mean()),
              "nc3_dual": ms.self_duality_error(W, means, mG),
              "nc3_uni": ms.similarities(W, means, mG).var().item(),
              "nc4": ms.clf_ncc_agreement(dec_acc)}
    t.append(time.perf_counter())
    ood_acc = acc.MeanAccumulator(1, p, "cpu", dtype=dtype)
    X_ood = torch.from_numpy(d["X_ood"])
    for i in range(0, len(X_ood), 1024):
        ood_acc.accumulate(X_ood[i : i + 1024], torch.zeros(len(X_ood[i : i + 1024]), dtype=torch.long))
    values.update(cdnv=ms.variability_cdnv(var_norms, means, tile_size=tile),
                  dist=kn.kernel_stats(means, mG, tile_size=tile)[1],
                  log=kn.kernel_stats(means, mG, kn.log_kernel, tile)[1],
                  riesz=kn.kernel_stats(means, mG, kn.riesz_kernel, tile)[1],
                  ood=ms.orthogonality_deviation(means, ood_acc.compute()[1]),
                  grid=float(ms.interference_grid(means, mG)[0, 1]))
    t.append(time.perf_counter())
    return {"stats_s": t[1] - t[0], "nc_s": t[2] - t[1], "field_s": t[3] - t[2],
            "values": {k: float(v) for k, v in values.items()}}


def _memory() -> dict:
    """Resident set (``VmRSS``), its peak (``VmHWM``) and the peak address space (``VmPeak``) of this process, GiB."""
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key = line.split(":")[0]
            if key in ("VmRSS", "VmHWM", "VmPeak"):
                out[key] = int(line.split()[1]) / 2**20
    return out


def _reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current resident set (Linux: ``5`` into ``/proc/self/clear_refs``); False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def run_child(which: str, reference: str, config: str, tile: int) -> dict:
    """One pipeline (``ours``, ``reference-float32`` or ``reference-float64``) on the configuration's data."""
    import importlib
    import resource
    import time

    importlib.import_module("theory")  # both libraries imported outside the timed region
    nc = import_reference(reference)
    C, p, n = (int(v) for v in config.split(","))
    d = _speed_data(C, p, n)
    data_rss = _memory()["VmRSS"]
    reset = _reset_peak_rss()  # the peak below is the pipeline's (the data included), not the data generation's
    t0 = time.perf_counter()
    if which == "ours":
        out = _ours(d, tile)
    else:
        out = _reference(nc, d, tile, which.split("-")[1])
    out.update(which=which, C=C, p=p, n=n, tile=tile, total_s=time.perf_counter() - t0, **_memory(),
               data_rss=data_rss, peak_reset=reset)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu_s"] = usage.ru_utime + usage.ru_stime  # all threads, data generation included
    return out


def speed(reference: str, config: str, ours_tile: int, ref_tile: int, which: list[str],
          timeout: float) -> Iterator[dict]:
    """Each pipeline in a fresh interpreter (its peak memory its own), one after the other: its result as it ends."""
    import json
    import subprocess

    for name in which:
        tile = ours_tile if name == "ours" else ref_tile
        cmd = [sys.executable, "-m", "benchmarks.bench_parity", "--reference", reference, "--child", name,
               "--speed", config, "--tile", str(tile)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            yield {"which": name, "error": f"timed out after {timeout:.0f} s"}
            continue
        if proc.returncode != 0:
            lines = proc.stderr.strip().splitlines()
            yield {"which": name, "error": lines[-1] if lines else f"exit status {proc.returncode}"}
            continue
        yield json.loads(proc.stdout.strip().splitlines()[-1])


def _fmt(v) -> str:
    return f"{v:.10g}" if isinstance(v, float) else str(v)


def _print_parity(args) -> int:
    rows = compare(args.reference, C=args.C, p=args.p, n=args.n, tile=args.tile)
    print(f"C = {args.C}, p = {args.p}, n = {args.n}, tile = {args.tile}, float64; agree means rel <= {AGREE_REL:g}")
    print("| data | metric | alignment | expect | ours | reference | max abs diff | max rel diff |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['data']} | {r['metric']} | {r['alignment']} | {r['expect']} | {_fmt(r['ours'])} | "
              f"{_fmt(r['reference'])} | {r['abs']:.2e} | {r['rel']:.2e} |")
    bad = check(rows)
    for line in bad:
        print(f"UNEXPECTED: {line}")
    print("all rows as expected" if not bad else f"{len(bad)} row(s) not as expected")
    return 1 if bad else 0


def _print_speed(args) -> int:
    import json

    with open("/proc/loadavg") as fh:
        load = " ".join(fh.read().split()[:3])
    print(f"C,p,n = {args.speed} (float32 input); load average before: {load}; cores: {os.cpu_count()}")
    print("| pipeline | tile | statistics passes | NC metrics | field metrics | total | CPU time | RSS of the data "
          "| peak RSS (VmHWM) | VmPeak |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    totals: dict[str, float] = {}
    for r in speed(args.reference, args.speed, args.tile, args.ref_tile, args.which.split(","), args.timeout):
        if "error" in r:
            print(f"| {r['which']} | failed: {r['error']} |")
        else:
            totals[r["which"]] = r["total_s"]
            print(f"| {r['which']} | {r['tile']} | {r['stats_s']:.1f} s | {r['nc_s']:.1f} s | {r['field_s']:.1f} s | "
                  f"**{r['total_s']:.1f} s** | {r.get('cpu_s', float('nan')):.1f} s | {r['data_rss']:.2f} GiB | "
                  f"{r['VmHWM']:.2f} GiB{'' if r['peak_reset'] else ' (not reset)'} | {r['VmPeak']:.2f} GiB |",
                  flush=True)
        if args.json:
            with open(args.json, "a") as fh:
                fh.write(json.dumps({**r, "load_before": load}) + "\n")
    for ref in ("reference-float32", "reference-float64"):  # the target: ours at most the reference's time
        if "ours" in totals and ref in totals:
            ratio = totals["ours"] / totals[ref]
            print(f"ours / {ref} wall time = {ratio:.2f} (target <= 1: {'met' if ratio <= 1 else 'not met'})")
    with open("/proc/loadavg") as fh:
        print(f"load average after: {' '.join(fh.read().split()[:3])}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", required=True, help="a checkout of rhubarbwu/neural-collapse")
    ap.add_argument("--C", type=int, default=12)
    ap.add_argument("--p", type=int, default=32)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--tile", type=int, help="tile rows (parity: both, default 5; --speed: ours, default 1024)")
    ap.add_argument("--speed", metavar="C,p,n", help="time both pipelines on float32 data instead of the parity table")
    ap.add_argument("--ref-tile", type=int, default=64, help="--speed: the reference's tile_size (its README's 64)")
    ap.add_argument("--which", default="ours,reference-float32,reference-float64", help="--speed: pipelines to run")
    ap.add_argument("--timeout", type=float, default=1800.0, help="--speed: seconds per pipeline")
    ap.add_argument("--json", help="--speed: append one JSON line per pipeline to this file")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.tile is None:
        args.tile = 1024 if args.speed else 5
    try:
        import_reference(args.reference)
        if args.child:
            print(__import__("json").dumps(run_child(args.child, args.reference, args.speed, args.tile)))
            return 0
        return _print_speed(args) if args.speed else _print_parity(args)
    except ValueError as exc:
        print(f"bench_parity: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
