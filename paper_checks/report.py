"""Write the claims and figures as ``claims.json`` (a list of :meth:`Claim.to_dict`), ``report.md`` and a
self-contained ``report.html`` (figures inlined), both rendered from the templates of :mod:`paper_checks._page`
out of one view; and draw the training-run (math §4, §7.2) and simulation (math §6.4) figures.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from theory.jsonio import dumps

from . import _plot
from ._laws import law
from ._page import figure_views, render
from .claims import STATUSES, Claim, counts, exit_code, headline_of
from .compare import column, terminal_phase_start

__all__ = [
    "write_claims_json",
    "claims_page_view",
    "claims_table",
    "setup_view",
    "write_pages",
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


def _short(measured: Any) -> str:
    """One-line rendering of a claim's measured numbers (:func:`headline` shortens it)."""
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
        return "; ".join(parts)
    return str(measured)


def headline(claim: Claim, limit: int = 200) -> str:
    """The claim's deciding numbers in one line (its registered headline; the reason of an n/a; the error)."""
    m = claim.to_dict()["measured"]
    if claim.status == "n/a":
        text = f"n/a: {claim.detail}"
    elif claim.status == "error":
        text = f"ERROR {m.get('error') if isinstance(m, dict) else m}"
    else:
        text = headline_of(claim) or _short(m)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def summary_line(claims: Sequence[Claim]) -> str:
    """``"29/33 claims pass (2 fail, 2 n/a, 0 error)"``."""
    n = counts(claims)
    return f"{n['pass']}/{len(claims)} claims pass ({n['fail']} fail, {n['n/a']} n/a, {n['error']} error)"


def claims_table(claims: Sequence[Claim]) -> str:
    """Plain-text summary table (id, status, measured) for the terminal."""
    idw = max([len(c.id) for c in claims] + [5])
    lines = [f"{'claim':<{idw}}  status  measured", f"{'-' * idw}  ------  {'-' * 40}"]
    for c in claims:
        lines.append(f"{c.id:<{idw}}  {c.status.upper():<6}  {headline(c, max(60, 150 - idw))}")
    lines.append(summary_line(claims))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- figures


def training_figures(records: Sequence[dict[str, Any]], out_dir: str | Path, *,
                     tpt_threshold: float = 0.0) -> list[Path]:
    """Math §7.2 figures of a run: NC1-NC4 and training error vs epoch; the four-curve MSE decomposition.

    Not ``empirical.plot.plot_run``: that writes one PNG per panel (plus ``summary.png``) on a linear epoch axis
    and marks the first zero-error epoch, while the report needs these two figures, log-log, marked at
    :func:`paper_checks.compare.terminal_phase_start` (the epoch the claims use), with the proximity panel.
    """
    plt = _plot.plt()
    out_dir = Path(out_dir)
    ep = column(records, "epoch")
    tpt = terminal_phase_start(list(records), tpt_threshold)
    tpt_words = "training error zero" if tpt_threshold == 0 else f"training error <= {tpt_threshold:g}"

    def draw(fig, axes, panels, name: str, legend: int) -> Path:
        """Each panel ``(title, [(values, label, fmt), ...])`` on log-log axes, the terminal phase's start dotted."""
        for ax, (title, curves) in zip(axes, panels):
            for values, label, fmt in curves:
                _plot.plot_positive(ax, ep, values, fmt, label)
            if tpt is not None:
                ax.axvline(ep[tpt], color="gray", ls=":", lw=1)
            _plot.log_axes(ax, "epoch", title=title, legend=legend)
        return _plot.save(fig, out_dir / name)

    nc = [("training / test error", ["train_error", "test_error"]), ("NC1", ["nc1"]),
          ("NC2 equinorm", ["nc2_equinorm_means", "nc2_equinorm_classifiers"]),
          ("NC2 max-angle", ["nc2_maxangle_means", "nc2_maxangle_classifiers"]),
          ("NC3 self-duality", ["nc3"]), ("NC4 NCC disagreement", ["nc4"])]
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    fig.suptitle(f"Neural collapse metrics (dotted line: start of the terminal phase, {tpt_words} from "
                 "there on)", fontsize=10)
    paths = [draw(fig, axes.ravel(), [(title, [(column(records, k), k, "o-") for k in keys]) for title, keys in nc],
                  "training_nc_metrics.png", 7)]
    terms = [("loss", "L (MSE + ridge)"), ("l_nc1", "L_NC1"), ("l_nc23", "L_NC2/3"), ("l_perp", "L_LS^perp")]
    l_perp, l_nc = column(records, "l_perp"), column(records, "l_nc1") + column(records, "l_nc23")  # terms >= 0
    proximity = [(l_perp / l_nc, "L_perp / (L_NC1 + L_NC2/3)", "o-"),
                 (column(records, "central_path_distance"), "||[W b] - [W_LS b_LS]|| / ||[W_LS b_LS]||", "s-")]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    paths.append(draw(fig, axes, [("MSE decomposition L = L_NC1 + L_NC2/3 + L_perp (math §3.2, §4)",
                                   [(column(records, k), label, "o-") for k, label in terms]),
                                  ("Proximity to the central path", proximity)], "training_decomposition.png", 8))
    return paths


