"""The paper's panels for one run (math §7.2), drawn with matplotlib (Agg) from ``metrics.jsonl``.

Per run, against the epoch: each panel of :data:`PANELS` (the MSE decomposition on a log axis: math §4, the
notebook's four curves) and the SNR singular values.  A dotted vertical line marks the start of the terminal
phase (:func:`empirical.runs.terminal_phase_start`).  Each panel is ``figures/<name>.png``;
``figures/summary.png`` holds them all.

A run with layer records (``layers`` in its lines: :mod:`empirical.layers`, math §3.5) also gets the layer-wise
"progressive collapse" picture: each layer metric of :data:`LAYER_PANELS` against depth (the measured modules in
forward order), one line per measured epoch, as ``figures/layers_<metric>.png`` and ``figures/layers.png``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .runs import FIGURES_DIR, read_config, read_metrics, terminal_phase_start

#: name -> (title, y label, log y, [(key, label), ...])
PANELS: dict[str, tuple[str, str, bool, list[tuple[str, str]]]] = {
    "train_error": ("Training error", "error", False, [("train_error", "train"), ("test_error", "test")]),
    "nc1": ("NC1: within-class variability", "Tr(Sigma_W Sigma_B^+)/C", True, [("nc1", "NC1")]),
    "nc2_equinorm": (
        "NC2: equinorm",
        "std/avg of norms",
        True,
        [("nc2_equinorm_means", "class means"), ("nc2_equinorm_classifiers", "classifiers")],
    ),
    "nc2_angles": (
        "NC2: equiangularity and maximal angle",
        "",
        True,
        [
            ("nc2_equiangular_means", "std cos, means"),
            ("nc2_equiangular_classifiers", "std cos, classifiers"),
            ("nc2_maxangle_means", "avg |cos + 1/(C-1)|, means"),
            ("nc2_maxangle_classifiers", "avg |cos + 1/(C-1)|, classifiers"),
        ],
    ),
    "nc3": ("NC3: self-duality", "||W^T/||W|| - Mbar/||Mbar||||^2", True, [("nc3", "NC3")]),
    "nc4": ("NC4: NCC mismatch", "fraction", False, [("nc4", "NC4")]),
    "decomposition": (
        "MSE decomposition (log scale)",
        "loss",
        True,
        [("loss", "L (with lambda)"), ("l_nc1", "L_NC1"), ("l_nc23", "L_NC2/3"), ("l_perp", "L_LS^perp")],
    ),
}


# layer metric -> (title, log y)
LAYER_PANELS: dict[str, tuple[str, bool]] = {
    "nc1": ("NC1 = Tr(Sigma_W Sigma_B^+)/C", True),
    "nc2_equiangular_means": ("NC2: std cos of the means", True),
    "nc2_etf_distance": ("NC2: distance of the means to an ETF", True),
    "nc4": ("NC4: NCC vs the layer's probe", False),
    "ncc_error": ("nearest-class-centre error (1 - NCC accuracy)", False),
    "cdnv": ("CDNV", True),
    "probe_loss": ("probe MSE L = L_NC1 + L_NC2/3", True),
    "l_nc1": ("probe L_NC1 (within-class spread)", True),
    "l_nc23": ("probe L_NC2/3 (geometry of the means)", True),
}


def _draw_layer_metric(ax, records, names: list[str], key: str) -> bool:
    """``key`` against depth, one line per measured epoch (colour from early to late)."""
    import matplotlib

    title, log = LAYER_PANELS[key]
    lined = [r for r in records if r.get("layers")]
    cmap = matplotlib.colormaps["viridis"]
    drawn = False
    for i, r in enumerate(lined):
        values = [(r["layers"].get(name) or {}).get(key) for name in names]
        pts = [(j, v) for j, v in enumerate(values) if _plottable(v, log)]  # (depth, value)
        if pts:
            # every epoch in the legend up to 8 lines, else the first and the last (the colours run between them)
            named = len(lined) <= 8 or i in (0, len(lined) - 1)
            ax.plot(*zip(*pts), marker=".", color=cmap(i / max(len(lined) - 1, 1)),
                    label=f"epoch {r['epoch']}" if named else None)
            drawn = True
    if not drawn:
        return False
    if log:
        ax.set_yscale("log")
    ax.set_xticks(range(len(names)), names, rotation=60, fontsize=6)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("layer (depth)")
    ax.legend(fontsize=6)
    return True


def plot_layers(records: list[dict[str, Any]], out: Path, tag: str) -> list[Path]:
    """The layer-wise panels of a run whose lines carry ``layers`` (none otherwise); returns the PNG paths."""
    names = list(dict.fromkeys(name for r in records for name in r.get("layers") or {}))  # forward order
    if not names:
        return []
    drawers = [(f"layers_{key}", (lambda ax, k=key: _draw_layer_metric(ax, records, names, k))) for key in LAYER_PANELS]
    return _save_panels(drawers, out, tag, (5.0, 3.6), 3, (14, 3.7), f"{tag}: collapse against depth", "layers.png")


def _save_panels(drawers: list[tuple[str, Callable]], out: Path, tag: str, size: tuple[float, float], ncols: int,
                 summary_size: tuple[float, float], title: str, summary: str) -> list[Path]:
    """Each drawer's panel as ``out/<name>.png`` (when it draws something), then all of them in ``out/<summary>``
    (``summary_size``: the width and the height per row)."""
    import matplotlib.pyplot as plt

    paths: list[Path] = []
    for name, draw in drawers:
        fig, ax = plt.subplots(figsize=size, layout="constrained")
        if draw(ax):
            fig.suptitle(tag, fontsize=8)
            paths.append(out / f"{name}.png")
            fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    nrows = -(-len(drawers) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(summary_size[0], summary_size[1] * nrows), layout="constrained")
    for i, ax in enumerate(axes.flat):
        if i >= len(drawers) or not drawers[i][1](ax):
            ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    paths.append(out / summary)
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)
    return paths


def _plottable(v: Any, log: bool) -> bool:
    """A value a (log) axis can draw: present, finite (and positive on a log axis)."""
    return v is not None and bool(np.isfinite(v)) and not (log and v <= 0)


def _draw_panel(ax, records, spec, tpt) -> bool:
    title, ylabel, log, curves = spec
    drawn = False
    for key, label in curves:
        pts = [(r["epoch"], r[key]) for r in records if _plottable(r.get(key), log)]
        if pts:
            ax.plot(*zip(*pts), marker=".", label=label)
            drawn = True
    if log and drawn:
        ax.set_yscale("log")
    if tpt is not None:
        ax.axvline(tpt, color="gray", linestyle=":", linewidth=1)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("epoch")
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=8)
    if drawn and len(curves) > 1:
        ax.legend(fontsize=7)
    return drawn


def _draw_snr(ax, records, tpt) -> bool:
    rows = [(r["epoch"], r["snr_singular_values"]) for r in records if r.get("snr_singular_values")]
    if not rows:
        return False
    ep = np.asarray([e for e, _ in rows])
    sv = np.asarray([s for _, s in rows], dtype=float)
    for j in range(sv.shape[1]):
        vals = sv[:, j]
        ok = vals > 0
        ax.plot(ep[ok], vals[ok], linewidth=1, label=f"omega_{j + 1}" if sv.shape[1] <= 10 else None)
    ax.set_yscale("log")
    if tpt is not None:
        ax.axvline(tpt, color="gray", linestyle=":", linewidth=1)
    ax.set_title("SNR singular values of Sigma_W^{-1/2} Mbar", fontsize=9)
    ax.set_xlabel("epoch")
    if sv.shape[1] <= 10:
        ax.legend(fontsize=6, ncol=2)
    return True


def plot_run(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None, *,
             tpt_threshold: float = 0.0) -> list[Path]:
    """Draw every panel of the run into ``figures/`` (or ``out_dir``); return the PNG paths."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    run_dir = Path(run_dir)
    records = sorted(read_metrics(run_dir), key=lambda r: r["epoch"])
    if not records:
        raise ValueError(f"no measured epochs in {run_dir} (metrics.jsonl is empty or missing)")
    try:
        cfg = read_config(run_dir).get("config", {})
        tag = f"{cfg.get('dataset', '?')} / {cfg.get('model', '?')} ({cfg.get('loss', 'mse')})"
    except Exception:  # noqa: BLE001 - plotting should not need the config
        tag = run_dir.name
    out = Path(out_dir) if out_dir is not None else run_dir / FIGURES_DIR
    out.mkdir(parents=True, exist_ok=True)
    k = terminal_phase_start(records, tpt_threshold)
    if tpt_threshold:
        tag += f", terminal phase at training error <= {tpt_threshold:g}"
    tpt = None if k is None else int(records[k]["epoch"])  # the epoch the terminal phase starts at

    drawers: list[tuple[str, Callable]] = [
        (name, (lambda ax, s=spec: _draw_panel(ax, records, s, tpt))) for name, spec in PANELS.items()
    ]
    drawers.append(("snr", lambda ax: _draw_snr(ax, records, tpt)))
    paths = _save_panels(drawers, out, tag, (4.5, 3.4), 4, (4.2 * 4, 3.2), f"{tag}: {run_dir.name}", "summary.png")
    return paths + plot_layers(records, out, tag)
