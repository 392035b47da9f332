"""matplotlib with the Agg backend, and saving a figure, for the figures of compare and report."""

from __future__ import annotations

from pathlib import Path

__all__ = ["plt", "save"]


def plt():
    """``matplotlib.pyplot`` on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def save(fig, path: str | Path, *, dpi: int = 100) -> Path:
    """Lay out ``fig``, write it to ``path`` (PNG), close it, return the path."""
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt().close(fig)
    return path
