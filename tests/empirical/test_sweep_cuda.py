"""Sweeps on CUDA (skipped without a GPU; run by benchmarks/device_issue10.sh on a lent device).

* Deterministic kernels, no autocast, no compile: an interleaved member, whose step runs on its own CUDA
  stream, equals its single run exactly.  A missing stream synchronisation (a member reading a batch the
  default stream has not finished, or the allocator reusing it early) would make them differ.
* The default CUDA path (strategy interleaved, chosen by device; bf16 autocast, CUDA graphs, fused SGD,
  channels-last, streams): every member finishes with finite metrics, epoch 0 equals the single run's (same
  initial weights and data, measured by the same code).
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from empirical.config import TrainConfig
from empirical.runs import read_metrics
from empirical.sweep import SWEEP_FILE, SweepSpec, run_sweep
from empirical.training import TIMING_KEYS, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

EPOCHS = 3
LRS = [0.01, 0.02]


def config(out, **over) -> TrainConfig:
    kw = dict(dataset="digits", model="resnet18", per_class=40, epochs=EPOCHS, lr=0.01, batch_size=32,
              measure_epochs=list(range(EPOCHS + 1)), out=str(out), progress=False, device="cuda")
    kw.update(over)
    return TrainConfig(**kw)


def strip(records):
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in records]


def test_interleaved_members_on_streams_equal_single_runs_exactly(tmp_path):
    exact = dict(deterministic=True, amp="none", compile="none")
    out = tmp_path / "sw"
    run_sweep(SweepSpec(config(out, **exact), lrs=LRS, weight_decays=[5e-4], seeds=[0], strategy="interleaved"),
              out, figures=False)
    for lr in LRS:
        train(config(tmp_path / f"one-{lr}", lr=lr, **exact))
        member = read_metrics(out / f"lr{lr:g}-wd0.0005-seed0")
        assert strip(member) == strip(read_metrics(tmp_path / f"one-{lr}")), lr


def test_default_cuda_path_trains_every_member(tmp_path):
    out = tmp_path / "default"
    run_sweep(SweepSpec(config(out), lrs=LRS, weight_decays=[5e-4], seeds=[0]), out, figures=False)
    s = json.loads((out / SWEEP_FILE).read_text())
    assert s["strategy"] == "interleaved" and all(m["status"] == "finished" for m in s["members"])
    single = tmp_path / "single"
    train(config(single, lr=LRS[0]))
    member = read_metrics(out / f"lr{LRS[0]:g}-wd0.0005-seed0")
    assert strip(member[:1]) == strip(read_metrics(single)[:1])  # same weights and data at epoch 0
    for m in s["members"]:
        for rec in read_metrics(out / m["run_dir"]):
            assert all(math.isfinite(rec[k]) for k in ("loss", "nc1", "l_perp", "train_error")), (
                m["run_dir"],
                rec["epoch"],
            )


def test_threaded_strategy_is_refused_on_cuda(tmp_path):
    with pytest.raises(ValueError, match="'threaded' is for the CPU"):
        run_sweep(SweepSpec(config(tmp_path / "t"), lrs=LRS, weight_decays=[5e-4], seeds=[0], strategy="threaded"),
                  tmp_path / "t", figures=False)
    assert not (tmp_path / "t").exists()