def simulation_figures(projected: Any, retraction: Any | None, out_dir: str | Path, *, per_class: int) -> list[Path]:
    """Math §6.4 figures: omega_j(t) (ODE vs closed form vs (t/c3)^(1/4)), max/min ratio, retraction contrast.

    Not ``simulate.plots.make_figures``: its figures are separate files of one trajectory, with no way to overlay
    the retraction run on the omega panel.
    """
    plt = _plot.plt()
    out_dir = Path(out_dir)
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
    _plot.log_axes(ax, "flow time t", ylabel="omega_j", title=f"SNR singular values (C={C}, N={per_class})")
    r = w.max(axis=1) / w.min(axis=1) - 1
    axes[1].plot(t[pos], r[pos], label="max/min - 1")
    axes[1].plot(t[pos], r[pos] * t[pos], ":", label="(max/min - 1) * t  (levels off => O(1/t))")
    _plot.log_axes(axes[1], "flow time t", title="max_j omega_j / min_j omega_j -> 1")
    return [_plot.save(fig, out_dir / "simulation_snr.png")]


# ----------------------------------------------------------------------------- report

#: What each status means, in one line of the report.
STATUS_LEGEND = ("pass: supported within the stated tolerance; fail: not supported by this input, the numbers say by "
                 "how much; n/a: cannot be evaluated on this input, the reason is given; error: a bug of the toolkit, "
                 "the traceback is given.")


