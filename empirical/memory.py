"""How much memory one training member needs, and how much a device has: the sweep's chunking on any device.

:func:`member_training_bytes` estimates the memory of one member's SGD training step (one forward
pass, the criterion, the backward pass, the update) from what the step must hold at once:

* ``params`` and ``buffers``: the model's own tensors (BatchNorm's running statistics are buffers);
* ``grads``: one gradient per trainable parameter (``p.grad``, the size of the parameters);
* ``optimizer``: SGD's momentum buffers (one per trainable parameter, math §8), the size of the
  trainable parameters when ``momentum != 0``, else nothing;
* ``saved``: the tensors autograd keeps from the forward pass for the backward pass, measured by
  running the forward and the criterion (:func:`empirical.measurement.network_loss`, as training does)
  under :func:`torch.autograd.graph.saved_tensors_hooks` and counting each distinct storage once
  (activations, ReLU masks, autocast's low-precision weight copies, the one-hot targets of the MSE loss);
  storages of the parameters, buffers and the batch are not counted again;
* ``batch``: the input batch and its targets;
* ``backward``: the gradient flowing back through the graph: a node's backward holds the gradient of
  its output and produces the gradient of its input, each the size of an activation, while most saved
  tensors are still alive; counted as twice the largest saved storage.

What it leaves out: the allocator's rounding and small temporaries; what it adds: the saved tensors
freed during the backward pass before its peak (so it errs on the safe side).  Measured against the
peak resident memory of stacked training steps on the CPU (``tests/empirical/test_memory.py``): the
memory per member is 0.85 to 0.99 of the estimate for MLPs and ResNet18.

:func:`available_bytes` is what a new allocation can take now: the free memory of a CUDA device, or
on the CPU the smallest of the kernel's ``MemAvailable`` and the headroom of every memory cgroup the
process is in (a container sees the host's ``/proc/meminfo``, not its own limit).  The parsing is done
by small pure functions of the files' texts (:func:`meminfo_available`, :func:`cgroup_limit`,
:func:`cgroup_headroom`, :func:`memory_cgroup_dirs`), tested on given texts.

:func:`members_that_fit` combines the two: how many members fit in a fraction of what is available.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .measurement import network_loss

__all__ = [
    "MemoryEstimate",
    "available_bytes",
    "cgroup_headroom",
    "cgroup_limit",
    "cpu_available_bytes",
    "member_training_bytes",
    "members_that_fit",
    "meminfo_available",
    "memory_cgroup_dirs",
]

#: A cgroup v1 memory limit at or above this (1 EiB) means "no limit": the kernel writes its page-counter
#: maximum, ``9223372036854771712`` (2^63 rounded down to a page), when none is set.
V1_NO_LIMIT = 1 << 60

_MIB = float(1 << 20)


# --------------------------------------------------------------------------- the estimate


@dataclass
class MemoryEstimate:
    """Bytes one member's training step holds at once; ``total`` is the sum of the other fields."""

    params: int
    grads: int
    optimizer: int
    saved: int
    batch: int
    backward: int = 0
    buffers: int = 0
    total: int = field(init=False)

    def __post_init__(self) -> None:
        self.total = self.params + self.grads + self.optimizer + self.saved + self.batch + self.backward + self.buffers

    def describe(self) -> str:
        """One line in MiB, e.g. ``"98.6 MiB (params 16.6, grads 16.6, momentum 16.6, saved 16.1, batch 0.3, backward 16.0)"``."""
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
                          momentum: float, autocast: torch.dtype | None = None, stacked: bool = False) -> MemoryEstimate:
    """The memory of one SGD training step of ``model`` on the batch ``(x, y)``.

    One forward pass in train mode (under ``torch.autocast(x.device.type, dtype=autocast)`` when
    ``autocast`` is a dtype, the criterion :func:`empirical.measurement.network_loss` outside it, as
    :class:`empirical.sweep.StackedEngine` runs it) records every tensor saved for the backward pass;
    each distinct storage is counted once with its full size (``untyped_storage().nbytes()``: a view
    keeps its whole storage alive), except the storages of the model's parameters and buffers and of
    ``x`` and ``y`` (counted as ``params``, ``buffers`` and ``batch``).  No backward pass is run.

    ``stacked=True``: the forward runs as one member of :class:`empirical.sweep.StackedEngine`'s step, a
    ``vmap`` of :func:`torch.func.functional_call` over the model's parameters and buffers stacked
    (:func:`torch.func.stack_module_state`, one member) with the batch shared, as a sweep of one seed runs
    it.  The batching rules save more than the plain module does (measured, ResNet18 on 32x32 images,
    batch 128: 872 MiB per member under ``vmap``, for any number of members, against 572 MiB), so a sweep's
    chunking should ask for this.  The stacked copies are counted as ``params`` and ``buffers``.

    ``grads`` = the bytes of the trainable parameters; ``optimizer`` = the same when ``momentum != 0``
    (SGD's momentum buffers), else 0; ``batch`` = the bytes of ``x`` and ``y`` (their elements, not
    their storages: a batch sliced from a dataset is a view); ``backward`` = twice the largest saved storage
    (the gradients of one node's output and input, alive together during the backward pass).

    The model is left as it was: its buffers (BatchNorm's running statistics, updated by a train-mode
    forward) are copied back bit for bit, every submodule's train/eval flag restored, no ``.grad``
    touched; the global random state (dropout draws) is restored too, so a sweep's members still
    start from the same random stream as single runs.
    """
    if loss not in ("mse", "ce"):
        raise ValueError(f"unknown loss {loss!r}: expected 'mse' or 'ce'")
    if momentum < 0:
        raise ValueError(f"momentum must be >= 0, got {momentum}")
    params = list(model.parameters())
    buffers = list(model.buffers())
    cast = (lambda: torch.autocast(x.device.type, dtype=autocast)) if autocast is not None else nullcontext
    if stacked:
        from torch.func import functional_call, stack_module_state, vmap

        stacked_params, stacked_buffers = stack_module_state([model])  # copies: the model's own tensors stay as they are
        stacked_params = {n: p.detach().requires_grad_(q.requires_grad)
                          for (n, p), q in zip(stacked_params.items(), params)}

        def member_step(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], xb: torch.Tensor,
                        yb: torch.Tensor) -> torch.Tensor:  # StackedEngine._member_step's forward and criterion
            with cast():
                out = functional_call(model, (p, b), (xb,))
            return network_loss(out, yb, num_classes, loss)

        vstep = vmap(member_step, in_dims=(0, 0, None, None), randomness="different")

        def step() -> torch.Tensor:
            return vstep(stacked_params, stacked_buffers, x, y)

        counted = list(stacked_params.values()) + list(stacked_buffers.values())
    else:
        def step() -> torch.Tensor:  # empirical.step.TrainStep's: the forward under autocast, the criterion outside
            with cast():
                out = model(x)
            return network_loss(out, y, num_classes, loss)

        counted = []
    own = {k for t in params + buffers + counted + [x, y] if (k := _storage_key(t)) is not None}
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
            value = step()
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

    ``fixed`` is memory the chunk needs whatever its size (the dataset, a batch the members share);
    ``fraction`` leaves room for what the estimate does not count (the backward pass's temporaries,
    the allocator's rounding, the rest of the process).
    """
    if per_member <= 0:
        raise ValueError(f"per_member must be positive, got {per_member}")
    if available < 0 or fixed < 0:
        raise ValueError(f"available and fixed must be >= 0, got available={available}, fixed={fixed}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return max(int((fraction * available - fixed) // per_member), 0)


# --------------------------------------------------------------------------- what the device has


def meminfo_available(text: str) -> int | None:
    """``MemAvailable`` of a ``/proc/meminfo`` text in bytes (the file says kB, meaning KiB); ``None`` if absent."""
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key.strip() == "MemAvailable":
            fields = rest.split()
            try:
                value = int(fields[0])
            except (IndexError, ValueError):
                return None
            unit = fields[1].lower() if len(fields) > 1 else ""
            return value * 1024 if unit == "kb" else value
    return None


def cgroup_limit(text: str) -> int | None:
    """A cgroup memory limit file's value in bytes: v2 ``memory.max`` (``"max"``: no limit) or v1
    ``memory.limit_in_bytes`` (at or above :data:`V1_NO_LIMIT`: no limit); ``None`` for no limit or an unreadable text."""
    value = text.strip()
    if value == "max":
        return None
    try:
        n = int(value)
    except ValueError:
        return None
    return None if n >= V1_NO_LIMIT else n


def _stat_value(stat_text: str, keys: tuple[str, ...]) -> int:
    values = {}
    for line in stat_text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            values[parts[0]] = int(parts[1])
    return next((values[k] for k in keys if k in values), 0)


def cgroup_headroom(limit_text: str, usage_text: str, stat_text: str = "") -> int | None:
    """What one memory cgroup still lets its processes allocate: ``limit - (usage - inactive_file)``, >= 0.

    ``limit_text`` / ``usage_text`` are ``memory.max`` / ``memory.current`` (v2) or ``memory.limit_in_bytes``
    / ``memory.usage_in_bytes`` (v1).  The usage includes the page cache; its inactive file pages
    (``inactive_file`` in v2's ``memory.stat``, ``total_inactive_file`` in v1's) are reclaimed before the
    cgroup's OOM killer acts, so they count as available (the kubelet's "working set" rule).  ``None`` when
    the cgroup sets no limit or a text cannot be read.
    """
    limit = cgroup_limit(limit_text)
    if limit is None:
        return None
    try:
        usage = int(usage_text.strip())
    except ValueError:
        return None
    inactive = _stat_value(stat_text, ("total_inactive_file", "inactive_file"))
    return max(limit - max(usage - inactive, 0), 0)


def memory_cgroup_dirs(proc_self_cgroup: str, root: Path | str = "/sys/fs/cgroup") -> list[tuple[Path, str, str]]:
    """The memory cgroup directories a process is in, from its own up to the mount's root, as
    ``(directory, limit file, usage file)``; from the text of ``/proc/self/cgroup``.

    v2 (line ``0::/path``): ``root/path``, ``memory.max``, ``memory.current``.  v1 (a line whose
    controllers include ``memory``): ``root/memory/path``, ``memory.limit_in_bytes``,
    ``memory.usage_in_bytes``.  Every ancestor is listed because a parent's limit binds its children.
    Whether the directories exist is not checked here.
    """
    root = Path(root)
    out: list[tuple[Path, str, str]] = []
    for line in proc_self_cgroup.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            base, files = root, ("memory.max", "memory.current")
        elif "memory" in controllers.split(","):
            base, files = root / "memory", ("memory.limit_in_bytes", "memory.usage_in_bytes")
        else:
            continue
        rel = Path(path.lstrip("/"))
        chain = [rel, *rel.parents] if str(rel) not in ("", ".") else [Path(".")]
        for p in chain:
            out.append((base / p, *files))
    return out


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def cpu_available_bytes(proc: Path | str = "/proc", cgroup_root: Path | str = "/sys/fs/cgroup") -> int | None:
    """The CPU's available memory: the smallest of ``MemAvailable`` (``proc/meminfo``) and every memory
    cgroup's headroom (:func:`cgroup_headroom`); ``os.sysconf`` free pages when ``proc/meminfo`` is missing;
    ``None`` when nothing can be read."""
    proc = Path(proc)
    candidates: list[int] = []
    meminfo = _read(proc / "meminfo")
    avail = meminfo_available(meminfo) if meminfo is not None else None
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = None
    if avail is not None and avail >= 0:
        candidates.append(avail)
    own = _read(proc / "self" / "cgroup")
    dirs = memory_cgroup_dirs(own, cgroup_root) if own is not None else []
    seen = set()
    for d, limit_file, usage_file in dirs:
        if d in seen:
            continue
        seen.add(d)
        limit, usage = _read(d / limit_file), _read(d / usage_file)
        if limit is None or usage is None:
            continue
        head = cgroup_headroom(limit, usage, _read(d / "memory.stat") or "")
        if head is not None:
            candidates.append(head)
    return min(candidates) if candidates else None


def available_bytes(device: torch.device | str) -> int | None:
    """Bytes a new allocation on ``device`` can take now: CUDA's free memory (``torch.cuda.mem_get_info``),
    :func:`cpu_available_bytes` on the CPU, ``None`` for other devices or when nothing can be read."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type == "cpu":
        return cpu_available_bytes()
    return None
