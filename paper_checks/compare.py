"""Predicted against observed: the central-path theory set beside any training log (math §6.5, §7.2).

Reads a run's log (a run directory, a ``metrics.jsonl`` or a CSV file; docs/run_format.md), chooses the clock
(:func:`resolve_clock`, math §6.5), fits the math §6.3 closed form with a monotone time map
(:func:`paper_checks.fit.fit_snr_dynamics`), integrates ``simulate``'s reduced ODE (math §6.2) forward from an
early epoch (on the fitted map and, where the flow time is known, on the derived clock alone), predicts the
math §3.4 laws (``theory.laws``, summed over ``j``) and writes ``compare.json`` and figures.

Only ``epoch`` is required: a part that needs a key the log lacks is absent and named in ``unavailable``, never
an error.  The theory is stated at ``lambda = 0`` for unconstrained features; a network's disagreement is a
measured outcome, not an error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

import theory
from empirical.runs import TPT_THRESHOLD_DEFAULT, terminal_phase_start
from theory.jsonio import dumps, jsonable

from . import _plot
from ._laws import law_sum
from .fit import SNRFit, fit_snr_dynamics

__all__ = [
    "PREDICTED_QUANTITIES",
    "TIME_CHOICES",
    "Clock",
    "Comparison",
    "ErrorStats",
    "ForwardPrediction",
    "QuantityComparison",
    "RatioComparison",
    "balance",
    "class_counts",
    "column",
    "compare_output_dir",
    "compare_records",
    "compare_run",
    "config_value",
    "measured_key_at_lambda_zero",
    "read_log",
    "run_loss",
    "run_mse_scale",
    "terminal_phase_start",
    "write_compare_figures",
]

#: ``--time`` values: ``auto`` = flow time when the log allows, else lr_weighted_steps, else epoch (math §6.5).
TIME_CHOICES = ("auto", "flow", "lr_steps", "epoch")

#: Fewest epochs a fit window may have for the fit to be made at all (three free time parameters plus
#: one offset per singular value need more points than that); the claims ask for more (tolerances).
MIN_WINDOW = 4

#: measured key -> theory.laws law name (summed over the C-1 singular values), math §3.4 / 5.1
PREDICTED_QUANTITIES = {
    "l_nc1": "l_nc1",
    "l_nc23": "l_nc23",
    "l_central": "l_central",
    "nc1": "nc1_renormalized",
}


# ----------------------------------------------------------------------------- reading


def read_log(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Metrics records and config of a run log: a run directory, a ``.jsonl`` or a ``.csv`` file
    (``empirical.read_run_log``, which checks every line against the run schema, ``docs/run_format.md``).

    Raises ``empirical.schema.RunLogError`` (a ``ValueError``) with one line naming the file, line and key of
    the first problem.  Records are sorted by epoch.  The config is ``{}`` when the log has none.
    """
    from empirical.schema import read_run_log

    log = read_run_log(path)
    return sorted(log.records, key=lambda r: r.get("epoch", 0)), log.config


def config_value(config: dict[str, Any], name: str) -> Any:
    """The training option ``name`` of a run's ``config.json`` (layout ``{"config": {...}, "environment": {...}}``)."""
    return (config or {}).get("config", {}).get(name)


def run_loss(config: dict[str, Any]) -> str:
    """The run's loss as recorded in its config (``"mse"``, ``"ce"``, ...), ``"unknown"`` when not recorded."""
    loss = config_value(config, "loss")
    return str(loss).lower() if loss else "unknown"


def run_mse_scale(config: dict[str, Any]) -> tuple[float, float]:
    """``(k, M)`` of Hui & Belkin's rescaled MSE recorded as ``config.mse_scale`` (math §3.6); ``(1, 1)``, the
    plain MSE, when not recorded."""
    value = config_value(config, "mse_scale")
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return float(value[0]), float(value[1])
    return 1.0, 1.0


def column(records: Sequence[dict[str, Any]], key: str) -> np.ndarray:
    """Float array of ``key`` over records (NaN where missing or null)."""
    out = []
    for r in records:
        v = r.get(key)
        try:
            out.append(float(v) if v is not None else math.nan)
        except (TypeError, ValueError):
            out.append(math.nan)
    return np.asarray(out, dtype=np.float64)


def snr_matrix_of(records: Sequence[dict[str, Any]]) -> np.ndarray:
    """(K, C-1) array of ``snr_singular_values`` (rows of NaN where missing)."""
    rows = [r.get("snr_singular_values") for r in records]
    width = max((len(r) for r in rows if r), default=0)
    out = np.full((len(rows), width), np.nan)
    for k, r in enumerate(rows):
        if r:
            out[k, : len(r)] = [math.nan if v is None else float(v) for v in r]
    return out


def _has(records: Sequence[dict[str, Any]], key: str) -> bool:
    return bool(np.any(np.isfinite(column(records, key))))


