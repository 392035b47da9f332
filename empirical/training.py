"""Train a network with the paper's protocol and measure neural collapse as it trains (math §7.1, §8).

SGD (momentum 0.9, weight decay 5e-4), batch 128, ``nn.MSELoss()`` against one-hot targets, learning rate
divided by 10 at ``epochs // 3`` and ``2 * epochs // 3`` (:func:`empirical.schedule.lr_at`); measurement
(:mod:`empirical.measurement`) in eval mode at the notebook's log-spaced epochs, plus epoch 0 and the last.

:class:`Member` is one run directory and :func:`measure_member` the one place a ``metrics.jsonl`` record is
made; :class:`Engine` is the interface :func:`fit` drives, implemented by :class:`SingleEngine` (one model)
and :class:`empirical.sweep.InterleavedEngine` (K models at once); :func:`train` is the single run.
``metrics.jsonl`` is flushed per measured epoch and checkpoints are written every ``checkpoint_every_s``
seconds, so a kill loses nothing measured; a resumed run retrains from its last checkpoint and skips the
epochs already logged.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np
import torch

import theory

from . import runs, timing
from .config import PRESETS, RESUME_OVERRIDES, TrainConfig, changed_options  # noqa: F401 (PRESETS: re-export)
from .distributed import DistInfo, all_reduce_sum, barrier, broadcast_object, init_from_env, shard, shutdown
from .layers import LayerTap
from .measurement import METRIC_KEYS, measure, resolve_precision
from .models import FeatureClassifier, takes_sample_indices
from .schedule import lr_at
from .state import RunState
from .step import TrainStep, make_optimizer, resolve_channels_last, resolve_compile, set_optimizer_implementation

#: Order of the measured keys in a ``metrics.jsonl`` record (the test error next to the training error).
RECORD_ORDER: tuple[str, ...] = ("train_error", "test_error") + tuple(k for k in METRIC_KEYS if k != "train_error")

#: Wall-clock keys of a ``metrics.jsonl`` record (they differ between otherwise identical runs).
TIMING_KEYS: tuple[str, ...] = ("time_s", "train_time_s", "epoch_time_s", "measure_time_total_s", "measure_time_s")


class NonFiniteLossError(RuntimeError):
    """The training loss (or the eval-mode outputs) became NaN or Inf; measured epochs are kept."""


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when present, else CPU; otherwise ``torch.device(name)``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {name!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return dev


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch, NumPy and Python; return the batch-order generator."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    return torch.Generator().manual_seed(seed)


def load_data(cfg: TrainConfig, device: torch.device):
    """``(train, test or None)`` on ``device``, checked: every class present, at least one step per epoch."""
    from .data import index_dataset, load_train_test

    sample_indices = takes_sample_indices(cfg.model)
    try:
        train_set, test_set = load_train_test(
            cfg.dataset, data_root=cfg.data_root, per_class=cfg.per_class, seed=cfg.seed, device=device,
            image_size=cfg.image_size, with_test=cfg.measure_test and not sample_indices, **cfg.data_kwargs,
        )
    except TypeError as exc:
        raise ValueError(
            f"bad --data-arg / data_kwargs {sorted(cfg.data_kwargs)} for dataset {cfg.dataset!r}: {exc}"
        ) from None
    if sample_indices:  # the UFM's input is the sample's index: the same samples, labels and batches, no test set
        train_set, test_set = index_dataset(train_set), None
    check_all_classes_present(train_set.y, int(train_set.num_classes))
    if cfg.drop_last and len(train_set.y) < cfg.batch_size:
        raise ValueError(
            f"batch_size {cfg.batch_size} exceeds the {len(train_set.y)} training samples and the incomplete "
            "last batch is skipped, so an epoch would make no step: lower --batch-size or pass --keep-last-batch"
        )
    return train_set, (test_set if cfg.measure_test else None)


def check_all_classes_present(y: torch.Tensor, num_classes: int) -> None:
    """Every class must have a training sample (else the NC statistics are undefined)."""
    if y.numel() == 0:
        raise ValueError("the training set is empty")
    from .data.transforms import class_counts

    empty = np.flatnonzero(class_counts(y.cpu().numpy(), num_classes) == 0).tolist()
    if empty:
        raise ValueError(f"empty class: no training samples for class(es) {empty}")


def build_train_model(cfg: TrainConfig, train_set, device: torch.device,
                      channels_last_ok: bool = True) -> tuple[FeatureClassifier, bool]:
    """``(model, channels_last)``: the run's network for ``train_set`` on ``device``, channels-last when
    :func:`empirical.step.resolve_channels_last` picks it."""
    from .models import build_model

    try:
        model = build_model(cfg.model, in_channels=int(train_set.channels), num_classes=int(train_set.num_classes),
                            input_shape=tuple(train_set.x.shape[1:]), num_samples=len(train_set.y),
                            **cfg.model_kwargs).to(device)
    except TypeError as exc:
        raise ValueError(
            f"bad --model-arg / model_kwargs {sorted(cfg.model_kwargs)} for model {cfg.model!r}: {exc}"
        ) from None
    channels_last = channels_last_ok and resolve_channels_last(cfg.channels_last, device, model)
    if channels_last:
        # Module.to takes memory_format (torch's documentation); its typed overloads leave it out
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model, channels_last


def uses_bf16(cfg: TrainConfig, device: torch.device) -> bool:
    """``amp="bf16"``, or ``"auto"`` on CUDA except for the UFM (bf16 would round its features)."""
    return cfg.amp == "bf16" or (cfg.amp == "auto" and device.type == "cuda" and not takes_sample_indices(cfg.model))


def weight_penalty(params: Sequence[torch.Tensor], weight_decay: float) -> torch.Tensor:
    """``(wd / 2) sum ||theta||^2`` (float64), the penalty SGD's weight decay differentiates (math §1)."""
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    return theory.ridge_penalty(flat, lam=weight_decay)


