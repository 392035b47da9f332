"""Mini-batches as slices of device-resident tensors (no DataLoader, no worker processes)."""

from __future__ import annotations

import operator
from collections.abc import Iterator
from dataclasses import KW_ONLY, dataclass, field

import torch

from .loader import Dataset

__all__ = ["BatchIterator", "batches"]


@dataclass(eq=False)  # compared (and hashed) by identity, as before
class BatchIterator:
    """Re-iterable batches over ``(x, y)`` tensors; each pass is one epoch.

    With ``shuffle=True`` every pass draws a fresh permutation with ``torch.randperm`` from
    ``generator`` (on the CPU, so a seeded CPU generator gives the same order on any device)
    and yields ``(x[idx], y[idx])`` gathered on the data's device; without shuffling it
    yields contiguous views ``x[i:i+B]``.  ``len()`` is the number of batches per pass:
    ``floor(n / B)`` with ``drop_last`` else ``ceil(n / B)``.

    Data-parallel training iterates the same global batches on every rank (same seeded
    generator) and splits each batch with ``empirical.distributed.shard``.
    """

    x: torch.Tensor = field(repr=False)
    y: torch.Tensor = field(repr=False)
    batch_size: int
    _: KW_ONLY
    shuffle: bool
    generator: torch.Generator | None = None
    drop_last: bool = False

    def __post_init__(self) -> None:
        try:  # any integer type; a float is refused here, not at the first slice
            self.batch_size = operator.index(self.batch_size)
        except TypeError:
            raise ValueError(f"batch_size must be an integer, got {self.batch_size!r}") from None
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"x has {self.x.shape[0]} samples but y has {self.y.shape[0]}")

    def __len__(self) -> int:
        n, b = int(self.x.shape[0]), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, b = int(self.x.shape[0]), self.batch_size
        stop = min(len(self) * b, n)
        if not self.shuffle:
            for start in range(0, stop, b):  # contiguous views, no copy
                yield self.x[start : start + b], self.y[start : start + b]
            return
        gen_device = self.generator.device if self.generator is not None else "cpu"
        order = torch.randperm(n, generator=self.generator, device=gen_device).to(self.x.device)
        for start in range(0, stop, b):
            idx = order[start : start + b]
            yield self.x[idx], self.y[idx]


def batches(
    dataset: Dataset | tuple[torch.Tensor, torch.Tensor],
    batch_size: int,
    *,
    shuffle: bool,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> BatchIterator:
    """Batches of a :class:`Dataset` (or an ``(x, y)`` pair) of size ``batch_size``.

    Iterate once per epoch: ``for x, y in batches(train, 128, shuffle=True, generator=g,
    drop_last=True): ...`` (the authors' notebook skips the incomplete last batch, math §8).
    """
    x, y = (dataset.x, dataset.y) if isinstance(dataset, Dataset) else dataset
    return BatchIterator(x, y, batch_size, shuffle=shuffle, generator=generator, drop_last=drop_last)
