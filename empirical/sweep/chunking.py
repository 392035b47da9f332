"""How many members a chunk trains at once: what fits the device's memory (:func:`device_fit`)."""

from __future__ import annotations

import torch

from ..training import build_train_model, layer_tap, load_data, seed_everything, uses_bf16
from .available import available_bytes
from .engines import cpu_workers
from .memory import member_training_bytes, members_that_fit
from .spec import SweepSpec

__all__ = ["chunk_size", "device_fit"]

_MIB = 1 << 20


def device_fit(spec: SweepSpec, strategy: str, device: torch.device) -> tuple[int, int, int] | None:
    """``(members that fit, bytes per member, bytes available)`` for a chunk of ``spec``'s members trained
    by ``strategy`` on ``device``; ``None`` when the available memory cannot be read.

    One member's estimate (:func:`empirical.sweep.memory.member_training_bytes`) against 80% of what the device
    has (:func:`empirical.sweep.available.available_bytes`).  A chunk holds every member's state (weights,
    gradients, momentum) for the whole run, but only the activations of the steps in flight: on the CPU one per
    worker thread (:func:`empirical.sweep.engines.cpu_workers`; one when interleaved), on CUDA up to one per
    member (each on its own stream).  Every seed's data set is fixed.  The model is first built on the meta
    device (no memory): its parameters, gradients and momentum alone may not fit.  What is built here is freed
    before training.  Bad data or model options raise their one-line ``ValueError`` here, memory readable or not.
    """
    members = spec.member_configs()
    cfg = members[0].resolved()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):  # the members' seeding is untouched
        seed_everything(cfg.seed)
        train_set, test_set = load_data(cfg, device)
        with torch.device("meta"):  # parameters created without storage
            meta = build_train_model(cfg, train_set, torch.device("meta"), channels_last_ok=False)[0]
        layer_tap(cfg, meta)  # --measure-layers checked (by single runs' rule) before the sweep writes anything
        available = available_bytes(device)
        if available is None:
            return None
        lower = sum(p.nelement() * p.element_size() for p in meta.parameters()) * (3 if cfg.momentum else 2)
        if members_that_fit(lower, available) < 1:
            return 0, lower, available
        model = build_train_model(cfg, train_set, device, channels_last_ok=False)[0]
        est = member_training_bytes(model, train_set.x[: cfg.batch_size], train_set.y[: cfg.batch_size],
                                    loss=cfg.loss, num_classes=int(train_set.num_classes), momentum=cfg.momentum,
                                    autocast=torch.bfloat16 if uses_bf16(cfg, device) else None)
    data = sum(t.nelement() * t.element_size() for d in (train_set, test_set) if d is not None for t in (d.x, d.y))
    fixed = data * len(spec.seeds)
    if device.type == "cpu":
        in_flight = cpu_workers(cfg, len(members)) if strategy == "threaded" else 1
        per_member, fixed = est.state, fixed + in_flight * est.step
    else:
        per_member = est.total
    return members_that_fit(per_member, available, fixed=fixed), per_member, available


def chunk_size(spec: SweepSpec, strategy: str, device: torch.device) -> int:
    """Members per chunk: ``max_members_per_chunk``, else all, at most what :func:`device_fit` finds (a one-line
    ``ValueError`` when not even one member fits, or when more are asked for than fit)."""
    total = len(spec.member_configs())
    want = spec.max_members_per_chunk or total
    fit = device_fit(spec, strategy, device)
    if fit is None:
        return min(want, total)
    n, per_member, available = fit
    if n < 1:
        raise ValueError(f"not even one sweep member (~{per_member / _MIB:.0f} MiB) fits in the "
                         f"{available / _MIB:.0f} MiB available on {device}")
    if spec.max_members_per_chunk is not None and want > n:
        raise ValueError(f"--max-members-per-chunk {want} is too many: at most {n} members of "
                         f"~{per_member / _MIB:.0f} MiB fit in {available / _MIB:.0f} MiB available on {device}")
    return min(want, total, n)