@dataclass
class Member:
    """One run directory being trained: a single run, or one member of a sweep."""

    cfg: TrainConfig
    state: RunState = field(default_factory=RunState)
    done: set[int] = field(default_factory=set)  # epochs already in metrics.jsonl
    stopped: str | None = None  # why training stopped early (a non-finite loss)
    is_main: bool = True

    @property
    def run_dir(self) -> Path:
        return Path(self.cfg.out)

    def write(self, record: dict[str, Any], writer: runs.CheckpointWriter | None = None) -> None:
        """Append ``record`` to ``metrics.jsonl`` (flushed here; fsync'd by ``writer``'s thread when given)."""
        if self.is_main:
            runs.append_jsonl(self.run_dir / runs.METRICS_FILE, record, writer)
        self.done.add(int(record["epoch"]))

    def stop(self, what: str, lr: float) -> None:
        """Stop training this member: ``what`` became non-finite (the reason :func:`train` raises)."""
        self.stopped = (f"non-finite {what}, by step {self.state.step}, lr {lr:g}; training stopped. "
                        f"{len(self.done)} measured epoch(s) are kept in {self.run_dir / runs.METRICS_FILE}")


class Progress:
    """A tqdm bar on a terminal; otherwise one line per measurement on stderr."""

    def __init__(self, name: str, total: int, initial: int, enabled: bool):
        self.total, self.bar = total, None
        self.plain = enabled and not sys.stderr.isatty()
        if enabled and not self.plain:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=name, unit="ep")

    def epoch(self, loss: float, error: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4g}", acc=f"{1 - error:.4f}")

    def measured(self, name: str, rec: dict[str, Any]) -> None:
        if self.plain:
            test = rec.get("test_error")
            print(f"{name}: epoch {rec['epoch']}/{self.total} train_error {rec.get('train_error'):.4g}"
                  + ("" if test is None else f" test_error {test:.4g}")
                  + f" nc1 {rec.get('nc1') if rec.get('nc1') is None else format(rec['nc1'], '.4g')}"
                  + f" time {rec['time_s']:.1f}s", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _resolved(epochs: list[int] | None) -> list[int]:
    """``lr_milestones`` / ``measure_epochs`` of a resolved config."""
    if epochs is None:
        raise ValueError("the config is not resolved: TrainConfig.resolved() fills lr_milestones and measure_epochs")
    return epochs


def measure_member(engine: Engine, k: int, epoch: int, running: dict[str, Any], progress: Progress) -> None:
    """Measure member ``k`` at ``epoch`` if scheduled and not logged yet, and append the record.

    Non-finite eval-mode features: no record, and the member stops (``member.stopped``)."""
    m = engine.members[k]
    if epoch not in _resolved(m.cfg.measure_epochs) or epoch in m.done:
        return
    model, (train_set, test_set) = engine.model_of(k), engine.data_of(k)
    lr = running.get("lr", m.cfg.lr)
    t0 = timing.start(engine.device)
    try:
        res = measure(model, train_set.x, train_set.y, int(train_set.num_classes),
                      weight_decay=m.cfg.weight_decay, loss_reduction="mean",
                      test_x=None if test_set is None else test_set.x, test_y=None if test_set is None else test_set.y,
                      batch_size=m.cfg.eval_batch_size, info=engine.info, precision=engine.measure_precision,
                      layers=layer_tap(m.cfg, model), tile=m.cfg.tile)
    except theory.NonFiniteError as exc:
        # e.g. BatchNorm's running statistics blew up at a high learning rate: the run has diverged
        m.stop(f"network outputs in the eval-mode measurement of epoch {epoch} ({exc})", lr)
        return
    finally:
        m.state.clock.measure_s += timing.stop(engine.device, t0)
    rec = {"epoch": epoch, "step": m.state.step, "lr": lr, "lr_weighted_steps": m.state.lr_weighted_steps,
           "time_s": m.state.elapsed(), **m.state.clock.record()}
    rec.update({key: res[key] for key in RECORD_ORDER if key in res})
    rec.update(running)
    rec.update({key: v for key, v in res.items() if key not in rec})
    m.write(rec, engine.writer)
    progress.measured(m.run_dir.name, rec)


def layer_tap(cfg: TrainConfig, model: torch.nn.Module) -> LayerTap | None:
    """The :class:`empirical.layers.LayerTap` of ``cfg.measure_layers`` (``None`` without layers)."""
    if not cfg.measure_layers:
        return None
    return LayerTap(model, cfg.measure_layers, reduce=cfg.layer_reduce, ridge=cfg.layer_ridge)


def layers_entry(cfg: TrainConfig, model: torch.nn.Module, sample: torch.Tensor) -> dict[str, Any] | None:
    """``config.json``'s ``layers`` entry, after one forward on ``sample`` has checked every named module
    (a one-line ``ValueError`` before anything is written); ``None`` without layers."""
    tap = layer_tap(cfg, model)
    if tap is None:
        return None
    tap.check(model, sample)
    return {"names": tap.names, "rule": cfg.measure_layers, "reduce": tap.reduce, "ridge": tap.ridge}


def keep_weights(engine: Engine, k: int, epoch: int) -> None:
    """Save member ``k``'s weights as ``checkpoints/epoch-EEEE.pt`` if ``keep_checkpoints`` asks for ``epoch``."""
    m = engine.members[k]
    if m.is_main and epoch in m.cfg.kept_epochs():
        engine.writer.submit([(runs.kept_checkpoint_path(m.run_dir, epoch),
                               runs.checkpoint_bytes({"epoch": epoch, "model": engine.model_of(k).state_dict()}))])


@runtime_checkable
class Engine(Protocol):
    """The interface :func:`fit` drives: :class:`SingleEngine` and :class:`empirical.sweep.InterleavedEngine`.

    ``model_of(k)`` / ``data_of(k)``: member ``k``'s module and ``(train, test or None)``;
    ``train_one_epoch(lrs)`` returns ``((K, 3) float64 [loss sum, wrong, seen], steps)`` on the device;
    ``weight_penalties()``: each member's ``(wd/2)||theta||^2`` (math §1); ``save_checkpoint()`` hands the
    snapshots to ``writer`` (a background thread); ``load_checkpoint(ckpt)`` restores them on resume.
    """

    members: list[Member]
    device: torch.device
    info: DistInfo
    measure_precision: str | None
    writer: runs.CheckpointWriter

    def model_of(self, k: int) -> FeatureClassifier: ...

    def data_of(self, k: int) -> tuple[Any, Any]: ...

    def train_one_epoch(self, lrs: list[float]) -> tuple[torch.Tensor, int]: ...

    def weight_penalties(self) -> list[float]: ...

    def save_checkpoint(self) -> None: ...

    def load_checkpoint(self, ckpt: dict[str, Any]) -> None: ...


class SingleEngine:
    """One model (optionally data-parallel): the :class:`Engine` of :func:`train`.

    ``data`` / ``generator`` given: shared with the other members of a sweep instead of loaded / seeded here.
    """

    def __init__(self, member: Member, device: torch.device, info: DistInfo, *,
                 data: tuple | None = None, generator: torch.Generator | None = None):
        cfg = member.cfg
        self.members, self.device, self.info = [member], device, info
        self.writer = runs.CheckpointWriter()
        seeded = seed_everything(cfg.seed)  # the initial weights depend only on the seed
        self.generator = seeded if generator is None else generator
        self.train_set, self.test_set = load_data(cfg, device) if data is None else data
        self.num_classes = int(self.train_set.num_classes)
        self.model, channels_last = build_train_model(cfg, self.train_set, device)
        self.net: torch.nn.Module = self.model
        if info.enabled:
            if device.type == "cuda":  # converts the BatchNorm layers in place: the same network
                self.model = cast(FeatureClassifier, torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model))
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer, self.sgd = make_optimizer(self.params, lr=cfg.lr, momentum=cfg.momentum,
                                                  weight_decay=cfg.weight_decay, device=device)
        self.use_amp = uses_bf16(cfg, device)
        autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if self.use_amp else nullcontext
        # the UFM's step is a gather and two small matmuls: "auto" keeps it eager (compiling gains nothing)
        tiny = cfg.compile == "auto" and takes_sample_indices(cfg.model)
        self.compile_mode = "none" if tiny else resolve_compile(cfg.compile, device, distributed=info.enabled,
                                                                deterministic=cfg.deterministic)
        self.channels_last = channels_last
        self.measure_precision = resolve_precision(cfg.measure_precision, device)
        self.step = TrainStep(self.net, self.optimizer, self.num_classes, cfg.loss, autocast=autocast,
                              channels_last=channels_last, compile_mode=self.compile_mode, model=self.model,
                              mse_scale=cfg.mse_scale)
        self.start_epoch(cfg.lr)  # train mode and zero running sums: train_batch works before any epoch starts

    def environment(self) -> dict[str, Any]:
        return {"world_size": self.info.world_size, "amp_bf16": self.use_amp, "compile_mode": self.compile_mode,
                "channels_last": self.channels_last, "sgd": self.sgd, "measure_precision": self.measure_precision}

    def model_of(self, k: int) -> FeatureClassifier:
        return self.model

    def data_of(self, k: int):
        return self.train_set, self.test_set

    def start_epoch(self, lr: float) -> None:
        """Set the learning rate and train mode; zero this epoch's running sums (``loss_sum``, ``wrong``)."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.net.train()
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        self.wrong = torch.zeros((), dtype=torch.int64, device=self.device)

    def train_batch(self, xb: torch.Tensor, yb: torch.Tensor, scale: float | None = None) -> None:
        """One SGD step on a batch, added to the running sums (no host synchronisation)."""
        loss, wrong_b = self.step(xb, yb, scale)
        with torch.no_grad():
            self.loss_sum += loss.double() * yb.shape[0]
            self.wrong += wrong_b

    def train_one_epoch(self, lrs: list[float]) -> tuple[torch.Tensor, int]:
        """One epoch of SGD at ``lrs[0]``; returns ``((1, 3) float64 [loss sum, wrong, seen] over ranks, steps)``."""
        from .data import batches

        cfg, info = self.members[0].cfg, self.info
        self.start_epoch(lrs[0])
        seen = steps = 0
        for xb, yb in batches(self.train_set, cfg.batch_size, shuffle=True, generator=self.generator,
                              drop_last=cfg.drop_last):
            global_b = int(yb.shape[0])  # shapes are host values: no synchronisation in the step
            xb, yb = shard(xb, info), shard(yb, info)
            # each rank's mean is reweighted so DDP's gradient average is the global-batch mean
            scale = yb.shape[0] * info.world_size / global_b if info.enabled else None
            self.train_batch(xb, yb, scale)
            steps += 1
            seen += int(yb.shape[0])
        seen_t = torch.tensor(float(seen), dtype=torch.float64, device=self.device)
        return all_reduce_sum(torch.stack([self.loss_sum, self.wrong.double(), seen_t]), info)[None], steps

    def weight_penalties(self) -> list[float]:
        """``(wd/2)||theta||^2`` at the end of the epoch, the penalty part of the running objective."""
        with torch.no_grad():
            return [float(weight_penalty(self.params, self.members[0].cfg.weight_decay))]

    def checkpoint_state(self) -> dict[str, Any]:
        """The checkpoint: run state, model and optimiser (the format of ``checkpoints/last.pt``)."""
        return {**self.members[0].state.to_dict(self.generator),
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def save_checkpoint(self) -> None:
        m = self.members[0]
        if m.is_main and m.stopped is None:
            runs.save_checkpoint(m.run_dir, self.checkpoint_state(), self.writer)

    def load_checkpoint(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        set_optimizer_implementation(self.optimizer, self.sgd)
        self.members[0].state = RunState.from_dict(ckpt, self.generator)


def fit(engine: Engine, name: str) -> None:
    """The epoch loop of single runs and sweeps: train, measure when scheduled, checkpoint by time / epochs.

    Members share the epoch count and schedule, each at its own learning rate; a member whose running loss
    is not finite stops alone (``member.stopped``).
    """
    members, device = engine.members, engine.device
    cfg = members[0].cfg
    start = max(m.state.epoch for m in members)  # members that stopped early stay behind
    progress = Progress(name, cfg.epochs, start, cfg.progress and engine.info.is_main)
    if start == 0:
        for k in range(len(members)):
            measure_member(engine, k, 0, {"train_loss_running": None, "train_error_running": None}, progress)
            keep_weights(engine, k, 0)
    last_save, saved_at = time.perf_counter(), start
    for epoch in range(start + 1, cfg.epochs + 1):
        active = [k for k, m in enumerate(members) if m.stopped is None]
        if not active:
            break
        lrs = [lr_at(epoch, m.cfg.lr, _resolved(m.cfg.lr_milestones), m.cfg.lr_gamma) for m in members]
        t0 = timing.start(device)
        stats, steps = engine.train_one_epoch(lrs)
        penalties = engine.weight_penalties()
        rows = stats.tolist()  # the epoch's one host synchronisation
        epoch_s = timing.stop(device, t0)
        for k in active:
            m, (loss_sum, wrong, seen) = members[k], rows[k]
            m.state.advance(steps, lrs[k], epoch_s)
            running = {"lr": lrs[k], "train_loss_running": loss_sum / seen + penalties[k],
                       "train_error_running": wrong / seen}
            if not math.isfinite(running["train_loss_running"]):
                m.stop(f"training loss in epoch {epoch}", lrs[k])
                continue
            if k == active[0]:
                progress.epoch(running["train_loss_running"], running["train_error_running"])
            measure_member(engine, k, epoch, running, progress)
            keep_weights(engine, k, epoch)
        every = cfg.checkpoint_every
        if (epoch == cfg.epochs or (every and epoch % every == 0)
                or (cfg.checkpoint_every_s and time.perf_counter() - last_save >= cfg.checkpoint_every_s)):
            engine.save_checkpoint()
            last_save, saved_at = time.perf_counter(), epoch
    if saved_at != max(m.state.epoch for m in members):  # every member stopped early: keep where they are
        engine.save_checkpoint()
    progress.close()


def train(cfg: TrainConfig, *, resume: bool = False, overrides: dict[str, Any] | None = None) -> Path:
    """Train and measure; return the run directory ``cfg.out``.

    ``resume=True`` continues the run in ``cfg.out`` from ``checkpoints/last.pt`` with its stored
    configuration; ``overrides`` may change only the keys of :data:`RESUME_OVERRIDES`.  Raises
    ``ValueError`` / ``FileNotFoundError`` / :class:`empirical.runs.RunError` for bad input and
    :class:`NonFiniteLossError` when the loss diverges (measured epochs are kept).
    """
    run_dir = Path(cfg.out)
    ckpt = None
    if resume:
        cfg = resumed_config(run_dir, overrides)
        if runs.checkpoint_path(run_dir).is_file():
            # read first: a refused checkpoint stops the run before anything is written; on the CPU: RNG states
            # must stay CPU byte tensors
            ckpt = runs.load_checkpoint(run_dir, map_location="cpu")
    cfg = cfg.resolved()
    device = resolve_device(cfg.device)
    info = init_from_env(device.type)
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
    with torch_settings(cfg, device):
        try:
            member = Member(cfg, is_main=info.is_main)
            engine = SingleEngine(member, device, info)
            problem = None
            layers = layers_entry(cfg, engine.model, engine.train_set.x[:2])
            if info.is_main:
                try:
                    start_run_dir(member, resume, {**runs.environment_info(str(device)), **engine.environment()},
                                  layers)
                except runs.RunError as exc:
                    problem = str(exc)
            problem = broadcast_object(problem, info)  # every rank stops, none waits in a collective
            if problem is not None:
                raise runs.RunError(problem)
            if resume:
                member.done = broadcast_object(member.done, info)
                if ckpt is not None:
                    engine.load_checkpoint(ckpt)
                if info.is_main:  # epochs measured after the checkpoint were timed too
                    member.state.clock.catch_up(runs.read_metrics(run_dir))
            try:
                fit(engine, run_dir.name)
            finally:
                engine.writer.wait()  # the last checkpoint is on disk before the run returns or raises
            barrier(info)  # ranks leave together: none tears down the process group under another
        finally:
            shutdown(info)
    if member.stopped:
        raise NonFiniteLossError(member.stopped)
    return run_dir


def resumed_config(run_dir: Path, overrides: dict[str, Any] | None) -> TrainConfig:
    """The stored configuration of ``run_dir`` with ``overrides``; only :data:`RESUME_OVERRIDES` may change."""
    stored = runs.read_config(run_dir)["config"]
    given = {k: v for k, v in (overrides or {}).items() if k != "out"}
    refused = [k for k in changed_options(stored, given) if k not in RESUME_OVERRIDES]
    if refused:
        raise ValueError(f"a resumed run keeps its stored configuration; changed option(s) {refused} "
                         f"(only {list(RESUME_OVERRIDES)} may change)")
    stored.update({k: v for k, v in given.items() if k in RESUME_OVERRIDES}, out=str(run_dir))
    return TrainConfig.from_dict(stored)


def start_run_dir(member: Member, resume: bool, environment: dict[str, Any],
                  layers: dict[str, Any] | None = None) -> None:
    """Create a new run directory (``config.json``) or read back a resumed one's measured epochs."""
    runs.prepare_run_dir(member.run_dir, resume=resume)
    if resume:
        member.done = runs.measured_epochs(runs.repair_metrics(member.run_dir))
    else:
        notes = member.cfg.notes()  # e.g. the UFM has no test set: said once, here
        runs.write_config(member.run_dir, {"config": member.cfg.to_dict(), "environment": environment,
                                           **({"notes": notes} if notes else {}),
                                           **({"layers": layers} if layers else {})})


@contextmanager
def torch_settings(cfg: TrainConfig, device: torch.device) -> Iterator[None]:
    """Set torch's threads / determinism / cuDNN flags for a run and restore them afterwards."""
    threads, det, warn, bench = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
                                 torch.is_deterministic_algorithms_warn_only_enabled(), torch.backends.cudnn.benchmark)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        # warn_only: some CUDA kernels (e.g. adaptive average pooling's backward) have no deterministic version
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed batch shapes: let cuDNN pick its fastest kernels
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(det, warn_only=warn)
        torch.backends.cudnn.benchmark = bench
        torch.set_num_threads(threads)
