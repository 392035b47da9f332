"""SymPy derivations certifying the identities of Han, Papyan & Donoho (ICLR 2022), math §3-6.

``run_certificate(quick=False)`` runs every check and returns a :class:`Certificate` with ``.checks`` (dicts
``name, passed, section, detail, seconds, kind, statement, latex``), ``.passed``, ``.markdown()`` and
``.to_json()``; ``python -m theory`` prints the report. One module per part of the write-up (``least_squares``,
``decomposition``, ``invariance``, ``central_path``, ``probe``, ``rank_deficient``, ``flow``, ``laws_check``), on
``model`` (symbolic statistics and loss terms) and ``traces`` (the size-free matrix algebra).
Importing this package imports SymPy only (JAX is imported lazily by one check).
"""

from ._core import KINDS, Certificate, CheckSpec, Outcome, run_specs
from .certificate import all_specs, run_certificate
from .report import SECTION_TITLES

__all__ = [
    "Certificate",
    "CheckSpec",
    "KINDS",
    "Outcome",
    "SECTION_TITLES",
    "all_specs",
    "run_certificate",
    "run_specs",
]
