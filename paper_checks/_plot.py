"""matplotlib with the Agg backend, and the pieces every figure of compare, report and grid shares."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["log_axes", "plot_positive", "plt", "save"]


def plt():
    """``matplotlib.pyplot`` on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def save(fig, path: str | Path, *, dpi: int = 100) -> Path:
    """Lay out ``fig``, write it to ``path`` (PNG; its folder made), close it, return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt().close(fig)
    return path


def plot_positive(ax, x, y, fmt: str, label: str) -> None:
    """Plot ``y`` against ``x`` where both are positive and ``y`` finite (what a log-log panel can show)."""
    ok = np.isfinite(y) & (y > 0) & (x > 0)
    if np.any(ok):
        ax.plot(x[ok], y[ok], fmt, ms=3, lw=1, label=label)


def log_axes(ax, xlabel: str, *, ylabel: str = "", title: str = "", legend: int | None = 8,
             title_size: int = 10) -> None:
    """Log-log axes with their labels, title and legend (``legend``: its font size; None: no legend)."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=title_size)
    if legend:
        ax.legend(fontsize=legend)
