"""The paper's panels for one run (math §7.2), drawn with matplotlib (Agg) from ``metrics.jsonl``.

Per run, against the epoch: training (and test) error; NC1; NC2 equinorm of means and
classifiers; NC2 equiangularity and maximal-angle of means and classifiers; NC3; NC4; the
MSE decomposition ``L``, ``L_NC1``, ``L_NC2/3``, ``L_LS^perp`` on a log axis (math §4: the
notebook's four curves); the SNR singular values.  A dotted vertical line marks the start of the
terminal phase (:func:`empirical.runs.terminal_phase_start`: training error zero from there on).  Each panel is
``figures/<name>.png``; ``figures/summary.png`` holds them all.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .runs import FIGURES_DIR, read_config, read_metrics, terminal_phase_start

# name -> (title, y label, log y, [(key, label), ...])
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


def _series(records: list[dict[str, Any]], key: str, log: bool) -> tuple[np.ndarray, np.ndarray]:
    ep, val = [], []
    for r in records:
        v = r.get(key)
        if v is None or not np.isfinite(v) or (log and v <= 0):
            continue
        ep.append(r["epoch"])
        val.append(v)
    return np.asarray(ep), np.asarray(val)


def _draw_panel(ax, records, spec, tpt) -> bool:
    title, ylabel, log, curves = spec
    drawn = False
    for key, label in curves:
        ep, val = _series(records, key, log)
        if ep.size:
            ax.plot(ep, val, marker=".", label=label)
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
    import matplotlib.pyplot as plt

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

    paths: list[Path] = []
    for name, draw in drawers:
        fig, ax = plt.subplots(figsize=(4.5, 3.4), layout="constrained")
        if draw(ax):
            fig.suptitle(tag, fontsize=8)
            path = out / f"{name}.png"
            fig.savefig(path, dpi=110)
            paths.append(path)
        plt.close(fig)

    ncols = 4
    nrows = -(-len(drawers) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), layout="constrained")
    for ax, (_, draw) in zip(axes.flat, drawers):
        if not draw(ax):
            ax.set_visible(False)
    for ax in list(axes.flat)[len(drawers):]:
        ax.set_visible(False)
    fig.suptitle(f"{tag}: {run_dir.name}", fontsize=10)
    path = out / "summary.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    paths.append(path)
    return paths
