"""How the K members of a chunk train together on one device: :class:`InterleavedEngine` (each member's
single-run step in turn; on CUDA each on its own stream) and :class:`ThreadedEngine` (CPU: the same on
worker threads).  Both implement :class:`empirical.training.Engine`, driven by :func:`empirical.training.fit`."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from .. import runs
from ..config import TrainConfig
from ..data import batches
from ..distributed import SINGLE
from ..models import FeatureClassifier
from ..training import Member, SingleEngine, load_data, seed_everything

__all__ = ["ENGINES", "InterleavedEngine", "ThreadedEngine", "cpu_workers"]


def cpu_workers(cfg: TrainConfig, members: int) -> int:
    """Worker threads a threaded chunk uses on the CPU: as many members at a time as the cores hold at
    ``num_threads`` each (the run's torch threads; default: all cores, i.e. one worker), at most ``members``."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    per_member = cfg.num_threads or cores
    return max(1, min(members, cores // max(per_member, 1)))


class InterleavedEngine:
    """K ordinary models, each with its own optimiser and training step (:class:`empirical.training.SingleEngine`),
    trained batch by batch in turn: for every batch, member 1's step, member 2's step, ...

    Each member runs exactly its single run's code, so on the CPU its trajectory *is* its single run's, bit for
    bit; the sweep shares one process, and one dataset and batch-order generator per seed.  On CUDA each member's
    step runs on its own stream (waiting for the batch made on the default stream), so members' kernels overlap.
    The chunk checkpoint (``{"epoch", "members": [each member's single-run checkpoint + "stopped"]}``) is written
    beside each running member's own ``last.pt``.
    """

    strategy = "interleaved"

    def __init__(self, members: list[Member], device: torch.device, chunk_dir: Path):
        self.members, self.device, self.info, self.chunk_dir = members, device, SINGLE, Path(chunk_dir)
        self.writer = runs.CheckpointWriter()  # checkpoint files are written off the training thread
        self.groups: dict[int, tuple[torch.Generator, Any, Any]] = {}  # seed -> (batch-order generator, train, test)
        for seed in sorted({m.cfg.seed for m in members}):
            generator = seed_everything(seed)
            self.groups[seed] = (generator, *load_data(next(m.cfg for m in members if m.cfg.seed == seed), device))
        sizes = {len(train.y) for _, train, _ in self.groups.values()}
        if len(sizes) > 1:
            raise ValueError(f"sweep seeds give training sets of different sizes {sorted(sizes)}; "
                             "members must take the same number of steps per epoch")
        # SingleEngine seeds, then builds: the single run's initial weights
        self.engines = [SingleEngine(m, device, SINGLE, data=self.groups[m.cfg.seed][1:],
                                     generator=self.groups[m.cfg.seed][0]) for m in members]
        self.measure_precision = self.engines[0].measure_precision
        self.streams = ([torch.cuda.Stream(device) for _ in members]
                        if device.type == "cuda" and len(members) > 1 else None)
        self.workers = self.worker_count(members, device)
        self.pool: ThreadPoolExecutor | None = None
        if self.workers > 1:
            threads = torch.get_num_threads()  # the run's (torch_settings): each worker's ops use as many
            self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="sweep-member",
                                           initializer=torch.set_num_threads, initargs=(threads,))

    @staticmethod
    def worker_count(members: list[Member], device: torch.device) -> int:
        """Members stepped at the same time on worker threads: 1, in turn on the calling thread."""
        return 1

    def environment(self) -> dict[str, Any]:
        """What each member's ``config.json`` records about how it was trained: its single run's, and the sweep's."""
        return {**self.engines[0].environment(), "sweep_members": len(self.members), "sweep_strategy": self.strategy}

    # ---- the Engine interface (empirical.training.Engine)
    def model_of(self, k: int) -> FeatureClassifier:
        return self.engines[k].model

    def data_of(self, k: int) -> tuple[Any, Any]:
        return self.groups[self.members[k].cfg.seed][1:]

    def train_one_epoch(self, lrs: list[float]) -> tuple[torch.Tensor, int]:
        """One epoch of every running member; returns ``((K, 3) float64 [loss sum, wrong, seen], steps)``; the
        rows of stopped members are zeros.  Per member, the arithmetic of
        :meth:`empirical.training.SingleEngine.train_one_epoch`."""
        active = [k for k, m in enumerate(self.members) if m.stopped is None]
        for e, lr in zip(self.engines, lrs):
            e.start_epoch(lr)
        seen = steps = 0
        main = torch.cuda.current_stream(self.device) if self.streams else None
        cfg = self.members[0].cfg  # per step, one batch (x, y) of each seed, drawn as its single runs draw it
        group_of = [list(self.groups).index(self.members[k].cfg.seed) for k in active]  # once per epoch
        for batch in zip(*[batches(train, cfg.batch_size, shuffle=True, generator=generator, drop_last=cfg.drop_last)
                           for generator, train, _ in self.groups.values()]):
            work = [(k, *batch[g]) for k, g in zip(active, group_of)]
            if self.pool is not None:  # CPU: the members' steps run at the same time, one per worker thread
                for f in [self.pool.submit(self.engines[k].train_batch, xb, yb) for k, xb, yb in work]:
                    f.result()  # waits; re-raises a member's error here
            elif self.streams is not None and main is not None:  # CUDA: each member's kernels on its own stream
                for k, xb, yb in work:
                    self.streams[k].wait_stream(main)  # the batch was made on the default stream
                    with torch.cuda.stream(self.streams[k]):
                        self.engines[k].train_batch(xb, yb)
                    # the allocator must not reuse the batch before this stream is done
                    xb.record_stream(self.streams[k])
                    yb.record_stream(self.streams[k])
            else:
                for k, xb, yb in work:
                    self.engines[k].train_batch(xb, yb)
            steps += 1
            seen += int(batch[0][1].shape[0])
        if self.streams is not None and main is not None:
            for stream in self.streams:
                main.wait_stream(stream)
        seen_t = torch.tensor(float(seen), dtype=torch.float64, device=self.device)
        rows = [torch.stack([e.loss_sum, e.wrong.double(), seen_t if k in active else seen_t * 0])
                for k, e in enumerate(self.engines)]
        return torch.stack(rows), steps

    def weight_penalties(self) -> list[float]:
        return [e.weight_penalties()[0] for e in self.engines]

    def save_checkpoint(self) -> None:
        """The chunk's checkpoint (one atomic file, what a sweep resumes from), then each running
        member's ``last.pt`` (single-run format, for ``load_run`` and single resumes)."""
        states = [{**e.checkpoint_state(), "stopped": m.stopped} for e, m in zip(self.engines, self.members)]
        # the snapshots are taken here; the files are written off the training thread, in this order
        runs.save_checkpoint(self.chunk_dir, {"epoch": max(m.state.epoch for m in self.members), "members": states},
                             self.writer)
        for m, st in zip(self.members, states):
            if m.stopped is None:
                runs.save_checkpoint(m.run_dir, st, self.writer)

    def load_checkpoint(self, ckpt: dict[str, Any]) -> None:
        """Each member from its part of the chunk checkpoint (a seed's members share, and restore, one
        batch-order generator: every member of a seed saved the same state of it)."""
        for e, m, st in zip(self.engines, self.members, ckpt["members"]):
            e.load_checkpoint(st)
            m.stopped = st.get("stopped")

    def close(self) -> None:
        """End the worker threads, if any."""
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None


class ThreadedEngine(InterleavedEngine):
    """:class:`InterleavedEngine` on the CPU with the members' training steps on worker threads: as many
    members at a time as the cores hold at the run's ``num_threads`` each (:func:`cpu_workers`; the default,
    all cores per member, gives one worker).  The measurements stay one after the other (on threads their float64
    BLAS calls competed).  Each member runs its single run's code at its thread count, so it equals its single
    run exactly (tested at one thread per member).  Kernel-bound steps gain, tiny Python-bound ones do not
    (benchmarks/RESULTS.md).  CPU only.
    """

    strategy = "threaded"

    @staticmethod
    def worker_count(members: list[Member], device: torch.device) -> int:
        """:func:`cpu_workers`; a one-line ``ValueError`` off the CPU."""
        if device.type != "cpu":
            raise ValueError("sweep strategy 'threaded' is for the CPU; on CUDA 'interleaved' runs each member "
                             "on its own stream")
        return cpu_workers(members[0].cfg, len(members))


#: The sweep strategies (:data:`empirical.sweep.spec.STRATEGIES`): how a chunk's members train together.
ENGINES: dict[str, type[InterleavedEngine]] = {"threaded": ThreadedEngine, "interleaved": InterleavedEngine}
