"""Fit the closed-form SNR dynamics of the central path (math §6.3) to measured SNR singular values.

A trained network has no flow time: its training time ``T`` (epoch, or ``sum_k lr_k``) is an unknown monotone
reparametrisation of it, and ``N/kappa`` is not identifiable apart from that map.  We therefore fit

    G(omega_j(T)) = b_j + s * T**beta,      s > 0,   j = 1..C-1,                  (*)

with ``G(w) = C^2 log w + C w^2 + w^4 / 4`` (flow time ``t = (N/kappa) s T**beta``; ``beta = 1`` unless the fit
frees it).  The time map is shared by all ``j``: that sharing makes (*) a test of the theory, not a curve fit per
value.  ``G`` and its derivative come from :mod:`theory.laws` (no formula retyped); the residuals are on
``log omega``, since ``G`` spans many orders of magnitude.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from theory import laws
from theory.jsonio import jsonable

from ._laws import law

__all__ = [
    "closed_form_G",
    "invert_closed_form",
    "SNRFit",
    "fit_snr_dynamics",
    "r_squared",
]


@functools.cache
def _constants(C: int) -> tuple[float, float, float]:
    """``(c1, c2, c3) = (C^2, C, 1/4)``: ``theory.laws.constants`` with ``N = kappa = 1`` (math §6.3)."""
    return laws.constants(1.0, float(C), 1.0)


def closed_form_G(w: np.ndarray | float, C: int) -> np.ndarray:
    """``G(w) = C^2 log w + C w^2 + w^4/4`` at positive SNR singular values ``w`` for ``C`` classes (math §6.3,
    ``closed_form_lhs`` with ``N = kappa = 1``)."""
    w = np.asarray(w, dtype=np.float64)
    return np.asarray(law("closed_form_lhs")(w, 1.0, float(C), 1.0), dtype=np.float64)


def _dG_dlogw(w: np.ndarray, C: int) -> np.ndarray:
    """``dG/d(log w) = w dG/dw = w / omega_rhs(w; N=1, kappa=1) = (C + w^2)^2`` (math §6.2/6.3)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rhs = np.asarray(law("omega_rhs")(w, 1.0, float(C), 1.0), dtype=np.float64)
        d = w / rhs
    # w underflowing to 0 (log w < -700): the limit of (C + w^2)^2 is C^2 = c1.
    return np.where(np.isfinite(d) & (d > 0), d, _constants(int(C))[0])


def invert_closed_form(y: np.ndarray, C: int) -> np.ndarray:
    """Solve ``G(w) = y`` for ``w > 0`` elementwise (math §6.3 closed form, inverted).

    ``g(u) = G(e^u) = c1 u + c2 e^{2u} + c3 e^{4u}`` with ``(c1, c2, c3) = (C^2, C, 1/4)``
    (``theory.laws.constants`` at ``N = kappa = 1``) is increasing and convex in ``u = log w``
    with ``g'(u) = (C + e^{2u})^2``.  Newton's method started at a point with ``g(u0) >= y``
    therefore decreases monotonically to the root.  Such a point is
    the smallest positive one of ``y/c1``, ``log(y/c3)/4``, ``log(y/c2)/2`` when ``y > 0``
    (for ``u > 0`` every term of ``g`` is non-negative, so ``g`` exceeds each of them), and
    ``y/c1`` when ``y <= 0`` (the two exponential terms are positive).
    """
    y = np.asarray(y, dtype=np.float64)
    if not np.all(np.isfinite(y)):
        raise ValueError("invert_closed_form: non-finite closed-form value")
    c1, c2, c3 = _constants(int(C))
    # Values below G(1e-300) would need omega under the float64 range: clip them there.
    y = np.maximum(y, closed_form_G(np.float64(1e-300), C))
    # the start point of the docstring: the smallest valid candidate is the tightest
    with np.errstate(divide="ignore", invalid="ignore"):
        u_lin = y / c1
        u_quart = np.where(y > c3, np.log(np.maximum(y / c3, 1.0)) / 4.0, np.inf)
        u_quad = np.where(y > c2, np.log(np.maximum(y / c2, 1.0)) / 2.0, np.inf)
    u = np.where(y > 0, np.minimum(u_lin, np.minimum(u_quart, u_quad)), u_lin)
    for _ in range(200):
        w = np.exp(u)
        g = closed_form_G(w, C)
        du = (g - y) / _dG_dlogw(w, C)
        u = u - du
        if np.all(np.abs(du) <= 1e-14 * (1.0 + np.abs(u))):
            break
    else:  # pragma: no cover - Newton on a convex monotone function always converges
        raise RuntimeError("invert_closed_form: Newton iteration did not converge")
    return np.exp(u)


