"""Write the claims and figures as ``claims.json``, ``report.md`` and a self-contained ``report.html``.

``claims.json`` is a list of ``{"id", "statement", "source", "status", "measured",
"tolerance", "check", "group"}`` objects (status "pass" or "fail").  ``report.html``
inlines every figure as a base64 PNG, so the single file can be mailed or archived.
Training-run figures (NC metrics and the MSE decomposition against epoch, spec 7.2 / 4)
and simulation figures (SNR singular values and the ETF approach, spec 6.4) are drawn here
from the logged numbers; the predicted-against-observed figures come from
:mod:`paper_checks.compare`.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import _plot
from ._laws import law
from .claims import Claim
from .compare import column, dumps_json, terminal_phase_start

__all__ = [
    "write_claims_json",
    "claims_table",
    "write_report",
    "training_figures",
    "simulation_figures",
]


def write_claims_json(claims: Sequence[Claim], path: str | Path) -> Path:
    """``claims.json``: the list of claim dicts (strict JSON, NaN -> null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps_json([c.to_dict() for c in claims]) + "\n")
    return path


def _short(measured: Any, limit: int = 110) -> str:
    """One-line rendering of a claim's measured numbers."""
    if isinstance(measured, dict):
        parts = []
        for k, v in measured.items():
            if isinstance(v, float):
                parts.append(f"{k}={v:.3g}")
            elif isinstance(v, (int, str, bool)) or v is None:
                parts.append(f"{k}={v}")
            elif isinstance(v, dict):
                inner = ", ".join(f"{ik}={iv:.3g}" if isinstance(iv, float) else f"{ik}={iv}"
                                  for ik, iv in list(v.items())[:3])
                parts.append(f"{k}: {{{inner}}}")
            elif isinstance(v, list):
                parts.append(f"{k}=[" + ", ".join(f"{x:.3g}" if isinstance(x, float) else str(x) for x in v[:4])
                             + (", ..." if len(v) > 4 else "") + "]")
        text = "; ".join(parts)
    else:
        text = str(measured)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _nc_headline(m: dict) -> str:
    keys = [k for k, v in m.items() if isinstance(v, dict) and "at_tpt_start" in v]
    return "; ".join(f"{k}: {m[k]['at_tpt_start']:.3g} -> {m[k]['final']:.3g}" for k in keys) + \
        f" (epochs {m['tpt_start_epoch']} -> {m['last_epoch']})"


