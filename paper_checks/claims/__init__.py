"""The paper's checkable claims: a small registry (:mod:`.registry`) and one module per group of evidence.

* :mod:`.symbolic`  one claim per section of the SymPy certificate (math §3-6);
* :mod:`.dynamics`  the theorem-level statements of math §6.4 on simulated trajectories;
* :mod:`.empirical` the experimental statements of math §4 / §7.2 on one training run, and theory vs observation;
* :mod:`.grid`      the paper's numbers across a grid of runs (math §7.3).

Each claim has a status ``pass``, ``fail`` (not supported, with numbers), ``n/a`` (cannot be evaluated on this
input, with the reason) or ``error`` (a toolkit bug, with its traceback); see :mod:`.registry`.
"""

from .dynamics import closed_form_tail_slopes, dynamics_claims, retraction_claims
from .empirical import RunEvidence, empirical_claims, perp_ratios
from .grid import GridEvidence, grid_claims
from .registry import (
    REGISTRY,
    STATUSES,
    Claim,
    NotApplicable,
    all_passed,
    claim,
    counts,
    error_claim,
    evaluate,
    exit_code,
    headline_of,
)
from .symbolic import symbolic_claims
from .tolerances import TOLERANCES

__all__ = [
    "Claim",
    "GridEvidence",
    "NotApplicable",
    "REGISTRY",
    "RunEvidence",
    "STATUSES",
    "TOLERANCES",
    "all_passed",
    "claim",
    "closed_form_tail_slopes",
    "counts",
    "dynamics_claims",
    "empirical_claims",
    "error_claim",
    "evaluate",
    "exit_code",
    "grid_claims",
    "headline_of",
    "perp_ratios",
    "retraction_claims",
    "symbolic_claims",
]
