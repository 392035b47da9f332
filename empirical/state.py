"""The state of a run between epochs: counters, clock and random states, saved in every checkpoint.

:class:`RunState` holds what a resumed run needs besides the weights and the optimiser: ``epoch``, ``step``,
``lr_weighted_steps`` (the paper's time axis, math §6.3), the :class:`Clock` and every random state, as
tensors and plain values only (so ``torch.load(..., weights_only=True)`` reads it).
"""

from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["Clock", "RunState", "rng_states", "set_rng_states"]


def rng_states(generator: torch.Generator) -> dict[str, Any]:
    """Every random state a resumed run needs (torch, CUDA, NumPy, Python, batch order), as tensors, lists and
    plain values only (no pickled NumPy array)."""
    algorithm, keys, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    version, internal, gauss_next = random.getstate()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"algorithm": str(algorithm), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "python": {"version": int(version), "internal": [int(v) for v in internal],
                   "gauss_next": None if gauss_next is None else float(gauss_next)},
        "batches": generator.get_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any], generator: torch.Generator) -> None:
    """Restore the random states saved by :func:`rng_states`."""
    torch.set_rng_state(states["torch"].cpu())
    npy = states["numpy"]
    np.random.set_state((npy["algorithm"], npy["keys"].cpu().numpy().astype(np.uint32), npy["pos"],
                         npy["has_gauss"], npy["cached_gaussian"]))
    py = states["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss_next"]))
    generator.set_state(states["batches"].cpu())
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in states["cuda"]])


@dataclass
class Clock:
    """Wall time of a run by activity, kept in checkpoints so that ``--resume`` continues it.

    ``train_s``: time in trained epochs; ``epoch_s``: the last epoch's (``None`` before the first);
    ``measure_s``: time in measurements, timed by :mod:`empirical.timing`.  In a sweep every member's clock
    counts the whole batched epoch.
    """

    train_s: float = 0.0
    measure_s: float = 0.0
    epoch_s: float | None = None

    def record(self) -> dict[str, float | None]:
        return {"train_time_s": self.train_s, "epoch_time_s": self.epoch_s, "measure_time_total_s": self.measure_s}

    def catch_up(self, records: list[dict[str, Any]]) -> None:
        """Never behind the last written record, so the totals stay monotone across a resume."""
        if records:
            last = records[-1]
            self.train_s = max(self.train_s, last.get("train_time_s") or 0.0)
            self.measure_s = max(self.measure_s, last.get("measure_time_total_s") or 0.0)


@dataclass
class RunState:
    """Counters of a run after ``epoch`` finished epochs; ``time_s``: its wall time at the checkpoint."""

    epoch: int = 0
    step: int = 0
    lr_weighted_steps: float = 0.0
    time_s: float = 0.0
    clock: Clock = field(default_factory=Clock)
    _t0: float = field(default_factory=time.perf_counter, repr=False, compare=False)

    def advance(self, steps: int, lr: float, epoch_s: float) -> None:
        """One trained epoch of ``steps`` SGD steps at learning rate ``lr`` that took ``epoch_s`` seconds."""
        self.epoch += 1
        for _ in range(steps):  # summed step by step, as the steps were taken
            self.step += 1
            self.lr_weighted_steps += lr
        self.clock.epoch_s = epoch_s
        self.clock.train_s += epoch_s

    def elapsed(self) -> float:
        """Wall time of the run so far, across resumes."""
        return self.time_s + time.perf_counter() - self._t0

    def to_dict(self, generator: torch.Generator) -> dict[str, Any]:
        """The checkpoint's bookkeeping: counters, clock and every random state (``generator``: batch order)."""
        return {"epoch": self.epoch, "step": self.step, "lr_weighted_steps": self.lr_weighted_steps,
                "time_s": self.elapsed(), "clock": dataclasses.asdict(self.clock), "rng": rng_states(generator)}

    @classmethod
    def from_dict(cls, ckpt: dict[str, Any], generator: torch.Generator) -> RunState:
        """The state saved by :meth:`to_dict`; restores every random state (``generator``: batch order)."""
        set_rng_states(ckpt["rng"], generator)
        return cls(epoch=int(ckpt["epoch"]), step=int(ckpt["step"]), lr_weighted_steps=float(ckpt["lr_weighted_steps"]),
                   time_s=float(ckpt["time_s"]), clock=Clock(**ckpt.get("clock") or {}))  # older checkpoints: zero