def r_squared(observed: np.ndarray, predicted: np.ndarray) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot`` (NaN if ``SS_tot = 0``)."""
    observed = np.asarray(observed, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    ss_res = float(np.sum((observed - predicted) ** 2))
    ss_tot = float(np.sum((observed - observed.mean()) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


@dataclass
class SNRFit:
    """Result of fitting (*) ``G(omega_j(T)) = b_j + s T^beta`` (math §6.3) to a log.

    Attributes
    ----------
    num_classes : C.
    time_key : name of the training-time axis ``T`` ("epoch" or "lr_weighted_steps").
    scale : ``s`` (closed-form units per unit of ``T**beta``).
    beta : exponent of the time map (1.0 when fixed).
    offsets : ``b_j``, shape (C-1,) (NaN for excluded values).
    times : the ``T`` used in the fit, shape (K,).
    r2_log : R^2 of ``log omega_j`` per singular value.
    rmse_log : root mean squared residual of ``log omega`` over all fitted points.
    used : which singular values entered the fit (positive at every fitted time).
    success, message : from :func:`scipy.optimize.least_squares`.
    starts : how many starts the multistart fit tried.
    """

    num_classes: int
    time_key: str
    scale: float
    beta: float
    offsets: np.ndarray
    times: np.ndarray
    r2_log: np.ndarray
    rmse_log: float
    used: np.ndarray
    fit_exponent: bool
    success: bool
    message: str
    starts: int

    def flow_time(self, T: np.ndarray | float) -> np.ndarray:
        """Flow time of the math §6.3 law at ``N = kappa = 1``: ``t = s T^beta``."""
        return self.scale * np.asarray(T, dtype=np.float64) ** self.beta

    def predict(self, T: np.ndarray | float) -> np.ndarray:
        """Fitted ``omega_j(T) = G^{-1}(b_j + s T^beta)``, shape (len(T), C-1); NaN where not fitted."""
        T = np.atleast_1d(np.asarray(T, dtype=np.float64))
        out = np.full((T.size, self.num_classes - 1), np.nan)
        y = self.offsets[None, self.used] + self.scale * T[:, None] ** self.beta
        out[:, self.used] = invert_closed_form(y, self.num_classes)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (lists of floats, NaN as None)."""
        return jsonable({
            "model": "G(omega_j(T)) = b_j + s * T**beta,  G(w) = C^2 log w + C w^2 + w^4/4  (math §6.3)",
            "num_classes": self.num_classes,
            "time_key": self.time_key,
            "scale_s": self.scale,
            "beta": self.beta,
            "fit_exponent": self.fit_exponent,
            "offsets_b": self.offsets,
            "r2_log_omega": self.r2_log,
            "r2_log_omega_min": float(np.nanmin(self.r2_log)) if np.any(np.isfinite(self.r2_log)) else None,
            "r2_log_omega_median": float(np.nanmedian(self.r2_log)) if np.any(np.isfinite(self.r2_log)) else None,
            "rmse_log_omega": self.rmse_log,
            "num_times": int(self.times.size),
            "time_range": [float(self.times.min()), float(self.times.max())],
            "used_singular_values": [int(i) for i in np.flatnonzero(self.used)],
            "success": self.success,
            "message": self.message,
            "multistart_starts": self.starts,
        })


def fit_snr_dynamics(
    times: Sequence[float] | np.ndarray,
    omega: Sequence[Sequence[float]] | np.ndarray,
    *,
    num_classes: int | None = None,
    time_key: str = "T",
    fit_exponent: bool = False,
) -> SNRFit:
    """Least-squares fit of the math §6.3 closed form with a monotone time map.

    Model (*): ``G(omega_j(T)) = b_j + s T^beta`` with ``s > 0`` shared by all ``j``.
    Residuals: ``log omega_obs[k, j] - log G^{-1}(b_j + s T_k^beta)``.

    Parameters
    ----------
    times : training times ``T_k > 0`` (K,), increasing.
    omega : measured SNR singular values (K, C-1), descending per row.
    num_classes : C (default ``omega.shape[1] + 1``).
    fit_exponent : free ``beta`` (bounded to [0.05, 5]) instead of ``beta = 1``.
    """
    T = np.asarray(times, dtype=np.float64).ravel()
    W = np.asarray(omega, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] != T.size:
        raise ValueError(f"fit_snr_dynamics: omega must be (len(times), C-1); got {W.shape} for {T.size} times")
    C = int(num_classes) if num_classes is not None else W.shape[1] + 1
    if W.shape[1] != C - 1:
        raise ValueError(f"fit_snr_dynamics: omega has {W.shape[1]} columns, expected C-1 = {C - 1}")
    if T.size < 3:
        raise ValueError(f"fit_snr_dynamics: need at least 3 measured times, got {T.size}")
    if not np.all(np.isfinite(T)) or np.any(T <= 0):
        raise ValueError("fit_snr_dynamics: training times must be finite and positive")
    used = np.all(np.isfinite(W) & (W > 0), axis=0)
    if not np.any(used):
        raise ValueError("fit_snr_dynamics: no singular value is positive at every time")
    Wu = W[:, used]
    model = _TimeMap(C=C, Tn=T / float(np.max(T)), logW=np.log(Wu), Gobs=closed_form_G(Wu, C),
                     fit_exponent=fit_exponent)
    sol, starts = _multistart(model)
    return _snr_fit(model, sol, T, used, time_key=time_key, starts=starts)


