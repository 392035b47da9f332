"""Learning-rate sweeps: K configurations of one (dataset, model) trained at once on one device.

The paper selects each (dataset, network) pair's learning rate from 25 values
(:func:`empirical.schedule.lr_grid`, ``logspace(1e-4, 0.25)``) by final test accuracy (math §7.1).
:func:`run_sweep` trains the members (every learning rate x weight decay x seed) together, by one of
two strategies (``strategy``, :data:`STRATEGIES`):

* ``"stacked"`` (:class:`StackedEngine`): the members' weights are stacked into one batched model
  (:func:`torch.func.stack_module_state`) and one step of all K members is one ``vmap`` of
  :func:`torch.func.functional_call` over the stacked parameters *and buffers* (BatchNorm's running
  statistics are stacked too and updated per member in place; its batch statistics are each member's
  own, as in a single run).  The SGD update (momentum, weight decay, per-member learning rate) is
  applied to the stacked tensors.
* ``"interleaved"`` (:class:`InterleavedEngine`): K ordinary models, each stepped by its single run's
  code in turn on every batch (on CUDA each on its own stream, so their kernels overlap).
* ``"threaded"`` (CPU): interleaved, with the members' training steps on worker threads, as many at a
  time as the cores hold at the run's ``num_threads``.
* ``"auto"`` (the default): the fastest in a trial of a few steps on the device
  (:func:`choose_strategy`); the choice and the timings are stored in ``sweep.json``.

Each member is a normal run directory ``DIR/<name>/`` (``config.json``, ``metrics.jsonl`` written
by :func:`empirical.training.measure_member`, i.e. :func:`empirical.measurement.measure` on the member's
own weights loaded into an ordinary module, ``checkpoints/last.pt`` in the single-run format,
figures): ``python -m empirical train --out DIR/<name> --resume``, ``plot``, ``load_run`` and
``paper_checks --run-dir`` work on it as on any run.  ``DIR/sweep.json`` lists the members with
their final train and test error and the learning rate selected by final test accuracy;
``DIR/accuracy_vs_lr.png`` draws it.

Equivalence: a member starts from the weights and the batch order of a single run with the same
options and seed (same seeding, same generator), so epoch 0 is measured identically.  Later epochs of
a stacked member agree to float32 round-off (the batched matrix products round differently); an
interleaved member runs its single run's kernels, so on the CPU it equals its single run exactly
(tests/empirical/test_sweep.py).

Members are trained in chunks of at most ``max_members_per_chunk`` (default: as many as the memory
holds: on CUDA measured with a trial step, on the CPU estimated by :func:`empirical.memory.member_training_bytes`
against :func:`empirical.memory.available_bytes`).  Each chunk checkpoints
atomically to ``DIR/chunks/NN/checkpoints/last.pt`` (by time and at the end, as single runs do);
``resume=True`` continues every unfinished chunk from there.  A member whose loss becomes
non-finite stops alone (``status: "diverged"`` in ``sweep.json``); the others go on.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch.func import functional_call, stack_module_state, vmap

from . import memory, runs, timing
from .config import RESUME_OVERRIDES, TrainConfig, changed_options
from .distributed import SINGLE
from .measurement import network_loss, resolve_precision
from .schedule import lr_at, lr_grid
from .state import RunState
from .step import CompileFallbackWarning, resolve_compile
from .training import (Member, SingleEngine, build_train_model, fit, load_data, resolve_device, seed_everything,
                       start_run_dir, torch_settings, uses_bf16, weight_penalty)

__all__ = ["SWEEP_FILE", "STRATEGIES", "InterleavedEngine", "StackedEngine", "SweepSpec", "ThreadedEngine", "choose_strategy",
           "parse_lrs", "run_sweep", "select_lr"]

SWEEP_FILE = "sweep.json"
CHUNKS_DIR = "chunks"
FIGURE_FILE = "accuracy_vs_lr.png"


# --------------------------------------------------------------------------- the members


def parse_lrs(text: str) -> list[float]:
    """``"paper"`` (the 25 values of :func:`empirical.schedule.lr_grid`, math §7.1) or comma-separated numbers."""
    text = text.strip().lower()
    if text == "paper":
        return [float(v) for v in lr_grid()]
    return parse_floats(text, "--lrs")


def parse_floats(text: str, option: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"cannot parse {option} {text!r}: expected comma-separated numbers") from None


def parse_ints(text: str, option: str) -> list[int]:
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
    #: ``"auto"``, ``"stacked"`` or ``"interleaved"`` (:data:`STRATEGIES`); a started sweep stores its choice.
    strategy: str = "auto"
    #: What the ``"auto"`` trial measured (seconds per step of each strategy), stored with the sweep.
    strategy_trial: dict[str, Any] | None = None

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
        keys = [(m.lr, m.weight_decay, m.seed) for m in self.member_configs()]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"duplicate sweep members (lr, weight_decay, seed): {dupes}")
        names = [Path(m.out).name for m in self.member_configs()]
        if len(set(names)) != len(names):
            raise ValueError(f"sweep members with the same directory name: {sorted({n for n in names if names.count(n) > 1})}")
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
        return {"base": self.base.to_dict(), "lrs": self.lrs, "weight_decays": self.weight_decays, "seeds": self.seeds,
                "max_members_per_chunk": self.max_members_per_chunk, "strategy": self.strategy,
                "strategy_trial": self.strategy_trial}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SweepSpec":
        # sweeps started before strategies existed were stacked
        return cls(base=TrainConfig.from_dict(d["base"]), lrs=list(d["lrs"]), weight_decays=list(d["weight_decays"]),
                   seeds=list(d["seeds"]), max_members_per_chunk=d.get("max_members_per_chunk"),
                   strategy=d.get("strategy", "stacked"), strategy_trial=d.get("strategy_trial"))


def check_strategy(strategy: str) -> str:
    """``strategy`` if it is one of :data:`STRATEGIES`, else a one-line ``ValueError``."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown sweep strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    return strategy


