"""simulate: JAX dynamics of Neural Collapse on the central path (Han, Papyan & Donoho, ICLR 2022).

Float64 throughout (``jax_enable_x64``). Every formula comes from ``theory`` (its lambdified SymPy laws and
its array-API metric functions); this package only integrates them (Diffrax, Optimistix) and records
trajectories. See math §3.4, §5 and §6.

Entry point: ``simulate.simulate(flow, num_classes=C, per_class=N, dim=p, t_max=T, options=SolverOptions(...))``
(defined in the module ``simulate.run``) returns a ``Trajectory``; ``simulate.write_run_dir(traj, DIR)`` writes it as a
run directory in the run format (config.json, metrics.jsonl: docs/run_format.md), read by ``paper_checks compare``.
One naming scheme: sizes are ``num_classes``
(C), ``per_class`` (N), ``dim`` (p) in every public function and in the CLI; the solver settings (rtol, atol,
solver, max_steps, error_norm) are one frozen ``SolverOptions`` passed as the keyword ``options=``.

Dynamics (each jit-able and vmap-able):

* ``integrate_reduced``  reduced ODE on the SNR singular values, d omega_j/dt = (kappa/N) omega_j/(C+omega_j^2)^2
* ``integrate_matrix``   matrix ODE dS/dt = (kappa/N)(C I + S S^T)^{-2} S                     (math §6.1)
* ``integrate_features`` projected (Riemannian) gradient flow on {Sigma_W = I, mu_G = 0}      (math §6.1)
* ``integrate_retraction`` Euler step on all features + re-whitening (math §6.1 "Contrast", math §9 item 19),
  a ``lax.scan`` over the saved-time intervals
* ``integrate_free``     unconstrained-features model, (W, b, H) trained jointly (off the central path)
* ``closed_form_omega``  c1 log w + c2 w^2 + c3 w^4 = a + t solved by Newton in log w      (math §6.3)
"""

import jax as _jax

# float64 before any submodule creates an array: the imports below follow this line (E402 allowed for this file
# in pyproject.toml)
_jax.config.update("jax_enable_x64", True)

from ._checks import check_sizes
from ._solve import SolverOptions
from .features import (
    FREE_OPTIONS,
    central_path_gradient,
    integrate_features,
    integrate_free,
    integrate_retraction,
    project_tangent,
    projected_rhs,
)
from .initial import class_labels, class_means, random_initial_features
from .matrix import integrate_matrix, matrix_rhs
from .metrics import feature_metrics, trajectory_metrics
from .reduced import (
    asymptotic_omega,
    closed_form_omega,
    integrate_reduced,
    integrate_reduced_ensemble,
    reduced_rhs,
)
from .run import DEFAULT_OPTIONS, FLOWS, Trajectory, simulate, tail_loglog_slope
from .run_dir import flow_records, write_run_dir

__all__ = [
    "DEFAULT_OPTIONS",
    "FLOWS",
    "FREE_OPTIONS",
    "SolverOptions",
    "Trajectory",
    "asymptotic_omega",
    "central_path_gradient",
    "check_sizes",
    "class_labels",
    "class_means",
    "closed_form_omega",
    "feature_metrics",
    "flow_records",
    "integrate_features",
    "integrate_free",
    "integrate_matrix",
    "integrate_reduced",
    "integrate_reduced_ensemble",
    "integrate_retraction",
    "matrix_rhs",
    "project_tangent",
    "projected_rhs",
    "random_initial_features",
    "reduced_rhs",
    "simulate",
    "tail_loglog_slope",
    "trajectory_metrics",
    "write_run_dir",
]
