"""paper_checks: every checkable claim of Han, Papyan & Donoho (ICLR 2022), run end to end.

* :mod:`paper_checks.fit`       least-squares fit of the math §6.3 closed-form SNR dynamics with a
  monotone time map ``G(omega_j(T)) = b_j + s T^beta``;
* :mod:`paper_checks.compare`   predicted against observed for a training run (``compare.json`` + figures);
* :mod:`paper_checks.claims`    the registry of claims (symbolic, dynamics, empirical, grid) and their checks;
* :mod:`paper_checks.report`    ``claims.json``, ``report.md``, self-contained ``report.html``;
* :mod:`paper_checks.main`      the main job (``python -m paper_checks``);
* :mod:`paper_checks.grid`      a grid of (dataset, network, loss) runs and the paper's numbers across it;
* :mod:`paper_checks.synthetic` synthetic metrics logs with known ground truth (tests).

Importing this package imports neither JAX nor torch; the stages import them when they run.
"""

from .claims import (
    STATUSES,
    TOLERANCES,
    Claim,
    NotApplicable,
    all_passed,
    dynamics_claims,
    empirical_claims,
    exit_code,
    grid_claims,
    symbolic_claims,
)
from .compare import Comparison, compare_records, compare_run, read_log
from .fit import SNRFit, fit_snr_dynamics, invert_closed_form

__all__ = [
    "Claim",
    "Comparison",
    "NotApplicable",
    "SNRFit",
    "STATUSES",
    "TOLERANCES",
    "all_passed",
    "compare_records",
    "compare_run",
    "dynamics_claims",
    "empirical_claims",
    "exit_code",
    "fit_snr_dynamics",
    "grid_claims",
    "invert_closed_form",
    "read_log",
    "symbolic_claims",
]
