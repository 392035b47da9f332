"""One metrics record: every NC quantity of one measurement, as JSON-ready Python values.

The record is the line of a run's ``metrics.jsonl`` without its bookkeeping keys (epoch, times, learning rate);
its keys (:data:`RECORD_KEYS`) are defined in docs/run_format.md.  Every formula is theory's (:func:`theory.decompose`,
:func:`theory.nc_metrics`, :func:`theory.snr_support`, :func:`theory.loss_from_totals`); this module only composes
and names them.  A quantity that cannot be computed is ``None``, and ``warnings`` (present only then) says why.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from ._backend import EPS, Array, namespace, to_float, to_float_dict, to_list
from .decomposition import decompose
from .least_squares import total_spectrum
from .metrics import nc_metrics
from .outputs import loss_from_totals
from .snr import ZERO_WITHIN, round_off_scale, snr_support
from .stats import ClassStats
from .tiling import DEFAULT_TILE, check_tile

__all__ = ["DECOMPOSITION_KEYS", "NC_KEYS", "RECORD_KEYS", "SNR_KEYS", "metrics_record", "sigma_w_is_zero"]

DECOMPOSITION_KEYS = ("l_nc1", "l_nc23", "l_perp", "l_central", "rho_perp", "central_path_distance")
NC_KEYS = (
    "nc1", "nc1_notebook", "nc2_equinorm_means", "nc2_equinorm_classifiers",
    "nc2_equiangular_means", "nc2_equiangular_classifiers",
    "nc2_maxangle_means", "nc2_maxangle_classifiers", "nc3",
)
SNR_KEYS = ("snr_singular_values", "snr_support", "snr_rank", "snr_dim", "snr_dropped_fraction")

#: Every key of a record (``warnings`` comes on top when some quantity is undefined).
RECORD_KEYS: tuple[str, ...] = (
    ("train_error", "train_count", "class_counts", "lam", "lam_notebook", "loss", "loss_nowd")
    + DECOMPOSITION_KEYS + ("identity_residual",) + NC_KEYS + ("nc4", "tr_sigma_w") + SNR_KEYS
    + ("l_nc1_notebook", "l_nc23_notebook", "l_perp_notebook",
       "l_nc1_lam0", "l_nc23_lam0", "l_perp_lam0", "l_central_lam0", "ls_rank_lam0")
)


def _numeric_errors() -> tuple[type[BaseException], ...]:
    """The exceptions of a numerical failure: ``ValueError`` (theory's singularity errors, NumPy's
    ``LinAlgError``), ``ArithmeticError`` and, when torch is loaded, ``torch.linalg.LinAlgError`` (a
    ``RuntimeError``).  torch is never imported here."""
    errors: tuple[type[BaseException], ...] = (ValueError, ArithmeticError)
    torch = sys.modules.get("torch")
    linalg_error = getattr(getattr(torch, "linalg", None), "LinAlgError", None)
    return errors + ((linalg_error,) if linalg_error is not None else ())


def sigma_w_is_zero(stats: ClassStats) -> bool:
    """True when ``Sigma_W`` is zero to round-off, ``tr Sigma_W <= p eps`` :func:`theory.snr.round_off_scale` (the
    rule of :func:`theory.snr.within_range` on the trace, an upper bound of the largest eigenvalue): every class
    collapsed to its mean as far as float64 can tell, so the SNR (math §1, §5.3) is undefined."""
    xp = namespace(stats.sigma_w)
    return to_float(xp.sum(xp.linalg.diagonal(stats.sigma_w))) <= stats.dim * EPS * round_off_scale(stats)


def _guard(warnings: list[str], keys, what: str, fn: Callable[[], dict]) -> dict:
    """``fn()``; on a numerical failure ``{key: None}`` for every key, and a warning naming ``what``."""
    try:
        return fn()
    except _numeric_errors() as exc:
        warnings.append(f"{what}: {exc}")
        return {k: None for k in keys}


def metrics_record(
    stats: ClassStats,
    W: Array,
    b: Array | None,
    totals: dict,
    errors: int,
    *,
    lam: float,
    lam_notebook: float,
    tile: int = DEFAULT_TILE,
) -> dict[str, Any]:
    """Every metric of one measurement as Python values (the keys of :data:`RECORD_KEYS`, docs/run_format.md).

    ``totals``: :func:`theory.sample_totals` of the features with ``means=stats.means`` (``ncc_mismatches``
    needed), summed over batches or ranks; ``errors``: how many samples the classifier (or the network)
    gets wrong.  ``tile``: rows per tile of the ``C x C`` computations (math §2.3, :mod:`theory.tiling`).  Works on
    NumPy, JAX (concrete values) and torch inputs.
    """
    tile = check_tile(tile)
    if totals.get("ncc_mismatches") is None:
        raise ValueError("totals must carry 'ncc_mismatches': call theory.sample_totals with means=stats.means")
    xp = namespace(stats.means)
    warnings: list[str] = []
    count = int(round(to_float(totals["count"])))
    out: dict[str, Any] = {"train_error": errors / count, "train_count": count,
                           "class_counts": [int(round(c)) for c in to_list(stats.counts)],
                           "lam": float(lam), "lam_notebook": float(lam_notebook)}
    # the loss straight from the samples' outputs (math §1)
    loss = to_float(loss_from_totals(totals, W, b, lam=lam))
    out["loss"], out["loss_nowd"] = loss, to_float(loss_from_totals(totals, W, b, lam=0.0))
    # one eigendecomposition of Sigma_T serves the three ridges (lam, lam_notebook, 0)
    spectrum = total_spectrum(stats)

    def _decompose(value: float) -> dict:
        return to_float_dict(decompose(stats, W, b, lam=value, spectrum=spectrum, tile=tile))

    dec = _guard(warnings, DECOMPOSITION_KEYS, "decomposition", lambda: _decompose(lam))
    out.update({k: dec.get(k) for k in DECOMPOSITION_KEYS})
    if dec["l_nc1"] is not None:
        total = dec["l_nc1"] + dec["l_nc23"] + dec["l_perp"]
        out["identity_residual"] = abs(loss - total) / abs(loss) if loss != 0 else abs(total)
    else:
        out["identity_residual"] = None

    def _nc() -> dict:
        nc = nc_metrics(stats, W, b, convention="paper", central_path=False, tile=tile)
        for name, reason in nc.pop("unavailable", {}).items():
            warnings.append(f"nc_metrics: {name} unavailable: {reason}")
        return to_float_dict(nc)

    nc = _guard(warnings, NC_KEYS, "nc_metrics", _nc)
    out.update({k: nc.get(k) for k in NC_KEYS})
    out["nc4"] = to_float(totals["ncc_mismatches"] / totals["count"])
    out["tr_sigma_w"] = to_float(xp.sum(xp.linalg.diagonal(stats.sigma_w)))  # tr Sigma_W (math §1)

    def _snr() -> dict:  # on the support of Sigma_W when it is singular (math §5.3)
        if sigma_w_is_zero(stats):  # a relative singularity test alone would take round-off for spread
            raise ValueError(ZERO_WITHIN)
        sup = snr_support(stats, support="auto")
        return {"snr_singular_values": [float(v) for v in to_list(sup.values)],
                "snr_support": sup.support, "snr_rank": sup.rank, "snr_dim": sup.dim,
                "snr_dropped_fraction": float(sup.dropped_fraction)}

    out.update(_guard(warnings, SNR_KEYS, "snr_singular_values", _snr))

    dec_nb = _guard(warnings, DECOMPOSITION_KEYS, "decomposition (notebook lambda)",
                    lambda: _decompose(lam_notebook))
    for k in ("l_nc1", "l_nc23", "l_perp"):
        out[f"{k}_notebook"] = dec_nb.get(k)
    # the theory's central path is lambda = 0 (math §3.4, §6): there the terms equal the closed forms in the
    # SNR singular values
    dec_0 = _guard(warnings, DECOMPOSITION_KEYS, "decomposition (lambda = 0)", lambda: _decompose(0.0))
    for k in ("l_nc1", "l_nc23", "l_perp", "l_central"):
        out[f"{k}_lam0"] = dec_0.get(k)
    out["ls_rank_lam0"] = None if dec_0.get("ls_rank") is None else int(dec_0["ls_rank"])
    if warnings:
        out["warnings"] = warnings
    return out
