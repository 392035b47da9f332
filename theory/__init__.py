"""theory: the mathematics of Neural Collapse under MSE loss (Han, Papyan & Donoho, ICLR 2022).

Two halves:

* the one numeric definition of every NC quantity, written against the Python array API
  (NumPy, JAX with x64, torch; CPU or GPU) — class statistics, the least-squares classifier,
  the decomposition ``L = L_NC1 + L_NC2/3 + L_perp``, NC1-NC4, the SNR singular values, and one
  metrics record composed of them all (``theory.metrics_record``); the field's other metrics (CDNV,
  hyperspherical uniformity, interference, OOD orthogonality: ``theory.field_metrics``); every ``C x C``
  quantity in tiles of ``tile`` rows (``theory.DEFAULT_TILE``), so ``C`` can be in the tens of thousands;
* SymPy derivations (``theory.symbolic``, ``theory.laws``) certifying the identities and
  producing the scalar laws that the simulator integrates.

This package imports neither JAX nor torch.  ``theory.laws`` (SymPy) and ``theory.symbolic`` are loaded on
first attribute access (``theory.laws.numeric(...)`` works after a plain ``import theory``), so ``import theory``
stays light.
"""

import importlib as _importlib

from ._backend import SingularMatrixError, to_float, to_float_dict
from ._validation import NonFiniteError
from .conventions import REDUCTIONS, flow_time_per_lr, lam_from_weight_decay
from .decomposition import decompose, huygens_split, mse_loss
from .etf import etf_gram, simplex_etf
from .field_metrics import (
    KERNELS,
    cdnv,
    cdnv_pairs,
    class_deviation_sums,
    class_variances,
    interference_grid,
    kernel_statistics,
    ood_orthogonality,
)
from .least_squares import (
    ON_SINGULAR,
    LeastSquaresSolution,
    TotalSpectrum,
    least_squares_classifier,
    least_squares_solution,
    min_norm_least_squares,
    total_spectrum,
)
from .metrics import CONVENTIONS, nc1_trace, nc_metrics, ncc_mismatch, ncc_mismatch_count
from .outputs import loss_from_totals, ridge_penalty, sample_totals
from .record import RECORD_KEYS, metrics_record
from .snr import (
    SUPPORTS,
    SNRSupport,
    WithinRange,
    inverse_sqrt_within,
    renormalize,
    snr_matrix,
    snr_singular_values,
    snr_support,
    within_range,
)
from .stats import ClassStats, ClassStatsAccumulator, class_stats
from .tiling import DEFAULT_TILE

__all__ = [
    "CONVENTIONS",
    "ClassStats",
    "ClassStatsAccumulator",
    "DEFAULT_TILE",
    "KERNELS",
    "LeastSquaresSolution",
    "NonFiniteError",
    "ON_SINGULAR",
    "RECORD_KEYS",
    "REDUCTIONS",
    "SNRSupport",
    "SUPPORTS",
    "SingularMatrixError",
    "TotalSpectrum",
    "WithinRange",
    "cdnv",
    "cdnv_pairs",
    "class_deviation_sums",
    "class_stats",
    "class_variances",
    "decompose",
    "etf_gram",
    "flow_time_per_lr",
    "huygens_split",
    "interference_grid",
    "inverse_sqrt_within",
    "kernel_statistics",
    "lam_from_weight_decay",
    "least_squares_classifier",
    "least_squares_solution",
    "loss_from_totals",
    "metrics_record",
    "min_norm_least_squares",
    "mse_loss",
    "nc1_trace",
    "nc_metrics",
    "ncc_mismatch",
    "ncc_mismatch_count",
    "ood_orthogonality",
    "renormalize",
    "ridge_penalty",
    "sample_totals",
    "simplex_etf",
    "snr_matrix",
    "snr_singular_values",
    "snr_support",
    "to_float",
    "to_float_dict",
    "total_spectrum",
    "within_range",
]

#: Submodules loaded on first access as attributes of the package (PEP 562), not at ``import theory``.
_LAZY_SUBMODULES = ("laws", "symbolic")


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        return _importlib.import_module(f".{name}", __name__)  # the import binds it on the package too
    raise AttributeError(f"module 'theory' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_SUBMODULES))