def _count_words(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def claim_view(c: Claim, tolerances: dict[str, int]) -> dict[str, Any]:
    """What the templates show of one claim.  Each distinct tolerance text gets a label (T1, T2, ... numbered in
    ``tolerances``) and is printed once, where it first appears; later claims refer to it."""
    first = c.tolerance not in tolerances
    n = tolerances.setdefault(c.tolerance, len(tolerances) + 1)
    return {"id": c.id, "anchor": "claim-" + c.id.replace(".", "-"), "status": c.status, "statement": c.statement,
            "source": c.source, "tolerance": c.tolerance, "headline": headline(c, 400), "check": c.check,
            "detail": c.detail, "verification": c.verification,
            "measured_json": json.dumps(c.to_dict()["measured"], indent=1), "tol_label": f"T{n}",
            "tol_anchor": f"tol-{n}", "tol_first": first}


def verdict_view(claims: Sequence[Claim], views: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The verdict paragraph as sentences, each ``{"text", "claims"}`` (claims named after the text, linked).

    The verification claims decide whether the toolkit can be trusted on this input (their failure is a bug and
    the exit code); the failed observations are what the input does not support of the paper.
    """
    n = counts(claims)
    first = (f"Of {_count_words(len(claims), 'claim')}, {n['pass']} pass, {n['fail']} fail, {n['n/a']} "
             f"cannot be evaluated on this input (n/a) and {n['error'] or 'none'} raised an error")
    parts: list[dict[str, Any]] = [{"text": first, "claims": []}]
    ver = [c for c in claims if c.verification]
    bad = [c for c in ver if c.status in ("fail", "error")]
    if bad:
        verb = "does" if len(bad) == 1 else "do"
        text = (f"{len(bad)} of the {len(ver)} verification claims (the toolkit checking itself) {verb} not pass: "
                "a toolkit bug, not a finding about the paper, and the exit code is 1")
        parts.append({"text": text, "claims": [views[c.id] for c in bad]})
    elif ver:
        na = sum(c.status == "n/a" for c in ver)
        text = (f"All {len(ver) - na} evaluated verification claims pass" + (f" ({na} n/a)" if na else "")
                + " (symbolic identities, simulated dynamics and exact identities on the run's numbers: the toolkit "
                "checking itself), so the numbers below can be trusted")
        parts.append({"text": text, "claims": []})
    observed = [c for c in claims if c.status == "fail" and not c.verification]
    if observed:
        text = (f"This input does not support {_count_words(len(observed), 'observation')} of the paper (the "
                "numbers are under \"Not supported by this run\")")
        parts.append({"text": text, "claims": [views[c.id] for c in observed]})
    elif n["pass"]:
        parts.append({"text": "Every observation of the paper that could be evaluated is supported", "claims": []})
    if n["n/a"]:
        parts.append({"text": (f"{_count_words(n['n/a'], 'claim')} cannot be evaluated here; the reasons are in "
                               "their groups below"), "claims": []})
    return parts


def group_views(claims: Sequence[Claim], views: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The claims that pass or are n/a, by group (in order of first appearance), with the group's counts."""
    groups: dict[str, list[Claim]] = {}
    for c in claims:
        groups.setdefault(c.group or "other", []).append(c)
    out = []
    for name, cs in groups.items():
        n = counts(cs)
        words = [f"{n[s]} {s}" for s in STATUSES if n[s]]
        rest = [views[c.id] for c in cs if c.status in ("pass", "n/a")]
        moved = n["fail"] + n["error"]
        out.append({"name": name, "title": f"{name.capitalize()} claims", "claims": rest,
                    "summary": ", ".join(words) + (" (listed above)" if moved else "")})
    return [g for g in out if g["claims"]]


def setup_view(context: dict[str, Any], *, skip: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """The set-up as terms: ``{"term", "text"}``, or ``{"term", "rows"}`` for a dict value (stage times)."""
    items = []
    for k, v in context.items():
        if v in skip:
            continue
        if isinstance(v, dict):
            items.append({"term": str(k), "rows": [(str(ik), f"{iv:.3g}" if isinstance(iv, float) else str(iv))
                                                   for ik, iv in v.items()]})
        else:
            items.append({"term": str(k), "text": str(v)})
    return items


def ladder_view(ladder: dict[str, Any]) -> dict[str, Any]:
    """The calibration ladder (math §7.4): its sentence, its table as header and rows of cells, its sizes.

    The cells are those of ``ladder["table_md"]`` (:func:`paper_checks.ladder.ladder_table_markdown` formats the
    rows' numbers once, for both pages); a table is a header line, a separator line and a line per row.
    """
    lines = [[cell.strip() for cell in ln.strip().strip("|").split(" | ")] for ln in ladder["table_md"].splitlines()]
    return {"sentence": ladder["sentence"], "table_md": ladder["table_md"], "header": lines[0], "rows": lines[2:],
            "scaled": ladder.get("scaled")}


def claims_page_view(claims: Sequence[Claim]) -> dict[str, Any]:
    """The claims' part of a page: ``verdict``, ``not_supported`` (fail), ``errors``, ``groups`` (the rest),
    ``checks`` (every claim's check) and ``legend``; tolerances numbered in page order."""
    tolerances: dict[str, int] = {}
    ordered = ([c for c in claims if c.status == "fail"] + [c for c in claims if c.status == "error"]
               + [c for c in claims if c.status in ("pass", "n/a")])
    views = {c.id: claim_view(c, tolerances) for c in ordered}
    return {"verdict": verdict_view(claims, views), "legend": STATUS_LEGEND, "bad": exit_code(claims) != 0,
            "not_supported": [views[c.id] for c in claims if c.status == "fail"],
            "errors": [views[c.id] for c in claims if c.status == "error"],
            "groups": group_views(claims, views), "checks": [views[c.id] for c in claims]}


def write_pages(out_dir: Path, claims: Sequence[Claim], page: str, view: dict[str, Any],
                figures: Sequence[str | Path] = ()) -> dict[str, Path]:
    """``claims.json``, and ``report.md`` / ``report.html`` rendered from ``<page>.md.j2`` / ``<page>.html.j2``
    with ``view``, the claims' part (:func:`claims_page_view`) and the figures (inlined in HTML)."""
    view = {**view, **claims_page_view(claims), "figures": figure_views(figures, out_dir)}
    paths = {"claims": write_claims_json(claims, out_dir / "claims.json"), "md": out_dir / "report.md",
             "html": out_dir / "report.html"}
    paths["md"].write_text(render(f"{page}.md.j2", **view))
    paths["html"].write_text(render(f"{page}.html.j2", **view))
    return paths


def write_report(
    out_dir: str | Path,
    claims: Sequence[Claim],
    *,
    figures: Sequence[str | Path] = (),
    context: dict[str, Any] | None = None,
    title: str = "NC-MSE paper checks",
    ladder: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write ``claims.json``, ``report.md`` and the self-contained ``report.html`` into ``out_dir``.

    Both pages read top to bottom: the verdict, the calibration ladder (when given), the key figures with what
    to look at, the claims not supported with their numbers, the rest by group (folded in HTML), the set-up.
    """
    view = {"title": title, "summary": summary_line(claims), "ladder": ladder_view(ladder) if ladder else None,
            "setup": setup_view(context or {}, skip=[ladder["sentence"]] if ladder else [])}
    return write_pages(Path(out_dir), claims, "run", view, figures)  # claims.json first: its folder made