#: One-line summaries of the numbers that decide each claim (fallback: the first measured fields).
HEADLINES = {
    "dynamics.closed_form": lambda m: f"max rel error ODE vs closed form {m['max_rel_error_ode_vs_closed_form']:.2e}",
    "dynamics.omega_to_infinity": lambda m: (f"min growth x{m['min_growth_factor_w(t_max)/w(0)']:.3g}; "
                                             f"omega/(t/c3)^(1/4) at t_max "
                                             f"{min(m['omega/(t/c3)^(1/4) at t_max']):.3f}.."
                                             f"{max(m['omega/(t/c3)^(1/4) at t_max']):.3f}"),
    "dynamics.max_min_ratio_to_1": lambda m: (f"ratio {m['ratio_start']:.3g} -> {m['ratio_end']:.6g}; (ratio-1)*t "
                                              f"spread {m['max/min of (ratio-1)*t over the last third of saved times']:.3g}"),
    "dynamics.simplex_etf_limit": lambda m: f"ETF distance {m['etf_distance_start']:.3g} -> {m['etf_distance_end']:.3g}",
    "dynamics.nc1_rate": lambda m: f"NC1*sqrt(t) {m['NC1*sqrt(t) at t_max']:.4g} vs (C-1)sqrt(c3) {m['(C-1)*sqrt(c3)']:.4g}",
    "dynamics.tail_rates": lambda m: "slopes " + ", ".join(f"{k} {v:.3f}" for k, v in m["slopes"].items()),
    "dynamics.nc_metrics_decrease": lambda m: f"nc1 {m['nc1']['start']:.3g} -> {m['nc1']['end']:.3g}, "
                                              f"nc3 {m['nc3']['start']:.3g} -> {m['nc3']['end']:.3g}",
    "dynamics.invariants": lambda m: ", ".join(f"{k} {v:.1e}" for k, v in m.items()),
    "dynamics.retraction_differs": lambda m: (
        f"own-law residual {m['own_law_residual_at_h']:.2e} at step {m['step_h']:g}, "
        f"{m['own_law_residual_at_h/2']:.2e} at half (ratio {m['own_law_residual_ratio_h_over_h/2']:.3f}); "
        f"projected-law residual {m['retraction_residual_projected_law']:.3g}"),
    "empirical.terminal_phase_reached": lambda m: (f"zero training error from epoch {m['terminal_phase_start_epoch']} "
                                                   f"to {m['last_epoch']}; final test error {m['final_test_error']:.4f}"),
    "empirical.l_perp_negligible": lambda m: (f"L_perp/(L_NC1+L_NC2/3) max {m['max_ratio_terminal_phase']:.3g}, "
                                              f"median {m['median_ratio_terminal_phase']:.3g}, "
                                              f"final {m['final_ratio']:.3g} (terminal phase)"),
    "empirical.decomposition_identity": lambda m: f"max |L - sum of terms|/L {m['max_rel_residual']:.2e}",
    "empirical.snr_follows_closed_form": lambda m: (f"min R^2 {m['r2_log_omega_min']:.3f}, median "
                                                    f"{m['r2_log_omega_median']:.3f} (linear map: min "
                                                    f"{m['linear_map_r2_min']:.3f}); {m['time_map']}"),
    "empirical.snr_ratio_toward_1": lambda m: (
        f"max/min observed {m['observed_first_quarter_median']:.3g} -> {m['observed_last_quarter_median']:.3g} "
        f"(quarter medians; first/last epoch {m['observed_first']:.3g} -> {m['observed_last']:.3g}), "
        f"fitted {m['predicted_first']:.3g} -> {m['predicted_last']:.3g}"),
    "empirical.decomposition_tracks_theory": lambda m: (
        f"median rel error L_NC1 {m['l_nc1']['median_rel_error_fit']:.3g}, L_NC2/3 "
        f"{m['l_nc23']['median_rel_error_fit']:.3g} (laws at measured SNR: {m['l_nc1']['median_rel_error_at_measured_snr']:.3g}, "
        f"{m['l_nc23']['median_rel_error_at_measured_snr']:.3g}; lambda {m['lambda_range']})"),
    "empirical.forward_prediction": lambda m: (
        f"median rel error {m['snr_rel_error']['median']:.3g} from epoch {m['start_epoch']}"
        + (f"; holdout forecast {m['holdout']['forward_ode_rel_error']['median']:.3g}"
           if isinstance(m.get("holdout"), dict) and "forward_ode_rel_error" in m["holdout"] else "")),
}


def _symbolic_headline(m: dict) -> str:
    kinds = ", ".join(f"{v} {k}" for k, v in m["kinds"].items())
    fails = "; FAILED: " + ", ".join(str(f["name"]) for f in m["failed"]) if m["failed"] else ""
    return f"{m['passed']}/{m['checks']} checks ({kinds}) in {m['seconds']:.1f} s{fails}"


def headline(claim: Claim, limit: int = 200) -> str:
    """The claim's deciding numbers in one line."""
    m = claim.to_dict()["measured"]
    fn = HEADLINES.get(claim.id)
    if fn is None and claim.id.startswith("empirical.n") and isinstance(m, dict):
        fn = _nc_headline
    if fn is None and claim.id.startswith("symbolic.") and isinstance(m, dict) and "kinds" in m:
        fn = _symbolic_headline
    if isinstance(m, dict) and "error" in m:
        fn = None
    try:
        text = fn(m) if fn is not None else _short(m, limit)
    except (KeyError, TypeError, ValueError, IndexError):
        text = _short(m, limit)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def claims_table(claims: Sequence[Claim], *, width: int = 160) -> str:
    """Plain-text summary table (id, status, measured) for the terminal."""
    idw = max([len(c.id) for c in claims] + [5])
    lines = [f"{'claim':<{idw}}  status  measured", f"{'-' * idw}  ------  {'-' * 40}"]
    for c in claims:
        lines.append(f"{c.id:<{idw}}  {c.status.upper():<6}  {headline(c, max(60, width - idw - 10))}")
    n_pass = sum(c.passed for c in claims)
    lines.append(f"{n_pass}/{len(claims)} claims pass")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- figures


