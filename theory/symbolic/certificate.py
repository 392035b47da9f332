"""Assemble and run the whole symbolic certificate (math §3.1, §3.3, §3.3b, §3.4, §3.5, §5.1, §6.1-6.4)."""

from __future__ import annotations

from ._core import Certificate, CheckSpec, run_specs

__all__ = ["all_specs", "run_certificate"]


def all_specs(exhaustive: bool = False) -> list[CheckSpec]:
    """Every check, in report order (``quick`` ones marked, see :func:`run_specs`). ``exhaustive`` adds the slow
    fully symbolic single-shot certificates."""
    from . import central_path, decomposition, flow, invariance, laws_check, least_squares, probe, rank_deficient

    out = least_squares.specs() + decomposition.specs(exhaustive)
    for module in (invariance, central_path, probe, rank_deficient, flow, laws_check):
        out += module.specs()
    return out


def run_certificate(quick: bool = False, exhaustive: bool = False) -> Certificate:
    """Run every derivation check and return the :class:`~theory.symbolic.Certificate`.

    ``quick`` skips the ``C = 4`` checks (math §3.3, §3.4, §6.1, §6.2); ``exhaustive`` adds single-shot fully
    symbolic certificates that take tens of seconds each.
    """
    return run_specs(all_specs(exhaustive), quick=quick)
