"""Predicted against observed: the central-path theory set beside a training run's log.

Reads a run's ``metrics.jsonl`` (one JSON object per measured epoch, docs/run_format.md) and

1. fits the math §6.3 closed-form SNR dynamics with a monotone time map
   (:func:`paper_checks.fit.fit_snr_dynamics`), per singular value R^2 and residuals;
2. predicts ``L_NC1``, ``L_NC2/3``, ``L_central`` and the renormalised NC1 from the
   math §3.4 laws (``theory.laws``: ``l_nc1``, ``l_nc23``, ``l_central``,
   ``nc1_renormalized``, each summed over ``j``), both at the fitted ``omega_j(T)`` and at
   the measured ``omega_j`` (the latter is the math §3.4 identity, exact at ``lambda = 0``);
3. integrates ``simulate``'s reduced ODE ``d omega_j/dt = omega_j / (C + omega_j^2)^2``
   (math §6.2 with ``N = kappa = 1``, matching the fit's units) forward from the SNR measured
   at an early epoch, using the fitted time map, and overlays it on the later measurements;
4. writes ``compare.json`` and figures (observed vs predicted, log axes).

The theory is stated at ``lambda = 0`` for the unconstrained-features model; a network
trained with weight decay has ``lambda > 0`` and moving features, so disagreement is a
measured outcome, reported with its numbers, not an error.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from empirical.runs import TPT_THRESHOLD_DEFAULT, terminal_phase_start
from theory.jsonio import dumps, jsonable

from . import _plot
from ._laws import law_sum
from .fit import SNRFit, fit_snr_dynamics

__all__ = [
    "Comparison",
    "ErrorStats",
    "ForwardPrediction",
    "QuantityComparison",
    "RatioComparison",
    "TIME_KEYS",
    "PREDICTED_QUANTITIES",
    "load_run",
    "config_value",
    "measured_key_at_lambda_zero",
    "terminal_phase_start",
    "compare_records",
    "compare_run",
    "write_compare_figures",
]

TIME_KEYS = {"epoch": "epoch", "lr_steps": "lr_weighted_steps", "lr_weighted_steps": "lr_weighted_steps"}

#: measured key -> theory.laws law name (summed over the C-1 singular values), math §3.4 / 5.1
PREDICTED_QUANTITIES = {
    "l_nc1": "l_nc1",
    "l_nc23": "l_nc23",
    "l_central": "l_central",
    "nc1": "nc1_renormalized",
}


# ----------------------------------------------------------------------------- loading


def load_run(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Metrics records and config of a run log: a run directory, a ``.jsonl`` or a ``.csv`` file
    (``empirical.read_run_log``, which checks every line against the run schema, ``docs/run_format.md``).

    Raises ``empirical.schema.RunLogError`` (a ``RunError`` and a ``ValueError``) with one line naming the file,
    line and key of the first problem.  A truncated last JSONL line (a killed run) is ignored.  Records are
    sorted by epoch; a repeated epoch keeps its last record.  The config is ``{}`` when the log has none.
    """
    from empirical.schema import read_run_log  # noqa: PLC0415

    log = read_run_log(path)
    by_epoch = {rec.get("epoch", k): rec for k, rec in enumerate(log.records)}
    return [by_epoch[k] for k in sorted(by_epoch)], log.config


def config_value(config: dict[str, Any], name: str) -> Any:
    """The training option ``name`` of a run's ``config.json`` (layout ``{"config": {...}, "environment": {...}}``)."""
    return config.get("config", {}).get(name)


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


