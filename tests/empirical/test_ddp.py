"""DistributedDataParallel on CPU (gloo, 2 processes via torchrun) equals one process.

Each rank takes half of every global batch; the loss of each shard is reweighted so the
averaged gradient is the global-batch mean; class statistics are all-gathered and merged
exactly.  The model has no BatchNorm (per-shard batch statistics would differ, and
SyncBatchNorm needs a GPU), so the two runs differ only by float32 rounding of the gradient
reduction: epoch 0 (no training) agrees to 1e-12 (measured 2e-15), trained epochs to
1e-6 relative (measured 3e-8).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from empirical.distributed import SINGLE, DistInfo, shard
from empirical.runs import read_config, read_metrics
from empirical.training import TIMING_KEYS, TrainConfig, train

SKIP_KEYS = {*TIMING_KEYS, "warnings"}


def config(out) -> TrainConfig:
    return TrainConfig(
        dataset="gaussian", model="mlp", per_class=40, epochs=4, lr=0.05, batch_size=40,
        data_kwargs={"dim": 16, "num_classes": 4, "separation": 2.0}, model_kwargs={"widths": [32, 16]},
        measure_epochs=[0, 1, 2, 4], out=str(out), progress=False, num_threads=1, seed=1,
    )


def _close(a, b, rel):
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y, rel) for x, y in zip(a, b))
    if a is None or b is None:
        return a is b
    if isinstance(a, str):
        return a == b
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not available")
def test_ddp_gloo_two_processes_match_single(tmp_path):
    single = tmp_path / "single"
    train(config(single))
    ddp = tmp_path / "ddp"
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(config(ddp).to_dict()))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "empirical", "train", "--config", str(cfg_file)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert read_config(ddp)["environment"]["world_size"] == 2
    a, b = read_metrics(single), read_metrics(ddp)
    assert [r["epoch"] for r in a] == [r["epoch"] for r in b] == [0, 1, 2, 4]
    for ra, rb in zip(a, b):
        rel = 1e-12 if ra["epoch"] == 0 else 1e-6  # measured: 2e-15 and 3e-8
        for key in ra:
            if key in SKIP_KEYS or key == "identity_residual":
                continue
            assert _close(ra[key], rb[key], rel), (ra["epoch"], key, ra[key], rb[key])
        assert rb["identity_residual"] < 1e-12  # measured ~1e-16
        assert ra["step"] == rb["step"]


def _merge_with_an_empty_rank(rank: int, init_file: str, out_dir: str) -> None:
    """One of two gloo ranks: rank 0 has samples, rank 1 none; records what merge_accumulator did."""
    import pathlib

    import torch.distributed as dist

    from empirical.distributed import merge_accumulator
    from theory import ClassStatsAccumulator

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        acc = ClassStatsAccumulator(3)
        if rank == 0:
            acc.update(torch.randn(6, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2]))
        try:
            merge_accumulator(acc, DistInfo(rank=rank, world_size=2, backend="gloo"))
            result = "merged"
        except ValueError as exc:
            result = f"ValueError: {exc}"
        pathlib.Path(out_dir, f"rank{rank}.txt").write_text(result)
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not available")
def test_merge_accumulator_with_an_empty_rank_fails_on_every_rank(tmp_path):
    """A rank without samples must not leave the others waiting in the all-gather: every rank raises."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_merge_with_an_empty_rank, args=(r, str(tmp_path / "init"), str(tmp_path)))
             for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    hung = [p for p in procs if p.is_alive()]
    for p in hung:
        p.kill()
        p.join()
    assert not hung, "a rank hung in merge_accumulator"
    assert [p.exitcode for p in procs] == [0, 0]
    for r in range(2):
        text = (tmp_path / f"rank{r}.txt").read_text()
        assert text.startswith("ValueError: a rank measured no samples") and f"this is rank {r}" in text, text


def test_shard_splits_batches_contiguously():
    x = torch.arange(7)
    parts = [shard(x, DistInfo(rank=r, world_size=3)) for r in range(3)]
    assert torch.equal(torch.cat(parts), x)
    assert shard(x, SINGLE) is x


def test_a_torchrun_rank_that_raises_ends_without_finalisation(tmp_path):
    """An exception ``empirical.cli.main`` does not catch, under torchrun (``WORLD_SIZE`` > 1): its traceback,
    status 1, and no interpreter finalisation (an ``atexit`` handler does not run), which is what keeps gloo's
    workers from aborting the rank (empirical.distributed.run_rank, end_rank).  ``run_rank`` keeps the status of a
    script's own ``main`` and of ``sys.exit``; a usage error keeps argparse's status 2."""
    code = ("import atexit, runpy, empirical.cli as cli\n"
            "atexit.register(print, 'finalised')\n"
            "def boom(argv=None):\n    raise RuntimeError('collective failed')\n"
            "cli.main = boom\n"
            "runpy.run_module('empirical', run_name='__main__')\n")
    env = {**os.environ, "WORLD_SIZE": "2"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "RuntimeError: collective failed" in proc.stderr
    assert "finalised" not in proc.stdout
    cases = (("return 3", 3, ""), ("return None", 0, ""), ("sys.exit('stopped: why')", 1, "stopped: why"))
    for body, status, err in cases:
        own = subprocess.run([sys.executable, "-c", "import atexit, sys\nfrom empirical.distributed import run_rank\n"
                              f"atexit.register(print, 'finalised')\ndef main():\n    {body}\nrun_rank(main)\n"],
                             capture_output=True, text=True, timeout=120)
        assert (own.returncode, own.stdout) == (status, "") and err in own.stderr, (body, own.stderr)
    usage = subprocess.run([sys.executable, "-m", "empirical", "train", "--no-such-option"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert usage.returncode == 2 and "--no-such-option" in usage.stderr