@dataclass
class _TimeMap:
    """Model (*) on the fitted singular values, in a well-conditioned parametrisation (all O(1)).

    ``theta = (log s_n, [beta,] u_1..u_J)``: ``u_j = log omega_j`` at the first fitted time ``T_0``, ``s_n`` the
    scale for normalised time ``T/T_max``, and ``beta``.  Then
    ``G(omega_j(T)) = G(e^{u_j}) + s_n ((T/T_max)^beta - (T_0/T_max)^beta)``,
    which is (*) with ``b_j = G(e^{u_j}) - s T_0^beta`` and ``s = s_n / T_max^beta``.
    """

    C: int
    Tn: np.ndarray  # T / T_max (K,)
    logW: np.ndarray  # log of the fitted observed singular values (K, J)
    Gobs: np.ndarray  # G of the fitted observed singular values (K, J)
    fit_exponent: bool

    def unpack(self, theta: np.ndarray) -> tuple[float, float, np.ndarray]:
        log_s = theta[0]
        beta = theta[1] if self.fit_exponent else 1.0
        u = theta[2:] if self.fit_exponent else theta[1:]
        return log_s, beta, u

    def log_omega(self, theta: np.ndarray) -> np.ndarray:
        log_s, beta, u = self.unpack(theta)
        y = closed_form_G(np.exp(u), self.C)[None, :] + np.exp(log_s) * (self.Tn[:, None] ** beta - self.Tn[0] ** beta)
        return np.log(invert_closed_form(y, self.C))

    def residuals(self, theta: np.ndarray) -> np.ndarray:
        return (self.log_omega(theta) - self.logW).ravel()

    def start_scale(self, beta: float) -> float:
        """Median over j of the least-squares slope of G(omega_j) - G(omega_j(T_0)) on Tn^beta - Tn_0^beta."""
        x = self.Tn**beta - self.Tn[0] ** beta
        dy = self.Gobs - self.Gobs[0][None, :]
        den = float(np.sum(x**2))
        slopes = (x @ dy) / den if den > 0 else np.zeros(self.logW.shape[1])
        pos = slopes[np.isfinite(slopes) & (slopes > 0)]
        return float(np.median(pos)) if pos.size else 1e-6 * float(np.max(np.abs(self.Gobs)) + 1.0)


def _multistart(model: _TimeMap) -> tuple[Any, int]:
    """``(solution, starts)``: SciPy's trust-region least squares from every start (the scale at 1, 0.1 and 10
    times :meth:`_TimeMap.start_scale`, each at beta 0.5, 1, 2, 4 when beta is free); the lowest cost wins (the
    first on a tie)."""
    J = model.logW.shape[1]
    u0 = model.logW[0]
    fit_exponent = model.fit_exponent
    betas = (0.5, 1.0, 2.0, 4.0) if fit_exponent else (1.0,)
    lower = [-np.inf] + ([0.05] if fit_exponent else []) + [-np.inf] * J
    upper = [np.inf] + ([5.0] if fit_exponent else []) + [np.inf] * J
    solutions = []
    for beta0 in betas:
        s0 = model.start_scale(beta0)
        for factor in (1.0, 0.1, 10.0):
            theta0 = [np.log(s0 * factor)] + ([beta0] if fit_exponent else []) + list(u0)
            solutions.append(least_squares(model.residuals, np.asarray(theta0), bounds=(lower, upper), method="trf",
                                           max_nfev=400))
    return min(solutions, key=lambda sol: sol.cost), len(solutions)


def _snr_fit(model: _TimeMap, sol: Any, T: np.ndarray, used: np.ndarray, *, time_key: str, starts: int) -> SNRFit:
    """The :class:`SNRFit` of solution ``sol``: (*)'s ``s`` and ``b_j`` back in the units of ``T``, R^2 of log
    omega per singular value (NaN for those not fitted) and the RMSE."""
    C, logW = model.C, model.logW
    log_s_n, beta, u = model.unpack(sol.x)
    scale = float(np.exp(log_s_n) / float(np.max(T)) ** beta)
    b = closed_form_G(np.exp(u), C) - scale * T[0] ** beta
    fitted_u = np.exp(model.log_omega(sol.x))
    offsets = np.full(C - 1, np.nan)
    offsets[used] = b
    r2 = np.full(C - 1, np.nan)
    for k, j in enumerate(np.flatnonzero(used)):
        r2[j] = r_squared(logW[:, k], np.log(fitted_u[:, k]))
    rmse = float(np.sqrt(np.mean((np.log(fitted_u) - logW) ** 2)))
    return SNRFit(
        num_classes=C,
        time_key=time_key,
        scale=scale,
        beta=float(beta),
        offsets=offsets,
        times=T,
        r2_log=r2,
        rmse_log=rmse,
        used=used,
        fit_exponent=model.fit_exponent,
        success=bool(sol.success),
        message=str(sol.message),
        starts=starts,
    )
