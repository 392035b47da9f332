"""What a sweep trains: the members (every learning rate x weight decay x seed of one base configuration)
and the strategy that trains them together."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path
from typing import Any

import torch

from ..config import TrainConfig
from ..schedule import lr_grid

__all__ = ["STRATEGIES", "SweepSpec", "check_strategy", "default_strategy", "parse_floats", "parse_ints",
           "parse_lrs"]

#: Values of ``--strategy`` (:mod:`empirical.sweep.engines`): ``"threaded"`` (CPU) and ``"interleaved"``.
STRATEGIES: tuple[str, ...] = ("threaded", "interleaved")
#: Strategies of earlier versions, removed (benchmarks/RESULTS.md: neither ever measured a gain); a resumed
#: sweep that stored one (or none: sweeps older than strategies were stacked) continues with :func:`default_strategy`.
REMOVED_STRATEGIES: tuple[str, ...] = ("stacked", "auto")


def default_strategy(device: torch.device) -> str:
    """The strategy that measured fastest on the device's kind: ``"threaded"`` on the CPU (4 ResNet18s on 2
    cores: 1.51x the wall time of 4 single runs), ``"interleaved"`` elsewhere (CUDA: each member on its own
    stream; not measured yet)."""
    return "threaded" if device.type == "cpu" else "interleaved"


def check_strategy(strategy: str) -> str:
    """``strategy`` if it is one of :data:`STRATEGIES`, else a one-line ``ValueError``."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown sweep strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    return strategy


def parse_lrs(text: str) -> list[float]:
    """``"paper"`` (the 25 values of :func:`empirical.schedule.lr_grid`, math §7.1) or comma-separated numbers."""
    text = text.strip().lower()
    if text == "paper":
        return [float(v) for v in lr_grid()]
    return parse_floats(text, "--lrs")


def parse_floats(text: str, option: str) -> list[float]:
    """Comma-separated numbers; a one-line ``ValueError`` naming ``option`` otherwise."""
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"cannot parse {option} {text!r}: expected comma-separated numbers") from None


def parse_ints(text: str, option: str) -> list[int]:
    """Comma-separated integers; a one-line ``ValueError`` naming ``option`` otherwise."""
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"cannot parse {option} {text!r}: expected comma-separated integers") from None


@dataclasses.dataclass
class SweepSpec:
    """What a sweep trains: ``base`` options, and one member per (lr, weight decay, seed)."""

    base: TrainConfig
    lrs: list[float]
    weight_decays: list[float]
    seeds: list[int]
    max_members_per_chunk: int | None = None
    #: One of :data:`STRATEGIES`; ``None``: :func:`default_strategy` of the device.  A started sweep stores its own.
    strategy: str | None = None

    def validate(self) -> None:
        """One-line ``ValueError`` for an empty list, a bad learning rate / weight decay, or duplicate members."""
        for name, values in (("--lrs", self.lrs), ("--weight-decays", self.weight_decays), ("--seeds", self.seeds)):
            if not values:
                raise ValueError(f"{name} is empty: give at least one value")
        bad = [lr for lr in self.lrs if not (lr > 0 and math.isfinite(lr))]
        if bad:
            raise ValueError(f"--lrs: learning rates must be positive and finite, got {bad}")
        bad = [wd for wd in self.weight_decays if not (wd >= 0 and math.isfinite(wd))]
        if bad:
            raise ValueError(f"--weight-decays: weight decays must be finite and >= 0, got {bad}")
        names = [Path(m.out).name for m in self.member_configs()]  # lr<lr>-wd<wd>-seed<seed>
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate sweep members (same lr, weight decay and seed, or directory name): {dupes}")
        if self.strategy is not None:
            check_strategy(self.strategy)
        if self.max_members_per_chunk is not None and self.max_members_per_chunk < 1:
            raise ValueError(f"--max-members-per-chunk must be >= 1, got {self.max_members_per_chunk}")
        self.base.resolved()

    def member_configs(self) -> list[TrainConfig]:
        """One config per member, in the order seed, weight decay, lr; ``out = DIR/lr<lr>-wd<wd>-seed<seed>``."""
        out = []
        for seed, wd, lr in itertools.product(self.seeds, self.weight_decays, self.lrs):
            name = f"lr{lr:.6g}-wd{wd:.6g}-seed{seed}"
            out.append(dataclasses.replace(self.base, lr=float(lr), weight_decay=float(wd), seed=int(seed),
                                           out=str(Path(self.base.out) / name)))
        return out

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepSpec:
        """The stored spec; a removed strategy (:data:`REMOVED_STRATEGIES`) or none stored reads as ``None``
        (the device's :func:`default_strategy`)."""
        strategy = d.get("strategy")
        return cls(base=TrainConfig.from_dict(d["base"]), lrs=list(d["lrs"]), weight_decays=list(d["weight_decays"]),
                   seeds=list(d["seeds"]), max_members_per_chunk=d.get("max_members_per_chunk"),
                   strategy=None if strategy in REMOVED_STRATEGIES else strategy)