def _rel_err(pred: np.ndarray, meas: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(pred - meas) / np.abs(meas)


def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman rank correlation (``scipy.stats.spearmanr``); None for fewer than 3 points or constant y."""
    if x.size < 3 or np.ptp(y) == 0 or np.ptp(x) == 0:
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


# ----------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class ErrorStats:
    """Median, maximum and final value of a relative-error series (finite entries only; None when empty)."""

    median: float | None
    max: float | None
    final: float | None

    @classmethod
    def of(cls, x: np.ndarray) -> "ErrorStats":
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
    holdout: dict[str, Any]  # fit on the first half of the window, forecast the second (or why it was skipped)
    note: str = ("the time map is fitted on the whole window (in-sample); 'holdout' fits it on the first half "
                 "only and forecasts the second half")


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
    rel_error_forward: ErrorStats  # laws along the forward ODE
    rel_error_at_measured_snr_notebook_lambda: ErrorStats | None = None


@dataclass
class Comparison:
    """Predicted against observed for one run (:func:`compare_records`).  ``to_json()`` is ``compare.json``."""

    num_classes: int
    per_class: int | None
    time: str
    num_records: int
    tpt_threshold: float
    terminal_phase_start_epoch: int | None
    fit_window: dict[str, Any]  # {"reason": str, "epochs": [int]}
    lambda_range: list[float] | None
    fit: SNRFit
    fits: dict[str, SNRFit]
    primary_fit: str
    snr_ratio: RatioComparison
    forward: ForwardPrediction
    quantities: dict[str, QuantityComparison]
    notes: list[str]
    run_dir: str | None = None
    figures: list[str] = field(default_factory=list)
    arrays: dict[str, Any] = field(default_factory=dict, repr=False)  # for the figures, not written

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (the fits through ``SNRFit.to_dict``; NaN as null; without the arrays)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("fit", "fits", "arrays")}
        out = {k: asdict(v) if hasattr(v, "__dataclass_fields__") else v for k, v in out.items()}
        out["quantities"] = {k: asdict(q) for k, q in self.quantities.items()}
        out["fit"] = self.fit.to_dict()
        if self.per_class:
            out["fit"]["flow_time_per_unit_projected_flow"] = (
                f"t = N * s * T**beta = {float(self.fit.flow_time(1.0, per_class=self.per_class)):.6g} * "
                f"T**{self.fit.beta:.4g} (kappa = 1, N = {self.per_class})")
        out["fits"] = {name: f.to_dict() for name, f in self.fits.items()}
        return jsonable(out)



def _forward_integrate(omega0: np.ndarray, flow_times: np.ndarray, C: int) -> tuple[np.ndarray, str]:
    """Integrate ``d omega/dt = omega/(C+omega^2)^2`` (math §6.2, N = kappa = 1) from ``omega0`` at t=0
    with ``simulate.integrate_reduced`` (diffrax)."""
    import simulate  # noqa: PLC0415 (jax: imported when a comparison runs)

    traj = simulate.integrate_reduced(np.asarray(omega0), np.asarray(flow_times), 1, C, kappa=1.0)
    return np.asarray(traj, dtype=np.float64), "simulate.integrate_reduced"


def _holdout_forecast(T: np.ndarray, W: np.ndarray, C: int, time_key: str, fit_exponent: bool,
                      epochs: np.ndarray) -> dict[str, Any]:
    """Out-of-sample check: fit the time map on the first half of the window, forecast the second half.

    Two forecasts of omega on the second half: the fitted closed form (math §6.3) and the reduced
    ODE (math §6.2) integrated from the last measured omega of the first half.
    """
    K = T.size
    h = K // 2
    if h < 4 or K - h < 2:
        return {"skipped": f"window of {K} epochs is too short for a half/half split (need >= 8)"}
    try:
        f = fit_snr_dynamics(T[:h], W[:h], num_classes=C, time_key=time_key, fit_exponent=fit_exponent)
    except ValueError as exc:
        return {"skipped": str(exc)}
    cf = f.predict(T[h:])
    flow = f.flow_time(T[h - 1:]) - f.flow_time(T[h - 1])
    fwd, method = _forward_integrate(W[h - 1], flow, C)
    err_cf = np.nanmax(_rel_err(cf, W[h:]), axis=1)
    err_fwd = np.nanmax(_rel_err(fwd[1:], W[h:]), axis=1)
    return {
        "fit_epochs": [int(epochs[0]), int(epochs[h - 1])],
        "forecast_epochs": [int(epochs[h]), int(epochs[-1])],
        "scale_s": f.scale, "beta": f.beta,
        "closed_form_rel_error": asdict(ErrorStats.of(err_cf)),
        "forward_ode_rel_error": asdict(ErrorStats.of(err_fwd)),
        "method": method,
    }


def compare_records(
    records: Sequence[dict[str, Any]],
    *,
    time: str = "lr_steps",
    early_epoch: int | None = None,
    fit_from_epoch: int | None = None,
    fit_exponent: bool = True,
    num_classes: int | None = None,
    per_class: int | None = None,
    tpt_threshold: float = TPT_THRESHOLD_DEFAULT,
    config: dict[str, Any] | None = None,
) -> Comparison:
    """Predicted-against-observed comparison of one run's log (see module docstring).

    Parameters
    ----------
    records : metrics.jsonl records, sorted by epoch.
    time : "epoch" or "lr_steps" (the learning-rate weighted step count ``sum_k lr_k``).
    early_epoch : epoch whose measured SNR starts the forward integration
        (default: the first epoch of the fit window).
    fit_from_epoch : first epoch of the fit window (default: the start of the terminal phase,
        :func:`terminal_phase_start` at ``tpt_threshold``; all epochs if it is never reached
        or leaves fewer than 4 points).
    fit_exponent : time map ``s T^beta`` with free ``beta`` (else ``beta = 1``).
    tpt_threshold : training-error threshold of the terminal phase (math §7.2; 0 = exactly zero).
    config : the run's ``config.json`` (its ``lam`` tells the ridge of a log whose lines do not).

    Raises
    ------
    ValueError
        When the log cannot be compared (no SNR values, fewer than 4 usable epochs, ...).
    """
    if time not in TIME_KEYS:
        raise ValueError(f"time must be one of {sorted(TIME_KEYS)}, got {time!r}")
    time_key = TIME_KEYS[time]
    if not records:
        raise ValueError("compare: empty metrics log")
    epochs = column(records, "epoch")
    T_all = column(records, time_key)
    if not np.any(np.isfinite(T_all)):
        raise ValueError(f"compare: the log has no {time_key!r} values (try --time epoch)")
    snr = snr_matrix_of(records)
    if snr.shape[1] == 0:
        raise ValueError("compare: the log has no snr_singular_values")
    C = int(num_classes) if num_classes else snr.shape[1] + 1
    tpt = terminal_phase_start(list(records), tpt_threshold)
    tpt_words = "training error zero" if tpt_threshold == 0 else f"training error <= {tpt_threshold:g}"

    valid = np.isfinite(T_all) & (T_all > 0) & np.all(np.isfinite(snr), axis=1)
    if fit_from_epoch is not None:
        window = valid & (epochs >= fit_from_epoch)
        window_reason = f"epochs >= {fit_from_epoch} (requested)"
    elif tpt is not None and np.sum(valid & (epochs >= epochs[tpt])) >= 4:
        window = valid & (epochs >= epochs[tpt])
        window_reason = f"terminal phase: epochs >= {int(epochs[tpt])} ({tpt_words} from there on)"
    else:
        window = valid
        window_reason = "all epochs (terminal phase absent or too short)"
    idx = np.flatnonzero(window)
    if idx.size < 4:
        raise ValueError(f"compare: only {idx.size} usable measured epochs in the fit window ({window_reason})")
    ranks = column(records, "snr_rank")[idx]

    fits: dict[str, SNRFit] = {}
    fits["linear"] = fit_snr_dynamics(T_all[idx], snr[idx], num_classes=C, time_key=time_key, fit_exponent=False)
    if fit_exponent:
        fits["power"] = fit_snr_dynamics(T_all[idx], snr[idx], num_classes=C, time_key=time_key, fit_exponent=True)
    primary = "power" if fit_exponent else "linear"
    fit = fits[primary]
    omega_fit = fit.predict(T_all[idx])

    # max/min ratio of the SNR singular values (math §6.4 item 2: -> 1).
    obs_ratio = np.max(snr[idx], axis=1) / np.min(snr[idx], axis=1)
    fit_ratio = np.nanmax(omega_fit, axis=1) / np.nanmin(omega_fit, axis=1)
    q = max(1, obs_ratio.size // 4)
    ratio = RatioComparison(
        observed_first_quarter_median=float(np.median(obs_ratio[:q])),
        observed_last_quarter_median=float(np.median(obs_ratio[-q:])),
        observed_spearman_vs_time=_spearman(T_all[idx], obs_ratio),
        observed_first=float(obs_ratio[0]), observed_last=float(obs_ratio[-1]), observed_min=float(np.min(obs_ratio)),
        predicted_first=float(fit_ratio[0]), predicted_last=float(fit_ratio[-1]),
        # Robust to single noisy epochs: median of the last quarter of the window below the first quarter's.
        observed_moves_toward_1=bool(np.median(obs_ratio[-q:]) < np.median(obs_ratio[:q])),
        predicted_moves_toward_1=bool(fit_ratio[-1] < fit_ratio[0]),
    )

    # Forward integration from the SNR at an early epoch, with the fitted time map.
    if early_epoch is None:
        k0 = int(idx[0])
    else:
        cand = np.flatnonzero(valid & (epochs >= early_epoch))
        if cand.size == 0:
            raise ValueError(f"compare: no usable measured epoch at or after --early-epoch {early_epoch}")
        k0 = int(cand[0])
    later = np.flatnonzero(valid & (np.arange(len(records)) >= k0))
    flow_times = fit.flow_time(T_all[later]) - fit.flow_time(T_all[k0])
    omega_fwd, fwd_method = _forward_integrate(snr[k0], flow_times, C)
    fwd_rel = _rel_err(omega_fwd, snr[later])
    forward = ForwardPrediction(
        start_epoch=int(epochs[k0]), method=fwd_method,
        flow_time_map=f"t = s * (T**beta - T0**beta), s = {fit.scale:.6g}, beta = {fit.beta:.6g}",
        snr_rel_error=ErrorStats.of(np.nanmax(fwd_rel, axis=1)),
        snr_rel_error_final_per_value=[float(v) for v in fwd_rel[-1]],
        holdout=_holdout_forecast(T_all[idx], snr[idx], C, time_key, fit_exponent, epochs[idx]),
    )

    quantities: dict[str, QuantityComparison] = {}
    arrays: dict[str, Any] = {
        "epochs": epochs, "T": T_all, "snr": snr, "fit_idx": idx, "omega_fit": omega_fit, "fwd_idx": later,
        "omega_fwd": omega_fwd, "obs_ratio": obs_ratio, "fit_ratio": fit_ratio, "quantities": {},
    }
    lam = column(records, "lam")
    for key, law in PREDICTED_QUANTITIES.items():
        measured_key, at_zero = measured_key_at_lambda_zero(records, key, config)
        meas = column(records, measured_key)
        if not np.any(np.isfinite(meas[idx])):
            continue
        pred_fit = law_sum(law, omega_fit, C)
        pred_obs = law_sum(law, snr[idx], C)
        pred_fwd = law_sum(law, omega_fwd, C)
        nb = column(records, f"{key}_notebook") if key in ("l_nc1", "l_nc23") else None
        has_nb = nb is not None and np.any(np.isfinite(nb[idx]))
        quantities[key] = QuantityComparison(
            law=f"sum_j theory.laws.{law}(omega_j)", measured_key=measured_key, at_lambda_zero=at_zero,
            measured_first=float(meas[idx][0]), measured_last=float(meas[idx][-1]),
            rel_error_fit=ErrorStats.of(_rel_err(pred_fit, meas[idx])),
            rel_error_at_measured_snr=ErrorStats.of(_rel_err(pred_obs, meas[idx])),
            rel_error_forward=ErrorStats.of(_rel_err(pred_fwd, meas[later])),
            # The same terms at the notebook's smaller ridge (lambda = wd/2): the gap to the lambda = 0
            # laws should shrink with lambda if it is the ridge's effect.
            rel_error_at_measured_snr_notebook_lambda=ErrorStats.of(_rel_err(pred_obs, nb[idx])) if has_nb else None,
        )
        arrays["quantities"][key] = {"measured": meas, "fit": pred_fit, "at_snr": pred_obs, "forward": pred_fwd,
                                     "measured_notebook": nb, "measured_key": measured_key}

    notes = []
    if np.any(np.isfinite(ranks)) and np.nanmin(ranks) != np.nanmax(ranks):
        notes.append(f"The SNR was measured on the range of a singular Sigma_W whose rank changes within the fit window "
                     f"({int(np.nanmin(ranks))}..{int(np.nanmax(ranks))}: ReLU units dying or reviving); the SNR "
                     "singular values can jump where it changes (docs/rank_deficient.md).")
    notes += [
        "Columns: 'fit' = laws at the fitted omega_j(T); 'at_measured_snr' = laws at the measured omega_j "
        "(the math §3.4 identity, exact for the lambda = 0 terms); 'forward' = laws along the forward ODE.",
        "nc1 is (1/C) Tr(Sigma_W Sigma_B^+) in raw feature coordinates, which is not affine invariant; "
        "sum_j omega_j^-2 equals it only in renormalised coordinates (math §5.1), so a gap is expected on a network.",
    ]
    off_zero = [k for k, q in quantities.items() if not q.at_lambda_zero]
    if not off_zero:
        notes.append("Decomposition terms are the run's lambda = 0 terms (l_*_lam0), the central path of math §3.4.")
    else:
        lam_txt = f"{np.nanmax(lam):.3g}" if np.any(np.isfinite(lam)) else "unknown"
        notes.append(f"The log has no lambda = 0 terms for {', '.join(off_zero)}: they are at the run's ridge "
                     f"lambda = {lam_txt}, while the math §3.4 laws are the lambda = 0 central path, so their "
                     "'at_measured_snr' errors measure the ridge's effect, not the identity.")
    return Comparison(
        num_classes=C, per_class=per_class, time=time_key, num_records=len(records), tpt_threshold=float(tpt_threshold),
        terminal_phase_start_epoch=int(epochs[tpt]) if tpt is not None else None,
        fit_window={"reason": window_reason, "epochs": [int(e) for e in epochs[idx]],
                    "snr_rank_range": ([int(np.nanmin(ranks)), int(np.nanmax(ranks))]
                                       if np.any(np.isfinite(ranks)) else None)},
        lambda_range=[float(np.nanmin(lam)), float(np.nanmax(lam))] if np.any(np.isfinite(lam)) else None,
        fit=fit, fits=fits, primary_fit=primary, snr_ratio=ratio, forward=forward, quantities=quantities,
        notes=notes, arrays=arrays,
    )


def measured_key_at_lambda_zero(records: Sequence[dict[str, Any]], key: str,
                                config: dict[str, Any] | None = None) -> tuple[str, bool]:
    """The log's key for quantity ``key`` at lambda = 0, and whether it is at lambda = 0.

    ``key_lam0`` when the log has it; else ``key`` itself, at lambda = 0 when the run schema's rule says so
    (``empirical.schema.RunLog.at_lambda_zero``: every line's ``lam``, or the config's, is 0); quantities without a
    lambda (``nc1``) are lambda-free.  The laws of math §3.4 hold at lambda = 0 only: a term at another lambda is
    never held against them silently.
    """
    from empirical.schema import RunLog  # noqa: PLC0415

    if np.any(np.isfinite(column(records, f"{key}_lam0"))):
        return f"{key}_lam0", True
    try:
        return key, RunLog(list(records), config or {}, Path("."), "records").at_lambda_zero(key)
    except KeyError:  # not a decomposition term: no lambda
        return key, True


def write_compare_figures(result: Comparison, out_dir: str | Path) -> list[Path]:
    """Observed (markers) vs fitted (line) vs forward-integrated (dashed), log axes; returns PNG paths."""
    plt = _plot.plt()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    a = result.arrays
    T, idx, fwd = a["T"], a["fit_idx"], a["fwd_idx"]
    xlabel = result.time
    paths: list[Path] = []

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    C1 = a["snr"].shape[1]
    colors = plt.cm.viridis(np.linspace(0, 0.9, C1))
    ok = np.isfinite(T) & (T > 0)
    for j in range(C1):
        ax.plot(T[ok], a["snr"][ok, j], "o", ms=3, color=colors[j], alpha=0.7)
        ax.plot(T[idx], a["omega_fit"][:, j], "-", color=colors[j], lw=1.2)
        ax.plot(T[fwd], a["omega_fwd"][:, j], "--", color=colors[j], lw=1.0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("SNR singular values omega_j")
    f = result.fit.to_dict()
    ax.set_title(f"SNR: observed (o), closed-form fit (-), forward ODE (--)\n"
                 f"s={f['scale_s']:.3g}, beta={f['beta']:.3g}, min R^2(log omega)={f['r2_log_omega_min']:.3f}",
                 fontsize=9)
    paths.append(_plot.save(fig, out_dir / "compare_snr.png", dpi=110))

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(T[idx], a["obs_ratio"] - 1.0, "o", ms=3, label="observed")
    ax.plot(T[idx], a["fit_ratio"] - 1.0, "-", label="closed-form fit")
    fr = np.nanmax(a["omega_fwd"], axis=1) / np.nanmin(a["omega_fwd"], axis=1)
    ax.plot(T[fwd], fr - 1.0, "--", label="forward ODE")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("max_j omega_j / min_j omega_j - 1")
    ax.legend(fontsize=8)
    paths.append(_plot.save(fig, out_dir / "compare_snr_ratio.png", dpi=110))

    for key, q in a["quantities"].items():
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        meas = q["measured"]
        okm = ok & np.isfinite(meas) & (meas > 0)
        lam_label = "lambda = 0" if q.get("measured_key", "").endswith("_lam0") else "run's lambda"
        ax.plot(T[okm], meas[okm], "o", ms=3, label=f"measured {key} ({lam_label})")
        nb = q.get("measured_notebook")
        if nb is not None and np.any(np.isfinite(nb) & (nb > 0)):
            okn = ok & np.isfinite(nb) & (nb > 0)
            ax.plot(T[okn], nb[okn], "x", ms=3, label=f"measured {key} at the notebook's lambda = wd/2")
        ax.plot(T[idx], q["fit"], "-", label="theory at fitted omega(T)")
        ax.plot(T[idx], q["at_snr"], ":", label="theory at measured omega")
        ax.plot(T[fwd], q["forward"], "--", label="forward ODE from early epoch")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(key)
        ax.legend(fontsize=8)
        paths.append(_plot.save(fig, out_dir / f"compare_{key}.png", dpi=110))
    return paths


def compare_run(
    run_dir: str | Path,
    *,
    out: str | Path | None = None,
    time: str = "lr_steps",
    early_epoch: int | None = None,
    fit_from_epoch: int | None = None,
    fit_exponent: bool = True,
    figures: bool = True,
    loaded: tuple[list[dict[str, Any]], dict[str, Any]] | None = None,
    tpt_threshold: float = TPT_THRESHOLD_DEFAULT,
) -> Comparison:
    """Run :func:`compare_records` on ``run_dir`` and write ``compare.json`` + figures to ``out`` (default the run dir).

    ``loaded``: the run's ``(records, config)`` as :func:`load_run` returned them, when the caller has read it
    already (the run is then not read again).
    """
    records, config = loaded if loaded is not None else load_run(run_dir)
    per_class = config_value(config, "per_class")
    result = compare_records(
        records,
        time=time,
        early_epoch=early_epoch,
        fit_from_epoch=fit_from_epoch,
        fit_exponent=fit_exponent,
        per_class=int(per_class) if per_class is not None else None,
        tpt_threshold=tpt_threshold,
        config=config,
    )
    result.run_dir = str(run_dir)
    out_dir = Path(out) if out is not None else Path(run_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if figures:
        result.figures = [str(p) for p in write_compare_figures(result, out_dir / "figures")]
    (out_dir / "compare.json").write_text(dumps(result.to_json()))
    return result