def _rel_err(pred: np.ndarray, meas: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(pred - meas) / np.abs(meas)


def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman rank correlation (``scipy.stats.spearmanr``); None for fewer than 3 points or constant y."""
    if x.size < 3 or np.ptp(y) == 0 or np.ptp(x) == 0:
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


# ----------------------------------------------------------------------------- the clock (math §6.5)


@dataclass(frozen=True)
class Clock:
    """The time axis of a comparison and, where the log allows, the derived flow time (math §6.5).

    ``values``: the axis per record (NaN where missing); ``flow``: the flow time per record in the convention
    ``kappa`` (None when the log does not allow it, ``flow_how`` then says why); ``per_class``: the ``N`` of the
    projected law (the mean class count on imbalanced classes; None when unknown).
    """

    axis: str
    how: str
    values: np.ndarray
    flow: np.ndarray | None
    flow_how: str
    kappa: float
    per_class: float | None

    def describe(self) -> dict[str, Any]:
        return {"axis": self.axis, "how": self.how, "flow_time": self.flow_how, "kappa": self.kappa,
                "per_class": self.per_class}


def _derived_flow(records, config, C: int | None) -> tuple[np.ndarray | None, str, float]:
    """Flow time per record (math §6.5): logged ``flow_time``, or ``alpha/(1-mu) * lr_weighted_steps``."""
    if _has(records, "flow_time"):
        kappa = config_value(config, "kappa")
        kappa = float(kappa) if isinstance(kappa, (int, float)) else 1.0
        return column(records, "flow_time"), f"flow_time logged by the flow (kappa = {kappa:g})", kappa
    if not _has(records, "lr_weighted_steps"):
        return None, "the log has no flow_time and no lr_weighted_steps", 1.0
    loss, momentum = run_loss(config), config_value(config, "momentum")
    reduction = config_value(config, "loss_reduction") or ("mean" if loss == "mse" and momentum is not None else None)
    if loss != "mse":
        return None, f"the run's loss is {loss}, not MSE: no flow of the MSE theory corresponds to its steps", 1.0
    if run_mse_scale(config) != (1.0, 1.0):
        k, M = run_mse_scale(config)
        return None, (f"the run's MSE is rescaled (mse_scale {k:g},{M:g}): the flow time of math §6.5 is that of the "
                      "plain MSE (math §3.6)"), 1.0
    if momentum is None or reduction is None or C is None:
        return None, ("the config does not record the optimiser's momentum and the loss reduction, which the flow "
                      "time of lr_weighted_steps needs (math §6.5)"), 1.0
    try:
        factor = theory.flow_time_per_lr(reduction=reduction, num_classes=C, momentum=float(momentum),
                                         batch_size=config_value(config, "batch_size"))
    except ValueError as exc:
        return None, f"no flow time: {exc}", 1.0
    return (factor * column(records, "lr_weighted_steps"),
            f"t = {factor:.6g} * lr_weighted_steps (alpha/(1-mu), loss reduction {reduction}, momentum "
            f"{float(momentum):g}, C = {C}; math §6.5)", 1.0)


def resolve_clock(records: Sequence[dict[str, Any]], config: dict[str, Any], time: str, C: int | None,
                  per_class: float | None) -> Clock:
    """The time axis for ``time`` (:data:`TIME_CHOICES`) and the derived flow time; ``ValueError`` only for a
    ``time`` outside the choices.  An axis whose key the log lacks has all-NaN ``values`` (``how`` says so)."""
    if time not in TIME_CHOICES:
        raise ValueError(f"time must be one of {', '.join(TIME_CHOICES)}; got {time!r}")
    flow, flow_how, kappa = _derived_flow(records, config, C)
    if time == "flow" or (time == "auto" and flow is not None):
        axis, values = "flow_time", flow if flow is not None else np.full(len(records), np.nan)
        how = f"flow time: {flow_how}"
    elif time == "lr_steps" or (time == "auto" and _has(records, "lr_weighted_steps")):
        axis, values = "lr_weighted_steps", column(records, "lr_weighted_steps")
        how = "lr_weighted_steps (sum of the learning rate over the optimiser steps)"
    else:
        axis, values = "epoch", column(records, "epoch")
        how = "epoch" + (" (the log has no lr_weighted_steps)" if time == "auto" else "")
    return Clock(axis, how, values, flow, flow_how, kappa, per_class)


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ErrorStats:
    """Median, maximum and final value of a relative-error series (finite entries only; None when empty)."""

    median: float | None
    max: float | None
    final: float | None

    @classmethod
    def of(cls, x: np.ndarray) -> ErrorStats:
        x = np.asarray(x, dtype=np.float64)
        x = x[np.isfinite(x)]
        if x.size == 0:
            return cls(None, None, None)
        return cls(float(np.median(x)), float(np.max(x)), float(x[-1]))


@dataclass(frozen=True)
class RatioComparison:
    """``max_j omega_j / min_j omega_j`` over the fit window, observed and fitted (math §6.4 item 2: -> 1)."""

    observed_first_quarter_median: float
    observed_last_quarter_median: float
    observed_spearman_vs_time: float | None
    observed_first: float
    observed_last: float
    observed_min: float
    predicted_first: float
    predicted_last: float
    observed_moves_toward_1: bool  # median of the window's last quarter below its first quarter's
    predicted_moves_toward_1: bool


@dataclass(frozen=True)
class ForwardPrediction:
    """The reduced ODE (math §6.2) integrated forward from the SNR measured at ``start_epoch``."""

    start_epoch: int
    method: str
    flow_time_map: str
    snr_rel_error: ErrorStats  # max_j relative error of omega, per later epoch
    snr_rel_error_final_per_value: list[float]
    epochs: int  # later measured epochs compared
    holdout: dict[str, Any] = field(default_factory=dict)  # fitted map only: fit on half, forecast the rest
    note: str = ""


@dataclass(frozen=True)
class QuantityComparison:
    """One measured quantity against its law (``sum_j theory.laws.<law>(omega_j)``, math §3.4 / 5.1)."""

    law: str
    measured_key: str
    at_lambda_zero: bool  # the measured values are at lambda = 0 (the laws' central path)
    measured_first: float
    measured_last: float
    rel_error_fit: ErrorStats  # laws at the fitted omega_j(T)
    rel_error_at_measured_snr: ErrorStats  # laws at the measured omega_j: the math §3.4 identity at lambda = 0
    rel_error_forward: ErrorStats  # laws along the forward ODE (fitted map)
    rel_error_at_measured_snr_notebook_lambda: ErrorStats | None = None


@dataclass
class Comparison:
    """Predicted against observed for one log (:func:`compare_records`).  ``to_json()`` is ``compare.json``.

    Parts the log cannot support are None (``fit``, ``snr_ratio``, ``forward``, ``forward_derived``) or absent
    (``quantities``), each with its reason in ``unavailable``; ``missing_keys`` lists every key they lacked.
    """

    num_classes: int | None
    per_class: float | None
    loss: str
    balanced: bool | None
    clock: Clock
    num_records: int
    tpt_threshold: float
    terminal_phase_start_epoch: int | None
    fit_window: dict[str, Any] | None
    lambda_range: list[float] | None
    fit: SNRFit | None
    fits: dict[str, SNRFit]
    primary_fit: str | None
    snr_ratio: RatioComparison | None
    forward: ForwardPrediction | None
    forward_derived: ForwardPrediction | None
    quantities: dict[str, QuantityComparison]
    unavailable: dict[str, str]
    missing_keys: list[str]
    notes: list[str]
    run_dir: str | None = None
    figures: list[str] = field(default_factory=list)
    arrays: dict[str, Any] = field(default_factory=dict, repr=False)  # for the figures, not written

    def clock_ratio(self) -> float | None:
        """``s N / kappa`` of the linear fit on the flow-time axis: 1 when the run keeps the projected flow's clock
        (math §6.5 item 3); None when the axis is not flow time or N is unknown."""
        lin = self.fits.get("linear")
        if lin is None or self.clock.axis != "flow_time" or not self.per_class:
            return None
        return float(lin.scale * self.per_class / self.clock.kappa)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (the fits through ``SNRFit.to_dict``; NaN as null; without the arrays)."""
        # field by field, not asdict(self): that would deep-copy the arrays only to drop them
        skip = ("arrays", "clock", "quantities", "fit", "fits")
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        out = {k: asdict(v) if is_dataclass(v) and not isinstance(v, type) else v for k, v in out.items()}
        out.update(time=self.clock.describe(), quantities={k: asdict(q) for k, q in self.quantities.items()},
                   fit=self.fit.to_dict() if self.fit is not None else None,
                   fits={name: f.to_dict() for name, f in self.fits.items()}, clock_ratio=self.clock_ratio())
        return jsonable(out)


# ----------------------------------------------------------------------------- stages


def _forward_integrate(omega0: np.ndarray, flow_times: np.ndarray, C: int, per_class: float = 1.0,
                       kappa: float = 1.0) -> np.ndarray:
    """Integrate ``d omega/dt = (kappa/N) omega/(C+omega^2)^2`` (math §6.2) from ``omega0`` at ``t = 0`` with
    ``simulate.integrate_reduced`` (diffrax)."""
    import simulate

    # The solve is compiled per length of the times array: pad it to a power of two (>= 16) with times just past the
    # last one, so that the few lengths a comparison asks for share one compilation (1.7 s each on the CPU).
    t = np.asarray(flow_times, dtype=np.float64)
    size = max(16, 1 << (t.size - 1).bit_length())
    pad = t[-1] + (1.0 + abs(t[-1])) * 1e-9 * np.arange(1, size - t.size + 1)
    # NumPy inputs and a float N (the mean class count) are valid for the solve; its annotations say jax.Array, int
    traj = simulate.integrate_reduced(np.asarray(omega0), np.concatenate([t, pad]),  # type: ignore[arg-type]
                                      per_class, C, kappa=kappa)  # type: ignore[arg-type]
    # block_until_ready waits with the GIL released (np.asarray on a pending array holds it: see simulate.run)
    return np.asarray(traj.block_until_ready(), dtype=np.float64)[: t.size]


def _window(records, T, snr, tpt_threshold, fit_from_epoch) -> tuple[np.ndarray, np.ndarray, str, int | None]:
    """Usable rows, the fit window's rows and why, and the terminal phase's first row (math §7.2)."""
    epochs = column(records, "epoch")
    tpt = terminal_phase_start(list(records), tpt_threshold)
    words = "training error zero" if tpt_threshold == 0 else f"training error <= {tpt_threshold:g}"
    valid = np.isfinite(T) & (T > 0) & np.all(np.isfinite(snr), axis=1) & np.all(snr > 0, axis=1)
    if fit_from_epoch is not None:
        return valid, np.flatnonzero(valid & (epochs >= fit_from_epoch)), f"epochs >= {fit_from_epoch} (requested)", tpt
    if tpt is not None and np.sum(valid & (epochs >= epochs[tpt])) >= MIN_WINDOW:
        reason = f"terminal phase: epochs >= {int(epochs[tpt])} ({words} from there on)"
        return valid, np.flatnonzero(valid & (epochs >= epochs[tpt])), reason, tpt
    why = "no training error logged" if not _has(records, "train_error") else "terminal phase absent or too short"
    return valid, np.flatnonzero(valid), f"all epochs ({why})", tpt


def _ratio(T: np.ndarray, snr: np.ndarray, omega_fit: np.ndarray) -> tuple[RatioComparison, np.ndarray, np.ndarray]:
    obs = np.max(snr, axis=1) / np.min(snr, axis=1)
    fit = np.nanmax(omega_fit, axis=1) / np.nanmin(omega_fit, axis=1)
    q = max(1, obs.size // 4)
    res = RatioComparison(
        observed_first_quarter_median=float(np.median(obs[:q])),
        observed_last_quarter_median=float(np.median(obs[-q:])),
        observed_spearman_vs_time=_spearman(T, obs),
        observed_first=float(obs[0]), observed_last=float(obs[-1]), observed_min=float(np.min(obs)),
        predicted_first=float(fit[0]), predicted_last=float(fit[-1]),
        # Robust to single noisy epochs: median of the last quarter of the window below the first quarter's.
        observed_moves_toward_1=bool(np.median(obs[-q:]) < np.median(obs[:q])),
        predicted_moves_toward_1=bool(fit[-1] < fit[0]),
    )
    return res, obs, fit


def _holdout_forecast(T: np.ndarray, W: np.ndarray, C: int, time_key: str, fit_exponent: bool,
                      epochs: np.ndarray) -> dict[str, Any]:
    """Out-of-sample check: fit the time map on the first half of the window, forecast the second half with the
    fitted closed form (math §6.3) and with the reduced ODE (math §6.2) from the first half's last omega."""
    K = T.size
    h = K // 2
    if h < 4 or K - h < 2:
        return {"skipped": f"window of {K} epochs is too short for a half/half split (need >= 8)"}
    try:
        f = fit_snr_dynamics(T[:h], W[:h], num_classes=C, time_key=time_key, fit_exponent=fit_exponent)
    except ValueError as exc:
        return {"skipped": str(exc)}
    fwd = _forward_integrate(W[h - 1], f.flow_time(T[h - 1:]) - f.flow_time(T[h - 1]), C)
    return {
        "fit_epochs": [int(epochs[0]), int(epochs[h - 1])],
        "forecast_epochs": [int(epochs[h]), int(epochs[-1])],
        "scale_s": f.scale, "beta": f.beta,
        "closed_form_rel_error": asdict(ErrorStats.of(np.nanmax(_rel_err(f.predict(T[h:]), W[h:]), axis=1))),
        "forward_ode_rel_error": asdict(ErrorStats.of(np.nanmax(_rel_err(fwd[1:], W[h:]), axis=1))),
        "method": "simulate.integrate_reduced",
    }


def _forward(snr, k0: int, later: np.ndarray, flow: np.ndarray, C: int, epochs, *, per_class: float = 1.0,
             kappa: float = 1.0, map_text: str, holdout: dict | None = None, note: str = ""):
    """Forward prediction from row ``k0`` over rows ``later`` on the flow times ``flow`` (per record)."""
    omega = _forward_integrate(snr[k0], flow[later] - flow[k0], C, per_class, kappa)
    rel = _rel_err(omega, snr[later])
    pred = ForwardPrediction(
        start_epoch=int(epochs[k0]), method="simulate.integrate_reduced", flow_time_map=map_text,
        snr_rel_error=ErrorStats.of(np.nanmax(rel[1:], axis=1) if rel.shape[0] > 1 else np.array([])),
        snr_rel_error_final_per_value=[float(v) for v in rel[-1]], epochs=int(later.size - 1),
        holdout=holdout or {}, note=note)
    return pred, omega


def _quantities(records, config, idx, later, snr, omega_fit, omega_fwd, C, arrays) -> dict[str, QuantityComparison]:
    out: dict[str, QuantityComparison] = {}
    for key, law in PREDICTED_QUANTITIES.items():
        measured_key, at_zero = measured_key_at_lambda_zero(records, key, config)
        meas = column(records, measured_key)
        if not np.any(np.isfinite(meas[idx])):
            continue
        pred_fit, pred_obs = law_sum(law, omega_fit, C), law_sum(law, snr[idx], C)
        pred_fwd = law_sum(law, omega_fwd, C)
        nb = column(records, f"{key}_notebook") if key in ("l_nc1", "l_nc23") else None
        out[key] = QuantityComparison(
            law=f"sum_j theory.laws.{law}(omega_j)", measured_key=measured_key, at_lambda_zero=at_zero,
            measured_first=float(meas[idx][0]), measured_last=float(meas[idx][-1]),
            rel_error_fit=ErrorStats.of(_rel_err(pred_fit, meas[idx])),
            rel_error_at_measured_snr=ErrorStats.of(_rel_err(pred_obs, meas[idx])),
            rel_error_forward=ErrorStats.of(_rel_err(pred_fwd, meas[later])),
            # The same terms at the notebook's smaller ridge (lambda = wd/2): the gap to the lambda = 0
            # laws should shrink with lambda if it is the ridge's effect.
            rel_error_at_measured_snr_notebook_lambda=(ErrorStats.of(_rel_err(pred_obs, nb[idx]))
                                                       if nb is not None and np.any(np.isfinite(nb[idx])) else None),
        )
        arrays["quantities"][key] = {"measured": meas, "fit": pred_fit, "at_snr": pred_obs, "forward": pred_fwd,
                                     "measured_notebook": nb, "measured_key": measured_key}
    return out


def class_counts(records: Sequence[dict[str, Any]]) -> list[int] | None:
    """The class counts of the first record that logs them (``None`` when none does)."""
    for r in records:
        if r.get("class_counts"):
            return [int(v) for v in r["class_counts"]]
    return None


def balance(records: Sequence[dict[str, Any]], config: dict[str, Any]) -> bool | None:
    """True / False from the logged class counts (or a balanced subset in the config's per_class); None when
    unknown."""
    counts = class_counts(records)
    return (len(set(counts)) == 1) if counts else (True if config_value(config, "per_class") else None)


def _sizes(records, config, snr, num_classes, per_class) -> tuple[int | None, float | None, bool | None]:
    """C, the projected law's N (the config's per_class, else the mean class count) and balance."""
    counts = class_counts(records)
    C = num_classes or config_value(config, "num_classes") or (len(counts) if counts else None)
    C = int(C) if C else (snr.shape[1] + 1 if snr.shape[1] else None)
    if per_class is None and config_value(config, "per_class"):
        per_class = float(config_value(config, "per_class"))
    if per_class is None and counts:
        per_class = sum(counts) / len(counts)
    return C, per_class, balance(records, config)


def _missing_message(unavailable: dict[str, str], missing: list[str]) -> str:
    if not missing:
        return ""
    return "the log lacks " + ", ".join(sorted(set(missing))) + ": n/a for " + ", ".join(unavailable)


def compare_records(
    records: Sequence[dict[str, Any]],
    *,
    time: str = "auto",
    early_epoch: int | None = None,
    fit_from_epoch: int | None = None,
    fit_exponent: bool = True,
    num_classes: int | None = None,
    per_class: float | None = None,
    tpt_threshold: float = TPT_THRESHOLD_DEFAULT,
    config: dict[str, Any] | None = None,
) -> Comparison:
    """Predicted-against-observed comparison of one log (see the module docstring).

    Parameters
    ----------
    records : metrics records, sorted by epoch (each with an ``epoch``).
    time : :data:`TIME_CHOICES`: ``auto`` (flow time when the log allows, else lr_weighted_steps, else epoch),
        ``flow`` (math §6.5), ``lr_steps`` or ``epoch``.
    early_epoch : epoch whose measured SNR starts the forward integration (default: the fit window's first).
    fit_from_epoch : first epoch of the fit window (default: the start of the terminal phase at
        ``tpt_threshold``; all epochs if it is never reached or leaves fewer than 4 points).
    fit_exponent : time map ``s T^beta`` with free ``beta`` as the primary fit (else ``beta = 1``).
    config : the run's ``config.json`` (loss, momentum, reduction, per_class, kappa, lam).

    Raises
    ------
    ValueError
        An empty log, a record without ``epoch``, or a ``time`` outside the choices; a part the log cannot
        support is reported in ``unavailable`` instead.
    """
    if not records:
        raise ValueError("compare: empty metrics log")
    if any("epoch" not in r for r in records):
        raise ValueError("compare: every line of the log needs an 'epoch'")
    config = config or {}
    snr = snr_matrix_of(records)
    C, N, balanced = _sizes(records, config, snr, num_classes, per_class)
    clock = resolve_clock(records, config, time, C, N)
    epochs = column(records, "epoch")
    unavailable: dict[str, str] = {}
    missing: list[str] = []
    notes: list[str] = [f"time axis: {clock.how}"]
    lam = column(records, "lam")
    base: dict[str, Any] = dict(num_classes=C, per_class=N, loss=run_loss(config), balanced=balanced, clock=clock,
                num_records=len(records), tpt_threshold=float(tpt_threshold),
                lambda_range=[float(np.nanmin(lam)), float(np.nanmax(lam))] if np.any(np.isfinite(lam)) else None)

    needs = [("snr_singular_values", snr.shape[1] > 0), (clock.axis, bool(np.any(np.isfinite(clock.values))))]
    lacking = [k for k, ok in needs if not ok]
    valid, idx, reason, tpt = _window(records, clock.values, snr, tpt_threshold, fit_from_epoch)
    base["terminal_phase_start_epoch"] = int(epochs[tpt]) if tpt is not None else None
    window: dict[str, Any] = {"reason": reason, "epochs": [int(e) for e in epochs[idx]]}
    if lacking or idx.size < MIN_WINDOW:
        return _without_fit(base, window, lacking, idx.size, reason, notes, {"epochs": epochs, "T": clock.values,
                                                                            "snr": snr})

    T = clock.values
    assert C is not None  # the log has SNR values, so C - 1 of them
    fits, primary = _fits(T[idx], snr[idx], C, clock.axis, fit_exponent)
    fit = fits[primary]
    omega_fit = fit.predict(T[idx])
    ratio, obs_ratio, fit_ratio = _ratio(T[idx], snr[idx], omega_fit)
    later, forward, omega_fwd, forward_derived = _forward_predictions(snr, valid, idx, epochs, early_epoch, C, N, clock,
                                                                      fit, fit_exponent, unavailable)

    arrays: dict[str, Any] = {"epochs": epochs, "T": T, "snr": snr, "fit_idx": idx, "omega_fit": omega_fit,
                              "fwd_idx": later, "omega_fwd": omega_fwd, "obs_ratio": obs_ratio, "fit_ratio": fit_ratio,
                              "quantities": {}}
    quantities = _quantities(records, config, idx, later, snr, omega_fit, omega_fwd, C, arrays)
    ranks = column(records, "snr_rank")[idx]
    notes += _law_notes(records, quantities, ranks, lam, balanced, config, unavailable, missing)
    window["snr_rank_range"] = ([int(np.nanmin(ranks)), int(np.nanmax(ranks))] if np.any(np.isfinite(ranks))
                                else None)
    return Comparison(**base, fit_window=window, fit=fit, fits=fits, primary_fit=primary, snr_ratio=ratio,
                      forward=forward, forward_derived=forward_derived, quantities=quantities, unavailable=unavailable,
                      missing_keys=sorted(set(missing)), notes=notes, arrays=arrays)


def _without_fit(base: dict[str, Any], window: dict[str, Any], lacking: list[str], usable: int, reason: str,
                 notes: list[str], arrays: dict[str, Any]) -> Comparison:
    """The comparison when the log lacks a key or the fit window has too few epochs: every part n/a, naming what the
    log lacks in one message."""
    why = (f"needs {' and '.join(lacking)}" if lacking else
           f"only {usable} usable measured epochs in the fit window ({reason}); at least {MIN_WINDOW} needed")
    unavailable = dict.fromkeys(("SNR fit", "max/min ratio", "forward prediction", "the math §3.4 laws"), why)
    notes.append(_missing_message(unavailable, lacking) or f"no comparison with the flow: {why}")
    return Comparison(**base, fit_window=window, fit=None, fits={}, primary_fit=None, snr_ratio=None, forward=None,
                      forward_derived=None, quantities={}, unavailable=unavailable, missing_keys=sorted(set(lacking)),
                      notes=notes, arrays=arrays)


def _fits(T: np.ndarray, snr: np.ndarray, C: int, axis: str, fit_exponent: bool) -> tuple[dict[str, SNRFit], str]:
    """The linear-map fit and, with ``fit_exponent``, the power-map fit (math §6.3), the latter then the primary."""
    fits = {"linear": fit_snr_dynamics(T, snr, num_classes=C, time_key=axis, fit_exponent=False)}
    if fit_exponent:
        fits["power"] = fit_snr_dynamics(T, snr, num_classes=C, time_key=axis, fit_exponent=True)
    return fits, "power" if fit_exponent else "linear"


def _forward_predictions(snr, valid, idx, epochs, early_epoch: int | None, C: int, N, clock: Clock, fit: SNRFit,
                         fit_exponent: bool, unavailable: dict[str, str]
                         ) -> tuple[np.ndarray, ForwardPrediction, np.ndarray, ForwardPrediction | None]:
    """The rows compared (``later``: the usable rows from the start row ``k0`` on, the fit window's first or the first
    at ``early_epoch``), the forward prediction (math §6.2) on the fitted time map, its SNR, and the one on the derived
    clock (math §6.5, no fitted time parameter) where the flow time is known (else said in ``unavailable``)."""
    start = idx if early_epoch is None else np.flatnonzero(valid & (epochs >= early_epoch))
    if start.size == 0:
        raise ValueError(f"compare: no usable measured epoch at or after --early-epoch {early_epoch}")
    T, k0 = clock.values, int(start[0])
    later = np.flatnonzero(valid & (np.arange(valid.size) >= k0))
    fitted_flow = np.where(np.isfinite(T) & (T > 0), fit.flow_time(np.where(T > 0, T, 1.0)), np.nan)
    forward, omega_fwd = _forward(
        snr, k0, later, fitted_flow, C, epochs,
        map_text=f"t = s * (T**beta - T0**beta), s = {fit.scale:.6g}, beta = {fit.beta:.6g} (fitted; N = kappa = 1)",
        holdout=_holdout_forecast(T[idx], snr[idx], C, clock.axis, fit_exponent, epochs[idx]),
        note="the time map is fitted on the whole window (in-sample); 'holdout' fits it on the first half only and "
             "forecasts the second half")
    flow = clock.flow
    if flow is None or not N or not np.all(np.isfinite(flow[later])):
        unavailable["forward prediction on the derived clock"] = (
            clock.flow_how if flow is None else "the samples per class N are unknown" if not N else
            "the flow time is missing at some compared epochs")
        return later, forward, omega_fwd, None
    forward_derived, _ = _forward(
        snr, k0, later, flow, C, epochs, per_class=N, kappa=clock.kappa,
        map_text=f"t = derived flow time ({clock.flow_how}); N = {N:g}, kappa = {clock.kappa:g}: no fitted time "
                 "parameter (math §6.5)")
    return later, forward, omega_fwd, forward_derived


def _law_notes(records, quantities: dict[str, Any], ranks, lam, balanced: bool | None, config: dict[str, Any],
               unavailable: dict[str, str], missing: list[str]) -> list[str]:
    """The notes on the comparison (first, the laws whose key the log lacks: these also go into ``unavailable`` and
    ``missing``)."""
    for key in PREDICTED_QUANTITIES:
        if key not in quantities:
            unavailable[f"the math §3.4 law of {key}"] = f"needs {key} (or {key}_lam0)" if key != "nc1" else "needs nc1"
            missing.append(key)
    notes = [_missing_message({k: v for k, v in unavailable.items() if "law of" in k}, missing)] if missing else []
    loss = run_loss(config)
    if loss != "mse":
        notes.append(f"The run's loss is {loss}: the central-path theory compared here is for the MSE loss, so this "
                     "comparison is descriptive only (the MSE-theory claims are n/a).")
    if balanced is False:
        counts = class_counts(records) or []
        notes.append(f"Imbalanced classes (counts {min(counts)}..{max(counts)}): the 'at_measured_snr' columns are the "
                     "math §3.4 closed forms, exact identities only for balanced classes, so on this log they are not "
                     "exact; the flow's N is the mean class count.")
    if np.any(np.isfinite(ranks)) and np.nanmin(ranks) != np.nanmax(ranks):
        notes.append("The SNR was measured on the range of a singular Sigma_W whose rank changes within the fit window "
                     f"({int(np.nanmin(ranks))}..{int(np.nanmax(ranks))}: ReLU units dying or reviving); the SNR "
                     "singular values can jump where it changes (docs/rank_deficient.md).")
    notes += [
        "Columns: 'fit' = laws at the fitted omega_j(T); 'at_measured_snr' = laws at the measured omega_j "
        "(the math §3.4 identity, exact for the lambda = 0 terms of balanced classes); 'forward' = laws along the "
        "forward ODE.",
        "nc1 is (1/C) Tr(Sigma_W Sigma_B^+) in raw feature coordinates, which is not affine invariant; "
        "sum_j omega_j^-2 equals it only in renormalised coordinates (math §5.1), so a gap is expected on a network.",
    ]
    off_zero = [k for k, q in quantities.items() if not q.at_lambda_zero]
    if quantities and not off_zero:
        notes.append("Decomposition terms are the run's lambda = 0 terms (l_*_lam0), the central path of math §3.4.")
    elif off_zero:
        lam_txt = f"{np.nanmax(lam):.3g}" if np.any(np.isfinite(lam)) else "unknown"
        notes.append(f"The log has no lambda = 0 terms for {', '.join(off_zero)}: they are at the run's ridge "
                     f"lambda = {lam_txt}, while the math §3.4 laws are the lambda = 0 central path, so their "
                     "'at_measured_snr' errors measure the ridge's effect, not the identity.")
    return notes


def measured_key_at_lambda_zero(records: Sequence[dict[str, Any]], key: str,
                                config: dict[str, Any] | None = None) -> tuple[str, bool]:
    """The log's key for quantity ``key`` at lambda = 0, and whether it is at lambda = 0.

    ``key_lam0`` when the log has it; else ``key`` itself, at lambda = 0 when the run schema's rule says so
    (``empirical.schema.RunLog.at_lambda_zero``: every line's ``lam``, or the config's, is 0); quantities without a
    lambda (``nc1``) are lambda-free.  The laws of math §3.4 hold at lambda = 0 only: a term at another lambda is
    never held against them silently.
    """
    from empirical.schema import RunLog

    if _has(records, f"{key}_lam0"):
        return f"{key}_lam0", True
    try:
        return key, RunLog(list(records), config or {}, Path("."), "records").at_lambda_zero(key)
    except KeyError:  # not a decomposition term: no lambda
        return key, True


# ----------------------------------------------------------------------------- figures


def write_compare_figures(result: Comparison, out_dir: str | Path) -> list[Path]:
    """Observed (markers) vs fitted (line) vs forward-integrated (dashed), log axes; returns PNG paths
    (none when the log supports no fit)."""
    if result.fit is None:
        return []
    plt = _plot.plt()
    out_dir = Path(out_dir)
    a = result.arrays
    T, idx, fwd = a["T"], a["fit_idx"], a["fwd_idx"]
    xlabel = result.clock.axis
    paths: list[Path] = []

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    C1 = a["snr"].shape[1]
    colors = plt.cm.viridis(np.linspace(0, 0.9, C1))
    ok = np.isfinite(T) & (T > 0)
    for j in range(C1):
        ax.plot(T[ok], a["snr"][ok, j], "o", ms=3, color=colors[j], alpha=0.7)
        ax.plot(T[idx], a["omega_fit"][:, j], "-", color=colors[j], lw=1.2)
        ax.plot(T[fwd], a["omega_fwd"][:, j], "--", color=colors[j], lw=1.0)
    f = result.fit.to_dict()
    _plot.log_axes(ax, xlabel, ylabel="SNR singular values omega_j", legend=None, title_size=9,
                   title=f"SNR: observed (o), closed-form fit (-), forward ODE (--)\ns={f['scale_s']:.3g}, "
                         f"beta={f['beta']:.3g}, min R^2(log omega)={f['r2_log_omega_min']:.3f}")
    paths.append(_plot.save(fig, out_dir / "compare_snr.png", dpi=110))

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(T[idx], a["obs_ratio"] - 1.0, "o", ms=3, label="observed")
    ax.plot(T[idx], a["fit_ratio"] - 1.0, "-", label="closed-form fit")
    fr = np.nanmax(a["omega_fwd"], axis=1) / np.nanmin(a["omega_fwd"], axis=1)
    ax.plot(T[fwd], fr - 1.0, "--", label="forward ODE")
    _plot.log_axes(ax, xlabel, ylabel="max_j omega_j / min_j omega_j - 1")
    paths.append(_plot.save(fig, out_dir / "compare_snr_ratio.png", dpi=110))

    for key, q in a["quantities"].items():
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        lam_label = "lambda = 0" if q.get("measured_key", "").endswith("_lam0") else "run's lambda"
        _plot.plot_positive(ax, T, q["measured"], "o", f"measured {key} ({lam_label})")
        if q.get("measured_notebook") is not None:
            _plot.plot_positive(ax, T, q["measured_notebook"], "x", f"measured {key} at the notebook's lambda = wd/2")
        ax.plot(T[idx], q["fit"], "-", label="theory at fitted omega(T)")
        ax.plot(T[idx], q["at_snr"], ":", label="theory at measured omega")
        ax.plot(T[fwd], q["forward"], "--", label="forward ODE from early epoch")
        _plot.log_axes(ax, xlabel, ylabel=key)
        paths.append(_plot.save(fig, out_dir / f"compare_{key}.png", dpi=110))
    return paths


# ----------------------------------------------------------------------------- one run, files in and out


def compare_output_dir(path: str | Path) -> Path:
    """Where ``compare`` writes for a log at ``path``: the run directory itself, or for a file a folder beside it
    named after it (``runs/x/metrics.csv`` -> ``runs/x/metrics-compare/``), never the file."""
    path = Path(path)
    return path if path.is_dir() else path.parent / f"{path.stem}-compare"


def compare_run(run_dir: str | Path, *, out: str | Path | None = None, figures: bool = True,
                loaded: tuple[list[dict[str, Any]], dict[str, Any]] | None = None, **options: Any) -> Comparison:
    """:func:`compare_records` on a log (a run directory, a ``.jsonl`` or a ``.csv`` file) and write
    ``compare.json`` + figures to ``out`` (default :func:`compare_output_dir`).  Nothing is written when the log
    cannot be read.

    ``options``: those of :func:`compare_records` (``time``, ``early_epoch``, ``fit_from_epoch``, ``fit_exponent``,
    ``tpt_threshold``), its config the log's.  ``loaded``: the log's ``(records, config)`` as :func:`read_log`
    returned them, when the caller has read it already (it is then not read again).
    """
    records, config = loaded if loaded is not None else read_log(run_dir)
    result = compare_records(records, config=config, **options)
    result.run_dir = str(run_dir)
    out_dir = Path(out) if out is not None else compare_output_dir(run_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"compare: the output folder {out_dir} is a file; pass --out DIR")
    out_dir.mkdir(parents=True, exist_ok=True)
    if figures:
        result.figures = [str(p) for p in write_compare_figures(result, out_dir / "figures")]
    (out_dir / "compare.json").write_text(dumps(result.to_json()))
    return result