# --------------------------------------------------------------------------- K models as one


class ChunkEngine:
    """What both sweep engines share: the members' seed groups (one dataset and one batch-order generator
    per seed, as each member's single run would draw them), ``data_of``, and the chunk checkpoint
    (``{"epoch", "members": [each member's single-run checkpoint + "stopped"]}``, one atomic file, the same
    for both strategies) beside each running member's own ``last.pt``."""

    strategy = ""

    def __init__(self, members: list[Member], device: torch.device, chunk_dir: Path):
        self.members, self.device, self.info, self.chunk_dir = members, device, SINGLE, Path(chunk_dir)
        self.writer = runs.CheckpointWriter()  # checkpoint files are written off the training thread
        self.groups: dict[int, dict[str, Any]] = {}
        for seed in sorted({m.cfg.seed for m in members}):
            generator = seed_everything(seed)
            first = next(m.cfg for m in members if m.cfg.seed == seed)
            train_set, test_set = load_data(first, device)
            self.groups[seed] = {"generator": generator, "train": train_set, "test": test_set}
        sizes = {len(g["train"].y) for g in self.groups.values()}
        if len(sizes) > 1:
            raise ValueError(f"sweep seeds give training sets of different sizes {sorted(sizes)}; "
                             "members must take the same number of steps per epoch")
        self.num_classes = int(self.groups[members[0].cfg.seed]["train"].num_classes)

    def data_of(self, k: int):
        g = self.groups[self.members[k].cfg.seed]
        return g["train"], g["test"]

    def epoch_batches(self, max_steps: int | None = None):
        """Per step, ``(x, y)`` for each seed group (in ``self.groups`` order); at most ``max_steps`` steps."""
        from .training import _batches

        cfg = self.members[0].cfg
        iters = [iter(_batches(g["train"], cfg.batch_size, g["generator"], cfg.drop_last)) for g in self.groups.values()]
        return itertools.islice(zip(*iters), max_steps)

    def member_state(self, k: int) -> dict[str, Any]:  # pragma: no cover - each engine defines it
        raise NotImplementedError

    def save_checkpoint(self) -> None:
        """The chunk's checkpoint (one atomic file, what a sweep resumes from), then each running
        member's ``last.pt`` (single-run format, for ``load_run`` and single resumes)."""
        states = [self.member_state(k) for k in range(len(self.members))]
        # the snapshots are taken here; the files are written off the training thread, in this order
        runs.save_checkpoint(self.chunk_dir, {"epoch": max(m.state.epoch for m in self.members), "members": states,
                                              "strategy": self.strategy}, self.writer)
        for m, st in zip(self.members, states):
            if m.stopped is None:
                runs.save_checkpoint(m.run_dir, st, self.writer)

    def close(self) -> None:
        """End the engine's worker threads, if it has any (:class:`ThreadedEngine`)."""
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.shutdown(wait=True)
            self.pool = None

    def restore_generators(self, ckpt: dict[str, Any]) -> None:
        for seed, g in self.groups.items():  # members of a seed share the generator: any one's state
            k = next(i for i, m in enumerate(self.members) if m.cfg.seed == seed)
            g["generator"].set_state(ckpt["members"][k]["rng"]["batches"])


