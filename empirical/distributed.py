"""Data-parallel training and measurement across processes (docs/guide.md, "Several GPUs").

Launch with ``torchrun --nproc_per_node K -m empirical train ...``.  Each rank takes its contiguous shard of
every global batch, so batches are those of one process.  Class statistics are merged exactly (math §3.3b:
:func:`merge_accumulator`); counts and loss sums are all-reduced.  Backend ``nccl`` on CUDA, ``gloo`` on CPU.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

import torch
import torch.distributed as dist

from .runs import launched_world_size


@dataclass(frozen=True)
class DistInfo:
    """Rank and world size of this process (``world_size == 1``: no process group)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = DistInfo()


def current_dist_info() -> DistInfo:
    """Rank and world size of the default ``torch.distributed`` process group (:data:`SINGLE` without one)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() <= 1:
        return SINGLE
    rank = dist.get_rank()
    return DistInfo(rank=rank, world_size=dist.get_world_size(),
                    local_rank=int(os.environ.get("LOCAL_RANK", rank)), backend=dist.get_backend())


def init_from_env(device_type: str) -> DistInfo:
    """Initialise the default process group from torchrun's environment (:data:`SINGLE` without one)."""
    if launched_world_size() <= 1:
        return SINGLE
    if device_type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", os.environ["RANK"])))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo", init_method="env://")
    return current_dist_info()


def shutdown(info: DistInfo) -> None:
    """Destroy the process group created by :func:`init_from_env` (no-op for one process)."""
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def end_rank(status: int) -> NoReturn:
    """End this ``torchrun`` rank with ``status`` without interpreter finalisation (stdout and stderr flushed).

    DDP keeps the gloo process group alive past ``destroy_process_group`` (torch 2.13: its worker threads still
    run), and a worker that frees its last collective's tensors while the interpreter finalises needs the GIL and
    aborts the rank (SIGABRT, "terminate called without an active exception"; 2 of 16 runs on a loaded machine).
    Call it once the run is written: :func:`empirical.train` returns with every run file closed and the
    checkpoint writer joined.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def run_rank(main: Callable[[], int | None]) -> NoReturn:
    """Run ``main()`` as a ``torchrun`` rank and end it through :func:`end_rank` whatever happens: with ``main``'s
    status (``None``: 0), a ``SystemExit``'s (argparse's usage error: 2), or 1 after printing the traceback of any
    other exception, as Python would; finalisation, which :func:`end_rank` skips, could abort the rank then too."""
    status: int = 1
    try:
        status = main() or 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            status = exc.code or 0
        else:  # sys.exit("message"): Python prints the message and exits with 1
            print(exc.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - printed as Python prints it; the rank still ends through end_rank
        traceback.print_exc()
    end_rank(status)


def shard(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """This rank's contiguous share of a global batch (first dimension)."""
    if not info.enabled:
        return tensor
    return torch.tensor_split(tensor, info.world_size)[info.rank]


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum ``tensor`` over ranks (in place; returned for chaining)."""
    if info.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_object(obj, info: DistInfo):
    """Rank 0's Python object on every rank."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def merge_accumulator(acc, info: DistInfo):
    """All-gather :class:`theory.ClassStatsAccumulator` states and merge them in rank order (math §3.3b, exact).

    A rank without samples makes every rank raise the same ``ValueError`` (none waits in the all-gather).
    """
    if not info.enabled:
        return acc
    from theory import ClassStatsAccumulator

    C = acc.num_classes
    device = torch.device("cuda", torch.cuda.current_device()) if info.backend == "nccl" else torch.device("cpu")
    smallest = torch.tensor([acc.count], dtype=torch.int64, device=device)
    dist.all_reduce(smallest, op=dist.ReduceOp.MIN)
    if int(smallest) == 0:
        raise ValueError(
            f"a rank measured no samples (this is rank {info.rank}, {acc.count} sample(s) here, "
            f"world size {info.world_size}): the dataset is too small to shard over every process; "
            "use fewer processes (or an evaluation batch size of at least the number of processes)"
        )
    state, gathered = acc.state(), {}
    for key in ("counts", "means", "scatter"):
        t = torch.as_tensor(state[key], dtype=torch.float64).contiguous()
        gathered[key] = [torch.empty_like(t) for _ in range(info.world_size)]
        dist.all_gather(gathered[key], t)
    parts = [ClassStatsAccumulator.from_state(C, {k: v[r] for k, v in gathered.items()})
             for r in range(info.world_size)]
    return functools.reduce(lambda merged, part: merged.merge(part), parts)
