"""Rebuild a trained model from a run directory for later analysis (:func:`load_run`)::

    run = empirical.loading.load_run("runs/digits", epoch=24)
    m = empirical.measurement.measure(run.model, run.train.x, run.train.y, run.num_classes,
                                      weight_decay=run.config.weight_decay)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import runs
from .config import TrainConfig

__all__ = ["LoadedRun", "load_run", "kept_epochs"]


@dataclass
class LoadedRun:
    """A run's model (weights loaded, eval mode), data and configuration."""

    model: torch.nn.Module
    train: Any  # empirical.data.Dataset on `device`
    test: Any | None
    config: TrainConfig
    epoch: int
    run_dir: Path
    device: torch.device

    @property
    def num_classes(self) -> int:
        return int(self.train.num_classes)

    def metrics(self) -> list[dict[str, Any]]:
        """The run's ``metrics.jsonl`` records."""
        return runs.read_metrics(self.run_dir)


def kept_epochs(run_dir: str | os.PathLike) -> list[int]:
    """Epochs whose weights are kept in ``checkpoints/epoch-EEEE.pt``."""
    folder = Path(run_dir) / runs.CHECKPOINT_DIR
    found = (re.fullmatch(r"epoch-(\d+)\.pt", p.name) for p in folder.glob("epoch-*.pt")) if folder.is_dir() else ()
    return sorted(int(m.group(1)) for m in found if m)


def load_run(run_dir: str | os.PathLike, epoch: int | None = None, *, device: str | torch.device = "cpu",
             data_root: str | None = None) -> LoadedRun:
    """The model of ``run_dir`` at ``epoch`` (``None``: the last checkpoint) in eval mode, with the run's data
    (the same subset, standardisation and device as in training) and its config.

    ``epoch`` must be one of :func:`kept_epochs` (or the last checkpoint's); ``data_root`` replaces the stored
    data folder.  Raises :class:`empirical.runs.RunError` when the weights are missing or refused
    (:func:`empirical.runs.read_checkpoint`).
    """
    from .training import build_train_model, load_data

    run_dir = Path(run_dir)
    cfg = TrainConfig.from_dict(runs.read_config(run_dir)["config"])
    device = torch.device(device)
    cfg.device = str(device)
    if data_root is not None:
        cfg.data_root = data_root
    cfg = cfg.resolved()
    kept = None if epoch is None else runs.kept_checkpoint_path(run_dir, epoch)
    state: dict[str, Any] = {}
    if kept is not None and kept.is_file():
        state = runs.read_checkpoint(kept, map_location=device)
    elif epoch is None or runs.checkpoint_path(run_dir).is_file():  # the last state (RunError when there is none)
        state = runs.load_checkpoint(run_dir, map_location=device)
    if epoch is not None and state.get("epoch") != epoch:
        raise runs.RunError(f"no weights of epoch {epoch} in {run_dir}: kept epochs {kept_epochs(run_dir)} "
                            "(train with --keep-checkpoints measured|EPOCHS to keep more)")
    train_set, test_set = load_data(cfg, device)
    model, _ = build_train_model(cfg, train_set, device, channels_last_ok=False)
    model.load_state_dict(state["model"])
    model.eval()
    return LoadedRun(model=model, train=train_set, test=test_set, config=cfg, epoch=int(state["epoch"]),
                     run_dir=run_dir, device=device)
