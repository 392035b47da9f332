"""Mini-batches as slices of device-resident tensors (no DataLoader, no worker processes)."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .loader import Dataset

__all__ = ["BatchIterator", "batches"]


class BatchIterator:
    """Re-iterable batches over ``(x, y)`` tensors; each pass is one epoch.

    With ``shuffle=True`` every pass draws a fresh permutation with ``torch.randperm`` from
    ``generator`` (on the CPU, so a seeded CPU generator gives the same order on any device)
    and yields ``(x[idx], y[idx])`` gathered on the data's device; without shuffling it
    yields contiguous views ``x[i:i+B]``.  ``len()`` is the number of batches per pass:
    ``floor(m / B)`` with ``drop_last`` else ``ceil(m / B)``, ``m`` the samples per pass.

    For data-parallel training (DDP), ``rank`` and ``world_size`` split every pass: all ranks
    draw the same permutation (give each the same seeded generator), rank ``r`` keeps
    positions ``r, r + W, r + 2W, ...`` of it, truncated to ``m = floor(n / W)`` samples so
    that every rank runs the same number of batches.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x has {x.shape[0]} samples but y has {y.shape[0]}")
        self.x, self.y = x, y
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.generator = generator
        self.drop_last = bool(drop_last)
        self.rank, self.world_size = int(rank), int(world_size)

    @property
    def samples_per_pass(self) -> int:
        """Samples this rank visits per pass (before ``drop_last``): ``floor(n / world_size)``."""
        return int(self.x.shape[0]) // self.world_size

    def __len__(self) -> int:
        m, b = self.samples_per_pass, self.batch_size
        return m // b if self.drop_last else -(-m // b)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, m, b = int(self.x.shape[0]), self.samples_per_pass, self.batch_size
        stop = min(len(self) * b, m)
        if self.shuffle:
            gen_device = self.generator.device if self.generator is not None else "cpu"
            order = torch.randperm(n, generator=self.generator, device=gen_device)
        elif self.world_size > 1:
            order = torch.arange(n)
        else:
            for start in range(0, stop, b):  # contiguous views, no copy
                yield self.x[start : start + b], self.y[start : start + b]
            return
        order = order[self.rank :: self.world_size][:m].to(self.x.device)
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
    rank: int = 0,
    world_size: int = 1,
) -> BatchIterator:
    """Batches of a :class:`Dataset` (or an ``(x, y)`` pair) of size ``batch_size``.

    Iterate once per epoch: ``for x, y in batches(train, 128, shuffle=True, generator=g,
    drop_last=True): ...`` (the authors' notebook skips the incomplete last batch, spec 8).
    ``rank``/``world_size`` shard each pass for DDP (see :class:`BatchIterator`).
    """
    x, y = (dataset.x, dataset.y) if isinstance(dataset, Dataset) else dataset
    return BatchIterator(
        x, y, batch_size, shuffle=shuffle, generator=generator, drop_last=drop_last,
        rank=rank, world_size=world_size,
    )