class StackedEngine(ChunkEngine):
    """K members with the same architecture and data size trained as one batched model.

    The :func:`empirical.training.fit` interface of :class:`empirical.training.SingleEngine`:
    ``members``, ``device``, ``info``, ``measure_precision``, ``model_of(k)``, ``data_of(k)``,
    ``train_one_epoch(lrs)``, ``weight_penalties()``, ``save_checkpoint()``.

    Members with the same seed share one dataset and one batch-order generator (the same batches,
    as their single runs would draw); members with different seeds each get their own batches
    (``vmap`` over the batch too).  SGD (math §8: ``d = g + wd theta``, ``buf = momentum buf + d``,
    ``theta -= lr buf``, the arithmetic of ``torch.optim.SGD``) runs on the stacked tensors with
    each member's learning rate and weight decay.
    """

    strategy = "stacked"

    def __init__(self, members: list[Member], device: torch.device, chunk_dir: Path):
        super().__init__(members, device, chunk_dir)
        cfg = members[0].cfg
        models = []
        for m in members:  # the single run's sequence: seed, then build (data loading draws no torch numbers)
            seed_everything(m.cfg.seed)
            models.append(build_train_model(m.cfg, self.groups[m.cfg.seed]["train"], device, channels_last_ok=False)[0])
        self.template = models[0]  # an ordinary module: functional_call's base and the measured model
        params, buffers = stack_module_state(models)
        self.params = {n: p.detach().requires_grad_(True) for n, p in params.items()}
        self.buffers = buffers
        self.momentum_buffers: dict[str, torch.Tensor] = {}
        self.use_amp = uses_bf16(cfg, device)
        self.autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if self.use_amp else nullcontext
        self.measure_precision = resolve_precision(cfg.measure_precision, device)
        self.compile_mode = resolve_compile(cfg.compile, device, deterministic=cfg.deterministic)
        self.shared_batches = len(self.groups) == 1
        dims = None if self.shared_batches else 0
        self._vstep = vmap(self._member_step, in_dims=(0, 0, dims, dims), randomness="different")
        self._compiled, self._seen = None, set()
        if self.compile_mode != "none":
            try:
                kw = {} if self.compile_mode == "default" else {"mode": self.compile_mode}
                self._compiled = torch.compile(self._batched_step, **kw)
            except Exception as exc:  # pragma: no cover - platform refuses torch.compile
                self._fall_back(exc)

    # ---- one step of all members
    def _member_step(self, p, b, x, y):
        # as empirical.step.TrainStep: the forward under autocast, the criterion outside it
        with self.autocast():
            out = functional_call(self.template, (p, b), (x,))
        return network_loss(out, y, self.num_classes, self.members[0].cfg.loss), (out.detach().argmax(-1) != y).sum()

    def _batched_step(self, x, y):
        return self._vstep(self.params, self.buffers, x, y)

    def _fall_back(self, exc: BaseException) -> None:
        warnings.warn(f"torch.compile (compile={self.compile_mode!r}) of the sweep step failed: "
                      f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}. "
                      "Training continues in eager mode.", CompileFallbackWarning, stacklevel=3)
        self._compiled, self.compile_mode = None, "none"

    def _forward(self, x, y):
        if self._compiled is not None:
            signature = (tuple(x.shape), x.dtype, tuple(y.shape))
            # a new signature compiles: keep BatchNorm's buffers to restore them if compiling fails
            saved = None if signature in self._seen else {n: b.clone() for n, b in self.buffers.items()}
            try:
                if self.compile_mode == "reduce-overhead":
                    torch.compiler.cudagraph_mark_step_begin()
                out = self._compiled(x, y)
                self._seen.add(signature)
                return out
            except Exception as exc:
                self._fall_back(exc)
                if saved is not None:
                    with torch.no_grad():
                        for n, b in saved.items():
                            self.buffers[n].copy_(b)
        return self._batched_step(x, y)

    def _sgd(self, lrs: torch.Tensor, wds: torch.Tensor, uniform_wd: float | None) -> None:
        """``torch.optim.SGD``'s update (dampening 0, no Nesterov) on the stacked tensors, per-member lr / wd."""
        momentum = self.members[0].cfg.momentum
        with torch.no_grad():
            for n, p in self.params.items():
                view = (-1,) + (1,) * (p.dim() - 1)
                g = p.grad
                d = g.add(p, alpha=uniform_wd) if uniform_wd is not None else g.addcmul(wds.view(view), p)
                if momentum:
                    buf = self.momentum_buffers.get(n)
                    if buf is None:
                        buf = self.momentum_buffers[n] = d.clone()
                    else:
                        buf.mul_(momentum).add_(d)
                    d = buf
                p.addcmul_(lrs.view(view), d, value=-1.0)
                p.grad = None

    def train_one_epoch(self, lrs: list[float], max_steps: int | None = None) -> tuple[torch.Tensor, int]:
        """One epoch of every member (at most ``max_steps`` steps); returns ``((K, 3) float64 [loss sum,
        wrong, seen], steps)``."""
        K = len(self.members)
        lr_t = torch.tensor(lrs, dtype=torch.float32, device=self.device)
        wds = [m.cfg.weight_decay for m in self.members]
        uniform = wds[0] if len(set(wds)) == 1 else None
        wd_t = torch.tensor(wds, dtype=torch.float32, device=self.device)
        self.template.train()
        loss_sum = torch.zeros(K, dtype=torch.float64, device=self.device)
        wrong = torch.zeros(K, dtype=torch.int64, device=self.device)
        seen = steps = 0
        index = [list(self.groups).index(m.cfg.seed) for m in self.members]
        for batch in self.epoch_batches(max_steps):
            if self.shared_batches:
                (xb, yb), = batch
            else:
                xb = torch.stack([batch[i][0] for i in index])
                yb = torch.stack([batch[i][1] for i in index])
            loss, wrong_b = self._forward(xb, yb)
            loss.sum().backward()  # member k's gradient is exactly the gradient of its own loss
            self._sgd(lr_t, wd_t, uniform)
            steps += 1
            b = int(yb.shape[-1])
            with torch.no_grad():
                loss_sum += loss.detach().double() * b
                wrong += wrong_b
                seen += b
        seen_t = torch.full((K,), float(seen), dtype=torch.float64, device=self.device)
        return torch.stack([loss_sum, wrong.double(), seen_t], dim=1), steps

    def weight_penalties(self) -> list[float]:
        with torch.no_grad():
            return [float(weight_penalty([p[k] for p in self.params.values()], m.cfg.weight_decay))
                    for k, m in enumerate(self.members)]

    # ---- one member as an ordinary model
    def model_of(self, k: int) -> torch.nn.Module:
        """The template module holding member ``k``'s weights and buffers (copied in)."""
        with torch.no_grad():
            for n, t in itertools.chain(self.template.named_parameters(), self.template.named_buffers()):
                t.copy_(self.params[n][k] if n in self.params else self.buffers[n][k])
        return self.template

    def member_state(self, k: int) -> dict[str, Any]:
        """Member ``k``'s checkpoint in the single-run format (``torch.optim.SGD`` state dict).

        Each slice is copied to the host: its own storage (``torch.save`` of a view would write the whole
        stacked tensor), and no device memory beyond what :func:`members_that_fit` measured."""
        m = self.members[k]

        def host(t: torch.Tensor) -> torch.Tensor:
            return t.detach().to("cpu", copy=True)

        model = {n: host(self.params[n][k] if n in self.params else self.buffers[n][k]) for n in self.template.state_dict()}
        names = list(self.params)
        state = {i: {"momentum_buffer": host(self.momentum_buffers[n][k])}
                 for i, n in enumerate(names) if n in self.momentum_buffers}
        lr = lr_at(max(m.state.epoch, 1), m.cfg.lr, m.cfg.lr_milestones, m.cfg.lr_gamma)
        group = {"lr": lr, "momentum": m.cfg.momentum, "dampening": 0, "weight_decay": m.cfg.weight_decay,
                 "nesterov": False, "maximize": False, "foreach": None, "differentiable": False, "fused": None,
                 "params": list(range(len(names)))}
        return {**m.state.to_dict(self.groups[m.cfg.seed]["generator"]), "model": model,
                "optimizer": {"state": state, "param_groups": [group]}, "stopped": m.stopped}

    def load_checkpoint(self, ckpt: dict[str, Any]) -> None:
        names = list(self.params)
        with torch.no_grad():
            for k, (m, st) in enumerate(zip(self.members, ckpt["members"])):
                for n, t in st["model"].items():
                    (self.params[n] if n in self.params else self.buffers[n])[k].copy_(t)
                for i, s in st["optimizer"]["state"].items():
                    n = names[int(i)]
                    if n not in self.momentum_buffers:
                        self.momentum_buffers[n] = torch.zeros_like(self.params[n])
                    self.momentum_buffers[n][k].copy_(s["momentum_buffer"])
                m.state = RunState.from_dict(st)
                m.stopped = st.get("stopped")
        self.restore_generators(ckpt)


