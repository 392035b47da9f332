"""How much memory one training member needs: the sweep's chunk sizing (:mod:`empirical.sweep.chunking`).

:func:`member_training_bytes` estimates the memory of one member's SGD training step (one forward
pass, the criterion, the backward pass, the update) from what the step must hold at once, in two parts:

* ``state`` (held for the whole run): ``params`` and ``buffers``, the model's own tensors (BatchNorm's
  running statistics are buffers); ``grads``, one gradient per trainable parameter; ``optimizer``, SGD's
  momentum buffers (one per trainable parameter, math §8) when ``momentum != 0``;
* ``step`` (while the member's step runs): ``saved``, the tensors autograd keeps from the forward pass for
  the backward pass, measured by running the forward and the criterion (:func:`empirical.loss.forward_loss`,
  the training step's own) under :func:`torch.autograd.graph.saved_tensors_hooks` and counting each distinct
  storage once (activations, ReLU masks, autocast's low-precision weight copies, the one-hot targets of the
  MSE loss; storages of the parameters, buffers and the batch are not counted again); ``batch``, the input
  batch and its targets; ``backward``, the gradient flowing back through the graph: a node's backward holds
  the gradient of its output and produces the gradient of its input, each the size of an activation, while
  most saved tensors are still alive; counted as twice the largest saved storage.

What it leaves out: the allocator's rounding and small temporaries; what it adds: the saved tensors freed
during the backward pass before its peak (so it errs on the safe side).  Measured against the peak resident
memory of interleaved training steps on the CPU (``tests/empirical/test_memory.py``).

:func:`members_that_fit` is the arithmetic: how many members fit in a fraction of what is available.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch

from ..loss import forward_loss

__all__ = ["MemoryEstimate", "member_training_bytes", "members_that_fit"]

_MIB = float(1 << 20)


@dataclass
class MemoryEstimate:
    """Bytes one member's training step holds at once (:attr:`total`): its :attr:`state` and its :attr:`step`."""

    params: int
    grads: int
    optimizer: int
    saved: int
    batch: int
    backward: int = 0
    buffers: int = 0

    @property
    def state(self) -> int:
        """Held for the whole run: parameters, buffers, gradients, momentum."""
        return self.params + self.buffers + self.grads + self.optimizer

    @property
    def step(self) -> int:
        """Held while the step runs: the saved tensors, the backward pass's gradients, the batch."""
        return self.saved + self.backward + self.batch

    @property
    def total(self) -> int:
        return self.state + self.step

    def describe(self) -> str:
        """One line in MiB, e.g.
        ``"98.6 MiB (params 16.6, grads 16.6, momentum 16.6, saved 16.1, batch 0.3, backward 16.0)"``."""
        parts = [("params", self.params), ("grads", self.grads), ("momentum", self.optimizer),
                 ("saved", self.saved), ("batch", self.batch), ("backward", self.backward)]
        if self.buffers:
            parts.append(("buffers", self.buffers))
        inner = ", ".join(f"{name} {n / _MIB:.1f}" for name, n in parts)
        return f"{self.total / _MIB:.1f} MiB ({inner})"


def _nbytes(t: torch.Tensor) -> int:
    return t.nelement() * t.element_size()


def _storage_key(t: torch.Tensor) -> tuple[str, int] | None:
    try:
        s = t.untyped_storage()
    except (RuntimeError, NotImplementedError):  # a tensor without a storage (sparse, a subclass)
        return None
    return (str(t.device), s.data_ptr())


def member_training_bytes(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, loss: str, num_classes: int,
                          momentum: float, autocast: torch.dtype | None = None) -> MemoryEstimate:
    """The memory of one SGD training step of ``model`` on the batch ``(x, y)``, as the module describes.

    The forward pass runs under ``torch.autocast(x.device.type, dtype=autocast)`` when ``autocast`` is a dtype
    (as :class:`empirical.step.TrainStep` runs it); a saved storage counts its full size (a view keeps its whole
    storage alive), the batch its elements (a batch sliced from a dataset is a view).  No backward pass is run.
    An unknown ``loss`` is refused by the criterion (:func:`empirical.loss.network_loss`).
    The model is left as it was (buffers copied back bit for bit, train/eval flags restored, no ``.grad``
    touched), and so is the global random state: a sweep's members start from the same stream as single runs.
    """
    if momentum < 0:
        raise ValueError(f"momentum must be >= 0, got {momentum}")
    params = list(model.parameters())
    buffers = list(model.buffers())
    cast = (lambda: torch.autocast(x.device.type, dtype=autocast)) if autocast is not None else nullcontext
    own = {k for t in params + buffers + [x, y] if (k := _storage_key(t)) is not None}
    saved: dict[tuple[str, int], int] = {}
    keep: list[torch.Tensor] = []  # holds every saved tensor until counted: no storage address is reused meanwhile

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = _storage_key(t)
        if key is not None and key not in own and key not in saved:
            saved[key] = t.untyped_storage().nbytes()
        keep.append(t)
        return t

    modes = [(m, m.training) for m in model.modules()]
    snapshot = [b.detach().clone() for b in buffers]
    devices = [x.device] if x.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), torch.enable_grad(), \
                torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model.train()
            value, _ = forward_loss(model, x, y, num_classes, loss, cast)
            del value
    finally:
        keep.clear()
        for m, mode in modes:
            m.train(mode)
        with torch.no_grad():
            for b, s in zip(buffers, snapshot):
                b.copy_(s)
    n_params = sum(_nbytes(p) for p in params)
    n_train = sum(_nbytes(p) for p in params if p.requires_grad)
    return MemoryEstimate(params=n_params, grads=n_train, optimizer=n_train if momentum else 0,
                          saved=sum(saved.values()), batch=_nbytes(x) + _nbytes(y),
                          backward=2 * max(saved.values(), default=0),
                          buffers=sum(_nbytes(b) for b in buffers))


def members_that_fit(per_member: int, available: int, *, fixed: int = 0, fraction: float = 0.8) -> int:
    """``floor((fraction * available - fixed) / per_member)``, at least 0: how many members fit.

    ``fixed`` is memory the chunk needs whatever its size (the datasets, the steps in flight on the CPU);
    ``fraction`` leaves room for what the estimate does not count (the allocator's rounding, the rest of
    the process).
    """
    if per_member <= 0:
        raise ValueError(f"per_member must be positive, got {per_member}")
    if available < 0 or fixed < 0:
        raise ValueError(f"available and fixed must be >= 0, got available={available}, fixed={fixed}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return max(int((fraction * available - fixed) // per_member), 0)
