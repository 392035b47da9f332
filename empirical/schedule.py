"""Epoch schedules of the paper's protocol (math §7.1, §8): the step learning rate, the notebook's log-spaced
measurement epochs rescaled to any epoch count, and the learning-rate grid (math §9 item 28).
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

#: Measurement epochs of the authors' notebook for 350 epochs (math §7.1).
PAPER_EPOCHS: int = 350
PAPER_MEASUREMENT_EPOCHS: tuple[int, ...] = (
    *range(1, 15),
    16, 17, 19, 20, 22, 24, 27, 29, 32, 35, 38, 42, 45, 50, 54, 59, 65, 71, 77, 85, 92,
    101, 110, 121, 132, 144, 158, 172, 188, 206, 225, 245, 268, 293, 320, 350,
)


def lr_milestones(epochs: int) -> list[int]:
    """Milestones ``[epochs // 3, 2 * epochs // 3]`` of the paper's step schedule, zeros dropped (math §7.1)."""
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    return sorted({m for m in (epochs // 3, 2 * epochs // 3) if m >= 1})


def measurement_epochs(epochs: int) -> list[int]:
    """The notebook's log-spaced measurement epochs (math §7.1) rescaled to ``epochs``: each paper epoch ``e``
    maps to ``round(e * epochs / 350)`` clipped to ``[1, epochs]``, plus epoch 0 and the last epoch.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    scale = epochs / PAPER_EPOCHS
    out = {min(max(int(math.floor(e * scale + 0.5)), 1), epochs) for e in PAPER_MEASUREMENT_EPOCHS}
    return sorted(out | {0, epochs})


def parse_epoch_list(text: str, epochs: int) -> list[int]:
    """Parse ``"0,1,2,5,10"``, ``"all"`` or ``"paper"`` into a sorted list of epochs (``TrainConfig.resolved()``
    checks that they lie in ``[0, epochs]``)."""
    text = text.strip().lower()
    if text == "all":
        return list(range(0, epochs + 1))
    if text in ("paper", "log", "default"):
        return measurement_epochs(epochs)
    try:
        return sorted({int(t) for t in text.split(",") if t.strip()})
    except ValueError:
        raise ValueError(f"cannot parse measurement epochs {text!r}: expected comma-separated integers") from None


def lr_grid(num: int = 25, low: float = 1e-4, high: float = 0.25) -> np.ndarray:
    """Learning-rate sweep ``logspace(log10(low), log10(high), num)`` of the protocol (math §7.1)."""
    return np.logspace(math.log10(low), math.log10(high), num)


def lr_at(epoch: int, lr: float, milestones: list[int], gamma: float) -> float:
    """Learning rate of training epoch ``epoch`` (1-based) of the step schedule (math §7.1): ``lr`` times
    ``gamma ** count`` at each milestone ``0 <= m < epoch``, in the order ``MultiStepLR`` applies them (the
    same float)."""
    value = float(lr)
    for m, count in sorted(Counter(milestones).items()):
        if 0 <= m < epoch:
            value = value * gamma ** count
    return value
