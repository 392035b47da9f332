"""Train a network with the paper's protocol and measure neural collapse as it trains.

Protocol (math §7.1, §8): SGD with momentum 0.9 and weight decay 5e-4 on all parameters,
batch 128, ``nn.MSELoss()`` (mean over the batch and the ``C`` outputs) against one-hot
targets, learning rate divided by 10 at ``epochs // 3`` and ``2 * epochs // 3``
(``MultiStepLR`` stepped per epoch), measurement (:mod:`empirical.measure`) in eval mode at
the notebook's log-spaced epochs rescaled to the epoch count, plus epoch 0 and the last.

``train(cfg)`` reads top to bottom: set-up, data, model, optimiser, (resume), then the
epoch loop: train one epoch, step the schedule, measure if scheduled, checkpoint.
One JSON line per measured epoch goes to ``metrics.jsonl`` as soon as it is measured.
Mixed precision (bf16 autocast) is used for training on CUDA only; statistics are float64.

On CUDA the step is compiled (``compile="auto"``: ``torch.compile(mode="reduce-overhead")`` of
forward + loss + error count, replayed as CUDA graphs, :mod:`empirical.step`), the SGD update is
the fused kernel, and conv models run in channels-last layout; a failed compile falls back to
eager with a warning.  Every record also
carries the run's clock: ``train_time_s`` (training wall time so far, without measurement and
checkpoints), ``epoch_time_s`` (the last trained epoch's) and ``measure_time_total_s``
(measurement wall time so far); the device is synchronised only at epoch ends.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import theory

from . import runs, timing
from .distributed import DistInfo, all_reduce_sum, barrier, broadcast_object, init_from_env, shard, shutdown
from .measure import MEASURE_PRECISIONS, METRIC_KEYS, measure, resolve_precision
from .schedule import lr_milestones, measurement_epochs
from .step import TrainStep, check_options, make_optimizer, resolve_channels_last, resolve_compile
from .step import set_optimizer_implementation


#: Order of the measured keys in a ``metrics.jsonl`` record (after epoch, step, lr, ...): measure's keys,
#: with the test error next to the training error.
RECORD_ORDER: tuple[str, ...] = ("train_error", "test_error") + tuple(k for k in METRIC_KEYS if k != "train_error")

#: Options a resumed run may change; everything else comes from the run's stored ``config.json``.
RESUME_OVERRIDES: tuple[str, ...] = ("device", "progress", "num_threads")

#: Wall-clock keys of a ``metrics.jsonl`` record (they differ between otherwise identical runs).
TIMING_KEYS: tuple[str, ...] = ("time_s", "train_time_s", "epoch_time_s", "measure_time_total_s", "measure_time_s")


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or Inf; training stopped, measured epochs are kept."""


