"""A sweep's summary: ``DIR/sweep.json`` (the members, their final errors, the learning rate selected by final
test accuracy, math §7.1) and its figure ``DIR/accuracy_vs_lr.png``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import runs
from ..config import TrainConfig
from .spec import SweepSpec

__all__ = ["FIGURE_FILE", "SWEEP_FILE", "draw_sweep", "select_lr", "write_sweep_file"]

SWEEP_FILE = "sweep.json"
FIGURE_FILE = "accuracy_vs_lr.png"


def select_lr(members: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The learning rate with the highest final test accuracy (mean over its members with a test error;
    ties: the smaller lr), as the paper selected (math §7.1); ``None`` when no member has a test error."""
    by_lr: dict[float, list[float]] = {}
    for m in members:
        if m.get("final_test_error") is not None and m["status"] == "finished":
            by_lr.setdefault(m["lr"], []).append(1.0 - m["final_test_error"])
    if not by_lr:
        return None
    acc = {lr: sum(v) / len(v) for lr, v in by_lr.items()}
    best = max(sorted(acc), key=lambda lr: acc[lr])
    return {"lr": best, "final_test_accuracy": acc[best], "members": len(by_lr[best]),
            "criterion": "final test accuracy (mean over the lr's members)"}


def write_sweep_file(out: Path, spec: SweepSpec, cfgs: list[TrainConfig], status: str,
                     outcome: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """``out/sweep.json``: the spec, each member's status and final errors, and the selected lr (atomic).

    ``outcome`` maps a member's directory name to ``{"epoch", "stopped"}`` after training: a member is
    ``"finished"`` when it trained every epoch, ``"diverged"`` when its loss became non-finite
    (``stopped`` holds the message), else ``status``.
    """
    outcome = outcome or {}
    members = []
    for c in cfgs:
        run_dir = Path(c.out)
        recs = runs.read_metrics(run_dir) if (run_dir / runs.METRICS_FILE).is_file() else []
        last = recs[-1] if recs else {}
        o = outcome.get(run_dir.name, {})
        state = ("diverged" if o.get("stopped") else "finished" if o.get("epoch") == c.epochs else status)
        members.append({
            "run_dir": run_dir.name, "lr": c.lr, "weight_decay": c.weight_decay, "seed": c.seed, "status": state,
            "last_measured_epoch": last.get("epoch"), "final_train_error": last.get("train_error"),
            "final_test_error": last.get("test_error"), "stopped": o.get("stopped"),
        })
    summary = {"status": status, "dataset": spec.base.dataset, "model": spec.base.model, "epochs": spec.base.epochs,
               "strategy": spec.strategy, "spec": spec.to_dict(), "members": members, "selected": select_lr(members)}
    runs.atomic_write_bytes(out / SWEEP_FILE, (runs.json_line(summary) + "\n").encode())
    return summary


def draw_sweep(out: Path, summary: dict[str, Any]) -> Path:
    """``out/accuracy_vs_lr.png``: final train and test accuracy against the learning rate (log axis),
    one line per (weight decay, seed), the selected lr marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    groups: dict[tuple, list] = {}
    for m in summary["members"]:
        groups.setdefault((m["weight_decay"], m["seed"]), []).append(m)
    for (wd, seed), ms in sorted(groups.items()):
        ms = sorted(ms, key=lambda m: m["lr"])
        for key, style, label in (("final_test_error", "-o", "test"), ("final_train_error", "--.", "train")):
            pts = [(m["lr"], 1 - m[key]) for m in ms if m[key] is not None and m["status"] == "finished"]
            if pts:
                ax.plot(*zip(*pts), style, label=f"{label}, wd {wd:g}, seed {seed}")
    sel = summary.get("selected")
    if sel:
        ax.axvline(sel["lr"], color="k", ls=":", label=f"selected lr {sel['lr']:.4g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("final accuracy")
    ax.set_title(f"{summary['dataset']} / {summary['model']}, {summary['epochs']} epochs")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / FIGURE_FILE
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