def cpu_workers(cfg: TrainConfig, members: int) -> int:
    """Worker threads an interleaved chunk uses on the CPU: as many members at a time as the cores hold at
    ``num_threads`` each (the run's torch threads; default: all cores, i.e. one worker), at most ``members``."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    per_member = cfg.num_threads or cores
    return max(1, min(members, cores // max(per_member, 1)))


class InterleavedEngine(ChunkEngine):
    """K ordinary models, each with its own optimiser and training step (:class:`empirical.training.SingleEngine`),
    trained batch by batch in turn: for every batch, member 1's step, member 2's step, ...

    Each member runs exactly the code of its single run (the same :class:`empirical.step.TrainStep`,
    ``torch.optim.SGD``, fused on CUDA, channels-last and compiled as a single run would be), so on the CPU
    a member's trajectory *is* its single run's, bit for bit.  What the sweep saves is the per-run work:
    one process, one dataset per seed, one batch draw per step for all members of a seed.  On CUDA each
    member's step is issued on its own CUDA stream, so the kernels of different members can run at the same
    time on the GPU (a single run at the paper's batch size leaves most of an H200 idle); the batch is made
    on the default stream, each member's stream waits for it, and the default stream waits for every member
    at the end of the epoch.  Memory: K models and optimisers, and at most K steps' activations in flight.
    """

    strategy = "interleaved"

    def __init__(self, members: list[Member], device: torch.device, chunk_dir: Path):
        super().__init__(members, device, chunk_dir)
        self.engines = []
        for m in members:  # SingleEngine seeds, then builds: the single run's initial weights
            g = self.groups[m.cfg.seed]
            self.engines.append(SingleEngine(m, device, SINGLE, data=(g["train"], g["test"]), generator=g["generator"]))
        first = self.engines[0]
        self.use_amp, self.compile_mode, self.measure_precision = first.use_amp, first.compile_mode, first.measure_precision
        self.channels_last = first.channels_last
        self.streams = ([torch.cuda.Stream(device) for _ in members]
                        if device.type == "cuda" and len(members) > 1 else None)
        self.workers = self.worker_count(members, device)
        self.pool = None
        if self.workers > 1:
            threads = torch.get_num_threads()  # the run's (torch_settings): each worker's ops use as many
            self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="sweep-member",
                                            initializer=torch.set_num_threads, initargs=(threads,))

    @staticmethod
    def worker_count(members: list[Member], device: torch.device) -> int:
        return 1  # in turn, on the calling thread

    def train_one_epoch(self, lrs: list[float], max_steps: int | None = None) -> tuple[torch.Tensor, int]:
        """One epoch of every running member (at most ``max_steps`` steps); returns ``((K, 3) float64
        [loss sum, wrong, seen], steps)``; the rows of stopped members are zeros.  Per member, the
        arithmetic of :meth:`empirical.training.SingleEngine.train_one_epoch`."""
        K = len(self.members)
        active = [k for k, m in enumerate(self.members) if m.stopped is None]
        for k in active:
            for group in self.engines[k].optimizer.param_groups:
                group["lr"] = lrs[k]
            self.engines[k].net.train()
        zeros = lambda dtype: [torch.zeros((), dtype=dtype, device=self.device) for _ in range(K)]  # noqa: E731
        loss_sum, wrong = zeros(torch.float64), zeros(torch.int64)
        seen = steps = 0
        index = [list(self.groups).index(m.cfg.seed) for m in self.members]
        main = torch.cuda.current_stream(self.device) if self.streams else None
        for batch in self.epoch_batches(max_steps):
            work = [(k, *batch[index[k]]) for k in active]
            if self.pool is not None:  # CPU: the members' steps run at the same time, one per worker thread
                for f in [self.pool.submit(self._member_step, *w, loss_sum, wrong) for w in work]:
                    f.result()  # waits; re-raises a member's error here
            elif self.streams is not None:  # CUDA: each member's kernels on its own stream
                for k, xb, yb in work:
                    self.streams[k].wait_stream(main)  # the batch was made on the default stream
                    with torch.cuda.stream(self.streams[k]):
                        self._member_step(k, xb, yb, loss_sum, wrong)
                    xb.record_stream(self.streams[k])  # the allocator must not reuse the batch before this stream is done
                    yb.record_stream(self.streams[k])
            else:
                for w in work:
                    self._member_step(*w, loss_sum, wrong)
            steps += 1
            seen += int(batch[0][1].shape[0])
        if self.streams is not None:
            for stream in self.streams:
                main.wait_stream(stream)
        seen_t = torch.tensor(float(seen), dtype=torch.float64, device=self.device)
        rows = [torch.stack([loss_sum[k], wrong[k].double(), seen_t if k in active else seen_t * 0]) for k in range(K)]
        return torch.stack(rows), steps

    def _member_step(self, k: int, xb, yb, loss_sum: list, wrong: list) -> None:
        loss, wrong_b = self.engines[k].step(xb, yb, None)
        with torch.no_grad():
            loss_sum[k] += loss.double() * yb.shape[0]
            wrong[k] += wrong_b

    def weight_penalties(self) -> list[float]:
        return [e.weight_penalties()[0] for e in self.engines]

    def model_of(self, k: int) -> torch.nn.Module:
        return self.engines[k].model

    def member_state(self, k: int) -> dict[str, Any]:
        """Member ``k``'s single-run checkpoint (its model and ``torch.optim.SGD`` state) and ``stopped``."""
        return {**self.engines[k].checkpoint_state(), "stopped": self.members[k].stopped}

    def load_checkpoint(self, ckpt: dict[str, Any]) -> None:
        for e, m, st in zip(self.engines, self.members, ckpt["members"]):
            e.load_checkpoint(st)
            m.stopped = st.get("stopped")
        self.restore_generators(ckpt)


class ThreadedEngine(InterleavedEngine):
    """:class:`InterleavedEngine` on the CPU with the members' training steps on worker threads: as many
    members at a time as the cores hold at the run's ``num_threads`` each (:func:`cpu_workers`).  The
    measurements stay one after the other: on worker threads they ran slower (2.6 s against 1.1 s for 4
    digits MLPs over 31 measurements), their float64 BLAS calls competing with each other.

    Each member still runs its single run's code at its single run's thread count, so it equals its single
    run exactly (tested at one thread per member, the usual case: with several threads per member, the
    measurement's statistics briefly run torch at one thread, which another member's BLAS may see);
    PyTorch's kernels release the interpreter lock, so members whose steps are mostly kernels
    (ResNet18: 1.9x the training throughput on 2 cores) gain, while tiny steps (a small MLP, ~1 ms, mostly
    Python) contend for the lock and lose; the ``"auto"`` trial measures which.  Needs ``num_threads`` below
    the number of cores (e.g. ``--threads 1``); CPU only.
    """

    strategy = "threaded"

    @staticmethod
    def worker_count(members: list[Member], device: torch.device) -> int:
        if device.type != "cpu":
            raise ValueError("sweep strategy 'threaded' is for the CPU; on CUDA 'interleaved' runs each member "
                             "on its own stream")
        return cpu_workers(members[0].cfg, len(members))


#: The sweep strategies: how the K members of a chunk are trained together on one device.
ENGINES: dict[str, type[ChunkEngine]] = {"stacked": StackedEngine, "interleaved": InterleavedEngine,
                                         "threaded": ThreadedEngine}
#: Values of ``--strategy``: an engine, or ``"auto"`` (the faster of the two in a trial on the device).
STRATEGIES: tuple[str, ...] = ("auto", *ENGINES)


# --------------------------------------------------------------------------- chunks and memory


def members_that_fit(spec: SweepSpec, device: torch.device) -> int | None:
    """On CUDA, how many members fit in the free memory: a trial step with 1 and with 2 members gives
    the fixed and the per-member peak memory; 90% of the free memory is used.  ``None`` elsewhere."""
    if device.type != "cuda":
        return None
    cfgs = spec.member_configs()[:2]
    if len(cfgs) < 2:
        return None
    peaks = []
    for n in (1, 2):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        eng = StackedEngine([Member(c.resolved()) for c in cfgs[:n]], device, Path("."))
        eng._compiled = None  # eager: the memory of the step's tensors, without compiling twice
        data = next(iter(eng.groups.values()))["train"]
        loss, _ = eng._forward(data.x[: spec.base.batch_size], data.y[: spec.base.batch_size])
        loss.sum().backward()
        eng._sgd(torch.tensor([c.lr for c in cfgs[:n]], device=device),
                 torch.tensor([c.weight_decay for c in cfgs[:n]], device=device), None)
        torch.cuda.synchronize(device)
        peaks.append(torch.cuda.max_memory_allocated(device) - base)
        del eng, loss, data
    torch.cuda.empty_cache()
    per_member = max(peaks[1] - peaks[0], 1)
    fixed = max(peaks[0] - per_member, 0)
    free, _ = torch.cuda.mem_get_info(device)
    return max(int((0.9 * free - fixed) // per_member), 0)


def cpu_members_that_fit(spec: SweepSpec, device: torch.device) -> tuple[int, int, int] | None:
    """On the CPU, ``(members that fit, bytes per member, bytes available)``; ``None`` elsewhere or when
    the available memory cannot be read.

    One member's training step is estimated by :func:`empirical.memory.member_training_bytes` as a member
    of the stacked engine's vmapped step (``stacked=True``; an interleaved chunk holds one step's
    activations at a time on the CPU, so this bound is conservative for it); every seed's data set and,
    with one seed, the shared batch are fixed; 80% of :func:`empirical.memory.available_bytes` is used
    (the rest of the process, the estimate's margin).  The data set and the model built here are freed
    before training starts.
    """
    if device.type != "cpu":
        return None
    available = memory.available_bytes(device)
    if available is None:
        return None
    cfg = spec.member_configs()[0].resolved()
    with torch.random.fork_rng(devices=[]):  # the members' seeding is the engine's, untouched here
        seed_everything(cfg.seed)
        train_set, test_set = load_data(cfg, device)
        # first on the meta device (no memory): parameters, gradients and momentum alone may not fit, and
        # the estimate below runs one real forward pass
        with torch.device("meta"):
            meta = build_train_model(cfg, train_set, torch.device("meta"), channels_last_ok=False)[0]
        n_params = sum(p.nelement() * p.element_size() for p in meta.parameters())
        lower = n_params * (3 if cfg.momentum else 2)
        if memory.members_that_fit(lower, available) < 1:
            return 0, lower, available
        model = build_train_model(cfg, train_set, device, channels_last_ok=False)[0]
        x, y = train_set.x[: cfg.batch_size], train_set.y[: cfg.batch_size]
        est = memory.member_training_bytes(model, x, y, loss=cfg.loss, num_classes=int(train_set.num_classes),
                                           momentum=cfg.momentum,
                                           autocast=torch.bfloat16 if uses_bf16(cfg, device) else None, stacked=True)
    shared = len(spec.seeds) == 1  # one seed: the members share each batch (StackedEngine.shared_batches)
    data = sum(t.nelement() * t.element_size() for d in (train_set, test_set) if d is not None for t in (d.x, d.y))
    per_member = est.total - (est.batch if shared else 0)
    fixed = data * len(spec.seeds) + (est.batch if shared else 0)
    return memory.members_that_fit(per_member, available, fixed=fixed), per_member, available


def chunk_size(spec: SweepSpec, device: torch.device) -> int:
    """Members per chunk: ``max_members_per_chunk``, else all, checked against :func:`members_that_fit` on
    CUDA and :func:`cpu_members_that_fit` on the CPU (a one-line ``ValueError`` when too many are asked for)."""
    total = len(spec.lrs) * len(spec.weight_decays) * len(spec.seeds)
    want = spec.max_members_per_chunk or total
    cpu = cpu_members_that_fit(spec, device)
    if cpu is not None:
        fit_n, per_member, available = cpu
        mib = 1 << 20
        if fit_n < 1:
            raise ValueError(f"not even one sweep member (~{per_member / mib:.0f} MiB) fits in the "
                             f"{available / mib:.0f} MiB available on {device}")
        if spec.max_members_per_chunk is not None and want > fit_n:
            raise ValueError(f"--max-members-per-chunk {want} is too many: at most {fit_n} members of "
                             f"~{per_member / mib:.0f} MiB fit in {available / mib:.0f} MiB available on {device}")
        return min(want, total, fit_n)
    fit_n = members_that_fit(spec, device)
    if fit_n is not None and fit_n < 1:
        raise ValueError(f"not even one sweep member fits in the free memory of {device}")
    if fit_n is not None and spec.max_members_per_chunk is not None and want > fit_n:
        raise ValueError(f"--max-members-per-chunk {want} is too many for the memory of {device}: "
                         f"at most {fit_n} members fit")
    return min(want, total, fit_n or total)


#: Steps timed per round of the ``"auto"`` trial, rounds, and untimed warm-up steps before them (on CUDA 3:
#: the first call compiles, the next ones record the CUDA graphs).  On 2 CPU cores a ResNet18 step of 4
#: members takes ~0.7-1 s, so the trial of both strategies costs ~10 s there, against hours of training.
TRIAL_STEPS, TRIAL_ROUNDS = 3, 2
TRIAL_WARM_UP = {"cuda": 3}
#: A candidate whose first round is this much slower than the best strategy timed before it stops there.
TRIAL_CUT = 1.5


def trial_seconds_per_step(strategy: str, cfgs: list[TrainConfig], device: torch.device,
                           stop_above: float = math.inf) -> float:
    """Seconds per training step of all ``cfgs`` trained together by ``strategy``'s engine: the best of
    :data:`TRIAL_ROUNDS` rounds of up to :data:`TRIAL_STEPS` steps, after untimed warm-up steps
    (:data:`TRIAL_WARM_UP`: compilation, CUDA graphs, cuDNN autotuning, first allocations); the rounds stop
    early once the best is above ``stop_above`` (clearly slower than a strategy already timed).  Throwaway
    members and engine: nothing is written."""
    engine = ENGINES[strategy]([Member(c) for c in cfgs], device, Path("."))
    lrs = [c.lr for c in cfgs]
    engine.train_one_epoch(lrs, max_steps=TRIAL_WARM_UP.get(device.type, 1))
    best = math.inf
    for _ in range(TRIAL_ROUNDS):
        t0 = timing.start(device)
        _, steps = engine.train_one_epoch(lrs, max_steps=TRIAL_STEPS)
        best = min(best, timing.stop(device, t0) / max(steps, 1))
        if best > stop_above:
            break
    engine.close()
    del engine
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return best


def candidate_strategies(cfgs: list[TrainConfig], device: torch.device) -> list[str]:
    """The strategies ``"auto"`` times: stacked and interleaved; on the CPU also threaded, when more than one
    member fits on the cores at the run's thread count (:func:`cpu_workers`)."""
    names = ["interleaved", "stacked"]
    if device.type == "cpu" and cpu_workers(cfgs[0], len(cfgs)) > 1:
        names.insert(1, "threaded")
    return names


def choose_strategy(requested: str, cfgs: list[TrainConfig], device: torch.device) -> tuple[str, dict[str, Any]]:
    """The strategy a chunk of ``cfgs`` trains with, and what was measured to choose it.

    A named strategy is taken as given.  ``"auto"`` times a few steps of each of :func:`candidate_strategies`
    on this device (:func:`trial_seconds_per_step`) and takes the fastest: which one wins depends on the
    model and the device (on 2 idle CPU cores, one thread per member: for 4 digits MLPs interleaved, by a few
    percent; for 4 ResNet18s threaded, whose training ran 1.9x faster than 4 single runs, while stacked,
    whose convolutions ``vmap`` turns into grouped ones, ran 0.7x as fast).  A strategy whose trial fails is
    skipped with a warning.  One member: ``"interleaved"`` (a single run).
    """
    check_strategy(requested)
    if requested == "threaded":
        ThreadedEngine.worker_count([Member(cfgs[0])], device)  # CPU only: a one-line error elsewhere
    if requested != "auto":
        return requested, {"requested": requested}
    if len(cfgs) == 1:
        return "interleaved", {"requested": "auto", "reason": "one member per chunk: trained as a single run"}
    per_step: dict[str, float | None] = {}
    errors: dict[str, str] = {}
    for name in candidate_strategies(cfgs, device):
        timed_so_far = [t for t in per_step.values() if t is not None]
        # a candidate 1.5x slower than the best so far after one round gets no second round
        stop_above = TRIAL_CUT * min(timed_so_far) if timed_so_far else math.inf
        try:
            per_step[name] = trial_seconds_per_step(name, cfgs, device, stop_above)
        except Exception as exc:  # e.g. out of memory, or an engine the platform cannot run
            per_step[name] = None
            errors[name] = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
            warnings.warn(f"sweep strategy {name!r} failed its trial and is skipped: {errors[name]}", stacklevel=2)
    timed = {n: t for n, t in per_step.items() if t is not None}
    if not timed:
        raise RuntimeError(f"no sweep strategy could train these members on {device}: {errors}")
    chosen = min(timed, key=timed.get)
    return chosen, {"requested": "auto", "members": len(cfgs), "trial_seconds_per_step": per_step,
                    "trial_steps": TRIAL_STEPS, "trial_rounds": TRIAL_ROUNDS,
                    "trial_warm_up": TRIAL_WARM_UP.get(device.type, 1), "errors": errors or None}


# --------------------------------------------------------------------------- the sweep


def run_sweep(spec: SweepSpec | None, out: str | Path, *, resume: bool = False,
              overrides: dict[str, Any] | None = None, figures: bool = True, strategy: str | None = None) -> Path:
    """Train every member of ``spec`` into ``out`` and write ``out/sweep.json``; return ``out``.

    ``resume=True`` continues the sweep stored in ``out`` (``spec`` may be ``None``, or repeat the
    stored one: options that differ, other than :data:`empirical.config.RESUME_OVERRIDES`, are refused);
    ``strategy`` (``"stacked"`` / ``"interleaved"``) switches a resumed sweep's strategy (both engines
    read and write the same chunk checkpoints); ``None`` or ``"auto"`` keeps the stored one.
    Bad input raises ``ValueError`` / :class:`empirical.runs.RunError` before anything is written.
    """
    out = Path(out)
    sweep_file = out / SWEEP_FILE
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ValueError("a sweep trains its members in one process on one device; run it without torchrun")
    if resume:
        if not sweep_file.is_file():
            raise runs.RunError(f"cannot resume: {out} is not a sweep directory (no {SWEEP_FILE})")
        stored = SweepSpec.from_dict(json.loads(sweep_file.read_text())["spec"])
        overrides = {k: v for k, v in (overrides or {}).items() if k != "out"}
        refused = [k for k in changed_options(stored.base.to_dict(), overrides) if k not in RESUME_OVERRIDES]
        if spec is not None:
            given = {"lrs": spec.lrs, "weight_decays": spec.weight_decays, "seeds": spec.seeds}
            refused += changed_options({"lrs": stored.lrs, "weight_decays": stored.weight_decays, "seeds": stored.seeds}, given)
        if refused:
            raise ValueError(f"a resumed sweep keeps its stored configuration; changed option(s) {sorted(refused)} "
                             f"(only {list(RESUME_OVERRIDES)} may change)")
        stored.base = dataclasses.replace(stored.base, **{k: v for k, v in overrides.items() if k in RESUME_OVERRIDES})
        if strategy not in (None, "auto"):
            stored.strategy = check_strategy(strategy)
        spec = stored
    else:
        if spec is None:
            raise ValueError("a new sweep needs its members (lrs, weight decays, seeds)")
        spec = dataclasses.replace(spec, base=dataclasses.replace(spec.base, out=str(out)))
        if sweep_file.exists():
            raise runs.RunError(f"{out} already holds a sweep; pass --resume to continue it or choose another --out")
    spec.validate()
    cfgs = [c.resolved() for c in spec.member_configs()]
    base = spec.base.resolved()
    device = resolve_device(base.device)
    with torch_settings(base, device):
        size = spec.max_members_per_chunk if resume else chunk_size(spec, device)
        spec.max_members_per_chunk = size
        if not resume:
            # refuse before writing anything: unknown dataset / model / arguments, missing files
            seed_everything(base.seed)
            build_train_model(base, load_data(base, device)[0], device, channels_last_ok=False)
            for c in cfgs:
                if (Path(c.out) / runs.METRICS_FILE).exists() or runs.checkpoint_path(Path(c.out)).exists():
                    raise runs.RunError(f"member directory {c.out} already holds a run; choose another --out")
            spec.strategy, spec.strategy_trial = choose_strategy(spec.strategy, cfgs[:size], device)
            out.mkdir(parents=True, exist_ok=True)
            write_sweep_file(out, spec, cfgs, status="running")
        outcome: dict[str, dict[str, Any]] = {}
        for i in range(0, len(cfgs), size):
            outcome.update(_train_chunk(cfgs[i: i + size], device, out / CHUNKS_DIR / f"{i // size:02d}", resume,
                                        spec.strategy))
    summary = write_sweep_file(out, spec, cfgs, status="finished", outcome=outcome)
    if figures:
        draw_sweep(out, summary)
        from .plot import plot_run

        for member in summary["members"]:
            if member["last_measured_epoch"] is not None:
                plot_run(out / member["run_dir"])
    return out


def _train_chunk(cfgs: list[TrainConfig], device: torch.device, chunk_dir: Path, resume: bool,
                 strategy: str) -> dict[str, dict[str, Any]]:
    """Train one chunk of members together with ``strategy``'s engine (resumed from its checkpoint);
    ``{member name: {"epoch", "stopped"}}``."""
    members = [Member(c) for c in cfgs]
    engine = ENGINES[strategy](members, device, chunk_dir)
    if isinstance(engine, InterleavedEngine):
        layout = {"channels_last": engine.channels_last, "sgd": engine.engines[0].sgd}
    else:
        layout = {"channels_last": False, "sgd": "stacked"}
    environment = {**runs.environment_info(str(device)), "world_size": 1, "amp_bf16": engine.use_amp,
                   "compile_mode": engine.compile_mode, **layout, "measure_precision": engine.measure_precision,
                   "sweep_members": len(cfgs), "sweep_strategy": strategy}
    for m in members:  # a member directory not yet created (the kill came before it) starts new
        start_run_dir(m, resume and (m.run_dir / runs.CONFIG_FILE).is_file(), environment)
    if resume and runs.checkpoint_path(chunk_dir).is_file():
        engine.load_checkpoint(runs.load_checkpoint(chunk_dir, map_location="cpu"))
    if resume:  # epochs measured after the checkpoint (or before the first one) were timed too
        for m in members:
            m.state.clock.catch_up(runs.read_metrics(m.run_dir))
    try:
        fit(engine, f"sweep {chunk_dir.name}")
    finally:
        engine.close()
        engine.writer.wait()  # the last checkpoint is on disk before the chunk returns or raises
    return {m.run_dir.name: {"epoch": m.state.epoch, "stopped": m.stopped} for m in members}


def select_lr(members: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The learning rate with the highest final test accuracy (mean over its members with a test error;
    ties: the smaller lr), as the paper selected (math §7.1); ``None`` when no member has a test error."""
    by_lr: dict[float, list[float]] = {}
    for m in members:
        if m.get("final_test_error") is not None and m["status"] == "finished":
            by_lr.setdefault(m["lr"], []).append(1.0 - m["final_test_error"])
    if not by_lr:
        return None
    acc = {lr: sum(v) / len(v) for lr, v in by_lr.items()}
    best = max(sorted(acc), key=lambda lr: acc[lr])
    return {"lr": best, "final_test_accuracy": acc[best], "members": len(by_lr[best]),
            "criterion": "final test accuracy (mean over the lr's members)"}


def write_sweep_file(out: Path, spec: SweepSpec, cfgs: list[TrainConfig], status: str,
                     outcome: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """``out/sweep.json``: the spec, each member's status and final errors, and the selected lr (atomic).

    ``outcome`` maps a member's directory name to ``{"epoch", "stopped"}`` after training: a member is
    ``"finished"`` when it trained every epoch, ``"diverged"`` when its loss became non-finite
    (``stopped`` holds the message), else ``status``.
    """
    outcome = outcome or {}
    members = []
    for c in cfgs:
        run_dir = Path(c.out)
        recs = runs.read_metrics(run_dir) if (run_dir / runs.METRICS_FILE).is_file() else []
        last = recs[-1] if recs else {}
        o = outcome.get(run_dir.name, {})
        state = ("diverged" if o.get("stopped") else "finished" if o.get("epoch") == c.epochs else status)
        members.append({
            "run_dir": run_dir.name, "lr": c.lr, "weight_decay": c.weight_decay, "seed": c.seed, "status": state,
            "last_measured_epoch": last.get("epoch"), "final_train_error": last.get("train_error"),
            "final_test_error": last.get("test_error"), "stopped": o.get("stopped"),
        })
    summary = {"status": status, "dataset": spec.base.dataset, "model": spec.base.model, "epochs": spec.base.epochs,
               "strategy": spec.strategy, "spec": spec.to_dict(), "members": members, "selected": select_lr(members)}
    runs.atomic_write_bytes(out / SWEEP_FILE, (runs.json_line(summary) + "\n").encode())
    return summary


def draw_sweep(out: Path, summary: dict[str, Any]) -> Path:
    """``out/accuracy_vs_lr.png``: final train and test accuracy against the learning rate (log axis),
    one line per (weight decay, seed), the selected lr marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    groups: dict[tuple, list] = {}
    for m in summary["members"]:
        groups.setdefault((m["weight_decay"], m["seed"]), []).append(m)
    for (wd, seed), ms in sorted(groups.items()):
        ms = sorted(ms, key=lambda m: m["lr"])
        for key, style, label in (("final_test_error", "-o", "test"), ("final_train_error", "--.", "train")):
            pts = [(m["lr"], 1 - m[key]) for m in ms if m[key] is not None and m["status"] == "finished"]
            if pts:
                ax.plot(*zip(*pts), style, label=f"{label}, wd {wd:g}, seed {seed}")
    sel = summary.get("selected")
    if sel:
        ax.axvline(sel["lr"], color="k", ls=":", label=f"selected lr {sel['lr']:.4g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("final accuracy")
    ax.set_title(f"{summary['dataset']} / {summary['model']}, {summary['epochs']} epochs")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / FIGURE_FILE
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