def training_figures(records: Sequence[dict[str, Any]], out_dir: str | Path) -> list[Path]:
    """Spec 7.2 figures of a run: NC1-NC4 and training error vs epoch; the four-curve MSE decomposition.

    Not ``empirical.plot.plot_run``: that writes one PNG per panel (plus ``summary.png``) on a linear epoch axis
    and marks the first zero-error epoch, while the report needs these two figures, log-log, marked at
    :func:`paper_checks.compare.terminal_phase_start` (the epoch the claims use), with the proximity panel.
    """
    plt = _plot.plt()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ep = column(records, "epoch")
    paths: list[Path] = []
    tpt = terminal_phase_start(records)

    panels = [
        ("training / test error", ["train_error", "test_error"]),
        ("NC1", ["nc1"]),
        ("NC2 equinorm", ["nc2_equinorm_means", "nc2_equinorm_classifiers"]),
        ("NC2 max-angle", ["nc2_maxangle_means", "nc2_maxangle_classifiers"]),
        ("NC3 self-duality", ["nc3"]),
        ("NC4 NCC disagreement", ["nc4"]),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    for ax, (title, keys) in zip(axes.ravel(), panels):
        for key in keys:
            v = column(records, key)
            ok = np.isfinite(v) & (v > 0) & (ep > 0)
            if np.any(ok):
                ax.plot(ep[ok], v[ok], "o-", ms=3, lw=1, label=key)
        if tpt is not None:
            ax.axvline(ep[tpt], color="gray", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    fig.suptitle("Neural collapse metrics (dotted line: start of the terminal phase, training error zero from "
                 "there on)", fontsize=10)
    paths.append(_plot.save(fig, out_dir / "training_nc_metrics.png"))

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    ax = axes[0]
    for key, label in [("loss", "L (MSE + ridge)"), ("l_nc1", "L_NC1"), ("l_nc23", "L_NC2/3"), ("l_perp", "L_LS^perp")]:
        v = column(records, key)
        ok = np.isfinite(v) & (v > 0) & (ep > 0)
        if np.any(ok):
            ax.plot(ep[ok], v[ok], "o-", ms=3, lw=1, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_title("MSE decomposition L = L_NC1 + L_NC2/3 + L_perp (spec 3.2, 4)", fontsize=10)
    ax.legend(fontsize=8)
    ax = axes[1]
    lp = column(records, "l_perp")
    la = column(records, "l_nc1") + column(records, "l_nc23")
    ok = np.isfinite(lp / la) & (lp > 0) & (ep > 0)
    if np.any(ok):
        ax.plot(ep[ok], (lp / la)[ok], "o-", ms=3, lw=1, label="L_perp / (L_NC1 + L_NC2/3)")
    cpd = column(records, "central_path_distance")
    ok = np.isfinite(cpd) & (cpd > 0) & (ep > 0)
    if np.any(ok):
        ax.plot(ep[ok], cpd[ok], "s-", ms=3, lw=1, label="||[W b] - [W_LS b_LS]|| / ||[W_LS b_LS]||")
    if tpt is not None:
        for a in axes:
            a.axvline(ep[tpt], color="gray", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_title("Proximity to the central path", fontsize=10)
    ax.legend(fontsize=8)
    paths.append(_plot.save(fig, out_dir / "training_decomposition.png"))
    return paths


def simulation_figures(projected: Any, retraction: Any | None, out_dir: str | Path, *, per_class: int) -> list[Path]:
    """Spec 6.4 figures: omega_j(t) (ODE vs closed form vs (t/c3)^(1/4)), max/min ratio, retraction contrast.

    Not ``simulate.plots.make_figures``: its figures are separate files of one trajectory, with no way to overlay
    the retraction run on the omega panel.
    """
    plt = _plot.plt()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t = np.asarray(projected.times, dtype=np.float64)
    w = np.asarray(projected.omega, dtype=np.float64)
    cf = np.asarray(projected.closed_form_omega, dtype=np.float64)
    C = w.shape[1] + 1
    kappa = float(projected.params["kappa_value"])  # the flow speed the trajectory was simulated with
    growth = law("growth")  # (t/c3)^(1/4), spec 6.4 item 1
    pos = t > 0
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    ax = axes[0]
    for j in range(w.shape[1]):
        ax.plot(t[pos], w[pos, j], "-", lw=1.5, label="ODE" if j == 0 else None)
        ax.plot(t[pos], cf[pos, j], "k:", lw=1, label="closed form" if j == 0 else None)
    ax.plot(t[pos], growth(t[pos], float(per_class), float(C), kappa), "r--", lw=1, label="(t/c3)^(1/4)")
    if retraction is not None:
        tr = np.asarray(retraction.times, dtype=np.float64)
        wr = np.asarray(retraction.omega, dtype=np.float64)
        pr = tr > 0
        ax.plot(tr[pr], wr[pr].min(axis=1), "g-.", lw=1, label="retraction flow (min_j)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("flow time t")
    ax.set_ylabel("omega_j")
    ax.set_title(f"SNR singular values (C={C}, N={per_class})", fontsize=10)
    ax.legend(fontsize=8)
    ax = axes[1]
    r = w.max(axis=1) / w.min(axis=1) - 1
    ax.plot(t[pos], r[pos], label="max/min - 1")
    ax.plot(t[pos], r[pos] * t[pos], ":", label="(max/min - 1) * t  (levels off => O(1/t))")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("flow time t")
    ax.set_title("max_j omega_j / min_j omega_j -> 1", fontsize=10)
    ax.legend(fontsize=8)
    return [_plot.save(fig, out_dir / "simulation_snr.png")]


# ----------------------------------------------------------------------------- report


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def write_report(
    out_dir: str | Path,
    claims: Sequence[Claim],
    *,
    figures: Sequence[str | Path] = (),
    context: dict[str, Any] | None = None,
    title: str = "NC-MSE paper checks",
) -> dict[str, Path]:
    """Write ``claims.json``, ``report.md`` and the self-contained ``report.html`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    context = context or {}
    paths = {"claims": write_claims_json(claims, out_dir / "claims.json")}
    n_pass = sum(c.passed for c in claims)
    verdict = "ALL CLAIMS PASS" if n_pass == len(claims) else f"{len(claims) - n_pass} CLAIM(S) FAIL"

    md = [f"# {title}", "", f"**{n_pass}/{len(claims)} claims pass** ({verdict}).", ""]
    if context:
        md += ["## Set-up", ""]
        md += [f"- **{k}**: {v}" for k, v in context.items()]
        md.append("")
    groups: dict[str, list[Claim]] = {}
    for c in claims:
        groups.setdefault(c.group or "other", []).append(c)
    for g, cs in groups.items():
        md += [f"## {g.capitalize()} claims", "", "| id | status | statement | source | tolerance | measured |",
               "|---|---|---|---|---|---|"]
        for c in cs:
            md.append(f"| `{c.id}` | **{c.status}** | {_md_escape(c.statement)} | {_md_escape(c.source)} | "
                      f"{_md_escape(c.tolerance)} | {_md_escape(headline(c, 400))} |")
        md.append("")
    md += ["## How each claim is checked", ""]
    md += [f"- `{c.id}`: {c.check}" for c in claims]
    md.append("")
    if figures:
        md += ["## Figures", ""]
        for f in figures:
            f = Path(f)
            try:
                rel = f.relative_to(out_dir)
            except ValueError:
                rel = f
            md.append(f"![{f.stem}]({rel})")
        md.append("")
    paths["md"] = out_dir / "report.md"
    paths["md"].write_text("\n".join(md))

    esc = html.escape
    rows = []
    for c in claims:
        color = "#d9f2d9" if c.passed else "#f8d0d0"
        rows.append(
            f"<tr style='background:{color}'><td><code>{esc(c.id)}</code></td><td><b>{esc(c.status)}</b></td>"
            f"<td>{esc(c.statement)}</td><td>{esc(c.source)}</td><td>{esc(c.tolerance)}</td>"
            f"<td><details><summary>{esc(headline(c, 300))}</summary><pre>"
            f"{esc(json.dumps(c.to_dict()['measured'], indent=1))}</pre><p>{esc(c.check)}</p></details></td></tr>"
        )
    imgs = []
    for f in figures:
        f = Path(f)
        if f.is_file():
            data = base64.b64encode(f.read_bytes()).decode("ascii")
            imgs.append(f"<figure><img src='data:image/png;base64,{data}' style='max-width:100%'>"
                        f"<figcaption>{esc(f.stem)}</figcaption></figure>")
    ctx = "".join(f"<li><b>{esc(str(k))}</b>: {esc(str(v))}</li>" for k, v in context.items())
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}}
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #bbb;padding:4px;vertical-align:top}}
pre{{font-size:11px;white-space:pre-wrap}}</style></head><body>
<h1>{esc(title)}</h1><p><b>{n_pass}/{len(claims)} claims pass</b> ({esc(verdict)}).</p>
<h2>Set-up</h2><ul>{ctx}</ul>
<h2>Claims</h2><table><tr><th>id</th><th>status</th><th>statement</th><th>source</th><th>tolerance</th>
<th>measured (click)</th></tr>{''.join(rows)}</table>
<h2>Figures</h2>{''.join(imgs)}
</body></html>
"""
    paths["html"] = out_dir / "report.html"
    paths["html"].write_text(doc)
    return paths

