"""Access to the SymPy-derived scalar laws of ``theory.laws`` as JAX callables (math §6.2, §6.3, §6.1 contrast).

Nothing is retyped here: the right-hand sides and the closed form are ``theory.laws.numeric(name, backend="jax")``.
"""

from __future__ import annotations

import theory
import theory.laws

from ._checks import is_concrete


def law(name: str):
    """The lambdified JAX function ``theory.laws.numeric(name, backend="jax")`` (cached there)."""
    return theory.laws.numeric(name, backend="jax")


def kappa_value(kappa, N: float, C: int) -> float:
    """Time-scale factor kappa of the flow dX/dt = -kappa Proj grad L (math §6.3 table): a positive number, or a
    convention name "projected" (1), "sum" (C N), "means" (N); ``theory.laws.kappa``."""
    if not isinstance(kappa, str) and not is_concrete(kappa):
        return kappa  # traced (inside jit/vmap): used as is
    return float(theory.laws.kappa(kappa, N, C))
