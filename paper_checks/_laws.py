"""The scalar laws of :mod:`theory.laws` as numpy functions, and their sum over the SNR singular values.

One place for the two patterns every paper_checks module needs: ``law(name)`` (the lambdified
``theory.laws.numeric(name, "numpy")``) and ``law_sum(name, omega, C)`` (``sum_j law(omega_j)``,
math §3.4 / 5.1).
"""

from __future__ import annotations

import numpy as np

from theory import laws
from theory.laws import numeric as law  # law(name): the NumPy function of law ``name`` (theory.laws.SIGNATURES)

__all__ = ["law", "law_sum"]


def law_sum(name: str, omega: np.ndarray, C: int) -> np.ndarray:
    """``sum_j law(omega_j)`` over the last axis of ``omega`` (math §3.4 / 5.1); NaN entries stay NaN.

    The law's arguments must be ``(omega,)`` or ``(omega, C)`` (``theory.laws.SIGNATURES``).
    """
    arity = len(laws.SIGNATURES[name])
    if arity == 1:
        vals = law(name)(omega)
    elif arity == 2:
        vals = law(name)(omega, float(C))
    else:
        raise ValueError(f"law {name!r} takes {laws.SIGNATURES[name]}, not (omega[, C])")
    return np.sum(np.asarray(vals, dtype=np.float64), axis=-1)
