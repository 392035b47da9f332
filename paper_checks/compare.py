"""Predicted against observed: the central-path theory set beside a training run's log.

Reads a run's ``metrics.jsonl`` (one JSON object per measured epoch, design.md "Runs and
files") and

1. fits the spec-6.3 closed-form SNR dynamics with a monotone time map
   (:func:`paper_checks.fit.fit_snr_dynamics`), per singular value R^2 and residuals;
2. predicts ``L_NC1``, ``L_NC2/3``, ``L_central`` and the renormalised NC1 from the
   spec-3.4 laws (``theory.laws``: ``l_nc1``, ``l_nc23``, ``l_central``,
   ``nc1_renormalized``, each summed over ``j``), both at the fitted ``omega_j(T)`` and at
   the measured ``omega_j`` (the latter is the spec-3.4 identity, exact at ``lambda = 0``);
3. integrates ``simulate``'s reduced ODE ``d omega_j/dt = omega_j / (C + omega_j^2)^2``
   (spec 6.2 with ``N = kappa = 1``, matching the fit's units) forward from the SNR measured
   at an early epoch, using the fitted time map, and overlays it on the later measurements;
4. writes ``compare.json`` and figures (observed vs predicted, log axes).

The theory is stated at ``lambda = 0`` for the unconstrained-features model; a network
trained with weight decay has ``lambda > 0`` and moving features, so disagreement is a
measured outcome, reported with its numbers, not an error.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from empirical.runs import read_config, read_metrics, terminal_phase_start

from . import _plot
from ._laws import law_sum
from .fit import SNRFit, fit_snr_dynamics

__all__ = [
    "TIME_KEYS",
    "PREDICTED_QUANTITIES",
    "load_run",
    "config_value",
    "terminal_phase_start",
    "compare_records",
    "compare_run",
    "write_compare_figures",
]

TIME_KEYS = {"epoch": "epoch", "lr_steps": "lr_weighted_steps", "lr_weighted_steps": "lr_weighted_steps"}

#: measured key -> theory.laws law name (summed over the C-1 singular values), spec 3.4 / 5.1
PREDICTED_QUANTITIES = {
    "l_nc1": "l_nc1",
    "l_nc23": "l_nc23",
    "l_central": "l_central",
    "nc1": "nc1_renormalized",
}


# ----------------------------------------------------------------------------- loading


def load_run(run_dir: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``metrics.jsonl`` records and ``config.json`` of a run directory (``empirical.runs`` readers).

    ``empirical.runs.read_metrics`` ignores a truncated last line (a run killed mid-write) and raises
    ``empirical.runs.RunError`` on a corrupt line elsewhere; ``read_config`` raises it for a missing or
    corrupt ``config.json``.  Records are sorted by epoch; a repeated epoch keeps its last record.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "metrics.jsonl").is_file():
        raise FileNotFoundError(f"no metrics.jsonl in {run_dir}" + ("" if run_dir.is_dir() else " (no such directory)"))
    config = read_config(run_dir)
    by_epoch = {rec.get("epoch", k): rec for k, rec in enumerate(read_metrics(run_dir))}
    return [by_epoch[k] for k in sorted(by_epoch)], config


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


def _stats(x: np.ndarray) -> dict[str, float | None]:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"median": None, "max": None, "final": None}
    return {"median": float(np.median(x)), "max": float(np.max(x)), "final": float(x[-1])}


def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman rank correlation (``scipy.stats.spearmanr``); None for fewer than 3 points or constant y."""
    if x.size < 3 or np.ptp(y) == 0 or np.ptp(x) == 0:
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


# ----------------------------------------------------------------------------- comparison


def _forward_integrate(omega0: np.ndarray, flow_times: np.ndarray, C: int) -> tuple[np.ndarray, str]:
    """Integrate ``d omega/dt = omega/(C+omega^2)^2`` (spec 6.2, N = kappa = 1) from ``omega0`` at t=0
    with ``simulate.integrate_reduced`` (diffrax)."""
    import simulate  # noqa: PLC0415 (jax: imported when a comparison runs)

    traj = simulate.integrate_reduced(np.asarray(omega0), np.asarray(flow_times), 1, C, kappa=1.0)
    return np.asarray(traj, dtype=np.float64), "simulate.integrate_reduced"


