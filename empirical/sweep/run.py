"""Run a sweep: check the input, size the chunks, train each chunk with its strategy's engine (resumed from
its checkpoint), write the summary."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from .. import runs
from ..config import RESUME_OVERRIDES, TrainConfig, changed_options
from ..training import (
    Member,
    fit,
    layers_entry,
    resolve_device,
    start_run_dir,
    torch_settings,
)
from .chunking import chunk_size
from .engines import ENGINES
from .spec import SweepSpec, check_strategy, default_strategy
from .summary import SWEEP_FILE, draw_sweep, write_sweep_file

__all__ = ["CHUNKS_DIR", "run_sweep"]

CHUNKS_DIR = "chunks"


def run_sweep(spec: SweepSpec | None, out: str | Path, *, resume: bool = False,
              overrides: dict[str, Any] | None = None, figures: bool = True, strategy: str | None = None) -> Path:
    """Train every member of ``spec`` into ``out`` and write ``out/sweep.json``; return ``out``.

    ``resume=True`` continues the sweep stored in ``out`` (``spec`` may be ``None``, or repeat the
    stored one: options that differ, other than :data:`empirical.config.RESUME_OVERRIDES`, are refused);
    ``strategy`` switches a resumed sweep's strategy (both engines read and write the same chunk
    checkpoints); ``None`` keeps the stored one (a sweep stored with a removed strategy, ``"stacked"`` or
    ``"auto"``, continues with the device's default).  Bad input raises ``ValueError`` /
    :class:`empirical.runs.RunError` before anything is written.
    """
    out = Path(out)
    if runs.launched_world_size() > 1:
        raise ValueError("a sweep trains its members in one process on one device; run it without torchrun")
    if resume:
        spec = _resumed_spec(out, spec, overrides)
        if strategy is not None:
            spec.strategy = check_strategy(strategy)
    else:
        if spec is None:
            raise ValueError("a new sweep needs its members (lrs, weight decays, seeds)")
        spec = dataclasses.replace(spec, base=dataclasses.replace(spec.base, out=str(out)))
        if (out / SWEEP_FILE).exists():
            raise runs.RunError(f"{out} already holds a sweep; pass --resume to continue it or choose another --out")
    spec.validate()
    cfgs = [c.resolved() for c in spec.member_configs()]
    base = spec.base.resolved()
    device = resolve_device(base.device)
    spec.strategy = spec.strategy or default_strategy(device)
    ENGINES[spec.strategy].worker_count([Member(cfgs[0])], device)  # 'threaded' off the CPU: a one-line error
    with torch_settings(base, device):
        if not resume:
            # first: the data, and the model on the meta device (unknown dataset / model / arguments, missing files)
            spec.max_members_per_chunk = chunk_size(spec, spec.strategy, device)
            _check_new(cfgs)
            out.mkdir(parents=True, exist_ok=True)
            write_sweep_file(out, spec, cfgs, status="running")
        size = spec.max_members_per_chunk or len(cfgs)  # set by chunk_size (new) or the sweep file (resumed)
        outcome: dict[str, dict[str, Any]] = {}
        for i in range(0, len(cfgs), size):
            outcome.update(_train_chunk(cfgs[i: i + size], device, out / CHUNKS_DIR / f"{i // size:02d}", resume,
                                        spec.strategy))
    summary = write_sweep_file(out, spec, cfgs, status="finished", outcome=outcome)
    if figures:
        draw_sweep(out, summary)
        from ..plot import plot_run

        for member in summary["members"]:
            if member["last_measured_epoch"] is not None:
                plot_run(out / member["run_dir"])
    return out


def _resumed_spec(out: Path, spec: SweepSpec | None, overrides: dict[str, Any] | None) -> SweepSpec:
    """The spec stored in ``out/sweep.json`` with the allowed ``overrides``; changed options are refused."""
    sweep_file = out / SWEEP_FILE
    if not sweep_file.is_file():
        raise runs.RunError(f"cannot resume: {out} is not a sweep directory (no {SWEEP_FILE})")
    stored = SweepSpec.from_dict(json.loads(sweep_file.read_text())["spec"])
    overrides = {k: v for k, v in (overrides or {}).items() if k != "out"}
    refused = [k for k in changed_options(stored.base.to_dict(), overrides) if k not in RESUME_OVERRIDES]
    if spec is not None:  # the members
        refused += changed_options(stored.to_dict(), {k: getattr(spec, k) for k in ("lrs", "weight_decays", "seeds")})
    if refused:
        raise ValueError(f"a resumed sweep keeps its stored configuration; changed option(s) {sorted(refused)} "
                         f"(only {list(RESUME_OVERRIDES)} may change)")
    stored.base = dataclasses.replace(stored.base, **{k: v for k, v in overrides.items() if k in RESUME_OVERRIDES})
    return stored


def _check_new(cfgs: list[TrainConfig]) -> None:
    """Refuse member directories that already hold a run, before writing anything."""
    for c in cfgs:
        if (Path(c.out) / runs.METRICS_FILE).exists() or runs.checkpoint_path(Path(c.out)).exists():
            raise runs.RunError(f"member directory {c.out} already holds a run; choose another --out")


def _train_chunk(cfgs: list[TrainConfig], device: torch.device, chunk_dir: Path, resume: bool,
                 strategy: str) -> dict[str, dict[str, Any]]:
    """Train one chunk of members together with ``strategy``'s engine (resumed from its checkpoint);
    ``{member name: {"epoch", "stopped"}}``."""
    members = [Member(c) for c in cfgs]
    engine = ENGINES[strategy](members, device, chunk_dir)
    environment = {**runs.environment_info(str(device)), **engine.environment()}
    try:
        for k, m in enumerate(members):  # a member directory not yet created (the kill came before it) starts new
            layers = layers_entry(m.cfg, engine.model_of(k), engine.data_of(k)[0].x[:2])
            start_run_dir(m, resume and (m.run_dir / runs.CONFIG_FILE).is_file(), environment, layers)
        if resume and runs.checkpoint_path(chunk_dir).is_file():
            engine.load_checkpoint(runs.load_checkpoint(chunk_dir, map_location="cpu"))
        if resume:  # epochs measured after the checkpoint (or before the first one) were timed too
            for m in members:
                m.state.clock.catch_up(runs.read_metrics(m.run_dir))
        fit(engine, f"sweep {chunk_dir.name}")
    finally:
        engine.close()
        engine.writer.wait()  # the last checkpoint is on disk before the chunk returns or raises
    return {m.run_dir.name: {"epoch": m.state.epoch, "stopped": m.stopped} for m in members}