@dataclass
class TrainConfig:
    """Every option of a training run (JSON-serialisable; stored in ``config.json``).

    ``lr_milestones`` / ``measure_epochs`` left ``None`` take the paper's defaults for
    ``epochs`` (``[epochs//3, 2*epochs//3]``; the notebook's log-spaced list rescaled, with
    0 and ``epochs``).  ``amp="auto"`` means bf16 autocast on CUDA and none on CPU.
    ``model_kwargs`` go to :func:`empirical.models.build_model` (e.g. MLP widths),
    ``data_kwargs`` to :func:`empirical.data.load_train_test` (e.g. ``dim`` of ``gaussian``).
    ``compile`` (``"auto"``, ``"none"``, ``"default"``, ``"reduce-overhead"``,
    ``"max-autotune-no-cudagraphs"``) and ``channels_last`` (``"auto"``, ``"on"``, ``"off"``)
    choose the training step's fast path (:mod:`empirical.step`); ``"auto"`` compiles (CUDA
    graphs) on CUDA only (single process, not ``deterministic``) and uses channels-last for conv
    models on CUDA.
    The decomposition uses ``lam = theory.lam_from_weight_decay(weight_decay, reduction="mean",
    num_classes=C)`` (math §8 item 2, ``nn.MSELoss()``); with ``loss="ce"`` the same ``lam``
    is used, i.e. the CE-trained network's MSE loss is decomposed at the ridge MSE would have.
    """

    dataset: str = "digits"
    model: str = "mlp"
    out: str = "runs/default"
    per_class: int | None = None
    epochs: int = 350
    lr: float = 0.0184
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128
    drop_last: bool = True
    loss: str = "mse"
    lr_gamma: float = 0.1
    lr_milestones: list[int] | None = None
    measure_epochs: list[int] | None = None
    measure_test: bool = True
    eval_batch_size: int = 1024
    data_root: str | None = None
    image_size: int | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    data_kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    amp: str = "auto"
    compile: str = "auto"
    channels_last: str = "auto"
    measure_precision: str = "auto"
    checkpoint_every: int = 1
    num_threads: int | None = None
    progress: bool = True
    preset: str | None = None

    def __post_init__(self) -> None:
        # own copies: a preset's dicts are never shared (and so never mutated) by a config
        self.model_kwargs = dict(self.model_kwargs or {})
        self.data_kwargs = dict(self.data_kwargs or {})
        if self.lr_milestones is not None:
            self.lr_milestones = [int(m) for m in self.lr_milestones]
        if self.measure_epochs is not None:
            self.measure_epochs = [int(e) for e in self.measure_epochs]

    def resolved(self) -> "TrainConfig":
        """A copy with the schedule defaults filled in and the options validated."""
        cfg = dataclasses.replace(self, model_kwargs=dict(self.model_kwargs), data_kwargs=dict(self.data_kwargs))
        if cfg.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {cfg.epochs}")
        if cfg.batch_size < 1 or cfg.eval_batch_size < 1:
            raise ValueError("batch sizes must be >= 1")
        if not (cfg.lr > 0 and math.isfinite(cfg.lr)):
            raise ValueError(f"lr must be a positive finite number, got {cfg.lr}")
        if cfg.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {cfg.weight_decay}")
        if cfg.loss not in ("mse", "ce"):
            raise ValueError(f"unknown loss {cfg.loss!r}: expected 'mse' or 'ce'")
        if cfg.amp not in ("auto", "bf16", "none"):
            raise ValueError(f"unknown amp {cfg.amp!r}: expected 'auto', 'bf16' or 'none'")
        check_options(cfg.compile, cfg.channels_last)
        if cfg.measure_precision not in MEASURE_PRECISIONS:
            raise ValueError(f"unknown measure_precision {cfg.measure_precision!r}: "
                             f"expected one of {list(MEASURE_PRECISIONS)}")
        if cfg.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be >= 1, got {cfg.checkpoint_every}")
        if cfg.per_class is not None and cfg.per_class < 1:
            raise ValueError(f"per_class must be >= 1, got {cfg.per_class}")
        if cfg.lr_milestones is None:
            cfg.lr_milestones = lr_milestones(cfg.epochs)
        if cfg.measure_epochs is None:
            cfg.measure_epochs = measurement_epochs(cfg.epochs)
        cfg.measure_epochs = sorted({int(e) for e in cfg.measure_epochs})
        bad = [e for e in cfg.measure_epochs if e < 0 or e > cfg.epochs]
        if bad:
            raise ValueError(f"measure_epochs {bad} outside [0, {cfg.epochs}]")
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig option(s): {unknown}")
        return cls(**d)


# --------------------------------------------------------------------------- set-up helpers


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