def _holdout_forecast(T: np.ndarray, W: np.ndarray, C: int, time_key: str, fit_exponent: bool,
                      epochs: np.ndarray) -> dict[str, Any]:
    """Out-of-sample check: fit the time map on the first half of the window, forecast the second half.

    Two forecasts of omega on the second half: the fitted closed form (spec 6.3) and the reduced
    ODE (spec 6.2) integrated from the last measured omega of the first half.
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
        "closed_form_rel_error": _stats(err_cf),
        "forward_ode_rel_error": _stats(err_fwd),
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
) -> dict[str, Any]:
    """Predicted-against-observed comparison of one run's log (see module docstring).

    Parameters
    ----------
    records : metrics.jsonl records, sorted by epoch.
    time : "epoch" or "lr_steps" (the learning-rate weighted step count ``sum_k lr_k``).
    early_epoch : epoch whose measured SNR starts the forward integration
        (default: the first epoch of the fit window).
    fit_from_epoch : first epoch of the fit window (default: the start of the terminal phase,
        :func:`terminal_phase_start`, training error zero from there on; all epochs if it is never reached
        or leaves fewer than 4 points).
    fit_exponent : time map ``s T^beta`` with free ``beta`` (else ``beta = 1``).

    Returns
    -------
    dict (JSON-ready apart from the private ``_arrays`` entry used for figures).
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
    tpt = terminal_phase_start(records)

    valid = np.isfinite(T_all) & (T_all > 0) & np.all(np.isfinite(snr), axis=1)
    if fit_from_epoch is not None:
        window = valid & (epochs >= fit_from_epoch)
        window_reason = f"epochs >= {fit_from_epoch} (requested)"
    elif tpt is not None and np.sum(valid & (epochs >= epochs[tpt])) >= 4:
        window = valid & (epochs >= epochs[tpt])
        window_reason = f"terminal phase: epochs >= {int(epochs[tpt])} (training error zero from there on)"
    else:
        window = valid
        window_reason = "all epochs (terminal phase absent or too short)"
    idx = np.flatnonzero(window)
    if idx.size < 4:
        raise ValueError(f"compare: only {idx.size} usable measured epochs in the fit window ({window_reason})")

    fits: dict[str, SNRFit] = {}
    fits["linear"] = fit_snr_dynamics(T_all[idx], snr[idx], num_classes=C, time_key=time_key, fit_exponent=False)
    if fit_exponent:
        fits["power"] = fit_snr_dynamics(T_all[idx], snr[idx], num_classes=C, time_key=time_key, fit_exponent=True)
    primary = "power" if fit_exponent else "linear"
    fit = fits[primary]
    omega_fit = fit.predict(T_all[idx])

    # max/min ratio of the SNR singular values (spec 6.4 item 2: -> 1).
    obs_ratio = np.max(snr[idx], axis=1) / np.min(snr[idx], axis=1)
    fit_ratio = np.nanmax(omega_fit, axis=1) / np.nanmin(omega_fit, axis=1)
    q = max(1, obs_ratio.size // 4)
    ratio = {
        "observed_first_quarter_median": float(np.median(obs_ratio[:q])),
        "observed_last_quarter_median": float(np.median(obs_ratio[-q:])),
        "observed_spearman_vs_time": _spearman(T_all[idx], obs_ratio),
        "observed_first": float(obs_ratio[0]),
        "observed_last": float(obs_ratio[-1]),
        "observed_min": float(np.min(obs_ratio)),
        "predicted_first": float(fit_ratio[0]),
        "predicted_last": float(fit_ratio[-1]),
        # Robust to single noisy epochs: median of the last quarter of the window below the first quarter's.
        "observed_moves_toward_1": bool(np.median(obs_ratio[-q:]) < np.median(obs_ratio[:q])),
        "predicted_moves_toward_1": bool(fit_ratio[-1] < fit_ratio[0]),
    }

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
    forward = {
        "start_epoch": int(epochs[k0]),
        "method": fwd_method,
        "flow_time_map": f"t = s * (T**beta - T0**beta), s = {fit.scale:.6g}, beta = {fit.beta:.6g}",
        "snr_rel_error": _stats(np.nanmax(fwd_rel, axis=1)),
        "snr_rel_error_final_per_value": [float(v) for v in fwd_rel[-1]],
    }

    forward["note"] = ("the time map is fitted on the whole window (in-sample); 'holdout' below fits it on the "
                       "first half only and forecasts the second half")
    forward["holdout"] = _holdout_forecast(T_all[idx], snr[idx], C, time_key, fit_exponent, epochs[idx])

    quantities: dict[str, Any] = {}
    arrays: dict[str, Any] = {
        "epochs": epochs,
        "T": T_all,
        "snr": snr,
        "fit_idx": idx,
        "omega_fit": omega_fit,
        "fwd_idx": later,
        "omega_fwd": omega_fwd,
        "obs_ratio": obs_ratio,
        "fit_ratio": fit_ratio,
        "quantities": {},
    }
    for key, law in PREDICTED_QUANTITIES.items():
        # The laws are the lambda = 0 central path (spec 3.4): use the run's lambda = 0 terms when logged.
        measured_key = f"{key}_lam0" if np.any(np.isfinite(column(records, f"{key}_lam0"))) else key
        meas = column(records, measured_key)
        if not np.any(np.isfinite(meas)):
            quantities[key] = {"law": law, "measured": False}
            continue
        pred_fit = law_sum(law, omega_fit, C)
        pred_obs = law_sum(law, snr[idx], C)
        pred_fwd = law_sum(law, omega_fwd, C)
        quantities[key] = {
            "law": f"sum_j theory.laws.{law}(omega_j)",
            "measured_key": measured_key,
            "measured_first": float(meas[idx][0]),
            "measured_last": float(meas[idx][-1]),
            "rel_error_fit": _stats(_rel_err(pred_fit, meas[idx])),
            "rel_error_at_measured_snr": _stats(_rel_err(pred_obs, meas[idx])),
            "rel_error_forward": _stats(_rel_err(pred_fwd, meas[later])),
        }
        nb = column(records, f"{key}_notebook") if key in ("l_nc1", "l_nc23") else None
        if nb is not None and np.any(np.isfinite(nb[idx])):
            # The same terms at the notebook's smaller ridge (lambda = wd/2): the gap to the lambda = 0
            # laws should shrink with lambda if it is the ridge's effect.
            quantities[key]["rel_error_at_measured_snr_notebook_lambda"] = _stats(_rel_err(pred_obs, nb[idx]))
        arrays["quantities"][key] = {"measured": meas, "fit": pred_fit, "at_snr": pred_obs, "forward": pred_fwd,
                                     "measured_notebook": nb, "measured_key": measured_key}

    lam = column(records, "lam")
    notes = [
        "Columns: 'fit' = laws at the fitted omega_j(T); 'at_measured_snr' = laws at the measured omega_j "
        "(the spec-3.4 identity, exact for the lambda = 0 terms); 'forward' = laws along the forward ODE.",
        "nc1 is (1/C) Tr(Sigma_W Sigma_B^+) in raw feature coordinates, which is not affine invariant; "
        "sum_j omega_j^-2 equals it only in renormalised coordinates (spec 5.1), so a gap is expected on a network.",
    ]
    uses_lam0 = any(q.get("measured_key", "").endswith("_lam0") for q in quantities.values())
    if uses_lam0:
        notes.append("Decomposition terms are the run's lambda = 0 terms (l_*_lam0), the central path of spec 3.4.")
    elif np.any(np.isfinite(lam)) and np.nanmax(lam) > 0:
        notes.append(f"The run's decomposition uses the ridge lambda = {np.nanmax(lam):.3g} > 0, while the spec-3.4 "
                     "laws are the lambda = 0 central path: 'at_measured_snr' errors measure the ridge's effect.")
    result: dict[str, Any] = {
        "num_classes": C,
        "per_class": per_class,
        "time": time_key,
        "num_records": len(records),
        "terminal_phase_start_epoch": int(epochs[tpt]) if tpt is not None else None,
        "fit_window": {
            "reason": window_reason,
            "epochs": [int(e) for e in epochs[idx]],
        },
        "lambda_range": [float(np.nanmin(lam)), float(np.nanmax(lam))] if np.any(np.isfinite(lam)) else None,
        "fit": fit.to_dict(),
        "fits": {name: f.to_dict() for name, f in fits.items()},
        "primary_fit": primary,
        "snr_ratio": ratio,
        "forward": forward,
        "quantities": quantities,
        "notes": notes,
        "_arrays": arrays,
    }
    if per_class:
        result["fit"]["flow_time_per_unit_projected_flow"] = (
            f"t = N * s * T**beta = {float(fit.flow_time(1.0, per_class=per_class)):.6g} * T**{fit.beta:.4g} "
            f"(kappa = 1, N = {per_class})"
        )
    return result


def write_compare_figures(result: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Observed (markers) vs fitted (line) vs forward-integrated (dashed), log axes; returns PNG paths."""
    plt = _plot.plt()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    a = result["_arrays"]
    T, idx, fwd = a["T"], a["fit_idx"], a["fwd_idx"]
    xlabel = result["time"]
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
    f = result["fit"]
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


def jsonable(o: Any) -> Any:
    """JSON-ready copy: numpy arrays and scalars to Python, tuples to lists, keys to str, NaN/Inf to None."""
    if isinstance(o, dict):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return jsonable(o.tolist())
    if isinstance(o, (bool, np.bool_)):
        return bool(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, (float, np.floating)):
        f = float(o)
        return f if math.isfinite(f) else None
    return o


def dumps_json(obj: Any) -> str:
    """Strict JSON text (NaN/Inf written as null, numpy types converted, other objects as str)."""
    return json.dumps(jsonable(obj), indent=2, default=str, allow_nan=False)


def public(result: dict[str, Any]) -> dict[str, Any]:
    """The JSON part of a comparison result (drops the private arrays)."""
    return {k: v for k, v in result.items() if not k.startswith("_")}


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
) -> dict[str, Any]:
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
    )
    result["run_dir"] = str(run_dir)
    out_dir = Path(out) if out is not None else Path(run_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if figures:
        result["figures"] = [str(p) for p in write_compare_figures(result, out_dir / "figures")]
    (out_dir / "compare.json").write_text(dumps_json(public(result)))
    return result
