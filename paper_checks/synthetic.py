"""Synthetic metrics logs with known ground truth, for testing the fit and the claim checks: the SNR follows the
math §6.3 closed form under a known time map (:mod:`paper_checks.fit`'s (*)), the central-path terms are the
math §3.4 laws at it, ``l_perp = perp_fraction * (l_nc1 + l_nc23)``, with optional log-normal noise on the SNR.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._laws import law_sum
from .fit import closed_form_G, invert_closed_form

__all__ = ["closed_form_snr", "synthetic_metrics_log"]


def closed_form_snr(T: np.ndarray, omega_at_1: np.ndarray, *, C: int, scale: float, beta: float = 1.0) -> np.ndarray:
    """``omega_j(T) = G^{-1}(b_j + s T^beta)`` with ``b_j`` chosen so ``omega_j(T=1) = omega_at_1[j]`` (math §6.3)."""
    T = np.asarray(T, dtype=np.float64)
    b = closed_form_G(np.asarray(omega_at_1, dtype=np.float64), C) - scale
    return invert_closed_form(b[None, :] + scale * T[:, None] ** beta, C)


def synthetic_metrics_log(
    *,
    C: int = 10,
    epochs: int = 60,
    omega_at_1: np.ndarray | None = None,
    scale: float = 5.0,
    beta: float = 1.0,
    noise: float = 0.0,
    perp_fraction: float = 1e-4,
    zero_error_epoch: int = 10,
    time_key: str = "epoch",
    seed: int = 0,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Build a metrics log whose SNR follows the closed form under a known time map.

    The time map is applied to ``time_key`` ("epoch" or "lr_weighted_steps"; the
    synthetic schedule has ``lr = 0.1`` and 10 steps per epoch, so
    ``lr_weighted_steps = epoch``).  Returns ``(records, truth)`` where ``truth`` holds
    ``scale``, ``beta``, ``offsets`` (``b_j``) and the noiseless ``omega``.
    """
    rng = np.random.default_rng(seed)
    if omega_at_1 is None:
        omega_at_1 = np.sort(rng.uniform(0.5, 3.0, size=C - 1))[::-1]
    omega_at_1 = np.asarray(omega_at_1, dtype=np.float64)
    ep = np.arange(1, epochs + 1, dtype=np.float64)
    lr = np.full_like(ep, 0.1)
    lr_steps = np.cumsum(lr * 10.0)
    T = ep if time_key == "epoch" else lr_steps
    omega_true = closed_form_snr(T, omega_at_1, C=C, scale=scale, beta=beta)
    omega = omega_true * np.exp(noise * rng.standard_normal(omega_true.shape))
    omega = -np.sort(-omega, axis=1)

    terms = _central_path_terms(omega, C, perp_fraction)
    inv = 1.0 / omega.min(axis=1) ** 2  # a decreasing "collapse" scale for the other metrics
    records = [_record(k, int(ep[k]), float(lr[k]), float(lr_steps[k]), terms, float(inv[k]), omega[k], C=C,
                       perp_fraction=perp_fraction, zero_error_epoch=zero_error_epoch) for k in range(epochs)]
    b = closed_form_G(omega_at_1, C) - scale
    truth = {"scale": scale, "beta": beta, "offsets": b, "omega": omega_true, "time_key": time_key, "C": C}
    return records, truth


def _central_path_terms(omega: np.ndarray, C: int, perp_fraction: float) -> dict[str, np.ndarray]:
    """Per epoch: the math §3.4 laws at ``omega`` (``l_nc1``, ``l_nc23``, ``l_central``, ``nc1``), ``l_perp`` as
    ``perp_fraction`` of ``l_central``, and the loss (``l_central + l_perp``)."""
    l_nc1 = law_sum("l_nc1", omega, C)
    l_nc23 = law_sum("l_nc23", omega, C)
    l_central = l_nc1 + l_nc23
    l_perp = perp_fraction * l_central
    return {"l_nc1": l_nc1, "l_nc23": l_nc23, "l_central": l_central, "nc1": law_sum("nc1_renormalized", omega, C),
            "l_perp": l_perp, "loss": l_central + l_perp}


def _record(k: int, e: int, lr: float, lr_steps: float, terms: dict[str, np.ndarray], inv: float,
            omega: np.ndarray, *, C: int, perp_fraction: float, zero_error_epoch: int) -> dict[str, Any]:
    """The metrics record of epoch ``e`` (row ``k`` of ``terms``): the laws' terms, a training error that reaches
    zero at ``zero_error_epoch``, the other metrics on the decreasing scale ``inv``."""
    train_error = 0.0 if e >= zero_error_epoch else 0.5 * (1.0 - e / zero_error_epoch)
    t = {key: float(v[k]) for key, v in terms.items()}
    decomposition = ("l_nc1", "l_nc23", "l_perp", "l_central")
    nc2 = {"equinorm_means": 0.3, "equinorm_classifiers": 0.2, "equiangular_means": 0.1,
           "equiangular_classifiers": 0.1, "maxangle_means": 0.1, "maxangle_classifiers": 0.1}
    return {
        "epoch": e,
        "step": 10 * e,
        "lr": lr,
        "lr_weighted_steps": lr_steps,
        "time_s": 0.01 * e,
        "train_error": train_error,
        "test_error": 0.05 + train_error,
        "loss": t["loss"],
        "loss_nowd": t["loss"],
        "lam": 0.0,
        **{key: t[key] for key in decomposition},
        # lam = 0 here, so the run's terms are also its lambda = 0 terms (as empirical.measure logs them)
        **{f"{key}_lam0": t[key] for key in decomposition},
        "rho_perp": t["l_perp"] / t["loss"],
        "identity_residual": 0.0,
        "central_path_distance": float(np.sqrt(perp_fraction)),
        "nc1": t["nc1"],
        "nc1_notebook": C * t["nc1"],
        **{f"nc2_{key}": scale * inv for key, scale in nc2.items()},
        "nc3": float(0.5 * inv**2),
        "nc4": float(max(0.0, 0.02 * (1.0 - e / (2.0 * zero_error_epoch)))),
        "snr_singular_values": [float(v) for v in omega],
    }