def rng_states(generator: torch.Generator) -> dict[str, Any]:
    """Every random state a resumed run needs (torch, CUDA, NumPy, Python, batch order)."""
    states = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
        "batches": generator.get_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    generator.set_state(states["batches"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def load_data(cfg: TrainConfig, device: torch.device):
    """``(train, test or None)`` datasets on ``device`` via :func:`empirical.data.load_train_test`."""
    from .data import load_train_test

    return load_train_test(
        cfg.dataset,
        data_root=cfg.data_root,
        per_class=cfg.per_class,
        seed=cfg.seed,
        device=device,
        image_size=cfg.image_size,
        with_test=cfg.measure_test,
        **cfg.data_kwargs,
    )


def check_all_classes_present(y: torch.Tensor, num_classes: int) -> None:
    """Every class must have a training sample (the loader already checks the label range).

    Checked before training: otherwise the NC statistics of every measured epoch would be undefined.
    """
    from .data.transforms import class_counts

    if y.numel() == 0:
        raise ValueError("the training set is empty")
    counts = class_counts(y.cpu().numpy(), num_classes)
    empty = [int(c) for c in np.flatnonzero(counts == 0)]
    if empty:
        raise ValueError(f"empty class: no training samples for class(es) {empty}")


def weight_penalty(params: list[torch.Tensor], weight_decay: float) -> torch.Tensor:
    """``(wd / 2) sum ||theta||^2``: the objective whose gradient SGD's weight decay adds.

    ``theory.ridge_penalty`` (float64) of all parameters flattened into one vector, at ``lam = wd``.
    """
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    return theory.ridge_penalty(flat, lam=weight_decay)


def _batches(dataset, batch_size: int, generator: torch.Generator, drop_last: bool):
    from .data import batches

    return batches(dataset, batch_size, shuffle=True, generator=generator, drop_last=drop_last)


# --------------------------------------------------------------------------- training


def train(cfg: TrainConfig, *, resume: bool = False, overrides: dict[str, Any] | None = None) -> Path:
    """Train and measure; return the run directory ``cfg.out``.

    With ``resume=True`` the run in ``cfg.out`` continues from ``checkpoints/last.pt`` with
    its stored configuration; only the keys of ``overrides`` (a subset of
    :data:`RESUME_OVERRIDES`) replace stored values.  Epochs already in ``metrics.jsonl`` are
    not measured again.
    Raises ``ValueError`` / ``FileNotFoundError`` / :class:`empirical.runs.RunError` for bad
    input and :class:`NonFiniteLossError` when the loss diverges (measured epochs are kept).
    """
    run_dir = Path(cfg.out)
    if resume:
        overrides = dict(overrides or {})
        bad = sorted(set(overrides) - set(RESUME_OVERRIDES))
        if bad:
            raise ValueError(f"a resumed run keeps its stored configuration; only {list(RESUME_OVERRIDES)} may change, "
                             f"got {bad}")
        stored = runs.read_config(run_dir)["config"]
        stored.update(overrides, out=str(run_dir))
        cfg = TrainConfig.from_dict(stored)
    cfg = cfg.resolved()
    device = resolve_device(cfg.device)
    info = init_from_env(device.type)
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
    prev_threads = torch.get_num_threads()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    prev_benchmark = torch.backends.cudnn.benchmark
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        # warn_only: some CUDA kernels (e.g. adaptive average pooling's backward) have no
        # deterministic version; they warn instead of stopping the run
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed batch shapes: let cuDNN pick its fastest kernels
    try:
        return _train(cfg, run_dir, device, info, resume)
    finally:
        torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
        torch.backends.cudnn.benchmark = prev_benchmark
        torch.set_num_threads(prev_threads)
        shutdown(info)


def build_train_model(cfg: TrainConfig, train_set, device: torch.device) -> tuple[torch.nn.Module, bool]:
    """The run's network on ``device`` as the training loop builds it: ``(model, channels_last)``.

    :func:`empirical.models.build_model` for ``train_set``'s shape and classes with
    ``cfg.model_kwargs``; in channels-last layout when :func:`empirical.step.resolve_channels_last`
    picks it (conv models on CUDA for ``"auto"``).
    """
    from .models import build_model

    model = build_model(
        cfg.model,
        in_channels=int(train_set.channels),
        num_classes=int(train_set.num_classes),
        input_shape=tuple(train_set.x.shape[1:]),
        **cfg.model_kwargs,
    ).to(device)
    channels_last = resolve_channels_last(cfg.channels_last, device, model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, channels_last


def _train(cfg: TrainConfig, run_dir: Path, device: torch.device, info: DistInfo, resume: bool) -> Path:
    # ---- seeds: model initialisation and batch order depend only on cfg.seed
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    random.seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)

    # ---- data (resident on the device)
    train_set, test_set = load_data(cfg, device)
    C = int(train_set.num_classes)
    check_all_classes_present(train_set.y, C)
    if not cfg.measure_test:
        test_set = None
    if cfg.drop_last and len(train_set.y) < cfg.batch_size:
        raise ValueError(
            f"batch_size {cfg.batch_size} exceeds the {len(train_set.y)} training samples and the incomplete "
            "last batch is skipped, so an epoch would make no step: lower --batch-size or pass --keep-last-batch"
        )

    # ---- model, optimiser, schedule
    model, channels_last = build_train_model(cfg, train_set, device)
    net = model
    if info.enabled:
        if device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer, sgd_impl = make_optimizer(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                                         device=device)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=cfg.lr_milestones, gamma=cfg.lr_gamma)
    use_amp = cfg.amp == "bf16" or (cfg.amp == "auto" and device.type == "cuda")
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if use_amp else nullcontext
    compile_mode = resolve_compile(cfg.compile, device, distributed=info.enabled, deterministic=cfg.deterministic)
    measure_precision = resolve_precision(cfg.measure_precision, device)
    train_step = TrainStep(net, optimizer, C, cfg.loss, autocast=autocast, channels_last=channels_last,
                           compile_mode=compile_mode, model=model)

    # ---- run directory: new, or resumed from the last checkpoint
    start_epoch, step, lr_steps, elapsed = 0, 0, 0.0, 0.0
    clock = Clock()
    done: set[int] = set()
    problem = None
    if info.is_main:
        try:
            runs.prepare_run_dir(run_dir, resume=resume)
        except runs.RunError as exc:
            problem = str(exc)
        if not resume and problem is None:
            runs.write_config(run_dir, {"config": cfg.to_dict(), "environment": {
                **runs.environment_info(str(device)), "world_size": info.world_size, "amp_bf16": use_amp,
                "compile_mode": compile_mode, "channels_last": channels_last, "sgd": sgd_impl,
                "measure_precision": measure_precision}})
    problem = broadcast_object(problem, info)  # every rank stops, none waits in a collective
    if problem is not None:
        raise runs.RunError(problem)
    if resume:
        if info.is_main:
            done = runs.measured_epochs(runs.repair_metrics(run_dir))
        done = broadcast_object(done, info)
        ckpt_file = runs.checkpoint_path(run_dir)
        if ckpt_file.is_file():
            # on the CPU: RNG states must stay CPU byte tensors; load_state_dict moves the rest
            ckpt = runs.load_checkpoint(run_dir, map_location="cpu")
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            set_optimizer_implementation(optimizer, sgd_impl)
            scheduler.load_state_dict(ckpt["scheduler"])
            set_rng_states(ckpt["rng"], generator)
            start_epoch, step = ckpt["epoch"], ckpt["step"]
            lr_steps, elapsed = ckpt["lr_weighted_steps"], ckpt["time_s"]
            clock = Clock.from_state(ckpt.get("clock"))
        if info.is_main:
            # epochs measured after the checkpoint (a kill between metrics and checkpoint) were timed too
            clock.catch_up(runs.read_metrics(run_dir))
    writer = runs.MetricsWriter(run_dir)
    t_start = time.perf_counter() - elapsed

    def record(epoch: int, running: dict[str, float]) -> None:
        if epoch not in cfg.measure_epochs or epoch in done:
            return
        t0 = clock.start(device)
        m = measure(
            model, train_set.x, train_set.y, C,
            weight_decay=cfg.weight_decay, loss_reduction="mean",
            test_x=None if test_set is None else test_set.x,
            test_y=None if test_set is None else test_set.y,
            batch_size=cfg.eval_batch_size, info=info, precision=measure_precision,
        )
        clock.measure_s += clock.stop(device, t0)
        rec = {"epoch": epoch, "step": step, "lr": running.get("lr", optimizer.param_groups[0]["lr"]),
               "lr_weighted_steps": lr_steps, "time_s": time.perf_counter() - t_start, **clock.record()}
        rec.update({k: m[k] for k in RECORD_ORDER if k in m})
        rec.update(running)
        rec.update({k: v for k, v in m.items() if k not in rec})
        if info.is_main:
            writer.write(rec)
        done.add(epoch)

    def checkpoint(epoch: int) -> None:
        if not info.is_main:
            return
        runs.save_checkpoint(run_dir, {
            "epoch": epoch, "step": step, "lr_weighted_steps": lr_steps,
            "time_s": time.perf_counter() - t_start, "clock": clock.state(),
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "rng": rng_states(generator),
        })

    if start_epoch == 0:
        record(0, {"train_loss_running": None, "train_error_running": None})

    # ---- the epoch loop
    from tqdm.auto import tqdm

    bar = tqdm(range(start_epoch + 1, cfg.epochs + 1), initial=start_epoch, total=cfg.epochs,
               disable=not (cfg.progress and info.is_main), desc=run_dir.name, unit="ep")
    for epoch in bar:
        t0 = clock.start(device)
        net.train()
        lr = optimizer.param_groups[0]["lr"]
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        wrong = torch.zeros((), dtype=torch.int64, device=device)
        seen = 0
        for xb, yb in _batches(train_set, cfg.batch_size, generator, cfg.drop_last):
            global_b = int(yb.shape[0])  # shapes are host values: no synchronisation in the step
            xb, yb = shard(xb, info), shard(yb, info)
            # each rank's mean is reweighted so DDP's gradient average is the global-batch mean
            scale = yb.shape[0] * info.world_size / global_b if info.enabled else None
            loss, wrong_b = train_step(xb, yb, scale)
            step += 1
            lr_steps += lr
            with torch.no_grad():
                loss_sum += loss.double() * yb.shape[0]
                wrong += wrong_b
                seen += int(yb.shape[0])
        stats = torch.stack([loss_sum, wrong.double(), torch.tensor(float(seen), dtype=torch.float64, device=device)])
        all_reduce_sum(stats, info)
        scheduler.step()
        # the optimiser's objective: epoch-mean data loss (in the training criterion's units) plus
        # the weight-decay penalty (wd/2)||theta||^2 at the end of the epoch
        with torch.no_grad():
            penalty = float(weight_penalty(params, cfg.weight_decay))
        running = {"lr": lr, "train_loss_running": float(stats[0] / stats[2]) + penalty,
                   "train_error_running": float(stats[1] / stats[2])}
        clock.epoch_s = clock.stop(device, t0)
        clock.train_s += clock.epoch_s
        if not math.isfinite(running["train_loss_running"]):
            raise NonFiniteLossError(
                f"non-finite training loss in epoch {epoch} (by step {step}, lr {lr:g}); training stopped. "
                f"{len(done)} measured epoch(s) are kept in {run_dir / runs.METRICS_FILE}"
            )
        bar.set_postfix(loss=f"{running['train_loss_running']:.4g}", acc=f"{1 - running['train_error_running']:.4f}")
        record(epoch, running)
        if epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs:
            checkpoint(epoch)
    bar.close()
    barrier(info)  # ranks leave together: none tears down the process group under another
    return run_dir


@dataclass
class Clock:
    """Wall time of a run by activity, kept in checkpoints so that ``--resume`` continues it.

    ``train_s``: time in trained epochs (steps, the schedule, the epoch's running loss), without
    measurement and checkpoints; ``epoch_s``: the last trained epoch's (``None`` before the
    first); ``measure_s``: time in :func:`empirical.measure.measure`.  :meth:`start` /
    :meth:`stop` are :func:`empirical.timing.start` / :func:`~empirical.timing.stop`: they
    synchronise the device, so queued GPU work is counted where it was issued.
    """

    train_s: float = 0.0
    measure_s: float = 0.0
    epoch_s: float | None = None

    start = staticmethod(timing.start)
    stop = staticmethod(timing.stop)

    def record(self) -> dict[str, float | None]:
        return {"train_time_s": self.train_s, "epoch_time_s": self.epoch_s, "measure_time_total_s": self.measure_s}

    def state(self) -> dict[str, float | None]:
        return dataclasses.asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> "Clock":
        return cls(**state) if state else cls()  # checkpoints written before the clock existed start at zero

    def catch_up(self, records: list[dict[str, Any]]) -> None:
        """Never behind the last written record, so the totals stay monotone across a resume."""
        if records:
            last = records[-1]
            self.train_s = max(self.train_s, last.get("train_time_s") or 0.0)
            self.measure_s = max(self.measure_s, last.get("measure_time_total_s") or 0.0)


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The options set in a JSON file (either a bare dict or a run's ``config.json``), validated by name.

    Only the keys present are returned, so a partial file overrides only what it names.
    """
    d = json.loads(Path(path).read_text())
    options = d.get("config", d)
    unknown = sorted(set(options) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise ValueError(f"unknown TrainConfig option(s) in {path}: {unknown}")
    return dict(options)


#: Named defaults for ``--preset`` (explicit options override them).
PRESETS: dict[str, dict[str, Any]] = {
    # Main job: scikit-learn digits (8x8, embedded, balanced N = 130 per class, n = 1300), an MLP
    # 64-256-256-64 with BatchNorm (p = 64), the paper's protocol otherwise (SGD momentum 0.9,
    # wd 5e-4, batch 128, MSE, 350 epochs, lr / 10 at 116 and 233).  lr = 0.4 was the best of
    # 0.05 ... 0.6 for depth of collapse: zero training error by epoch ~10, then ~340 epochs of
    # terminal phase; final NC1 ~1.5e-4, NC3 ~0.03, NC4 = 0, rho_perp ~0.02.  Note: while the
    # learning rate is high, L_perp is of the order of L_NC1 (SGD keeps W away from W_LS);
    # after the first decay it falls to ~2-3% of L.  About 20-40 s on 2 shared CPU cores.
    "digits-mlp": dict(
        dataset="digits", model="mlp", per_class=130, epochs=350, lr=0.4, batch_size=128,
        weight_decay=5e-4, momentum=0.9, model_kwargs={"widths": [256, 256, 64], "batch_norm": True},
        num_threads=1,  # a tiny model: one thread is faster and steadier on a shared CPU
    ),
    # Paper protocol (math §7.1, §8): ResNet18 with the notebook's tuned MSE learning rate.
    "paper-fashion-mnist-resnet18": dict(
        dataset="fashion-mnist", model="resnet18", per_class=5000, epochs=350, lr=0.0184, batch_size=128,
    ),
    "paper-mnist-resnet18": dict(
        dataset="mnist", model="resnet18", per_class=5000, epochs=350, lr=0.0184, batch_size=128,
    ),
    # Tiny synthetic run for smoke tests.
    "gaussian-mlp": dict(
        dataset="gaussian", model="mlp", per_class=50, epochs=20, lr=0.05, batch_size=50,
        model_kwargs={"widths": [64, 32]}, data_kwargs={"dim": 16, "num_classes": 4},
    ),
}
