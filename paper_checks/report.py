"""Write the claims and figures as ``claims.json``, ``report.md`` and a self-contained ``report.html``.

``claims.json`` is a list of ``{"id", "statement", "source", "status", "measured",
"tolerance", "check", "group", "detail", "verification"}`` objects (status "pass", "fail", "n/a" or
"error"; ``detail`` holds the reason of an n/a and the traceback of an error).  ``report.html``
inlines every figure as a base64 PNG, so the single file can be mailed or archived.
Training-run figures (NC metrics and the MSE decomposition against epoch, math §7.2 / 4)
and simulation figures (SNR singular values and the ETF approach, math §6.4) are drawn here
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
from theory.jsonio import dumps

from ._laws import law
from .claims import STATUSES, Claim, counts, headline_of
from .compare import column, terminal_phase_start

__all__ = [
    "write_claims_json",
    "claims_table",
    "write_report",
    "headline",
    "summary_line",
    "training_figures",
    "simulation_figures",
]


def write_claims_json(claims: Sequence[Claim], path: str | Path) -> Path:
    """``claims.json``: the list of claim dicts (strict JSON, NaN -> null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps([c.to_dict() for c in claims]) + "\n")
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


def headline(claim: Claim, limit: int = 200) -> str:
    """The claim's deciding numbers in one line (its registered headline; the reason of an n/a; the error)."""
    m = claim.to_dict()["measured"]
    if claim.status == "n/a":
        text = f"n/a: {claim.detail}"
    elif claim.status == "error":
        text = f"ERROR {m.get('error') if isinstance(m, dict) else m}"
    else:
        text = headline_of(claim) or _short(m, limit)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def summary_line(claims: Sequence[Claim]) -> str:
    """``"29/33 claims pass (2 fail, 2 n/a, 0 error)"``."""
    n = counts(claims)
    return f"{n['pass']}/{len(claims)} claims pass ({n['fail']} fail, {n['n/a']} n/a, {n['error']} error)"


def claims_table(claims: Sequence[Claim], *, width: int = 160) -> str:
    """Plain-text summary table (id, status, measured) for the terminal."""
    idw = max([len(c.id) for c in claims] + [5])
    lines = [f"{'claim':<{idw}}  status  measured", f"{'-' * idw}  ------  {'-' * 40}"]
    for c in claims:
        lines.append(f"{c.id:<{idw}}  {c.status.upper():<6}  {headline(c, max(60, width - idw - 10))}")
    lines.append(summary_line(claims))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- figures


def training_figures(records: Sequence[dict[str, Any]], out_dir: str | Path, *, tpt_threshold: float = 0.0) -> list[Path]:
    """Math §7.2 figures of a run: NC1-NC4 and training error vs epoch; the four-curve MSE decomposition.

    Not ``empirical.plot.plot_run``: that writes one PNG per panel (plus ``summary.png``) on a linear epoch axis
    and marks the first zero-error epoch, while the report needs these two figures, log-log, marked at
    :func:`paper_checks.compare.terminal_phase_start` (the epoch the claims use), with the proximity panel.
    """
    plt = _plot.plt()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ep = column(records, "epoch")
    paths: list[Path] = []
    tpt = terminal_phase_start(list(records), tpt_threshold)
    tpt_words = "training error zero" if tpt_threshold == 0 else f"training error <= {tpt_threshold:g}"

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
    fig.suptitle(f"Neural collapse metrics (dotted line: start of the terminal phase, {tpt_words} from "
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
    ax.set_title("MSE decomposition L = L_NC1 + L_NC2/3 + L_perp (math §3.2, §4)", fontsize=10)
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
    """Math §6.4 figures: omega_j(t) (ODE vs closed form vs (t/c3)^(1/4)), max/min ratio, retraction contrast.

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
    growth = law("growth")  # (t/c3)^(1/4), math §6.4 item 1
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


def _ladder_html(ladder: dict[str, Any]) -> str:
    """The ladder's Markdown table as an HTML table, with its sentence (math §7.4)."""
    esc = html.escape
    lines = [ln.strip().strip("|").split(" | ") for ln in ladder["table_md"].splitlines()]
    head = "".join(f"<th>{esc(c)}</th>" for c in lines[0])
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in lines[2:])
    scaled = f"<p>Sizes: {esc(ladder['scaled'])}.</p>" if ladder.get("scaled") else ""
    return (f"<h2>Theory against training, calibrated</h2><p>{esc(ladder['sentence'])}</p>"
            f"<table><tr>{head}</tr>{body}</table>{scaled}")


def write_report(
    out_dir: str | Path,
    claims: Sequence[Claim],
    *,
    figures: Sequence[str | Path] = (),
    context: dict[str, Any] | None = None,
    title: str = "NC-MSE paper checks",
    ladder: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write ``claims.json``, ``report.md`` and the self-contained ``report.html`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    context = context or {}
    paths = {"claims": write_claims_json(claims, out_dir / "claims.json")}
    verdict = summary_line(claims)
    legend = ("Status: **pass** (supported within the stated tolerance), **fail** (not supported by this input; the "
              "numbers say by how much), **n/a** (cannot be evaluated on this input; the reason is given), "
              "**error** (a bug of the toolkit; the traceback is below).")

    md = [f"# {title}", "", f"**{verdict}**.", "", legend, ""]
    if ladder:
        md += ["## Theory against training, calibrated (math §7.4)", "", ladder["sentence"], "",
               ladder["table_md"], ""] + ([f"Sizes: {ladder['scaled']}.", ""] if ladder.get("scaled") else [])
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
    errors = [c for c in claims if c.status == "error"]
    if errors:
        md += ["## Errors (toolkit bugs)", ""]
        for c in errors:
            md += [f"### `{c.id}`", "", "```", c.detail.rstrip(), "```", ""]
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
    colors = dict(zip(STATUSES, ("#d9f2d9", "#f8d0d0", "#e8e8e8", "#f4b183")))
    for c in claims:
        color = colors[c.status]
        rows.append(
            f"<tr style='background:{color}'><td><code>{esc(c.id)}</code></td><td><b>{esc(c.status)}</b></td>"
            f"<td>{esc(c.statement)}</td><td>{esc(c.source)}</td><td>{esc(c.tolerance)}</td>"
            f"<td><details><summary>{esc(headline(c, 300))}</summary><pre>"
            f"{esc(json.dumps(c.to_dict()['measured'], indent=1))}</pre><p>{esc(c.check)}</p>"
            + (f"<pre>{esc(c.detail)}</pre>" if c.status == "error" else "") + "</details></td></tr>"
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
<h1>{esc(title)}</h1><p><b>{esc(verdict)}</b>.</p><p>{esc(legend.replace("**", ""))}</p>
{_ladder_html(ladder) if ladder else ""}
<h2>Set-up</h2><ul>{ctx}</ul>
<h2>Claims</h2><table><tr><th>id</th><th>status</th><th>statement</th><th>source</th><th>tolerance</th>
<th>measured (click)</th></tr>{''.join(rows)}</table>
<h2>Figures</h2>{''.join(imgs)}
</body></html>
"""
    paths["html"] = out_dir / "report.html"
    paths["html"].write_text(doc)
    return paths

