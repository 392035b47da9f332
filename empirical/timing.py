"""Wall-clock timing of device work: :func:`start` / :func:`stop` synchronise the device first, so queued
(asynchronous) CUDA work is counted where it was issued."""

from __future__ import annotations

import time

import torch


def synchronize(device: torch.device | str) -> None:
    """Wait for the work queued on ``device`` (CUDA only; a no-op elsewhere)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def start(device: torch.device | str) -> float:
    """Synchronise ``device`` and return ``time.perf_counter()``."""
    synchronize(device)
    return time.perf_counter()


def stop(device: torch.device | str, t0: float) -> float:
    """Synchronise ``device`` and return the seconds since ``t0`` (from :func:`start`)."""
    synchronize(device)
    return time.perf_counter() - t0
