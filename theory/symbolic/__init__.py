"""SymPy derivations certifying the identities of Han, Papyan & Donoho (ICLR 2022), math §3-6.

``run_certificate(quick=False)`` runs every check and returns a :class:`Certificate` with
``.checks`` (dicts ``name, passed, section, detail, seconds, kind, statement, latex``), ``.passed``,
``.markdown()`` and ``.to_json()``. ``python -m theory`` prints the report.

Modules (each a list of checks, every check a SymPy computation whose failure is visible):

* :mod:`.least_squares`  math §3.1, §3.3 steps 1, 2, 6 -- normal equations, augmented vs non-augmented;
* :mod:`.decomposition`  math §3.2, §3.3 steps 3-5, 3.3b -- the certificate ``L = L_NC1 + L_NC2/3 + L_perp``;
* :mod:`.invariance`     math §5.1 -- affine invariance at ``lambda = 0``, only orthogonal at ``lambda > 0``;
* :mod:`.central_path`   math §3.4 -- :mod:`theory.laws`' loss terms against the normal equations (SNR singular values);
* :mod:`.probe`          math §3.5 -- a least-squares probe at any layer: ``L_perp = 0``, ``L = L_NC1 + L_NC2/3``;
* :mod:`.flow`           math §6.1-6.4 -- renormalised flow derived from the normal equations and the projection,
  certifying :mod:`theory.laws`' flow, closed form, conventions, retraction law and asymptotics;
* :mod:`.laws_check`     :mod:`theory.laws`' lambdified numpy/jax functions and constants against its expressions;
* :mod:`.traces`         the size-free matrix algebra used for the general arguments;
* :mod:`.model`          symbolic features, statistics and loss terms;
* :mod:`.report`         the certificate's Markdown (``Certificate.markdown()``).

Importing this package imports SymPy only (JAX is imported lazily by one check).
"""

from ._core import KINDS, Certificate, CheckSpec, Outcome, run_specs
from .certificate import all_specs, run_certificate
from .report import SECTION_TITLES

__all__ = [
    "KINDS",
    "SECTION_TITLES",
    "Certificate",
    "CheckSpec",
    "Outcome",
    "all_specs",
    "run_certificate",
    "run_specs",
]
